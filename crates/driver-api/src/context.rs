//! What a step sees while it runs: its id and output table, the run database, its artifact
//! directory, its base directory for relative paths, tagged events/metrics and cancellation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use execution_context::{ExecutionContext, RunningStep, SerialAppend, StepEmitter};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::{DriverError, Result, TableName};

/// The context handed to [`Driver::run`](crate::Driver::run).
#[derive(Debug)]
pub struct StepContext {
    step_id: String,
    component: String,
    table: TableName,
    exec: Arc<ExecutionContext>,
    emitter: StepEmitter,
    artifacts_dir: PathBuf,
    base_dir: PathBuf,
    cancel: CancellationToken,
    state: Option<Value>,
    /// Counts the step as running while the context lives.
    _running: RunningStep,
}

impl StepContext {
    /// Creates the context of step `step_id` (running `component`) in the run `exec`; relative
    /// paths in the step's config resolve against `base_dir` (the pipeline file's directory).
    pub fn new(
        exec: &Arc<ExecutionContext>,
        step_id: &str,
        component: &str,
        base_dir: impl Into<PathBuf>,
    ) -> Result<Self> {
        let table = TableName::new(step_id)?;
        let artifacts_dir = exec.step_artifacts_dir(step_id)?;
        Ok(Self {
            step_id: step_id.to_owned(),
            component: component.to_owned(),
            table,
            emitter: exec.step_emitter(step_id),
            cancel: exec.cancellation().child_token(),
            exec: Arc::clone(exec),
            artifacts_dir,
            base_dir: base_dir.into(),
            state: None,
            _running: exec.step_running(),
        })
    }

    /// Makes `cancel` the step's cancellation token instead of a child of the run's: the step
    /// loop hands each step a token that the run's cancellation and a failing sibling step
    /// (steps running in parallel, ADR 0034) both cancel.
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Gives the step the incremental state its previous successful run returned (see
    /// [`StepOutput::with_state`]); the runtime calls this, drivers read [`state`](Self::state).
    pub fn with_state(mut self, state: Option<Value>) -> Self {
        self.state = state;
        self
    }

    /// The incremental state the previous successful run of this step (same pipeline, same
    /// step id) returned, or `None` on a first run or with `--full-refresh`. Drivers must
    /// treat it as untrusted input: it is a JSON file the user may have edited.
    pub fn state(&self) -> Option<&Value> {
        self.state.as_ref()
    }

    /// The step id.
    pub fn step_id(&self) -> &str {
        &self.step_id
    }

    /// The component name.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The table this step produces: always named after the step id.
    pub fn output_table(&self) -> &TableName {
        &self.table
    }

    /// A new connection to the run database (a clone of the run's cached handle). Use it on
    /// one blocking thread; DuckDB calls block.
    pub fn connection(&self) -> Result<duckdb::Connection> {
        Ok(self.exec.connection()?)
    }

    /// DuckDB with one thread while this is the run's only running step
    /// ([`ExecutionContext::serial_bulk_append`]): for the shared table writer's appends.
    pub(crate) fn serial_bulk_append(&self, conn: &duckdb::Connection) -> Option<SerialAppend> {
        self.exec.serial_bulk_append(conn)
    }

    /// The step's artifact directory (`artifacts/<step_id>/`), already created.
    pub fn artifacts_dir(&self) -> &Path {
        &self.artifacts_dir
    }

    /// The directory relative paths of this step resolve against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Resolves a path from the config: absolute paths stay, relative ones join the base dir.
    pub fn resolve_path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Resolves a path from the config against an optional `base` directory (a filesystem
    /// connection's `base_dir`): absolute paths stay; relative ones join `base` when given
    /// (itself resolved against the pipeline directory when relative), else the pipeline
    /// directory.
    pub fn resolve_path_in(&self, base: Option<&str>, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        match base {
            Some(base) if !path.is_absolute() => self.resolve_path(base).join(path),
            _ => self.resolve_path(path),
        }
    }

    /// Writes an event tagged with this step's id.
    pub fn event(&self, name: &str, fields: Map<String, Value>) {
        self.emitter.event(name, fields);
    }

    /// Reports a config key that is accepted (for pipelines written for the Python Osiris) but
    /// has no effect here: a `config.warning` event naming the key and why, and a log warning,
    /// so that a setting is never dropped silently.
    pub fn warn_config(&self, key: &str, message: &str) {
        tracing::warn!(step_id = %self.step_id, key, message, "config key has no effect");
        self.event(
            "config.warning",
            Map::from_iter([
                ("key".to_owned(), Value::String(key.to_owned())),
                ("message".to_owned(), Value::String(message.to_owned())),
            ]),
        );
    }

    /// Writes a metric tagged with this step's id.
    pub fn metric(&self, name: &str, value: impl Into<Value>) {
        self.emitter.metric(name, value);
    }

    /// The step's cancellation token (cancelled when the run is, or when a step running in
    /// parallel with it fails).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Fails with [`DriverError::Cancelled`] once the step was cancelled.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(DriverError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// The run's execution context.
    pub fn execution_context(&self) -> &Arc<ExecutionContext> {
        &self.exec
    }

    /// Runs `work` with a fresh connection to the run database on a blocking thread (DuckDB
    /// calls block). `work` gets the step's cancellation token to check between statements; a
    /// statement already running is interrupted through DuckDB when the step is cancelled, and
    /// this waits for the thread so its transaction has rolled back before the step ends. A
    /// failure after cancellation is reported as [`DriverError::Cancelled`]; work that finished
    /// despite a late cancellation keeps its result, since what it produced is complete.
    pub async fn run_blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&duckdb::Connection, &CancellationToken) -> Result<T> + Send + 'static,
    {
        self.check_cancelled()?;
        // The first connection waits for the run database to open: on a blocking thread, so
        // that the steps started beside this one are polled meanwhile instead of after it.
        let exec = Arc::clone(&self.exec);
        let conn = tokio::task::spawn_blocking(move || exec.connection())
            .await
            .map_err(|join| {
                DriverError::internal(format!("the DuckDB worker thread failed: {join}"))
            })??;
        let interrupt = conn.interrupt_handle();
        let cancel = self.cancel.clone();
        let token = cancel.clone();
        let mut task = tokio::task::spawn_blocking(move || work(&conn, &token));
        let joined = tokio::select! {
            joined = &mut task => joined,
            () = cancel.cancelled() => {
                interrupt.interrupt();
                task.await
            }
        };
        match joined {
            Ok(Err(_)) if cancel.is_cancelled() => Err(DriverError::Cancelled),
            Ok(result) => result,
            Err(join) => Err(DriverError::internal(format!(
                "the DuckDB worker thread failed: {join}"
            ))),
        }
    }
}

/// A table produced by an upstream step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTable {
    /// The table in the run database.
    pub table: TableName,
    /// Its row count when the upstream step finished.
    pub rows: u64,
}

/// The tables of the steps a step `needs`, in the order of its `needs` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepInputs {
    tables: Vec<(String, InputTable)>,
}

impl StepInputs {
    /// No inputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the table of upstream step `step_id`.
    pub fn insert(&mut self, step_id: impl Into<String>, table: InputTable) {
        self.tables.push((step_id.into(), table));
    }

    /// The table of upstream step `step_id`.
    pub fn get(&self, step_id: &str) -> Option<&InputTable> {
        self.tables
            .iter()
            .find(|(id, _)| id == step_id)
            .map(|(_, t)| t)
    }

    /// All inputs as `(upstream step id, table)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &InputTable)> {
        self.tables.iter().map(|(id, t)| (id.as_str(), t))
    }

    /// Number of inputs.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether there are no inputs.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The one input of a step that reads exactly one table (writers).
    pub fn single(&self) -> Result<&InputTable> {
        match self.tables.as_slice() {
            [(_, table)] => Ok(table),
            [] => Err(DriverError::Config {
                key: Some("needs".into()),
                message: "this step writes the table of the step it needs, but `needs` is empty"
                    .into(),
            }),
            many => Err(DriverError::Config {
                key: Some("needs".into()),
                message: format!(
                    "this step writes one table but needs {} steps ({}); combine them with a duckdb.processor step first",
                    many.len(),
                    many.iter()
                        .map(|(id, _)| id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    /// The table the step created in the run database (extractors and processors).
    pub table: Option<TableName>,
    /// Rows in that table, or rows written to the destination (writers).
    pub rows: u64,
    /// Incremental state for the next run of this step (e.g. an extractor's cursor). The
    /// runtime stores it only when the whole run succeeds and hands it back through
    /// [`StepContext::state`]. `None` leaves an earlier stored state untouched.
    pub state: Option<Value>,
    /// The step's object is a view over its input (a file extractor with `materialize: view`,
    /// ADR 0036): no row was read, so `rows` is 0 and says nothing.
    pub view: bool,
}

impl StepOutput {
    /// A step that created `table` holding `rows` rows.
    pub fn table(table: TableName, rows: u64) -> Self {
        Self {
            table: Some(table),
            rows,
            state: None,
            view: false,
        }
    }

    /// A step that created `table` as a view over its input, reading no row.
    pub fn view(table: TableName) -> Self {
        Self {
            view: true,
            ..Self::table(table, 0)
        }
    }

    /// A writer that wrote `rows` rows to its destination.
    pub fn written(rows: u64) -> Self {
        Self {
            table: None,
            rows,
            state: None,
            view: false,
        }
    }

    /// The same output, with incremental `state` for the next run.
    pub fn with_state(mut self, state: Value) -> Self {
        self.state = Some(state);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    /// A step's first DuckDB work waits for the run database to open (DuckDB's start takes
    /// milliseconds) without holding up the steps polled beside it: on a one-thread runtime, a
    /// sibling task keeps running while the connection is made.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_for_the_run_database_does_not_stall_the_steps_beside() {
        let dir = tempfile::tempdir().unwrap();
        let exec = Arc::new(ExecutionContext::new("wait", dir.path().join("session")));
        let ctx = StepContext::new(&exec, "first", "test.step", dir.path()).unwrap();
        let ticks = Arc::new(AtomicU32::new(0));
        let sibling = {
            let ticks = Arc::clone(&ticks);
            async move {
                loop {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        exec.open_database_ahead();
        let seen = Arc::clone(&ticks);
        let step = ctx.run_blocking(move |_, _| Ok(seen.load(Ordering::Relaxed)));
        let ticks_before_the_work = tokio::select! {
            // The step is polled first: blocked in that first poll, the sibling would not even
            // have started its first sleep when the work begins.
            biased;
            result = step => result.unwrap(),
            () = sibling => unreachable!("the sibling never ends"),
        };
        // Opening takes 5 ms or more (DuckDB registers its functions); the sibling wakes about
        // once a millisecond meanwhile.
        assert!(
            ticks_before_the_work >= 2,
            "the sibling ran while the database opened: {ticks_before_the_work} ticks"
        );
    }
}
