//! `duckdb.processor`: runs one SQL query over the run database and stores the result as the
//! step's table (`CREATE TABLE "<step id>" AS <query>`, atomically: a failing query leaves no
//! table and an earlier table of the same step untouched). The data never leaves DuckDB.
//!
//! The query is exactly one query, as DuckDB's own parser sees it: several statements, or a
//! statement that is not a query (`COPY`, `ATTACH`, `INSTALL`, `DROP`, ...), are refused before
//! anything runs. It names its inputs the way Osiris users wrote them:
//! - the upstream step id (`"read-orders"`), the table itself;
//! - `df_<step id with non-alphanumerics as _>` (Osiris 0.5), for every input;
//! - `input_df`, the single input of the step (older Osiris docs and examples).
//!
//! The last two are temporary views on the step's own connection: the query sees them, the run
//! database never holds them.
#![warn(missing_docs)]

use async_trait::async_trait;
use driver_api::{
    Driver, DriverError, Result, StepContext, StepInputs, StepOutput, TableName, quote_identifier,
    replace_table_as,
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

/// The name Osiris 0.5 gave an input table: `df_` + the step id with every character other
/// than an ASCII letter, digit or `_` replaced by `_` (and `_` before a leading digit).
pub fn osiris_input_name(step_id: &str) -> String {
    let mut name: String = step_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    format!("df_{name}")
}

/// The single-input name of older Osiris queries.
const INPUT_DF: &str = "input_df";

/// One input of the step and the extra names the query may use for it.
#[derive(Debug, Clone)]
struct Input {
    step_id: String,
    table: TableName,
    aliases: Vec<String>,
}

/// Each input with its aliases: `df_<id>` always, `input_df` when it is the only input. An
/// alias that is also an input's own step id, or that two inputs would share, is left out
/// (the step id wins; the error for an unknown name lists what is there).
fn inputs_with_aliases(inputs: &StepInputs) -> Vec<Input> {
    let ids: Vec<&str> = inputs.iter().map(|(id, _)| id).collect();
    let df_names: Vec<String> = ids.iter().map(|id| osiris_input_name(id)).collect();
    let taken = |name: &str| ids.iter().any(|id| id.eq_ignore_ascii_case(name));
    inputs
        .iter()
        .enumerate()
        .map(|(i, (id, table))| {
            let mut aliases = Vec::new();
            let df = &df_names[i];
            let shared = df_names
                .iter()
                .filter(|other| other.eq_ignore_ascii_case(df))
                .count()
                > 1;
            if !shared && !taken(df) {
                aliases.push(df.clone());
            }
            if ids.len() == 1 && !taken(INPUT_DF) {
                aliases.push(INPUT_DF.to_owned());
            }
            Input {
                step_id: id.to_owned(),
                table: table.table.clone(),
                aliases,
            }
        })
        .collect()
}

#[async_trait]
impl Driver for DuckDbProcessor {
    const NAME: &'static str = "duckdb.processor";
    type Connection = driver_api::NoConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        _connection: driver_api::NoConnection,
        config: Config,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        // Not trimmed: DuckDB's line numbers must stay those of the query as written.
        let query = config.query;
        let table = ctx.output_table().clone();
        let inputs = inputs_with_aliases(&inputs);
        ctx.event(
            "transform.start",
            object([
                (
                    "inputs",
                    inputs
                        .iter()
                        .map(|input| input.step_id.clone())
                        .collect::<Vec<_>>()
                        .into(),
                ),
                ("query_chars", query.len().into()),
            ]),
        );
        let target = table.clone();
        let views = inputs.clone();
        let rows = ctx
            .run_blocking(move |conn, _cancel| {
                let created = create_input_views(conn, &views)?;
                let result = replace_table_as(conn, &target, &query);
                drop_input_views(conn, &created);
                result
            })
            .await
            .map_err(|error| explain(error, &inputs))?;
        ctx.event("transform.complete", object([("rows", rows.into())]));
        Ok(StepOutput::table(table, rows))
    }
}

/// Creates the aliases of the inputs as temporary views on `conn` (visible to this connection
/// only, never stored in the run database). Returns the names created.
fn create_input_views(conn: &duckdb::Connection, inputs: &[Input]) -> Result<Vec<String>> {
    let mut created = Vec::new();
    for input in inputs {
        for alias in &input.aliases {
            let sql = format!(
                "CREATE OR REPLACE TEMPORARY VIEW {} AS SELECT * FROM {}",
                quote_identifier(alias),
                input.table
            );
            if let Err(source) = conn.execute_batch(&sql) {
                drop_input_views(conn, &created);
                return Err(DriverError::duckdb(
                    format!("cannot name input {} as {alias}", input.step_id),
                    source,
                ));
            }
            created.push(alias.clone());
        }
    }
    Ok(created)
}

fn drop_input_views(conn: &duckdb::Connection, names: &[String]) {
    for name in names {
        let sql = format!("DROP VIEW IF EXISTS temp.main.{}", quote_identifier(name));
        if let Err(error) = conn.execute_batch(&sql) {
            tracing::warn!(%error, view = %name, "cannot drop an input view");
        }
    }
}

/// Turns a failure of the query into what the pipeline author needs: the user's SQL errors
/// (syntax, unknown names) are config errors on `query`; an unknown table lists the names the
/// step's inputs go by, instead of DuckDB's guess.
fn explain(error: DriverError, inputs: &[Input]) -> DriverError {
    let DriverError::DuckDb { source, .. } = error else {
        return error;
    };
    let message = source.to_string();
    let users_sql = ["Parser Error", "Binder Error", "Catalog Error"]
        .iter()
        .any(|kind| message.starts_with(kind));
    if !users_sql {
        return DriverError::DuckDb {
            context: "query failed".into(),
            source,
        };
    }
    let message = match missing_table(&message) {
        Some(name) => format!(
            "query failed: table {name} does not exist; {}{}",
            describe_inputs(&name, inputs),
            position(&message)
        ),
        None => format!("query failed: {message}"),
    };
    DriverError::config("query", message)
}

/// The table name of DuckDB's "Table with name X does not exist!" message.
fn missing_table(message: &str) -> Option<String> {
    let rest = message.split("Table with name ").nth(1)?;
    let end = rest.find(" does not exist")?;
    Some(rest[..end].to_owned())
}

/// DuckDB's `LINE n:` marker with what follows (the line and the caret), which stays useful
/// after the first part of a message is rewritten.
fn position(message: &str) -> String {
    message
        .find("LINE ")
        .map(|at| format!("\n{}", &message[at..]))
        .unwrap_or_default()
}

fn describe_inputs(missing: &str, inputs: &[Input]) -> String {
    if inputs.is_empty() {
        return "this step has no inputs: add the step whose table it reads to `needs`".into();
    }
    let listed = inputs
        .iter()
        .map(|input| {
            let mut names = quote_identifier(&input.step_id);
            if !input.aliases.is_empty() {
                names.push_str(&format!(" (or {})", input.aliases.join(", ")));
            }
            names
        })
        .collect::<Vec<_>>()
        .join(", ");
    if missing.eq_ignore_ascii_case(INPUT_DF) && inputs.len() > 1 {
        format!(
            "`{INPUT_DF}` names the single input of a step, and this step has {}: {listed}; name the one you mean",
            inputs.len()
        )
    } else {
        format!("this step's inputs are {listed}")
    }
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
        assert!(
            message.starts_with(
                "config key `query`: query failed: table missing_table does not exist"
            ),
            "{message}"
        );
        assert!(message.contains("this step has no inputs"), "{message}");
        // The user's SQL is wrong: a config error, not a DuckDB failure.
        assert_eq!(err.class(), driver_api::ErrorClass::Config);
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

    fn seeded() -> (tempfile::TempDir, TestRun) {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        run.connection()
            .execute_batch(
                "CREATE TABLE \"extract-movies\" AS SELECT * FROM (VALUES (1, 'Alien'), (2, 'Heat')) t(id, title);
                 CREATE TABLE \"2nd.reviews\" AS SELECT * FROM (VALUES (1, 5), (1, 4), (2, 3)) t(movie_id, stars);",
            )
            .unwrap();
        (dir, run)
    }

    #[test]
    fn osiris_input_names_follow_osiris_sanitizing() {
        assert_eq!(osiris_input_name("extract-movies"), "df_extract_movies");
        assert_eq!(osiris_input_name("extract.reviews"), "df_extract_reviews");
        assert_eq!(osiris_input_name("123movies"), "df__123movies");
        assert_eq!(osiris_input_name("plain_id"), "df_plain_id");
    }

    #[tokio::test]
    async fn a_single_input_is_input_df_and_df_name_but_not_a_table() {
        let (_dir, run) = seeded();
        for query in [
            "SELECT count(*) AS n FROM input_df",
            "SELECT count(*) AS n FROM df_extract_movies",
            "SELECT count(*) AS n FROM \"extract-movies\"",
        ] {
            let out = run
                .run(
                    &DuckDbProcessor,
                    "counted",
                    json!({ "query": query }),
                    &["extract-movies"],
                )
                .await
                .unwrap_or_else(|e| panic!("{query}: {e}"));
            assert_eq!(out.rows, 1);
            assert_eq!(
                run.query_strings("SELECT CAST(n AS VARCHAR) FROM counted"),
                [Some("2".into())]
            );
        }
        // The aliases never become objects of the run database.
        assert_eq!(
            run.query_strings(
                "SELECT CAST(count(*) AS VARCHAR) FROM duckdb_views() WHERE NOT internal
                 UNION ALL SELECT CAST(count(*) AS VARCHAR) FROM duckdb_tables() WHERE table_name LIKE '%df%'"
            ),
            [Some("0".into()), Some("0".into())]
        );
    }

    #[tokio::test]
    async fn several_inputs_have_df_names_and_input_df_is_an_error_listing_them() {
        let (_dir, run) = seeded();
        let out = run
            .run(
                &DuckDbProcessor,
                "joined",
                json!({"query": "SELECT m.title, sum(r.stars) AS stars FROM df_extract_movies m JOIN df__2nd_reviews r ON r.movie_id = m.id GROUP BY 1 ORDER BY 1"}),
                &["extract-movies", "2nd.reviews"],
            )
            .await
            .unwrap();
        assert_eq!(out.rows, 2);
        assert_eq!(
            run.query_strings("SELECT title || '=' || stars FROM joined ORDER BY title"),
            [Some("Alien=9".into()), Some("Heat=3".into())]
        );
        let err = run
            .run(
                &DuckDbProcessor,
                "ambiguous",
                json!({"query": "SELECT *\nFROM input_df"}),
                &["extract-movies", "2nd.reviews"],
            )
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("`input_df` names the single input of a step, and this step has 2: \"extract-movies\" (or df_extract_movies), \"2nd.reviews\" (or df__2nd_reviews)"),
            "{message}"
        );
        assert!(!message.contains("Did you mean"), "{message}");
        assert!(
            message.contains("LINE 2:"),
            "position of the query kept: {message}"
        );
        assert_eq!(err.class(), driver_api::ErrorClass::Config);
    }

    #[tokio::test]
    async fn an_unknown_table_lists_the_inputs_instead_of_duckdbs_guess() {
        let (_dir, run) = seeded();
        let err = run
            .run(
                &DuckDbProcessor,
                "p",
                json!({"query": "SELECT * FROM extract_movie"}),
                &["extract-movies"],
            )
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("table extract_movie does not exist; this step's inputs are \"extract-movies\" (or df_extract_movies, input_df)"),
            "{message}"
        );
        assert!(!message.contains("Did you mean"), "{message}");
    }

    #[tokio::test]
    async fn several_statements_or_a_non_query_are_refused_and_nothing_runs() {
        let (dir, run) = seeded();
        let outside = dir.path().join("written.csv");
        for query in [
            "SELECT 1; DROP TABLE \"extract-movies\"".to_owned(),
            "SELECT 1 AS x; COMMIT; SELECT error('x')".to_owned(),
            format!("COPY (SELECT 1) TO '{}'", outside.display()),
            "ATTACH ':memory:' AS other".to_owned(),
            "INSTALL httpfs".to_owned(),
            "DROP TABLE \"extract-movies\"".to_owned(),
        ] {
            let err = run
                .run(
                    &DuckDbProcessor,
                    "evil",
                    json!({ "query": query }),
                    &["extract-movies"],
                )
                .await
                .unwrap_err();
            assert_eq!(
                err.class(),
                driver_api::ErrorClass::Config,
                "{query}: {err}"
            );
            assert!(!run.table_exists("evil"), "{query}");
        }
        assert!(run.table_exists("extract-movies"));
        assert!(!outside.exists());
    }

    #[test]
    fn spec_and_config_struct_agree() {
        driver_api::testing::assert_spec_matches::<DuckDbProcessor>();
        // deny_unknown_fields: a key outside the spec is refused.
        assert!(serde_json::from_value::<Config>(json!({"query": "x", "other": 1})).is_err());
    }
}
