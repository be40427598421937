//! The connection and step configuration of `graphql.extractor` (see
//! `components/graphql.extractor/spec.yaml`) and their validation into a [`Plan`].

use std::collections::BTreeMap;
use std::time::Duration;

use driver_api::{DriverError, Result, SecretString};
use http_support::{Auth, ClientOptions, Headers, JsonPath, RetryPolicy};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A `@graphql` connection (the spec's `x-connection-fields`): where the API is and how to
/// authenticate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlConnection {
    /// URL of the GraphQL endpoint (http or https).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Extra HTTP headers (secret), sent after the default and auth headers.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretString>,
    /// Authentication scheme.
    #[serde(default)]
    pub auth_type: AuthType,
    /// Bearer token, API key, or the basic password when `auth_password` is not set.
    #[serde(default)]
    pub auth_token: Option<SecretString>,
    /// User name for basic authentication.
    #[serde(default)]
    pub auth_username: Option<String>,
    /// Password for basic authentication.
    #[serde(default)]
    pub auth_password: Option<SecretString>,
    /// Header carrying the API key (default `X-API-Key`).
    #[serde(default)]
    pub api_key_header: Option<String>,
}

/// `graphql.extractor` step configuration (without the connection's fields).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The GraphQL query document.
    pub query: String,
    /// Variables of the query; the pagination variables are set on top.
    #[serde(default)]
    pub variables: Map<String, Value>,
    /// Deprecated alias of `api_key_header`.
    #[serde(default)]
    pub auth_header_name: Option<String>,
    /// Seconds one request may take.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Extra attempts after a network error, timeout, 429 or 5xx.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Seconds before the first retry (doubled per retry).
    #[serde(default = "default_retry_delay")]
    pub retry_delay: f64,
    /// Dot path of the records in the response.
    #[serde(default = "default_data_path")]
    pub data_path: String,
    /// Nested objects become dotted columns.
    #[serde(default = "yes")]
    pub flatten_result: bool,
    /// Stop after this many pages (0 = no limit).
    #[serde(default)]
    pub max_pages: u64,
    /// Verify TLS certificates.
    #[serde(default = "yes")]
    pub validate_ssl: bool,
    /// none, relay or offset.
    #[serde(default)]
    pub pagination_style: Option<PaginationStyle>,
    /// Deprecated: true = relay, false = none.
    #[serde(default)]
    pub pagination_enabled: Option<bool>,
    /// Dot path of the relay page-info object.
    #[serde(default = "default_pagination_path")]
    pub pagination_path: String,
    /// Cursor field of the page-info object.
    #[serde(default = "default_cursor_field")]
    pub pagination_cursor_field: String,
    /// Has-next field of the page-info object.
    #[serde(default = "default_has_next_field")]
    pub pagination_has_next_field: String,
    /// Variable receiving the cursor.
    #[serde(default = "default_cursor_variable")]
    pub pagination_variable_name: String,
    /// Records per page, sent as `limit_variable_name`.
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Variable receiving the offset.
    #[serde(default = "default_offset_variable")]
    pub offset_variable_name: String,
    /// Variable receiving the page size (`limit` for offset, `first` otherwise).
    #[serde(default)]
    pub limit_variable_name: Option<String>,
}

/// How requests authenticate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// No authentication header.
    #[default]
    None,
    /// `Authorization: Bearer <auth_token>`.
    Bearer,
    /// `Authorization: Basic base64(<auth_username>:<auth_password>)`.
    Basic,
    /// `<api_key_header>: <auth_token>`.
    ApiKey,
}

/// How pages are requested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaginationStyle {
    /// One request.
    #[default]
    None,
    /// Relay cursors read from the page-info object.
    Relay,
    /// Offset and limit variables.
    Offset,
}

fn default_timeout() -> u64 {
    30
}
fn default_max_retries() -> u32 {
    3
}
fn default_retry_delay() -> f64 {
    1.0
}
fn default_data_path() -> String {
    "data".into()
}
fn yes() -> bool {
    true
}
fn default_pagination_path() -> String {
    "data.pageInfo".into()
}
fn default_cursor_field() -> String {
    "endCursor".into()
}
fn default_has_next_field() -> String {
    "hasNextPage".into()
}
fn default_cursor_variable() -> String {
    "after".into()
}
fn default_offset_variable() -> String {
    "offset".into()
}

/// How the next page is asked for.
#[derive(Debug)]
pub(crate) enum Pagination {
    None,
    Relay {
        page_info: JsonPath,
        cursor_field: String,
        has_next_field: String,
        variable: String,
    },
    Offset {
        variable: String,
        page_size: u32,
    },
}

/// A validated configuration.
#[derive(Debug)]
pub(crate) struct Plan {
    pub endpoint: String,
    pub query: String,
    pub variables: Map<String, Value>,
    pub client: ClientOptions,
    pub data_path: JsonPath,
    pub flatten: bool,
    pub max_pages: u64,
    pub pagination: Pagination,
    /// `(variable, page size)` sent with every request.
    pub page_size: Option<(String, u32)>,
}

impl Plan {
    pub fn new(connection: &GraphqlConnection, config: Config) -> Result<Self> {
        let endpoint = connection.endpoint.clone().ok_or_else(|| {
            DriverError::config(
                "endpoint",
                "the GraphQL endpoint is not set: set `endpoint` or use a connection (@graphql.<alias>) that has one",
            )
        })?;
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(DriverError::config(
                "endpoint",
                format!("{endpoint:?} is not an http:// or https:// URL"),
            ));
        }
        if config.query.trim().is_empty() {
            return Err(DriverError::config("query", "the query is empty"));
        }
        if !(5..=300).contains(&config.timeout) {
            return Err(DriverError::config(
                "timeout",
                format!("{} is outside 5..300 seconds", config.timeout),
            ));
        }
        if config.max_retries > 10 {
            return Err(DriverError::config("max_retries", "at most 10"));
        }
        if !(0.1..=60.0).contains(&config.retry_delay) {
            return Err(DriverError::config(
                "retry_delay",
                format!("{} is outside 0.1..60 seconds", config.retry_delay),
            ));
        }
        let headers = headers(connection, config.auth_header_name.as_deref())?;
        let style = match (config.pagination_style, config.pagination_enabled) {
            (Some(_), Some(_)) => {
                return Err(DriverError::config(
                    "pagination_enabled",
                    "pagination_enabled is the deprecated form of pagination_style: set only pagination_style",
                ));
            }
            (Some(style), None) => style,
            (None, Some(true)) => PaginationStyle::Relay,
            (None, Some(false) | None) => PaginationStyle::None,
        };
        let limit_variable = config.limit_variable_name.clone().unwrap_or_else(|| {
            if style == PaginationStyle::Offset {
                "limit".into()
            } else {
                "first".into()
            }
        });
        let page_size = config.page_size.map(|n| (limit_variable, n));
        let pagination = match style {
            PaginationStyle::None => Pagination::None,
            PaginationStyle::Relay => {
                let page_info = JsonPath::parse("pagination_path", &config.pagination_path)?;
                if page_info.has_wildcard() {
                    return Err(DriverError::config(
                        "pagination_path",
                        "the page-info path cannot contain wildcards",
                    ));
                }
                Pagination::Relay {
                    page_info,
                    cursor_field: config.pagination_cursor_field.clone(),
                    has_next_field: config.pagination_has_next_field.clone(),
                    variable: config.pagination_variable_name.clone(),
                }
            }
            PaginationStyle::Offset => Pagination::Offset {
                variable: config.offset_variable_name.clone(),
                page_size: config.page_size.ok_or_else(|| {
                    DriverError::config("page_size", "offset pagination needs page_size")
                })?,
            },
        };
        if page_size.as_ref().is_some_and(|(_, n)| *n == 0) {
            return Err(DriverError::config("page_size", "must be at least 1"));
        }
        Ok(Self {
            endpoint,
            query: config.query,
            variables: config.variables,
            client: ClientOptions {
                timeout: Duration::from_secs(config.timeout),
                validate_ssl: config.validate_ssl,
                headers,
                retry: RetryPolicy::new(
                    config.max_retries,
                    Duration::from_secs_f64(config.retry_delay),
                ),
                ..ClientOptions::default()
            },
            data_path: JsonPath::parse("data_path", &config.data_path)?,
            flatten: config.flatten_result,
            max_pages: config.max_pages,
            pagination,
            page_size,
        })
    }
}

/// The headers of every request: content type, auth, then the user's (which may replace them).
/// `auth_header_name` is the step's deprecated name for `api_key_header`.
pub(crate) fn headers(
    connection: &GraphqlConnection,
    auth_header_name: Option<&str>,
) -> Result<Headers> {
    let mut headers = Headers::new();
    headers.insert("headers", "Content-Type", "application/json")?;
    headers.insert("headers", "Accept", "application/json")?;
    auth(connection, auth_header_name)?.apply(auth_key(connection.auth_type), &mut headers)?;
    for (name, value) in &connection.headers {
        headers.insert_secret("headers", name, value)?;
    }
    Ok(headers)
}

fn auth_key(auth_type: AuthType) -> &'static str {
    match auth_type {
        AuthType::Basic => "auth_password",
        _ => "auth_token",
    }
}

fn auth(config: &GraphqlConnection, auth_header_name: Option<&str>) -> Result<Auth> {
    let header = match (config.api_key_header.as_deref(), auth_header_name) {
        (Some(_), Some(_)) => {
            return Err(DriverError::config(
                "auth_header_name",
                "auth_header_name is the deprecated form of api_key_header: set only api_key_header",
            ));
        }
        (Some(h), None) | (None, Some(h)) => h.to_owned(),
        (None, None) => "X-API-Key".into(),
    };
    let token = || {
        config.auth_token.clone().ok_or_else(|| {
            DriverError::config(
                "auth_token",
                match config.auth_type {
                    AuthType::Bearer => "auth_type bearer needs auth_token (the bearer token)",
                    _ => "auth_type api_key needs auth_token (the API key)",
                },
            )
        })
    };
    Ok(match config.auth_type {
        AuthType::None => {
            if config.auth_token.is_some() || config.auth_password.is_some() {
                return Err(DriverError::config(
                    "auth_type",
                    "a token or password is set but auth_type is none: set auth_type (bearer, basic or api_key)",
                ));
            }
            Auth::None
        }
        AuthType::Bearer => Auth::Bearer(token()?),
        AuthType::ApiKey => Auth::ApiKey {
            header,
            key: token()?,
        },
        AuthType::Basic => Auth::Basic {
            username: config.auth_username.clone().ok_or_else(|| {
                DriverError::config("auth_username", "auth_type basic needs auth_username")
            })?,
            password: config
                .auth_password
                .clone()
                .or_else(|| config.auth_token.clone())
                .ok_or_else(|| {
                    DriverError::config("auth_password", "auth_type basic needs auth_password")
                })?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(config: Value) -> Result<Plan> {
        let (connection, config) = driver_api::split_config(config).unwrap();
        Plan::new(&connection, config)
    }

    #[test]
    fn config_matches_the_spec() {
        driver_api::testing::assert_spec_matches::<crate::GraphqlExtractor>();
    }

    #[test]
    fn deprecated_python_names_still_work_but_not_together_with_the_new_ones() {
        let p = plan(json!({
            "endpoint": "http://x/graphql", "query": "{a}",
            "pagination_enabled": true, "auth_type": "api_key", "auth_token": "k-123456",
            "auth_header_name": "X-Token"
        }))
        .unwrap();
        assert!(matches!(p.pagination, Pagination::Relay { .. }));
        assert!(format!("{:?}", p.client.headers).contains("x-token"));
        let err = plan(json!({
            "endpoint": "http://x", "query": "{a}",
            "pagination_enabled": true, "pagination_style": "relay"
        }))
        .unwrap_err();
        assert!(
            err.to_string().contains("set only pagination_style"),
            "{err}"
        );
    }

    #[test]
    fn auth_settings_are_checked() {
        let cases = [
            (
                json!({"auth_type": "bearer"}),
                "auth_type bearer needs auth_token",
            ),
            (
                json!({"auth_type": "basic", "auth_token": "x"}),
                "needs auth_username",
            ),
            (
                json!({"auth_type": "basic", "auth_username": "u"}),
                "needs auth_password",
            ),
            (json!({"auth_token": "t-123456"}), "auth_type is none"),
            (
                json!({"pagination_style": "offset"}),
                "offset pagination needs page_size",
            ),
            (json!({"endpoint": "ftp://x"}), "not an http"),
        ];
        for (extra, message) in cases {
            let mut config = json!({"endpoint": "http://x/graphql", "query": "{a}"});
            for (k, v) in extra.as_object().unwrap() {
                config[k] = v.clone();
            }
            let err = plan(config).unwrap_err();
            assert!(err.to_string().contains(message), "{err} vs {message}");
        }
        let err = plan(json!({"query": "{a}"})).unwrap_err();
        assert!(err.to_string().contains("endpoint"), "{err}");
    }

    #[test]
    fn limit_variable_defaults_follow_the_style() {
        let p = plan(json!({"endpoint": "http://x", "query": "{a}", "pagination_style": "offset", "page_size": 50})).unwrap();
        assert_eq!(p.page_size, Some(("limit".into(), 50)));
        let p = plan(json!({"endpoint": "http://x", "query": "{a}", "pagination_style": "relay", "page_size": 5})).unwrap();
        assert_eq!(p.page_size, Some(("first".into(), 5)));
    }
}
