//! Runs a plan in this process: creates the session directory
//! (`<sessions root>/<session id>/`), writes `manifest.yaml`, opens the run database lazily
//! through the [`ExecutionContext`], runs the engine's step loop, writes `status.json` and
//! closes the database. The session directory, with `pipeline_data.duckdb`, is kept.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::{Engine, PreparedPlan, RunObserver, RunOutcome, StepStatus};
use execution_context::{ExecutionContext, Redactor, new_session_id, now_iso, object};
use pipeline::Plan;
use serde::Serialize;

/// Name of the directory (under the base directory) that holds one directory per run.
pub const SESSIONS_DIR: &str = ".osiris_sessions";
/// File name of the plan inside a session directory.
pub const MANIFEST_FILE: &str = "manifest.yaml";
/// File name of the run status inside a session directory.
pub const STATUS_FILE: &str = "status.json";

/// Exit code of a successful run.
pub const EXIT_OK: i32 = 0;
/// Exit code of a run whose step failed.
pub const EXIT_RUN_FAILED: i32 = 1;
/// Exit code of a run cancelled by the user (Ctrl-C), as shells report SIGINT.
pub const EXIT_CANCELLED: i32 = 130;

/// Errors that stop a run before its steps can start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session directory or one of its files could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The run database could not be closed cleanly.
    #[error(transparent)]
    Context(#[from] execution_context::Error),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where and how a local run happens.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Directory holding session directories (default `./.osiris_sessions`).
    pub sessions_root: PathBuf,
    /// Directory relative paths in step configs resolve against (the pipeline file's dir).
    pub base_dir: PathBuf,
    /// Session id to use instead of a generated one.
    pub session_id: Option<String>,
}

/// The content of `status.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Session id.
    pub session_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// `ok`, `failed` or `cancelled`.
    pub status: &'static str,
    /// Whether every step finished.
    pub ok: bool,
    /// The process exit code of this run.
    pub exit_code: i32,
    /// Steps in the plan.
    pub steps_total: usize,
    /// Steps that finished.
    pub steps_completed: usize,
    /// The failed step, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Why the run did not complete (`step_failed`, `cancelled`), or `completed`.
    pub reason: String,
    /// Start time, UTC ISO 8601.
    pub started_at: String,
    /// End time, UTC ISO 8601.
    pub finished_at: String,
    /// Wall time of the run.
    pub duration_ms: u64,
}

/// The result of a local run.
#[derive(Debug)]
pub struct RunReport {
    /// Session id.
    pub session_id: String,
    /// Session directory.
    pub session_dir: PathBuf,
    /// What happened to each step.
    pub outcome: RunOutcome,
    /// The status written to `status.json`.
    pub status: Status,
}

/// Runs plans in-process with an [`Engine`].
#[derive(Debug, Clone)]
pub struct LocalAdapter {
    engine: Arc<Engine>,
}

impl LocalAdapter {
    /// An adapter running steps with `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// Creates the execution context of a new run (so that callers can hook cancellation to
    /// it before calling [`run`](Self::run)).
    pub fn prepare(&self, options: &RunOptions, redactor: Arc<Redactor>) -> Arc<ExecutionContext> {
        let session_id = options.session_id.clone().unwrap_or_else(new_session_id);
        let session_dir = options.sessions_root.join(&session_id);
        Arc::new(ExecutionContext::with_redactor(
            session_id,
            session_dir,
            redactor,
        ))
    }

    /// Runs a prepared plan in the context made by [`prepare`](Self::prepare).
    pub async fn run(
        &self,
        prepared: &PreparedPlan,
        exec: &Arc<ExecutionContext>,
        options: &RunOptions,
        observer: &dyn RunObserver,
    ) -> Result<RunReport> {
        let started_at = now_iso();
        let plan = &prepared.plan;
        let session_dir = exec.session_dir().to_owned();
        create_dir(&session_dir)?;
        for secret in &prepared.secrets {
            exec.redactor().add_secret(secret);
        }
        // The plan holds connection references, never resolved values; scrub it all the same.
        let manifest = plan.to_yaml();
        write_file(
            &session_dir.join(MANIFEST_FILE),
            &exec.redactor().redact(&manifest),
        )?;
        exec.event("adapter_selected", object([("adapter", "local".into())]));

        let outcome = self
            .engine
            .run(prepared, exec, &options.base_dir, observer)
            .await;
        exec.close_database()?;

        let status = status_of(exec.session_id(), plan, &outcome, started_at);
        let text = serde_json::to_string_pretty(&status).expect("status serializes");
        write_file(&session_dir.join(STATUS_FILE), &format!("{text}\n"))?;
        Ok(RunReport {
            session_id: exec.session_id().to_owned(),
            session_dir,
            outcome,
            status,
        })
    }
}

fn status_of(session_id: &str, plan: &Plan, outcome: &RunOutcome, started_at: String) -> Status {
    let failed_step = outcome.failed_step().map(|s| s.step_id.clone());
    let (status, exit_code, reason) = if outcome.ok() {
        ("ok", EXIT_OK, "completed")
    } else if outcome.cancelled {
        ("cancelled", EXIT_CANCELLED, "cancelled")
    } else {
        ("failed", EXIT_RUN_FAILED, "step_failed")
    };
    Status {
        session_id: session_id.to_owned(),
        pipeline: plan.name.clone(),
        status,
        ok: outcome.ok(),
        exit_code,
        steps_total: outcome.steps_total,
        steps_completed: outcome
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Ok { .. }))
            .count(),
        failed_step,
        reason: reason.to_owned(),
        started_at,
        finished_at: now_iso(),
        duration_ms: outcome.duration_ms,
    }
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}
