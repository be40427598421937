//! `mysql.writer`: an upstream table into a MySQL / MariaDB table.
//!
//! DuckDB formats every value as MySQL text in the `SELECT` that streams the step table out
//! ([`text_expression`]); Rust only escapes. Fast path: `LOAD DATA LOCAL INFILE` whose "file"
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

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use async_trait::async_trait;
use bytes::Bytes;
use driver_api::{
    Driver, DriverError, Result, SecretString, StepContext, StepInputs, StepOutput, TableName,
    TableReader, quote_identifier,
};
use execution_context::object;
use futures::StreamExt;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::conn::{Endpoint, SslMode, classify, quote_mysql_identifier, quote_mysql_literal};
use crate::extractor::{default_connect_timeout, default_port};

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

/// Configuration of a `mysql.writer` step (connection fields merged in).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server host name or IP address (usually from the connection).
    #[serde(default)]
    pub host: String,
    /// Server TCP port. Default 3306.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Database (schema) holding `table`.
    #[serde(default)]
    pub database: String,
    /// User name.
    #[serde(default)]
    pub user: String,
    /// Password of `user`; not set = no password.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Seconds for the TCP connection and the login handshake. Default 10.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: u64,
    /// TLS mode. Default `preferred`.
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// PEM file of CA certificates for verify_ca / verify_identity.
    #[serde(default)]
    pub ssl_ca: Option<String>,
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
    /// The database holding the table (in MySQL a schema is a database), as in the Python
    /// Osiris spec: used as `database` when that is not set; naming another database than
    /// `database` is refused.
    #[serde(default)]
    pub schema: Option<String>,
    /// Accepted for compatibility with the Python Osiris (SQLAlchemy pool size) with a
    /// `config.warning` event; no effect: a step opens its own connections.
    #[serde(default)]
    pub pool_size: Option<u32>,
    /// Accepted for compatibility with the Python Osiris (SQLAlchemy pool recycle seconds)
    /// with a `config.warning` event; no effect: connections live for one step.
    #[serde(default)]
    pub pool_recycle: Option<u64>,
    /// Accepted for compatibility with the Python Osiris (SQLAlchemy statement logging) with
    /// a `config.warning` event; no effect: SQL is never logged (it may hold values).
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
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        config: Config,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        self.run_with(ctx, config, inputs, None).await
    }

    async fn doctor(&self, connection: &serde_json::Map<String, Value>) -> Result<()> {
        crate::conn::endpoint_from_fields(connection)?.check().await
    }
}

impl MysqlWriter {
    /// [`Driver::run`], with the load method forced (tests of the INSERT path).
    async fn run_with(
        &self,
        ctx: &StepContext,
        config: Config,
        inputs: StepInputs,
        method: Option<Method>,
    ) -> Result<StepOutput> {
        let started = Instant::now();
        let input = inputs.single()?.table.clone();
        let mut config = config;
        crate::conn::apply_python_fields(
            ctx,
            &mut config.database,
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

        let endpoint = Endpoint {
            host: config.host.clone(),
            port: config.port,
            database: config.database.clone(),
            user: config.user.clone(),
            password: config.password.clone(),
            connect_timeout: config.connect_timeout,
            ssl_mode: config.ssl_mode,
            ssl_ca: config.ssl_ca.as_ref().map(|p| ctx.base_dir().join(p)),
        };
        let mut conn = endpoint.connect().await?;
        let work = write(ctx, &mut conn, &config, &keys, &input, &mut columns, method);
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

fn fail(doing: &'static str) -> impl Fn(mysql_async::Error) -> DriverError {
    move |e| classify(e, doing)
}

async fn write(
    ctx: &StepContext,
    conn: &mut Conn,
    config: &Config,
    keys: &[String],
    input: &TableName,
    columns: &mut [WriteColumn],
    method: Option<Method>,
) -> Result<u64> {
    let table = &config.table;
    let dest: Vec<(String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await
        .map_err(fail("cannot read the destination's columns"))?;
    let ddl = if dest.is_empty() {
        if !config.create_table {
            return Err(DriverError::config(
                "table",
                format!(
                    "table {table:?} does not exist in database {:?}; create it or set create_table: true",
                    config.database
                ),
            ));
        }
        Some(create_table_sql(columns, keys)?)
    } else {
        let missing: Vec<&str> = columns
            .iter()
            .filter(|c| !dest.iter().any(|(d, _)| d.eq_ignore_ascii_case(&c.name)))
            .map(|c| c.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(DriverError::data(format!(
                "table {table:?} has no column {}; its columns are: {}",
                missing.join(", "),
                dest.iter()
                    .map(|(d, _)| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        None
    };
    for column in columns.iter_mut() {
        let dest_type = dest
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(&column.name))
            .map(|(_, t)| t.as_str());
        column.wrap = if column.duck_type == "BLOB" {
            Some("UNHEX(?)")
        } else if dest_type == Some("bit") {
            Some("CAST(? AS UNSIGNED)")
        } else {
            None
        };
    }
    if config.mode == Mode::Upsert && ddl.is_none() {
        check_unique_key(conn, table, keys).await?;
    }
    if config.mode == Mode::Replace && ddl.is_none() {
        check_no_foreign_keys(conn, table).await?;
    }

    let method = match method {
        Some(m) => m,
        None => choose_method(conn).await?,
    };
    ctx.event(
        "write.method",
        object([
            ("method", Value::String(method.name().into())),
            ("reason", Value::String(method.reason().into())),
        ]),
    );
    let mut writer = Loader {
        ctx,
        columns,
        batch_size: config.batch_size.max(1),
        select: select_sql(input, columns),
        method,
    };

    if let Some(body) = &ddl {
        let file = ctx.artifacts_dir().join("ddl_plan.sql");
        let statement = format!("CREATE TABLE {} {body}", quote_mysql_identifier(table));
        std::fs::write(&file, format!("{statement};\n"))
            .map_err(|e| DriverError::io(format!("cannot write {}", file.display()), e))?;
    }

    match config.mode {
        Mode::Replace => replace(ctx, conn, &mut writer, table, ddl.as_deref()).await,
        Mode::Append | Mode::Upsert => {
            if let Some(body) = &ddl {
                let statement = format!("CREATE TABLE {} {body}", quote_mysql_identifier(table));
                conn.query_drop(&statement)
                    .await
                    .map_err(fail("cannot create the destination table"))?;
                ddl_event(ctx, table);
            }
            conn.query_drop("START TRANSACTION")
                .await
                .map_err(fail("cannot start a transaction"))?;
            let result = async {
                if config.truncate_before {
                    conn.query_drop(format!("DELETE FROM {}", quote_mysql_identifier(table)))
                        .await
                        .map_err(fail("cannot delete the destination's rows"))?;
                }
                let rows = if config.mode == Mode::Upsert {
                    writer.upsert(conn, table, keys).await?
                } else {
                    writer.load(conn, table, None).await?
                };
                conn.query_drop("COMMIT")
                    .await
                    .map_err(fail("cannot commit"))?;
                Ok(rows)
            }
            .await;
            if result.is_err() {
                let _ = conn.query_drop("ROLLBACK").await;
            }
            result
        }
    }
}

fn ddl_event(ctx: &StepContext, table: &str) {
    ctx.event(
        "table.ddl_executed",
        object([
            ("table", Value::String(table.to_owned())),
            ("ddl_plan", Value::String("ddl_plan.sql".into())),
        ]),
    );
}

async fn replace(
    ctx: &StepContext,
    conn: &mut Conn,
    writer: &mut Loader<'_>,
    table: &str,
    ddl: Option<&str>,
) -> Result<u64> {
    let staging = format!("{table}__osiris_staging");
    let old = format!("{table}__osiris_old");
    let (q_table, q_staging, q_old) = (
        quote_mysql_identifier(table),
        quote_mysql_identifier(&staging),
        quote_mysql_identifier(&old),
    );
    conn.query_drop(format!("DROP TABLE IF EXISTS {q_staging}, {q_old}"))
        .await
        .map_err(fail("cannot drop a leftover staging table"))?;
    match ddl {
        Some(body) => {
            conn.query_drop(format!("CREATE TABLE {q_staging} {body}"))
                .await
        }
        None => {
            conn.query_drop(format!("CREATE TABLE {q_staging} LIKE {q_table}"))
                .await
        }
    }
    .map_err(fail("cannot create the staging table"))?;
    let result = async {
        let rows = writer.load(conn, &staging, None).await?;
        match ddl {
            Some(_) => {
                conn.query_drop(format!("RENAME TABLE {q_staging} TO {q_table}"))
                    .await
            }
            None => {
                conn.query_drop(format!(
                    "RENAME TABLE {q_table} TO {q_old}, {q_staging} TO {q_table}"
                ))
                .await
            }
        }
        .map_err(fail("cannot swap the staging table in"))?;
        Ok(rows)
    }
    .await;
    match result {
        Ok(rows) => {
            if ddl.is_some() {
                ddl_event(ctx, table);
            } else {
                conn.query_drop(format!("DROP TABLE IF EXISTS {q_old}"))
                    .await
                    .map_err(fail("cannot drop the replaced table"))?;
            }
            Ok(rows)
        }
        Err(e) => {
            let _ = conn
                .query_drop(format!("DROP TABLE IF EXISTS {q_staging}"))
                .await;
            Err(e)
        }
    }
}

async fn check_unique_key(conn: &mut Conn, table: &str, keys: &[String]) -> Result<()> {
    let rows: Vec<(String, String)> = conn
        .exec(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
             ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (table,),
        )
        .await
        .map_err(fail("cannot read the destination's indexes"))?;
    let mut indexes: Vec<(String, Vec<String>)> = Vec::new();
    for (index, column) in rows {
        match indexes.iter_mut().find(|(i, _)| *i == index) {
            Some((_, cols)) => cols.push(column.to_lowercase()),
            None => indexes.push((index, vec![column.to_lowercase()])),
        }
    }
    let mut wanted: Vec<String> = keys.iter().map(|k| k.to_lowercase()).collect();
    wanted.sort();
    let matches = indexes.iter().any(|(_, cols)| {
        let mut cols = cols.clone();
        cols.sort();
        cols == wanted
    });
    if !matches {
        return Err(DriverError::config(
            "primary_key",
            format!(
                "table {table:?} has no PRIMARY KEY or UNIQUE index on exactly ({}); upsert would insert duplicates. Its unique keys: {}",
                keys.join(", "),
                if indexes.is_empty() {
                    "none".to_owned()
                } else {
                    indexes
                        .iter()
                        .map(|(i, c)| format!("{i} ({})", c.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ),
        ));
    }
    Ok(())
}

async fn check_no_foreign_keys(conn: &mut Conn, table: &str) -> Result<()> {
    let count: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE (CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?) \
             OR (UNIQUE_CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = ?)",
            (table, table),
        )
        .await
        .map_err(fail("cannot read the destination's foreign keys"))?;
    if count.unwrap_or(0) > 0 {
        return Err(DriverError::config(
            "mode",
            format!(
                "table {table:?} has a foreign key or is referenced by one; replace swaps tables and would lose it. Use mode append with truncate_before: true"
            ),
        ));
    }
    Ok(())
}

/// How rows reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    LoadData,
    Insert(&'static str),
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Self::LoadData => "load_data_local_infile",
            Self::Insert(_) => "insert",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::LoadData => "the server accepts LOAD DATA LOCAL INFILE",
            Self::Insert(reason) => reason,
        }
    }
}

const REFUSED_LOCAL_INFILE: &[u16] = &[1148, 3948, 4166];

async fn choose_method(conn: &mut Conn) -> Result<Method> {
    let enabled: Option<i64> = conn
        .query_first("SELECT @@GLOBAL.local_infile")
        .await
        .map_err(fail("cannot read local_infile"))?;
    Ok(if enabled == Some(1) {
        Method::LoadData
    } else {
        Method::Insert("the server has local_infile disabled")
    })
}

/// Streams the step table to the server.
struct Loader<'a> {
    ctx: &'a StepContext,
    columns: &'a [WriteColumn],
    batch_size: usize,
    select: String,
    method: Method,
}

impl Loader<'_> {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote_mysql_identifier(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Loads every row into `target`; with `on_duplicate` (INSERT path only) as an upsert.
    async fn load(
        &mut self,
        conn: &mut Conn,
        target: &str,
        on_duplicate: Option<&str>,
    ) -> Result<u64> {
        if self.method == Method::LoadData {
            match self.load_data(conn, target).await {
                Err(Refused) => {
                    self.method = Method::Insert("the server refused LOAD DATA LOCAL INFILE");
                    self.ctx.event(
                        "write.method",
                        object([
                            ("method", Value::String(self.method.name().into())),
                            ("reason", Value::String(self.method.reason().into())),
                        ]),
                    );
                }
                Ok(result) => return result,
            }
        }
        self.insert(conn, target, on_duplicate).await
    }

    async fn upsert(&mut self, conn: &mut Conn, table: &str, keys: &[String]) -> Result<u64> {
        let updates: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !keys.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
            .map(|c| {
                let q = quote_mysql_identifier(&c.name);
                format!("{q} = VALUES({q})")
            })
            .collect();
        let on_duplicate = if updates.is_empty() {
            let k = quote_mysql_identifier(&keys[0]);
            format!("{k} = {k}")
        } else {
            updates.join(", ")
        };
        if self.method == Method::LoadData {
            let temp = format!("{table}__osiris_upsert");
            let q_temp = quote_mysql_identifier(&temp);
            conn.query_drop(format!(
                "CREATE TEMPORARY TABLE {q_temp} LIKE {}",
                quote_mysql_identifier(table)
            ))
            .await
            .map_err(fail("cannot create the temporary upsert table"))?;
            // When the server refuses LOCAL INFILE, `load` fills the temporary table with
            // INSERTs instead; the upsert from it is the same.
            let loaded = self.load(conn, &temp, None).await;
            let result = match loaded {
                Ok(rows) => {
                    let cols = self.column_list();
                    conn.query_drop(format!(
                        "INSERT INTO {} ({cols}) SELECT {cols} FROM {q_temp} ON DUPLICATE KEY UPDATE {on_duplicate}",
                        quote_mysql_identifier(table)
                    ))
                    .await
                    .map_err(fail("the upsert failed"))?;
                    check_warnings(conn, table).await?;
                    Ok(rows)
                }
                Err(e) => Err(e),
            };
            let _ = conn
                .query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {q_temp}"))
                .await;
            return result;
        }
        self.insert(conn, table, Some(&on_duplicate)).await
    }

    /// `LOAD DATA LOCAL INFILE` from a stream; `Err(Refused)` when the server refuses it
    /// before any row was read.
    async fn load_data(&self, conn: &mut Conn, target: &str) -> Result<Result<u64>, Refused> {
        let duck = match self.ctx.connection() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let rows = Arc::new(AtomicU64::new(0));
        let producer = tokio::spawn(produce(
            duck,
            self.select.clone(),
            go_rx,
            tx,
            Arc::clone(&rows),
        ));
        conn.set_infile_handler(async move {
            let _ = go_tx.send(());
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Ok::<_, mysql_async::Error>(stream.boxed())
        });
        let mut targets = Vec::new();
        let mut sets = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            let q = quote_mysql_identifier(&c.name);
            if c.wrap.is_some() {
                targets.push(format!("@v{i}"));
                sets.push(format!("{q} = {}", c.wrapped(&format!("@v{i}"))));
            } else {
                targets.push(q);
            }
        }
        let sql = format!(
            "LOAD DATA LOCAL INFILE 'osiris-step-table' INTO TABLE {} CHARACTER SET utf8mb4 \
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({}){}",
            quote_mysql_identifier(target),
            targets.join(", "),
            if sets.is_empty() {
                String::new()
            } else {
                format!(" SET {}", sets.join(", "))
            }
        );
        let result = conn.query_drop(sql).await;
        producer.abort();
        let _ = producer.await;
        match result {
            Err(mysql_async::Error::Server(e)) if REFUSED_LOCAL_INFILE.contains(&e.code) => {
                Err(Refused)
            }
            Err(e) => Ok(Err(classify(e, "LOAD DATA LOCAL INFILE failed"))),
            Ok(()) => Ok(check_warnings(conn, target)
                .await
                .map(|()| rows.load(Ordering::Relaxed))),
        }
    }

    /// Multi-row INSERTs of `batch_size` rows, split further to stay under max_allowed_packet.
    async fn insert(
        &self,
        conn: &mut Conn,
        target: &str,
        on_duplicate: Option<&str>,
    ) -> Result<u64> {
        let max_packet: Option<u64> = conn
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(fail("cannot read max_allowed_packet"))?;
        let limit = (max_packet.unwrap_or(4 << 20) as usize)
            .saturating_sub(64 << 10)
            .max(64 << 10);
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote_mysql_identifier(target),
            self.column_list()
        );
        let tail = on_duplicate
            .map(|u| format!(" ON DUPLICATE KEY UPDATE {u}"))
            .unwrap_or_default();
        let mut reader = TableReader::query(self.ctx.connection()?, self.select.clone()).await?;
        let mut sql = String::with_capacity(1 << 20);
        let mut in_statement = 0usize;
        let mut rows = 0u64;
        let mut row = String::new();
        while let Some(batch) = reader.next_batch().await {
            let batch = text_columns(&batch?)?;
            for r in 0..batch.num_rows() {
                row.clear();
                row.push('(');
                for (i, column) in self.columns.iter().enumerate() {
                    if i > 0 {
                        row.push_str(", ");
                    }
                    let array = batch.column(i).as_string::<i32>();
                    if array.is_null(r) {
                        row.push_str("NULL");
                    } else {
                        row.push_str(&column.wrapped(&quote_mysql_literal(array.value(r))));
                    }
                }
                row.push(')');
                if in_statement > 0
                    && (in_statement >= self.batch_size
                        || sql.len() + row.len() + tail.len() + 2 > limit)
                {
                    sql.push_str(&tail);
                    execute_insert(conn, &sql, target).await?;
                    sql.clear();
                    in_statement = 0;
                }
                if in_statement == 0 {
                    sql.push_str(&head);
                } else {
                    sql.push_str(", ");
                }
                sql.push_str(&row);
                in_statement += 1;
                rows += 1;
            }
        }
        if in_statement > 0 {
            sql.push_str(&tail);
            execute_insert(conn, &sql, target).await?;
        }
        Ok(rows)
    }
}

struct Refused;

async fn execute_insert(conn: &mut Conn, sql: &str, target: &str) -> Result<()> {
    conn.query_drop(sql).await.map_err(fail("INSERT failed"))?;
    check_warnings(conn, target).await
}

/// Fails when the last statement produced warnings, showing the first ones.
async fn check_warnings(conn: &mut Conn, target: &str) -> Result<()> {
    if conn.get_warnings() == 0 {
        return Ok(());
    }
    let warnings: Vec<(String, u32, String)> = conn
        .query("SHOW WARNINGS LIMIT 5")
        .await
        .map_err(fail("cannot read the server's warnings"))?;
    // Deprecation notes (e.g. VALUES() in ON DUPLICATE KEY UPDATE on MySQL 8) are not data
    // problems.
    let serious: Vec<String> = warnings
        .iter()
        .filter(|(level, code, _)| level != "Note" && *code != 1287)
        .map(|(level, code, message)| format!("{level} {code}: {message}"))
        .collect();
    if serious.is_empty() {
        return Ok(());
    }
    Err(DriverError::data(format!(
        "the server reported {} warning(s) writing {target:?}, so nothing was kept; first: {}",
        conn.get_warnings().max(serious.len() as u16),
        serious.join("; ")
    )))
}

/// Reads the step table as text and sends it as tab-separated chunks once `go` fires.
async fn produce(
    duck: duckdb::Connection,
    select: String,
    go: oneshot::Receiver<()>,
    tx: mpsc::Sender<io::Result<Bytes>>,
    rows: Arc<AtomicU64>,
) {
    if go.await.is_err() {
        return;
    }
    let mut reader = match TableReader::query(duck, select).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
            return;
        }
    };
    let mut buffer = Vec::with_capacity(1 << 20);
    while let Some(batch) = reader.next_batch().await {
        let encoded = batch.and_then(|b| {
            let b = text_columns(&b)?;
            encode_tsv(&b, &mut buffer);
            Ok(b.num_rows())
        });
        match encoded {
            Ok(n) => {
                rows.fetch_add(n as u64, Ordering::Relaxed);
                if buffer.len() >= 256 << 10 {
                    let chunk =
                        Bytes::from(std::mem::replace(&mut buffer, Vec::with_capacity(1 << 20)));
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                return;
            }
        }
    }
    if !buffer.is_empty() {
        let _ = tx.send(Ok(Bytes::from(buffer))).await;
    }
}

/// The batch with every column as Utf8 (DuckDB may hand out string views).
fn text_columns(batch: &RecordBatch) -> Result<RecordBatch> {
    if batch
        .columns()
        .iter()
        .all(|c| c.data_type() == &DataType::Utf8)
    {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow::compute::cast(c, &DataType::Utf8))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DriverError::internal(format!("cannot read a batch as text: {e}")))?;
    let fields: Vec<arrow::datatypes::Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| arrow::datatypes::Field::new(f.name(), DataType::Utf8, true))
        .collect();
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .map_err(|e| DriverError::internal(format!("cannot read a batch as text: {e}")))
}

/// Appends the rows of an all-Utf8 batch as LOAD DATA's default format: tab-separated,
/// newline-terminated, backslash escapes, `\N` for NULL.
fn encode_tsv(batch: &RecordBatch, out: &mut Vec<u8>) {
    let columns: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| c.as_string::<i32>())
        .collect();
    for r in 0..batch.num_rows() {
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            if column.is_null(r) {
                out.extend_from_slice(b"\\N");
                continue;
            }
            let value = column.value(r).as_bytes();
            if !value
                .iter()
                .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r' | 0))
            {
                out.extend_from_slice(value);
                continue;
            }
            for &b in value {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0 => out.extend_from_slice(b"\\0"),
                    b => out.push(b),
                }
            }
        }
        out.push(b'\n');
    }
}

/// The `SELECT` streaming the step table with every column formatted as MySQL text.
fn select_sql(table: &TableName, columns: &[WriteColumn]) -> String {
    let exprs: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{} AS {}",
                text_expression(&quote_identifier(&c.name), &c.duck_type),
                quote_identifier(&c.name)
            )
        })
        .collect();
    format!("SELECT {} FROM {table}", exprs.join(", "))
}

/// A DuckDB expression giving column `col` (of DuckDB type `duck_type`) as the text MySQL
/// parses back into the same value.
fn text_expression(col: &str, duck_type: &str) -> String {
    let us = format!("CAST(round(epoch({col}) * 1000000) AS BIGINT)");
    match duck_type {
        "BOOLEAN" => format!("CAST(CAST({col} AS TINYINT) AS VARCHAR)"),
        "TIMESTAMP" | "TIMESTAMP_NS" | "TIMESTAMP_MS" | "TIMESTAMP_S" => {
            format!("strftime(CAST({col} AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%f')")
        }
        "TIMESTAMP WITH TIME ZONE" => {
            format!("strftime(timezone('UTC', {col}), '%Y-%m-%d %H:%M:%S.%f')")
        }
        "TIME WITH TIME ZONE" => format!("CAST(CAST({col} AS TIME) AS VARCHAR)"),
        "INTERVAL" => format!(
            "CASE WHEN {col} IS NULL THEN NULL ELSE printf('%s%d:%02d:%02d.%06d', \
             CASE WHEN {us} < 0 THEN '-' ELSE '' END, abs({us}) // 3600000000, \
             abs({us}) // 60000000 % 60, abs({us}) // 1000000 % 60, abs({us}) % 1000000) END"
        ),
        "BLOB" => format!("hex({col})"),
        t if t.ends_with(']')
            || t.starts_with("STRUCT")
            || t.starts_with("MAP")
            || t.starts_with("UNION") =>
        {
            format!("CAST(to_json({col}) AS VARCHAR)")
        }
        _ => format!("CAST({col} AS VARCHAR)"),
    }
}

/// The MySQL column type `create_table` uses for a DuckDB type.
fn mysql_type_for(duck_type: &str, is_key: bool) -> Option<String> {
    let t = match duck_type {
        "BOOLEAN" => "TINYINT(1)",
        "TINYINT" => "TINYINT",
        "SMALLINT" => "SMALLINT",
        "INTEGER" => "INT",
        "BIGINT" => "BIGINT",
        "UTINYINT" => "TINYINT UNSIGNED",
        "USMALLINT" => "SMALLINT UNSIGNED",
        "UINTEGER" => "INT UNSIGNED",
        "UBIGINT" => "BIGINT UNSIGNED",
        "HUGEINT" => "DECIMAL(39,0)",
        "UHUGEINT" => "DECIMAL(39,0) UNSIGNED",
        "FLOAT" => "FLOAT",
        "DOUBLE" => "DOUBLE",
        "DATE" => "DATE",
        "TIME" | "TIME WITH TIME ZONE" | "INTERVAL" => "TIME(6)",
        "TIMESTAMP"
        | "TIMESTAMP_NS"
        | "TIMESTAMP_MS"
        | "TIMESTAMP_S"
        | "TIMESTAMP WITH TIME ZONE" => "DATETIME(6)",
        "VARCHAR" if is_key => "VARCHAR(255)",
        "VARCHAR" => "LONGTEXT",
        "BLOB" if is_key => "VARBINARY(255)",
        "BLOB" => "LONGBLOB",
        "UUID" => "CHAR(36)",
        "JSON" => "JSON",
        t if t.starts_with("DECIMAL(") => return Some(t.to_owned()),
        t if t.starts_with("ENUM(") => {
            return Some(if is_key { "VARCHAR(255)" } else { "LONGTEXT" }.to_owned());
        }
        t if t.ends_with(']') || t.starts_with("STRUCT") || t.starts_with("MAP") => "JSON",
        _ => return None,
    };
    Some(t.to_owned())
}

/// The column list of `CREATE TABLE <name> (...)` for the step table's columns.
fn create_table_sql(columns: &[WriteColumn], keys: &[String]) -> Result<String> {
    let mut defs = Vec::with_capacity(columns.len() + 1);
    for c in columns {
        let is_key = keys.iter().any(|k| k.eq_ignore_ascii_case(&c.name));
        let ty = mysql_type_for(&c.duck_type, is_key).ok_or_else(|| {
            DriverError::data(format!(
                "column {:?} has DuckDB type {} which create_table cannot map to MySQL; cast it in a duckdb.processor step",
                c.name, c.duck_type
            ))
        })?;
        defs.push(format!(
            "{} {ty}{}",
            quote_mysql_identifier(&c.name),
            if is_key { " NOT NULL" } else { "" }
        ));
    }
    if !keys.is_empty() {
        defs.push(format!(
            "PRIMARY KEY ({})",
            keys.iter()
                .map(|k| quote_mysql_identifier(k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(format!(
        "({}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        defs.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use driver_api::testing::TestRun;
    use driver_api::{InputTable, StepInputs};
    use mysql_async::{OptsBuilder, Row};

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
            let config: Config = serde_json::from_value(serde_json::json!({
                "host": "127.0.0.1", "database": db, "user": "root", "table": table,
                "mode": mode, "primary_key": ["id"], "create_table": true, "batch_size": 1
            }))
            .unwrap();
            async move { MysqlWriter.run_with(&ctx, config, inputs, method).await }
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

    #[test]
    fn tsv_escapes_separators_and_marks_null() {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("a", DataType::Utf8, true),
            arrow::datatypes::Field::new("b", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow::array::StringArray::from(vec![Some("x\ty\\z"), None])),
                Arc::new(arrow::array::StringArray::from(vec![
                    Some("line\nbreak"),
                    Some(""),
                ])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        encode_tsv(&batch, &mut out);
        assert_eq!(out, b"x\\ty\\\\z\tline\\nbreak\n\\N\t\n");
    }

    #[test]
    fn create_table_maps_duckdb_types() {
        let cols: Vec<WriteColumn> = [
            ("id", "VARCHAR"),
            ("n", "UBIGINT"),
            ("d", "DECIMAL(12,2)"),
            ("l", "INTEGER[]"),
        ]
        .iter()
        .map(|(n, t)| WriteColumn {
            name: (*n).into(),
            duck_type: (*t).into(),
            wrap: None,
        })
        .collect();
        assert_eq!(
            create_table_sql(&cols, &["id".into()]).unwrap(),
            "(`id` VARCHAR(255) NOT NULL, `n` BIGINT UNSIGNED, `d` DECIMAL(12,2), `l` JSON, PRIMARY KEY (`id`)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        );
        let bad = [WriteColumn {
            name: "u".into(),
            duck_type: "BIT".into(),
            wrap: None,
        }];
        assert!(
            create_table_sql(&bad, &[])
                .unwrap_err()
                .to_string()
                .contains("BIT")
        );
    }
}
