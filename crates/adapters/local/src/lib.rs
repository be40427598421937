//! Runs a plan in this process: creates the session directory
//! (`<sessions root>/<session id>/`), writes `manifest.yaml`, opens the run database lazily
//! through the [`ExecutionContext`], runs the engine's step loop, writes `status.json` and
//! closes the database. The session directory, with `pipeline_data.duckdb`, is kept.
#![warn(missing_docs)]

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use engine::{Engine, PreparedPlan, RunObserver, RunOutcome};
use execution_context::{ExecutionContext, Redactor, now_iso, object};
use pipeline::Plan;

/// Name of the directory (under the base directory) that holds one directory per run.
pub const SESSIONS_DIR: &str = ".osiris_sessions";
pub use sessions::{MANIFEST_FILE, STATUS_FILE};

pub use engine::{EXIT_CANCELLED, EXIT_OK, EXIT_RUN_FAILED, Status};

/// Errors that stop a run before its steps can start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session directory or one of its files could not be written.
    #[error(transparent)]
    Session(#[from] sessions::Error),
    /// The run database could not be closed cleanly.
    #[error(transparent)]
    Context(#[from] execution_context::Error),
    /// The tables to replay from could not be copied.
    #[error("cannot replay from session `{session}`: {message}")]
    Replay {
        /// The earlier session.
        session: String,
        /// What went wrong.
        message: String,
    },
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
    /// Run only part of the plan, reusing tables of an earlier session.
    pub replay: Option<Replay>,
    /// The signal that cancelled the run, if any: its exit code goes into `status.json`.
    pub interrupt: sessions::Interrupt,
}

/// Replaying a pipeline from one step: the step and everything downstream of it run again; the
/// tables they need from other steps are copied from an earlier session.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The earlier session's id.
    pub session_id: String,
    /// Its run database.
    pub database: PathBuf,
    /// The step to start from.
    pub from_step: String,
    /// Steps that run again (the step and its downstream), by id.
    pub run: BTreeSet<String>,
    /// Steps whose tables are copied from the earlier session.
    pub copy: Vec<String>,
}

impl Replay {
    /// Chooses what to run and what to copy for replaying `plan` from `from_step`.
    pub fn select(plan: &Plan, from_step: &str) -> Result<(BTreeSet<String>, Vec<String>), String> {
        if !plan.steps.iter().any(|s| s.id == from_step) {
            return Err(format!(
                "no step '{from_step}' in the pipeline; steps: {}",
                plan.steps
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // Plan order is topological, so one pass collects every downstream step.
        let mut run = BTreeSet::new();
        for step in &plan.steps {
            if step.id == from_step || step.needs.iter().any(|n| run.contains(n)) {
                run.insert(step.id.clone());
            }
        }
        // Upstream tables to copy: those of needed steps that are not re-run. A needed writer
        // only ordered the run (it has no table), so there is nothing of it to copy.
        let writes = |id: &str| {
            plan.steps
                .iter()
                .any(|s| s.id == id && s.mode == pipeline::StepMode::Write)
        };
        let mut copy = Vec::new();
        for step in plan.steps.iter().filter(|s| run.contains(&s.id)) {
            for need in &step.needs {
                if !run.contains(need) && !copy.contains(need) && !writes(need) {
                    copy.push(need.clone());
                }
            }
        }
        Ok((run, copy))
    }
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
        Arc::new(ExecutionContext::in_sessions_root(
            &options.sessions_root,
            options.session_id.clone(),
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
        for secret in &prepared.secrets {
            exec.redactor().add_secret(secret);
        }
        for step in &prepared.steps {
            exec.redactor().add_config_fields(&step.config);
        }
        let mut access = engine::file_access(prepared, &options.base_dir);
        if let Some(replay) = &options.replay {
            access.allow_file(&replay.database);
        }
        exec.restrict_file_access(access)?;
        sessions::begin(exec, &started_at, &plan.to_yaml())?;
        exec.event("adapter_selected", object([("adapter", "local".into())]));
        sessions::clean_write_targets(exec, engine::output_paths(prepared, &options.base_dir));

        let outcome = match &options.replay {
            None => {
                self.engine
                    .run(prepared, exec, &options.base_dir, observer)
                    .await
            }
            Some(replay) => {
                let seed = match copy_tables(exec, replay) {
                    Ok(seed) => seed,
                    Err(error) => {
                        let _ = exec.close_database();
                        let _ = sessions::release(&session_dir);
                        return Err(error);
                    }
                };
                let mut partial = prepared.clone();
                partial.plan.steps.retain(|s| replay.run.contains(&s.id));
                partial.steps.retain(|s| replay.run.contains(&s.step.id));
                self.engine
                    .run_seeded(&partial, exec, &options.base_dir, observer, seed)
                    .await
            }
        };
        exec.close_database()?;

        let mut status = outcome.status(exec.session_id(), &plan.name, started_at);
        if outcome.cancelled
            && let Some(code) = options.interrupt.exit_code()
        {
            status.exit_code = code;
        }
        sessions::finish(&session_dir, &status)?;
        Ok(RunReport {
            session_id: exec.session_id().to_owned(),
            session_dir,
            outcome,
            status,
        })
    }
}

/// Copies the replayed steps' upstream tables from the earlier session into this run's
/// database, in one transaction.
fn copy_tables(
    exec: &ExecutionContext,
    replay: &Replay,
) -> Result<HashMap<String, driver_api::InputTable>> {
    let fail = |message: String| Error::Replay {
        session: replay.session_id.clone(),
        message,
    };
    let conn = exec.connection()?;
    let source = driver_api::quote_literal(&replay.database.display().to_string());
    conn.execute_batch(&format!(
        "ATTACH {source} AS osiris_replay_source (READ_ONLY)"
    ))
    .map_err(|e| fail(e.to_string()))?;
    let result = (|| -> Result<HashMap<String, driver_api::InputTable>> {
        conn.execute_batch("BEGIN TRANSACTION")
            .map_err(|e| fail(e.to_string()))?;
        let mut seed = HashMap::new();
        for step in &replay.copy {
            let table =
                driver_api::TableName::new(step.clone()).map_err(|e| fail(e.to_string()))?;
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} AS SELECT * FROM osiris_replay_source.main.{table}"
            ))
            .map_err(|e| fail(format!("it has no usable table for step '{step}': {e}")))?;
            let rows =
                driver_api::table_row_count(&conn, &table).map_err(|e| fail(e.to_string()))?;
            seed.insert(step.clone(), driver_api::InputTable { table, rows });
        }
        conn.execute_batch("COMMIT")
            .map_err(|e| fail(e.to_string()))?;
        Ok(seed)
    })();
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let _ = conn.execute_batch("DETACH osiris_replay_source");
    let seed = result?;
    exec.event(
        "replay_start",
        object([
            ("from_session", replay.session_id.clone().into()),
            ("from_step", replay.from_step.clone().into()),
            ("copied_tables", replay.copy.clone().into()),
            (
                "rerun_steps",
                replay.run.iter().cloned().collect::<Vec<_>>().into(),
            ),
        ]),
    );
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_copies_the_tables_of_needed_steps_but_not_of_needed_writers() {
        let text = r#"
oml_version: "0.1.0"
name: replay
steps:
  - {id: src, component: filesystem.csv_extractor, mode: read, config: {path: in.csv}}
  - {id: out, component: filesystem.csv_writer, mode: write, needs: [src], config: {path: o.csv}}
  - {id: again, component: filesystem.csv_extractor, mode: read, needs: [out], config: {path: o.csv}}
  - {id: both, component: duckdb.processor, mode: transform, needs: [src, again], config: {query: SELECT 1}}
"#;
        let (pipeline, _) = pipeline::parse(text).unwrap();
        let plan = pipeline.plan().unwrap();
        let (run, copy) = Replay::select(&plan, "again").unwrap();
        assert_eq!(run.into_iter().collect::<Vec<_>>(), ["again", "both"]);
        assert_eq!(
            copy,
            ["src"],
            "`out` is a writer: it ordered `again`, it has no table"
        );
    }
}
