//! The worker spoken to directly over an in-memory stream: the whole message sequence of a run,
//! and the checks of `prepare`.

use std::sync::Arc;
use std::time::Duration;

use adapter_remote::protocol::{HostMessage, Prepare, StepConfig, WorkerMessage, specs_digest};
use adapter_remote::worker::{WorkerOptions, serve};
use base64::Engine as _;
use engine::Engine;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines};

fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(
        drivers_builtin::builtin_registry(),
        component_spec::SpecRegistry::builtin().unwrap(),
    ))
}

struct Peer {
    to_worker: tokio::io::WriteHalf<DuplexStream>,
    from_worker: Lines<BufReader<tokio::io::ReadHalf<DuplexStream>>>,
}

impl Peer {
    async fn send(&mut self, message: &HostMessage) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        self.to_worker.write_all(&line).await.unwrap();
    }

    /// The next message that is not a heartbeat; events and metrics are collected.
    async fn next(&mut self, events: &mut Vec<String>) -> WorkerMessage {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.from_worker.next_line())
                .await
                .expect("the worker answers")
                .unwrap()
                .expect("the worker is still there");
            match serde_json::from_str::<WorkerMessage>(&line).unwrap() {
                WorkerMessage::Heartbeat { .. } => {}
                WorkerMessage::Event { record } => {
                    events.push(record["event"].as_str().unwrap().to_owned());
                }
                WorkerMessage::Metric { .. } => {}
                other => return other,
            }
        }
    }
}

fn start(engine: Arc<Engine>, root: &std::path::Path) -> Peer {
    let (host, worker) = tokio::io::duplex(1 << 16);
    let (worker_read, worker_write) = tokio::io::split(worker);
    let options = WorkerOptions {
        sessions_root: root.to_owned(),
        base_dir: None,
        heartbeat: Duration::from_millis(50),
        version: "test".into(),
    };
    tokio::spawn(serve(
        engine,
        BufReader::new(worker_read),
        worker_write,
        options,
    ));
    let (read, write) = tokio::io::split(host);
    Peer {
        to_worker: write,
        from_worker: BufReader::new(read).lines(),
    }
}

fn plan() -> pipeline::Plan {
    let text = r#"
oml_version: "0.1.0"
name: t
steps:
  - {id: a, component: duckdb.processor, mode: transform, config: {query: "SELECT range AS x FROM range(5)"}}
  - {id: b, component: duckdb.processor, mode: transform, needs: [a], config: {query: "SELECT sum(x) AS s FROM a"}}
"#;
    pipeline::parse(text).unwrap().0.plan().unwrap()
}

fn prepare(engine: &Engine, digest: Option<&str>) -> HostMessage {
    let plan = plan();
    let steps = plan
        .steps
        .iter()
        .map(|s| StepConfig {
            step_id: s.id.clone(),
            config: s.config.clone(),
            connection: None,
            secret_keys: Vec::new(),
            state: None,
            source: None,
        })
        .collect();
    HostMessage::Prepare(Box::new(Prepare {
        session_id: "w1".into(),
        base_dir: "/".into(),
        specs_digest: digest.map_or_else(|| specs_digest(engine.specs(), &plan), str::to_owned),
        plan,
        steps,
        secrets: vec!["never-shown-secret".into()],
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_run_over_the_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let mut peer = start(Arc::clone(&engine), dir.path());
    let mut events = Vec::new();
    match peer.next(&mut events).await {
        WorkerMessage::Hello {
            protocol,
            registry_fingerprint,
            heartbeat_ms,
            ..
        } => {
            assert_eq!(protocol, 1);
            assert_eq!(registry_fingerprint, engine.registry_fingerprint());
            assert_eq!(heartbeat_ms, 50);
        }
        other => panic!("{other:?}"),
    }
    peer.send(&prepare(&engine, Some("sha256:other"))).await;
    match peer.next(&mut events).await {
        WorkerMessage::Error { code, .. } => assert_eq!(code, "specs_mismatch"),
        other => panic!("{other:?}"),
    }
    peer.send(&prepare(&engine, None)).await;
    assert!(matches!(
        peer.next(&mut events).await,
        WorkerMessage::Prepared { .. }
    ));

    peer.send(&HostMessage::ExecStep {
        step_id: "a".into(),
        inputs: Vec::new(),
    })
    .await;
    let WorkerMessage::StepResult(a) = peer.next(&mut events).await else {
        panic!()
    };
    assert!(
        matches!(a.status, engine::StepStatus::Ok { rows: 5, .. }),
        "{a:?}"
    );
    assert_eq!(events.first().map(String::as_str), Some("step_start"));
    assert_eq!(
        events.last().map(String::as_str),
        Some("step_complete"),
        "events come before the result"
    );

    peer.send(&HostMessage::ExecStep {
        step_id: "zzz".into(),
        inputs: Vec::new(),
    })
    .await;
    assert!(
        matches!(peer.next(&mut events).await, WorkerMessage::Error { code, .. } if code == "unexpected")
    );

    let inputs = vec![adapter_remote::protocol::InputRef {
        step_id: "a".into(),
        table: "a".into(),
        rows: 5,
    }];
    peer.send(&HostMessage::ExecStep {
        step_id: "b".into(),
        inputs,
    })
    .await;
    peer.send(&HostMessage::Ping { nonce: 42 }).await;
    let mut got_pong = false;
    let b = loop {
        match peer.next(&mut events).await {
            WorkerMessage::Pong { nonce } => {
                assert_eq!(nonce, 42);
                got_pong = true;
            }
            WorkerMessage::StepResult(report) => break report,
            other => panic!("{other:?}"),
        }
    };
    assert!(got_pong);
    assert!(
        matches!(b.status, engine::StepStatus::Ok { rows: 1, .. }),
        "{b:?}"
    );

    peer.send(&HostMessage::Cleanup).await;
    let WorkerMessage::Cleaned { files } = peer.next(&mut events).await else {
        panic!()
    };
    assert!(files.contains_key("pipeline_data.duckdb"), "{files:?}");
    assert!(
        files.contains_key("artifacts/b/cleaned_config.json"),
        "{files:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("database_closed"));

    peer.send(&HostMessage::Pull).await;
    let mut received: Map<String, Value> = Map::new();
    let mut database = Vec::new();
    let mut current = String::new();
    loop {
        match peer.next(&mut events).await {
            WorkerMessage::FileBegin { path, .. } => current = path,
            WorkerMessage::FileChunk { path, data } => {
                assert_eq!(path, current);
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap();
                if path == "pipeline_data.duckdb" {
                    database.extend_from_slice(&bytes);
                }
            }
            WorkerMessage::FileEnd { path, sha256 } => {
                received.insert(path, sha256.into());
            }
            WorkerMessage::PullDone { files: n, .. } => {
                assert_eq!(n as usize, files.len());
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(received.len(), files.len());
    let copy = dir.path().join("copy.duckdb");
    std::fs::write(&copy, &database).unwrap();
    let conn = duckdb::Connection::open(&copy).unwrap();
    let s: i64 = conn.query_row("SELECT s FROM b", [], |r| r.get(0)).unwrap();
    assert_eq!(s, 10, "the pulled database holds the step tables");

    peer.send(&HostMessage::Shutdown {
        remove_session: true,
    })
    .await;
    assert!(matches!(peer.next(&mut events).await, WorkerMessage::Bye));
    assert!(
        !dir.path().join("w1").exists(),
        "session removed after the pull"
    );
}
