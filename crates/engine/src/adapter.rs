//! The adapter contract (ADR 0027): one trait for every place a run's steps can execute (this
//! process, a remote worker, and whatever comes next), one report, one error.
//!
//! The caller drives a run through an [`Adapter`] in a fixed order, the same for every target:
//!
//! 1. it creates the run's [`ExecutionContext`] in the host's sessions directory (session id,
//!    redactor, cancellation) and registers the plan's secrets with it;
//! 2. [`Adapter::prepare`]: the target gets ready for the plan (a worker is started and checks
//!    the plan). Nothing is written into the session yet: on error nothing ran;
//! 3. it begins the session (directory, lock, `manifest.yaml`);
//! 4. [`Adapter::run`]: the target runs the plan's steps with the engine's one step loop
//!    ([`run_with`](crate::run_with));
//! 5. [`Adapter::finish`]: the target ends the run (closes the run database, pulls results
//!    back, stops the worker). Called once after every successful `prepare`, also when the
//!    session could not begin or `run` failed;
//! 6. it writes `status.json` ([`RunOutcome::status`]) and reports a [`RunReport`].
//!
//! A new target (say, a Kubernetes Job) is one new type implementing this trait, with
//! `#[engine::async_trait(?Send)]` on its `impl`.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use driver_api::ErrorClass;
use execution_context::ExecutionContext;

use crate::{PreparedPlan, RunObserver, RunOutcome, Status, exit};

/// Where a run's steps execute. See the [module documentation](self) for the order in which
/// a caller uses these methods.
#[async_trait(?Send)]
pub trait Adapter {
    /// The target's name (`local`, `remote`), recorded in the run's `adapter_selected` event.
    fn name(&self) -> &'static str;

    /// Gets the target ready to run `plan` in `exec`. Must not write into the session
    /// directory: on error nothing ran and nothing was written.
    async fn prepare(
        &mut self,
        plan: &PreparedPlan,
        exec: &Arc<ExecutionContext>,
    ) -> Result<(), AdapterError>;

    /// Runs the plan's steps in the begun session, with the engine's step loop and failure
    /// policy, reporting progress to `observer`.
    async fn run(
        &mut self,
        plan: &PreparedPlan,
        exec: &Arc<ExecutionContext>,
        observer: &dyn RunObserver,
    ) -> Result<RunOutcome, AdapterError>;

    /// Ends the run on the target and says where its results are. Called once after a
    /// successful [`prepare`](Self::prepare), whether or not [`run`](Self::run) was called.
    async fn finish(&mut self, exec: &Arc<ExecutionContext>) -> Result<Ended, AdapterError>;
}

/// How a run ended on its target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    /// Why the run database is not in the host's session directory although the run may have
    /// made one (a remote run not pulled back); `None` when it is there or no step made one.
    pub database_elsewhere: Option<String>,
    /// What the user should know about the end of the run (not errors: the run's outcome
    /// stands), e.g. results that could not be pulled back.
    pub warnings: Vec<String>,
}

/// The result of a run, whatever its target.
#[derive(Debug)]
pub struct RunReport {
    /// Session id.
    pub session_id: String,
    /// The host's session directory.
    pub session_dir: PathBuf,
    /// What happened to each step.
    pub outcome: RunOutcome,
    /// The status written to `status.json`.
    pub status: Status,
    /// How the run ended on its target.
    pub ended: Ended,
}

/// Why a target could not run a plan, or could not end the run. Classified by whose fault it
/// is (ADR 0003): [`exit_code`](Self::exit_code) and [`class`](Self::class).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// What was given cannot run on this target: a worker command that cannot start, a worker
    /// of another version, a session to replay from without the tables needed. Wrong input;
    /// nothing ran.
    #[error("{0}")]
    Input(String),
    /// The target failed before it ran a step (a worker that died before accepting the plan):
    /// a failed run of this class, not wrong input.
    #[error("{message}")]
    Target {
        /// The error class (`remote` for a lost worker).
        class: ErrorClass,
        /// What happened.
        message: String,
    },
    /// The run's context failed (the run database, session files).
    #[error(transparent)]
    Context(#[from] execution_context::Error),
    /// A bug: the contract was broken (say, `run` before `prepare`).
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdapterError {
    /// The error class, as a failed step would carry it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Input(_) => ErrorClass::Config,
            Self::Target { class, .. } => *class,
            Self::Context(execution_context::Error::Io { .. }) => ErrorClass::Io,
            Self::Context(execution_context::Error::Database { .. }) => ErrorClass::Duckdb,
            Self::Context(execution_context::Error::InvalidStepId(_)) => ErrorClass::Config,
            Self::Context(_) | Self::Internal(_) => ErrorClass::Internal,
        }
    }

    /// The process exit code: wrong input exits 2, a bug 70, anything else fails the run (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Input(_) => exit::INPUT,
            _ if self.class() == ErrorClass::Internal => exit::INTERNAL,
            _ => exit::RUN_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_errors_exit_by_whose_fault_they_are() {
        let cases = [
            (
                AdapterError::Input("no such worker".into()),
                exit::INPUT,
                ErrorClass::Config,
            ),
            (
                AdapterError::Target {
                    class: ErrorClass::Remote,
                    message: "worker died".into(),
                },
                exit::RUN_FAILED,
                ErrorClass::Remote,
            ),
            (
                AdapterError::Context(execution_context::Error::Io {
                    action: "cannot write",
                    path: "/x".into(),
                    source: std::io::Error::other("disk full"),
                }),
                exit::RUN_FAILED,
                ErrorClass::Io,
            ),
            (
                AdapterError::Context(execution_context::Error::AccessAfterOpen),
                exit::INTERNAL,
                ErrorClass::Internal,
            ),
            (
                AdapterError::Internal("run before prepare".into()),
                exit::INTERNAL,
                ErrorClass::Internal,
            ),
        ];
        for (error, code, class) in cases {
            assert_eq!((error.exit_code(), error.class()), (code, class), "{error}");
        }
    }
}
