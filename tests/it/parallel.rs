//! Independent steps in parallel (`osiris run --jobs N`, ADR 0034): steps really overlap, the
//! results, reports and exit codes equal those of `--jobs 1`, a failing step cancels its
//! running sibling without leaving a partial table, Ctrl-C cancels every running step, and
//! events stay whole lines attributable to their step.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Project, jsonl, rows, signal, status, tables};

/// Two extractors, two slower transforms (one per extractor), a join of both and a CSV writer.
const FAN_IN: &str = r#"
oml_version: "0.1.0"
name: fan-in
steps:
  - {id: read-a, component: filesystem.csv_extractor, mode: read, config: {path: a.csv}}
  - {id: read-b, component: filesystem.csv_extractor, mode: read, config: {path: b.csv}}
  - id: slow-a
    component: duckdb.processor
    mode: transform
    needs: [read-a]
    config:
      query: |
        SELECT k, v, (SELECT count(*) FROM range(2500) x, range(2500) y WHERE x.range <> y.range) AS n
        FROM "read-a"
  - id: slow-b
    component: duckdb.processor
    mode: transform
    needs: [read-b]
    config:
      query: |
        SELECT k, w, (SELECT count(*) FROM range(2500) x, range(2500) y WHERE x.range <> y.range) AS n
        FROM "read-b"
  - id: joined
    component: duckdb.processor
    mode: transform
    needs: [slow-a, slow-b]
    config: {query: "SELECT a.k, a.v, b.w, a.n + b.n AS n FROM \"slow-a\" a JOIN \"slow-b\" b USING (k) ORDER BY a.k"}
  - {id: write, component: filesystem.csv_writer, mode: write, needs: [joined], config: {path: out/joined.csv}}
"#;

fn fan_in_project() -> Project {
    let project = Project::new();
    project.write("fan_in.yaml", FAN_IN);
    let a: String = (0..500).map(|k| format!("{k},v{k}\n")).collect();
    let b: String = (0..500)
        .rev()
        .map(|k| format!("{k},w{}\n", k * 7))
        .collect();
    project.write("a.csv", format!("k,v\n{a}"));
    project.write("b.csv", format!("k,w\n{b}"));
    project
}

/// `(event, step_id)` of every step event of a session, in order; panics on a line that is
/// not one JSON object, or a step event without a step of the plan.
fn step_events(session: &std::path::Path, plan_steps: &[&str]) -> Vec<(String, String)> {
    jsonl(&session.join("events.jsonl"))
        .into_iter()
        .filter(|e| e["event"].as_str().unwrap().starts_with("step_"))
        .map(|e| {
            let step = e["step_id"].as_str().expect("a step event names its step");
            assert!(plan_steps.contains(&step), "{e}");
            (e["event"].as_str().unwrap().to_owned(), step.to_owned())
        })
        .collect()
}

fn at(events: &[(String, String)], event: &str, step: &str) -> usize {
    events
        .iter()
        .position(|(e, s)| e == event && s == step)
        .unwrap_or_else(|| panic!("no {event} of {step}: {events:?}"))
}

/// The JSON summary's steps without their durations.
fn reported_steps(stdout: &str) -> Vec<Value> {
    let summary: Value = serde_json::from_str(stdout).unwrap();
    summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.as_object_mut().unwrap().remove("duration_ms");
            s
        })
        .collect()
}

#[test]
fn parallel_steps_overlap_and_give_the_same_results_as_one_job() {
    let project = fan_in_project();
    let plan = ["read-a", "read-b", "slow-a", "slow-b", "joined", "write"];
    let mut runs = Vec::new();
    for jobs in ["1", "4"] {
        let id = format!("jobs{jobs}");
        let ran = project.osiris(&[
            "run",
            "fan_in.yaml",
            "--jobs",
            jobs,
            "--session-id",
            &id,
            "--json",
        ]);
        assert_eq!(ran.code, 0, "{}", ran.all());
        let session = project.path().join(".osiris_sessions").join(&id);
        let events = step_events(&session, &plan);
        let (b_started, a_done) = (
            at(&events, "step_start", "read-b"),
            at(&events, "step_complete", "read-a"),
        );
        let (slow_b_started, slow_a_done) = (
            at(&events, "step_start", "slow-b"),
            at(&events, "step_complete", "slow-a"),
        );
        if jobs == "1" {
            assert!(a_done < b_started, "one step at a time: {events:?}");
            assert!(slow_a_done < slow_b_started, "{events:?}");
        } else {
            assert!(b_started < a_done, "the extractors overlap: {events:?}");
            assert!(
                slow_b_started < slow_a_done,
                "the transforms overlap: {events:?}"
            );
        }
        let joined_started = at(&events, "step_start", "joined");
        assert!(
            joined_started > slow_a_done && joined_started > at(&events, "step_complete", "slow-b"),
            "a step waits for everything it needs: {events:?}"
        );
        for metric in jsonl(&session.join("metrics.jsonl")) {
            if metric["metric"] != "run_duration_ms" {
                assert!(
                    plan.contains(&metric["step_id"].as_str().unwrap_or("")),
                    "{metric}"
                );
            }
        }
        let table_rows: Vec<Vec<String>> = ["read-a", "read-b", "slow-a", "slow-b", "joined"]
            .iter()
            .map(|t| rows(&session, &format!("SELECT * FROM \"{t}\" ORDER BY ALL")))
            .collect();
        runs.push((
            reported_steps(&ran.stdout),
            table_rows,
            project.read("out/joined.csv"),
            tables(&session),
        ));
    }
    assert_eq!(runs[0], runs[1], "--jobs 4 gives what --jobs 1 gives");
    let ids: Vec<&str> = runs[0]
        .0
        .iter()
        .map(|s| s["step_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, plan, "steps are reported in plan order");
    assert_eq!(runs[0].1[4].len(), 500);

    // Replaying part of the plan runs in parallel too and gives the same output.
    std::fs::remove_file(project.path().join("out/joined.csv")).unwrap();
    let replay = project.osiris(&[
        "run",
        "fan_in.yaml",
        "--from-step",
        "slow-a",
        "--session",
        "jobs4",
        "--jobs",
        "2",
        "--session-id",
        "replayed",
    ]);
    assert_eq!(replay.code, 0, "{}", replay.all());
    assert_eq!(project.read("out/joined.csv"), runs[0].2);
}

/// A transform that runs for minutes unless cancelled.
const HEAVY: &str = "SELECT sum(a.range * b.range) AS s FROM range(400000) a, range(400000) b";

#[test]
fn a_failing_step_cancels_its_parallel_sibling_and_exits_as_one_job_would() {
    let project = Project::new();
    project.write(
        "fails.yaml",
        format!(
            r#"
oml_version: "0.1.0"
name: fails
steps:
  - {{id: bad, component: duckdb.processor, mode: transform, needs: [], config: {{query: "SELECT error('bad input on purpose') AS v"}}}}
  - {{id: heavy, component: duckdb.processor, mode: transform, needs: [], config: {{query: "{HEAVY}"}}}}
  - {{id: after, component: duckdb.processor, mode: transform, needs: [bad, heavy], config: {{query: "SELECT 1 AS x"}}}}
"#
        ),
    );
    let mut verdicts = Vec::new();
    for jobs in ["1", "2"] {
        let id = format!("fails{jobs}");
        let started = Instant::now();
        let ran = project.osiris(&["run", "fails.yaml", "--jobs", jobs, "--session-id", &id]);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the heavy sibling was cancelled, not waited for"
        );
        assert_eq!(ran.code, 1, "{}", ran.all());
        assert!(
            ran.stderr
                .contains("error: step 'bad' (duckdb.processor): ")
                && ran.stderr.contains("bad input on purpose"),
            "{}",
            ran.stderr
        );
        let session = project.path().join(".osiris_sessions").join(&id);
        let status = status(&session);
        assert!(
            !tables(&session).contains(&"heavy".to_owned()),
            "no partial table"
        );
        let events = step_events(&session, &["bad", "heavy", "after"]);
        assert!(!events.iter().any(|(_, s)| s == "after"), "{events:?}");
        if jobs == "2" {
            assert!(
                ran.stderr.contains(
                    "error: step 'heavy' (duckdb.processor): cancelled because step 'bad' failed"
                ),
                "{}",
                ran.stderr
            );
            assert!(
                events.contains(&("step_failed".to_owned(), "heavy".to_owned())),
                "{events:?}"
            );
        }
        verdicts.push((
            status["status"].clone(),
            status["exit_code"].clone(),
            status["failed_step"].clone(),
            status["reason"].clone(),
        ));
    }
    assert_eq!(verdicts[0], verdicts[1]);
    assert_eq!(verdicts[1].2, "bad");
}

/// Kills a run the test did not get to stop (it failed before), so that no heavy query
/// outlives the test.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn ctrl_c_during_parallel_steps_cancels_every_running_step() {
    let project = Project::new();
    project.write(
        "two_heavy.yaml",
        format!(
            r#"
oml_version: "0.1.0"
name: two-heavy
steps:
  - {{id: heavy-1, component: duckdb.processor, mode: transform, needs: [], config: {{query: "{HEAVY}"}}}}
  - {{id: heavy-2, component: duckdb.processor, mode: transform, needs: [], config: {{query: "{HEAVY}"}}}}
  - {{id: after, component: duckdb.processor, mode: transform, needs: [heavy-1, heavy-2], config: {{query: "SELECT 1 AS x"}}}}
"#
        ),
    );
    let mut run = KillOnDrop(Some(
        std::process::Command::new(env!("CARGO_BIN_EXE_osiris"))
            .args([
                "run",
                "two_heavy.yaml",
                "--jobs",
                "2",
                "--session-id",
                "interrupted",
            ])
            .current_dir(project.path())
            .env("TMPDIR", project.tmp_dir())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let session = project.path().join(".osiris_sessions/interrupted");
    let deadline = Instant::now() + Duration::from_secs(30);
    let both_started = || {
        let Ok(text) = std::fs::read_to_string(session.join("events.jsonl")) else {
            return false;
        };
        let started: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["event"] == "step_start")
            .collect();
        ["heavy-1", "heavy-2"]
            .iter()
            .all(|step| started.iter().any(|e| e["step_id"] == *step))
    };
    while !both_started() {
        assert!(Instant::now() < deadline, "the heavy steps never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let both queries get going inside DuckDB.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let child = run.0.take().unwrap();
    signal(child.id(), "-INT");
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "both steps stopped promptly"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    assert_eq!(status(&session)["status"], "cancelled");
    assert!(stdout.contains("Run cancelled: 0/3 steps"), "{stdout}");
    let events = jsonl(&session.join("events.jsonl"));
    for step in ["heavy-1", "heavy-2"] {
        let failed = events
            .iter()
            .find(|e| e["event"] == "step_failed" && e["step_id"] == step)
            .unwrap_or_else(|| panic!("{step} was not cancelled: {events:?}"));
        assert_eq!(failed["error_class"], "cancelled", "{failed}");
    }
    assert!(!events.iter().any(|e| e["step_id"] == "after"));
    let run_error = events.iter().find(|e| e["event"] == "run_error").unwrap();
    assert_eq!(run_error["cancelled"], true);
    let left = tables(&session);
    assert!(
        !left.contains(&"heavy-1".to_owned()) && !left.contains(&"heavy-2".to_owned()),
        "{left:?}"
    );
}

#[test]
fn a_remote_run_takes_jobs_but_runs_one_step_at_a_time_and_says_so() {
    let project = fan_in_project();
    let ran = project.osiris(&[
        "run",
        "fan_in.yaml",
        "--target",
        "remote",
        "--jobs",
        "3",
        "--session-id",
        "remote-jobs",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("warning: --jobs has no effect with --target remote"),
        "{}",
        ran.stderr
    );
    let session = project.path().join(".osiris_sessions/remote-jobs");
    let run_start = jsonl(&session.join("events.jsonl"))
        .into_iter()
        .find(|e| e["event"] == "run_start")
        .unwrap();
    assert_eq!(run_start["jobs"], 1, "{run_start}");
    let events = step_events(
        &session,
        &["read-a", "read-b", "slow-a", "slow-b", "joined", "write"],
    );
    assert!(
        at(&events, "step_complete", "read-a") < at(&events, "step_start", "read-b"),
        "{events:?}"
    );
}
