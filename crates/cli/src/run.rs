//! `osiris run`: runs a pipeline locally with live per-step progress.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapter_local::{LocalAdapter, Selection};
use adapter_remote::{RemoteAdapter, RemoteOptions, WorkerSpec};
use clap::Args;
use engine::{Adapter, RunObserver, RunReport, StepReport, StepStatus, exit};
use execution_context::{ExecutionContext, Redactor, now_iso, object};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use pipeline::Step;
use serde_json::json;
use sessions::SESSIONS_DIR;

use crate::outcome::Outcome;

/// `println!` that ignores a closed stdout (see `main`: a run must not die of SIGPIPE or panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! warn_user {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
use crate::load::DuckDbArgs;
use crate::load::{Connect, Loaded, PipelineArgs, engine, load};
use crate::output::{duration, print_problems, stdout_is_terminal, thousands};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Relative paths in step configs resolve against the pipeline file's directory (for a
    /// compiled manifest: the source pipeline's directory).
    #[command(flatten)]
    pipeline: PipelineArgs,

    /// Directory that holds the session directories.
    #[arg(long, env = "OSIRIS_SESSIONS_DIR", default_value = SESSIONS_DIR)]
    sessions_dir: PathBuf,

    /// Use this session id instead of a generated `<UTC time>_<ULID>`.
    #[arg(long)]
    session_id: Option<String>,

    /// Replay: run this step and everything downstream of it, reusing the tables of the other
    /// steps from the session given with --session.
    #[arg(
        long,
        requires = "session",
        value_name = "STEP",
        conflicts_with = "only"
    )]
    from_step: Option<String>,

    /// Replay: run exactly these steps (repeat the flag or separate ids with commas), reusing
    /// the tables they need from other steps from the session given with --session. Nothing
    /// downstream of them runs.
    #[arg(long, requires = "session", value_name = "STEP", value_delimiter = ',')]
    only: Vec<String>,

    /// The earlier session to replay from (id or a unique part of it), with --from-step or
    /// --only.
    #[arg(long, value_name = "ID")]
    session: Option<String>,

    /// Ignore the incremental state stored by earlier runs (extractors read everything again,
    /// e.g. from `initial_since`); the state is replaced after a successful run.
    #[arg(long)]
    full_refresh: bool,

    /// Directory of the incremental state store: `<DIR>/<pipeline name>/<step id>.json`.
    /// Default: `.osiris/state` in the pipeline file's directory.
    #[arg(long, env = "OSIRIS_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Run up to N independent steps at the same time: a step starts once every step in its
    /// `needs` has finished. Default: the number of CPU cores. `--jobs 1` runs the steps one
    /// after the other in plan order. Reports, tables and exit codes do not depend on it. A
    /// remote worker runs one step at a time.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,

    #[command(flatten)]
    duckdb: DuckDbArgs,

    /// Where the steps run: in this process (`local`) or in an `osiris worker` (`remote`).
    /// Each target is one type implementing the adapter contract (ADR 0027).
    #[arg(long, value_enum, default_value = "local")]
    target: Target,

    /// Remote: the command that starts a worker speaking the protocol on stdin/stdout, run
    /// with `sh -c` (default: this binary's `worker --stdio`), e.g.
    /// "ssh build-box osiris worker --stdio" or "kubectl exec -i pod -- osiris worker --stdio".
    #[arg(long, value_name = "COMMAND", conflicts_with = "worker_addr")]
    worker_cmd: Option<String>,

    /// Remote: connect to `osiris worker --listen` at HOST:PORT instead (needs --token-file).
    #[arg(long, value_name = "HOST:PORT", requires = "token_file")]
    worker_addr: Option<String>,

    /// Remote: file holding the token of the worker given with --worker-addr.
    #[arg(long, value_name = "FILE", requires = "worker_addr")]
    token_file: Option<PathBuf>,

    /// Remote: leave the run database and artifacts on the worker instead of pulling them
    /// into the session directory.
    #[arg(long)]
    no_pull: bool,

    /// Remote: cancel and fail a step running longer than this (e.g. 30s, 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    step_timeout: Option<Duration>,

    /// Remote: give up a worker silent (no heartbeat) for this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    heartbeat_timeout: Duration,
}

/// Where a run's steps execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    /// In this process.
    Local,
    /// In an `osiris worker` (child process, SSH, kubectl exec, TCP).
    Remote,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    match sessions::parse_age(text) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "expected a duration such as 30s, 10m or 2h, got {text:?}"
        )),
    }
}

pub fn execute(args: RunArgs, json: bool) -> anyhow::Result<Outcome> {
    args.duckdb.apply();
    let engine = engine()?;
    let file = args.pipeline.pipeline.display().to_string();
    let input = |message: &str| Ok(Outcome::input(message).in_file(&file));
    let mut loaded = match load(&args.pipeline, &engine, Connect::Resolve) {
        Ok(loaded) => loaded,
        Err(error) => return Ok(error.outcome(&file, "not run: the pipeline is invalid")),
    };
    // The steps run in this process: get their SQL check ready while the start goes on. Held
    // to the end of the run, so that the process never exits while the parser is opening.
    let _sql_checks = match args.target {
        Target::Local => loaded.prepared.prepare_sql_steps(),
        Target::Remote => None,
    };
    if !json {
        print_problems(&file, &loaded.warnings);
    }
    if let Some(id) = &args.session_id
        && (id.is_empty() || id.contains(['/', '\\']) || id == "." || id == "..")
    {
        return input(&format!("--session-id {id:?} cannot name a directory"));
    }

    let sessions_root =
        std::path::absolute(&args.sessions_dir).unwrap_or_else(|_| args.sessions_dir.clone());
    if let Some(id) = &args.session_id
        && std::fs::symlink_metadata(sessions_root.join(id)).is_ok()
    {
        // Checked again, atomically, when the directory is created; this only answers early
        // (before a remote worker is started).
        let taken = sessions::Error::Exists {
            id: id.clone(),
            root: sessions_root.clone(),
        };
        return input(&taken.to_string());
    }

    let state_root = match &args.state_dir {
        Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
        None => loaded.base_dir.join(engine::STATE_DIR),
    };
    let state = engine::StateStore::new(&state_root, &loaded.prepared.plan.name);
    if !args.full_refresh
        && let Err(error) = state.load_into(&mut loaded.prepared)
    {
        return input(&error.to_string());
    }

    let selection = match (&args.from_step, args.only.is_empty()) {
        (Some(step), _) => Some(Selection::FromStep(step.clone())),
        (None, false) => Some(Selection::Only(args.only.clone())),
        (None, true) => None,
    };
    let replay = match (selection, &args.session) {
        (Some(selection), Some(id)) => {
            match replay_of(&sessions_root, id, selection, &loaded.prepared.plan) {
                Ok(replay) => Some(replay),
                Err(ReplayRefused::Input(message)) => return input(&message),
                Err(ReplayRefused::SourceChanged(message)) => {
                    return Ok(Outcome::source_changed(message));
                }
            }
        }
        (None, Some(_)) => return input("--session goes with --from-step or --only"),
        _ => None,
    };
    let plan = &loaded.prepared.plan;
    let banner = match &replay {
        None => running(plan),
        Some(replay) => format!(
            "Replaying {} {} ({} of {} steps; tables of {} reused from session {})",
            plan.name,
            replay.selection,
            replay.run.len(),
            plan.steps.len(),
            if replay.copy.is_empty() {
                "no step".to_owned()
            } else {
                replay.copy.join(", ")
            },
            replay.session_id,
        ),
    };
    let mut adapter: Box<dyn Adapter> = match args.target {
        Target::Local => {
            if args.worker_cmd.is_some()
                || args.worker_addr.is_some()
                || args.no_pull
                || args.step_timeout.is_some()
            {
                return input(
                    "--worker-cmd, --worker-addr, --no-pull and --step-timeout apply to remote runs: add --target remote",
                );
            }
            Box::new(
                LocalAdapter::new(Arc::clone(&engine), loaded.base_dir.clone(), replay)
                    .with_jobs(jobs(args.jobs)),
            )
        }
        Target::Remote => {
            if replay.is_some() {
                return input(
                    "--from-step and --only replay in this process only; drop --target remote",
                );
            }
            if args.jobs.is_some_and(|jobs| jobs > 1) && !json {
                warn_user!(
                    "warning: --jobs has no effect with --target remote: the worker runs one step at a time"
                );
            }
            let worker = match worker_spec(&args) {
                Ok(worker) => worker,
                Err(message) => return input(&message),
            };
            Box::new(RemoteAdapter::new(
                Arc::clone(&engine),
                RemoteOptions {
                    base_dir: loaded.base_dir.clone(),
                    worker,
                    pull: !args.no_pull,
                    step_timeout: args.step_timeout,
                    heartbeat_timeout: args.heartbeat_timeout,
                },
            ))
        }
    };
    let session = Session {
        root: sessions_root,
        id: args.session_id,
        banner,
    };
    run_on(adapter.as_mut(), &loaded, &session, &state, json)
}

/// Where a run's session goes and what is said when it starts.
struct Session {
    /// The sessions dir.
    root: PathBuf,
    /// `--session-id`.
    id: Option<String>,
    /// "Running <pipeline> (<n> steps)", followed by " · session <id>".
    banner: String,
}

/// Runs a loaded plan on `adapter`, whatever its target, in the order of the adapter contract
/// (ADR 0027, [`engine::Adapter`]): context, prepare (nothing written; an error means nothing
/// ran), begin the session, run, finish on the target, `status.json`, then the state and the
/// summary ([`finish_run`]).
fn run_on(
    adapter: &mut dyn Adapter,
    loaded: &Loaded,
    session: &Session,
    state: &engine::StateStore,
    json: bool,
) -> anyhow::Result<Outcome> {
    let prepared = &loaded.prepared;
    let plan = &prepared.plan;
    let redactor = Arc::new(Redactor::default());
    for secret in &prepared.secrets {
        redactor.add_secret(secret);
    }
    for step in &prepared.steps {
        redactor.add_config_fields(&step.config);
    }
    let exec = Arc::new(ExecutionContext::in_sessions_root(
        &session.root,
        session.id.clone(),
        Arc::clone(&redactor),
    ));
    let redacted = |error: &dyn std::fmt::Display| redactor.redact(&error.to_string()).into_owned();
    let interrupt = Interrupt::default();
    let progress = progress(json, plan, &redactor);
    let runtime = tokio::runtime::Runtime::new()?;
    let ran = runtime.block_on(async {
        if let Err(error) = adapter.prepare(prepared, &exec).await {
            return Err(Outcome::adapter(&error, redacted(&error)));
        }
        let started_at = now_iso();
        if let Err(error) = sessions::begin(&exec, &started_at, &plan.to_yaml()) {
            // Not our session (taken id) or not writable: nothing may be written through
            // `exec`, and the target has nothing to run.
            let _ = adapter.finish(&exec).await;
            return Err(Outcome::input(redacted(&error)));
        }
        exec.event(
            "adapter_selected",
            object([("adapter", adapter.name().into())]),
        );
        if !json {
            say!("{} · session {}", session.banner, exec.session_id());
        }
        cancel_on_signals(&exec, &interrupt);
        let outcome = adapter.run(prepared, &exec, &progress).await;
        let ended = adapter.finish(&exec).await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                // Nothing of the plan ran (say, the tables to replay from could not be copied):
                // the session keeps no status, and no lock.
                let _ = sessions::release(exec.session_dir());
                return Err(Outcome::adapter(&error, redacted(&error)));
            }
        };
        let status = outcome.status(
            exec.session_id(),
            &plan.name,
            started_at,
            interrupt.exit_code(),
        );
        if let Err(error) = sessions::finish(exec.session_dir(), &status) {
            return Err(Outcome::input(redacted(&error)));
        }
        let ended = ended.map_err(|error| Outcome::adapter(&error, redacted(&error)))?;
        Ok(RunReport {
            session_id: exec.session_id().to_owned(),
            session_dir: exec.session_dir().to_owned(),
            outcome,
            status,
            ended,
        })
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    match ran {
        Ok(report) => finish_run(json, state, &exec, &report, &redactor),
        Err(outcome) => Ok(outcome),
    }
}

/// How many steps run at once: `--jobs`, or else one per CPU core.
fn jobs(flag: Option<u16>) -> usize {
    flag.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        usize::from,
    )
}

fn running(plan: &pipeline::Plan) -> String {
    format!(
        "Running {} ({} step{})",
        plan.name,
        plan.steps.len(),
        if plan.steps.len() == 1 { "" } else { "s" },
    )
}

fn progress(json: bool, plan: &pipeline::Plan, redactor: &Arc<Redactor>) -> Progress {
    let id_width = plan.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    Progress::new(!json, stdout_is_terminal(), id_width, Arc::clone(redactor))
}

/// Which signal stopped a run, for its exit code: the signal handler records it before
/// cancelling the run, and `status.json` carries it. Unset (a cancel from elsewhere) leaves
/// Ctrl-C's code, 130.
#[derive(Debug, Clone, Default)]
struct Interrupt(Arc<std::sync::atomic::AtomicI32>);

impl Interrupt {
    /// Records the exit code of the signal that stops the run (the first one wins).
    fn record(&self, exit_code: i32) {
        let _ = self.0.compare_exchange(
            0,
            exit_code,
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// The recorded exit code, if a signal stopped the run.
    fn exit_code(&self) -> Option<i32> {
        match self.0.load(std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            code => Some(code),
        }
    }
}

/// Ctrl-C, SIGTERM and SIGHUP cancel the run the same way: the running step is asked to stop
/// (on the worker for remote runs), its temporary files and tables go, `status.json` says
/// `cancelled`, and the process exits 128 + the signal (130, 143, 129). Without this a
/// `kill` (systemd, Kubernetes, a closed terminal) would leave an abandoned session.
fn cancel_on_signals(exec: &ExecutionContext, interrupt: &Interrupt) {
    use tokio::signal::unix::{SignalKind, signal};
    let cancel = exec.cancellation().clone();
    let interrupt = interrupt.clone();
    let (term, hup) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    );
    tokio::spawn(async move {
        let (mut term, mut hup) = match (term, hup) {
            (Ok(term), Ok(hup)) => (term, hup),
            _ => {
                // No handler for TERM/HUP: Ctrl-C still works.
                if tokio::signal::ctrl_c().await.is_ok() {
                    interrupt.record(exit::SIGINT);
                    cancel.cancel();
                }
                return;
            }
        };
        let code = tokio::select! {
            result = tokio::signal::ctrl_c() => match result {
                Ok(()) => exit::SIGINT,
                Err(_) => std::future::pending().await,
            },
            _ = term.recv() => exit::SIGTERM,
            _ = hup.recv() => exit::SIGHUP,
        };
        interrupt.record(code);
        cancel.cancel();
    });
}
/// The worker of a remote run, from --worker-cmd / --worker-addr (default: this binary).
fn worker_spec(args: &RunArgs) -> Result<WorkerSpec, String> {
    if let (Some(addr), Some(file)) = (&args.worker_addr, &args.token_file) {
        let token = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read --token-file {}: {e}", file.display()))?;
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(format!("--token-file {} is empty", file.display()));
        }
        return Ok(WorkerSpec::Tcp {
            addr: addr.clone(),
            token,
        });
    }
    if let Some(command) = &args.worker_cmd {
        if command.trim().is_empty() {
            return Err("--worker-cmd is empty".into());
        }
        return Ok(WorkerSpec::Shell(command.clone()));
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this osiris binary to start a worker: {e}"))?;
    Ok(WorkerSpec::Program(
        exe,
        vec!["worker".into(), "--stdio".into()],
    ))
}
/// The end of a run, local or remote: saves the steps' incremental state when the run succeeded
/// as a whole (ADR 0017), then prints one JSON summary or the verdict and session lines.
fn finish_run(
    json: bool,
    state: &engine::StateStore,
    exec: &ExecutionContext,
    report: &RunReport,
    redactor: &Redactor,
) -> anyhow::Result<Outcome> {
    let RunReport {
        session_id,
        session_dir,
        outcome,
        status,
        ended,
    } = report;
    let (state_saved, state_error) = match state.save_run(exec, outcome) {
        Ok(saved) => (saved, None),
        Err(error) => (
            Vec::new(),
            Some(redactor.redact(&error.to_string()).into_owned()),
        ),
    };
    let database = session_dir.join(execution_context::DATABASE_FILE);
    let has_database = database.is_file();
    // The steps succeeded but the next run would read again from the previous state: the run
    // failed.
    let exit_code = if state_error.is_some() {
        exit::RUN_FAILED
    } else {
        status.exit_code
    };
    if json {
        let summary = json!({
            "status": status.status,
            "ok": status.ok,
            "exit_code": exit_code,
            "pipeline": status.pipeline,
            "session_id": session_id,
            "session_dir": session_dir.display().to_string(),
            "database": has_database.then(|| database.display().to_string()),
            "steps_total": status.steps_total,
            "steps_completed": status.steps_completed,
            "duration_ms": status.duration_ms,
            "steps": outcome.steps,
            "state_saved": state_saved,
            "state_error": state_error,
        });
        say!(
            "{}",
            redactor.redact(&serde_json::to_string_pretty(&summary)?)
        );
    } else {
        for warning in &ended.warnings {
            warn_user!("warning: {}", redactor.redact(warning));
        }
        let verdict = match status.status {
            "ok" => "Run ok",
            "cancelled" => "Run cancelled",
            _ => "Run failed",
        };
        say!(
            "{verdict}: {}/{} steps in {}",
            status.steps_completed,
            status.steps_total,
            duration(status.duration_ms)
        );
        let shown = std::env::current_dir()
            .ok()
            .and_then(|cwd| session_dir.strip_prefix(cwd).ok().map(|p| p.to_owned()))
            .unwrap_or_else(|| session_dir.to_owned());
        if !state_saved.is_empty() {
            say!(
                "State saved for {} in {}",
                state_saved.join(", "),
                state.dir().display()
            );
        }
        if let Some(error) = &state_error {
            warn_user!(
                "error: the steps succeeded but their incremental state was not saved, so the next run reads again from the previous state: {error}"
            );
        }
        // Say where the tables are only where they are: a remote run whose database was not
        // pulled back (worker lost, --no-pull) has none on this machine.
        let tables = if has_database {
            format!("step tables in {}", execution_context::DATABASE_FILE)
        } else if let Some(why) = &ended.database_elsewhere {
            format!("no step tables here: {why}")
        } else {
            "no step tables: no step produced one".to_owned()
        };
        say!("Session: {}  ({tables})", shown.display());
    }
    Ok(Outcome::Done(exit_code))
}
/// Checks a replay request against the earlier session before anything runs.
fn replay_of(
    root: &std::path::Path,
    id: &str,
    selection: Selection,
    plan: &pipeline::Plan,
) -> Result<adapter_local::Replay, ReplayRefused> {
    let session = sessions::find(root, id).map_err(|e| e.to_string())?;
    if session.state == sessions::State::Running {
        return Err(format!("session `{}` is still running", session.id).into());
    }
    let (run, copy) = adapter_local::Replay::select(plan, &selection)?;
    refuse_changed_sources(&session, &copy)?;
    let tables = sessions::tables(&session).map_err(|e| e.to_string())?;
    let missing: Vec<&str> = copy
        .iter()
        .filter(|c| !tables.iter().any(|t| &t.name == *c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "session `{}` has no table for {} (needed to replay {selection}); replay from an earlier step",
            session.id,
            missing
                .iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into());
    }
    Ok(adapter_local::Replay {
        database: session.database_path(),
        session_id: session.id,
        selection,
        run,
        copy,
    })
}
/// Why a replay does not start.
enum ReplayRefused {
    /// Wrong input (exit 2).
    Input(String),
    /// A file a reused step's view reads changed since the earlier run (exit 3).
    SourceChanged(String),
}

impl From<String> for ReplayRefused {
    fn from(message: String) -> Self {
        Self::Input(message)
    }
}

/// Refuses a replay that would reuse a step kept as a view over a file that changed, moved or
/// was removed since the earlier run: its rows are gone (ADR 0036).
fn refuse_changed_sources(
    session: &sessions::Session,
    copy: &[String],
) -> Result<(), ReplayRefused> {
    let changed = sessions::changed_sources(session).map_err(|e| e.to_string())?;
    let reused: Vec<String> = changed
        .into_iter()
        .filter(|(view, _)| copy.contains(view))
        .flat_map(|(view, files)| {
            files.into_iter().map(move |(path, state)| {
                format!("step '{view}' reads {}, which is {state}", path.display())
            })
        })
        .collect();
    if reused.is_empty() {
        return Ok(());
    }
    Err(ReplayRefused::SourceChanged(format!(
        "cannot replay from session `{}`: {} since that run; the step was kept as a view over the file (materialize: view), so its rows are not in the session. Restore the file, or replay from that step so that it reads the file again",
        session.id,
        reused.join("; ")
    )))
}

/// Per-step progress: on a terminal a spinner for every running step (several with `--jobs`),
/// and one line per finished step, in the order steps finish.
struct Progress {
    enabled: bool,
    spinner: bool,
    redactor: Arc<Redactor>,
    bars: MultiProgress,
    running: Mutex<HashMap<String, ProgressBar>>,
    width: usize,
}

impl Progress {
    fn new(enabled: bool, spinner: bool, width: usize, redactor: Arc<Redactor>) -> Self {
        Self {
            enabled,
            spinner,
            redactor,
            bars: MultiProgress::new(),
            running: Mutex::new(HashMap::new()),
            width,
        }
    }

    /// Prints a finished step's line above the spinners of the steps still running.
    fn line(&self, text: &str) {
        if self.spinner {
            self.bars.suspend(|| say!("{text}"));
        } else {
            say!("{text}");
        }
    }
}

impl RunObserver for Progress {
    fn step_started(&self, step: &Step, index: usize, total: usize) {
        if !self.enabled || !self.spinner {
            return;
        }
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!(
            "[{}/{}] {} ({})",
            index + 1,
            total,
            step.id,
            step.component
        ));
        bar.enable_steady_tick(Duration::from_millis(100));
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(step.id.clone(), bar);
    }

    fn step_finished(&self, report: &StepReport) {
        if !self.enabled {
            return;
        }
        let bar = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&report.step_id);
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
        let width = self.width;
        match &report.status {
            StepStatus::Ok { rows, view, .. } => self.line(&format!(
                "  ✓ {:<width$}  {:<26} {:>17}  {:>8}",
                report.step_id,
                report.component,
                // A view over the input read no row (ADR 0036): "0 rows" would say it was empty.
                if *view {
                    "view".to_owned()
                } else {
                    format!("{} rows", thousands(*rows))
                },
                duration(report.duration_ms),
            )),
            StepStatus::Failed { error_class, error } => {
                self.line(&format!(
                    "  ✗ {:<width$}  {:<26} failed ({error_class}) after {}",
                    report.step_id,
                    report.component,
                    duration(report.duration_ms),
                ));
                let error = self.redactor.redact(error);
                warn_user!(
                    "error: step '{}' ({}): {error}",
                    report.step_id,
                    report.component
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use driver_api::{ErrorClass, InputTable};
    use engine::{AdapterError, Ended, PreparedPlan, PreparedStep, RunOutcome, StepExecutor};

    use super::*;
    use crate::load::PipelineArgs;

    /// A third target, in one type: it "runs" each step by reporting one row, and keeps its
    /// run database elsewhere. `run_on` needs nothing else to run a plan on it.
    #[derive(Default)]
    struct Elsewhere {
        refuse: bool,
        calls: Vec<&'static str>,
    }

    struct OneRowEach;

    impl StepExecutor for OneRowEach {
        async fn execute_step(
            &self,
            step: &PreparedStep,
            _outputs: &HashMap<String, InputTable>,
            _cancel: &execution_context::CancellationToken,
        ) -> StepReport {
            StepReport {
                step_id: step.step.id.clone(),
                component: step.step.component.clone(),
                mode: step.step.mode,
                status: StepStatus::Ok {
                    rows: 1,
                    table: None,
                    view: false,
                },
                duration_ms: 0,
                state: None,
            }
        }
    }

    #[engine::async_trait(?Send)]
    impl Adapter for Elsewhere {
        fn name(&self) -> &'static str {
            "elsewhere"
        }

        async fn prepare(
            &mut self,
            _plan: &PreparedPlan,
            _exec: &Arc<ExecutionContext>,
        ) -> Result<(), AdapterError> {
            self.calls.push("prepare");
            if self.refuse {
                return Err(AdapterError::Target {
                    class: ErrorClass::Remote,
                    message: "the cluster is gone".into(),
                });
            }
            Ok(())
        }

        async fn run(
            &mut self,
            plan: &PreparedPlan,
            exec: &Arc<ExecutionContext>,
            observer: &dyn RunObserver,
        ) -> Result<RunOutcome, AdapterError> {
            self.calls.push("run");
            Ok(engine::run_with(plan, exec, observer, HashMap::new(), &OneRowEach).await)
        }

        async fn finish(&mut self, _exec: &Arc<ExecutionContext>) -> Result<Ended, AdapterError> {
            self.calls.push("finish");
            Ok(Ended {
                database_elsewhere: Some("it stays in the cluster".into()),
                warnings: Vec::new(),
            })
        }
    }

    fn loaded(dir: &std::path::Path) -> Loaded {
        let file = dir.join("p.yaml");
        std::fs::write(
            &file,
            "oml_version: \"0.1.0\"\nname: p\nsteps:\n  - {id: a, component: filesystem.csv_extractor, mode: read, config: {path: in.csv}}\n  - {id: b, component: duckdb.processor, mode: transform, needs: [a], config: {query: SELECT 1}}\n",
        )
        .unwrap();
        let args = PipelineArgs {
            pipeline: file,
            params: Vec::new(),
            profile: None,
            connections: None,
        };
        match load(&args, &engine().unwrap(), Connect::Assume) {
            Ok(loaded) => loaded,
            Err(_) => panic!("the pipeline is valid"),
        }
    }

    /// Runs a two-step pipeline in `dir` on `adapter`, as session `s1`.
    fn run_in(dir: &std::path::Path, adapter: &mut dyn Adapter) -> Outcome {
        let loaded = loaded(dir);
        let session = Session {
            root: dir.join("sessions"),
            id: Some("s1".into()),
            banner: running(&loaded.prepared.plan),
        };
        let state = engine::StateStore::new(&dir.join("state"), "p");
        run_on(adapter, &loaded, &session, &state, true).unwrap()
    }

    #[test]
    fn a_new_target_is_one_type_and_runs_through_the_same_session_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let mut adapter = Elsewhere::default();
        let outcome = run_in(dir.path(), &mut adapter);
        assert_eq!(outcome.code(), 0);
        assert_eq!(adapter.calls, ["prepare", "run", "finish"]);
        let session_dir = dir.path().join("sessions/s1");
        let status: serde_json::Value =
            serde_json::from_slice(&std::fs::read(session_dir.join("status.json")).unwrap())
                .unwrap();
        assert_eq!(status["status"], "ok");
        assert_eq!(status["steps_completed"], 2);
        assert!(session_dir.join("manifest.yaml").is_file());
        assert!(!session_dir.join(sessions::LOCK_FILE).exists());
        let events = std::fs::read_to_string(session_dir.join("events.jsonl")).unwrap();
        assert!(
            events.contains(r#""event":"adapter_selected","adapter":"elsewhere""#),
            "{events}"
        );
    }

    #[test]
    fn a_target_that_fails_to_prepare_fails_the_run_and_writes_no_session() {
        let dir = tempfile::tempdir().unwrap();
        let mut adapter = Elsewhere {
            refuse: true,
            ..Elsewhere::default()
        };
        let outcome = run_in(dir.path(), &mut adapter);
        assert_eq!(
            outcome.code(),
            1,
            "the target failed: a failed run, not bad input"
        );
        assert_eq!(adapter.calls, ["prepare"]);
        assert!(!dir.path().join("sessions").exists());
    }
}
