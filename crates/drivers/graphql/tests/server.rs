//! graphql.extractor against a real GraphQL server (async-graphql over axum on 127.0.0.1).

use std::time::{Duration, Instant};

use driver_api::testing::TestRun;
use driver_api::{DynDriver, ErrorClass, Result, StepOutput};
use driver_graphql::GraphqlExtractor;
use serde_json::{Value, json};
use test_graphql_server::{ServerOptions, TestServer};

const USERS_RELAY: &str = "query($first: Int, $after: String) { users(first: $first, after: $after) { nodes { id name email active balance address { city geo { lat lng } } tags } pageInfo { hasNextPage endCursor } } }";

struct Case {
    dir: tempfile::TempDir,
    run: TestRun,
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        Self { dir, run }
    }

    async fn extract(&self, config: Value) -> Result<StepOutput> {
        self.run.run(&GraphqlExtractor, "gql", config, &[]).await
    }

    fn strings(&self, sql: &str) -> Vec<String> {
        self.run
            .query_strings(sql)
            .into_iter()
            .map(|v| v.unwrap_or_else(|| "NULL".into()))
            .collect()
    }

    fn columns(&self) -> Vec<String> {
        self.strings("SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = 'gql' ORDER BY ordinal_position")
    }

    fn session_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("session").join(name)).unwrap_or_default()
    }
}

async fn server() -> TestServer {
    TestServer::start(ServerOptions::default()).await
}

fn variables(server: &TestServer, mode: &str) -> Vec<Value> {
    server.hits(mode).into_iter().map(|h| h.variables).collect()
}

#[tokio::test]
async fn relay_pages_take_one_request_each_and_flatten_nested_objects() {
    let server = server().await;
    let case = Case::new();
    let out = case
        .extract(json!({
            "endpoint": server.endpoint(""),
            "query": USERS_RELAY,
            "data_path": "data.users.nodes",
            "pagination_style": "relay",
            "pagination_path": "data.users.pageInfo",
            "page_size": 10,
        }))
        .await
        .unwrap();
    assert_eq!(out.rows, 25);
    assert_eq!(
        variables(&server, ""),
        [
            json!({"first": 10}),
            json!({"first": 10, "after": "cursor:9"}),
            json!({"first": 10, "after": "cursor:19"}),
        ],
        "one request per page, cursor from the same response"
    );
    assert_eq!(
        case.columns(),
        [
            "id BIGINT",
            "name VARCHAR",
            "email VARCHAR",
            "active BOOLEAN",
            "balance DOUBLE",
            "address.city VARCHAR",
            "address.geo.lat DOUBLE",
            "address.geo.lng DOUBLE",
            "tags JSON"
        ]
    );
    assert_eq!(
        case.strings("SELECT concat_ws('|', id, name, coalesce(email, '-'), active, balance, \"address.city\", coalesce(\"address.geo.lat\"::VARCHAR, '-'), tags) FROM gql WHERE id IN (3, 5, 7) ORDER BY id"),
        [
            "3|user3|user3@example.com|true|2.5|city2|0.2|[\"t0\",\"t1\"]",
            "5|user5|-|true|5.0|city4|0.4|[\"t0\"]",
            "7|user7|user7@example.com|true|7.5|city6|-|[]",
        ]
    );
    let metrics = case.session_file("metrics.jsonl");
    assert!(
        metrics.contains("\"metric\":\"requests_made\",\"value\":3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\"metric\":\"pages_fetched\",\"value\":3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\"metric\":\"retries\",\"value\":0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn offset_pagination_stops_after_a_short_page() {
    let server = server().await;
    let case = Case::new();
    let out = case
        .extract(json!({
            "endpoint": server.endpoint(""),
            "query": "query($offset: Int, $limit: Int) { items(offset: $offset, limit: $limit) { id name } }",
            "data_path": "data.items",
            "pagination_style": "offset",
            "page_size": 10,
        }))
        .await
        .unwrap();
    assert_eq!(out.rows, 25);
    assert_eq!(
        variables(&server, ""),
        [
            json!({"limit": 10, "offset": 0}),
            json!({"limit": 10, "offset": 10}),
            json!({"limit": 10, "offset": 20}),
        ]
    );
    assert_eq!(
        case.strings("SELECT count(DISTINCT id)::VARCHAR || '/' || max(id) FROM gql"),
        ["25/25"]
    );
}

#[tokio::test]
async fn edges_wildcard_without_flattening_keeps_objects_as_json() {
    let server = server().await;
    let case = Case::new();
    case.extract(json!({
        "endpoint": server.endpoint(""),
        "query": "query($after: String) { users(first: 20, after: $after) { edges { node { id address { city geo { lat } } } } pageInfo { hasNextPage endCursor } } }",
        "data_path": "data.users.edges[*].node",
        "flatten_result": false,
        "pagination_enabled": true,
        "pagination_path": "data.users.pageInfo",
    }))
    .await
    .unwrap();
    assert_eq!(case.columns(), ["id BIGINT", "address JSON"]);
    assert_eq!(
        case.strings("SELECT address->>'$.geo.lat' FROM gql WHERE id = 22"),
        ["2.1"]
    );
    assert_eq!(case.strings("SELECT count(*)::VARCHAR FROM gql"), ["25"]);
}

#[tokio::test]
async fn columns_that_change_between_pages_are_merged_by_name() {
    let server = server().await;
    let case = Case::new();
    case.extract(json!({
        "endpoint": server.endpoint(""),
        "query": "query($after: String) { events(first: 2, after: $after) { nodes { id payload } pageInfo { hasNextPage endCursor } } }",
        "data_path": "data.events.nodes",
        "pagination_style": "relay",
        "pagination_path": "data.events.pageInfo",
    }))
    .await
    .unwrap();
    assert_eq!(server.hits("").len(), 3);
    assert_eq!(
        case.columns(),
        [
            "id BIGINT",
            "payload.kind VARCHAR",
            "payload.value DOUBLE",
            "payload.ref VARCHAR",
            "payload.extra.x BIGINT"
        ]
    );
    assert_eq!(
        case.strings("SELECT concat_ws('|', id, \"payload.value\", \"payload.ref\", coalesce(\"payload.extra.x\"::VARCHAR, '-')) FROM gql ORDER BY id"),
        ["1|0.0|0|-", "2|1.0|1|-", "3|2.0|2|-", "4|3.5|r3|3", "5|4.5|r4|4", "6|5.5|r5|5"]
    );
}

#[tokio::test]
async fn graphql_errors_fail_the_step_with_their_messages_and_leave_no_table() {
    let server = server().await;
    let case = Case::new();
    let err = case
        .extract(json!({
            "endpoint": server.endpoint(""),
            "query": "{ viewer { login } broken }",
            "max_retries": 3,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Remote);
    assert!(
        err.to_string()
            .contains("GraphQL error: the warehouse is on fire (at broken)"),
        "{err}"
    );
    assert_eq!(server.hits("").len(), 1, "GraphQL errors are not retried");
    assert!(!case.run.table_exists("gql"));

    // A query the server rejects (unknown field) fails the same way.
    let err = case
        .extract(json!({"endpoint": server.endpoint(""), "query": "{ nope }"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("GraphQL error: Unknown field \"nope\""),
        "{err}"
    );
}

#[tokio::test]
async fn rate_limit_429_is_retried_after_the_servers_delay() {
    let server = server().await;
    let case = Case::new();
    let started = Instant::now();
    let out = case
        .extract(json!({
            "endpoint": server.endpoint("limited"),
            "query": "{ viewer { login plan { name seats } } }",
            "data_path": "data.viewer",
            "retry_delay": 0.1,
        }))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 honoured"
    );
    assert_eq!(out.rows, 1);
    assert_eq!(
        case.columns(),
        ["login VARCHAR", "plan.name VARCHAR", "plan.seats BIGINT"]
    );
    assert_eq!(server.hits("limited").len(), 2);
    let events = case.session_file("events.jsonl");
    assert!(events.contains("\"event\":\"http.retry\""), "{events}");
    assert!(events.contains("HTTP 429 Too Many Requests"), "{events}");
}

#[tokio::test]
async fn server_errors_are_retried_on_every_page() {
    let server = server().await;
    let case = Case::new();
    let out = case
        .extract(json!({
            "endpoint": server.endpoint("flaky"),
            "query": USERS_RELAY,
            "data_path": "data.users.nodes",
            "pagination_style": "relay",
            "pagination_path": "data.users.pageInfo",
            "page_size": 10,
            "retry_delay": 0.1,
        }))
        .await
        .unwrap();
    assert_eq!(out.rows, 25);
    assert_eq!(
        server.hits("flaky").len(),
        6,
        "each page: one 500, one success"
    );
    assert!(
        case.session_file("metrics.jsonl")
            .contains("\"metric\":\"retries\",\"value\":3")
    );
}

#[tokio::test]
async fn a_server_that_stays_down_fails_after_the_retries() {
    let server = server().await;
    let case = Case::new();
    let err = case
        .extract(json!({
            "endpoint": server.endpoint("down"),
            "query": "{ viewer { login } }",
            "max_retries": 2,
            "retry_delay": 0.1,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Remote);
    assert!(
        err.to_string()
            .contains("HTTP 503 Service Unavailable after 3 attempts: maintenance"),
        "{err}"
    );
    assert!(!case.run.table_exists("gql"));
}

#[tokio::test]
async fn slow_responses_past_the_timeout_fail_as_timeouts() {
    let server = TestServer::start(ServerOptions {
        slow: Duration::from_secs(8),
        ..ServerOptions::default()
    })
    .await;
    let case = Case::new();
    let started = Instant::now();
    let err = case
        .extract(json!({
            "endpoint": server.endpoint("slow"),
            "query": "{ viewer { login } }",
            "timeout": 5,
            "max_retries": 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(7));
    assert!(!case.run.table_exists("gql"));
}

#[tokio::test]
async fn every_auth_type_is_sent_and_no_secret_reaches_the_session() {
    let server = server().await;
    let query = "{ viewer { login } }";
    let configs = [
        json!({"auth_type": "bearer", "auth_token": test_graphql_server::BEARER_TOKEN}),
        json!({"auth_type": "basic", "auth_username": test_graphql_server::BASIC_USER, "auth_password": test_graphql_server::BASIC_PASSWORD}),
        json!({"auth_type": "basic", "auth_username": test_graphql_server::BASIC_USER, "auth_token": test_graphql_server::BASIC_PASSWORD}),
        json!({"auth_type": "api_key", "auth_token": test_graphql_server::API_KEY}),
        json!({"headers": {"X-API-Key": test_graphql_server::API_KEY}}),
    ];
    for auth in configs {
        let case = Case::new();
        let mut config = json!({"endpoint": server.endpoint("private"), "query": query, "data_path": "data.viewer"});
        for (k, v) in auth.as_object().unwrap() {
            config[k] = v.clone();
        }
        let out = case.extract(config.clone()).await;
        assert_eq!(out.unwrap().rows, 1, "{auth}");
        let all = case.session_file("events.jsonl") + &case.session_file("metrics.jsonl");
        for secret in [
            "bearer-secret-123",
            "pw-secret-9",
            "key-secret-42",
            "YW5uOnB3",
        ] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
    }

    let case = Case::new();
    let before = server.hits("private").len();
    let err = case
        .extract(json!({
            "endpoint": server.endpoint("private"),
            "query": query,
            "auth_type": "bearer",
            "auth_token": "wrong-token-0",
        }))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(
        err.to_string()
            .contains("HTTP 401 Unauthorized: GraphQL error: invalid credentials"),
        "{err}"
    );
    assert_eq!(
        server.hits("private").len(),
        before + 1,
        "401 is not retried"
    );
}

#[tokio::test]
async fn user_headers_override_the_defaults() {
    let server = server().await;
    let case = Case::new();
    case.extract(json!({
        "endpoint": server.endpoint("echo"),
        "query": "{ x }",
        "data_path": "data.echo",
        "auth_type": "bearer",
        "auth_token": "tok-overridden",
        "headers": {"Authorization": "Custom abc-123456", "X-Trace": "on"},
    }))
    .await
    .unwrap();
    assert_eq!(
        case.strings("SELECT concat_ws('|', \"authorization\", \"x-trace\", \"content-type\", \"user-agent\") FROM gql"),
        ["Custom abc-123456|on|application/json|osiris-rs/0.1.0"]
    );
}

#[tokio::test]
async fn max_pages_stops_early_with_a_warning_event() {
    let server = server().await;
    let case = Case::new();
    let out = case
        .extract(json!({
            "endpoint": server.endpoint(""),
            "query": USERS_RELAY,
            "data_path": "data.users.nodes",
            "pagination_style": "relay",
            "pagination_path": "data.users.pageInfo",
            "page_size": 10,
            "max_pages": 2,
        }))
        .await
        .unwrap();
    assert_eq!(out.rows, 20);
    assert_eq!(server.hits("").len(), 2);
    assert!(
        case.session_file("events.jsonl")
            .contains("extraction.max_pages_reached")
    );
}

#[tokio::test]
async fn bad_paths_and_bad_responses_fail_clearly() {
    let server = server().await;
    let case = Case::new();
    let err = case
        .extract(json!({
            "endpoint": server.endpoint(""),
            "query": USERS_RELAY,
            "data_path": "data.users.nodes",
            "pagination_style": "relay",
        }))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no page-info object at data.pageInfo"),
        "{err}"
    );
    let err = case
        .extract(json!({
            "endpoint": server.endpoint(""),
            "query": "{ viewer { login } }",
            "data_path": "data.users",
        }))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "path data.users: key \"users\" not found after data (keys there: viewer)"
    );
    let err = case
        .extract(json!({"endpoint": server.endpoint("html"), "query": "{ a }"}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Remote);
    assert!(err.to_string().contains("not JSON"), "{err}");
    assert!(!case.run.table_exists("gql"));
}

#[tokio::test]
async fn empty_results_give_an_empty_value_table() {
    let server = TestServer::start(ServerOptions {
        users: 0,
        ..ServerOptions::default()
    })
    .await;
    let case = Case::new();
    let out = case
        .extract(json!({
            "endpoint": server.endpoint(""),
            "query": "{ items { id } }",
            "data_path": "data.items",
        }))
        .await
        .unwrap();
    assert_eq!(out.rows, 0);
    assert_eq!(case.columns(), ["value VARCHAR"]);
}

#[tokio::test]
async fn doctor_checks_reachability_and_credentials() {
    let server = server().await;
    let connection = |v: Value| v.as_object().unwrap().clone();
    GraphqlExtractor
        .doctor_json(&connection(json!({"endpoint": server.endpoint("")})))
        .await
        .unwrap();
    GraphqlExtractor
        .doctor_json(&connection(json!({
            "endpoint": server.endpoint("private"),
            "auth_type": "bearer",
            "auth_token": test_graphql_server::BEARER_TOKEN,
        })))
        .await
        .unwrap();
    let err = GraphqlExtractor
        .doctor_json(&connection(json!({"endpoint": server.endpoint("private")})))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    // The connection is typed: a key it does not have is refused by name.
    let err = GraphqlExtractor
        .doctor_json(&connection(json!({
            "endpoint": server.endpoint(""),
            "auth_tokn": "x",
        })))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(
        err.to_string()
            .contains("in the connection: unknown field `auth_tokn`"),
        "{err}"
    );
}
