//! `osiris worker`: runs the steps a host sends, one at a time, with the engine's own
//! [`Engine::run_step`] against the worker's session directory and `pipeline_data.duckdb`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use driver_api::{InputTable, TableName};
use engine::{Engine, PreparedPlan, PreparedStep, StepReport};
use execution_context::{ARTIFACTS_DIR, DATABASE_FILE, ExecutionContext, LogKind, Redactor};
use pipeline::connections::ConnectionRef;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufRead, AsyncReadExt, AsyncWrite, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::protocol::{
    CHUNK_BYTES, HostMessage, InputRef, Line, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, Prepare,
    WorkerMessage, read_line, specs_digest, write_message,
};

/// Test-only hook: when set to a step id, the worker freezes (no heartbeat, no answer) as soon
/// as the host asks it to run that step, to test the host's heartbeat timeout. Never set it in
/// production.
pub const TEST_HANG_ENV: &str = "OSIRIS_WORKER_TEST_HANG_STEP";

/// How long a cancelled step may take to stop before the worker gives up waiting.
const CANCEL_WAIT: Duration = Duration::from_secs(15);

/// Where a worker keeps its session directories unless told otherwise
/// (`<temp dir>/osiris-worker-sessions`); `osiris sessions gc` looks there for the directories
/// of killed workers.
pub fn default_sessions_root() -> PathBuf {
    std::env::temp_dir().join("osiris-worker-sessions")
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Directory holding the worker's session directories.
    pub sessions_root: PathBuf,
    /// Directory relative paths resolve against, instead of the host's.
    pub base_dir: Option<PathBuf>,
    /// Interval of `heartbeat` messages.
    pub heartbeat: Duration,
    /// The `osiris` version reported in `hello`.
    pub version: String,
}

/// One line to send: control messages (small, unbounded) or bulk file chunks (bounded, so a
/// large database is never held in memory whole).
struct Outbox {
    control: mpsc::UnboundedSender<Vec<u8>>,
    bulk: mpsc::Sender<Vec<u8>>,
}

fn line(message: &WorkerMessage) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).expect("protocol messages serialize");
    line.push(b'\n');
    line
}

impl Outbox {
    fn send(&self, message: &WorkerMessage) {
        // A closed channel means the host is gone; the reader sees EOF and ends the session.
        let _ = self.control.send(line(message));
    }

    fn error(&self, code: &str, message: impl Into<String>) {
        self.send(&WorkerMessage::Error {
            code: code.into(),
            message: message.into(),
        });
    }

    async fn send_bulk(&self, message: &WorkerMessage) -> bool {
        self.bulk.send(line(message)).await.is_ok()
    }
}

struct Run {
    exec: Arc<ExecutionContext>,
    prepared: PreparedPlan,
    base_dir: PathBuf,
}

enum Incoming {
    Message(Box<HostMessage>),
    Malformed(String),
    Oversized(usize),
    Eof,
}

/// Serves one host over `reader`/`writer` until it sends `shutdown` or goes away. Sends `hello`
/// first.
pub async fn serve<R, W>(
    engine: Arc<Engine>,
    reader: R,
    writer: W,
    options: WorkerOptions,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (bulk_tx, mut bulk_rx) = mpsc::channel::<Vec<u8>>(4);
    let out = Arc::new(Outbox {
        control: control_tx,
        bulk: bulk_tx,
    });
    let writer_task = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut writer = writer;
        let mut control_open = true;
        let mut bulk_open = true;
        while control_open || bulk_open {
            let line = tokio::select! {
                biased;
                line = control_rx.recv(), if control_open => match line {
                    Some(line) => line,
                    None => { control_open = false; continue; }
                },
                line = bulk_rx.recv(), if bulk_open => match line {
                    Some(line) => line,
                    None => { bulk_open = false; continue; }
                },
            };
            if writer.write_all(&line).await.is_err() {
                break;
            }
            // Flush when nothing else is queued: one syscall for a burst of events.
            if control_rx.is_empty() && bulk_rx.is_empty() && writer.flush().await.is_err() {
                break;
            }
        }
        let _ = writer.flush().await;
    });

    let (in_tx, mut incoming) = mpsc::channel::<Incoming>(16);
    let reader_task = tokio::spawn(async move {
        let mut reader = reader;
        loop {
            let item = match read_line(&mut reader, MAX_MESSAGE_BYTES).await {
                Ok(Line::Text(text)) => match serde_json::from_slice::<HostMessage>(&text) {
                    Ok(message) => Incoming::Message(Box::new(message)),
                    Err(error) => Incoming::Malformed(error.to_string()),
                },
                Ok(Line::Oversized(n)) => Incoming::Oversized(n),
                Ok(Line::Eof) | Err(_) => Incoming::Eof,
            };
            let eof = matches!(item, Incoming::Eof);
            if in_tx.send(item).await.is_err() || eof {
                break;
            }
        }
    });

    let hung = Arc::new(AtomicBool::new(false));
    let current: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let heartbeat_task = {
        let out = Arc::clone(&out);
        let hung = Arc::clone(&hung);
        let current = Arc::clone(&current);
        let every = options.heartbeat;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if hung.load(Ordering::SeqCst) {
                    continue;
                }
                let step_id = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
                out.send(&WorkerMessage::Heartbeat { step_id });
            }
        })
    };

    out.send(&WorkerMessage::Hello {
        protocol: PROTOCOL_VERSION,
        worker_version: options.version.clone(),
        registry_fingerprint: engine.registry_fingerprint(),
        heartbeat_ms: u64::try_from(options.heartbeat.as_millis()).unwrap_or(u64::MAX),
        pid: std::process::id(),
    });
    eprintln!(
        "osiris worker {} (protocol {PROTOCOL_VERSION}, pid {}): ready",
        options.version,
        std::process::id()
    );

    let hang_step = std::env::var(TEST_HANG_ENV).ok();
    let mut run: Option<Run> = None;
    let mut running: Option<(String, JoinHandle<StepReport>)> = None;
    loop {
        let incoming = tokio::select! {
            item = incoming.recv() => item.unwrap_or(Incoming::Eof),
            report = async { (&mut running.as_mut().expect("guarded by the condition").1).await }, if running.is_some() => {
                let (step_id, _) = running.take().expect("a step was running");
                finish_step(&out, &current, &step_id, report);
                continue;
            }
        };
        let message = match incoming {
            Incoming::Message(message) => *message,
            Incoming::Malformed(error) => {
                out.error(
                    "malformed",
                    format!("not a valid message: {}", truncate(&error)),
                );
                continue;
            }
            Incoming::Oversized(n) => {
                out.error(
                    "oversized",
                    format!("message of {n} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes; discarded"),
                );
                continue;
            }
            Incoming::Eof => {
                // The host is gone: stop the step, close the database, leave.
                stop_running(&out, &current, run.as_ref(), &mut running).await;
                if let Some(run) = &run {
                    let _ = run.exec.close_database();
                }
                eprintln!("osiris worker: the host closed the connection");
                break;
            }
        };
        match message {
            HostMessage::Auth { .. } => out.error("unexpected", "already authenticated"),
            HostMessage::Ping { nonce } => out.send(&WorkerMessage::Pong { nonce }),
            HostMessage::Prepare(prepare) => {
                if run.is_some() {
                    out.error("unexpected", "this session is already prepared");
                    continue;
                }
                match prepare_run(&engine, *prepare, &options, &out) {
                    Ok(prepared) => {
                        eprintln!(
                            "osiris worker: session {} prepared ({} steps) in {}",
                            prepared.exec.session_id(),
                            prepared.prepared.steps.len(),
                            prepared.exec.session_dir().display()
                        );
                        out.send(&WorkerMessage::Prepared {
                            session_id: prepared.exec.session_id().to_owned(),
                            session_dir: prepared.exec.session_dir().display().to_string(),
                        });
                        run = Some(prepared);
                    }
                    Err((code, message)) => out.error(code, message),
                }
            }
            HostMessage::ExecStep { step_id, inputs } => {
                let Some(current_run) = &run else {
                    out.error("unexpected", "exec_step before prepare");
                    continue;
                };
                if let Some((busy, _)) = &running {
                    out.error("busy", format!("step '{busy}' is still running"));
                    continue;
                }
                let Some(step) = current_run
                    .prepared
                    .steps
                    .iter()
                    .find(|s| s.step.id == step_id)
                    .cloned()
                else {
                    out.error(
                        "unexpected",
                        format!("no step '{step_id}' in the prepared plan"),
                    );
                    continue;
                };
                let outputs = match input_tables(&inputs) {
                    Ok(outputs) => outputs,
                    Err(message) => {
                        out.error("unexpected", message);
                        continue;
                    }
                };
                if hang_step.as_deref() == Some(step_id.as_str()) {
                    eprintln!(
                        "osiris worker: test hook {TEST_HANG_ENV}: freezing at step '{step_id}'"
                    );
                    hung.store(true, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
                eprintln!("osiris worker: step '{step_id}' started");
                *current.lock().unwrap_or_else(|p| p.into_inner()) = Some(step_id.clone());
                let engine = Arc::clone(&engine);
                let exec = Arc::clone(&current_run.exec);
                let base_dir = current_run.base_dir.clone();
                let handle = tokio::spawn(async move {
                    let cancel = exec.cancellation().child_token();
                    engine
                        .run_step(&step, &exec, &base_dir, &outputs, &cancel)
                        .await
                });
                running = Some((step_id, handle));
            }
            HostMessage::Cancel { reason } => {
                if let (Some(run), Some((step_id, _))) = (&run, &running) {
                    eprintln!("osiris worker: cancelling step '{step_id}' ({reason})");
                    run.exec.cancellation().cancel();
                }
            }
            HostMessage::Cleanup => {
                stop_running(&out, &current, run.as_ref(), &mut running).await;
                let Some(run) = &run else {
                    out.error("unexpected", "cleanup before prepare");
                    continue;
                };
                // The files a source view reads are on this machine: the copy the host pulls
                // carries their rows instead (ADR 0036).
                if run.exec.database_path().exists()
                    && let Err(error) =
                        run.exec
                            .connection()
                            .map_err(|e| e.to_string())
                            .and_then(|conn| {
                                execution_context::sources::materialize_views(&conn)
                                    .map_err(|e| e.to_string())
                            })
                {
                    out.error("io", run.exec.redactor().redact(&error).into_owned());
                    continue;
                }
                if let Err(error) = run.exec.close_database() {
                    out.error(
                        "io",
                        run.exec.redactor().redact(&error.to_string()).into_owned(),
                    );
                    continue;
                }
                let files = session_files(run.exec.session_dir())
                    .into_iter()
                    .collect::<BTreeMap<_, _>>();
                out.send(&WorkerMessage::Cleaned { files });
            }
            HostMessage::Pull => {
                let Some(run) = &run else {
                    out.error("unexpected", "pull before prepare");
                    continue;
                };
                if running.is_some() || run.exec.is_database_open() {
                    out.error("unexpected", "pull before cleanup");
                    continue;
                }
                if let Err(error) = pull(&out, run.exec.session_dir()).await {
                    out.error("io", error);
                }
            }
            HostMessage::Shutdown { remove_session } => {
                stop_running(&out, &current, run.as_ref(), &mut running).await;
                if let Some(run) = &run {
                    let _ = run.exec.close_database();
                    if remove_session {
                        let _ = std::fs::remove_dir_all(run.exec.session_dir());
                    } else {
                        let _ = sessions::release(run.exec.session_dir());
                    }
                }
                out.send(&WorkerMessage::Bye);
                break;
            }
        }
    }
    // Every holder of the outbox goes (the run's tap, the heartbeat), so that the writer ends.
    drop(run);
    heartbeat_task.abort();
    let _ = heartbeat_task.await;
    reader_task.abort();
    drop(out);
    // Everything queued (the last events, `bye`) goes out before the stream closes.
    let _ = writer_task.await;
    Ok(())
}

/// Sends a finished step's result (its events went out before it, in order).
fn finish_step(
    out: &Outbox,
    current: &Mutex<Option<String>>,
    step_id: &str,
    report: Result<StepReport, tokio::task::JoinError>,
) {
    *current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let report = report.unwrap_or_else(|error| StepReport {
        step_id: step_id.to_owned(),
        component: String::new(),
        mode: pipeline::StepMode::Transform,
        status: engine::StepStatus::Failed {
            error_class: driver_api::ErrorClass::Internal,
            error: format!("the step task ended abnormally: {error}"),
        },
        duration_ms: 0,
        state: None,
    });
    eprintln!("osiris worker: step '{step_id}' finished");
    out.send(&WorkerMessage::StepResult(report));
}

/// Cancels a running step and waits (bounded) for its result, which is still sent.
async fn stop_running(
    out: &Outbox,
    current: &Mutex<Option<String>>,
    run: Option<&Run>,
    running: &mut Option<(String, JoinHandle<StepReport>)>,
) {
    let Some((step_id, mut handle)) = running.take() else {
        return;
    };
    if let Some(run) = run {
        run.exec.cancellation().cancel();
    }
    match tokio::time::timeout(CANCEL_WAIT, &mut handle).await {
        Ok(report) => finish_step(out, current, &step_id, report),
        Err(_) => handle.abort(),
    }
}

fn prepare_run(
    engine: &Engine,
    prepare: Prepare,
    options: &WorkerOptions,
    out: &Arc<Outbox>,
) -> Result<Run, (&'static str, String)> {
    let digest = specs_digest(engine.specs(), &prepare.plan);
    if digest != prepare.specs_digest {
        return Err((
            "specs_mismatch",
            format!(
                "the component specs this pipeline uses differ between host ({}) and worker ({digest}); install the same osiris version on both",
                prepare.specs_digest
            ),
        ));
    }
    let id = &prepare.session_id;
    if id.is_empty() || id.contains(['/', '\\', '\0']) || id == "." || id == ".." {
        return Err((
            "prepare_failed",
            format!("session id {id:?} cannot name a directory"),
        ));
    }
    let mut steps = Vec::with_capacity(prepare.plan.steps.len());
    for step in &prepare.plan.steps {
        if !engine.is_runnable(&step.component) {
            return Err((
                "prepare_failed",
                format!(
                    "step '{}': this worker has no driver for `{}`",
                    step.id, step.component
                ),
            ));
        }
        let Some(config) = prepare.steps.iter().find(|c| c.step_id == step.id) else {
            return Err((
                "prepare_failed",
                format!("no config for step '{}'", step.id),
            ));
        };
        let connection = match &config.connection {
            None => None,
            Some(text) => {
                Some(ConnectionRef::parse(text).map_err(|e| ("prepare_failed", e.to_string()))?)
            }
        };
        steps.push(PreparedStep {
            step: step.clone(),
            config: config.config.clone(),
            connection,
            secret_keys: config.secret_keys.iter().cloned().collect(),
            state: config.state.clone(),
            source: config.source.clone(),
        });
    }
    let redactor = Arc::new(Redactor::default());
    for secret in &prepare.secrets {
        redactor.add_secret(secret);
    }
    for step in &steps {
        redactor.add_config_fields(&step.config);
    }
    let tap_out = Arc::clone(out);
    let tap: execution_context::Tap = Arc::new(move |kind: LogKind, text: &str| {
        let Ok(Value::Object(record)) = serde_json::from_str::<Value>(text) else {
            return;
        };
        tap_out.send(&match kind {
            LogKind::Event => WorkerMessage::Event { record },
            LogKind::Metric => WorkerMessage::Metric { record },
        });
    });
    let exec =
        ExecutionContext::in_sessions_root(&options.sessions_root, Some(id.clone()), redactor)
            .with_tap(tap);
    // Exclusive, as on the host: two hosts sending one id must not share a directory. The lock
    // (this worker's pid) stays until the host ends the session in order; a worker killed
    // mid-run leaves it behind, which is how `osiris sessions gc` knows its directory is junk.
    // A directory whose worker died (its lock names a dead process) is junk nobody can pull
    // any more: it is replaced. A live one, or one kept on purpose (`--no-pull`), is refused.
    let dir = exec.session_dir();
    if sessions::read(dir).is_some_and(|s| {
        s.state == sessions::State::Abandoned && dir.join(sessions::LOCK_FILE).exists()
    }) {
        let _ = std::fs::remove_dir_all(dir);
    }
    sessions::create(dir).map_err(|error| match error {
        sessions::Error::Exists { .. } => ("session_exists", error.to_string()),
        other => ("prepare_failed", other.to_string()),
    })?;
    sessions::acquire(exec.session_dir(), &execution_context::now_iso())
        .map_err(|error| ("prepare_failed", error.to_string()))?;
    let base_dir = options
        .base_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&prepare.base_dir));
    let prepared = PreparedPlan {
        plan: prepare.plan,
        steps,
        secrets: prepare.secrets,
    };
    exec.restrict_file_access(engine::file_access(&prepared, &base_dir))
        .map_err(|e| ("unexpected", e.to_string()))?;
    // Temporary files that killed runs left next to this run's outputs (on this machine).
    sessions::clean_write_targets(&exec, engine::output_paths(&prepared, &base_dir));
    let exec = Arc::new(exec);
    // Ready by the time the host sends the first step (ExecutionContext::open_database_ahead).
    exec.open_database_ahead();
    Ok(Run {
        exec,
        prepared,
        base_dir,
    })
}

fn input_tables(inputs: &[InputRef]) -> Result<HashMap<String, InputTable>, String> {
    inputs
        .iter()
        .map(|input| {
            let table = TableName::new(input.table.clone())
                .map_err(|e| format!("input of step '{}': {e}", input.step_id))?;
            Ok((
                input.step_id.clone(),
                InputTable {
                    table,
                    rows: input.rows,
                },
            ))
        })
        .collect()
}

/// The files a pull sends: the run database and everything under `artifacts/`, as paths
/// relative to the session directory with their sizes.
fn session_files(session_dir: &Path) -> Vec<(String, u64)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, u64)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let path = format!("{prefix}/{name}");
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(&entry.path(), &path, out),
                Ok(t) if t.is_file() => {
                    out.push((path, entry.metadata().map(|m| m.len()).unwrap_or(0)));
                }
                _ => {}
            }
        }
    }
    let mut files = Vec::new();
    if let Ok(meta) = std::fs::metadata(session_dir.join(DATABASE_FILE)) {
        files.push((DATABASE_FILE.to_owned(), meta.len()));
    }
    walk(&session_dir.join(ARTIFACTS_DIR), ARTIFACTS_DIR, &mut files);
    files
}

async fn pull(out: &Outbox, session_dir: &Path) -> Result<(), String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut count = 0u64;
    let mut total = 0u64;
    for (path, _) in session_files(session_dir) {
        let full = session_dir.join(&path);
        let mut file = tokio::fs::File::open(&full)
            .await
            .map_err(|e| format!("cannot open {}: {e}", full.display()))?;
        let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        if !out
            .send_bulk(&WorkerMessage::FileBegin {
                path: path.clone(),
                size,
            })
            .await
        {
            return Ok(());
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = read_full(&mut file, &mut buf)
                .await
                .map_err(|e| format!("cannot read {}: {e}", full.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n as u64;
            let data = engine.encode(&buf[..n]);
            if !out
                .send_bulk(&WorkerMessage::FileChunk {
                    path: path.clone(),
                    data,
                })
                .await
            {
                return Ok(());
            }
        }
        let sha256 = crate::protocol::file_digest(hasher);
        count += 1;
        if !out
            .send_bulk(&WorkerMessage::FileEnd { path, sha256 })
            .await
        {
            return Ok(());
        }
    }
    out.send_bulk(&WorkerMessage::PullDone {
        files: count,
        bytes: total,
    })
    .await;
    Ok(())
}

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}

/// Serves hosts on standard input and output (`osiris worker --stdio`), e.g. behind
/// `ssh host osiris worker --stdio` or `kubectl exec -i`.
pub async fn serve_stdio(engine: Arc<Engine>, options: WorkerOptions) -> std::io::Result<()> {
    serve(
        engine,
        BufReader::new(tokio::io::stdin()),
        tokio::io::stdout(),
        options,
    )
    .await
}

/// Accepts hosts on `addr` (`osiris worker --listen ADDR --token-file F`). A connection must
/// send `auth` with `token` as its first message within 10 s, or it is closed. Each
/// authenticated connection is served as its own session; runs until the process is stopped.
pub async fn listen(
    engine: Arc<Engine>,
    addr: &str,
    token: String,
    options: WorkerOptions,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "osiris worker {} (protocol {PROTOCOL_VERSION}): listening on {}",
        options.version,
        listener.local_addr()?
    );
    let token = Arc::new(token);
    loop {
        let (socket, peer) = listener.accept().await?;
        let engine = Arc::clone(&engine);
        let token = Arc::clone(&token);
        let options = options.clone();
        tokio::spawn(async move {
            let _ = socket.set_nodelay(true);
            let (read, mut write) = socket.into_split();
            let mut reader = BufReader::new(read);
            let first =
                tokio::time::timeout(Duration::from_secs(10), read_line(&mut reader, 4096)).await;
            let authorized = match first {
                Ok(Ok(Line::Text(text))) => match serde_json::from_slice::<HostMessage>(&text) {
                    Ok(HostMessage::Auth { token: given }) => same_token(&given, &token),
                    _ => false,
                },
                _ => false,
            };
            if !authorized {
                eprintln!(
                    "osiris worker: rejected a connection from {peer}: wrong or missing token"
                );
                let _ = write_message(
                    &mut write,
                    &WorkerMessage::Error {
                        code: "unauthorized".into(),
                        message: "wrong or missing token".into(),
                    },
                )
                .await;
                return;
            }
            eprintln!("osiris worker: host {peer} connected");
            if let Err(error) = serve(engine, reader, write, options).await {
                eprintln!("osiris worker: connection from {peer} ended: {error}");
            }
        });
    }
}

/// Compares tokens in time independent of where they differ.
fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for (i, byte) in b.iter().enumerate() {
        diff |= a.get(i).copied().unwrap_or(0) ^ byte;
    }
    diff == 0
}
