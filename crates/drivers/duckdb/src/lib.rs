//! `duckdb.processor`: runs one SQL query over the run database and stores the result as the
//! step's table (`CREATE TABLE "<step id>" AS <query>`, atomically: a failing query leaves no
//! table and an earlier table of the same step untouched). Upstream tables are addressed in
//! the SQL by step id; the data never leaves DuckDB.
#![warn(missing_docs)]

use async_trait::async_trait;
use driver_api::{
    Driver, DriverError, Result, StepContext, StepInputs, StepOutput, replace_table_as,
};
use execution_context::object;
use serde::Deserialize;

/// The `duckdb.processor` driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct DuckDbProcessor;

/// Configuration of a `duckdb.processor` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A DuckDB query whose result becomes the step's table; one statement.
    pub query: String,
}

#[async_trait]
impl Driver for DuckDbProcessor {
    const NAME: &'static str = "duckdb.processor";
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        config: Config,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        let query = normalize_query(&config.query)?;
        let table = ctx.output_table().clone();
        ctx.event(
            "transform.start",
            object([
                (
                    "inputs",
                    inputs
                        .iter()
                        .map(|(id, _)| id.to_owned())
                        .collect::<Vec<_>>()
                        .into(),
                ),
                ("query_chars", query.len().into()),
            ]),
        );
        let target = table.clone();
        let rows = ctx
            .run_blocking(move |conn, _cancel| replace_table_as(conn, &target, &query))
            .await
            .map_err(|error| match error {
                DriverError::DuckDb { source, .. } => DriverError::DuckDb {
                    context: "query failed".into(),
                    source,
                },
                other => other,
            })?;
        ctx.event("transform.complete", object([("rows", rows.into())]));
        Ok(StepOutput::table(table, rows))
    }
}

/// Trims the query and a trailing `;`, and refuses empty queries and several statements
/// (only the last would define the table, silently).
fn normalize_query(query: &str) -> Result<String> {
    let trimmed = query.trim().trim_end_matches(';').trim_end();
    if trimmed.is_empty() {
        return Err(DriverError::config("query", "the query is empty"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use driver_api::testing::TestRun;
    use serde_json::json;

    #[tokio::test]
    async fn result_becomes_the_step_table_addressed_by_step_id() {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        run.connection()
            .execute_batch(
                "CREATE TABLE \"read-orders\" AS SELECT * FROM (VALUES (1, 10.50::DECIMAL(10,2)), (1, 2.25), (2, 7.00)) t(customer, amount)",
            )
            .unwrap();
        let out = run
            .run(
                &DuckDbProcessor,
                "totals",
                json!({"query": "SELECT customer, sum(amount) AS total FROM \"read-orders\" GROUP BY 1 ORDER BY 1;"}),
                &["read-orders"],
            )
            .await
            .unwrap();
        assert_eq!(out.rows, 2);
        assert_eq!(out.table.unwrap().as_str(), "totals");
        assert_eq!(
            run.query_strings("SELECT CAST(total AS VARCHAR) FROM totals ORDER BY customer"),
            [Some("12.75".into()), Some("7.00".into())]
        );
    }

    #[tokio::test]
    async fn sql_error_reaches_the_user_and_leaves_no_table() {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        let err = run
            .run(
                &DuckDbProcessor,
                "bad",
                json!({"query": "SELECT nope FROM missing_table"}),
                &[],
            )
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("query failed: "), "{message}");
        assert!(message.contains("missing_table"), "{message}");
        assert_eq!(err.class(), driver_api::ErrorClass::Duckdb);
        assert!(!run.table_exists("bad"));
    }

    #[tokio::test]
    async fn failed_rerun_keeps_the_previous_table() {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        run.run(
            &DuckDbProcessor,
            "p",
            json!({"query": "SELECT 1 AS x"}),
            &[],
        )
        .await
        .unwrap();
        run.run(
            &DuckDbProcessor,
            "p",
            json!({"query": "SELECT 1/0::INT AS x, error('boom')"}),
            &[],
        )
        .await
        .unwrap_err();
        assert_eq!(
            run.query_strings("SELECT CAST(x AS VARCHAR) FROM p"),
            [Some("1".into())]
        );
    }

    #[tokio::test]
    async fn cancelling_interrupts_a_running_query_and_leaves_no_table() {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        let cancel = run.execution_context().cancellation().clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            cancel.cancel();
        });
        let started = std::time::Instant::now();
        // A query that runs for minutes unless interrupted.
        let err = run
            .run(
                &DuckDbProcessor,
                "slow",
                json!({"query": "SELECT count(*) AS n FROM range(1000000000000) a"}),
                &[],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, DriverError::Cancelled), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "interrupted, not finished"
        );
        assert!(!run.table_exists("slow"));
    }

    #[tokio::test]
    async fn empty_query_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        let err = run
            .run(&DuckDbProcessor, "p", json!({"query": "  ;  "}), &[])
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "config key `query`: the query is empty");
    }

    #[test]
    fn spec_and_config_struct_agree() {
        driver_api::testing::assert_spec_matches::<Config>(DuckDbProcessor::NAME);
        // deny_unknown_fields: a key outside the spec is refused.
        assert!(serde_json::from_value::<Config>(json!({"query": "x", "other": 1})).is_err());
    }
}
