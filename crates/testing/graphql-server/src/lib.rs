//! A real GraphQL server for tests and benchmarks: async-graphql over axum on 127.0.0.1, port 0.
//!
//! Schema (deterministic data, `users` records and `events` records):
//! - `users(first: Int, after: String): UserConnection!` — Relay: `nodes`, `edges { cursor node }`,
//!   `pageInfo { hasNextPage endCursor }`, `totalCount`. A `User` has `id`, `name`, `email`
//!   (null for every 5th), `active`, `balance` (a float), `address { city geo { lat lng } }`
//!   (geo null for every 7th) and `tags` (a list).
//! - `items(offset: Int, limit: Int): [User!]!` — offset/limit pagination over the same users.
//! - `events(first: Int, after: String): EventConnection!` — records whose JSON `payload`
//!   changes shape between pages: the first three have `{kind, value: int, ref: int}`, later
//!   ones `{kind, value: float, ref: string, extra: {x}}`.
//! - `broken: String` — always fails, so the response carries `errors`.
//! - `viewer: Viewer!` — one object (`login`, `plan { name seats }`).
//!
//! The endpoint is `/graphql`; `/graphql/<mode>` misbehaves on purpose: `flaky` answers every
//! other request (the 1st, 3rd, ...) with HTTP 500, `limited` answers the first request with
//! 429 and `Retry-After: 1`, `slow` waits [`ServerOptions::slow`] before answering, `down`
//! always answers 503, `html` answers 200 with an HTML page, `private` requires one of
//! [`BEARER_TOKEN`], [`BASIC_USER`]/[`BASIC_PASSWORD`] or [`API_KEY`] in [`API_KEY_HEADER`]
//! (else 401 with a GraphQL error body), `echo` answers `{"data": {"echo": <the request's
//! headers>}}`. Every request is recorded (mode, variables) for assertions.
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Json, Object, Result, Schema, SimpleObject,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Accepted by `/graphql/private` as `Authorization: Bearer <token>`.
pub const BEARER_TOKEN: &str = "bearer-secret-123";
/// Accepted by `/graphql/private` with [`BASIC_PASSWORD`] as basic authentication.
pub const BASIC_USER: &str = "ann";
/// See [`BASIC_USER`].
pub const BASIC_PASSWORD: &str = "pw-secret-9";
const BASIC_HEADER: &str = "Basic YW5uOnB3LXNlY3JldC05";
/// Header carrying [`API_KEY`] for `/graphql/private`.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Accepted by `/graphql/private` in [`API_KEY_HEADER`].
pub const API_KEY: &str = "key-secret-42";

/// What the server serves.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Number of users.
    pub users: usize,
    /// Number of events.
    pub events: usize,
    /// How long `/graphql/slow` waits before answering.
    pub slow: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            users: 25,
            events: 6,
            slow: Duration::from_secs(3),
        }
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The mode (`""` for `/graphql`).
    pub mode: String,
    /// The request's `variables`.
    pub variables: Value,
}

#[derive(Clone)]
struct AppState {
    schema: Schema<Query, EmptyMutation, EmptySubscription>,
    hits: Arc<Mutex<Vec<Hit>>>,
    options: ServerOptions,
}

/// A running server.
#[derive(Clone)]
pub struct TestServer {
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("base", &self.base)
            .finish()
    }
}

impl TestServer {
    /// Starts a server on 127.0.0.1 (a free port) on the current tokio runtime.
    pub async fn start(options: ServerOptions) -> Self {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .data(Dataset {
                users: options.users,
                events: options.events,
            })
            .finish();
        let state = AppState {
            schema,
            hits: Arc::clone(&hits),
            options,
        };
        let app = Router::new()
            .route("/graphql", post(graphql_plain))
            .route("/graphql/{mode}", post(graphql_mode))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}"),
            hits,
        }
    }

    /// The endpoint URL of `mode` (`""` for the well-behaved `/graphql`).
    pub fn endpoint(&self, mode: &str) -> String {
        if mode.is_empty() {
            format!("{}/graphql", self.base)
        } else {
            format!("{}/graphql/{mode}", self.base)
        }
    }

    /// The requests received on `mode`, in order.
    pub fn hits(&self, mode: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|h| h.mode == mode)
            .cloned()
            .collect()
    }
}

/// A server running on its own runtime, for synchronous tests (e.g. running the `osiris`
/// binary) and benchmarks. Stops when dropped.
pub struct BackgroundServer {
    server: TestServer,
    _runtime: tokio::runtime::Runtime,
}

impl BackgroundServer {
    /// Starts the server on a new two-thread runtime.
    pub fn start(options: ServerOptions) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let server = runtime.block_on(TestServer::start(options));
        Self {
            server,
            _runtime: runtime,
        }
    }
}

impl std::ops::Deref for BackgroundServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

async fn graphql_plain(state: State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    handle(state, String::new(), headers, body).await
}

async fn graphql_mode(
    state: State<AppState>,
    Path(mode): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, mode, headers, body).await
}

async fn handle(
    State(state): State<AppState>,
    mode: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("bad request body: {e}")).into_response();
        }
    };
    let seen = {
        let mut hits = state.hits.lock().unwrap_or_else(|p| p.into_inner());
        let seen = hits.iter().filter(|h| h.mode == mode).count();
        hits.push(Hit {
            mode: mode.clone(),
            variables: serde_json::to_value(&request.variables).unwrap_or(Value::Null),
        });
        seen
    };
    match mode.as_str() {
        "flaky" if seen.is_multiple_of(2) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "temporary failure").into_response();
        }
        "limited" if seen == 0 => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "rate limited",
            )
                .into_response();
        }
        "slow" => tokio::time::sleep(state.options.slow).await,
        "down" => return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response(),
        "html" => {
            return (
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body>login page</body></html>",
            )
                .into_response();
        }
        "private" if !authorized(&headers) => {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"errors": [{"message": "invalid credentials"}]})),
            )
                .into_response();
        }
        "echo" => {
            let echoed: BTreeMap<String, String> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            return axum::Json(json!({"data": {"echo": echoed}})).into_response();
        }
        _ => {}
    }
    axum::Json(state.schema.execute(request).await).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = format!("Bearer {BEARER_TOKEN}");
    get("authorization") == Some(bearer.as_str())
        || get("authorization") == Some(BASIC_HEADER)
        || get(API_KEY_HEADER) == Some(API_KEY)
}

struct Dataset {
    users: usize,
    events: usize,
}

/// Geographic position.
#[derive(SimpleObject)]
struct Geo {
    lat: f64,
    lng: f64,
}

/// A postal address.
#[derive(SimpleObject)]
struct Address {
    city: String,
    geo: Option<Geo>,
}

/// A user.
#[derive(SimpleObject)]
struct User {
    id: i64,
    name: String,
    email: Option<String>,
    active: bool,
    balance: f64,
    address: Address,
    tags: Vec<String>,
}

fn user(i: usize) -> User {
    User {
        id: i as i64 + 1,
        name: format!("user{}", i + 1),
        email: (i % 5 != 4).then(|| format!("user{}@example.com", i + 1)),
        active: i.is_multiple_of(2),
        balance: i as f64 * 1.25,
        address: Address {
            city: format!("city{}", i % 10),
            geo: (i % 7 != 6).then(|| Geo {
                lat: i as f64 / 10.0,
                lng: -(i as f64) / 10.0,
            }),
        },
        tags: (0..i % 3).map(|t| format!("t{t}")).collect(),
    }
}

/// Relay page information.
#[derive(SimpleObject)]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// An edge of a user connection.
#[derive(SimpleObject)]
struct UserEdge {
    cursor: String,
    node: User,
}

/// One page of users.
struct UserConnection {
    start: usize,
    end: usize,
    total: usize,
}

#[Object]
impl UserConnection {
    async fn nodes(&self) -> Vec<User> {
        (self.start..self.end).map(user).collect()
    }
    async fn edges(&self) -> Vec<UserEdge> {
        (self.start..self.end)
            .map(|i| UserEdge {
                cursor: cursor(i),
                node: user(i),
            })
            .collect()
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.end < self.total,
            end_cursor: (self.end > self.start).then(|| cursor(self.end - 1)),
        }
    }
    async fn total_count(&self) -> i64 {
        self.total as i64
    }
}

/// An event whose payload changes shape.
#[derive(SimpleObject)]
struct Event {
    id: i64,
    payload: Json<Value>,
}

/// One page of events.
struct EventConnection {
    start: usize,
    end: usize,
    total: usize,
}

#[Object]
impl EventConnection {
    async fn nodes(&self) -> Vec<Event> {
        (self.start..self.end)
            .map(|i| Event {
                id: i as i64 + 1,
                payload: Json(if i < 3 {
                    json!({"kind": "click", "value": i, "ref": i})
                } else {
                    json!({"kind": "view", "value": i as f64 + 0.5, "ref": format!("r{i}"), "extra": {"x": i}})
                }),
            })
            .collect()
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.end < self.total,
            end_cursor: (self.end > self.start).then(|| cursor(self.end - 1)),
        }
    }
}

/// The signed-in account.
#[derive(SimpleObject)]
struct Viewer {
    login: String,
    plan: Plan,
}

/// A plan.
#[derive(SimpleObject)]
struct Plan {
    name: String,
    seats: i32,
}

fn cursor(index: usize) -> String {
    format!("cursor:{index}")
}

fn page(first: Option<i32>, after: Option<String>, total: usize) -> Result<(usize, usize)> {
    let start = match after {
        None => 0,
        Some(c) => {
            let index: usize = c
                .strip_prefix("cursor:")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| async_graphql::Error::new(format!("invalid cursor {c:?}")))?;
            index + 1
        }
    };
    let first = first.unwrap_or(10).max(0) as usize;
    let start = start.min(total);
    Ok((start, (start + first).min(total)))
}

/// The query root.
struct Query;

#[Object]
impl Query {
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<UserConnection> {
        let total = ctx.data::<Dataset>()?.users;
        let (start, end) = page(first, after, total)?;
        Ok(UserConnection { start, end, total })
    }

    async fn items(
        &self,
        ctx: &Context<'_>,
        offset: Option<i32>,
        limit: Option<i32>,
    ) -> Result<Vec<User>> {
        let total = ctx.data::<Dataset>()?.users;
        let start = (offset.unwrap_or(0).max(0) as usize).min(total);
        let end = (start + limit.unwrap_or(10).max(0) as usize).min(total);
        Ok((start..end).map(user).collect())
    }

    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<EventConnection> {
        let total = ctx.data::<Dataset>()?.events;
        let (start, end) = page(first, after, total)?;
        Ok(EventConnection { start, end, total })
    }

    async fn broken(&self) -> Result<Option<String>> {
        Err(async_graphql::Error::new("the warehouse is on fire"))
    }

    async fn viewer(&self) -> Viewer {
        Viewer {
            login: "ann".into(),
            plan: Plan {
                name: "team".into(),
                seats: 5,
            },
        }
    }
}
