//! `osiris sessions ...` and replay, on real sessions left by real runs: successful, failed,
//! crashed (killed with SIGKILL) and still running.

use std::process::Command;
use std::time::Duration;

use crate::common::{
    Project, example_project, example_project_with_tables, rows, start_long, tables,
};

fn json(ran: &crate::common::Ran) -> serde_json::Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {}", ran.all()))
}

#[test]
fn list_tells_ok_failed_crashed_and_running_runs_apart() {
    let project = example_project();
    assert_eq!(
        project
            .osiris(&["run", "pipeline.yaml", "--session-id", "a-ok"])
            .code,
        0
    );
    project.write("bad.yaml", "oml_version: \"0.1.0\"\nname: bad\nsteps:\n  - {id: t, component: duckdb.processor, mode: transform, config: {query: SELECT nope}}\n");
    assert_eq!(
        project
            .osiris(&["run", "bad.yaml", "--session-id", "b-failed"])
            .code,
        1
    );
    let mut crashed = start_long(&project, "c-crashed");
    crashed.kill().unwrap(); // SIGKILL: no chance to write status.json or remove run.lock
    crashed.wait().unwrap();
    let mut running = start_long(&project, "d-running");

    let listed = json(&project.osiris(&["sessions", "list", "--json"]));
    let state = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {listed}"))
            .clone()
    };
    assert_eq!(state("a-ok")["status"], "ok");
    assert_eq!(state("a-ok")["pipeline"], "orders-revenue");
    assert_eq!(
        state("a-ok")["tables"],
        serde_json::json!(["read-orders", "revenue_by_customer"])
    );
    assert_eq!(state("b-failed")["status"], "failed");
    assert_eq!(state("b-failed")["failed_step"], "t");
    assert_eq!(state("c-crashed")["status"], "abandoned");
    assert_eq!(state("d-running")["status"], "running");

    // A running session is never removed, not even by gc.
    let rm = project.osiris(&["sessions", "rm", "d-running"]);
    assert_eq!(rm.code, 2, "{}", rm.all());
    assert!(rm.stderr.contains("still running"), "{}", rm.stderr);
    let gc = json(&project.osiris(&["sessions", "gc", "--json"]));
    assert_eq!(gc["removed"].as_array().unwrap().len(), 3);
    assert!(project.path().join(".osiris_sessions/d-running").exists());
    running.kill().unwrap();
    running.wait().unwrap();

    let by_pipeline =
        json(&project.osiris(&["sessions", "list", "--pipeline", "orders-revenue", "--json"]));
    assert_eq!(by_pipeline.as_array().unwrap().len(), 0, "gc removed it");
}

#[test]
fn show_lists_steps_tables_rows_and_column_types() {
    let project = example_project();
    assert_eq!(
        project
            .osiris(&["run", "pipeline.yaml", "--session-id", "s1"])
            .code,
        0
    );
    let shown = json(&project.osiris(&["sessions", "show", "s1", "--json"]));
    assert_eq!(shown["status"], "ok");
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0]["step_id"], "read-orders");
    assert_eq!(steps[0]["rows"], 10);
    assert_eq!(
        steps[0]["columns"][2],
        serde_json::json!({"name": "amount", "type": "DECIMAL(12,2)"})
    );
    assert_eq!(steps[1]["rows"], 5);
    assert_eq!(
        steps[2]["table"],
        serde_json::Value::Null,
        "a writer has no table"
    );
    let text = project.osiris(&["sessions", "show", "s1"]);
    assert!(
        text.stdout
            .contains("read-orders (filesystem.csv_extractor): 10 rows"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("    amount  DECIMAL(12,2)"),
        "{}",
        text.stdout
    );
}

#[test]
fn query_is_read_only_and_speaks_table_csv_and_json() {
    let project = example_project();
    assert_eq!(
        project
            .osiris(&["run", "pipeline.yaml", "--session-id", "s1"])
            .code,
        0
    );
    let sql = "SELECT customer, revenue FROM revenue_by_customer ORDER BY revenue DESC LIMIT 2";
    let csv = project.osiris(&["sessions", "query", "s1", sql, "--format", "csv"]);
    assert_eq!(csv.code, 0, "{}", csv.all());
    assert_eq!(
        csv.stdout,
        "customer,revenue\nUmbrella,1200.00\n\"Wayne \"\"Bat\"\" Enterprises\",999.99\n"
    );
    let out = json(&project.osiris(&["sessions", "query", "s1", sql, "--format", "json"]));
    assert_eq!(
        out[0],
        serde_json::json!({"customer": "Umbrella", "revenue": "1200.00"}),
        "decimals stay exact"
    );
    let table = project.osiris(&[
        "sessions",
        "query",
        "s1",
        "SELECT count(*) AS n FROM \"read-orders\"",
    ]);
    assert!(
        table.stdout.contains("| n  |") && table.stdout.contains("| 10 |"),
        "{}",
        table.stdout
    );
    let write = project.osiris(&["sessions", "query", "s1", "DROP TABLE \"read-orders\""]);
    assert_eq!(write.code, 2, "{}", write.all());
    assert!(
        write.stderr.to_lowercase().contains("read-only"),
        "{}",
        write.stderr
    );
    assert_eq!(
        tables(&project.path().join(".osiris_sessions/s1")),
        ["read-orders", "revenue_by_customer"]
    );
}

/// CSV and JSON results are written as DuckDB produces them (many chunks here), with the same
/// text as one whole result; a value that fails late (a CSV view's row past the sniffer's
/// sample) exits 2 with DuckDB's message, and the JSON array stays open so that no consumer
/// takes the part for the whole.
#[test]
fn query_streams_csv_and_json_and_a_late_failure_is_an_error() {
    let project = Project::new();
    let mut data = String::from("id,v\n");
    for i in 0..50_000 {
        data.push_str(&format!("{i},{}\n", i * 2));
    }
    project.write("good.csv", data.clone());
    data.push_str("50000,oops\n");
    project.write("bad.csv", data);
    project.write(
        "p.yaml",
        r#"
oml_version: "0.1.0"
name: streamed
steps:
  - id: good
    component: filesystem.csv_extractor
    mode: read
    config: {path: good.csv}
  - id: bad
    component: filesystem.csv_extractor
    mode: read
    config: {path: bad.csv}
"#,
    );
    let ran = project.osiris(&["run", "p.yaml", "--session-id", "s1"]);
    assert_eq!(ran.code, 0, "{}", ran.all());

    let csv = project.osiris(&[
        "sessions",
        "query",
        "s1",
        "SELECT * FROM good",
        "--format",
        "csv",
    ]);
    assert_eq!(csv.code, 0, "{}", csv.all());
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 50_001);
    assert_eq!(
        (lines[0], lines[1], lines[50_000]),
        ("id,v", "0,0", "49999,99998")
    );

    let out = json(&project.osiris(&[
        "sessions",
        "query",
        "s1",
        "SELECT * FROM good",
        "--format",
        "json",
    ]));
    let rows = out.as_array().unwrap();
    assert_eq!(rows.len(), 50_000);
    assert_eq!(rows[49_999], serde_json::json!({"id": 49999, "v": 99998}));
    let empty = project.osiris(&[
        "sessions",
        "query",
        "s1",
        "SELECT * FROM good WHERE id < 0",
        "--format",
        "json",
    ]);
    assert_eq!((empty.code, empty.stdout.as_str()), (0, "[]\n"));

    // The table format shows the first rows and says there are more; all of them on request.
    let table = project.osiris(&["sessions", "query", "s1", "SELECT * FROM good ORDER BY id"]);
    assert_eq!(table.code, 0, "{}", table.all());
    assert!(table.stdout.contains("| 999 | 1998 |"), "{}", table.stdout);
    assert!(
        !table.stdout.contains("| 1000 | 2000 |"),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .contains("(the first 1,000 rows; --max-rows 0 shows all"),
        "{}",
        table.stdout
    );
    let few = project.osiris(&[
        "sessions",
        "query",
        "s1",
        "SELECT * FROM good WHERE id < 3",
        "--max-rows",
        "3",
    ]);
    assert!(
        few.stdout.contains("| 2  | 4 |") && !few.stdout.contains("the first"),
        "{}",
        few.stdout
    );
    let all = project.osiris(&[
        "sessions",
        "query",
        "s1",
        "SELECT * FROM good",
        "--max-rows",
        "0",
    ]);
    assert!(all.stdout.contains("| 49999 | 99998 |") && !all.stdout.contains("the first"));

    for format in ["csv", "json", "table"] {
        let late = project.osiris(&[
            "sessions",
            "query",
            "s1",
            "SELECT * FROM bad",
            "--format",
            format,
            // The table format reads only the rows it shows: all of them here.
            "--max-rows",
            "0",
        ]);
        assert_eq!(late.code, 2, "{format}: {}", late.all());
        assert!(late.stderr.contains("oops"), "{format}: {}", late.stderr);
        assert!(
            !late.stdout.trim_end().ends_with(']'),
            "{format}: a closed array"
        );
    }
}

#[test]
fn replay_reruns_a_step_and_its_downstream_with_copied_upstream_tables() {
    let project = example_project_with_tables();
    assert_eq!(
        project
            .osiris(&["run", "pipeline.yaml", "--session-id", "before"])
            .code,
        0
    );
    // The data changes after the first run; a replay must reuse the first run's extract.
    project.write(
        "data/orders.csv",
        "id,customer,amount,status,ordered_at\n1,Nobody,1.00,paid,2024-01-01 00:00:00\n",
    );
    let fixed = String::from_utf8(project.read("pipeline.yaml"))
        .unwrap()
        .replace("WHERE status <> 'cancelled'", "WHERE status = 'paid'");
    project.write("pipeline.yaml", fixed);
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--from-step",
        "revenue_by_customer",
        "--session",
        "before",
        "--session-id",
        "after",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(ran.stdout.contains("Replaying orders-revenue from step 'revenue_by_customer' (2 of 3 steps; tables of read-orders reused from session before)"), "{}", ran.stdout);
    assert!(
        !ran.stdout.contains("✓ read-orders"),
        "the extract did not run again"
    );
    let after = project.path().join(".osiris_sessions/after");
    assert_eq!(
        rows(&after, "SELECT count(*) FROM \"read-orders\""),
        ["10"],
        "copied from the earlier session"
    );
    assert_eq!(
        rows(&after, "SELECT count(*) FROM revenue_by_customer"),
        ["4"],
        "refunded Umbrella is gone"
    );
    assert_eq!(
        project
            .read("output/revenue_by_customer.csv")
            .iter()
            .filter(|b| **b == b'\n')
            .count(),
        5
    );
    let events = std::fs::read_to_string(after.join("events.jsonl")).unwrap();
    assert!(events.contains("\"event\":\"replay_start\""), "{events}");

    // diff: the extract is identical, the aggregate lost one row
    let diff = project.osiris(&["sessions", "diff", "before", "after", "--json"]);
    assert_eq!(diff.code, 1, "different sessions exit 1: {}", diff.all());
    let d = json(&diff);
    assert_eq!(d["identical"], false);
    let step = |id: &str| {
        d["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(step("read-orders")["only_in_a"], 0);
    assert_eq!(step("revenue_by_customer")["only_in_a"], 1);
    assert_eq!(step("revenue_by_customer")["only_in_b"], 0);
    assert_eq!(
        step("revenue_by_customer")["sample_only_in_a"][0]["customer"],
        "Umbrella"
    );
    let same = project.osiris(&[
        "sessions",
        "diff",
        "before",
        "after",
        "--step",
        "read-orders",
    ]);
    assert_eq!(same.code, 0, "{}", same.all());
    assert!(same.stdout.contains("Identical."), "{}", same.stdout);
}

#[test]
fn replay_only_runs_exactly_the_selected_steps() {
    let project = example_project();
    assert_eq!(
        project
            .osiris(&["run", "pipeline.yaml", "--session-id", "before"])
            .code,
        0
    );
    let fixed = String::from_utf8(project.read("pipeline.yaml"))
        .unwrap()
        .replace("WHERE status <> 'cancelled'", "WHERE status = 'paid'");
    project.write("pipeline.yaml", fixed);
    std::fs::remove_file(project.path().join("output/revenue_by_customer.csv")).unwrap();
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--only",
        "revenue_by_customer",
        "--session",
        "before",
        "--session-id",
        "only",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(ran.stdout.contains("Replaying orders-revenue only step 'revenue_by_customer' (1 of 3 steps; tables of read-orders reused from session before)"), "{}", ran.stdout);
    let only = project.path().join(".osiris_sessions/only");
    assert_eq!(
        rows(&only, "SELECT count(*) FROM revenue_by_customer"),
        ["4"]
    );
    assert!(
        !project
            .path()
            .join("output/revenue_by_customer.csv")
            .exists(),
        "the writer downstream of the selected step did not run"
    );
    let events = std::fs::read_to_string(only.join("events.jsonl")).unwrap();
    assert!(
        events.contains("\"only_steps\":[\"revenue_by_customer\"]"),
        "{events}"
    );

    let ran = project.osiris(&["run", "pipeline.yaml", "--session", "before"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("--session goes with --from-step or --only"),
        "{}",
        ran.stderr
    );
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--only",
        "read-orders",
        "--from-step",
        "read-orders",
        "--session",
        "before",
    ]);
    assert_eq!(
        ran.code,
        2,
        "--only and --from-step exclude each other: {}",
        ran.all()
    );
}

#[test]
fn replay_refuses_what_it_cannot_do() {
    let project = example_project();
    project.write("bad.yaml", "oml_version: \"0.1.0\"\nname: bad\nsteps:\n  - {id: t, component: duckdb.processor, mode: transform, config: {query: SELECT nope}}\n");
    assert_eq!(
        project
            .osiris(&["run", "bad.yaml", "--session-id", "failed"])
            .code,
        1
    );
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--from-step",
        "revenue_by_customer",
        "--session",
        "failed",
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("session `failed` has no table for 'read-orders'"),
        "{}",
        ran.stderr
    );
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--from-step",
        "nope",
        "--session",
        "failed",
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("no step 'nope' in the pipeline"),
        "{}",
        ran.stderr
    );
    let ran = project.osiris(&["run", "pipeline.yaml", "--from-step", "revenue_by_customer"]);
    assert_eq!(ran.code, 2, "--from-step needs --session: {}", ran.all());
}

#[test]
fn gc_by_age_and_keep_last_with_dry_run() {
    let project = example_project();
    for id in ["g1", "g2", "g3"] {
        assert_eq!(
            project
                .osiris(&["run", "pipeline.yaml", "--session-id", id])
                .code,
            0
        );
        std::thread::sleep(Duration::from_millis(1100)); // distinct start seconds
    }
    let dry = json(&project.osiris(&["sessions", "gc", "--keep-last", "1", "--dry-run", "--json"]));
    assert_eq!(dry["removed"], serde_json::json!(["g2", "g1"]));
    assert_eq!(project.sessions().len(), 3, "dry run removes nothing");
    let none = json(&project.osiris(&["sessions", "gc", "--older-than", "1h", "--json"]));
    assert_eq!(
        none["removed"],
        serde_json::json!([]),
        "all are younger than an hour"
    );
    let gc = json(&project.osiris(&["sessions", "gc", "--keep-last", "1", "--json"]));
    assert_eq!(gc["removed"], serde_json::json!(["g2", "g1"]));
    assert_eq!(project.sessions().len(), 1);
    let rm = project.osiris(&["sessions", "rm", "g3"]);
    assert_eq!(rm.code, 0, "{}", rm.all());
    assert!(project.sessions().is_empty());
    let missing = project.osiris(&["sessions", "show", "g3"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no session `g3`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn serve_answers_psql_over_the_postgres_protocol() {
    let project = example_project();
    assert_eq!(
        project
            .osiris(&["run", "pipeline.yaml", "--session-id", "pg1"])
            .code,
        0
    );
    let (mut server, first) = crate::pg_clients::spawn_serve(&project, "pg-test-pw-7731");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("postgresql://"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    assert!(
        !first.contains("pg-test-pw-7731"),
        "the password is never printed"
    );
    let psql = |sql: &str, password: &str| {
        Command::new("/usr/bin/psql")
            .args([url.as_str(), "-X", "-A", "-t", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGPASSWORD", password)
            .output()
            .expect("psql (postgresql-client) is installed")
    };
    let count = psql(
        "SELECT count(*) FROM \"pg1\".\"read-orders\"",
        "pg-test-pw-7731",
    );
    let sessions = psql("SELECT id, status FROM osiris_sessions", "pg-test-pw-7731");
    let wrong = psql("SELECT 1", "wrong-password");
    server.kill().unwrap();
    let server_out = server.wait_with_output().unwrap();
    assert!(
        count.status.success(),
        "{url}: {}\nserver: {}",
        String::from_utf8_lossy(&count.stderr),
        String::from_utf8_lossy(&server_out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "10");
    assert_eq!(String::from_utf8_lossy(&sessions.stdout).trim(), "pg1|ok");
    assert!(!wrong.status.success());
    let refused = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        refused.contains("Password authentication failed"),
        "{refused}"
    );
}

#[test]
fn serve_without_a_password_exits_2() {
    let project = Project::new();
    let ran = project.osiris_env(
        &["serve", "--pg", "127.0.0.1:0"],
        &[("OSIRIS_PG_PASSWORD", "")],
    );
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("set OSIRIS_PG_PASSWORD"),
        "{}",
        ran.stderr
    );
    let remote = project.osiris_env(
        &["serve", "--pg", "0.0.0.0:0"],
        &[("OSIRIS_PG_PASSWORD", "x-secret")],
    );
    assert_eq!(remote.code, 2, "{}", remote.all());
}

#[test]
fn since_and_older_than_follow_the_recorded_start() {
    let project = example_project();
    for id in ["old", "new"] {
        assert_eq!(
            project
                .osiris(&["run", "pipeline.yaml", "--session-id", id])
                .code,
            0
        );
    }
    // Make `old` a run from 2020, as if it had been kept since then.
    let status_path = project.path().join(".osiris_sessions/old/status.json");
    let status = std::fs::read_to_string(&status_path).unwrap();
    let started = serde_json::from_str::<serde_json::Value>(&status).unwrap()["started_at"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(
        &status_path,
        status.replace(&started, "2020-01-01T00:00:00.000000+00:00"),
    )
    .unwrap();

    let recent = json(&project.osiris(&["sessions", "list", "--since", "7d", "--json"]));
    let ids: Vec<&str> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["new"]);
    let bad = project.osiris(&["sessions", "list", "--since", "7 days"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    let gc = json(&project.osiris(&["sessions", "gc", "--older-than", "7d", "--json"]));
    assert_eq!(gc["removed"], serde_json::json!(["old"]));
    assert_eq!(gc["kept"], 1);
}
