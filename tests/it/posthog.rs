//! `osiris run` with posthog.extractor against a PostHog-compatible server in this process:
//! the state store end to end (saved only after a successful run, fed back next time, ignored
//! with --full-refresh) and the API key kept out of every output.

use std::path::Path;

use test_posthog_server::{KEY, PROJECT, PostHogServer};

use crate::common::{Project, jsonl, rows};

const PIPELINE: &str = r#"
oml_version: "0.1.0"
name: posthog-events
params:
  min_count: 1
steps:
  - id: events
    component: posthog.extractor
    mode: read
    config:
      connection: "@posthog.main"
      initial_since: "2024-01-01"
      page_size: 2
  - id: summary
    component: duckdb.processor
    mode: transform
    needs: [events]
    config:
      query: SELECT event, count(*) AS n FROM events GROUP BY event HAVING count(*) >= ${params.min_count}
"#;

fn connections(url: &str) -> String {
    format!(
        "connections:\n  posthog:\n    main:\n      api_key: ${{POSTHOG_API_KEY}}\n      project_id: \"{PROJECT}\"\n      region: self_hosted\n      custom_base_url: {url}\n"
    )
}

fn state_file(project: &Project) -> std::path::PathBuf {
    project
        .path()
        .join(".osiris/state/posthog-events/events.json")
}

fn latest_session(project: &Project) -> std::path::PathBuf {
    project.sessions().pop().expect("a session")
}

fn no_key_below(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            no_key_below(&path);
        } else if path
            .extension()
            .is_some_and(|e| e != "duckdb" && e != "wal")
        {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(!text.contains(KEY), "{} holds the API key", path.display());
        }
    }
}

#[test]
fn incremental_runs_save_state_only_after_success_and_full_refresh_starts_over() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(PostHogServer::start());
    server.execute(
        "INSERT INTO events VALUES
        ('00000000-0000-0000-0000-000000000001', 'a', '2024-01-10 10:00:00', 'd1', 'p1', '{\"plan\": 1}'),
        ('00000000-0000-0000-0000-000000000002', 'b', '2024-01-10 10:10:00', 'd1', 'p1', '{}'),
        ('00000000-0000-0000-0000-000000000003', 'a', '2024-01-10 10:20:00', 'd2', 'p2', '{}');",
    );
    let project = Project::new();
    project.write("pipeline.yaml", PIPELINE);
    project.write("osiris_connections.yaml", connections(&server.url));
    let env = [("POSTHOG_API_KEY", KEY)];

    // A later step fails: the extractor's cursor must not move past rows nobody consumed.
    let failed = project.osiris_env(
        &[
            "run",
            "pipeline.yaml",
            "--param",
            // A value, not SQL (parameters are literals): the comparison fails at run time.
            "min_count=not a number",
        ],
        &env,
    );
    assert_eq!(failed.code, 1, "{}", failed.all());
    assert!(
        !state_file(&project).exists(),
        "no state after a failed run"
    );
    let events = jsonl(&latest_session(&project).join("events.jsonl"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "state_discarded" && e["steps"][0] == "events")
    );

    let first = project.osiris_env(&["run", "pipeline.yaml"], &env);
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(
        first.stdout.contains("State saved for events"),
        "{}",
        first.stdout
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state_file(&project)).unwrap()).unwrap();
    assert_eq!(state["component"], "posthog.extractor");
    assert_eq!(
        state["state"]["newest"]["id"],
        "00000000-0000-0000-0000-000000000003"
    );
    assert_eq!(
        rows(&latest_session(&project), "SELECT count(*) FROM events"),
        ["3"]
    );

    // New and late events arrive; the next run reads from 15 minutes before the newest row.
    server.execute(
        "INSERT INTO events VALUES
        ('00000000-0000-0000-0000-000000000004', 'late', '2024-01-10 10:15:00', 'd3', 'p3', '{}'),
        ('00000000-0000-0000-0000-000000000005', 'new', '2024-01-10 11:00:00', 'd1', 'p1', '{}');",
    );
    server.clear_requests();
    let second = project.osiris_env(&["run", "pipeline.yaml", "--json"], &env);
    assert_eq!(second.code, 0, "{}", second.all());
    let summary: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(summary["state_saved"], serde_json::json!(["events"]));
    assert_eq!(
        rows(
            &latest_session(&project),
            "SELECT event FROM events ORDER BY timestamp"
        ),
        ["late", "new"]
    );
    let requests = server.requests();
    assert!(
        requests[0]
            .query
            .contains("timestamp >= toDateTime64('2024-01-10 10:05:00.000000', 6, 'UTC')"),
        "{}",
        requests[0].query
    );
    assert_eq!(
        requests.iter().map(|r| r.rows).sum::<usize>(),
        4,
        "10:10 and 10:20 again (dropped as delivered), the late 10:15 and the new 11:00"
    );

    let full = project.osiris_env(&["run", "pipeline.yaml", "--full-refresh"], &env);
    assert_eq!(full.code, 0, "{}", full.all());
    assert_eq!(
        rows(&latest_session(&project), "SELECT count(*) FROM events"),
        ["5"]
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state_file(&project)).unwrap()).unwrap();
    assert_eq!(
        state["state"]["newest"]["id"],
        "00000000-0000-0000-0000-000000000005"
    );

    // A broken state file stops the run before anything starts, naming the way out.
    std::fs::write(state_file(&project), "{oops").unwrap();
    let broken = project.osiris_env(&["run", "pipeline.yaml"], &env);
    assert_eq!(broken.code, 2, "{}", broken.all());
    assert!(
        broken.stderr.contains("--full-refresh"),
        "{}",
        broken.stderr
    );

    // Another state directory holds its own cursors: a first run there reads everything.
    let elsewhere = project.osiris_env(&["run", "pipeline.yaml", "--state-dir", "cursors"], &env);
    assert_eq!(elsewhere.code, 0, "{}", elsewhere.all());
    assert_eq!(
        rows(&latest_session(&project), "SELECT count(*) FROM events"),
        ["5"]
    );
    assert!(
        project
            .path()
            .join("cursors/posthog-events/events.json")
            .is_file()
    );

    for ran in [&failed, &first, &second, &full, &broken, &elsewhere] {
        assert!(!ran.all().contains(KEY));
    }
    no_key_below(&project.path().join(".osiris_sessions"));
    no_key_below(&project.path().join(".osiris"));
}

#[test]
fn a_wrong_key_fails_the_step_as_an_auth_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(PostHogServer::start());
    let project = Project::new();
    project.write("pipeline.yaml", PIPELINE);
    project.write("osiris_connections.yaml", connections(&server.url));
    let ran = project.osiris_env(
        &["run", "pipeline.yaml"],
        &[("POSTHOG_API_KEY", "phx_not_the_right_key_1234")],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.stderr.contains("failed (auth)") || ran.stdout.contains("failed (auth)"),
        "{}",
        ran.all()
    );
    assert!(
        ran.stderr
            .contains("PostHog rejected the API key (HTTP 401"),
        "{}",
        ran.stderr
    );
    assert!(!ran.all().contains("phx_not_the_right_key_1234"));
    assert!(!state_file(&project).exists());
}

/// A remote worker gets the stored state in `prepare` and hands the new one back in
/// `step_result`; the host alone saves it, so incremental runs work the same remotely.
#[test]
fn remote_runs_read_and_advance_the_same_state() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(PostHogServer::start());
    server.execute(
        "INSERT INTO events VALUES
        ('00000000-0000-0000-0000-000000000001', 'a', '2024-01-10 10:00:00', 'd1', 'p1', '{}'),
        ('00000000-0000-0000-0000-000000000002', 'b', '2024-01-10 10:30:00', 'd1', 'p1', '{}');",
    );
    let project = Project::new();
    project.write("pipeline.yaml", PIPELINE);
    project.write("osiris_connections.yaml", connections(&server.url));
    let env = [("POSTHOG_API_KEY", KEY)];

    let first = project.osiris_env(&["run", "pipeline.yaml", "--target", "remote"], &env);
    assert_eq!(first.code, 0, "{}", first.all());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state_file(&project)).unwrap()).unwrap();
    assert_eq!(
        state["state"]["newest"]["id"],
        "00000000-0000-0000-0000-000000000002"
    );

    server.execute(
        "INSERT INTO events VALUES
        ('00000000-0000-0000-0000-000000000003', 'new', '2024-01-10 12:00:00', 'd1', 'p1', '{}');",
    );
    server.clear_requests();
    let second = project.osiris_env(&["run", "pipeline.yaml", "--target", "remote"], &env);
    assert_eq!(second.code, 0, "{}", second.all());
    assert_eq!(
        rows(&latest_session(&project), "SELECT event FROM events"),
        ["new"],
        "the worker started from the stored state, and the 10:30 row was dropped as delivered"
    );
    let requests = server.requests();
    assert!(
        requests[0].query.contains("2024-01-10 10:15:00"),
        "the worker's first query starts one lookback window before the stored newest row: {}",
        requests[0].query
    );
    no_key_below(project.path());
}
