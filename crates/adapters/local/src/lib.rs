//! The `local` target: runs a plan's steps in this process with the engine's step loop, against
//! the run database in the session directory, which it closes at the end. Implements the
//! adapter contract ([`engine::Adapter`], ADR 0027); the caller begins and finishes the session.
#![warn(missing_docs)]

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use engine::{Adapter, AdapterError, Ended, Engine, PreparedPlan, RunObserver, RunOutcome};
use execution_context::{ExecutionContext, object};
use pipeline::Plan;

/// Replaying a pipeline from one step: the step and everything downstream of it run again; the
/// tables they need from other steps are copied from an earlier session.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The earlier session's id.
    pub session_id: String,
    /// Its run database.
    pub database: PathBuf,
    /// Which steps run again, as asked.
    pub selection: Selection,
    /// Steps that run again, by id.
    pub run: BTreeSet<String>,
    /// Steps whose tables are copied from the earlier session.
    pub copy: Vec<String>,
}

/// The steps a replay runs again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// A step and everything downstream of it (`--from-step`).
    FromStep(String),
    /// Exactly these steps (`--only`), e.g. the assets an orchestrator selected.
    Only(Vec<String>),
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FromStep(step) => write!(f, "from step '{step}'"),
            Self::Only(steps) => {
                let quoted: Vec<String> = steps.iter().map(|s| format!("'{s}'")).collect();
                write!(
                    f,
                    "only step{} {}",
                    if steps.len() == 1 { "" } else { "s" },
                    quoted.join(", ")
                )
            }
        }
    }
}

impl Replay {
    /// Chooses what to run and what to copy for replaying `selection` of `plan`.
    pub fn select(
        plan: &Plan,
        selection: &Selection,
    ) -> Result<(BTreeSet<String>, Vec<String>), String> {
        let named: Vec<&String> = match selection {
            Selection::FromStep(step) => vec![step],
            Selection::Only(steps) => steps.iter().collect(),
        };
        for step in named {
            if !plan.steps.iter().any(|s| &s.id == step) {
                return Err(format!(
                    "no step '{step}' in the pipeline; steps: {}",
                    plan.steps
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let mut run = BTreeSet::new();
        match selection {
            Selection::FromStep(from_step) => {
                // Plan order is topological, so one pass collects every downstream step.
                for step in &plan.steps {
                    if &step.id == from_step || step.needs.iter().any(|n| run.contains(n)) {
                        run.insert(step.id.clone());
                    }
                }
            }
            Selection::Only(steps) => run.extend(steps.iter().cloned()),
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

/// Runs plans in this process with an [`Engine`].
#[derive(Debug, Clone)]
pub struct LocalAdapter {
    engine: Arc<Engine>,
    base_dir: PathBuf,
    replay: Option<Replay>,
    jobs: usize,
}

impl LocalAdapter {
    /// An adapter running steps with `engine`, resolving relative paths of step configs
    /// against `base_dir` (the pipeline file's directory); with `replay`, only part of the plan
    /// runs, on tables copied from an earlier session. Steps run one at a time until
    /// [`with_jobs`](Self::with_jobs) says otherwise.
    pub fn new(engine: Arc<Engine>, base_dir: PathBuf, replay: Option<Replay>) -> Self {
        Self {
            engine,
            base_dir,
            replay,
            jobs: 1,
        }
    }

    /// Runs up to `jobs` independent steps at the same time (`--jobs`, ADR 0034); 1 runs
    /// them one after the other in plan order.
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }
}

#[engine::async_trait(?Send)]
impl Adapter for LocalAdapter {
    fn name(&self) -> &'static str {
        "local"
    }

    /// Limits what the run's SQL may read and write to the pipeline's files (and the database
    /// replayed from), before the run database opens.
    async fn prepare(
        &mut self,
        plan: &PreparedPlan,
        exec: &Arc<ExecutionContext>,
    ) -> Result<(), AdapterError> {
        let mut access = engine::file_access(plan, &self.base_dir);
        if let Some(replay) = &self.replay {
            access.allow_file(&replay.database);
        }
        exec.restrict_file_access(access)?;
        Ok(())
    }

    async fn run(
        &mut self,
        plan: &PreparedPlan,
        exec: &Arc<ExecutionContext>,
        observer: &dyn RunObserver,
    ) -> Result<RunOutcome, AdapterError> {
        sessions::clean_write_targets(exec, engine::output_paths(plan, &self.base_dir));
        Ok(match &self.replay {
            None => {
                // Every step of a local run reads or writes it: the first step's source
                // connection overlaps DuckDB's start instead of waiting for it.
                exec.open_database_ahead();
                self.engine
                    .run(plan, exec, &self.base_dir, observer, self.jobs)
                    .await
            }
            Some(replay) => {
                let seed = copy_tables(exec, replay)?;
                let mut partial = plan.clone();
                partial.plan.steps.retain(|s| replay.run.contains(&s.id));
                partial.steps.retain(|s| replay.run.contains(&s.step.id));
                self.engine
                    .run_seeded(&partial, exec, &self.base_dir, observer, seed, self.jobs)
                    .await
            }
        })
    }

    async fn finish(&mut self, exec: &Arc<ExecutionContext>) -> Result<Ended, AdapterError> {
        exec.close_database()?;
        Ok(Ended::default())
    }
}

/// Copies the replayed steps' upstream tables from the earlier session into this run's
/// database, in one transaction. An unusable earlier session is wrong input: nothing ran.
fn copy_tables(
    exec: &ExecutionContext,
    replay: &Replay,
) -> Result<HashMap<String, driver_api::InputTable>, AdapterError> {
    let session = &replay.session_id;
    let fail = |message: String| {
        AdapterError::Input(format!("cannot replay from session `{session}`: {message}"))
    };
    let conn = exec.connection()?;
    let source = driver_api::quote_literal(&replay.database.display().to_string());
    conn.execute_batch(&format!(
        "ATTACH {source} AS osiris_replay_source (READ_ONLY)"
    ))
    .map_err(|e| fail(e.to_string()))?;
    let result = (|| -> Result<HashMap<String, driver_api::InputTable>, AdapterError> {
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
            (
                match &replay.selection {
                    Selection::FromStep(_) => "from_step",
                    Selection::Only(_) => "only_steps",
                },
                match &replay.selection {
                    Selection::FromStep(step) => step.clone().into(),
                    Selection::Only(steps) => steps.clone().into(),
                },
            ),
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
        let (run, copy) = Replay::select(&plan, &Selection::FromStep("again".into())).unwrap();
        assert_eq!(run.into_iter().collect::<Vec<_>>(), ["again", "both"]);
        assert_eq!(
            copy,
            ["src"],
            "`out` is a writer: it ordered `again`, it has no table"
        );

        // Exactly the selected steps: nothing downstream of them runs.
        let only = Selection::Only(vec!["src".into(), "both".into()]);
        let (run, copy) = Replay::select(&plan, &only).unwrap();
        assert_eq!(run.into_iter().collect::<Vec<_>>(), ["both", "src"]);
        assert_eq!(copy, ["again"], "`both` reads `again`, which does not run");
        assert_eq!(only.to_string(), "only steps 'src', 'both'");

        let unknown = Replay::select(&plan, &Selection::Only(vec!["nope".into()])).unwrap_err();
        assert_eq!(
            unknown,
            "no step 'nope' in the pipeline; steps: src, out, again, both"
        );
    }
}
