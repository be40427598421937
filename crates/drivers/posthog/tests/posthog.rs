//! posthog.extractor against a PostHog-compatible server on 127.0.0.1 (crate test-posthog-server):
//! incremental runs, the lookback window and deduplication, every data type's columns and
//! types, and every failure path.

use std::path::Path;

use driver_api::testing::TestRun;
use driver_api::{Driver, DriverError, DynDriver, ErrorClass, StepContext, StepInputs, StepOutput};
use driver_posthog::PostHogExtractor;
use serde_json::{Value, json};
use test_posthog_server::{KEY, KEY_WITHOUT_SCOPE, PROJECT, PostHogServer};

fn config(server: &PostHogServer, extra: Value) -> Value {
    let mut config = json!({
        "api_key": KEY,
        "project_id": PROJECT.to_string(),
        "region": "self_hosted",
        "custom_base_url": server.url,
        "initial_since": "2024-01-01",
        "max_retries": 2,
        "timeout": 5,
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config
}

/// Runs the driver as step `step` with a stored state, as the runtime does.
async fn run(
    run: &TestRun,
    dir: &Path,
    step: &str,
    config: Value,
    state: Option<Value>,
) -> Result<StepOutput, DriverError> {
    let ctx = StepContext::new(run.execution_context(), step, PostHogExtractor::NAME, dir)?
        .with_state(state);
    PostHogExtractor
        .run_json(&ctx, config, StepInputs::new())
        .await
}

/// Five events on 2024-01-10 between 10:00 and 10:40, ten minutes apart.
fn seed_events(server: &PostHogServer) {
    server.execute(
        "INSERT INTO events VALUES
        ('00000000-0000-0000-0000-000000000001', '$pageview', '2024-01-10 10:00:00', 'd1', 'p1', '{\"$browser\": \"Firefox\", \"plan\": 1}'),
        ('00000000-0000-0000-0000-000000000002', 'signup', '2024-01-10 10:10:00', 'd2', 'p2', '{\"plan\": 2, \"Plan\": \"x\"}'),
        ('00000000-0000-0000-0000-000000000003', '$pageview', '2024-01-10 10:20:00.123456', 'd1', 'p1', '{\"tags\": [\"a\", \"b\"], \"nested\": {\"k\": 1}}'),
        ('00000000-0000-0000-0000-000000000004', 'it''s \\ odd', '2024-01-10 10:30:00', 'd3', NULL, '{}'),
        ('00000000-0000-0000-0000-000000000005', '$pageview', '2024-01-10 10:40:00', 'd1', 'p1', '{\"plan\": 2.5}');",
    );
}

fn strings(run: &TestRun, sql: &str) -> Vec<String> {
    run.query_strings(sql)
        .into_iter()
        .map(|v| v.unwrap_or_else(|| "NULL".into()))
        .collect()
}

fn metric(run: &TestRun, name: &str) -> Vec<Value> {
    let path = run.execution_context().session_dir().join("metrics.jsonl");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["metric"] == name)
        .map(|m| m["value"].clone())
        .collect()
}

#[tokio::test]
async fn events_are_paged_in_order_with_exact_types_and_one_column_per_property() {
    let server = PostHogServer::start().await;
    seed_events(&server);
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    let output = run(
        &test,
        dir.path(),
        "events",
        config(&server, json!({"page_size": 2})),
        None,
    )
    .await
    .unwrap();
    assert_eq!(output.rows, 5);
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "pages of 2, 2 and 1 rows");
    assert_eq!(
        requests.iter().map(|r| r.rows).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    assert!(
        !requests[0].query.contains("uuid > "),
        "the first page does not seek"
    );
    assert!(
        requests[1].query.contains("(timestamp > toDateTime64('2024-01-10 10:10:00.000000', 6, 'UTC') OR (timestamp = toDateTime64('2024-01-10 10:10:00.000000', 6, 'UTC') AND uuid > toUUID('00000000-0000-0000-0000-000000000002')))"),
        "{}",
        requests[1].query
    );
    assert!(
        requests
            .iter()
            .all(|r| r.authorization == format!("Bearer {KEY}"))
    );
    assert_eq!(
        strings(
            &test,
            "SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = 'events' ORDER BY ordinal_position"
        ),
        [
            "uuid VARCHAR",
            "event VARCHAR",
            "timestamp TIMESTAMP",
            "distinct_id VARCHAR",
            "person_id VARCHAR",
            "properties_$browser VARCHAR",
            "properties_plan DOUBLE",
            "properties_Plan_2 VARCHAR",
            "properties_tags VARCHAR",
            "properties_nested VARCHAR",
        ]
    );
    assert_eq!(
        strings(
            &test,
            "SELECT concat_ws('|', uuid[-1:], event, timestamp, coalesce(person_id, 'NULL'), coalesce(properties_plan::VARCHAR, '-'), coalesce(properties_tags, '-'), coalesce(properties_nested, '-')) FROM events ORDER BY timestamp"
        ),
        [
            "1|$pageview|2024-01-10 10:00:00|p1|1.0|-|-",
            "2|signup|2024-01-10 10:10:00|p2|2.0|-|-",
            "3|$pageview|2024-01-10 10:20:00.123456|p1|-|[\"a\",\"b\"]|{\"k\":1}",
            "4|it's \\ odd|2024-01-10 10:30:00|NULL|-|-|-",
            "5|$pageview|2024-01-10 10:40:00|p1|2.5|-|-",
        ]
    );
    assert_eq!(metric(&test, "pages_fetched"), [json!(3)]);
    assert_eq!(metric(&test, "requests_made"), [json!(3)]);
    let state = output.state.expect("events return a state");
    assert_eq!(state["data_type"], "events");
    assert_eq!(
        state["newest"]["id"],
        "00000000-0000-0000-0000-000000000005"
    );
    assert_eq!(state["newest"]["timestamp"], "2024-01-10T10:40:00Z");
    assert_eq!(
        state["recent_ids"],
        json!([
            [
                "2024-01-10T10:30:00Z",
                "00000000-0000-0000-0000-000000000004"
            ],
            [
                "2024-01-10T10:40:00Z",
                "00000000-0000-0000-0000-000000000005"
            ]
        ]),
        "the ids within the 15 minutes before the newest row"
    );
}

#[tokio::test]
async fn the_second_run_reads_only_new_and_late_events_and_drops_those_already_delivered() {
    let server = PostHogServer::start().await;
    seed_events(&server);
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    let first = run(
        &test,
        dir.path(),
        "events",
        config(&server, json!({})),
        None,
    )
    .await
    .unwrap();
    assert_eq!(first.rows, 5);
    // After the first run: one new event, one that arrived late but lies within the lookback
    // window (10:35, 5 minutes before the newest row read), one too late to be seen (10:00).
    server.execute(
        "INSERT INTO events VALUES
        ('00000000-0000-0000-0000-000000000006', 'new', '2024-01-10 11:00:00', 'd1', 'p1', '{}'),
        ('00000000-0000-0000-0000-000000000007', 'late', '2024-01-10 10:35:00', 'd2', 'p2', '{}'),
        ('00000000-0000-0000-0000-000000000008', 'too_late', '2024-01-10 10:00:00', 'd2', 'p2', '{}');",
    );
    server.clear_requests();
    let second = run(
        &test,
        dir.path(),
        "events",
        config(&server, json!({})),
        first.state.clone(),
    )
    .await
    .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0]
            .query
            .contains("timestamp >= toDateTime64('2024-01-10 10:25:00.000000', 6, 'UTC')"),
        "starts 15 minutes before the newest row: {}",
        requests[0].query
    );
    assert_eq!(
        requests[0].rows, 4,
        "10:30 and 10:40 again, the late 10:35, the new 11:00"
    );
    assert_eq!(second.rows, 2);
    assert_eq!(
        strings(&test, "SELECT event FROM events ORDER BY timestamp"),
        ["late", "new"]
    );
    assert_eq!(metric(&test, "rows_deduplicated").last(), Some(&json!(2)));
    let state = second.state.unwrap();
    assert_eq!(
        state["newest"]["id"],
        "00000000-0000-0000-0000-000000000006"
    );
    assert_eq!(
        state["recent_ids"],
        json!([[
            "2024-01-10T11:00:00Z",
            "00000000-0000-0000-0000-000000000006"
        ]])
    );

    // Nothing new: a third run delivers nothing and keeps the cursor.
    let third = run(
        &test,
        dir.path(),
        "events",
        config(&server, json!({})),
        Some(state.clone()),
    )
    .await
    .unwrap();
    assert_eq!(third.rows, 0);
    assert_eq!(third.state.unwrap()["newest"], state["newest"]);
    assert!(
        test.table_exists("events"),
        "an empty run still leaves its (empty) table"
    );

    // Without a state (what --full-refresh hands the driver) everything is read again.
    let full = run(
        &test,
        dir.path(),
        "events",
        config(&server, json!({})),
        None,
    )
    .await
    .unwrap();
    assert_eq!(full.rows, 8);
}

#[tokio::test]
async fn without_deduplication_the_lookback_rows_are_delivered_again() {
    let server = PostHogServer::start().await;
    seed_events(&server);
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    let cfg = config(
        &server,
        json!({"deduplication_enabled": false, "lookback_window_minutes": 20}),
    );
    let first = run(&test, dir.path(), "events", cfg.clone(), None)
        .await
        .unwrap();
    assert!(first.state.as_ref().unwrap().get("recent_ids").is_none());
    let second = run(&test, dir.path(), "events", cfg, first.state)
        .await
        .unwrap();
    assert_eq!(second.rows, 3, "10:20, 10:30 and 10:40 again");
}

#[tokio::test]
async fn event_types_filter_events_including_names_with_quotes() {
    let server = PostHogServer::start().await;
    seed_events(&server);
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    let output = run(
        &test,
        dir.path(),
        "picked",
        config(&server, json!({"event_types": ["signup", "it's \\ odd"]})),
        None,
    )
    .await
    .unwrap();
    assert_eq!(output.rows, 2);
    assert_eq!(
        strings(&test, "SELECT event FROM picked ORDER BY timestamp"),
        ["signup", "it's \\ odd"]
    );
}

#[tokio::test]
async fn persons_sessions_and_distinct_ids_have_their_columns_and_types() {
    let server = PostHogServer::start().await;
    server.execute(
        "INSERT INTO persons VALUES
        ('p1', '2024-01-01 08:00:00', true, '{\"email\": \"a@example.com\", \"age\": 31}'),
        ('p2', '2024-01-02 08:00:00', false, '{}');
        INSERT INTO sessions VALUES
        ('s1', 'd1', '2024-01-10 10:00:00', '2024-01-10 10:30:00', 3, 'https://x.test/'),
        ('s2', 'd2', '2024-01-11 09:00:00', NULL, 1, NULL);
        INSERT INTO person_distinct_ids VALUES ('d1', 'p1'), ('d2', 'p1'), ('d3', 'p2');",
    );
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    let types = |table: &str| {
        strings(
            &test,
            &format!(
                "SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position"
            ),
        )
    };

    let persons = run(
        &test,
        dir.path(),
        "persons",
        config(&server, json!({"data_type": "persons", "page_size": 1})),
        None,
    )
    .await
    .unwrap();
    assert_eq!(persons.rows, 2);
    assert_eq!(
        types("persons"),
        [
            "id VARCHAR",
            "created_at TIMESTAMP",
            "is_identified BOOLEAN",
            "person_properties_email VARCHAR",
            "person_properties_age BIGINT"
        ]
    );
    server.execute("INSERT INTO persons VALUES ('p3', '2024-01-03 08:00:00', true, '{}')");
    server.clear_requests();
    let more = run(
        &test,
        dir.path(),
        "persons",
        config(&server, json!({"data_type": "persons"})),
        persons.state,
    )
    .await
    .unwrap();
    assert_eq!(more.rows, 1, "only the person created since");
    assert!(
        server.requests()[0]
            .query
            .contains("created_at > toDateTime64('2024-01-02 08:00:00.000000', 6, 'UTC')")
    );

    let sessions = run(
        &test,
        dir.path(),
        "sessions",
        config(&server, json!({"data_type": "sessions"})),
        None,
    )
    .await
    .unwrap();
    assert_eq!(sessions.rows, 2);
    assert_eq!(
        types("sessions"),
        [
            "session_id VARCHAR",
            "distinct_id VARCHAR",
            "$start_timestamp TIMESTAMP",
            "$end_timestamp TIMESTAMP",
            "$pageview_count BIGINT",
            "$entry_current_url VARCHAR"
        ]
    );
    assert_eq!(sessions.state.unwrap()["newest"]["id"], "s2");

    let ids = run(
        &test,
        dir.path(),
        "ids",
        config(
            &server,
            json!({"data_type": "person_distinct_ids", "page_size": 2}),
        ),
        None,
    )
    .await
    .unwrap();
    assert_eq!(ids.rows, 3);
    assert_eq!(ids.state, None, "the mapping is read whole every time");
    assert_eq!(
        strings(&test, "SELECT distinct_id || '>' || person_id FROM ids"),
        ["d1>p1", "d2>p1", "d3>p2"]
    );
}

async fn failure(
    server: &PostHogServer,
    extra: Value,
) -> (DriverError, TestRun, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    let error = run(&test, dir.path(), "events", config(server, extra), None)
        .await
        .unwrap_err();
    (error, test, dir)
}

#[tokio::test]
async fn auth_project_and_rate_limit_failures_are_distinct_and_never_show_the_key() {
    let server = PostHogServer::start().await;
    seed_events(&server);

    let (error, test, _dir) = failure(&server, json!({"api_key": "phx_wrong_key_98765"})).await;
    assert_eq!(error.class(), ErrorClass::Auth);
    assert!(
        error
            .to_string()
            .starts_with("PostHog rejected the API key (HTTP 401"),
        "{error}"
    );
    assert!(!test.table_exists("events"));

    let (error, ..) = failure(&server, json!({"api_key": KEY_WITHOUT_SCOPE})).await;
    assert_eq!(error.class(), ErrorClass::Auth);
    assert!(
        error.to_string().contains("HTTP 403") && error.to_string().contains("query:read"),
        "{error}"
    );

    // A non-numeric id goes into the URL as it is (the server knows only project 4242).
    let (error, ..) = failure(&server, json!({"project_id": "@current"})).await;
    assert_eq!(error.class(), ErrorClass::Config);
    assert!(
        error
            .to_string()
            .contains("project not found: PostHog has no project @current at POST http://"),
        "{error}"
    );
    assert!(
        error.to_string().contains("/api/projects/@current/query/"),
        "{error}"
    );

    let (error, ..) = failure(&server, json!({"project_id": 999})).await;
    assert_eq!(error.class(), ErrorClass::Config);
    assert!(
        error
            .to_string()
            .contains("project not found: PostHog has no project 999"),
        "{error}"
    );

    server.clear_requests();
    server.rate_limit_next(10);
    let (error, test, _dir) = failure(&server, json!({"max_retries": 1})).await;
    assert_eq!(error.class(), ErrorClass::Remote);
    assert!(
        error.to_string().contains("HTTP 429 after 2 attempts"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 2, "one retry");
    assert_eq!(metric(&test, "retries"), [json!(1)]);
    server.rate_limit_next(0);

    for (error, _, dir) in [
        failure(&server, json!({"api_key": "phx_wrong_key_98765"})).await,
        failure(&server, json!({"api_key": KEY_WITHOUT_SCOPE})).await,
    ] {
        assert!(!error.to_string().contains("phx_wrong_key_98765"));
        assert!(!error.to_string().contains(KEY_WITHOUT_SCOPE));
        for file in ["events.jsonl", "metrics.jsonl"] {
            let text =
                std::fs::read_to_string(dir.path().join("session").join(file)).unwrap_or_default();
            assert!(!text.contains("phx_"), "{file}: {text}");
        }
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_then_the_run_goes_on() {
    let server = PostHogServer::start().await;
    seed_events(&server);
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    server.rate_limit_next(1);
    server.fail_next(0);
    let started = std::time::Instant::now();
    let output = run(
        &test,
        dir.path(),
        "events",
        config(&server, json!({"page_size": 3})),
        None,
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(output.rows, 5);
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200, 200]);
    assert_eq!(metric(&test, "retries"), [json!(1)]);
    assert_eq!(metric(&test, "requests_made"), [json!(3)]);

    server.clear_requests();
    server.fail_next(1);
    let output = run(
        &test,
        dir.path(),
        "events",
        config(&server, json!({})),
        None,
    )
    .await
    .unwrap();
    assert_eq!(output.rows, 5);
    assert_eq!(
        server
            .requests()
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        [500, 200]
    );
}

#[tokio::test]
async fn a_failure_after_some_pages_leaves_no_partial_table() {
    let server = PostHogServer::start().await;
    seed_events(&server);
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    server.fail_after(1);
    let error = run(
        &test,
        dir.path(),
        "events",
        config(&server, json!({"page_size": 2, "max_retries": 0})),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Remote);
    assert!(error.to_string().contains("HTTP 500"), "{error}");
    assert!(!test.table_exists("events"));
}

#[tokio::test]
async fn max_pages_stops_early_and_the_next_run_continues() {
    let server = PostHogServer::start().await;
    seed_events(&server);
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    let cfg = config(
        &server,
        json!({"page_size": 3, "max_pages": 1, "lookback_window_minutes": 0}),
    );
    let first = run(&test, dir.path(), "events", cfg.clone(), None)
        .await
        .unwrap();
    assert_eq!(first.rows, 3);
    let second = run(&test, dir.path(), "events", cfg, first.state)
        .await
        .unwrap();
    assert_eq!(
        second.rows, 2,
        "the rest; the last row read before is not repeated"
    );
    assert_eq!(
        strings(&test, "SELECT uuid[-1:] FROM events ORDER BY timestamp"),
        ["4", "5"]
    );
}

#[tokio::test]
async fn a_state_that_is_not_ours_is_a_clear_error() {
    let server = PostHogServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let test = TestRun::new(dir.path());
    let error = run(
        &test,
        dir.path(),
        "events",
        config(&server, json!({})),
        Some(json!({"cursor": 5})),
    )
    .await
    .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config);
    assert!(error.to_string().contains("--full-refresh"), "{error}");
    // A state of another data type is ignored: the step reads from initial_since.
    let other =
        json!({"data_type": "persons", "newest": {"timestamp": "2030-01-01T00:00:00Z", "id": "x"}});
    seed_events(&server);
    assert_eq!(
        run(
            &test,
            dir.path(),
            "events",
            config(&server, json!({})),
            Some(other)
        )
        .await
        .unwrap()
        .rows,
        5
    );
}

#[test]
fn spec_and_config_agree() {
    driver_api::testing::assert_spec_matches::<PostHogExtractor>();
}

#[tokio::test]
async fn doctor_checks_key_and_project() {
    let server = PostHogServer::start().await;
    let connection = |key: &str, project: u64| {
        json!({"api_key": key, "project_id": project.to_string(), "region": "self_hosted", "custom_base_url": server.url})
            .as_object()
            .unwrap()
            .clone()
    };
    PostHogExtractor
        .doctor_json(&connection(KEY, PROJECT))
        .await
        .unwrap();
    assert_eq!(server.requests()[0].query, "SELECT 1");
    let error = PostHogExtractor
        .doctor_json(&connection("phx_bad", PROJECT))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Auth);
    let error = PostHogExtractor
        .doctor_json(&connection(KEY, 1))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("project not found"), "{error}");
}
