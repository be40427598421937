//! Remote runs (`--target remote`, `osiris worker`): parity with local runs, faults (worker
//! killed, hung, mismatched), cancellation, bad messages, TCP with a token, secrets.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Project, Ran, example_project, jsonl, rows, signal, status, tables};

const OSIRIS: &str = env!("CARGO_BIN_EXE_osiris");

/// Event names of a session, without the remote-only `worker_*` events.
fn event_names(session: &Path) -> Vec<String> {
    jsonl(&session.join("events.jsonl"))
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .filter(|n| !n.starts_with("worker_"))
        .collect()
}

/// Every table of a session: name, column types and all rows (sorted), as text.
fn dump(session: &Path) -> Vec<(String, Vec<String>, Vec<String>)> {
    tables(session)
        .into_iter()
        .map(|t| {
            let types = rows(
                session,
                &format!("SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_name = '{t}' ORDER BY ordinal_position"),
            );
            let data = rows(session, &format!("SELECT * FROM \"{t}\" ORDER BY ALL"));
            (t, types, data)
        })
        .collect()
}

fn session_dir(project: &Project, id: &str) -> PathBuf {
    project.path().join(".osiris_sessions").join(id)
}

const MULTI: &str = r#"
oml_version: "0.1.0"
name: multi
steps:
  - id: nums
    component: duckdb.processor
    mode: transform
    config: {query: "SELECT range AS n, range * 1.5::DECIMAL(10,2) AS x, 'v' || range AS s FROM range(1000)"}
  - id: orders
    component: filesystem.csv_extractor
    mode: read
    config: {path: data/orders.csv, dtype: {amount: "DECIMAL(12,2)"}}
  - id: joined
    component: duckdb.processor
    mode: transform
    needs: [nums, orders]
    config: {query: "SELECT o.customer, sum(o.amount) AS amount, count(n.n) AS c FROM orders o LEFT JOIN nums n ON n.n = o.id GROUP BY 1"}
  - id: out
    component: filesystem.csv_writer
    mode: write
    needs: [joined]
    config: {path: output/joined.csv, sort_columns: true}
"#;

const FAILING: &str = r#"
oml_version: "0.1.0"
name: failing
steps:
  - {id: a, component: duckdb.processor, mode: transform, config: {query: "SELECT 1 AS x"}}
  - {id: b, component: duckdb.processor, mode: transform, needs: [a], config: {query: "SELECT nope FROM a"}}
  - {id: c, component: duckdb.processor, mode: transform, needs: [b], config: {query: "SELECT 1"}}
"#;

#[test]
fn remote_runs_match_local_runs_table_for_table_and_event_for_event() {
    let project = example_project();
    project.write("multi.yaml", MULTI);
    project.write("failing.yaml", FAILING);
    for (pipeline, code) in [("pipeline.yaml", 0), ("multi.yaml", 0), ("failing.yaml", 1)] {
        let local_id = format!("local-{pipeline}");
        let remote_id = format!("remote-{pipeline}");
        // A worker runs one step at a time (ADR 0034): the local run does too, so that the
        // event sequences compare line for line.
        let local = project.osiris(&["run", pipeline, "--session-id", &local_id, "--jobs", "1"]);
        assert_eq!(local.code, code, "{}", local.all());
        let remote = project.osiris(&[
            "run",
            pipeline,
            "--target",
            "remote",
            "--session-id",
            &remote_id,
        ]);
        assert_eq!(remote.code, code, "{pipeline}: {}", remote.all());
        let (local_dir, remote_dir) = (
            session_dir(&project, &local_id),
            session_dir(&project, &remote_id),
        );
        assert!(
            !tables(&remote_dir).is_empty(),
            "the database was pulled back"
        );
        assert_eq!(
            dump(&local_dir),
            dump(&remote_dir),
            "{pipeline}: step tables"
        );
        assert_eq!(
            event_names(&local_dir),
            event_names(&remote_dir),
            "{pipeline}: event sequence"
        );
        for key in [
            "status",
            "ok",
            "exit_code",
            "steps_total",
            "steps_completed",
            "failed_step",
            "reason",
        ] {
            assert_eq!(
                status(&local_dir)[key],
                status(&remote_dir)[key],
                "{pipeline}: {key}"
            );
        }
        // Same progress lines, apart from durations and the session id.
        let shape = |ran: &Ran| -> Vec<String> {
            ran.stdout
                .lines()
                .filter(|l| l.trim_start().starts_with(['✓', '✗']))
                .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
                .collect()
        };
        assert_eq!(shape(&local), shape(&remote), "{pipeline}: progress");
        assert_eq!(
            local
                .stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .collect::<Vec<_>>(),
            remote
                .stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .collect::<Vec<_>>(),
        );
        // Artifacts came back too, and the session can be inspected like a local one.
        assert!(remote_dir.join("artifacts/a").is_dir() || pipeline != "failing.yaml");
        let shown = project.osiris(&["sessions", "show", &remote_id]);
        assert_eq!(shown.code, 0, "{}", shown.all());
    }
    let metrics: Vec<String> =
        jsonl(&session_dir(&project, "remote-multi.yaml").join("metrics.jsonl"))
            .iter()
            .map(|m| {
                format!(
                    "{}:{}",
                    m["metric"].as_str().unwrap(),
                    m["step_id"].as_str().unwrap_or("")
                )
            })
            .collect();
    assert!(
        metrics.contains(&"rows_written:joined".to_owned()),
        "{metrics:?}"
    );
    assert!(
        metrics.contains(&"run_duration_ms:".to_owned()),
        "{metrics:?}"
    );
    let status = status(&session_dir(&project, "remote-failing.yaml"));
    assert_eq!(status["failed_step"], "b");
    assert_eq!(
        status["steps_completed"], 1,
        "step c never ran on the worker"
    );
}

/// A file extractor's step is a view over its file by default (ADR 0036); the file is on the
/// worker, so the database the host pulls back carries the rows as a table instead.
#[test]
fn a_pulled_session_holds_the_rows_of_steps_kept_as_views_on_the_worker() {
    let project = example_project();
    let local = project.osiris(&["run", "pipeline.yaml", "--session-id", "lazy-local"]);
    assert_eq!(local.code, 0, "{}", local.all());
    let remote = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--target",
        "remote",
        "--session-id",
        "lazy-remote",
    ]);
    assert_eq!(remote.code, 0, "{}", remote.all());
    let kind = |id: &str| {
        rows(
            &session_dir(&project, id),
            "SELECT table_type FROM information_schema.tables WHERE table_name = 'read-orders'",
        )
    };
    assert_eq!(
        kind("lazy-local"),
        ["VIEW"],
        "locally the step stays a view"
    );
    assert_eq!(
        kind("lazy-remote"),
        ["BASE TABLE"],
        "pulled back as a table"
    );
    let expected = rows(
        &session_dir(&project, "lazy-local"),
        "SELECT * FROM \"read-orders\" ORDER BY ALL",
    );
    assert!(!expected.is_empty());
    // The input goes away: the pulled session still answers, with the same rows.
    std::fs::remove_file(project.path().join("data/orders.csv")).unwrap();
    assert_eq!(
        rows(
            &session_dir(&project, "lazy-remote"),
            "SELECT * FROM \"read-orders\" ORDER BY ALL"
        ),
        expected
    );
    let shown = project.osiris(&["sessions", "show", "lazy-remote", "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.all());
    assert!(!shown.stdout.contains("missing"), "{}", shown.stdout);
}

#[test]
fn no_pull_leaves_the_data_on_the_worker() {
    let project = example_project();
    let worker_dir = project.path().join("worker-sessions");
    let cmd = format!(
        "{OSIRIS} worker --stdio --sessions-dir {}",
        worker_dir.display()
    );
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--target",
        "remote",
        "--worker-cmd",
        &cmd,
        "--no-pull",
        "--session-id",
        "np",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let host = session_dir(&project, "np");
    assert!(!host.join("pipeline_data.duckdb").exists());
    assert!(host.join("status.json").is_file());
    assert_eq!(
        tables(&worker_dir.join("np")),
        ["read-orders", "revenue_by_customer"]
    );
}

/// A pipeline whose second step runs for minutes unless interrupted.
const LONG: &str = r#"
oml_version: "0.1.0"
name: long
steps:
  - {id: quick, component: duckdb.processor, mode: transform, config: {query: "SELECT 1 AS x"}}
  - id: heavy
    component: duckdb.processor
    mode: transform
    needs: [quick]
    config: {query: "SELECT sum(a.range * b.range) AS s FROM range(400000) a, range(400000) b"}
"#;

/// Starts the long pipeline remotely and waits until its heavy step runs on the worker;
/// returns the host process and the worker's pid.
fn start_long_remote(
    project: &Project,
    session: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, u32) {
    project.write("long.yaml", LONG);
    let mut command = Command::new(OSIRIS);
    command
        .env("TMPDIR", project.tmp_dir())
        .args([
            "run",
            "long.yaml",
            "--target",
            "remote",
            "--session-id",
            session,
        ])
        .args(extra)
        .current_dir(project.path())
        .env(
            "OSIRIS_WORKER_SESSIONS_DIR",
            project.path().join(".worker_sessions"),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    let events = session_dir(project, session).join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    while !text.contains("\"step_id\":\"heavy\"") {
        assert!(
            Instant::now() < deadline,
            "the heavy step never started: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
        text = std::fs::read_to_string(&events).unwrap_or_default();
    }
    let pid = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "worker_ready")
        .and_then(|e| e["pid"].as_u64())
        .expect("worker_ready names the worker pid");
    (child, u32::try_from(pid).unwrap())
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn a_worker_killed_mid_step_is_reported_within_seconds_with_its_stderr() {
    let project = Project::new();
    let (host, worker) = start_long_remote(&project, "killed", &[], &[]);
    std::thread::sleep(Duration::from_millis(200));
    signal(worker, "-KILL");
    let started = Instant::now();
    let output = host.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "reported in {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: step 'heavy' (duckdb.processor): worker"),
        "{stderr}"
    );
    assert!(stderr.contains("last stderr lines"), "{stderr}");
    assert!(
        stderr.contains("step 'heavy' started"),
        "the worker's own last words: {stderr}"
    );
    let session = session_dir(&project, "killed");
    let status = status(&session);
    assert_eq!(status["status"], "failed");
    assert_eq!(status["failed_step"], "heavy");
    let events = event_names(&session);
    assert!(
        events.ends_with(&["step_failed".into(), "run_error".into()]),
        "{events:?}"
    );
}

#[test]
fn a_hung_worker_is_given_up_after_the_heartbeat_timeout() {
    let project = Project::new();
    project.write("long.yaml", LONG);
    let started = Instant::now();
    let ran = project.osiris_env(
        &[
            "run",
            "long.yaml",
            "--target",
            "remote",
            "--heartbeat-timeout",
            "2s",
            "--session-id",
            "hung",
        ],
        &[("OSIRIS_WORKER_TEST_HANG_STEP", "heavy")],
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.stderr.contains("heartbeat timeout"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("freezing at step 'heavy'"),
        "{}",
        ran.stderr
    );
    let status = status(&session_dir(&project, "hung"));
    assert_eq!(status["failed_step"], "heavy");
    assert_eq!(status["steps_completed"], 1);
}

#[test]
fn a_step_longer_than_the_step_timeout_is_cancelled_and_fails_as_timeout() {
    let project = Project::new();
    project.write("long.yaml", LONG);
    let started = Instant::now();
    let ran = project.osiris(&[
        "run",
        "long.yaml",
        "--target",
        "remote",
        "--step-timeout",
        "1s",
        "--session-id",
        "slow",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.stderr.contains("(timeout)") || ran.stdout.contains("failed (timeout)"),
        "{}",
        ran.all()
    );
    let session = session_dir(&project, "slow");
    assert_eq!(
        tables(&session),
        ["quick"],
        "pulled back, without the cancelled step's table"
    );
    assert!(event_names(&session).contains(&"step_timeout".to_owned()));
}

#[test]
fn ctrl_c_on_the_host_cancels_the_step_on_the_worker_and_cleans_up() {
    let project = Project::new();
    let (host, worker) = start_long_remote(&project, "int", &[], &[]);
    std::thread::sleep(Duration::from_millis(300));
    signal(host.id(), "-INT");
    let started = Instant::now();
    let output = host.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!alive(worker), "the worker ended");
    let session = session_dir(&project, "int");
    assert_eq!(status(&session)["status"], "cancelled");
    assert_eq!(tables(&session), ["quick"], "pulled back after the cancel");
}

fn fake_worker(project: &Project, hello: &str) -> String {
    let script = project.write("fake-worker.sh", format!("echo '{hello}'\nsleep 5\n"));
    format!("sh {}", script.display())
}

#[test]
fn protocol_and_registry_mismatches_stop_before_anything_runs() {
    let project = example_project();
    let hello = r#"{"type":"hello","protocol":999,"worker_version":"9.9.9","registry_fingerprint":"sha256:x","heartbeat_ms":1000,"pid":1}"#;
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--target",
        "remote",
        "--worker-cmd",
        &fake_worker(&project, hello),
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("speaks protocol version 999, this host speaks 1"),
        "{}",
        ran.stderr
    );
    assert!(project.sessions().is_empty(), "nothing ran");

    let hello = r#"{"type":"hello","protocol":1,"worker_version":"0.1.0","registry_fingerprint":"sha256:other","heartbeat_ms":1000,"pid":1}"#;
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--target",
        "remote",
        "--worker-cmd",
        &fake_worker(&project, hello),
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("different component registry"),
        "{}",
        ran.stderr
    );
    assert!(project.sessions().is_empty());

    let ran = project.osiris(&["run", "pipeline.yaml", "--worker-cmd", "true"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.stderr.contains("add --target remote"), "{}", ran.stderr);

    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--target",
        "remote",
        "--worker-cmd",
        "echo oops >&2; exit 3",
    ]);
    // A worker that dies before its hello is a failed run (class remote), not bad input.
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.stderr.contains("oops") && ran.stderr.contains("exit status: 3"),
        "{}",
        ran.stderr
    );
}

#[test]
fn the_worker_rejects_malformed_and_oversized_messages_and_keeps_serving() {
    let mut worker = Command::new(OSIRIS)
        .args(["worker", "--stdio", "--sessions-dir"])
        .arg(std::env::temp_dir().join("osiris-it-worker"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = worker.stdin.take().unwrap();
    let mut stdout = BufReader::new(worker.stdout.take().unwrap());
    let mut next = || -> Value {
        loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "worker closed");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["type"] != "heartbeat" {
                return message;
            }
        }
    };
    assert_eq!(next()["type"], "hello");
    stdin.write_all(b"this is not json\n").unwrap();
    let error = next();
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("malformed"))
    );
    stdin.write_all(b"{\"type\":\"rm_rf\"}\n").unwrap();
    assert_eq!(next()["code"], "malformed");
    stdin.write_all(&vec![b'x'; 9 * 1024 * 1024]).unwrap();
    stdin.write_all(b"\n").unwrap();
    let error = next();
    assert_eq!(error["code"], "oversized", "{error}");
    stdin
        .write_all(b"{\"type\":\"exec_step\",\"step_id\":\"a\"}\n")
        .unwrap();
    assert_eq!(next()["code"], "unexpected");
    stdin
        .write_all(b"{\"type\":\"ping\",\"nonce\":7}\n")
        .unwrap();
    assert_eq!(next(), serde_json::json!({"type": "pong", "nonce": 7}));
    stdin.write_all(b"{\"type\":\"shutdown\"}\n").unwrap();
    assert_eq!(next()["type"], "bye");
    assert!(worker.wait().unwrap().success());
}

#[test]
fn the_host_ignores_malformed_and_oversized_worker_output() {
    let project = example_project();
    let cmd = format!(
        "echo 'Welcome to build-box'; head -c 9437184 /dev/zero | tr '\\0' x; echo; exec {OSIRIS} worker --stdio"
    );
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--target",
        "remote",
        "--worker-cmd",
        &cmd,
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.stderr.contains("sent a malformed message; ignored"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("sent a message of 9437184 bytes"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        tables(&project.session()),
        ["read-orders", "revenue_by_customer"]
    );
}

#[test]
fn a_listening_worker_serves_hosts_with_the_token_only() {
    let project = example_project();
    project.write("token", "s3cret-token-for-tests\n");
    project.write("wrong", "not-the-token\n");
    let mut worker = Command::new(OSIRIS)
        .args([
            "worker",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            "token",
            "--sessions-dir",
            "worker-sessions",
        ])
        .current_dir(project.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(worker.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(line.contains("listening on 127.0.0.1:"), "{line}");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--target",
        "remote",
        "--worker-addr",
        &addr,
        "--token-file",
        "wrong",
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("refused the connection (unauthorized)"),
        "{}",
        ran.stderr
    );
    assert!(project.sessions().is_empty());

    for id in ["tcp-1", "tcp-2"] {
        let ran = project.osiris(&[
            "run",
            "pipeline.yaml",
            "--target",
            "remote",
            "--worker-addr",
            &addr,
            "--token-file",
            "token",
            "--session-id",
            id,
        ]);
        assert_eq!(ran.code, 0, "{}", ran.all());
        assert_eq!(
            tables(&session_dir(&project, id)),
            ["read-orders", "revenue_by_customer"]
        );
    }
    for (path, bytes) in project.files("") {
        assert!(
            path == "token" || !String::from_utf8_lossy(&bytes).contains("s3cret-token-for-tests"),
            "{path} holds the token"
        );
    }
    let _ = worker.kill();
    let _ = worker.wait();
}

#[test]
fn no_secret_reaches_a_file_or_log_on_either_side() {
    let project = example_project();
    let secret = "tok-very-secret-98765";
    project.write(
        "osiris_connections.yaml",
        "connections:\n  filesystem:\n    vault:\n      base_dir: data\n      token: ${VAULT_TOKEN}\n",
    );
    project.write(
        "secret.yaml",
        format!(
            r#"
oml_version: "0.1.0"
name: secretive
steps:
  - {{id: read, component: filesystem.csv_extractor, mode: read, config: {{connection: "@filesystem.vault", path: orders.csv}}}}
  - {{id: leak, component: duckdb.processor, mode: transform, needs: [read], config: {{query: "SELECT * FROM \"{secret}\""}}}}
"#
        ),
    );
    let worker_dir = project.path().join("worker-sessions");
    let log = project.path().join("worker.log");
    let cmd = format!(
        "{OSIRIS} worker --stdio --sessions-dir {} 2>{}",
        worker_dir.display(),
        log.display()
    );
    for pull in [true, false] {
        let mut args = vec![
            "run",
            "secret.yaml",
            "--target",
            "remote",
            "--worker-cmd",
            &cmd,
        ];
        if !pull {
            args.push("--no-pull");
        }
        let ran = project.osiris_env(&args, &[("VAULT_TOKEN", secret)]);
        assert_eq!(ran.code, 1, "{}", ran.all());
        assert!(ran.stderr.contains("error: step 'leak'"), "{}", ran.stderr);
        assert!(!ran.all().contains(secret), "{}", ran.all());
    }
    let files = project.files("");
    assert!(
        files
            .iter()
            .any(|(p, _)| p.starts_with("worker-sessions/") && p.ends_with("cleaned_config.json"))
    );
    assert!(files.iter().any(|(p, _)| p.starts_with(".osiris_sessions/") && p.ends_with("pipeline_data.duckdb")));
    for (path, bytes) in files {
        if path == "secret.yaml" {
            continue;
        }
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{path} holds the secret"
        );
    }
}
