//! `mysql.extractor`: a query's result or a table's rows into the step table.
//!
//! Each reader runs its statement as a prepared statement (binary protocol) inside
//! `START TRANSACTION READ ONLY`; rows are decoded straight into Arrow builders
//! ([`crate::types`]) and every `batch_size` rows a batch goes to the shared
//! [`TableWriter`], which commits the table only when every reader has finished. With
//! `partition_on` several readers (each with its own connection) feed the one writer.
//!
//! With `incremental`, the shared [`Cursor`] gives the lower bound `cursor >= value`, added to
//! the table read's condition (and to each partition's) or wrapped around a `query`
//! (`SELECT * FROM (<query>) AS osiris_incremental WHERE ...`); every batch passes through the
//! cursor before the writer, which drops the rows the previous run delivered and records the
//! new cursor from the data (ADR 0033).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use driver_api::incremental::{self, Bound, BoundValue, Cursor, IncrementalConfig};
use driver_api::{
    DiscoveredColumn, DiscoveredTable, Driver, DriverError, Result, StepContext, StepInputs,
    StepOutput, TableWriter,
};
use execution_context::object;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::conn::{MysqlConnection, classify, quote_mysql_identifier, quote_mysql_literal};
use crate::types::{BatchBuilder, Kind, schema_of};

/// The `mysql.extractor` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct MysqlExtractor;

/// Configuration of a `mysql.extractor` step (without the connection's fields: see
/// [`MysqlConnection`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seconds to wait for the first rows and then between two batches; 0 waits forever.
    /// Default 600.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: u64,
    /// One SQL statement returning rows. Exactly one of `query` and `table`.
    #[serde(default)]
    pub query: Option<String>,
    /// A table or view of `database` to read.
    #[serde(default)]
    pub table: Option<String>,
    /// Columns of `table` to read, in this order. Default: all.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// SQL condition for `table`, inserted as `WHERE (<where>)`.
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    /// At most this many rows of `table`.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many rows of `table` first.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Rows per batch. Default 10000.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Integer column of `table` to split the read on.
    #[serde(default)]
    pub partition_on: Option<String>,
    /// Number of ranges and parallel connections.
    #[serde(default)]
    pub partitions: Option<u32>,
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
    /// Read only the rows past the cursor saved by the previous successful run.
    #[serde(default)]
    pub incremental: Option<IncrementalConfig>,
}

fn default_read_timeout() -> u64 {
    600
}
fn default_batch_size() -> usize {
    10_000
}

/// One statement a reader runs.
#[derive(Debug, Clone)]
struct Read {
    sql: String,
}

/// What readers send to the step's writer loop.
enum Msg {
    Schema(SchemaRef),
    Batch(RecordBatch),
}

#[async_trait]
impl Driver for MysqlExtractor {
    const NAME: &'static str = "mysql.extractor";
    type Connection = MysqlConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: MysqlConnection,
        config: Config,
        _inputs: StepInputs,
    ) -> Result<StepOutput> {
        let started = Instant::now();
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
        let source = match (&config.query, &config.table) {
            (Some(_), None) => "query".to_owned(),
            (None, Some(t)) => format!("table {t}"),
            _ => {
                return Err(DriverError::Config {
                    key: None,
                    message:
                        "set `query` (an SQL statement) or `table` (a table to read), not both"
                            .into(),
                });
            }
        };
        ctx.event(
            "extraction.start",
            object([
                ("database", Value::String(endpoint.database.clone())),
                ("source", Value::String(source)),
            ]),
        );
        let mut cursor = incremental::start(
            config.incremental.as_ref(),
            ctx.state(),
            &[
                ("limit", config.limit.is_some()),
                ("offset", config.offset.is_some()),
            ],
        )?;
        let bound = cursor.as_ref().map(Cursor::bound).transpose()?.flatten();
        let reads =
            plan_reads(&endpoint, &config, bound.as_ref().map(predicate).as_deref()).await?;
        let partitions = reads.len();
        let rows = read_all(ctx, &endpoint, &config, reads, cursor.as_mut()).await?;
        let duration_ms = started.elapsed().as_millis() as u64;
        // rows_read is the engine's metric (from the step output), written once per step.
        ctx.metric("duration_ms", duration_ms);
        ctx.event(
            "extraction.complete",
            object([
                ("rows", rows.into()),
                ("partitions", partitions.into()),
                ("duration_ms", duration_ms.into()),
            ]),
        );
        let output = StepOutput::table(ctx.output_table().clone(), rows);
        Ok(incremental::finish(
            cursor.as_ref(),
            ctx,
            bound.as_ref(),
            output,
        ))
    }

    async fn doctor(&self, connection: &MysqlConnection) -> Result<()> {
        connection.check().await
    }

    async fn discover(&self, connection: &MysqlConnection) -> Result<Vec<DiscoveredTable>> {
        discover(connection).await
    }
}

/// An incremental read's bound in MySQL: `\`cursor\` >= literal`.
fn predicate(bound: &Bound) -> String {
    let value = match &bound.value {
        BoundValue::Number(n) => n.clone(),
        BoundValue::Text(t) => quote_mysql_literal(t),
    };
    format!("{} >= {value}", quote_mysql_identifier(&bound.column))
}

/// The statements to run: one, or one per partition; `incremental` is the cursor's bound.
async fn plan_reads(
    endpoint: &MysqlConnection,
    config: &Config,
    incremental: Option<&str>,
) -> Result<Vec<Read>> {
    if let Some(query) = &config.query {
        let mut sql = query.trim().trim_end_matches(';').trim_end().to_owned();
        if sql.is_empty() {
            return Err(DriverError::config("query", "is empty"));
        }
        if let Some(bound) = incremental {
            sql = format!("SELECT * FROM ({sql}) AS osiris_incremental WHERE {bound}");
        }
        return Ok(vec![Read { sql }]);
    }
    let Some(table) = &config.table else {
        return Err(DriverError::config("table", "set `query` or `table`"));
    };
    let split = matches!((&config.partition_on, config.partitions), (Some(_), Some(n)) if n > 1);
    // The catalog is asked only for `columns` and partitions: a plain read (an incremental
    // run's, typically) costs no extra connection.
    let mut conn = if config.columns.is_some() || split {
        Some(endpoint.connect().await?)
    } else {
        None
    };
    let select = match &config.columns {
        None => "*".to_owned(),
        Some(columns) => {
            let conn = conn.as_mut().expect("connected for `columns`");
            check_columns(conn, table, columns).await?;
            columns
                .iter()
                .map(|c| quote_mysql_identifier(c))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let from = format!("SELECT {select} FROM {}", quote_mysql_identifier(table));
    let condition = match (config.where_.as_ref(), incremental) {
        (Some(w), Some(b)) => Some(format!("({w}) AND {b}")),
        (Some(w), None) => Some(format!("({w})")),
        (None, Some(b)) => Some(b.to_owned()),
        (None, None) => None,
    };
    let reads = match (&config.partition_on, config.partitions) {
        (Some(column), Some(n)) if n > 1 => {
            let conn = conn.as_mut().expect("connected for partitions");
            partitioned(conn, table, column, n, &from, condition.as_deref()).await?
        }
        _ => {
            let mut sql = from;
            if let Some(c) = &condition {
                sql.push_str(&format!(" WHERE {c}"));
            }
            match (config.limit, config.offset) {
                (Some(l), Some(o)) => sql.push_str(&format!(" LIMIT {l} OFFSET {o}")),
                (Some(l), None) => sql.push_str(&format!(" LIMIT {l}")),
                (None, Some(o)) => sql.push_str(&format!(" LIMIT 18446744073709551615 OFFSET {o}")),
                (None, None) => {}
            }
            vec![Read { sql }]
        }
    };
    if let Some(conn) = conn {
        let _ = conn.disconnect().await;
    }
    Ok(reads)
}

/// Fails with the table's column list when `columns` names one it does not have.
async fn check_columns(conn: &mut Conn, table: &str, columns: &[String]) -> Result<()> {
    let existing: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await
        .map_err(|e| classify(e, "cannot read the columns of the table"))?;
    if existing.is_empty() {
        return Err(DriverError::config(
            "table",
            format!("table {table:?} does not exist in the database"),
        ));
    }
    let missing: Vec<&String> = columns
        .iter()
        .filter(|c| !existing.iter().any(|e| e.eq_ignore_ascii_case(c)))
        .collect();
    if !missing.is_empty() {
        return Err(DriverError::config(
            "columns",
            format!(
                "table {table:?} has no column {}; its columns are: {}",
                missing
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                existing.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Cuts MIN..=MAX of an integer column into `n` ranges, one statement each.
async fn partitioned(
    conn: &mut Conn,
    table: &str,
    column: &str,
    n: u32,
    from: &str,
    condition: Option<&str>,
) -> Result<Vec<Read>> {
    let data_type: Option<String> = conn
        .exec_first(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?",
            (table, column),
        )
        .await
        .map_err(|e| classify(e, "cannot read the type of partition_on"))?;
    match data_type.as_deref() {
        Some("tinyint" | "smallint" | "mediumint" | "int" | "bigint") => {}
        Some(other) => {
            return Err(DriverError::config(
                "partition_on",
                format!(
                    "column {column:?} is {other}, not an integer type; partition on an integer column"
                ),
            ));
        }
        None => {
            return Err(DriverError::config(
                "partition_on",
                format!("table {table:?} has no column {column:?}"),
            ));
        }
    }
    let col = quote_mysql_identifier(column);
    let bounds_sql = format!(
        "SELECT CAST(MIN({col}) AS CHAR), CAST(MAX({col}) AS CHAR) FROM {}{}",
        quote_mysql_identifier(table),
        condition.map(|c| format!(" WHERE {c}")).unwrap_or_default()
    );
    let bounds: Option<(Option<String>, Option<String>)> = conn
        .query_first(bounds_sql)
        .await
        .map_err(|e| classify(e, "cannot read the range of partition_on"))?;
    let parse = |s: Option<String>| s.and_then(|s| s.parse::<i128>().ok());
    let (lo, hi) = match bounds {
        Some((lo, hi)) => (parse(lo), parse(hi)),
        None => (None, None),
    };
    let where_prefix = condition.map(|c| format!("{c} AND ")).unwrap_or_default();
    let ranges = driver_api::ranges::split(lo, hi, n);
    if ranges.is_empty() {
        // No non-NULL values: one read of everything.
        let sql = match condition {
            Some(c) => format!("{from} WHERE {c}"),
            None => from.to_owned(),
        };
        return Ok(vec![Read { sql }]);
    }
    Ok(ranges
        .iter()
        .map(|range| Read {
            sql: format!("{from} WHERE {where_prefix}{}", range.condition(&col)),
        })
        .collect())
}

/// Runs every read concurrently into the one table writer.
async fn read_all(
    ctx: &StepContext,
    endpoint: &MysqlConnection,
    config: &Config,
    reads: Vec<Read>,
    mut cursor: Option<&mut Cursor>,
) -> Result<u64> {
    let (tx, mut rx) = mpsc::channel::<Result<Msg>>(reads.len() * 2 + 2);
    let mut tasks = JoinSet::new();
    let read_timeout = (config.read_timeout > 0).then(|| Duration::from_secs(config.read_timeout));
    let batch_size = config.batch_size.max(1);
    for read in reads {
        let tx = tx.clone();
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            if let Err(e) = run_read(&endpoint, read, batch_size, read_timeout, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
    }
    drop(tx);
    let mut writer: Option<TableWriter> = None;
    let outcome: Result<()> = async {
        loop {
            let msg = tokio::select! {
                msg = rx.recv() => msg,
                () = ctx.cancellation().cancelled() => return Err(DriverError::Cancelled),
            };
            match msg {
                None => return Ok(()),
                Some(Err(e)) => return Err(e),
                Some(Ok(Msg::Schema(schema))) => {
                    if let Some(cursor) = cursor.as_deref_mut() {
                        cursor.check_schema(&schema)?;
                    }
                    if writer.is_none() {
                        writer = Some(TableWriter::for_step(ctx, schema)?);
                    }
                }
                Some(Ok(Msg::Batch(batch))) => match writer.as_mut() {
                    Some(w) => {
                        let batch = match cursor.as_deref_mut() {
                            Some(cursor) => cursor.filter(batch)?,
                            None => batch,
                        };
                        if batch.num_rows() > 0 {
                            w.send(batch).await?;
                        }
                    }
                    None => return Err(DriverError::internal("a batch arrived before the schema")),
                },
            }
        }
    }
    .await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    match (outcome, writer) {
        (Ok(()), Some(w)) => w.finish().await,
        (Ok(()), None) => Err(DriverError::internal("no reader reported a result")),
        (Err(e), Some(w)) => {
            w.abort().await;
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// One reader: connects, runs its statement in a read-only transaction, sends its schema
/// and then its batches.
async fn run_read(
    endpoint: &MysqlConnection,
    read: Read,
    batch_size: usize,
    read_timeout: Option<Duration>,
    tx: &mpsc::Sender<Result<Msg>>,
) -> Result<()> {
    let mut conn = endpoint.connect().await?;
    conn.query_drop("START TRANSACTION READ ONLY")
        .await
        .map_err(|e| classify(e, "cannot start a read-only transaction"))?;
    let fail = |e| classify(e, "the query failed");
    let statement = within(read_timeout, conn.prep(read.sql.as_str()))
        .await?
        .map_err(fail)?;
    let json = json_columns(&mut conn, statement.columns()).await;
    let mut result = within(read_timeout, conn.exec_iter(statement, Params::Empty))
        .await?
        .map_err(fail)?;
    let columns = result.columns().ok_or_else(|| {
        DriverError::config("query", "the statement returns no rows (use a SELECT)")
    })?;
    if columns.is_empty() {
        return Err(DriverError::config(
            "query",
            "the statement returns no rows (use a SELECT)",
        ));
    }
    let names: Vec<String> = columns.iter().map(|c| c.name_str().into_owned()).collect();
    let kinds: Vec<Kind> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if json.contains(&i) {
                Kind::Json
            } else {
                Kind::of(c)
            }
        })
        .collect();
    let schema = schema_of(&names, &kinds);
    if tx.send(Ok(Msg::Schema(Arc::clone(&schema)))).await.is_err() {
        return Ok(());
    }
    let mut batch = BatchBuilder::new(schema, kinds, batch_size);
    let mut row_number: u64 = 0;
    loop {
        // One timeout per batch: the first rows may take the query's execution time.
        let more = within(read_timeout, async {
            while batch.rows() < batch_size {
                match result.next().await {
                    Ok(Some(row)) => {
                        row_number += 1;
                        batch.push_row(row.unwrap_raw()).map_err(|bad| {
                            DriverError::data(format!(
                                "row {row_number}, column {:?}: {}",
                                names.get(bad.column).map(String::as_str).unwrap_or("?"),
                                bad.message
                            ))
                        })?;
                    }
                    Ok(None) => return Ok(false),
                    Err(e) => return Err(classify(e, "reading the rows failed")),
                }
            }
            Ok(true)
        })
        .await??;
        if batch.rows() > 0 {
            let record = batch
                .finish()
                .map_err(|e| DriverError::internal(format!("cannot build a batch: {e}")))?;
            if tx.send(Ok(Msg::Batch(record))).await.is_err() {
                return Ok(());
            }
        }
        if !more {
            break;
        }
    }
    drop(result);
    conn.query_drop("COMMIT")
        .await
        .map_err(|e| classify(e, "cannot end the read-only transaction"))?;
    let _ = conn.disconnect().await;
    Ok(())
}

/// Indexes of the text columns that are JSON columns of a MariaDB table: MariaDB reports JSON
/// as LONGTEXT and marks it only with the `json_valid(<column>)` CHECK constraint it adds.
/// Best effort: where the catalog cannot tell, the column stays text.
async fn json_columns(conn: &mut Conn, columns: &[mysql_async::Column]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut checked: Vec<((String, String), Vec<String>)> = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        // MariaDB's JSON is LONGTEXT, sent as one of the BLOB types: CHAR, VARCHAR, ENUM and
        // SET columns never need the catalog query (a plain table costs no extra round trip).
        let blob_family = matches!(
            column.column_type(),
            mysql_async::consts::ColumnType::MYSQL_TYPE_TINY_BLOB
                | mysql_async::consts::ColumnType::MYSQL_TYPE_MEDIUM_BLOB
                | mysql_async::consts::ColumnType::MYSQL_TYPE_LONG_BLOB
                | mysql_async::consts::ColumnType::MYSQL_TYPE_BLOB
        );
        if !blob_family || Kind::of(column) != Kind::Text || column.org_table_ref().is_empty() {
            continue;
        }
        let key = (
            column.schema_str().into_owned(),
            column.org_table_str().into_owned(),
        );
        let clauses = match checked.iter().find(|(k, _)| *k == key) {
            Some((_, clauses)) => clauses.clone(),
            None => {
                let clauses: Vec<String> = conn
                    .exec(
                        "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                         WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                        (&key.0, &key.1),
                    )
                    .await
                    .unwrap_or_default();
                checked.push((key, clauses.clone()));
                clauses
            }
        };
        let expected = format!(
            "json_valid({})",
            quote_mysql_identifier(&column.org_name_str())
        );
        if clauses.iter().any(|c| c.eq_ignore_ascii_case(&expected)) {
            found.push(i);
        }
    }
    found
}

async fn within<T>(
    limit: Option<Duration>,
    work: impl std::future::Future<Output = T>,
) -> Result<T> {
    match limit {
        None => Ok(work.await),
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| DriverError::Timeout {
                message: format!(
                    "the server sent no rows for {}s (read_timeout)",
                    limit.as_secs()
                ),
            }),
    }
}

/// Discover mode: the tables and views of the connection's `database` with their columns,
/// types, primary keys and estimated row counts.
pub async fn discover(endpoint: &MysqlConnection) -> Result<Vec<DiscoveredTable>> {
    let mut conn = endpoint.connect().await?;
    let fail = |e| classify(e, "cannot read the catalog");
    let tables: Vec<(String, String, Option<u64>)> = conn
        .query(
            "SELECT TABLE_NAME, TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
        )
        .await
        .map_err(fail)?;
    let columns: Vec<(String, String, String, String)> = conn
        .query(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION",
        )
        .await
        .map_err(fail)?;
    let keys: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = DATABASE() AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY TABLE_NAME, ORDINAL_POSITION",
        )
        .await
        .map_err(fail)?;
    let _ = conn.disconnect().await;
    Ok(tables
        .into_iter()
        .map(|(name, table_type, rows)| DiscoveredTable {
            primary_key: keys
                .iter()
                .filter(|(t, _)| *t == name)
                .map(|(_, c)| c.clone())
                .collect(),
            columns: columns
                .iter()
                .filter(|(t, ..)| *t == name)
                .map(|(_, c, ty, nullable)| DiscoveredColumn {
                    name: c.clone(),
                    source_type: ty.clone(),
                    nullable: Some(nullable == "YES"),
                })
                .collect(),
            estimated_rows: if table_type == "VIEW" { None } else { rows },
            kind: Some(if table_type == "VIEW" {
                "view"
            } else {
                "table"
            }),
            schema: Some(endpoint.database.clone()),
            name,
        })
        .collect())
}
