//! `posthog.extractor`: events, persons, sessions or person distinct ids of one PostHog project
//! into the step's table, through PostHog's HogQL query API.
//!
//! Each page is one `POST <base>/api/projects/<id>/query/` with
//! `{"query": {"kind": "HogQLQuery", "query": "SELECT ... ORDER BY <ts>, <id> LIMIT n"}}` and the
//! API key as bearer token, sent through the shared HTTP layer (retries with backoff on network
//! errors, 429 and 5xx; secrets never logged). Pages continue after the last row of the previous
//! one (seek pagination). Each page becomes an Arrow batch (typed id/timestamp columns, one
//! column per property) streamed to the table writer, which merges pages by column name and
//! commits the table atomically at the end.
//!
//! Incremental: the step returns a [`State`](state::State) (newest row read, ids within the
//! lookback window); the runtime stores it after a successful run and hands it back next time
//! (ADR 0017). The next run of events or sessions starts `lookback_window_minutes` before the
//! newest row, so late-arriving rows are read, and drops the rows it delivered before.
#![warn(missing_docs)]

mod config;
mod page;
mod query;
mod state;

use std::collections::HashSet;

use async_trait::async_trait;
use driver_api::{
    Driver, DriverError, Result, SchemaEvolution, StepContext, StepInputs, StepOutput, TableWriter,
};
use execution_context::object;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

pub use config::{Config, DataType, PostHogConnection, ProjectId, Region};
use page::{Converter, Page, parse_timestamp};
use query::{Seek, Window, page_query, sort_key};
use state::{Newest, State};

/// The `posthog.extractor` driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct PostHogExtractor;

/// Days read by a first run without `initial_since`.
const DEFAULT_DAYS: i64 = 30;

#[async_trait]
impl Driver for PostHogExtractor {
    const NAME: &'static str = "posthog.extractor";
    type Connection = PostHogConnection;
    type Config = Config;

    /// One `SELECT 1` query with the connection's key, project and region, no retries.
    async fn doctor(&self, connection: &PostHogConnection) -> Result<()> {
        connection.check()?;
        let client = http::Client::new(None, connection, 10, 0)?;
        let body = json!({"query": {"kind": "HogQLQuery", "query": "SELECT 1"}});
        client.query(&body).await.map(drop)
    }

    async fn run(
        &self,
        ctx: &StepContext,
        connection: PostHogConnection,
        config: Config,
        _inputs: StepInputs,
    ) -> Result<StepOutput> {
        connection.check()?;
        config.check()?;
        let dedup = config.deduplicate()?;
        let data_type = config.data_type;
        let previous = match State::from_stored(ctx.state(), data_type) {
            Ok(state) => state,
            Err(message) => {
                return Err(DriverError::Config {
                    key: None,
                    message: format!(
                        "the stored incremental state of this step is not a posthog.extractor state ({message}); run with --full-refresh"
                    ),
                });
            }
        };
        if ctx.state().is_some() && previous.is_none() {
            ctx.event(
                "state_ignored",
                object([("reason", "the stored state is of another data_type".into())]),
            );
        }
        let plan = Plan::new(&config, previous.as_ref(), Timestamp::now())?;
        let client = http::Client::new(Some(ctx), &connection, config.timeout, config.max_retries)?;
        ctx.event(
            "extraction.start",
            object([
                ("data_type", data_type.as_str().into()),
                ("incremental", previous.is_some().into()),
                ("since", plan.window.since.map(|t| t.to_string()).into()),
                ("until", plan.window.until.map(|t| t.to_string()).into()),
            ]),
        );
        let mut extraction = Extraction {
            converter: Converter::new(data_type),
            seen: if dedup {
                previous
                    .iter()
                    .flat_map(|s| s.recent_ids.iter().map(|(_, id)| id.clone()))
                    .collect()
            } else {
                HashSet::new()
            },
            dedup,
            newest: previous.as_ref().and_then(|s| s.newest.clone()),
            recent: previous.map(|s| s.recent_ids).unwrap_or_default(),
            deduplicated: 0,
            pages: 0,
        };
        let mut writer = None;
        let result = extraction
            .read_all(ctx, &config, &client, &plan, &mut writer)
            .await;
        client.report(ctx);
        ctx.metric("pages_fetched", extraction.pages);
        let rows = match (result, writer) {
            (Ok(()), Some(writer)) => writer.finish().await?,
            (Ok(()), None) => return Err(DriverError::internal("no page was read")),
            (Err(error), Some(writer)) => {
                writer.abort().await;
                return Err(error);
            }
            (Err(error), None) => return Err(error),
        };
        ctx.metric("rows_deduplicated", extraction.deduplicated);
        ctx.event(
            "extraction.complete",
            object([
                ("data_type", data_type.as_str().into()),
                ("rows", rows.into()),
                ("pages", extraction.pages.into()),
                ("rows_deduplicated", extraction.deduplicated.into()),
            ]),
        );
        let output = StepOutput::table(ctx.output_table().clone(), rows);
        Ok(match data_type {
            DataType::PersonDistinctIds => output,
            _ => output.with_state(extraction.state(data_type, &config).to_value()),
        })
    }
}

/// What one run reads: the window and where the first page starts.
#[derive(Debug)]
struct Plan {
    window: Window,
    start: Option<Seek>,
}

impl Plan {
    fn new(config: &Config, previous: Option<&State>, now: Timestamp) -> Result<Self> {
        let newest = previous.and_then(|s| s.newest.as_ref());
        let lookback = SignedDuration::from_mins(i64::from(config.lookback_window_minutes));
        let initial = || -> Result<Timestamp> {
            match &config.initial_since {
                Some(text) => parse_timestamp(&Value::String(text.clone()))
                    .or_else(|| {
                        let date: jiff::civil::Date = text.parse().ok()?;
                        date.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
                    })
                    .ok_or_else(|| DriverError::Config {
                        key: Some("initial_since".into()),
                        message: format!("{text:?} is not an ISO 8601 date or timestamp, e.g. 2024-01-01 or 2024-01-01T00:00:00Z"),
                    }),
                None => Ok(now - SignedDuration::from_hours(24 * DEFAULT_DAYS)),
            }
        };
        let event_types = config.event_types.clone();
        Ok(match config.data_type {
            DataType::Events | DataType::Sessions => Self {
                window: Window {
                    since: Some(match newest {
                        Some(n) => n.timestamp - lookback,
                        None => initial()?,
                    }),
                    until: Some(now),
                    event_types,
                },
                start: None,
            },
            DataType::Persons => Self {
                window: Window {
                    since: None,
                    until: None,
                    event_types: None,
                },
                start: newest.map(|n| Seek::Time(n.timestamp, n.id.clone())),
            },
            DataType::PersonDistinctIds => Self {
                window: Window {
                    since: None,
                    until: None,
                    event_types: None,
                },
                start: None,
            },
        })
    }
}

/// The progress of one run.
struct Extraction {
    converter: Converter,
    seen: HashSet<String>,
    dedup: bool,
    newest: Option<Newest>,
    recent: Vec<(Timestamp, String)>,
    deduplicated: u64,
    pages: u64,
}

impl Extraction {
    async fn read_all(
        &mut self,
        ctx: &StepContext,
        config: &Config,
        client: &http::Client,
        plan: &Plan,
        writer: &mut Option<TableWriter>,
    ) -> Result<()> {
        let data_type = config.data_type;
        let (ts_column, id_column) = sort_key(data_type);
        let mut after = plan.start.clone();
        loop {
            ctx.check_cancelled()?;
            let hogql = page_query(data_type, &plan.window, after.as_ref(), config.page_size);
            let body = json!({"query": {"kind": "HogQLQuery", "query": hogql}});
            let response = client.query(&body).await?;
            let page = Page::parse(response)?;
            self.pages += 1;
            let (ts_index, id_index) = (page.column(ts_column)?, page.column(id_column)?);
            let mut keep = Vec::with_capacity(page.rows.len());
            for (index, row) in page.rows.iter().enumerate() {
                let id = match &row[id_index] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                if data_type == DataType::PersonDistinctIds {
                    let person = row[ts_index].as_str().unwrap_or_default().to_owned();
                    after = Some(Seek::Text(person, id));
                    keep.push(index);
                    continue;
                }
                let ts = parse_timestamp(&row[ts_index]).ok_or_else(|| DriverError::Data {
                    message: format!(
                        "column `{ts_column}` of row {id:?} holds {}, not a timestamp",
                        row[ts_index]
                    ),
                })?;
                after = Some(Seek::Time(ts, id.clone()));
                if self.dedup && !self.seen.insert(id.clone()) {
                    self.deduplicated += 1;
                    continue;
                }
                keep.push(index);
                if self
                    .newest
                    .as_ref()
                    .is_none_or(|n| (ts, id.as_str()) > (n.timestamp, n.id.as_str()))
                {
                    self.newest = Some(Newest {
                        timestamp: ts,
                        id: id.clone(),
                    });
                }
                if self.dedup && data_type != DataType::Persons {
                    self.recent.push((ts, id));
                }
            }
            let batch = self.converter.batch(&page, &keep)?;
            match writer {
                Some(w) => w.send(batch).await?,
                None => {
                    let mut w =
                        TableWriter::for_step_with(ctx, batch.schema(), SchemaEvolution::Widen)?;
                    w.send(batch).await?;
                    *writer = Some(w);
                }
            }
            let last_page = page.rows.len() < config.page_size as usize;
            if last_page || (config.max_pages > 0 && self.pages >= u64::from(config.max_pages)) {
                return Ok(());
            }
        }
    }

    /// The state for the next run: the newest row, and the ids within the lookback window
    /// before it (events and sessions with deduplication).
    fn state(&mut self, data_type: DataType, config: &Config) -> State {
        let lookback = SignedDuration::from_mins(i64::from(config.lookback_window_minutes));
        let recent_ids = match (&self.newest, self.dedup, data_type) {
            (Some(newest), true, DataType::Events | DataType::Sessions) => {
                let from = newest.timestamp - lookback;
                let mut recent: Vec<(Timestamp, String)> = std::mem::take(&mut self.recent)
                    .into_iter()
                    .filter(|(ts, _)| *ts >= from)
                    .collect();
                recent.sort();
                recent.dedup();
                recent
            }
            _ => Vec::new(),
        };
        State {
            data_type,
            newest: self.newest.clone(),
            recent_ids,
        }
    }
}

mod http {
    //! The query endpoint through the shared HTTP layer, with PostHog's statuses explained.

    use std::time::Duration;

    use driver_api::{DriverError, Result, StepContext};
    use http_support::{Auth, ClientOptions, Headers, HttpClient, HttpResponse, RetryPolicy};
    use serde_json::Value;

    use crate::PostHogConnection;

    /// A client for one project's query endpoint.
    pub struct Client {
        http: HttpClient,
        url: String,
        project_id: String,
    }

    impl Client {
        /// A client sending the connection's API key as bearer token, with `timeout` seconds
        /// per request and `max_retries`; `ctx` (a step) gets retry events, cancellation and
        /// the key registered for redaction.
        pub fn new(
            ctx: Option<&StepContext>,
            connection: &PostHogConnection,
            timeout: u64,
            max_retries: u32,
        ) -> Result<Self> {
            let mut headers = Headers::new();
            Auth::Bearer(connection.api_key()?.clone()).apply("api_key", &mut headers)?;
            let options = ClientOptions {
                timeout: Duration::from_secs(timeout),
                headers,
                retry: RetryPolicy::new(max_retries, Duration::from_secs(1)),
                ..ClientOptions::default()
            };
            Ok(Self {
                http: match ctx {
                    Some(ctx) => HttpClient::for_step(ctx, &options)?,
                    None => HttpClient::new(&options)?,
                },
                url: connection.query_url()?,
                project_id: connection.project_id()?,
            })
        }

        /// Runs one query and returns the response body.
        pub async fn query(&self, body: &Value) -> Result<Value> {
            let response = self
                .http
                .execute(self.http.post_json(&self.url, body))
                .await?;
            if response.is_success() {
                return response.json();
            }
            Err(self.error(&response))
        }

        /// Writes the `requests_made` and `retries` metrics.
        pub fn report(&self, ctx: &StepContext) {
            self.http.report(ctx);
        }

        fn error(&self, response: &HttpResponse) -> DriverError {
            let detail = response
                .json()
                .ok()
                .and_then(|b| b.get("detail").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| response.body_excerpt());
            let attempts = match response.attempts {
                1 => String::new(),
                n => format!(" after {n} attempts"),
            };
            let target = &response.target;
            match response.status.as_u16() {
                401 => DriverError::Auth {
                    message: format!(
                        "PostHog rejected the API key (HTTP 401 from {target}): {detail}; check api_key of the connection (a personal API key, phx_...)"
                    ),
                },
                403 => DriverError::Auth {
                    message: format!(
                        "the API key may not query project {} (HTTP 403 from {target}): {detail}; it needs the query:read scope and access to the project",
                        self.project_id
                    ),
                },
                404 => DriverError::Config {
                    key: Some("project_id".into()),
                    message: format!(
                        "project not found: PostHog has no project {} at {target} (HTTP 404); check project_id and region / custom_base_url",
                        self.project_id
                    ),
                },
                429 => DriverError::Remote {
                    message: format!(
                        "PostHog kept rate limiting the queries (HTTP 429{attempts}): {detail}; raise max_retries, lower the run frequency or use a larger page_size"
                    ),
                },
                400 => DriverError::Remote {
                    message: format!(
                        "PostHog rejected the query (HTTP 400 from {target}): {detail}"
                    ),
                },
                _ => http_support::status_error(response),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_matches_the_spec() {
        driver_api::testing::assert_spec_matches::<PostHogExtractor>();
    }

    fn parts(extra: Value) -> (PostHogConnection, Config) {
        let mut base = json!({"api_key": "k", "project_id": "1"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        driver_api::split_config(base).unwrap()
    }

    fn config(extra: Value) -> Config {
        parts(extra).1
    }

    fn connection(extra: Value) -> PostHogConnection {
        parts(extra).0
    }

    #[test]
    fn incremental_runs_start_the_lookback_before_the_newest_row() {
        let now: Timestamp = "2024-02-01T00:00:00Z".parse().unwrap();
        let first = Plan::new(&config(json!({"initial_since": "2024-01-05"})), None, now).unwrap();
        assert_eq!(
            first.window.since,
            Some("2024-01-05T00:00:00Z".parse().unwrap())
        );
        assert_eq!(first.window.until, Some(now));
        let default = Plan::new(&config(json!({})), None, now).unwrap();
        assert_eq!(
            default.window.since,
            Some("2024-01-02T00:00:00Z".parse().unwrap())
        );
        let state = State {
            data_type: DataType::Events,
            newest: Some(Newest {
                timestamp: "2024-01-20T12:00:00Z".parse().unwrap(),
                id: "u".into(),
            }),
            recent_ids: Vec::new(),
        };
        let next = Plan::new(
            &config(json!({"lookback_window_minutes": 30})),
            Some(&state),
            now,
        )
        .unwrap();
        assert_eq!(
            next.window.since,
            Some("2024-01-20T11:30:00Z".parse().unwrap())
        );
        assert_eq!(next.start, None);
        let persons =
            Plan::new(&config(json!({"data_type": "persons"})), Some(&state), now).unwrap();
        assert_eq!(
            persons.start,
            Some(Seek::Time(
                "2024-01-20T12:00:00Z".parse().unwrap(),
                "u".into()
            ))
        );
        let bad = Plan::new(&config(json!({"initial_since": "yesterday"})), None, now).unwrap_err();
        assert!(bad.to_string().contains("initial_since"), "{bad}");
    }

    #[test]
    fn config_rules_name_their_key() {
        let cases = [
            (json!({"region": "self_hosted"}), "custom_base_url"),
            (
                json!({"deduplicate": true, "deduplication_enabled": true}),
                "deduplication_enabled",
            ),
            (
                json!({"data_type": "persons", "event_types": ["a"]}),
                "event_types",
            ),
            (json!({"project_id": "12/a"}), "project_id"),
            (json!({"project_id": ""}), "project_id"),
            (json!({"project_id": "0"}), "project_id"),
        ];
        for (extra, key) in cases {
            let (connection, config) = parts(extra);
            let error = connection.check().and(config.check()).unwrap_err();
            assert!(
                matches!(&error, DriverError::Config { key: Some(k), .. } if k == key),
                "{error}"
            );
        }
        let hosted = connection(
            json!({"region": "self_hosted", "custom_base_url": "http://ph.local:8000/"}),
        );
        assert_eq!(
            hosted.query_url().unwrap(),
            "http://ph.local:8000/api/projects/1/query/"
        );
        assert_eq!(
            connection(json!({"region": "eu", "project_id": 7}))
                .query_url()
                .unwrap(),
            "https://eu.posthog.com/api/projects/7/query/"
        );
        // The Python spec took any string; PostHog takes @current for the key's project.
        assert_eq!(
            connection(json!({"project_id": "@current"}))
                .query_url()
                .unwrap(),
            "https://us.posthog.com/api/projects/@current/query/"
        );
    }
}
