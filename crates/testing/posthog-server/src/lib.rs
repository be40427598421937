//! A PostHog-compatible query endpoint for tests: `POST /api/projects/<id>/query/` with bearer
//! auth, answering HogQL over tables held in an in-memory DuckDB (`events`, `persons`,
//! `sessions`, `person_distinct_ids`). It understands the HogQL this driver sends: string
//! literals with backslash escapes, backtick identifiers, `toDateTime64(text, 6, 'UTC')` and
//! `toUUID(text)`; everything else is the same in DuckDB. Answers as PostHog does:
//! `{"columns", "types", "results", "hasMore"}`, timestamps as RFC 3339 text, 401 for a wrong
//! key, 403 for a key without the query scope, 404 for another project, 429 with Retry-After
//! or 500 for as many requests as a test asks.
#![warn(missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The API key the server accepts.
pub const KEY: &str = "phx_test_personal_key_0123456789";
/// A key that is valid but lacks the `query:read` scope.
pub const KEY_WITHOUT_SCOPE: &str = "phx_test_key_without_query_scope";
/// The one project the server holds.
pub const PROJECT: u64 = 4242;

/// DDL of the tables the server answers from.
const SCHEMA: &str = "
CREATE TABLE events (uuid VARCHAR, event VARCHAR, timestamp TIMESTAMP, distinct_id VARCHAR, person_id VARCHAR, properties VARCHAR);
CREATE TABLE persons (id VARCHAR, created_at TIMESTAMP, is_identified BOOLEAN, properties VARCHAR);
CREATE TABLE sessions (session_id VARCHAR, distinct_id VARCHAR, \"$start_timestamp\" TIMESTAMP, \"$end_timestamp\" TIMESTAMP, \"$pageview_count\" BIGINT, \"$entry_current_url\" VARCHAR);
CREATE TABLE person_distinct_ids (distinct_id VARCHAR, person_id VARCHAR);
CREATE MACRO toDateTime64(s, p, z) AS CAST(s AS TIMESTAMP);
CREATE MACRO toUUID(s) AS s;
";

struct Shared {
    db: Mutex<duckdb::Connection>,
    log: Mutex<Vec<Request>>,
    rate_limited: AtomicU32,
    failing: AtomicU32,
    /// Requests answered so far; from `fail_from` on, every request gets 500.
    served: AtomicU32,
    fail_from: AtomicU32,
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Request {
    /// The HogQL query (empty when the body had none).
    pub query: String,
    /// The status answered.
    pub status: u16,
    /// The Authorization header as received.
    pub authorization: String,
    /// Rows answered.
    pub rows: usize,
}

/// A running server; stops when dropped with the test's runtime.
#[derive(Clone)]
pub struct PostHogServer {
    /// Base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Arc<Shared>,
}

impl PostHogServer {
    /// Starts a server on 127.0.0.1, port 0, with empty tables.
    pub async fn start() -> Self {
        let db = duckdb::Connection::open_in_memory().expect("in-memory duckdb");
        db.execute_batch(SCHEMA).expect("schema");
        let shared = Arc::new(Shared {
            db: Mutex::new(db),
            log: Mutex::new(Vec::new()),
            rate_limited: AtomicU32::new(0),
            failing: AtomicU32::new(0),
            served: AtomicU32::new(0),
            fail_from: AtomicU32::new(u32::MAX),
        });
        let app = axum::Router::new()
            .route("/api/projects/{project}/query/", post(query))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self { url, shared }
    }

    /// Runs SQL on the server's data (to add events, persons, ...).
    pub fn execute(&self, sql: &str) {
        self.shared
            .db
            .lock()
            .unwrap()
            .execute_batch(sql)
            .expect("test data SQL");
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// The next `n` requests get 429 with `Retry-After: 1`.
    pub fn rate_limit_next(&self, n: u32) {
        self.shared.rate_limited.store(n, Ordering::SeqCst);
    }

    /// The next `n` requests get 500.
    pub fn fail_next(&self, n: u32) {
        self.shared.failing.store(n, Ordering::SeqCst);
    }

    /// Answers `n` more requests, then 500 to every one after.
    pub fn fail_after(&self, n: u32) {
        let served = self.shared.served.load(Ordering::SeqCst);
        self.shared.fail_from.store(served + n, Ordering::SeqCst);
    }
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn query(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let hogql = body["query"]["query"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let served = shared.served.fetch_add(1, Ordering::SeqCst);
    let (status, response) = if served >= shared.fail_from.load(Ordering::SeqCst) {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"detail": "A server error occurred."}),
        )
    } else {
        answer(&shared, &project, &authorization, &body)
    };
    shared.log.lock().unwrap().push(Request {
        query: hogql,
        status: status.as_u16(),
        authorization,
        rows: response["results"].as_array().map_or(0, Vec::len),
    });
    if status == StatusCode::TOO_MANY_REQUESTS {
        return (
            status,
            [(header::RETRY_AFTER, "1")],
            Json(json!({"type": "throttled_error", "detail": "Request was throttled. Expected available in 1 second."})),
        )
            .into_response();
    }
    (status, Json(response)).into_response()
}

fn answer(
    shared: &Shared,
    project: &str,
    authorization: &str,
    body: &Value,
) -> (StatusCode, Value) {
    match authorization.strip_prefix("Bearer ") {
        Some(KEY) => {}
        Some(KEY_WITHOUT_SCOPE) => {
            return (
                StatusCode::FORBIDDEN,
                json!({"type": "authentication_error", "code": "permission_denied", "detail": "API key missing required scope 'query:read'"}),
            );
        }
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                json!({"type": "authentication_error", "code": "authentication_failed", "detail": "Incorrect authentication credentials."}),
            );
        }
    }
    if project != PROJECT.to_string() {
        return (
            StatusCode::NOT_FOUND,
            json!({"type": "invalid_request", "code": "not_found", "detail": "Not found."}),
        );
    }
    if take(&shared.rate_limited) {
        return (StatusCode::TOO_MANY_REQUESTS, Value::Null);
    }
    if take(&shared.failing) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"detail": "A server error occurred."}),
        );
    }
    if body["query"]["kind"] != "HogQLQuery" {
        return (
            StatusCode::BAD_REQUEST,
            json!({"type": "validation_error", "detail": "unsupported query kind"}),
        );
    }
    let hogql = body["query"]["query"].as_str().unwrap_or_default();
    let db = shared.db.lock().unwrap();
    match run(&db, &translate(hogql)) {
        Ok(result) => (StatusCode::OK, result),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            json!({"type": "validation_error", "code": "query_error", "detail": error}),
        ),
    }
}

/// HogQL -> DuckDB SQL: backslash-escaped strings become standard literals, backticks double
/// quotes.
fn translate(hogql: &str) -> String {
    let mut out = String::with_capacity(hogql.len());
    let mut chars = hogql.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '`' => {
                let mut text = String::new();
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => match chars.next() {
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            Some('r') => text.push('\r'),
                            Some('0') => text.push('\0'),
                            Some(e) => text.push(e),
                            None => {}
                        },
                        d if d == c => break,
                        d => text.push(d),
                    }
                }
                if c == '\'' {
                    out.push('\'');
                    out.push_str(&text.replace('\'', "''"));
                    out.push('\'');
                } else {
                    out.push('"');
                    out.push_str(&text.replace('"', "\"\""));
                    out.push('"');
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn clickhouse_type(t: &duckdb::arrow::datatypes::DataType) -> &'static str {
    use duckdb::arrow::datatypes::DataType;
    match t {
        DataType::Timestamp(..) => "DateTime64(6, 'UTC')",
        DataType::Boolean => "Bool",
        DataType::Int64 | DataType::Int32 => "Int64",
        DataType::Float64 | DataType::Float32 => "Float64",
        _ => "String",
    }
}

fn run(db: &duckdb::Connection, sql: &str) -> Result<Value, String> {
    use duckdb::types::{TimeUnit, ValueRef};
    let mut stmt = db.prepare(sql).map_err(|e| e.to_string())?;
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut types = Vec::new();
    {
        let stmt = rows.as_ref().expect("statement");
        for i in 0..stmt.column_count() {
            columns.push(stmt.column_name(i).map_err(|e| e.to_string())?.to_owned());
            types.push(clickhouse_type(&stmt.column_type(i)));
        }
    }
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let value = match row.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => Value::Null,
                ValueRef::Boolean(b) => b.into(),
                ValueRef::Int(v) => v.into(),
                ValueRef::BigInt(v) => v.into(),
                ValueRef::Double(v) => v.into(),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                ValueRef::Timestamp(unit, v) => {
                    let micros = match unit {
                        TimeUnit::Second => v * 1_000_000,
                        TimeUnit::Millisecond => v * 1_000,
                        TimeUnit::Microsecond => v,
                        TimeUnit::Nanosecond => v / 1_000,
                    };
                    let ts = jiff::Timestamp::from_microsecond(micros).expect("timestamp in range");
                    ts.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
                        .to_string()
                        .into()
                }
                other => format!("{other:?}").into(),
            };
            values.push(value);
        }
        results.push(Value::Array(values));
    }
    let types: Vec<Value> = columns
        .iter()
        .zip(types)
        .map(|(c, t)| json!([c, t]))
        .collect();
    Ok(json!({"columns": columns, "types": types, "results": results, "hasMore": false}))
}
