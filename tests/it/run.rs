//! Successful runs: output files, step tables, session layout, events, metrics and status.

use crate::common::{example_project, example_project_with_tables, jsonl, rows, tables};

#[test]
fn example_pipeline_writes_the_expected_csv_byte_for_byte() {
    let project = example_project();
    let ran = project.osiris(&["run", "pipeline.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let expected =
        std::fs::read(crate::common::fixtures().join("orders/expected_revenue_by_customer.csv"))
            .unwrap();
    let actual = project.read("output/revenue_by_customer.csv");
    assert_eq!(
        String::from_utf8_lossy(&actual),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn every_step_leaves_its_table_in_the_kept_run_database() {
    let project = example_project();
    let ran = project.osiris(&["run", "pipeline.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let session = project.session();
    // The writer produces no table; the extractor and the processor do, named by step id.
    assert_eq!(tables(&session), ["read-orders", "revenue_by_customer"]);
    assert_eq!(
        rows(&session, "SELECT count(*) FROM \"read-orders\""),
        ["10"]
    );
    assert_eq!(
        rows(
            &session,
            "SELECT customer, orders, revenue FROM revenue_by_customer ORDER BY customer"
        ),
        [
            "Acme Corp|3|165.60",
            "Globex, Inc.|2|99.75",
            "Initech|2|400.00",
            "Umbrella|1|1200.00",
            "Wayne \"Bat\" Enterprises|1|999.99",
        ]
    );
    assert_eq!(
        rows(
            &session,
            "SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_name = 'read-orders' ORDER BY ordinal_position"
        ),
        [
            "id:BIGINT",
            "customer:VARCHAR",
            "amount:DECIMAL(12,2)",
            "status:VARCHAR",
            "ordered_at:TIMESTAMP"
        ]
    );
}

/// A step kept as a view over its file (the default, ADR 0036) read no row: its line says
/// "view", not "0 rows", and the JSON report and `step_complete` event say so too.
#[test]
fn a_step_kept_as_a_view_is_shown_as_a_view_not_as_zero_rows() {
    let project = example_project();
    let ran = project.osiris(&["run", "pipeline.yaml", "--session-id", "shown-view"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let line = ran
        .stdout
        .lines()
        .find(|l| l.contains("✓ read-orders"))
        .unwrap_or_else(|| panic!("{}", ran.stdout));
    assert!(line.contains(" view ") && !line.contains("rows"), "{line}");
    let json = project.osiris(&["run", "pipeline.yaml", "--json"]);
    assert_eq!(json.code, 0, "{}", json.all());
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let steps = report["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"));
    let view: Vec<bool> = steps
        .iter()
        .map(|s| {
            s["status"]["view"].as_bool().unwrap_or(false) || s["view"].as_bool().unwrap_or(false)
        })
        .collect();
    assert_eq!(view, [true, false, false], "{report}");
    let events = jsonl(
        &project
            .path()
            .join(".osiris_sessions/shown-view/events.jsonl"),
    );
    let complete: Vec<Option<&str>> = events
        .iter()
        .filter(|e| e["event"] == "step_complete")
        .map(|e| e["materialize"].as_str())
        .collect();
    assert_eq!(complete, [Some("view"), None, None]);
}

#[test]
fn run_prints_one_line_per_step_and_the_session() {
    let project = example_project_with_tables();
    let ran = project.osiris(&["run", "pipeline.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert!(
        lines[0].starts_with("Running orders-revenue (3 steps) · session "),
        "{}",
        ran.stdout
    );
    assert!(
        lines[1].contains("✓ read-orders")
            && lines[1].contains("filesystem.csv_extractor")
            && lines[1].contains("10 rows"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("✓ revenue_by_customer")
            && lines[2].contains("duckdb.processor")
            && lines[2].contains("5 rows"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("✓ write-revenue")
            && lines[3].contains("filesystem.csv_writer")
            && lines[3].contains("5 rows"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].starts_with("Run ok: 3/3 steps in "),
        "{}",
        lines[4]
    );
    assert!(
        lines[5].starts_with("Session: .osiris_sessions/"),
        "{}",
        lines[5]
    );
    assert!(
        !ran.stdout.contains('\u{1b}'),
        "no terminal escapes when not on a terminal"
    );
}

#[test]
fn session_directory_has_manifest_events_metrics_status_and_artifacts() {
    let project = example_project_with_tables();
    assert_eq!(project.osiris(&["run", "pipeline.yaml"]).code, 0);
    let session = project.session();
    for file in [
        "pipeline_data.duckdb",
        "manifest.yaml",
        "events.jsonl",
        "metrics.jsonl",
        "status.json",
    ] {
        assert!(session.join(file).is_file(), "{file} missing");
    }
    for step in ["read-orders", "revenue_by_customer", "write-revenue"] {
        let config = session
            .join("artifacts")
            .join(step)
            .join("cleaned_config.json");
        assert!(config.is_file(), "{} missing", config.display());
    }

    let manifest: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(session.join("manifest.yaml")).unwrap())
            .unwrap();
    let ids: Vec<&str> = manifest["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["read-orders", "revenue_by_customer", "write-revenue"]);

    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(session.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["ok"], true);
    assert_eq!(status["exit_code"], 0);
    assert_eq!(status["steps_total"], 3);
    assert_eq!(status["steps_completed"], 3);
    assert_eq!(status["reason"], "completed");
    let session_id = session.file_name().unwrap().to_str().unwrap();
    assert_eq!(status["session_id"], session_id);

    let events = jsonl(&session.join("events.jsonl"));
    assert!(
        events
            .iter()
            .all(|e| e["session"] == session_id && e["ts"].is_string())
    );
    let lifecycle: Vec<(String, String)> = events
        .iter()
        .filter(|e| {
            matches!(
                e["event"].as_str().unwrap(),
                "run_start"
                    | "step_start"
                    | "step_complete"
                    | "run_complete"
                    | "database_opened"
                    | "database_closed"
            )
        })
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["step_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("run_start", ""),
        ("step_start", "read-orders"),
        ("database_opened", ""),
        ("step_complete", "read-orders"),
        ("step_start", "revenue_by_customer"),
        ("step_complete", "revenue_by_customer"),
        ("step_start", "write-revenue"),
        ("step_complete", "write-revenue"),
        ("run_complete", ""),
        ("database_closed", ""),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(lifecycle, expected);
    let complete = events
        .iter()
        .find(|e| e["event"] == "step_complete" && e["step_id"] == "read-orders")
        .unwrap();
    assert_eq!(complete["rows"], 10);
    assert!(complete["duration_ms"].is_u64());

    let metrics = jsonl(&session.join("metrics.jsonl"));
    let find = |name: &str, step: &str| {
        metrics
            .iter()
            .find(|m| m["metric"] == name && m["step_id"] == step)
            .unwrap_or_else(|| panic!("metric {name} for {step} missing"))["value"]
            .clone()
    };
    assert_eq!(find("rows_read", "read-orders"), 10);
    let rows_read = metrics
        .iter()
        .filter(|m| m["metric"] == "rows_read" && m["step_id"] == "read-orders")
        .count();
    assert_eq!(rows_read, 1, "one rows_read per step, from the engine");
    assert_eq!(find("rows_written", "revenue_by_customer"), 5);
    assert_eq!(find("rows_written", "write-revenue"), 5);
    assert!(find("step_duration_ms", "write-revenue").is_u64());
}

#[test]
fn json_summary_is_machine_readable() {
    let project = example_project_with_tables();
    let ran = project.osiris(&["run", "pipeline.yaml", "--json"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let summary: serde_json::Value =
        serde_json::from_str(&ran.stdout).expect("stdout is one JSON document");
    assert_eq!(summary["status"], "ok");
    assert_eq!(summary["steps_completed"], 3);
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step_id"], "read-orders");
    assert_eq!(steps[0]["rows"], 10);
    assert_eq!(steps[0]["table"], "read-orders");
    assert_eq!(steps[2]["status"], "ok");
    assert!(
        std::path::Path::new(summary["database"].as_str().unwrap()).is_file()
            || project
                .path()
                .join(summary["database"].as_str().unwrap())
                .is_file()
    );
}

#[test]
fn each_run_gets_its_own_kept_session() {
    let project = example_project();
    assert_eq!(project.osiris(&["run", "pipeline.yaml"]).code, 0);
    assert_eq!(project.osiris(&["run", "pipeline.yaml"]).code, 0);
    let sessions = project.sessions();
    assert_eq!(sessions.len(), 2);
    for session in sessions {
        assert_eq!(tables(&session), ["read-orders", "revenue_by_customer"]);
    }
}

#[test]
fn sessions_dir_flag_and_session_id_choose_the_location() {
    let project = example_project();
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--sessions-dir",
        "runs",
        "--session-id",
        "nightly-1",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        project
            .path()
            .join("runs/nightly-1/pipeline_data.duckdb")
            .is_file()
    );
}

#[test]
fn ctrl_c_cancels_the_running_step_and_exits_130() {
    let project = crate::common::Project::new();
    let child = crate::common::start_long(&project, "c");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = std::time::Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "the query was interrupted"
    );
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let session = project.path().join(".osiris_sessions/c");
    assert_eq!(
        tables(&session),
        ["quick"],
        "no table of the cancelled step"
    );
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(session.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["status"], "cancelled");
    assert_eq!(status["steps_completed"], 1);
}

/// `--memory-limit` (or `OSIRIS_MEMORY_LIMIT`) bounds DuckDB's memory for the run database, in
/// this process and, through the environment, in the default remote worker (ADR 0040); a size
/// DuckDB would not take is a usage error naming the flag, before anything runs.
#[test]
fn memory_limit_reaches_the_run_database_locally_and_in_a_worker() {
    let project = crate::common::Project::new();
    project.write(
        "p.yaml",
        "oml_version: \"0.1.0\"\nname: mem\nsteps:\n  - id: m\n    component: duckdb.processor\n    mode: transform\n    config:\n      query: SELECT current_setting('memory_limit') AS m\n",
    );
    // Flags, environment, the limit the run database reports.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    // DuckDB's default, 80% of the memory it sees, for an unset or empty variable.
    let default = {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let limit: String = conn
            .query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))
            .unwrap();
        limit
    };
    let cases: [Case; 6] = [
        (&[], &[], &default),
        (&[], &[("OSIRIS_MEMORY_LIMIT", "")], &default),
        (&["--memory-limit", "64MB"], &[], "61.0 MiB"),
        (&[], &[("OSIRIS_MEMORY_LIMIT", "1GiB")], "1.0 GiB"),
        (
            &["--memory-limit", "96MB"],
            &[("OSIRIS_MEMORY_LIMIT", "1GiB")],
            "91.5 MiB",
        ),
        (
            &["--target", "remote"],
            &[("OSIRIS_MEMORY_LIMIT", "96MB")],
            "91.5 MiB",
        ),
    ];
    for (i, (flags, env, expected)) in cases.into_iter().enumerate() {
        let id = format!("mem-{i}");
        let mut args = vec!["run", "p.yaml", "--session-id", id.as_str()];
        args.extend(flags);
        let ran = project.osiris_env(&args, env);
        assert_eq!(ran.code, 0, "case {i}: {}", ran.all());
        let session = project.path().join(".osiris_sessions").join(&id);
        assert_eq!(rows(&session, "SELECT m FROM m"), [expected], "case {i}");
    }
    let before = project.sessions().len();
    let ran = project.osiris(&["run", "p.yaml", "--memory-limit", "80%"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.stderr.contains("--memory-limit"), "{}", ran.all());
    assert!(ran.stderr.contains("is not a memory size"), "{}", ran.all());
    assert_eq!(project.sessions().len(), before, "nothing ran");
}
