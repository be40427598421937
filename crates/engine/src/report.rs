//! What a run reports: each step's [`StepReport`], the run's [`RunOutcome`], the
//! `status.json` [`Status`] and the process exit codes they map to.

use driver_api::ErrorClass;
use pipeline::StepMode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happened to one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    /// Step id.
    pub step_id: String,
    /// Component name.
    pub component: String,
    /// OML mode.
    pub mode: StepMode,
    /// Outcome.
    #[serde(flatten)]
    pub status: StepStatus,
    /// Wall time of the step.
    pub duration_ms: u64,
    /// Incremental state the step returned for its next run; saved by
    /// [`StateStore::save_run`] only when the whole run succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
}

/// Outcome of one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepStatus {
    /// The step finished.
    Ok {
        /// Rows in the step table, or rows written by a writer.
        rows: u64,
        /// The table the step created, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        table: Option<String>,
        /// The table is a view over the step's input (ADR 0036): `rows` is 0, none were read.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        view: bool,
    },
    /// The step failed.
    Failed {
        /// Error class (config, io, data, duckdb, ...).
        error_class: ErrorClass,
        /// The error message (secrets scrubbed).
        error: String,
    },
}

/// What happened to a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// Steps that ran, in plan order. With one job the failed one is last; with several, steps
    /// that finished or were cancelled beside it may follow it.
    pub steps: Vec<StepReport>,
    /// Number of steps in the plan.
    pub steps_total: usize,
    /// Whether the run was cancelled.
    pub cancelled: bool,
    /// Wall time of the run.
    pub duration_ms: u64,
}

impl RunOutcome {
    /// Whether every step of the plan finished.
    pub fn ok(&self) -> bool {
        self.steps_completed() == self.steps_total
    }

    /// Number of steps that finished.
    pub fn steps_completed(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Ok { .. }))
            .count()
    }

    /// The failed step, if any: the first in plan order that failed by itself, else (a
    /// cancelled run) the first cancelled one. Steps cancelled because a step running beside
    /// them failed are not it.
    pub fn failed_step(&self) -> Option<&StepReport> {
        let failed = |s: &&StepReport| matches!(s.status, StepStatus::Failed { .. });
        self.steps
            .iter()
            .filter(failed)
            .find(|s| {
                !matches!(
                    s.status,
                    StepStatus::Failed {
                        error_class: ErrorClass::Cancelled,
                        ..
                    }
                )
            })
            .or_else(|| self.steps.iter().find(failed))
    }
}

/// Every exit code of `osiris`, in one place (ADR 0003). `status.json` records the one its run
/// exited with; the CLI maps each of its outcomes to one of these.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// The run failed: a step failed, or the target (a remote worker) failed before any step
    /// ran, or the incremental state of a successful run could not be saved.
    pub const RUN_FAILED: i32 = 1;
    /// The input (pipeline, config, flags) or the environment (sessions dir, session id) is
    /// wrong, whoever reports it: nothing ran.
    pub const INPUT: i32 = 2;
    /// A `--from-step`/`--only` replay refused because a file that a step of the earlier
    /// session is a view over changed, moved or was removed since that run (ADR 0036).
    pub const SOURCE_CHANGED: i32 = 3;
    /// A bug in osiris, never the user's input nor the world (sysexits' `EX_SOFTWARE`).
    pub const INTERNAL: i32 = 70;
    /// A run cancelled by SIGINT (Ctrl-C): 128 + 2, as shells report it.
    pub const SIGINT: i32 = 130;
    /// A run cancelled by SIGTERM: 128 + 15.
    pub const SIGTERM: i32 = 143;
    /// A run cancelled by SIGHUP: 128 + 1.
    pub const SIGHUP: i32 = 129;
}

/// The content of a session's `status.json`, the same for local and remote runs.
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

impl RunOutcome {
    /// The `status.json` of this outcome, finishing now. A cancelled run exits with the code of
    /// the signal that stopped it (`interrupted`), or else 130 as for Ctrl-C.
    pub fn status(
        &self,
        session_id: &str,
        pipeline: &str,
        started_at: String,
        interrupted: Option<i32>,
    ) -> Status {
        let failed_step = self.failed_step().map(|s| s.step_id.clone());
        let (status, exit_code, reason) = if self.ok() {
            ("ok", exit::OK, "completed")
        } else if self.cancelled {
            (
                "cancelled",
                interrupted.unwrap_or(exit::SIGINT),
                "cancelled",
            )
        } else {
            ("failed", exit::RUN_FAILED, "step_failed")
        };
        Status {
            session_id: session_id.to_owned(),
            pipeline: pipeline.to_owned(),
            status,
            ok: self.ok(),
            exit_code,
            steps_total: self.steps_total,
            steps_completed: self.steps_completed(),
            failed_step,
            reason: reason.to_owned(),
            started_at,
            finished_at: execution_context::now_iso(),
            duration_ms: self.duration_ms,
        }
    }
}
