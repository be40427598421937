//! Safe by default (issue 13): hostile and careless uses of the real binary. A reused session
//! id, credentials in URLs and echoed `Authorization` headers, SIGTERM / SIGHUP, leftovers of
//! killed runs, queries reaching for the machine's files, unusable environments.
//! docs/security.md lists these cases with their exit codes.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::common::{Project, example_project, jsonl, signal, start_long, status, tables};

const OSIRIS: &str = env!("CARGO_BIN_EXE_osiris");

fn state_of(project: &Project, id: &str) -> String {
    let ran = project.osiris(&["sessions", "list", "--json"]);
    let list: Value = serde_json::from_str(&ran.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| "missing".into())
}

#[test]
fn reusing_the_id_of_a_live_run_is_refused_and_the_live_run_is_untouched() {
    let project = example_project();
    let live = start_long(&project, "live");
    let dir = project.path().join(".osiris_sessions/live");
    let manifest = std::fs::read(dir.join("manifest.yaml")).unwrap();
    let lock = std::fs::read(dir.join("run.lock")).unwrap();

    for target in [&["--target", "local"][..], &["--target", "remote"][..]] {
        let mut args = vec!["run", "pipeline.yaml", "--session-id", "live"];
        args.extend_from_slice(target);
        let ran = project.osiris(&args);
        assert_eq!(ran.code, 2, "{}", ran.all());
        assert!(
            ran.stderr.contains("session `live` already exists")
                && ran.stderr.contains("choose another --session-id"),
            "{}",
            ran.stderr
        );
    }
    assert_eq!(std::fs::read(dir.join("manifest.yaml")).unwrap(), manifest);
    assert_eq!(std::fs::read(dir.join("run.lock")).unwrap(), lock);
    assert!(!dir.join("status.json").exists());
    assert_eq!(state_of(&project, "live"), "running");

    // gc never removes a session whose lock belongs to a live process.
    let gc = project.osiris(&["sessions", "gc", "--json"]);
    assert_eq!(gc.code, 0, "{}", gc.all());
    assert!(dir.join("run.lock").exists(), "{}", gc.stdout);
    assert_eq!(state_of(&project, "live"), "running");

    signal(live.id(), "-INT");
    let output = live.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert_eq!(status(&dir)["status"], "cancelled");
}

#[test]
fn reusing_the_id_of_a_finished_run_is_refused_without_merging_the_runs() {
    let project = example_project();
    let first = project.osiris(&["run", "pipeline.yaml", "--session-id", "done"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let dir = project.path().join(".osiris_sessions/done");
    let events = std::fs::read(dir.join("events.jsonl")).unwrap();
    let again = project.osiris(&["run", "pipeline.yaml", "--session-id", "done", "--json"]);
    assert_eq!(again.code, 2, "{}", again.all());
    let out: Value = serde_json::from_str(&again.stdout).unwrap();
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("session `done` already exists"),
        "{out}"
    );
    assert_eq!(std::fs::read(dir.join("events.jsonl")).unwrap(), events);
    assert_eq!(status(&dir)["status"], "ok");
}

#[test]
fn a_worker_refuses_a_session_id_it_already_holds() {
    let project = example_project();
    let worker_dir = project.path().join("worker-sessions");
    let env = [("OSIRIS_WORKER_SESSIONS_DIR", worker_dir.to_str().unwrap())];
    let args = |root: &'static str| {
        vec![
            "run",
            "pipeline.yaml",
            "--target",
            "remote",
            "--no-pull",
            "--session-id",
            "shared",
            "--sessions-dir",
            root,
        ]
    };
    let first = project.osiris_env(&args("host-a"), &env);
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(worker_dir.join("shared").is_dir(), "--no-pull keeps it");
    // Another host (another sessions dir) with the same id reaches the same worker directory.
    let second = project.osiris_env(&args("host-b"), &env);
    assert_eq!(second.code, 2, "{}", second.all());
    assert!(
        second.stderr.contains("session_exists") && second.stderr.contains("already exists"),
        "{}",
        second.stderr
    );
    assert!(!project.path().join("host-b/shared").exists());
}

/// An HTTP server answering every request with 401 and a body that echoes the request line and
/// its `Authorization` header, as careless servers do. Returns its port.
fn echo_401_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = Vec::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if head.is_empty() || line.to_ascii_lowercase().starts_with("authorization") {
                        head.push(line.trim_end().to_owned());
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let answer = format!("unauthorized; you sent: {}", head.join(" | "));
                let _ = write!(
                    stream,
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    port
}

#[test]
fn credentials_in_urls_and_echoed_authorization_headers_never_reach_output_or_session_files() {
    const PASS: &str = "Zq9-url!pass";
    const BASIC: &str = "Xw7-basic!pw";
    let port = echo_401_server();
    let project = Project::new();
    project.write(
        "osiris_connections.yaml",
        format!(
            "connections:\n  graphql:\n    inurl:\n      endpoint: http://alice:${{URL_PASS}}@127.0.0.1:{port}/graphql\n      auth_type: none\n    basic:\n      endpoint: http://127.0.0.1:{port}/graphql\n      auth_type: basic\n      auth_username: bob\n      auth_password: ${{BASIC_PASS}}\n"
        ),
    );
    for alias in ["inurl", "basic"] {
        project.write(
            &format!("{alias}.yaml"),
            format!(
                "oml_version: \"0.1.0\"\nname: {alias}\nsteps:\n  - id: users\n    component: graphql.extractor\n    mode: read\n    config:\n      connection: \"@graphql.{alias}\"\n      query: \"query {{ users {{ id }} }}\"\n      data_path: data.users\n"
            ),
        );
    }
    let env = [("URL_PASS", PASS), ("BASIC_PASS", BASIC)];
    let mut outputs = Vec::new();
    for alias in ["inurl", "basic"] {
        let ran = project.osiris_env(&["run", &format!("{alias}.yaml")], &env);
        assert_eq!(ran.code, 1, "{}", ran.all());
        assert!(
            ran.all().contains("unauthorized; you sent"),
            "{}",
            ran.all()
        );
        outputs.push(ran.all());
        let ran = project.osiris_env(&["run", &format!("{alias}.yaml"), "--json"], &env);
        outputs.push(ran.all());
        let ran = project.osiris_env(
            &["run", &format!("{alias}.yaml"), "--target", "remote"],
            &env,
        );
        assert_eq!(ran.code, 1, "{}", ran.all());
        outputs.push(ran.all());
        for json in [&[][..], &["--json"][..]] {
            let mut args = vec!["connections", "doctor"];
            let reference = format!("@graphql.{alias}");
            args.push(&reference);
            args.extend_from_slice(json);
            let ran = project.osiris_env(&args, &env);
            assert_eq!(ran.code, 1, "{}", ran.all());
            assert!(ran.all().contains("auth"), "{}", ran.all());
            assert!(
                ran.all().contains("unauthorized; you sent"),
                "{}",
                ran.all()
            );
            outputs.push(ran.all());
        }
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forbidden = Vec::new();
    for (user, secret) in [("alice", PASS), ("bob", BASIC)] {
        forbidden.push(secret.to_owned());
        forbidden.push(secret.replace('!', "%21"));
        forbidden.push(b64.encode(secret));
        forbidden.push(b64.encode(format!("{user}:{secret}")));
        forbidden.push(
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("{user}:{secret}")),
        );
    }
    let mut files = project.files(".osiris_sessions");
    assert!(
        files
            .iter()
            .any(|(p, _)| p.ends_with("cleaned_config.json")),
        "the configs were written"
    );
    files.extend(
        outputs
            .into_iter()
            .enumerate()
            .map(|(i, o)| (format!("output #{i}"), o.into_bytes())),
    );
    for (path, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for secret in &forbidden {
            assert!(
                !text.contains(secret.as_str()),
                "{secret} leaked into {path}: {text}"
            );
        }
        assert!(
            !text.contains("alice:"),
            "URL user-info leaked into {path}: {text}"
        );
    }
}

fn start(project: &Project, args: &[&str]) -> Child {
    Command::new(OSIRIS)
        .args(args)
        .env("TMPDIR", project.tmp_dir())
        .current_dir(project.path())
        .env(
            "OSIRIS_WORKER_SESSIONS_DIR",
            project.path().join(".worker_sessions"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".osiris-tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// A pipeline whose CSV writer writes for seconds: a big table, then a slow sorted write.
const BIG_WRITE: &str = r#"
oml_version: "0.1.0"
name: bigwrite
steps:
  - id: big
    component: duckdb.processor
    mode: transform
    config: {query: "SELECT range AS id, range * 7 AS b, 'a row of padding text number ' || range AS c FROM range(3000000)"}
  - id: out
    component: filesystem.csv_writer
    mode: write
    needs: [big]
    config: {path: output/big.csv}
"#;

fn sigterm_stops_a_csv_write_cleanly(target: &str, session: &str) {
    let project = Project::new();
    project.write("big.yaml", BIG_WRITE);
    let child = start(
        &project,
        &[
            "run",
            "big.yaml",
            "--target",
            target,
            "--session-id",
            session,
        ],
    );
    let output_dir = project.path().join("output");
    wait_for("the CSV writer's temporary file", || {
        !temp_files(&output_dir).is_empty()
    });
    signal(child.id(), "-TERM");
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(started.elapsed() < Duration::from_secs(20), "{stderr}");
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    let dir = project.path().join(".osiris_sessions").join(session);
    let status = status(&dir);
    assert_eq!(status["status"], "cancelled", "{status}");
    assert_eq!(status["exit_code"], 143, "{status}");
    assert!(!dir.join("run.lock").exists());
    assert_eq!(state_of(&project, session), "cancelled");
    assert_eq!(temp_files(&output_dir), Vec::<PathBuf>::new());
    assert!(!output_dir.join("big.csv").exists(), "no partial output");
}

#[test]
fn sigterm_cancels_a_local_run_cleanly_and_exits_143() {
    sigterm_stops_a_csv_write_cleanly("local", "term");
}

#[test]
fn sigterm_cancels_a_remote_run_cleanly_and_exits_143() {
    sigterm_stops_a_csv_write_cleanly("remote", "rterm");
}

#[test]
fn sighup_cancels_a_run_and_exits_129() {
    let project = Project::new();
    let child = start_long(&project, "hup");
    signal(child.id(), "-HUP");
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(129),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = project.path().join(".osiris_sessions/hup");
    assert_eq!(status(&dir)["status"], "cancelled");
    assert_eq!(status(&dir)["exit_code"], 129);
    assert_eq!(tables(&dir), ["quick"]);
}

#[test]
fn leftovers_of_killed_runs_are_cleaned_by_the_next_run_and_by_gc() {
    let project = example_project();
    // A CSV writer killed with SIGKILL leaves its temporary file next to the output.
    let stale = project.write(
        "output/.revenue_by_customer.csv.999999999-0.osiris-tmp",
        "x",
    );
    let ran = project.osiris(&["run", "pipeline.yaml", "--session-id", "next"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(!stale.exists(), "the next run removed it");
    let events = jsonl(&project.path().join(".osiris_sessions/next/events.jsonl"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "stale_temp_file_removed"),
        "{events:?}"
    );

    // A staging table in a kept run database, and the directory of a killed worker.
    {
        let db = project
            .path()
            .join(".osiris_sessions/next/pipeline_data.duckdb");
        let conn = duckdb::Connection::open(db).unwrap();
        conn.execute_batch("CREATE TABLE \"__osiris_staging_out\" AS SELECT 1 AS x")
            .unwrap();
    }
    let worker_root = project.path().join("worker-sessions");
    let dead = worker_root.join("killed-run");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(
        dead.join("run.lock"),
        r#"{"pid": 999999999, "started_at": "2026-01-01T00:00:00+00:00"}"#,
    )
    .unwrap();
    std::fs::write(dead.join("pipeline_data.duckdb"), "").unwrap();
    let kept = worker_root.join("kept-run"); // ended in order with --no-pull: no lock
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("events.jsonl"), "").unwrap();

    let gc = project.osiris_env(
        &["sessions", "gc", "--keep-last", "1", "--json"],
        &[("OSIRIS_WORKER_SESSIONS_DIR", worker_root.to_str().unwrap())],
    );
    assert_eq!(gc.code, 0, "{}", gc.all());
    let out: Value = serde_json::from_str(&gc.stdout).unwrap();
    assert_eq!(
        out["staging_tables_dropped"],
        serde_json::json!(["next:__osiris_staging_out"])
    );
    assert_eq!(
        out["worker_dirs_removed"].as_array().unwrap().len(),
        1,
        "{out}"
    );
    assert!(!dead.exists() && kept.exists());
    let session = project.path().join(".osiris_sessions/next");
    assert_eq!(tables(&session), ["read-orders", "revenue_by_customer"]);
}

#[test]
fn sessions_query_renders_timestamptz_and_cannot_reach_the_machine() {
    let project = Project::new();
    project.write(
        "tz.yaml",
        "oml_version: \"0.1.0\"\nname: tz\nsteps:\n  - {id: t, component: duckdb.processor, mode: transform, config: {query: \"SELECT TIMESTAMPTZ '2024-01-01 10:00:00+02' AS at, 1 AS n\"}}\n",
    );
    let ran = project.osiris(&["run", "tz.yaml", "--session-id", "tz"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    for format in ["table", "csv", "json"] {
        let q = project.osiris(&[
            "sessions",
            "query",
            "tz",
            "SELECT * FROM t",
            "--format",
            format,
        ]);
        assert_eq!(q.code, 0, "{format}: {}", q.all());
        assert!(
            q.stdout.contains("2024-01-01T08:00:00"),
            "{format}: {}",
            q.stdout
        );
    }
    let copied = project.path().join("copied.csv");
    for sql in [
        "SELECT * FROM read_text('/etc/passwd')".to_owned(),
        format!("COPY t TO '{}'", copied.display()),
        format!(
            "ATTACH '{}' AS x",
            project.path().join("other.duckdb").display()
        ),
    ] {
        let q = project.osiris(&["sessions", "query", "tz", &sql]);
        assert_eq!(q.code, 2, "{sql}: {}", q.all());
        assert!(!q.stdout.contains("root:"), "{sql}: {}", q.stdout);
    }
    assert!(!copied.exists());
}

#[test]
fn a_worker_dying_before_hello_is_a_failed_remote_run() {
    let project = example_project();
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--target",
        "remote",
        "--worker-cmd",
        "echo 'worker cannot start' >&2; exit 3",
    ]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.stderr.contains("error (remote)"), "{}", ran.stderr);
    assert!(ran.stderr.contains("worker cannot start"), "{}", ran.stderr);
    let ran = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--target",
        "remote",
        "--json",
        "--worker-cmd",
        "exit 3",
    ]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    let out: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(out["error_class"], "remote");
    assert_eq!(out["status"], "error");
    assert_eq!(out["kind"], "failed");
    assert_eq!(out["exit_code"], 1);
}

#[test]
fn a_killed_worker_run_does_not_claim_step_tables_it_does_not_have() {
    let project = Project::new();
    project.write("big.yaml", BIG_WRITE);
    let child = start(
        &project,
        &[
            "run",
            "big.yaml",
            "--target",
            "remote",
            "--session-id",
            "wk",
        ],
    );
    let events = project.path().join(".osiris_sessions/wk/events.jsonl");
    let mut pid = None;
    wait_for("the worker's first step", || {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        pid = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["event"] == "worker_ready")
            .and_then(|e| e["pid"].as_u64());
        pid.is_some() && text.contains("\"step_id\":\"big\"")
    });
    signal(u32::try_from(pid.unwrap()).unwrap(), "-KILL");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("step tables in pipeline_data.duckdb"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not pulled back from the worker"),
        "{stdout}"
    );
}

#[test]
fn an_unusable_sessions_dir_is_reported_once_with_exit_2() {
    let project = example_project();
    project.write("not-a-dir", "x");
    let ran = project.osiris(&["run", "pipeline.yaml", "--sessions-dir", "not-a-dir/sub"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert_eq!(
        ran.stderr.matches("Not a directory").count(),
        1,
        "{}",
        ran.stderr
    );
}
