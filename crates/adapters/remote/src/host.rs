//! The host side: starts or connects to a worker, checks its `hello`, sends the prepared plan,
//! drives the engine's step loop with a [`StepExecutor`] that runs each step on the worker, and
//! pulls the run database and artifacts back into the host session directory.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use driver_api::{ErrorClass, InputTable};
use engine::{
    Adapter, AdapterError, Ended, Engine, PreparedPlan, PreparedStep, RunObserver, RunOutcome,
    StepExecutor, StepReport, StepStatus,
};
use execution_context::{
    ARTIFACTS_DIR, CancellationToken, DATABASE_FILE, ExecutionContext, Redactor, object,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWrite, BufReader};
use tokio::sync::mpsc;

use crate::protocol::{
    HostMessage, InputRef, Line, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, Prepare, StepConfig,
    WorkerMessage, read_line, specs_digest, write_message,
};

/// Lines of the worker's stderr kept for error reports.
const STDERR_TAIL: usize = 20;
/// How long a cancelled step may take to report before the worker is stopped.
const CANCEL_GRACE: Duration = Duration::from_secs(15);
/// How long the end of a session (cleanup answer, `bye`, process exit) may take.
const END_WAIT: Duration = Duration::from_secs(10);

/// Where the worker is.
#[derive(Debug, Clone)]
pub enum WorkerSpec {
    /// Run this program with these arguments (default: this binary's `worker --stdio`).
    Program(PathBuf, Vec<String>),
    /// Run this shell command (`sh -c`), e.g. `ssh host osiris worker --stdio`.
    Shell(String),
    /// Connect to `osiris worker --listen` at this address with this token.
    Tcp {
        /// `host:port`.
        addr: String,
        /// The shared token.
        token: String,
    },
}

impl WorkerSpec {
    fn describe(&self) -> String {
        match self {
            Self::Program(program, args) => format!("{} {}", program.display(), args.join(" ")),
            Self::Shell(command) => command.clone(),
            Self::Tcp { addr, .. } => format!("tcp://{addr}"),
        }
    }
}

/// Where and how a remote run happens.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Directory relative paths in step configs resolve against (sent to the worker).
    pub base_dir: PathBuf,
    /// The worker.
    pub worker: WorkerSpec,
    /// Pull the run database and artifacts back when the run ends.
    pub pull: bool,
    /// Longest a step may run before it is cancelled and failed with class `timeout`.
    pub step_timeout: Option<Duration>,
    /// Longest the worker may stay silent (no heartbeat, no message) before it is given up.
    pub heartbeat_timeout: Duration,
}

enum Incoming {
    Message(Box<WorkerMessage>),
    Malformed(String),
    Oversized(usize),
    Eof(String),
}

/// Why the worker can no longer be used.
#[derive(Debug, Clone)]
struct Gone(String);

/// A live worker session.
pub struct Connection {
    writer: Box<dyn AsyncWrite + Unpin + Send>,
    incoming: mpsc::Receiver<Incoming>,
    child: Option<tokio::process::Child>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_done: Option<tokio::task::JoinHandle<()>>,
    heartbeat_timeout: Duration,
    redactor: Arc<Redactor>,
    describe: String,
    hello: Map<String, Value>,
    gone: Option<Gone>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("worker", &self.describe)
            .finish_non_exhaustive()
    }
}

/// The `remote` target: runs each step of a plan on a worker.
#[derive(Debug)]
pub struct RemoteAdapter {
    engine: Arc<Engine>,
    options: RemoteOptions,
    conn: Option<Connection>,
    ran: bool,
}

impl RemoteAdapter {
    /// An adapter whose host side checks against `engine` (fingerprint, specs) and runs on the
    /// worker of `options`.
    pub fn new(engine: Arc<Engine>, options: RemoteOptions) -> Self {
        Self {
            engine,
            options,
            conn: None,
            ran: false,
        }
    }

    /// Starts (or connects to) the worker, checks its `hello` against this host and sends it
    /// the plan. Nothing is written on the host yet: a failure here means nothing ran.
    async fn connect(
        &self,
        prepared: &PreparedPlan,
        exec: &ExecutionContext,
    ) -> Result<Connection, AdapterError> {
        let options = &self.options;
        let mut conn = Connection::open(options, Arc::clone(exec.redactor())).await?;
        let hello = match conn.recv(None).await {
            Ok(WorkerMessage::Hello {
                protocol,
                worker_version,
                registry_fingerprint,
                heartbeat_ms,
                pid,
            }) => {
                if protocol != PROTOCOL_VERSION {
                    conn.stop().await;
                    return Err(AdapterError::Input(format!(
                        "worker `{}` speaks protocol version {protocol}, this host speaks {PROTOCOL_VERSION} (worker osiris {worker_version}, host {}); install the same osiris version on both sides",
                        conn.describe,
                        env!("CARGO_PKG_VERSION")
                    )));
                }
                let ours = self.engine.registry_fingerprint();
                if registry_fingerprint != ours {
                    conn.stop().await;
                    return Err(AdapterError::Input(format!(
                        "worker `{}` has a different component registry (worker {registry_fingerprint}, host {ours}; worker osiris {worker_version}); install the same osiris build on both sides",
                        conn.describe
                    )));
                }
                object([
                    ("worker", conn.describe.clone().into()),
                    ("protocol", protocol.into()),
                    ("worker_version", worker_version.into()),
                    ("registry_fingerprint", registry_fingerprint.into()),
                    ("heartbeat_ms", heartbeat_ms.into()),
                    ("pid", pid.into()),
                ])
            }
            Ok(WorkerMessage::Error { code, message }) => {
                conn.stop().await;
                return Err(AdapterError::Input(format!(
                    "worker `{}` refused the connection ({code}): {message}",
                    conn.describe
                )));
            }
            Ok(other) => {
                conn.stop().await;
                return Err(AdapterError::Input(format!(
                    "worker `{}` did not start with hello but with {}",
                    conn.describe,
                    kind(&other)
                )));
            }
            Err(Gone(why)) => {
                conn.stop().await;
                return Err(lost(why));
            }
        };
        conn.hello = hello;
        let message = HostMessage::Prepare(Box::new(Prepare {
            session_id: exec.session_id().to_owned(),
            base_dir: options.base_dir.display().to_string(),
            plan: prepared.plan.clone(),
            steps: prepared.steps.iter().map(step_config).collect(),
            secrets: prepared.secrets.clone(),
            specs_digest: specs_digest(self.engine.specs(), &prepared.plan),
        }));
        let answer = match conn.send(&message).await {
            Ok(()) => conn.recv(None).await,
            Err(gone) => Err(gone),
        };
        match answer {
            Ok(WorkerMessage::Prepared { session_dir, .. }) => {
                conn.hello
                    .insert("worker_session_dir".into(), session_dir.into());
                Ok(conn)
            }
            Ok(WorkerMessage::Error { code, message }) => {
                conn.stop().await;
                let text = format!(
                    "worker `{}` cannot run this plan ({code}): {message}",
                    conn.describe
                );
                Err(AdapterError::Input(text))
            }
            Ok(other) => {
                conn.stop().await;
                Err(AdapterError::Input(format!(
                    "worker `{}` answered prepare with {}",
                    conn.describe,
                    kind(&other)
                )))
            }
            Err(Gone(why)) => {
                conn.stop().await;
                Err(lost(why))
            }
        }
    }
}

#[engine::async_trait(?Send)]
impl Adapter for RemoteAdapter {
    fn name(&self) -> &'static str {
        "remote"
    }

    /// Starts (or connects to) the worker, checks its `hello` against this host and sends it
    /// the plan. Nothing is written on the host: a failure here means nothing ran.
    async fn prepare(
        &mut self,
        plan: &PreparedPlan,
        exec: &Arc<ExecutionContext>,
    ) -> Result<(), AdapterError> {
        self.conn = Some(self.connect(plan, exec).await?);
        Ok(())
    }

    /// Runs the plan on the connected worker with the engine's step loop.
    async fn run(
        &mut self,
        plan: &PreparedPlan,
        exec: &Arc<ExecutionContext>,
        observer: &dyn RunObserver,
    ) -> Result<RunOutcome, AdapterError> {
        let step_timeout = self.options.step_timeout;
        self.ran = true;
        let conn = self.connection()?;
        exec.event("worker_ready", conn.hello.clone());
        let executor = RemoteExecutor {
            conn: tokio::sync::Mutex::new(conn),
            exec,
            step_timeout,
        };
        Ok(engine::run_with(plan, exec, observer, HashMap::new(), &executor).await)
    }

    /// Cleans up on the worker, pulls the run database and artifacts back (unless disabled)
    /// and ends the worker session; stops the worker at once when nothing ran.
    async fn finish(&mut self, exec: &Arc<ExecutionContext>) -> Result<Ended, AdapterError> {
        let pull = self.options.pull;
        let ran = self.ran;
        let conn = self.connection()?;
        if !ran {
            // The session did not begin (its id is taken, its directory unwritable): nothing
            // may be written through `exec`, and the worker has nothing to run.
            conn.stop().await;
            return Ok(Ended::default());
        }
        let mut pulled = false;
        if conn.gone.is_none() {
            match conn.request(&HostMessage::Cleanup, exec).await {
                Ok(WorkerMessage::Cleaned { .. }) => {
                    if pull {
                        let started = Instant::now();
                        match conn.pull(exec.session_dir(), exec).await {
                            Ok((files, bytes)) => {
                                exec.event(
                                    "worker_pulled",
                                    object([
                                        ("files", files.into()),
                                        ("bytes", bytes.into()),
                                        ("duration_ms", millis(started.elapsed()).into()),
                                    ]),
                                );
                                pulled = true;
                            }
                            Err(why) => conn.warn(exec, "pull_failed", &why),
                        }
                    }
                }
                Ok(other) => conn.warn(exec, "cleanup_failed", &describe_unexpected(&other)),
                Err(Gone(why)) => conn.warn(exec, "cleanup_failed", &why),
            }
        } else {
            let why = conn.gone.clone().map(|g| g.0).unwrap_or_default();
            exec.event(
                "worker_lost",
                object([("error", why.into()), ("pulled", false.into())]),
            );
        }
        conn.shutdown(pulled, exec).await;
        let mut ended = Ended::default();
        if !pulled {
            ended.database_elsewhere =
                Some("the run database was not pulled back from the worker".into());
            if pull {
                ended.warnings.push(
                    "the run database and artifacts were not pulled back from the worker".into(),
                );
            }
        }
        Ok(ended)
    }
}

impl RemoteAdapter {
    /// The worker connection made by `prepare`.
    fn connection(&mut self) -> Result<&mut Connection, AdapterError> {
        self.conn
            .as_mut()
            .ok_or_else(|| AdapterError::Internal("the worker was used before `prepare`".into()))
    }
}

/// The worker went away before it accepted the plan: a failed run of class `remote` (exit 1),
/// not wrong input.
fn lost(why: String) -> AdapterError {
    AdapterError::Target {
        class: ErrorClass::Remote,
        message: why,
    }
}

fn step_config(step: &PreparedStep) -> StepConfig {
    StepConfig {
        step_id: step.step.id.clone(),
        config: step.config.clone(),
        connection: step.connection.as_ref().map(ToString::to_string),
        secret_keys: step.secret_keys.iter().cloned().collect(),
        state: step.state.clone(),
        source: step.source.clone(),
    }
}

fn kind(message: &WorkerMessage) -> String {
    serde_json::to_value(message)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn describe_unexpected(message: &WorkerMessage) -> String {
    match message {
        WorkerMessage::Error { code, message } => format!("worker error ({code}): {message}"),
        other => format!("unexpected `{}` message", kind(other)),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Connection {
    async fn open(options: &RemoteOptions, redactor: Arc<Redactor>) -> Result<Self, AdapterError> {
        let describe = options.worker.describe();
        let (in_tx, incoming) = mpsc::channel(64);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut stderr_done = None;
        let (writer, child): (Box<dyn AsyncWrite + Unpin + Send>, _) = match &options.worker {
            WorkerSpec::Tcp { addr, token } => {
                let stream = tokio::time::timeout(
                    options.heartbeat_timeout,
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                .map_err(|_| {
                    AdapterError::Input(format!("cannot connect to worker at {addr}: timed out"))
                })?
                .map_err(|e| {
                    AdapterError::Input(format!("cannot connect to worker at {addr}: {e}"))
                })?;
                let _ = stream.set_nodelay(true);
                let (read, mut write) = stream.into_split();
                write_message(
                    &mut write,
                    &HostMessage::Auth {
                        token: token.clone(),
                    },
                )
                .await
                .map_err(|e| {
                    AdapterError::Input(format!("cannot talk to worker at {addr}: {e}"))
                })?;
                spawn_reader(BufReader::new(read), in_tx);
                (Box::new(write), None)
            }
            WorkerSpec::Program(..) | WorkerSpec::Shell(_) => {
                let mut command = match &options.worker {
                    WorkerSpec::Program(program, args) => {
                        let mut c = tokio::process::Command::new(program);
                        c.args(args);
                        c
                    }
                    WorkerSpec::Shell(text) => {
                        let mut c = tokio::process::Command::new("sh");
                        c.arg("-c").arg(text);
                        c
                    }
                    WorkerSpec::Tcp { .. } => unreachable!("handled above"),
                };
                // Its own process group: Ctrl-C in the terminal reaches the host only, which
                // then cancels the step on the worker and shuts it down in order.
                command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .process_group(0)
                    .kill_on_drop(true);
                let mut child = command.spawn().map_err(|e| {
                    AdapterError::Input(format!("cannot start worker `{describe}`: {e}"))
                })?;
                let stdin = child.stdin.take().expect("stdin is piped");
                let stdout = child.stdout.take().expect("stdout is piped");
                let stderr = child.stderr.take().expect("stderr is piped");
                spawn_reader(BufReader::new(stdout), in_tx);
                let tail = Arc::clone(&stderr_tail);
                stderr_done = Some(tokio::spawn(async move {
                    let mut lines = BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        tracing::debug!(target: "osiris::worker", "{line}");
                        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                        if tail.len() == STDERR_TAIL {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }));
                (Box::new(stdin), Some(child))
            }
        };
        Ok(Self {
            writer,
            incoming,
            child,
            stderr_tail,
            stderr_done,
            heartbeat_timeout: options.heartbeat_timeout,
            redactor,
            describe,
            hello: Map::new(),
            gone: None,
        })
    }

    async fn send(&mut self, message: &HostMessage) -> Result<(), Gone> {
        if let Some(gone) = &self.gone {
            return Err(gone.clone());
        }
        match write_message(&mut self.writer, message).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.lost(&format!("cannot write to it ({error})")).await),
        }
    }

    /// The next message that is not an event, metric or heartbeat; events and metrics are
    /// written to `exec`'s logs on the way.
    async fn recv(&mut self, exec: Option<&ExecutionContext>) -> Result<WorkerMessage, Gone> {
        if let Some(gone) = &self.gone {
            return Err(gone.clone());
        }
        loop {
            let item = match tokio::time::timeout(self.heartbeat_timeout, self.incoming.recv())
                .await
            {
                Ok(Some(item)) => item,
                Ok(None) => Incoming::Eof("its output ended".into()),
                Err(_) => {
                    let why = format!(
                        "no heartbeat or message for {}s (heartbeat timeout); the worker is hung or unreachable",
                        self.heartbeat_timeout.as_secs_f64()
                    );
                    self.kill().await;
                    let gone = self.lost(&why).await;
                    return Err(gone);
                }
            };
            match item {
                Incoming::Message(message) => match *message {
                    WorkerMessage::Heartbeat { .. } => {}
                    WorkerMessage::Event { record } => {
                        if let Some(exec) = exec {
                            forward(exec, record, "event");
                        }
                    }
                    WorkerMessage::Metric { record } => {
                        if let Some(exec) = exec {
                            forward(exec, record, "metric");
                        }
                    }
                    other => return Ok(other),
                },
                Incoming::Malformed(error) => {
                    warn_user(
                        &self.redactor,
                        &format!(
                            "warning: worker `{}` sent a malformed message; ignored: {error}",
                            self.describe
                        ),
                    );
                }
                Incoming::Oversized(n) => {
                    warn_user(
                        &self.redactor,
                        &format!(
                            "warning: worker `{}` sent a message of {n} bytes (limit {MAX_MESSAGE_BYTES}); ignored",
                            self.describe
                        ),
                    );
                }
                Incoming::Eof(why) => return Err(self.lost(&why).await),
            }
        }
    }

    /// Sends `message` and returns the answer.
    async fn request(
        &mut self,
        message: &HostMessage,
        exec: &ExecutionContext,
    ) -> Result<WorkerMessage, Gone> {
        self.send(message).await?;
        self.recv(Some(exec)).await
    }

    /// Marks the worker as lost and describes why, with its exit status and last stderr lines.
    async fn lost(&mut self, why: &str) -> Gone {
        if let Some(gone) = &self.gone {
            return gone.clone();
        }
        let mut text = format!("worker `{}` is gone: {why}", self.describe);
        if let Some(child) = &mut self.child
            && let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(2), child.wait()).await
        {
            text.push_str(&format!(" (worker process {status})"));
        }
        if let Some(done) = self.stderr_done.take() {
            let _ = tokio::time::timeout(Duration::from_millis(500), done).await;
        }
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect::<Vec<_>>();
        if !tail.is_empty() {
            text.push_str("; last stderr lines:\n");
            text.push_str(
                &tail
                    .iter()
                    .map(|l| format!("  | {l}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
        let gone = Gone(self.redactor.redact(&text).into_owned());
        self.gone = Some(gone.clone());
        gone
    }

    fn warn(&self, exec: &ExecutionContext, event: &str, why: &str) {
        exec.event(event, object([("error", why.into())]));
        warn_user(&self.redactor, &format!("warning: {why}"));
    }

    /// Kills the worker command's whole process group (`sh -c "ssh ..."` and its children).
    async fn kill(&mut self) {
        if let Some(child) = &mut self.child {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
        }
    }

    /// Kills the worker (its whole process group) or drops the connection.
    async fn stop(&mut self) {
        self.kill().await;
        if self.gone.is_none() {
            self.gone = Some(Gone(format!("worker `{}` was stopped", self.describe)));
        }
    }

    /// Ends the session in order (`shutdown`, `bye`, process exit), or stops the worker.
    async fn shutdown(&mut self, remove_session: bool, exec: &ExecutionContext) {
        if self.gone.is_none() {
            let ended = tokio::time::timeout(END_WAIT, async {
                self.send(&HostMessage::Shutdown { remove_session }).await?;
                loop {
                    if let WorkerMessage::Bye = self.recv(Some(exec)).await? {
                        // Close the worker's stdin: its reader thread ends and it exits at once.
                        self.writer = Box::new(tokio::io::sink());
                        return Ok::<(), Gone>(());
                    }
                }
            })
            .await;
            if matches!(ended, Ok(Ok(()))) {
                if let Some(child) = &mut self.child {
                    if tokio::time::timeout(END_WAIT, child.wait()).await.is_ok() {
                        return;
                    }
                } else {
                    return;
                }
            }
        }
        self.stop().await;
    }

    /// Receives the files of a `pull` into `session_dir`.
    async fn pull(
        &mut self,
        session_dir: &Path,
        exec: &ExecutionContext,
    ) -> Result<(u64, u64), String> {
        self.send(&HostMessage::Pull).await.map_err(|g| g.0)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut current: Option<(String, PathBuf, std::fs::File, Sha256, u64)> = None;
        let mut bytes = 0u64;
        loop {
            match self.recv(Some(exec)).await.map_err(|g| g.0)? {
                WorkerMessage::FileBegin { path, .. } => {
                    let target = pulled_path(session_dir, &path)
                        .ok_or_else(|| format!("worker sent an unexpected file path {path:?}"))?;
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                    }
                    let part = target.with_extension("part");
                    let file = std::fs::File::create(&part)
                        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
                    current = Some((path, target, file, Sha256::new(), 0));
                }
                WorkerMessage::FileChunk { path, data } => {
                    let Some((name, _, file, hasher, size)) = &mut current else {
                        return Err(format!("chunk of {path:?} outside a file"));
                    };
                    if *name != path {
                        return Err(format!("chunk of {path:?} inside {name:?}"));
                    }
                    let data = b64
                        .decode(data.as_bytes())
                        .map_err(|e| format!("bad chunk of {path:?}: {e}"))?;
                    file.write_all(&data)
                        .map_err(|e| format!("cannot write {path:?}: {e}"))?;
                    hasher.update(&data);
                    *size += data.len() as u64;
                }
                WorkerMessage::FileEnd { path, sha256 } => {
                    let Some((name, target, mut file, hasher, size)) = current.take() else {
                        return Err(format!("end of {path:?} outside a file"));
                    };
                    if name != path {
                        return Err(format!("end of {path:?} inside {name:?}"));
                    }
                    file.flush()
                        .map_err(|e| format!("cannot write {path:?}: {e}"))?;
                    drop(file);
                    let got = crate::protocol::file_digest(hasher);
                    let part = target.with_extension("part");
                    if got != sha256 {
                        let _ = std::fs::remove_file(&part);
                        return Err(format!(
                            "{path} arrived damaged (checksum {got}, expected {sha256})"
                        ));
                    }
                    std::fs::rename(&part, &target)
                        .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
                    bytes += size;
                }
                WorkerMessage::PullDone { files, .. } => return Ok((files, bytes)),
                other => return Err(describe_unexpected(&other)),
            }
        }
    }
}

/// Where a pulled file goes: only the run database and files under `artifacts/`, never
/// outside the session directory.
fn pulled_path(session_dir: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let first = relative.components().next()?;
    let allowed = path == DATABASE_FILE
        || (first.as_os_str() == ARTIFACTS_DIR && relative.components().count() > 1);
    allowed.then(|| session_dir.join(relative))
}

/// Writes a worker's event or metric record to the host's logs, stamped with the host's
/// session id and clock.
fn forward(exec: &ExecutionContext, mut record: Map<String, Value>, key: &str) {
    record.remove("ts");
    record.remove("session");
    let Some(Value::String(name)) = record.remove(key) else {
        return;
    };
    if key == "metric" {
        let value = record.remove("value").unwrap_or(Value::Null);
        exec.metric(&name, value, record);
    } else {
        exec.event(&name, record);
    }
}

fn warn_user(redactor: &Redactor, text: &str) {
    let _ = writeln!(std::io::stderr(), "{}", redactor.redact(text));
}

fn spawn_reader<R>(mut reader: R, tx: mpsc::Sender<Incoming>)
where
    R: tokio::io::AsyncBufRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let item = match read_line(&mut reader, MAX_MESSAGE_BYTES).await {
                Ok(Line::Text(text)) => match serde_json::from_slice::<WorkerMessage>(&text) {
                    Ok(message) => Incoming::Message(Box::new(message)),
                    Err(error) => {
                        Incoming::Malformed(error.to_string().chars().take(300).collect())
                    }
                },
                Ok(Line::Oversized(n)) => Incoming::Oversized(n),
                Ok(Line::Eof) => Incoming::Eof("its output ended".into()),
                Err(error) => Incoming::Eof(format!("cannot read from it ({error})")),
            };
            let eof = matches!(item, Incoming::Eof(_));
            if tx.send(item).await.is_err() || eof {
                break;
            }
        }
    });
}

/// Runs each step on the worker for the engine's step loop, one at a time: the protocol has
/// one `exec_step` in flight per worker (ADR 0034), so it keeps [`StepExecutor::jobs`]'s
/// default of 1 and the lock is never contended.
struct RemoteExecutor<'a> {
    conn: tokio::sync::Mutex<&'a mut Connection>,
    exec: &'a Arc<ExecutionContext>,
    step_timeout: Option<Duration>,
}

impl StepExecutor for RemoteExecutor<'_> {
    async fn execute_step(
        &self,
        step: &PreparedStep,
        outputs: &HashMap<String, InputTable>,
        cancel: &CancellationToken,
    ) -> StepReport {
        let mut conn = self.conn.lock().await;
        let started = Instant::now();
        let failed = |class: ErrorClass, error: String, started: Instant| StepReport {
            step_id: step.step.id.clone(),
            component: step.step.component.clone(),
            mode: step.step.mode,
            status: StepStatus::Failed {
                error_class: class,
                error,
            },
            duration_ms: millis(started.elapsed()),
            state: None,
        };
        let inputs = match engine::input_tables(&step.step, outputs) {
            Ok(tables) => tables
                .into_iter()
                .map(|(from, t)| InputRef {
                    step_id: from.to_owned(),
                    table: t.table.as_str().to_owned(),
                    rows: t.rows,
                })
                .collect(),
            Err(error) => return failed(error.class(), error.to_string(), started),
        };
        let message = HostMessage::ExecStep {
            step_id: step.step.id.clone(),
            inputs,
        };
        if let Err(Gone(why)) = conn.send(&message).await {
            return self.host_failure(failed(ErrorClass::Remote, why, started));
        }
        let timeout_at = self.step_timeout.map(|t| tokio::time::Instant::now() + t);
        let mut cancel_sent: Option<tokio::time::Instant> = None;
        let mut timed_out = false;
        loop {
            let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
            let grace_at = cancel_sent.map_or(far, |at| at + CANCEL_GRACE);
            tokio::select! {
                answer = conn.recv(Some(self.exec)) => match answer {
                    Ok(WorkerMessage::StepResult(mut report)) => {
                        if timed_out {
                            let limit = self.step_timeout.unwrap_or_default();
                            report.status = StepStatus::Failed {
                                error_class: ErrorClass::Timeout,
                                error: format!(
                                    "the step ran longer than --step-timeout ({}s) and was cancelled on the worker",
                                    limit.as_secs_f64()
                                ),
                            };
                        }
                        return report;
                    }
                    Ok(other) => {
                        let why = describe_unexpected(&other);
                        warn_user(&conn.redactor, &format!("warning: while step '{}' ran: {why}", step.step.id));
                    }
                    Err(Gone(why)) => {
                        return self.host_failure(failed(ErrorClass::Remote, why, started));
                    }
                },
                () = cancel.cancelled(), if cancel_sent.is_none() => {
                    cancel_sent = Some(tokio::time::Instant::now());
                    let _ = conn.send(&HostMessage::Cancel { reason: "user".into() }).await;
                }
                () = tokio::time::sleep_until(timeout_at.unwrap_or(far)), if timeout_at.is_some() && !timed_out => {
                    timed_out = true;
                    cancel_sent.get_or_insert_with(tokio::time::Instant::now);
                    self.exec.step_emitter(&step.step.id).event(
                        "step_timeout",
                        object([("timeout_ms", millis(self.step_timeout.unwrap_or_default()).into())]),
                    );
                    let _ = conn.send(&HostMessage::Cancel { reason: "timeout".into() }).await;
                }
                () = tokio::time::sleep_until(grace_at), if cancel_sent.is_some() => {
                    conn.kill().await;
                    let gone = conn.lost("it did not stop the cancelled step in time").await;
                    let class = if timed_out { ErrorClass::Timeout } else { ErrorClass::Cancelled };
                    return self.host_failure(failed(class, gone.0, started));
                }
            }
        }
    }
}

impl RemoteExecutor<'_> {
    /// A step failed on the host's side (worker gone): record `step_failed` as the engine does.
    fn host_failure(&self, report: StepReport) -> StepReport {
        if let StepStatus::Failed { error_class, error } = &report.status {
            self.exec.step_emitter(&report.step_id).event(
                "step_failed",
                object([
                    ("component", report.component.clone().into()),
                    ("error_class", error_class.as_str().into()),
                    ("error", error.clone().into()),
                    ("duration_ms", report.duration_ms.into()),
                ]),
            );
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulled_files_stay_inside_the_session() {
        let dir = Path::new("/s");
        assert_eq!(
            pulled_path(dir, "pipeline_data.duckdb"),
            Some(dir.join("pipeline_data.duckdb"))
        );
        assert_eq!(
            pulled_path(dir, "artifacts/a/cleaned_config.json"),
            Some(dir.join("artifacts/a/cleaned_config.json"))
        );
        for bad in [
            "../x",
            "/etc/passwd",
            "artifacts/../../x",
            "status.json",
            "artifacts",
            "events.jsonl",
            "",
        ] {
            assert_eq!(pulled_path(dir, bad), None, "{bad}");
        }
    }
}
