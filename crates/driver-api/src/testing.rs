//! Helpers for driver tests: a real run context in a directory of the test's choosing, so that
//! drivers are tested against a real `pipeline_data.duckdb`, never a mock.

use std::path::Path;
use std::sync::Arc;

use execution_context::ExecutionContext;
use serde_json::Value;

use crate::{
    Driver, DynDriver, InputTable, Result, StepContext, StepInputs, StepOutput, TableName,
};

mod spec_check;

pub use spec_check::{assert_spec_file_matches, assert_spec_matches};

/// A run context for tests, with its session under `dir/session`.
#[derive(Debug, Clone)]
pub struct TestRun {
    exec: Arc<ExecutionContext>,
    base_dir: std::path::PathBuf,
}

impl TestRun {
    /// A run whose session lives in `dir/session` and whose relative paths resolve against `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            exec: Arc::new(ExecutionContext::new("test-session", dir.join("session"))),
            base_dir: dir.to_owned(),
        }
    }

    /// The run's execution context.
    pub fn execution_context(&self) -> &Arc<ExecutionContext> {
        &self.exec
    }

    /// A connection to the run database.
    pub fn connection(&self) -> duckdb::Connection {
        self.exec.connection().expect("run database opens")
    }

    /// Runs `driver` as step `step_id` with a JSON config, reading the given upstream tables.
    pub async fn run<D: Driver>(
        &self,
        driver: &D,
        step_id: &str,
        config: Value,
        inputs: &[&str],
    ) -> Result<StepOutput> {
        let ctx = StepContext::new(&self.exec, step_id, D::NAME, &self.base_dir)?;
        let mut step_inputs = StepInputs::new();
        for upstream in inputs {
            let table = TableName::new(*upstream)?;
            let conn = self.exec.connection()?;
            let rows = crate::table_row_count(&conn, &table)?;
            step_inputs.insert(*upstream, InputTable { table, rows });
        }
        driver.run_json(&ctx, config, step_inputs).await
    }

    /// Runs `sql` on the run database and returns the first column of every row as text
    /// (NULL as `None`): enough to assert table contents exactly.
    pub fn query_strings(&self, sql: &str) -> Vec<Option<String>> {
        let conn = self.connection();
        let mut stmt = conn.prepare(sql).expect("query prepares");
        stmt.query_map([], |r| r.get::<_, Option<String>>(0))
            .expect("query runs")
            .map(|r| r.expect("row reads"))
            .collect()
    }

    /// Whether a table exists in the run database.
    pub fn table_exists(&self, name: &str) -> bool {
        let conn = self.connection();
        conn.query_row(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .expect("catalog query runs")
            == 1
    }
}
