//! `osiris run`: runs a pipeline locally with live per-step progress.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapter_local::{LocalAdapter, RunOptions, SESSIONS_DIR};
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

    let sessions_root = std::path::absolute(&args.sessions_dir).unwrap_or(args.sessions_dir);
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
    let options = RunOptions {
        sessions_root,
        base_dir: loaded.base_dir,
        session_id: args.session_id,
        replay,
    };
    let redactor = Arc::new(Redactor::default());
    let adapter = LocalAdapter::new(engine);
    let exec = adapter.prepare(&options, Arc::clone(&redactor));
    let plan = &loaded.prepared.plan;
    let id_width = plan.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    let progress = Progress::new(!json, stdout_is_terminal(), id_width, Arc::clone(&redactor));
    if !json {
        match &options.replay {
            None => say!(
                "Running {} ({} step{}) · session {}",
                plan.name,
                plan.steps.len(),
                if plan.steps.len() == 1 { "" } else { "s" },
                exec.session_id()
            ),
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
        let cancel = exec.cancellation().clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
        adapter
            .run(&loaded.prepared, &exec, &options, &progress)
            .await
    })?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    // Only a run that succeeded as a whole advances the steps' incremental state (ADR 0017).
    let (state_saved, state_error) = match state.save_run(&exec, &report.outcome) {
        Ok(saved) => (saved, None),
        Err(error) => (
            Vec::new(),
            Some(redactor.redact(&error.to_string()).into_owned()),
        ),
    };
    let exit_code = if state_error.is_some() {
        EXIT_STATE_NOT_SAVED
    } else {
        report.status.exit_code
    };

    let status = &report.status;
    if json {
        let summary = json!({
            "status": status.status,
            "ok": status.ok,
            "exit_code": exit_code,
            "pipeline": status.pipeline,
            "session_id": report.session_id,
            "session_dir": report.session_dir.display().to_string(),
            "database": report.session_dir.join(execution_context::DATABASE_FILE).display().to_string(),
            "steps_total": status.steps_total,
            "steps_completed": status.steps_completed,
            "duration_ms": status.duration_ms,
            "steps": report.outcome.steps,
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
            .and_then(|cwd| {
                report
                    .session_dir
                    .strip_prefix(cwd)
                    .ok()
                    .map(|p| p.to_owned())
            })
            .unwrap_or_else(|| report.session_dir.clone());
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
        say!(
            "Session: {}  (step tables in {})",
            shown.display(),
            execution_context::DATABASE_FILE
        );
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
