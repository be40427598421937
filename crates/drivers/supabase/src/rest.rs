//! Requests to PostgREST: where (the REST root), with which key, and how its errors read.
//!
//! Requests go through the workspace's HTTP layer (`http-support`): one retry policy, retry
//! events, request counters and secret-safe headers for every HTTP driver. This module only
//! adds what is PostgREST's: the REST root and key of a connection, and reading PostgREST's
//! error bodies (`code`, `message`, `details`, `hint`) into classified errors.

use std::time::Duration;

use driver_api::{DriverError, Result, SecretString, StepContext};
use http_support::{ClientOptions, Headers, HttpClient, Method, RetryPolicy, StatusCode};
use reqwest::Url;
use serde_json::Value;

/// Where the project is and which key to send; the fields every Supabase step and connection has.
#[derive(Debug, Clone, Default)]
pub struct Location<'a> {
    /// `url` (project URL).
    pub url: Option<&'a str>,
    /// `project_id`.
    pub project_id: Option<&'a str>,
    /// `rest_url` (a PostgREST root).
    pub rest_url: Option<&'a str>,
    /// `service_role_key`.
    pub service_role_key: Option<&'a SecretString>,
    /// `anon_key`.
    pub anon_key: Option<&'a SecretString>,
    /// `key`.
    pub key: Option<&'a SecretString>,
}

impl Location<'_> {
    /// The REST root: `rest_url`, else `<url>/rest/v1`, else `https://<project_id>.supabase.co/rest/v1`.
    pub fn rest_root(&self) -> Result<Url> {
        let (text, key) = if let Some(rest) = self.rest_url {
            (rest.trim_end_matches('/').to_owned(), "rest_url")
        } else if let Some(url) = self.url {
            (format!("{}/rest/v1", url.trim_end_matches('/')), "url")
        } else if let Some(id) = self.project_id {
            (format!("https://{id}.supabase.co/rest/v1"), "project_id")
        } else {
            return Err(DriverError::config(
                "url",
                "say where the project is: url, project_id or rest_url (usually from the connection)",
            ));
        };
        // A trailing slash makes relative joins (`<root>/<table>`) keep the root's path.
        Url::parse(&format!("{text}/"))
            .map_err(|e| DriverError::config(key, format!("is not a valid URL: {e}")))
    }

    /// The API key: `service_role_key`, else `anon_key`, else `key`.
    pub fn api_key(&self) -> Result<SecretString> {
        self.service_role_key
            .or(self.anon_key)
            .or(self.key)
            .cloned()
            .ok_or_else(|| {
                DriverError::config(
                    "key",
                    "an API key is needed: service_role_key, anon_key or key (usually from the connection)",
                )
            })
    }
}

/// A PostgREST client for one step, on the workspace's HTTP layer (`http-support`): its retry
/// policy, `http.retry` events, request/retry counters and secret-safe headers.
#[derive(Debug)]
pub struct Rest {
    client: HttpClient,
    root: Url,
}

/// A failed request, after retries.
#[derive(Debug)]
pub struct Failure {
    /// HTTP status when the server answered.
    pub status: Option<StatusCode>,
    /// PostgREST/Postgres error code (`42P01`, `PGRST205`, ...).
    pub code: Option<String>,
    /// What happened, readable, without secrets.
    pub message: String,
    /// No answer: the HTTP layer's classified error (connection, timeout, cancelled).
    pub unanswered: Option<DriverError>,
}

impl Failure {
    /// Whether the answer says the table does not exist (and nothing else).
    pub fn is_missing_relation(&self) -> bool {
        matches!(self.code.as_deref(), Some("42P01" | "PGRST205"))
    }

    /// The failure as a classified driver error, `what` saying what was being done.
    pub fn into_error(self, what: &str) -> DriverError {
        let message = format!("{what}: {}", self.message);
        let denied = self.code.as_deref() == Some("42501");
        match (self.status, self.unanswered) {
            (_, Some(DriverError::Cancelled)) => DriverError::Cancelled,
            (None, Some(DriverError::Timeout { .. })) => DriverError::Timeout { message },
            (None, Some(DriverError::Remote { .. })) => DriverError::Remote { message },
            (None, _) => DriverError::Connection { message },
            // PostgREST answers a missing privilege with 401 for the anon role, 403 otherwise.
            (Some(_), _) if denied => DriverError::Auth {
                message: format!(
                    "{message} (the key's role lacks a privilege on this table: GRANT it to the role, or use the service_role key)"
                ),
            },
            (Some(StatusCode::UNAUTHORIZED), _) => DriverError::Auth {
                message: format!(
                    "{message} (PostgREST rejected the API key: check service_role_key/anon_key/key and that it is signed with the server's JWT secret)"
                ),
            },
            (Some(StatusCode::FORBIDDEN), _) => DriverError::Auth {
                message: format!("{message} (the key's role is not allowed to do this)"),
            },
            (Some(_), _) => DriverError::Remote { message },
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// Body.
    pub body: bytes::Bytes,
}

impl Rest {
    /// A client for `root` sending `key` (as `apikey` and `Authorization: Bearer`), each request
    /// limited to `timeout`, with `retries` extra attempts on network errors, timeouts, 429 and
    /// 5xx (1 s, 2 s, 4 s, ... capped at 30 s, or a longer Retry-After). Inside a step, retries
    /// are events of the step and the key is registered with the run's redactor.
    pub fn new(
        ctx: Option<&StepContext>,
        root: Url,
        key: SecretString,
        timeout: Duration,
        retries: u32,
    ) -> Result<Self> {
        let mut headers = Headers::new();
        headers.insert_secret("key", "apikey", &key)?;
        headers.insert_secret(
            "key",
            "Authorization",
            &SecretString::new(format!("Bearer {}", key.expose())),
        )?;
        let options = ClientOptions {
            timeout,
            connect_timeout: timeout,
            headers,
            retry: RetryPolicy {
                max_retries: retries,
                base_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
                ..RetryPolicy::default()
            },
            ..ClientOptions::default()
        };
        let client = match ctx {
            Some(ctx) => HttpClient::for_step(ctx, &options)?,
            None => HttpClient::new(&options)?,
        };
        Ok(Self { client, root })
    }

    /// `<root>/<path>` with `path` as one percent-encoded segment (a table name).
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.root.clone();
        if !path.is_empty()
            && let Ok(mut segments) = url.path_segments_mut()
        {
            segments.pop_if_empty().push(path);
        }
        url
    }

    /// The REST root.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Writes the step's `requests_made` and `retries` metrics.
    pub fn report(&self, ctx: &StepContext) {
        self.client.report(ctx);
    }

    /// Sends a request (`headers` besides the key's), retried by the HTTP layer. A 2xx answer
    /// is returned; anything else is a [`Failure`] that keeps PostgREST's error code.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, String)],
        body: Option<String>,
    ) -> std::result::Result<Answer, Failure> {
        let mut request = self.client.request(method, url.as_str());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        match self.client.execute(request).await {
            Ok(response) if response.is_success() => Ok(Answer {
                body: response.body,
            }),
            Ok(response) => Err(http_failure(response.status, &response.body)),
            Err(error) => Err(Failure {
                status: None,
                code: None,
                message: error.to_string(),
                unanswered: Some(error),
            }),
        }
    }
}

fn http_failure(status: StatusCode, body: &[u8]) -> Failure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("code");
    let mut message = format!("HTTP {status}");
    match field("message") {
        Some(m) => {
            message.push_str(": ");
            message.push_str(&m);
        }
        None if !body.is_empty() => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            message.push_str(": ");
            message.push_str(text.trim());
        }
        None => {}
    }
    if let Some(code) = &code {
        message.push_str(&format!(" [{code}]"));
    }
    for extra in ["details", "hint"] {
        if let Some(text) = field(extra) {
            message.push_str(&format!("; {extra}: {text}"));
        }
    }
    Failure {
        status: Some(status),
        code,
        message,
        unanswered: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_root_and_key_follow_the_documented_precedence() {
        let service = SecretString::new("service-role-key-0123456789");
        let anon = SecretString::new("anon-key-0123456789-abcdefg");
        let hosted = Location {
            url: Some("https://abcd.supabase.co/"),
            project_id: Some("ignored"),
            anon_key: Some(&anon),
            ..Location::default()
        };
        assert_eq!(
            hosted.rest_root().unwrap().as_str(),
            "https://abcd.supabase.co/rest/v1/"
        );
        assert_eq!(hosted.api_key().unwrap().expose(), anon.expose());
        let by_id = Location {
            project_id: Some("xyz"),
            service_role_key: Some(&service),
            anon_key: Some(&anon),
            ..Location::default()
        };
        assert_eq!(
            by_id.rest_root().unwrap().as_str(),
            "https://xyz.supabase.co/rest/v1/"
        );
        assert_eq!(by_id.api_key().unwrap().expose(), service.expose());
        let plain = Location {
            rest_url: Some("http://127.0.0.1:3000"),
            url: Some("https://abcd.supabase.co"),
            ..Location::default()
        };
        assert_eq!(
            plain.rest_root().unwrap().as_str(),
            "http://127.0.0.1:3000/"
        );
        assert!(plain.api_key().is_err());
        assert!(Location::default().rest_root().is_err());
    }

    #[test]
    fn postgrest_error_bodies_keep_their_code_and_hint() {
        let f = http_failure(
            StatusCode::NOT_FOUND,
            br#"{"code":"42P01","details":null,"hint":null,"message":"relation \"public.x\" does not exist"}"#,
        );
        assert!(f.is_missing_relation());
        assert_eq!(
            f.message,
            "HTTP 404 Not Found: relation \"public.x\" does not exist [42P01]"
        );
        let denied = http_failure(
            StatusCode::UNAUTHORIZED,
            br#"{"code":"42501","message":"permission denied for table t"}"#,
        );
        assert!(!denied.is_missing_relation());
        let error = denied.into_error("write");
        assert!(error.to_string().contains("GRANT"), "{error}");
    }
}
