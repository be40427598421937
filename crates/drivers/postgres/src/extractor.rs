//! `postgres.extractor`: a query's result or a table's rows into the step table.
//!
//! The statement is described first (prepared, never run) so that column types come from
//! the server's metadata, never from values; numeric columns get their precision and scale
//! from the type modifiers of the statement's row description (nothing is created on the
//! server, so a read-only replica describes the same way).
//! Types without a binary decoder here are cast to `text` by wrapping the statement. Then
//! `COPY (statement) TO STDOUT (FORMAT binary)` runs inside a read-only, repeatable-read
//! transaction; the binary rows are decoded straight into Arrow builders ([`crate::types`])
//! and every `batch_size` rows a batch goes to the shared [`TableWriter`] (bounded channel),
//! which commits the table only when the read has finished. With `partition_on` +
//! `partitions` a table read is cut into ranges of an integer column
//! ([`driver_api::ranges`], shared with `mysql.extractor`), each read on its own connection in
//! its own transaction, all feeding the one writer.
//!
//! With `incremental`, the shared [`Cursor`] gives the lower bound `cursor >= value`, added to
//! the table read's condition or wrapped around a `query`
//! (`SELECT * FROM (<query>) AS osiris_incremental WHERE ...`); every batch passes through the
//! cursor before the writer, which drops the rows the previous run delivered and records the
//! new cursor from the data (ADR 0033).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use driver_api::incremental::{self, Bound, BoundValue, Cursor, IncrementalConfig};
use driver_api::{
    DiscoveredColumn, DiscoveredTable, Driver, DriverError, Result, StepContext, StepInputs,
    StepOutput, TableWriter, quote_literal,
};
use execution_context::object;
use futures::StreamExt;
use pg_support::tokio_postgres::Client;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::conn::{PostgresConnection, classify, qualified, quote};
use crate::types::{Column, Kind};

/// The `postgres.extractor` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresExtractor;

/// Configuration of a `postgres.extractor` step (without the connection's fields: see
/// [`PostgresConnection`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// One SQL statement returning rows. Exactly one of `query` and `table`.
    #[serde(default)]
    pub query: Option<String>,
    /// A table or view to read.
    #[serde(default)]
    pub table: Option<String>,
    /// The schema of `table`. Default `public`.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Columns of `table` to read, in this order. Default: all.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// SQL condition for `table`, inserted as `WHERE (<where>)`.
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    /// At most this many rows of `table`.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Rows per batch. Default 10000.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Read only the rows past the cursor saved by the previous successful run.
    #[serde(default)]
    pub incremental: Option<IncrementalConfig>,
    /// Integer column of `table` to split the read on (with `partitions`).
    #[serde(default)]
    pub partition_on: Option<String>,
    /// Number of ranges and parallel connections.
    #[serde(default)]
    pub partitions: Option<u32>,
}

fn default_schema() -> String {
    "public".into()
}
fn default_batch_size() -> usize {
    10_000
}

#[async_trait]
impl Driver for PostgresExtractor {
    const NAME: &'static str = "postgres.extractor";
    type Connection = PostgresConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: PostgresConnection,
        config: Config,
        _inputs: StepInputs,
    ) -> Result<StepOutput> {
        let started = Instant::now();
        let mut endpoint = connection;
        endpoint.resolve_paths(ctx.base_dir());
        let source = match (&config.query, &config.table) {
            (Some(_), None) => "query".to_owned(),
            (None, Some(t)) => format!("table {}.{t}", config.schema),
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
            object([("source", Value::String(source))]),
        );
        let mut cursor = incremental::start(
            config.incremental.as_ref(),
            ctx.state(),
            &[("limit", config.limit.is_some())],
        )?;
        let bound = cursor.as_ref().map(Cursor::bound).transpose()?.flatten();
        let client = endpoint.connect().await?;
        let statements =
            statements(&client, &config, bound.as_ref().map(predicate).as_deref()).await?;
        let partitions = statements.len();
        let rows = read(
            ctx,
            &endpoint,
            client,
            statements,
            config.batch_size.max(1),
            cursor.as_mut(),
        )
        .await?;
        let duration_ms = started.elapsed().as_millis() as u64;
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

    async fn doctor(&self, connection: &PostgresConnection) -> Result<()> {
        connection.check().await
    }

    async fn discover(&self, connection: &PostgresConnection) -> Result<Vec<DiscoveredTable>> {
        discover(connection).await
    }
}

/// An incremental read's bound in PostgreSQL: `"cursor" >= literal` (a text literal is
/// converted to the column's type by the server).
fn predicate(bound: &Bound) -> String {
    let value = match &bound.value {
        BoundValue::Number(n) => n.clone(),
        BoundValue::Text(t) => quote_literal(t),
    };
    format!("{} >= {value}", quote(&bound.column))
}

/// The statements to read: `query`, or a SELECT built from `table`, `columns`, `where`,
/// `limit` – one per range with `partition_on`; `incremental` is the cursor's bound.
async fn statements(
    client: &Client,
    config: &Config,
    incremental: Option<&str>,
) -> Result<Vec<String>> {
    if let Some(query) = &config.query {
        if config.partition_on.is_some() {
            return Err(DriverError::config(
                "partition_on",
                "splits a `table` read; it cannot split a `query`",
            ));
        }
        let sql = query.trim().trim_end_matches(';').trim_end().to_owned();
        if sql.is_empty() {
            return Err(DriverError::config("query", "is empty"));
        }
        return Ok(vec![match incremental {
            Some(bound) => format!("SELECT * FROM ({sql}) AS osiris_incremental WHERE {bound}"),
            None => sql,
        }]);
    }
    let Some(table) = &config.table else {
        return Err(DriverError::config("table", "set `query` or `table`"));
    };
    let existing = pg_support::columns(client, &config.schema, table).await?;
    if existing.is_empty() {
        return Err(DriverError::config(
            "table",
            format!(
                "table {:?} does not exist in schema {:?}",
                table, config.schema
            ),
        ));
    }
    let select = match &config.columns {
        None => "*".to_owned(),
        Some(columns) => {
            let missing: Vec<String> = columns
                .iter()
                .filter(|c| !existing.iter().any(|e| &e.name == *c))
                .map(|c| format!("{c:?}"))
                .collect();
            if !missing.is_empty() {
                return Err(DriverError::config(
                    "columns",
                    format!(
                        "table {table:?} has no column {}; its columns are: {}",
                        missing.join(", "),
                        existing
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            columns
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let from = format!("SELECT {select} FROM {}", qualified(&config.schema, table));
    let condition = match (&config.where_, incremental) {
        (Some(condition), Some(bound)) => Some(format!("({condition}) AND {bound}")),
        (Some(condition), None) => Some(format!("({condition})")),
        (None, Some(bound)) => Some(bound.to_owned()),
        (None, None) => None,
    };
    let with = |extra: Option<String>| {
        let parts: Vec<String> = condition.iter().cloned().chain(extra).collect();
        if parts.is_empty() {
            from.clone()
        } else {
            format!("{from} WHERE {}", parts.join(" AND "))
        }
    };
    match (&config.partition_on, config.partitions) {
        (Some(column), Some(n)) if n > 1 => {
            if config.limit.is_some() {
                return Err(DriverError::config(
                    "limit",
                    "cannot be combined with `partition_on`",
                ));
            }
            let Some(found) = existing.iter().find(|c| &c.name == column) else {
                return Err(DriverError::config(
                    "partition_on",
                    format!("table {table:?} has no column {column:?}"),
                ));
            };
            if !matches!(found.type_name.as_str(), "int2" | "int4" | "int8") {
                return Err(DriverError::config(
                    "partition_on",
                    format!(
                        "column {column:?} is {}, not an integer type; partition on an integer column",
                        found.type_name
                    ),
                ));
            }
            let col = quote(column);
            let bounds = client
                .query_one(
                    &format!(
                        "SELECT MIN({col})::text, MAX({col})::text FROM {}{}",
                        qualified(&config.schema, table),
                        condition
                            .as_ref()
                            .map(|c| format!(" WHERE {c}"))
                            .unwrap_or_default()
                    ),
                    &[],
                )
                .await
                .map_err(|e| classify(&e, "cannot read the range of partition_on"))?;
            let parse = |i: usize| {
                bounds
                    .get::<_, Option<String>>(i)
                    .and_then(|s| s.parse::<i128>().ok())
            };
            let ranges = driver_api::ranges::split(parse(0), parse(1), n);
            if ranges.is_empty() {
                return Ok(vec![with(None)]);
            }
            Ok(ranges
                .iter()
                .map(|r| with(Some(r.condition(&col))))
                .collect())
        }
        _ => {
            let mut sql = with(None);
            if let Some(limit) = config.limit {
                sql.push_str(&format!(" LIMIT {limit}"));
            }
            Ok(vec![sql])
        }
    }
}

/// The columns of `sql`: names and kinds, and the statement to COPY (with `::text` casts for
/// types read as text).
async fn describe(client: &Client, sql: &str) -> Result<(Vec<String>, Vec<Kind>, String)> {
    let prepared = client
        .prepare(sql)
        .await
        .map_err(|e| classify(&e, "the query failed"))?;
    let columns = prepared.columns();
    if columns.is_empty() {
        return Err(DriverError::config(
            "query",
            "the statement returns no rows (use a SELECT)",
        ));
    }
    let names: Vec<String> = columns.iter().map(|c| c.name().to_owned()).collect();
    // The row description carries each column's type modifier (`numeric(12,2)`,
    // `varchar(7)`): the same value a view of the query would store, with no round trip and
    // nothing created on the server, so a read-only replica describes exactly too.
    let kinds: Vec<Option<Kind>> = columns
        .iter()
        .map(|c| Kind::of(c.type_(), c.type_modifier()))
        .collect();
    if kinds.iter().all(Option::is_some) {
        let kinds = kinds.into_iter().map(|k| k.expect("all some")).collect();
        return Ok((names, kinds, sql.to_owned()));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(DriverError::config(
                "query",
                format!("the result has two columns named {name:?}; give them distinct names"),
            ));
        }
    }
    let select: Vec<String> = names
        .iter()
        .zip(&kinds)
        .map(|(name, kind)| match kind {
            Some(_) => format!("q.{}", quote(name)),
            None => format!("q.{}::text AS {}", quote(name), quote(name)),
        })
        .collect();
    let wrapped = format!("SELECT {} FROM ({sql}) AS q", select.join(", "));
    let kinds = kinds.into_iter().map(|k| k.unwrap_or(Kind::Text)).collect();
    Ok((names, kinds, wrapped))
}

/// Reads `statements` by binary COPY into the step table, concurrently: the first on `client`,
/// each other one on its own connection, each in its own read-only, repeatable-read
/// transaction. With a `cursor`, batches pass through it (de-duplication, new cursor) before
/// the writer.
async fn read(
    ctx: &StepContext,
    endpoint: &PostgresConnection,
    client: Client,
    statements: Vec<String>,
    batch_size: usize,
    mut cursor: Option<&mut Cursor>,
) -> Result<u64> {
    let first = statements.first().cloned().unwrap_or_default();
    let (names, kinds, copy_sql) = describe(&client, &first).await?;
    let schema: SchemaRef = Arc::new(Schema::new(
        names
            .iter()
            .zip(&kinds)
            .map(|(name, kind)| kind.field(name))
            .collect::<Vec<_>>(),
    ));
    if let Some(cursor) = cursor.as_deref_mut() {
        cursor.check_schema(&schema)?;
    }
    let (tx, mut rx) = mpsc::channel::<Result<RecordBatch>>(statements.len() * 2 + 2);
    let mut tasks = JoinSet::new();
    {
        let (tx, schema, names) = (tx.clone(), Arc::clone(&schema), names.clone());
        tasks.spawn(async move {
            let part = Part {
                names: &names,
                kinds: &kinds,
                schema: &schema,
                batch_size,
            };
            if let Err(e) = part.copy(client, &copy_sql, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
    }
    for sql in statements.into_iter().skip(1) {
        let (tx, schema, endpoint) = (tx.clone(), Arc::clone(&schema), endpoint.clone());
        tasks.spawn(async move {
            let run = async {
                let client = endpoint.connect().await?;
                let (names, kinds, copy_sql) = describe(&client, &sql).await?;
                let part = Part {
                    names: &names,
                    kinds: &kinds,
                    schema: &schema,
                    batch_size,
                };
                part.copy(client, &copy_sql, &tx).await
            };
            if let Err(e) = run.await {
                let _ = tx.send(Err(e)).await;
            }
        });
    }
    drop(tx);
    let mut writer = TableWriter::for_step(ctx, Arc::clone(&schema))?;
    let outcome: Result<()> = async {
        loop {
            let batch = tokio::select! {
                batch = rx.recv() => batch,
                () = ctx.cancellation().cancelled() => return Err(DriverError::Cancelled),
            };
            match batch {
                None => return Ok(()),
                Some(batch) => send(&mut writer, cursor.as_deref_mut(), batch?).await?,
            }
        }
    }
    .await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    match outcome {
        Ok(()) => writer.finish().await,
        Err(error) => {
            writer.abort().await;
            Err(error)
        }
    }
}

/// One statement's share of a read.
struct Part<'a> {
    names: &'a [String],
    kinds: &'a [Kind],
    schema: &'a SchemaRef,
    batch_size: usize,
}

impl Part<'_> {
    /// Runs `COPY (copy_sql) TO STDOUT (FORMAT binary)` in a read-only, repeatable-read
    /// transaction on `client` and sends its rows in batches. Returns early, without error,
    /// when the receiver has gone (the read failed elsewhere).
    async fn copy(
        &self,
        mut client: Client,
        copy_sql: &str,
        tx: &mpsc::Sender<Result<RecordBatch>>,
    ) -> Result<()> {
        if self.kinds.len() != self.schema.fields().len() {
            return Err(DriverError::internal(
                "a partition's columns differ from the first one's",
            ));
        }
        let transaction = client
            .build_transaction()
            .isolation_level(pg_support::tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| classify(&e, "cannot start a read-only transaction"))?;
        let stream = transaction
            .copy_out(&format!("COPY ({copy_sql}) TO STDOUT (FORMAT binary)"))
            .await
            .map_err(|e| classify(&e, "the query failed"))?;
        let mut decoder = Decoder::new(self.kinds, self.batch_size);
        futures::pin_mut!(stream);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(&e, "reading the rows failed"))?;
            decoder.feed(&chunk, self.names)?;
            while decoder.full() {
                if tx.send(Ok(decoder.batch(self.schema)?)).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !decoder.ended {
            return Err(DriverError::Connection {
                message: "reading the rows failed: the COPY stream ended early".into(),
            });
        }
        if decoder.rows > 0 && tx.send(Ok(decoder.batch(self.schema)?)).await.is_err() {
            return Ok(());
        }
        transaction
            .commit()
            .await
            .map_err(|e| classify(&e, "cannot end the read-only transaction"))
    }
}

/// Sends a batch to the writer, through the cursor when the read is incremental.
async fn send(
    writer: &mut TableWriter,
    cursor: Option<&mut Cursor>,
    batch: RecordBatch,
) -> Result<()> {
    let batch = match cursor {
        Some(cursor) => cursor.filter(batch)?,
        None => batch,
    };
    if batch.num_rows() > 0 {
        writer.send(batch).await?;
    }
    Ok(())
}

/// Decodes the binary COPY stream into column builders.
struct Decoder {
    kinds: Vec<Kind>,
    columns: Vec<Column>,
    buffer: BytesMut,
    header: bool,
    ended: bool,
    rows: usize,
    batch_size: usize,
    row_number: u64,
}

impl Decoder {
    fn new(kinds: &[Kind], batch_size: usize) -> Self {
        Self {
            kinds: kinds.to_vec(),
            columns: kinds.iter().map(|k| Column::new(k, batch_size)).collect(),
            buffer: BytesMut::new(),
            header: false,
            ended: false,
            rows: 0,
            batch_size,
            row_number: 0,
        }
    }

    fn full(&self) -> bool {
        self.rows >= self.batch_size
    }

    /// Adds a chunk and decodes every complete row. PostgreSQL sends one row per message, so
    /// rows are usually decoded straight from `chunk`; only a partial row (and the header) go
    /// through the buffer.
    fn feed(&mut self, chunk: &[u8], names: &[String]) -> Result<()> {
        if self.header && self.buffer.is_empty() {
            let used = self.decode_rows(chunk, names)?;
            if !self.ended {
                self.buffer.extend_from_slice(&chunk[used..]);
            }
            return Ok(());
        }
        self.buffer.extend_from_slice(chunk);
        if !self.header {
            const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
            if self.buffer.len() < 19 {
                return Ok(());
            }
            if &self.buffer[..11] != SIGNATURE {
                return Err(DriverError::Remote {
                    message: "the server sent no binary COPY header".into(),
                });
            }
            let extension = u32::from_be_bytes(self.buffer[15..19].try_into().expect("4"));
            let skip = 19 + extension as usize;
            if self.buffer.len() < skip {
                return Ok(());
            }
            self.buffer.advance(skip);
            self.header = true;
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        let used = self.decode_rows(&buffer, names)?;
        buffer.advance(used);
        self.buffer = buffer;
        Ok(())
    }

    /// Decodes the complete rows at the start of `buf` (up to the trailer); returns how many
    /// bytes they took.
    fn decode_rows(&mut self, buf: &[u8], names: &[String]) -> Result<usize> {
        let mut used = 0;
        while let Some(end) = self.complete_row(&buf[used..])? {
            let row = &buf[used..used + end];
            used += end;
            if row[..2] == [0xff, 0xff] {
                self.ended = true;
                break;
            }
            self.row_number += 1;
            let mut at = 2;
            for (i, column) in self.columns.iter_mut().enumerate() {
                let len = i32::from_be_bytes(row[at..at + 4].try_into().expect("4"));
                at += 4;
                let value = if len < 0 {
                    None
                } else {
                    let v = &row[at..at + len as usize];
                    at += len as usize;
                    Some(v)
                };
                column.push(value).map_err(|message| {
                    DriverError::data(format!(
                        "row {}, column {:?}: {message}",
                        self.row_number,
                        names.get(i).map(String::as_str).unwrap_or("?")
                    ))
                })?;
            }
            self.rows += 1;
        }
        Ok(used)
    }

    /// The length of the first row of `buf` when it is complete.
    fn complete_row(&self, buf: &[u8]) -> Result<Option<usize>> {
        if self.ended || buf.len() < 2 {
            return Ok(None);
        }
        let fields = i16::from_be_bytes([buf[0], buf[1]]);
        if fields == -1 {
            return Ok(Some(2));
        }
        if fields as usize != self.columns.len() {
            return Err(DriverError::Remote {
                message: format!(
                    "the server sent a row of {fields} fields for {} columns",
                    self.columns.len()
                ),
            });
        }
        let mut at = 2;
        for _ in 0..fields {
            if buf.len() < at + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes(buf[at..at + 4].try_into().expect("4"));
            at += 4;
            if len > 0 {
                at += len as usize;
            }
        }
        Ok((buf.len() >= at).then_some(at))
    }

    /// The rows decoded so far as a batch.
    fn batch(&mut self, schema: &Arc<Schema>) -> Result<RecordBatch> {
        let arrays = self.columns.iter_mut().map(Column::finish).collect();
        // Finished Arrow builders keep no capacity: fresh ones sized for a batch do not
        // grow (and copy) their buffers a dozen times per batch.
        self.columns = self
            .kinds
            .iter()
            .map(|k| Column::new(k, self.batch_size))
            .collect();
        self.rows = 0;
        RecordBatch::try_new(Arc::clone(schema), arrays)
            .map_err(|e| DriverError::internal(format!("cannot build a batch: {e}")))
    }
}

/// Discover mode: the tables and views outside the system schemas, with their columns,
/// types, primary keys and estimated row counts.
pub async fn discover(endpoint: &PostgresConnection) -> Result<Vec<DiscoveredTable>> {
    let client = endpoint.connect().await?;
    let fail = |e| classify(&e, "cannot read the catalog");
    let tables = client
        .query(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text, \
                    CASE WHEN c.reltuples >= 0 THEN c.reltuples::int8 END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(fail)?;
    let columns = client
        .query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, \
                    format_type(a.atttypid, a.atttypmod), NOT a.attnotnull \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
             ORDER BY 1, 2, a.attnum",
            &[],
        )
        .await
        .map_err(fail)?;
    let keys = client
        .query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indisprimary \
             ORDER BY 1, 2, array_position(i.indkey::int2[], a.attnum)",
            &[],
        )
        .await
        .map_err(fail)?;
    Ok(tables
        .iter()
        .map(|t| {
            let schema: String = t.get(0);
            let name: String = t.get(1);
            let relkind: String = t.get(2);
            let estimate: Option<i64> = t.get(3);
            let same = |r: &pg_support::tokio_postgres::Row| {
                r.get::<_, String>(0) == schema && r.get::<_, String>(1) == name
            };
            let view = matches!(relkind.as_str(), "v" | "m");
            DiscoveredTable {
                primary_key: keys.iter().filter(|r| same(r)).map(|r| r.get(2)).collect(),
                columns: columns
                    .iter()
                    .filter(|r| same(r))
                    .map(|r| DiscoveredColumn {
                        name: r.get(2),
                        source_type: r.get(3),
                        nullable: Some(r.get(4)),
                    })
                    .collect(),
                estimated_rows: if view {
                    None
                } else {
                    estimate.and_then(|e| u64::try_from(e).ok())
                },
                kind: Some(if view { "view" } else { "table" }),
                schema: Some(schema.clone()),
                name,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int32Array};
    use arrow::datatypes::Int32Type;

    use super::*;

    fn row(values: &[Option<i32>]) -> Vec<u8> {
        let mut v = (values.len() as i16).to_be_bytes().to_vec();
        for value in values {
            match value {
                Some(x) => {
                    v.extend_from_slice(&4i32.to_be_bytes());
                    v.extend_from_slice(&x.to_be_bytes());
                }
                None => v.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        v
    }

    #[test]
    fn rows_decode_whole_and_split_across_chunks() {
        let kinds = [Kind::Int4, Kind::Int4];
        let names = ["a".to_owned(), "b".to_owned()];
        let schema = Arc::new(Schema::new(vec![
            Kind::Int4.field("a"),
            Kind::Int4.field("b"),
        ]));
        let mut header = b"PGCOPY\n\xff\r\n\0".to_vec();
        header.extend_from_slice(&0i32.to_be_bytes());
        header.extend_from_slice(&0i32.to_be_bytes());
        let mut decoder = Decoder::new(&kinds, 10);
        // The header and a row in one chunk, split inside the header.
        let first = [header, row(&[Some(1), None])].concat();
        decoder.feed(&first[..7], &names).unwrap();
        decoder.feed(&first[7..], &names).unwrap();
        // A whole row straight from the chunk, then a row split inside a field.
        decoder.feed(&row(&[Some(2), Some(20)]), &names).unwrap();
        let third = row(&[None, Some(30)]);
        decoder.feed(&third[..9], &names).unwrap();
        assert_eq!(decoder.rows, 2);
        decoder.feed(&third[9..], &names).unwrap();
        assert!(!decoder.ended);
        decoder.feed(&(-1i16).to_be_bytes(), &names).unwrap();
        assert!(decoder.ended);
        let batch = decoder.batch(&schema).unwrap();
        let column = |i: usize| batch.column(i).as_primitive::<Int32Type>().clone();
        assert_eq!(column(0), Int32Array::from(vec![Some(1), Some(2), None]));
        assert_eq!(column(1), Int32Array::from(vec![None, Some(20), Some(30)]));
    }

    #[test]
    fn a_row_with_the_wrong_field_count_is_an_error() {
        let mut decoder = Decoder::new(&[Kind::Int4], 10);
        decoder.header = true;
        let error = decoder.feed(&row(&[Some(1), Some(2)]), &["a".to_owned()]);
        assert!(error.is_err());
    }
}
