//! The HTTP layer shared by every driver that reads or writes an HTTP API (GraphQL, PostHog,
//! Supabase): written once, so retries, secrets, error classes and the JSON -> Arrow path behave
//! the same everywhere.
//!
//! - [`HttpClient`]: one reqwest client (rustls, no OpenSSL) with a whole-request timeout, a
//!   connect timeout, a TLS verification switch, default headers and the retry loop of
//!   [`RetryPolicy`]: exponential backoff with ±20 % jitter on network errors, timeouts, 429 and
//!   5xx, a longer `Retry-After` (seconds or HTTP date) honoured, no retry on other 4xx. Built
//!   with [`HttpClient::for_step`], every retry is an `http.retry` event of the step and
//!   [`HttpClient::report`] writes the `requests_made` and `retries` metrics.
//! - [`Headers`] and [`Auth`]: header values that are secrets (credentials, user headers) are
//!   marked sensitive, never printed by `Debug`, and registered with the run's redactor, so an
//!   echoed token is scrubbed from events, errors and logs.
//! - [`status_error`] / [`HttpResponse::error_for_status`]: a non-2xx response becomes a
//!   classified [`DriverError`](driver_api::DriverError): 401/403 `auth`, 408 `timeout`, other
//!   statuses `remote`, quoting the request (`METHOD scheme://host/path`, never the query) and
//!   the start of the body; no response at all is `connection` or `timeout`.
//! - [`JsonPath`]: `data.users.edges[*].node`-style paths to the records and page info;
//!   [`pick`] reads only a few values (`errors`, the page info) from a body without building
//!   the rest, so a fetch loop can ask for the next page before the page is parsed.
//! - [`records_to_batch`]: one page of JSON records to an Arrow batch with arrow-json (types
//!   inferred per page, nested objects as dotted columns, lists as JSON), and [`PageLoader`]:
//!   pages decoded on a blocking thread and appended by a [`TableWriter`](driver_api::TableWriter)
//!   in [`Widen`](driver_api::SchemaEvolution::Widen) mode, so columns that appear, disappear or
//!   widen between pages are merged by name, fetching overlaps decoding and DuckDB appends, and
//!   the table appears atomically at the end. [`PageLoader::send_body`] hands over a whole body
//!   and leaves parsing to the loader's thread as well.
//!
//! # Example: a paginated JSON API into the step table
//!
//! ```no_run
//! use std::time::Duration;
//! use driver_api::{Result, SecretString, StepContext, StepOutput};
//! use http_support::{
//!     Auth, ClientOptions, Headers, HttpClient, JsonOptions, JsonPath, PageLoader, RetryPolicy,
//! };
//!
//! async fn extract(ctx: &StepContext, url: &str, token: SecretString) -> Result<StepOutput> {
//!     let mut headers = Headers::new();
//!     headers.insert("headers", "Accept", "application/json")?;
//!     Auth::Bearer(token).apply("api_key", &mut headers)?;
//!     let options = ClientOptions {
//!         timeout: Duration::from_secs(30),
//!         headers,
//!         retry: RetryPolicy::new(3, Duration::from_secs(1)),
//!         ..ClientOptions::default()
//!     };
//!     let client = HttpClient::for_step(ctx, &options)?;
//!     let records_at = JsonPath::parse("data_path", "results")?;
//!     let mut loader = PageLoader::for_step(ctx, JsonOptions { flatten: true })?;
//!     let result = async {
//!         let mut offset = 0;
//!         loop {
//!             let request = client.post_json(url, &serde_json::json!({"offset": offset}));
//!             // Retries 429/5xx/network errors; other failures come back classified.
//!             let mut body = client.send(request).await?.json()?;
//!             let serde_json::Value::Array(records) = records_at.take(&mut body)? else {
//!                 break;
//!             };
//!             if records.is_empty() {
//!                 break;
//!             }
//!             offset += records.len();
//!             loader.send(records).await?; // decoded and appended while we fetch on
//!         }
//!         Ok(())
//!     }
//!     .await;
//!     client.report(ctx); // requests_made, retries: also when the step failed
//!     match result {
//!         Ok(()) => {
//!             let summary = loader.finish().await?;
//!             summary.report(ctx); // pages_fetched (the engine writes rows_read)
//!             Ok(StepOutput::table(ctx.output_table().clone(), summary.rows))
//!         }
//!         Err(error) => {
//!             loader.abort().await; // no partial table
//!             Err(error)
//!         }
//!     }
//! }
//! ```
#![warn(missing_docs)]

mod arrow_json;
mod client;
mod headers;
mod pages;
mod path;
mod retry;

pub use arrow_json::{JsonOptions, VALUE_COLUMN, is_json_field, records_to_batch};
pub use client::{ClientOptions, HttpClient, HttpResponse, HttpStats, status_error};
pub use headers::{Auth, Headers};
pub use pages::{LoadSummary, PageLoader};
pub use path::{JsonPath, into_records, pick};
pub use reqwest::{Method, StatusCode};
pub use retry::{RetryPolicy, is_retryable_status, retry_after};
