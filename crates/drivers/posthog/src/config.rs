//! The connection and the step configuration, kept equal to
//! `components/posthog.extractor/spec.yaml` by a test.

use driver_api::{DriverError, Result, SecretString};
use serde::Deserialize;

/// A `@posthog` connection (the spec's `x-connection-fields`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostHogConnection {
    /// Personal API key with query:read access. Secret: sent only as the bearer token.
    /// Required; optional here because spec examples take it from a connection.
    pub api_key: Option<SecretString>,
    /// Numeric project id (a string of digits or an integer). Required, as `api_key`.
    pub project_id: Option<ProjectId>,
    /// Cloud region or self-hosting; picks the base URL.
    #[serde(default)]
    pub region: Region,
    /// Base URL of a self-hosted PostHog (region self_hosted only).
    pub custom_base_url: Option<String>,
}

/// Configuration of a `posthog.extractor` step (without the connection's fields).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What to read.
    #[serde(default)]
    pub data_type: DataType,
    /// Only these event names (data_type events).
    pub event_types: Option<Vec<String>>,
    /// Minutes before the stored newest timestamp where an incremental run starts.
    #[serde(default = "default_lookback")]
    pub lookback_window_minutes: u32,
    /// Drop rows already delivered by an earlier run (and repeats within a run).
    pub deduplicate: Option<bool>,
    /// Deprecated alias of `deduplicate`.
    pub deduplication_enabled: Option<bool>,
    /// Rows per query.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Stop after this many pages; 0 = no limit.
    #[serde(default)]
    pub max_pages: u32,
    /// Where the first (or a full-refresh) run of events or sessions starts.
    pub initial_since: Option<String>,
    /// Seconds one query request may take.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Extra attempts per request on network errors, timeouts, 429 and 5xx.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
}

fn default_lookback() -> u32 {
    15
}
fn default_page_size() -> u32 {
    10_000
}
fn default_timeout() -> u64 {
    30
}
fn default_max_retries() -> u32 {
    5
}

/// A project id as written: `123`, `"123"`, or another id PostHog's API takes in the
/// project's place, such as `"@current"` (the project of the API key).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ProjectId {
    /// An integer.
    Number(u64),
    /// A string: digits, or another project id such as `@current`.
    Text(String),
}

/// PostHog Cloud region or a self-hosted instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// https://us.posthog.com
    #[default]
    Us,
    /// https://eu.posthog.com
    Eu,
    /// `custom_base_url`
    SelfHosted,
}

/// What a step reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Events in a time window, paged on (timestamp, uuid).
    #[default]
    Events,
    /// Persons by creation time, paged on (created_at, id).
    Persons,
    /// Sessions in a time window, paged on ($start_timestamp, session_id).
    Sessions,
    /// The whole distinct id -> person mapping, paged on (person_id, distinct_id).
    PersonDistinctIds,
}

impl DataType {
    /// The name used in the config and in the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Persons => "persons",
            Self::Sessions => "sessions",
            Self::PersonDistinctIds => "person_distinct_ids",
        }
    }
}

impl PostHogConnection {
    /// Checks the fields whose rules the types do not express.
    pub fn check(&self) -> Result<()> {
        self.project_id()?;
        self.base_url()?;
        self.api_key()?;
        Ok(())
    }

    /// The checked project id, as it goes into the URL path: a positive number, or (as the
    /// Python Osiris accepted any string) another id PostHog takes in the project's place,
    /// such as `@current`. Only characters a URL path segment holds as they are are allowed.
    pub fn project_id(&self) -> Result<String> {
        let invalid = || {
            DriverError::Config {
            key: Some("project_id".into()),
            message: "must be the id of a PostHog project: its number (e.g. 12345) or @current; letters, digits and @ . _ ~ - only".into(),
        }
        };
        match &self.project_id {
            None => Err(config("project_id", "missing required key `project_id`")),
            Some(ProjectId::Number(0)) => Err(invalid()),
            Some(ProjectId::Number(n)) => Ok(n.to_string()),
            Some(ProjectId::Text(t)) if t.bytes().all(|b| b.is_ascii_digit()) => {
                match t.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n.to_string()),
                    _ => Err(invalid()),
                }
            }
            Some(ProjectId::Text(t))
                if !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"@._~-".contains(&b)) =>
            {
                Ok(t.clone())
            }
            Some(ProjectId::Text(_)) => Err(invalid()),
        }
    }

    /// The base URL the region names, without a trailing slash.
    pub fn base_url(&self) -> Result<String> {
        let url = match self.region {
            Region::Us => "https://us.posthog.com",
            Region::Eu => "https://eu.posthog.com",
            Region::SelfHosted => {
                match self.custom_base_url.as_deref() {
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => url,
                    Some(_) => {
                        return Err(DriverError::Config {
                            key: Some("custom_base_url".into()),
                            message: "must start with http:// or https://".into(),
                        });
                    }
                    None => {
                        return Err(DriverError::Config {
                        key: Some("custom_base_url".into()),
                        message: "region self_hosted needs custom_base_url, the base URL of your PostHog".into(),
                    });
                    }
                }
            }
        };
        Ok(url.trim_end_matches('/').to_owned())
    }

    /// The query endpoint `<base>/api/projects/<id>/query/`.
    pub fn query_url(&self) -> Result<String> {
        Ok(format!(
            "{}/api/projects/{}/query/",
            self.base_url()?,
            self.project_id()?
        ))
    }

    /// The API key.
    pub fn api_key(&self) -> Result<&SecretString> {
        match &self.api_key {
            Some(key) if !key.is_empty() => Ok(key),
            Some(_) => Err(config("api_key", "is empty")),
            None => Err(config(
                "api_key",
                "missing required key `api_key` (give the step a `@posthog.<alias>` connection)",
            )),
        }
    }
}

impl Config {
    /// Whether rows already delivered are dropped.
    pub fn deduplicate(&self) -> Result<bool> {
        match (self.deduplicate, self.deduplication_enabled) {
            (Some(_), Some(_)) => Err(DriverError::Config {
                key: Some("deduplication_enabled".into()),
                message: "deduplication_enabled is the deprecated form of deduplicate: set only deduplicate".into(),
            }),
            (Some(v), None) | (None, Some(v)) => Ok(v),
            (None, None) => Ok(true),
        }
    }

    /// Checks the fields whose rules the types do not express.
    pub fn check(&self) -> Result<()> {
        self.deduplicate()?;
        if !(1..=50_000).contains(&self.page_size) {
            return Err(config("page_size", "must be between 1 and 50000"));
        }
        if self.lookback_window_minutes > 1440 {
            return Err(config(
                "lookback_window_minutes",
                "must be between 0 and 1440",
            ));
        }
        if let Some(events) = &self.event_types {
            if self.data_type != DataType::Events {
                return Err(config(
                    "event_types",
                    "event_types filters events: it needs data_type events",
                ));
            }
            if events.is_empty() || events.iter().any(String::is_empty) {
                return Err(config("event_types", "must list non-empty event names"));
            }
        }
        Ok(())
    }
}

fn config(key: &str, message: &str) -> DriverError {
    DriverError::Config {
        key: Some(key.into()),
        message: message.into(),
    }
}
