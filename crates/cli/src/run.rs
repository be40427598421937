//! `osiris run`: runs a pipeline locally with live per-step progress.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapter_local::{LocalAdapter, RunOptions, SESSIONS_DIR};
use adapter_remote::{RemoteAdapter, RemoteOptions, WorkerSpec};
use clap::Args;
use engine::{RunObserver, StepReport, StepStatus};
use execution_context::Redactor;
use indicatif::{ProgressBar, ProgressStyle};
use pipeline::Step;
use serde_json::json;

use crate::EXIT_INPUT;

/// Exit code when every step succeeded but the incremental state could not be saved.
const EXIT_STATE_NOT_SAVED: i32 = 1;

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
use crate::load::{Connect, LoadError, PipelineArgs, engine, load};
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
    #[arg(long, requires = "session", value_name = "STEP")]
    from_step: Option<String>,

    /// The earlier session to replay from (id or a unique part of it).
    #[arg(long, requires = "from_step", value_name = "ID")]
    session: Option<String>,

    /// Ignore the incremental state stored by earlier runs (extractors read everything again,
    /// e.g. from `initial_since`); the state is replaced after a successful run.
    #[arg(long)]
    full_refresh: bool,

    /// Directory of the incremental state store: `<DIR>/<pipeline name>/<step id>.json`.
    /// Default: `.osiris/state` in the pipeline file's directory.
    #[arg(long, env = "OSIRIS_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Where the steps run: in this process (`local`) or in an `osiris worker` (`remote`).
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

pub fn execute(args: RunArgs, json: bool) -> anyhow::Result<ExitCode> {
    let engine = engine()?;
    let file = args.pipeline.pipeline.display().to_string();
    let mut loaded = match load(&args.pipeline, &engine, Connect::Resolve) {
        Ok(loaded) => loaded,
        Err(LoadError::Unreadable(message)) => {
            report_input_error(json, &file, &message, None);
            return Ok(ExitCode::from(EXIT_INPUT));
        }
        Err(LoadError::Invalid(problems)) => {
            if json {
                report_input_error(json, &file, "invalid pipeline", Some(&problems));
            } else {
                print_problems(&file, &problems);
                warn_user!("{file}: not run: the pipeline is invalid");
            }
            return Ok(ExitCode::from(EXIT_INPUT));
        }
    };
    if !json {
        print_problems(&file, &loaded.warnings);
    }
    if let Some(id) = &args.session_id
        && (id.is_empty() || id.contains(['/', '\\']) || id == "." || id == "..")
    {
        let message = format!("--session-id {id:?} cannot name a directory");
        report_input_error(json, &file, &message, None);
        return Ok(ExitCode::from(EXIT_INPUT));
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
        report_input_error(json, &file, &taken.to_string(), None);
        return Ok(ExitCode::from(EXIT_INPUT));
    }

    let state_root = match &args.state_dir {
        Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
        None => loaded.base_dir.join(engine::STATE_DIR),
    };
    let state = engine::StateStore::new(&state_root, &loaded.prepared.plan.name);
    if !args.full_refresh
        && let Err(error) = state.load_into(&mut loaded.prepared)
    {
        report_input_error(json, &file, &error.to_string(), None);
        return Ok(ExitCode::from(EXIT_INPUT));
    }

    let replay = match (&args.from_step, &args.session) {
        (Some(step), Some(id)) => {
            match replay_of(&sessions_root, id, step, &loaded.prepared.plan) {
                Ok(replay) => Some(replay),
                Err(message) => {
                    report_input_error(json, &file, &message, None);
                    return Ok(ExitCode::from(EXIT_INPUT));
                }
            }
        }
        _ => None,
    };
    if args.target == Target::Local
        && (args.worker_cmd.is_some()
            || args.worker_addr.is_some()
            || args.no_pull
            || args.step_timeout.is_some())
    {
        let message = "--worker-cmd, --worker-addr, --no-pull and --step-timeout apply to remote runs: add --target remote";
        report_input_error(json, &file, message, None);
        return Ok(ExitCode::from(EXIT_INPUT));
    }
    if args.target == Target::Remote {
        if replay.is_some() {
            let message = "--from-step replays in this process only; drop --target remote";
            report_input_error(json, &file, message, None);
            return Ok(ExitCode::from(EXIT_INPUT));
        }
        let worker = match worker_spec(&args) {
            Ok(worker) => worker,
            Err(message) => {
                report_input_error(json, &file, &message, None);
                return Ok(ExitCode::from(EXIT_INPUT));
            }
        };
        let options = RemoteOptions {
            sessions_root,
            base_dir: loaded.base_dir.clone(),
            session_id: args.session_id,
            worker,
            pull: !args.no_pull,
            step_timeout: args.step_timeout,
            heartbeat_timeout: args.heartbeat_timeout,
            interrupt: sessions::Interrupt::default(),
        };
        return run_remote(engine, &loaded, &options, &state, &file, json);
    }
    let options = RunOptions {
        sessions_root,
        base_dir: loaded.base_dir,
        session_id: args.session_id,
        replay,
        interrupt: sessions::Interrupt::default(),
    };
    let redactor = Arc::new(Redactor::default());
    let adapter = LocalAdapter::new(engine);
    let exec = adapter.prepare(&options, Arc::clone(&redactor));
    let plan = &loaded.prepared.plan;
    let progress = progress(json, plan, &redactor);
    if !json {
        match &options.replay {
            None => say_running(plan, exec.session_id()),
            Some(replay) => say!(
                "Replaying {} from step '{}' ({} of {} steps; tables of {} reused from session {}) · session {}",
                plan.name,
                replay.from_step,
                replay.run.len(),
                plan.steps.len(),
                if replay.copy.is_empty() {
                    "no step".to_owned()
                } else {
                    replay.copy.join(", ")
                },
                replay.session_id,
                exec.session_id()
            ),
        }
    }

    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        cancel_on_signals(&exec, &options.interrupt);
        adapter
            .run(&loaded.prepared, &exec, &options, &progress)
            .await
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    let report = match report {
        Ok(report) => report,
        // The session could not be started: nothing ran.
        Err(adapter_local::Error::Session(error)) => {
            let message = redactor.redact(&error.to_string()).into_owned();
            report_input_error(json, &file, &message, None);
            return Ok(ExitCode::from(EXIT_INPUT));
        }
        Err(error) => return Err(error.into()),
    };
    finish_run(
        json,
        &state,
        &exec,
        &report.status,
        &report.outcome,
        &report.session_id,
        &report.session_dir,
        &redactor,
        false,
    )
}

fn say_running(plan: &pipeline::Plan, session_id: &str) {
    say!(
        "Running {} ({} step{}) · session {}",
        plan.name,
        plan.steps.len(),
        if plan.steps.len() == 1 { "" } else { "s" },
        session_id
    );
}

fn progress(json: bool, plan: &pipeline::Plan, redactor: &Arc<Redactor>) -> Progress {
    let id_width = plan.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    Progress::new(!json, stdout_is_terminal(), id_width, Arc::clone(redactor))
}

/// Ctrl-C, SIGTERM and SIGHUP cancel the run the same way: the running step is asked to stop
/// (on the worker for remote runs), its temporary files and tables go, `status.json` says
/// `cancelled`, and the process exits 128 + the signal (130, 143, 129). Without this a
/// `kill` (systemd, Kubernetes, a closed terminal) would leave an abandoned session.
fn cancel_on_signals(exec: &execution_context::ExecutionContext, interrupt: &sessions::Interrupt) {
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
                    interrupt.record(sessions::Interrupt::SIGINT);
                    cancel.cancel();
                }
                return;
            }
        };
        let code = tokio::select! {
            result = tokio::signal::ctrl_c() => match result {
                Ok(()) => sessions::Interrupt::SIGINT,
                Err(_) => std::future::pending().await,
            },
            _ = term.recv() => sessions::Interrupt::SIGTERM,
            _ = hup.recv() => sessions::Interrupt::SIGHUP,
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

fn run_remote(
    engine: Arc<engine::Engine>,
    loaded: &crate::load::Loaded,
    options: &RemoteOptions,
    state: &engine::StateStore,
    file: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let redactor = Arc::new(Redactor::default());
    let adapter = RemoteAdapter::new(engine);
    let exec = adapter.context(options, Arc::clone(&redactor));
    let plan = &loaded.prepared.plan;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        // Nothing ran and nothing is written until the worker has accepted the plan.
        let conn = match adapter.connect(&loaded.prepared, &exec, options).await {
            Ok(conn) => conn,
            Err(error) => return Ok(Err(error)),
        };
        let progress = progress(json, plan, &redactor);
        if !json {
            say_running(plan, exec.session_id());
        }
        cancel_on_signals(&exec, &options.interrupt);
        adapter
            .run(conn, &loaded.prepared, &exec, options, &progress)
            .await
            .map(Ok)
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    let report = match report {
        Ok(Ok(report)) => report,
        Ok(Err(error)) | Err(error) => {
            let message = redactor.redact(&error.to_string()).into_owned();
            if matches!(error, adapter_remote::Error::Lost(_)) {
                // The worker started and died: the run failed (exit 1), nothing is wrong with
                // the input. No step ran, so no session was written.
                if json {
                    say!(
                        "{}",
                        json!({"status": "failed", "ok": false, "exit_code": engine::EXIT_RUN_FAILED, "error_class": "remote", "message": message})
                    );
                } else {
                    warn_user!("error (remote): {message}");
                }
                return Ok(ExitCode::from(
                    u8::try_from(engine::EXIT_RUN_FAILED).unwrap_or(1),
                ));
            }
            // Wrong input or environment (worker command, mismatch, session id taken or
            // sessions dir unwritable): nothing ran.
            report_input_error(json, file, &message, None);
            return Ok(ExitCode::from(EXIT_INPUT));
        }
    };
    if !json && options.pull && report.pulled.is_none() {
        warn_user!("warning: the run database and artifacts were not pulled back from the worker");
    }
    finish_run(
        json,
        state,
        &exec,
        &report.status,
        &report.outcome,
        &report.session_id,
        &report.session_dir,
        &redactor,
        true,
    )
}

/// The end of a run, local or remote: saves the steps' incremental state when the run succeeded
/// as a whole (ADR 0017), then prints one JSON summary or the verdict and session lines.
#[allow(clippy::too_many_arguments)]
fn finish_run(
    json: bool,
    state: &engine::StateStore,
    exec: &execution_context::ExecutionContext,
    status: &engine::Status,
    outcome: &engine::RunOutcome,
    session_id: &str,
    session_dir: &std::path::Path,
    redactor: &Redactor,
    remote: bool,
) -> anyhow::Result<ExitCode> {
    let (state_saved, state_error) = match state.save_run(exec, outcome) {
        Ok(saved) => (saved, None),
        Err(error) => (
            Vec::new(),
            Some(redactor.redact(&error.to_string()).into_owned()),
        ),
    };
    let database = session_dir.join(execution_context::DATABASE_FILE);
    let has_database = database.is_file();
    let exit_code = if state_error.is_some() {
        EXIT_STATE_NOT_SAVED
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
        } else if remote {
            "no step tables here: the run database was not pulled back from the worker".to_owned()
        } else {
            "no step tables: no step produced one".to_owned()
        };
        say!("Session: {}  ({tables})", shown.display());
    }
    Ok(ExitCode::from(u8::try_from(exit_code).unwrap_or(1)))
}

/// Checks a replay request against the earlier session before anything runs.
fn replay_of(
    root: &std::path::Path,
    id: &str,
    step: &str,
    plan: &pipeline::Plan,
) -> Result<adapter_local::Replay, String> {
    let session = sessions::find(root, id).map_err(|e| e.to_string())?;
    if session.state == sessions::State::Running {
        return Err(format!("session `{}` is still running", session.id));
    }
    let (run, copy) = adapter_local::Replay::select(plan, step)?;
    let tables = sessions::tables(&session).map_err(|e| e.to_string())?;
    let missing: Vec<&str> = copy
        .iter()
        .filter(|c| !tables.iter().any(|t| &t.name == *c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "session `{}` has no table for {} (needed to replay from '{step}'); replay from an earlier step",
            session.id,
            missing
                .iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(adapter_local::Replay {
        database: session.database_path(),
        session_id: session.id,
        from_step: step.to_owned(),
        run,
        copy,
    })
}

fn report_input_error(
    json: bool,
    file: &str,
    message: &str,
    problems: Option<&pipeline::Problems>,
) {
    if json {
        let errors: Vec<_> = problems.map(|p| p.errors().collect()).unwrap_or_default();
        say!(
            "{}",
            json!({"status": "invalid", "ok": false, "exit_code": EXIT_INPUT, "file": file, "message": message, "errors": errors})
        );
    } else {
        warn_user!("error: {message}");
    }
}

/// Per-step progress: a spinner while a step runs on a terminal, one line per finished step.
struct Progress {
    enabled: bool,
    spinner: bool,
    redactor: Arc<Redactor>,
    current: Mutex<Option<ProgressBar>>,
    width: usize,
}

impl Progress {
    fn new(enabled: bool, spinner: bool, width: usize, redactor: Arc<Redactor>) -> Self {
        Self {
            enabled,
            spinner,
            redactor,
            current: Mutex::new(None),
            width,
        }
    }
}

impl RunObserver for Progress {
    fn step_started(&self, step: &Step, index: usize, total: usize) {
        if !self.enabled {
            return;
        }
        if self.spinner {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                    .expect("template is valid"),
            );
            bar.set_message(format!(
                "[{}/{}] {} ({})",
                index + 1,
                total,
                step.id,
                step.component
            ));
            bar.enable_steady_tick(Duration::from_millis(100));
            *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
        }
    }

    fn step_finished(&self, report: &StepReport) {
        if !self.enabled {
            return;
        }
        if let Some(bar) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            bar.finish_and_clear();
        }
        let width = self.width;
        match &report.status {
            StepStatus::Ok { rows, .. } => say!(
                "  ✓ {:<width$}  {:<26} {:>12} rows  {:>8}",
                report.step_id,
                report.component,
                thousands(*rows),
                duration(report.duration_ms),
            ),
            StepStatus::Failed { error_class, error } => {
                say!(
                    "  ✗ {:<width$}  {:<26} failed ({error_class}) after {}",
                    report.step_id,
                    report.component,
                    duration(report.duration_ms),
                );
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
