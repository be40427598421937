//! `mysql.writer`: an upstream table into a MySQL / MariaDB table.
//!
//! DuckDB formats every value as MySQL text in the `SELECT` that streams the step table out
//! (`load::text_expression`); Rust only escapes. Fast path: `LOAD DATA LOCAL INFILE` whose "file"
//! is a stream of tab-separated chunks generated from the Arrow batches (no temporary file);
//! the server may refuse LOCAL INFILE, then multi-row `INSERT`s of `batch_size` rows are sent
//! instead. The method used is reported in the `write.method` event.
//!
//! - append / upsert: one transaction (`truncate_before` deletes in it); upsert loads into a
//!   temporary table and runs one `INSERT ... SELECT ... ON DUPLICATE KEY UPDATE`, or sends
//!   `INSERT ... ON DUPLICATE KEY UPDATE` batches.
//! - replace: loads `<table>__osiris_staging` (created LIKE the destination) and swaps it in
//!   with one `RENAME TABLE`, so a failure leaves the destination untouched.
//!
//! Any warning the server reports for a write (truncation, invalid value) fails the step with
//! the first warnings.
//!
//! Modules: `modes` (append / upsert / replace over one connection, and the destination's
//! checks), `load` (how rows reach the server: LOAD DATA LOCAL INFILE or INSERT batches,
//! values formatted by DuckDB), `ddl` (`create_table`: MySQL column types and the DDL plan).

mod ddl;
mod load;
mod modes;

use std::time::Instant;

use async_trait::async_trait;
use driver_api::{Driver, DriverError, Result, StepContext, StepInputs, StepOutput, TableName};
use execution_context::object;
use serde::Deserialize;
use serde_json::Value;

use crate::conn::{MysqlConnection, classify};
use load::Method;

/// The `mysql.writer` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct MysqlWriter;

/// How the destination is changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Insert the rows.
    #[default]
    Append,
    /// Make the destination hold exactly the step's rows (staging table + RENAME TABLE).
    Replace,
    /// Insert, or update the non-key columns of rows whose key exists.
    Upsert,
}

/// Configuration of a `mysql.writer` step (without the connection's fields: see
/// [`MysqlConnection`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Destination table in `database`.
    pub table: String,
    /// append | replace | upsert. Default append.
    #[serde(default)]
    pub mode: Mode,
    /// Key columns (required for upsert).
    #[serde(default)]
    pub primary_key: Option<Vec<String>>,
    /// Deprecated alias of `primary_key`.
    #[serde(default)]
    pub upsert_keys: Option<Vec<String>>,
    /// Create a missing destination from the step table's columns. Default false.
    #[serde(default)]
    pub create_table: bool,
    /// With append or upsert: delete every existing row first, in the same transaction.
    #[serde(default)]
    pub truncate_before: bool,
    /// Rows per INSERT statement. Default 1000.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Python Osiris: the database (see `conn::apply_python_fields`).
    #[serde(default)]
    pub schema: Option<String>,
    /// Python Osiris SQLAlchemy setting, warned about; no effect.
    #[serde(default)]
    pub pool_size: Option<u32>,
    /// Python Osiris SQLAlchemy setting, warned about; no effect.
    #[serde(default)]
    pub pool_recycle: Option<u64>,
    /// Python Osiris SQLAlchemy setting, warned about; no effect.
    #[serde(default)]
    pub echo: Option<bool>,
}

fn default_batch_size() -> usize {
    1000
}

/// A column of the step table, as it is written.
#[derive(Debug, Clone)]
struct WriteColumn {
    name: String,
    duck_type: String,
    /// SQL applied to the text value on the server: `UNHEX(?)` for binary, a cast for BIT.
    wrap: Option<&'static str>,
}

impl WriteColumn {
    fn wrapped(&self, value: &str) -> String {
        match self.wrap {
            Some(template) => template.replace('?', value),
            None => value.to_owned(),
        }
    }
}

#[async_trait]
impl Driver for MysqlWriter {
    const NAME: &'static str = "mysql.writer";
    type Connection = MysqlConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: MysqlConnection,
        config: Config,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        self.run_with(ctx, connection, config, inputs, None).await
    }

    async fn doctor(&self, connection: &MysqlConnection) -> Result<()> {
        connection.check().await
    }
}

impl MysqlWriter {
    /// [`Driver::run`], with the load method forced (tests of the INSERT path).
    async fn run_with(
        &self,
        ctx: &StepContext,
        connection: MysqlConnection,
        config: Config,
        inputs: StepInputs,
        method: Option<Method>,
    ) -> Result<StepOutput> {
        let started = Instant::now();
        let input = inputs.single()?.table.clone();
        let mut endpoint = connection;
        endpoint.resolve_paths(ctx.base_dir());
        crate::conn::apply_python_fields(
            ctx,
            &mut endpoint.database,
            config.schema.as_deref(),
            config.pool_size,
            config.pool_recycle,
            config.echo,
        )?;
        let keys = match (&config.primary_key, &config.upsert_keys) {
            (Some(_), Some(_)) => {
                return Err(DriverError::config(
                    "upsert_keys",
                    "set primary_key or its deprecated alias upsert_keys, not both",
                ));
            }
            (Some(k), None) | (None, Some(k)) => k.clone(),
            (None, None) => Vec::new(),
        };
        if config.mode == Mode::Upsert && keys.is_empty() {
            return Err(DriverError::config(
                "primary_key",
                "mode upsert needs primary_key: the key columns that identify a row",
            ));
        }
        if config.mode == Mode::Replace && config.truncate_before {
            return Err(DriverError::config(
                "truncate_before",
                "mode replace already replaces all rows; truncate_before goes with append or upsert",
            ));
        }
        let describe_table = input.clone();
        let mut columns = ctx
            .run_blocking(move |conn, _| describe(conn, &describe_table))
            .await?;
        for key in &keys {
            if !columns.iter().any(|c| c.name.eq_ignore_ascii_case(key)) {
                return Err(DriverError::config(
                    "primary_key",
                    format!("the step table {} has no column {key:?}", input.as_str()),
                ));
            }
        }
        if config.mode == Mode::Upsert {
            driver_api::check_key_columns(ctx, &input, &keys).await?;
        }
        ctx.event(
            "write.start",
            object([
                ("table", Value::String(config.table.clone())),
                (
                    "mode",
                    Value::String(format!("{:?}", config.mode).to_lowercase()),
                ),
                ("source", Value::String(input.as_str().to_owned())),
            ]),
        );

        let mut conn = endpoint.connect().await?;
        let work = modes::write(
            ctx,
            &mut conn,
            &endpoint.database,
            &config,
            &keys,
            &input,
            &mut columns,
            method,
        );
        let rows = tokio::select! {
            rows = work => rows?,
            () = ctx.cancellation().cancelled() => return Err(DriverError::Cancelled),
        };
        let _ = conn.disconnect().await;
        let duration_ms = started.elapsed().as_millis() as u64;
        ctx.metric("rows_written", rows);
        ctx.metric("duration_ms", duration_ms);
        ctx.event(
            "write.complete",
            object([
                ("table", Value::String(config.table.clone())),
                ("rows", rows.into()),
                ("duration_ms", duration_ms.into()),
            ]),
        );
        Ok(StepOutput::written(rows))
    }
}

/// The step table's columns and DuckDB types.
fn describe(conn: &duckdb::Connection, table: &TableName) -> Result<Vec<WriteColumn>> {
    let err = |e| DriverError::duckdb(format!("cannot read the columns of table {table}"), e);
    let mut stmt = conn.prepare(&format!("DESCRIBE {table}")).map_err(err)?;
    let columns = stmt
        .query_map([], |row| {
            Ok(WriteColumn {
                name: row.get(0)?,
                duck_type: row.get(1)?,
                wrap: None,
            })
        })
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(columns)
}

pub(super) fn fail(doing: &'static str) -> impl Fn(mysql_async::Error) -> DriverError {
    move |e| classify(e, doing)
}

#[cfg(test)]
mod tests {
    use super::*;

    use driver_api::InputTable;
    use driver_api::testing::TestRun;
    use mysql_async::prelude::Queryable;
    use mysql_async::{Conn, OptsBuilder, Row};

    /// The INSERT path (used when the server refuses LOCAL INFILE) writes exactly what the
    /// LOAD DATA path writes, for every mode.
    #[tokio::test]
    async fn insert_fallback_writes_what_load_data_writes() {
        let db = format!("osiris_t_insert_{}", std::process::id());
        let opts = |db: Option<&str>| {
            OptsBuilder::default()
                .ip_or_hostname("127.0.0.1")
                .tcp_port(3306)
                .prefer_socket(false)
                .user(Some("root"))
                .db_name(db)
        };
        let mut admin = Conn::new(opts(None))
            .await
            .expect("MariaDB on 127.0.0.1:3306");
        admin
            .query_drop(format!(
                "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}"
            ))
            .await
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        run.connection()
            .execute_batch(
                r#"CREATE TABLE src AS SELECT * FROM (VALUES
                  (1, 'it''s \ a' || chr(9) || 'tab' || chr(10) || 'line ž🐴', 1.25::DECIMAL(10,2),
                   '\x00\xFF'::BLOB, TIMESTAMP '2024-01-02 03:04:05.123456', INTERVAL '-25 hours',
                   true, '{"a": 1}'::JSON, [1, 2]),
                  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
                 ) t(id, s, d, b, ts, iv, f, j, l)"#,
            )
            .unwrap();
        let write = |table: &'static str, mode: &'static str, method: Option<Method>| {
            let ctx = StepContext::new(
                run.execution_context(),
                table,
                MysqlWriter::NAME,
                dir.path(),
            )
            .unwrap();
            let mut inputs = StepInputs::new();
            inputs.insert(
                "src",
                InputTable {
                    table: TableName::new("src").unwrap(),
                    rows: 2,
                },
            );
            let (connection, config): (MysqlConnection, Config) =
                driver_api::split_config(serde_json::json!({
                    "host": "127.0.0.1", "database": db, "user": "root", "table": table,
                    "mode": mode, "primary_key": ["id"], "create_table": true, "batch_size": 1
                }))
                .unwrap();
            async move {
                MysqlWriter
                    .run_with(&ctx, connection, config, inputs, method)
                    .await
            }
        };
        let forced = Some(Method::Insert("forced by the test"));
        for mode in ["append", "upsert", "replace"] {
            admin
                .query_drop(format!("DROP TABLE IF EXISTS {db}.a, {db}.b"))
                .await
                .unwrap();
            assert_eq!(write("a", mode, None).await.unwrap().rows, 2, "{mode}");
            assert_eq!(write("b", mode, forced).await.unwrap().rows, 2, "{mode}");
            // Twice: upsert updates in place, replace swaps the table in again.
            if mode != "append" {
                write("b", mode, forced).await.unwrap();
            }
            let rows = |table: &str| format!("SELECT * FROM {db}.{table} ORDER BY id");
            let a: Vec<Row> = admin.query(rows("a")).await.unwrap();
            let b: Vec<Row> = admin.query(rows("b")).await.unwrap();
            let a: Vec<Vec<mysql_async::Value>> = a.into_iter().map(Row::unwrap).collect();
            let b: Vec<Vec<mysql_async::Value>> = b.into_iter().map(Row::unwrap).collect();
            assert_eq!(a, b, "{mode}");
            assert_eq!(a.len(), 2, "{mode}");
            assert_eq!(
                a[0][5],
                mysql_async::Value::Bytes(b"-25:00:00.000000".to_vec())
            );
            assert_eq!(a[0][3], mysql_async::Value::Bytes(vec![0, 255]));
        }
        admin
            .query_drop(format!("DROP DATABASE {db}"))
            .await
            .unwrap();
    }
}
