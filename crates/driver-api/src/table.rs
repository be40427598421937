//! The shared data path between drivers and the run database.
//!
//! [`TableWriter`]: Arrow batches go over a bounded channel to one blocking thread that appends
//! them with DuckDB's Appender inside one transaction. The step's table appears only at commit;
//! on any failure or abort the transaction rolls back, so no partial table is ever visible and
//! a table from an earlier attempt of the same step stays as it was. Batches are matched to the
//! table by column name, never by position; how a column whose type changes between batches is
//! handled is the writer's [`SchemaEvolution`]. A `Utf8` field carrying the Arrow extension name
//! [`JSON_EXTENSION_NAME`] becomes a DuckDB `JSON` column.
//!
//! [`TableReader`]: streams a table (or any query) out as Arrow batches from a blocking thread.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{DriverError, Result, StepContext, TableName, quote_identifier};

/// Batches in flight between a producer and the DuckDB writer thread. Bounds memory: a
/// producer faster than DuckDB waits instead of buffering the whole source.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 8;

/// Arrow extension name (canonical `arrow.json`) that marks a `Utf8` field holding JSON text: the
/// writer stores it as a DuckDB `JSON` column.
pub const JSON_EXTENSION_NAME: &str = "arrow.json";

/// A nullable `Utf8` field marked as JSON text (stored as a DuckDB `JSON` column).
pub fn json_field(name: impl Into<String>) -> Field {
    let mut metadata = std::collections::HashMap::new();
    metadata.insert(
        "ARROW:extension:name".to_owned(),
        JSON_EXTENSION_NAME.to_owned(),
    );
    Field::new(name, DataType::Utf8, true).with_metadata(metadata)
}

fn is_json(field: &Field) -> bool {
    field.extension_type_name() == Some(JSON_EXTENSION_NAME) && field.data_type() == &DataType::Utf8
}

/// What a [`TableWriter`] does when a column's type in a batch differs from the table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaEvolution {
    /// Cast the batch's column to the table's type; a value that does not fit fails the step.
    /// For sources with a declared schema (databases, typed files).
    #[default]
    Cast,
    /// Widen the table's column to a type that holds both: integers to BIGINT, integers and
    /// floats to DOUBLE, any other mix to VARCHAR (existing values keep their text, e.g. `12`,
    /// `true`, JSON); a column that so far held only NULLs (Arrow `Null`) takes the first real
    /// type. For sources without a schema, such as JSON pages from an HTTP API.
    Widen,
}

/// A column of the table being written.
#[derive(Debug, Clone)]
struct Column {
    field: Field,
    /// Created from an Arrow `Null` column and no typed value seen yet (Widen mode retypes it).
    untyped: bool,
}

enum Message {
    Batch(RecordBatch),
    Commit,
}

/// Streams Arrow batches into a new step table, atomically. See the module docs.
pub struct TableWriter {
    tx: mpsc::Sender<Message>,
    handle: JoinHandle<Result<u64>>,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter").finish_non_exhaustive()
    }
}

impl TableWriter {
    /// Starts a writer for the step's output table with the given initial schema.
    pub fn for_step(ctx: &StepContext, schema: SchemaRef) -> Result<Self> {
        Self::for_step_with(ctx, schema, SchemaEvolution::Cast)
    }

    /// Like [`for_step`](Self::for_step), choosing how column types may change between batches.
    pub fn for_step_with(
        ctx: &StepContext,
        schema: SchemaRef,
        evolution: SchemaEvolution,
    ) -> Result<Self> {
        let conn = ctx.connection()?;
        Ok(Self::start_with(
            conn,
            ctx.output_table().clone(),
            schema,
            DEFAULT_CHANNEL_CAPACITY,
            evolution,
        ))
    }

    /// Starts a writer that (re)creates `table` with `schema` on `conn`.
    ///
    /// Columns that first appear in a later batch are added to the table; columns missing
    /// from a batch are filled with NULL; a column whose type differs is cast to the table's.
    pub fn start(
        conn: duckdb::Connection,
        table: TableName,
        schema: SchemaRef,
        capacity: usize,
    ) -> Self {
        Self::start_with(conn, table, schema, capacity, SchemaEvolution::Cast)
    }

    /// Like [`start`](Self::start), choosing how column types may change between batches.
    pub fn start_with(
        conn: duckdb::Connection,
        table: TableName,
        schema: SchemaRef,
        capacity: usize,
        evolution: SchemaEvolution,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let handle =
            tokio::task::spawn_blocking(move || write_table(&conn, &table, schema, evolution, rx));
        Self { tx, handle }
    }

    /// Sends one batch. When the writer has already failed, returns its error.
    pub async fn send(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 && batch.num_columns() == 0 {
            return Ok(());
        }
        if self.tx.send(Message::Batch(batch)).await.is_err() {
            // The writer thread ended early: its result says why.
            return Err(self.writer_error().await);
        }
        Ok(())
    }

    /// Commits the table and returns the number of rows written.
    pub async fn finish(self) -> Result<u64> {
        if self.tx.send(Message::Commit).await.is_err() {
            // The thread already stopped; the join below reports why.
        }
        drop(self.tx);
        join(self.handle).await
    }

    /// Abandons the table: the transaction rolls back and nothing of it stays visible.
    pub async fn abort(self) {
        drop(self.tx);
        let _ = join(self.handle).await;
    }

    async fn writer_error(&mut self) -> DriverError {
        let handle = std::mem::replace(&mut self.handle, tokio::spawn(async { Ok(0) }));
        match join(handle).await {
            Err(error) => error,
            Ok(_) => DriverError::internal("table writer stopped before its input ended"),
        }
    }
}

async fn join(handle: JoinHandle<Result<u64>>) -> Result<u64> {
    handle
        .await
        .map_err(|e| DriverError::internal(format!("table writer thread failed: {e}")))?
}

fn write_table(
    conn: &duckdb::Connection,
    table: &TableName,
    schema: SchemaRef,
    evolution: SchemaEvolution,
    rx: mpsc::Receiver<Message>,
) -> Result<u64> {
    in_transaction(conn, &format!("cannot write table {table}"), |conn| {
        append_all(conn, table, schema, evolution, rx)
    })
}

fn append_all(
    conn: &duckdb::Connection,
    table: &TableName,
    schema: SchemaRef,
    evolution: SchemaEvolution,
    mut rx: mpsc::Receiver<Message>,
) -> Result<u64> {
    let duck = |context: &str| {
        let context = format!("{context} {table}");
        move |source| DriverError::duckdb(context, source)
    };
    let mut columns: Vec<Column> = schema.fields().iter().map(|f| column_for(f)).collect();
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({})",
        column_definitions(&columns)?
    ))
    .map_err(duck("cannot create table"))?;

    let mut rows = 0u64;
    let mut appender = conn
        .appender(table.as_str())
        .map_err(duck("cannot append to"))?;
    loop {
        match rx.blocking_recv() {
            Some(Message::Batch(batch)) => {
                if batch.num_rows() == 0 {
                    continue;
                }
                let added = new_columns(&columns, batch.schema().fields());
                let retyped = match evolution {
                    SchemaEvolution::Cast => Vec::new(),
                    SchemaEvolution::Widen => widened_columns(&columns, batch.schema().fields()),
                };
                if !added.is_empty() || !retyped.is_empty() {
                    // The appender is bound to the table's old shape: flush, alter, re-open.
                    appender.flush().map_err(duck("cannot append to"))?;
                    drop(appender);
                    for (index, column) in retyped {
                        conn.execute_batch(&format!(
                            "ALTER TABLE {table} ALTER COLUMN {} TYPE {}",
                            quote_identifier(column.field.name()),
                            duckdb_type_for_field(&column.field)?
                        ))
                        .map_err(duck("cannot change a column type of"))?;
                        columns[index] = column;
                    }
                    for column in added {
                        conn.execute_batch(&format!(
                            "ALTER TABLE {table} ADD COLUMN {} {}",
                            quote_identifier(column.field.name()),
                            duckdb_type_for_field(&column.field)?
                        ))
                        .map_err(duck("cannot add a column to"))?;
                        columns.push(column);
                    }
                    appender = conn
                        .appender(table.as_str())
                        .map_err(duck("cannot append to"))?;
                }
                rows += batch.num_rows() as u64;
                let aligned = durations_as_micros(align_to(&batch, &columns)?)?;
                appender
                    .append_record_batch(aligned)
                    .map_err(duck("cannot append a batch to"))?;
            }
            Some(Message::Commit) => break,
            None => return Err(DriverError::Cancelled),
        }
    }
    appender.flush().map_err(duck("cannot append to"))?;
    drop(appender);
    for field in columns
        .iter()
        .map(|c| &c.field)
        .filter(|f| matches!(f.data_type(), DataType::Duration(_)))
    {
        conn.execute_batch(&format!(
            "ALTER TABLE {table} ALTER COLUMN {col} SET DATA TYPE INTERVAL USING to_microseconds({col})",
            col = quote_identifier(field.name())
        ))
        .map_err(duck("cannot convert a duration column of"))?;
    }
    Ok(rows)
}

/// Runs `work` inside one transaction: commit on success, roll back on error.
fn in_transaction<T>(
    conn: &duckdb::Connection,
    context: &str,
    work: impl FnOnce(&duckdb::Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(|e| DriverError::duckdb(context, e))?;
    match work(conn) {
        Ok(value) => {
            conn.execute_batch("COMMIT")
                .map_err(|e| DriverError::duckdb(context, e))?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(error)
        }
    }
}

/// Creates (or replaces) `table` as the result of `query`, atomically: an earlier table of the
/// same name stays untouched if the query fails. Returns the new table's row count.
///
/// `query` must be exactly one query, as DuckDB's own parser sees it ([`duckdb_parser`]): a
/// text with several statements or a statement of another kind (`COPY`, `ATTACH`, `DROP`, ...)
/// is refused before anything runs, as a config error on the key `query`. DuckDB's messages
/// about the query give line numbers of the query itself.
pub fn replace_table_as(conn: &duckdb::Connection, table: &TableName, query: &str) -> Result<u64> {
    let create = duckdb_parser::checked_create_table_as(&table.quoted(), query)
        .map_err(|error| DriverError::config("query", error.to_string()))?;
    let context = format!("cannot create table {table}");
    in_transaction(conn, &context, |conn| {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {table}"))
            .map_err(|source| DriverError::duckdb(context.clone(), source))?;
        // One statement (checked above), so `execute` runs exactly it.
        conn.execute(&create, [])
            .map_err(|source| DriverError::DuckDb {
                context: context.clone(),
                source: query_relative_lines(source),
            })?;
        table_row_count(conn, table)
    })
}

/// DuckDB numbers the lines of the `CREATE TABLE ... AS` text, whose first line is ours: make
/// `LINE n:` in its message count lines of the query.
fn query_relative_lines(error: duckdb::Error) -> duckdb::Error {
    match error {
        duckdb::Error::DuckDBFailure(code, Some(message)) => {
            duckdb::Error::DuckDBFailure(code, Some(shift_line_numbers(&message, 1)))
        }
        other => other,
    }
}

/// Rewrites every `LINE <n>:` of a DuckDB message to `LINE <n - by>:`.
pub fn shift_line_numbers(message: &str, by: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("LINE ") {
        out.push_str(&rest[..at + 5]);
        rest = &rest[at + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) if rest[digits..].starts_with(':') => {
                out.push_str(&n.saturating_sub(by).max(1).to_string());
                rest = &rest[digits..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

/// Checks that `keys` identify the rows of a step table, as writers that upsert or replace by
/// key need: no NULL in any key column and no key value twice. The error (class `data`) says
/// how many rows break which rule.
pub async fn check_key_columns(
    ctx: &StepContext,
    table: &TableName,
    keys: &[String],
) -> Result<()> {
    let quoted: Vec<String> = keys.iter().map(|k| quote_identifier(k)).collect();
    let any_null = quoted
        .iter()
        .map(|k| format!("{k} IS NULL"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!(
        "SELECT (SELECT count(*) FROM {table} WHERE {any_null}), \
         (SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY {k} HAVING count(*) > 1))",
        k = quoted.join(", ")
    );
    let context = format!("cannot check the primary_key values of {table}");
    let (nulls, dups): (i64, i64) = ctx
        .run_blocking(move |conn, _| {
            conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| DriverError::duckdb(context, e))
        })
        .await?;
    let names = keys.join(", ");
    if nulls > 0 {
        return Err(DriverError::data(format!(
            "{nulls} rows of {table} have NULL in a primary_key column ({names}); every key column needs a value"
        )));
    }
    if dups > 0 {
        return Err(DriverError::data(format!(
            "{dups} primary_key values ({names}) appear more than once in {table}; writing by key needs one row per key"
        )));
    }
    Ok(())
}

/// Number of rows of `table`.
pub fn table_row_count(conn: &duckdb::Connection, table: &TableName) -> Result<u64> {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
    .map_err(|e| DriverError::duckdb(format!("cannot count rows of {table}"), e))
}

/// The table column for an incoming field.
fn column_for(field: &Field) -> Column {
    let stored = Field::new(field.name(), storage_type(field.data_type()), true);
    Column {
        field: if is_json(field) {
            json_field(field.name())
        } else {
            stored
        },
        untyped: field.data_type() == &DataType::Null,
    }
}

/// Replaces duration columns by their microseconds (Int64), NULLs kept; see [`column_type`].
fn durations_as_micros(batch: RecordBatch) -> Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Duration(_)))
    {
        return Ok(batch);
    }
    let fail = |e: arrow::error::ArrowError| {
        DriverError::internal(format!("cannot convert a duration column: {e}"))
    };
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut arrays = Vec::with_capacity(batch.num_columns());
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        if let DataType::Duration(_) = field.data_type() {
            let micros = cast_with_options(
                array,
                &DataType::Duration(TimeUnit::Microsecond),
                &CastOptions {
                    safe: false,
                    ..CastOptions::default()
                },
            )
            .map_err(fail)?;
            arrays.push(
                cast_with_options(&micros, &DataType::Int64, &CastOptions::default())
                    .map_err(fail)?,
            );
            fields.push(Field::new(field.name(), DataType::Int64, true));
        } else {
            arrays.push(Arc::clone(array));
            fields.push(field.as_ref().clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(fail)
}

/// The Arrow type a column is stored as: types DuckDB has no direct equivalent for are widened.
fn storage_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Null => DataType::Utf8,
        DataType::Float16 => DataType::Float32,
        DataType::Dictionary(_, value) => storage_type(value),
        other => other.clone(),
    }
}

/// The DuckDB column type for an Arrow type, matching what the Appender produces.
pub fn duckdb_type_for(data_type: &DataType) -> Result<String> {
    let ty = match data_type {
        DataType::Null | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            "VARCHAR".into()
        }
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s)
            if *p <= 38 =>
        {
            format!("DECIMAL({p},{s})")
        }
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Timestamp(TimeUnit::Second, None) => "TIMESTAMP_S".into(),
        DataType::Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP_MS".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP".into(),
        DataType::Timestamp(TimeUnit::Nanosecond, None) => "TIMESTAMP_NS".into(),
        DataType::Duration(_) | DataType::Interval(_) => "INTERVAL".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::List(child) | DataType::LargeList(child) => {
            format!("{}[]", duckdb_type_for(child.data_type())?)
        }
        DataType::FixedSizeList(child, n) => {
            format!("{}[{n}]", duckdb_type_for(child.data_type())?)
        }
        DataType::Struct(fields) => {
            let members = fields
                .iter()
                .map(|f| {
                    Ok(format!(
                        "{} {}",
                        quote_identifier(f.name()),
                        duckdb_type_for(f.data_type())?
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            format!("STRUCT({})", members.join(", "))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP({}, {})",
                duckdb_type_for(kv[0].data_type())?,
                duckdb_type_for(kv[1].data_type())?
            ),
            other => {
                return Err(DriverError::internal(format!(
                    "unsupported Arrow map entries {other}"
                )));
            }
        },
        DataType::Dictionary(_, value) => duckdb_type_for(value)?,
        other => {
            return Err(DriverError::internal(format!(
                "Arrow type {other} has no DuckDB column type"
            )));
        }
    };
    Ok(ty)
}

/// The DuckDB column type of a field: [`duckdb_type_for`] its type, `JSON` for JSON text.
fn duckdb_type_for_field(field: &Field) -> Result<String> {
    if is_json(field) {
        Ok("JSON".into())
    } else if let DataType::Duration(_) = field.data_type() {
        // Appended as microseconds and converted to INTERVAL before commit: the Arrow
        // conversion of duckdb-rs drops the NULLs of duration columns.
        Ok("BIGINT".into())
    } else {
        duckdb_type_for(field.data_type())
    }
}

fn column_definitions(columns: &[Column]) -> Result<String> {
    if columns.is_empty() {
        return Err(DriverError::internal("a table needs at least one column"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut defs = Vec::with_capacity(columns.len());
    for Column { field, .. } in columns {
        if !seen.insert(field.name().to_lowercase()) {
            // DuckDB column names are case-insensitive: `id` and `ID` would collide.
            return Err(DriverError::data(format!(
                "column {:?} appears twice (column names are case-insensitive)",
                field.name()
            )));
        }
        defs.push(format!(
            "{} {}",
            quote_identifier(field.name()),
            duckdb_type_for_field(field)?
        ));
    }
    Ok(defs.join(", "))
}

fn new_columns(columns: &[Column], incoming: &arrow::datatypes::Fields) -> Vec<Column> {
    incoming
        .iter()
        .filter(|f| !columns.iter().any(|c| c.field.name() == f.name()))
        .map(|f| column_for(f))
        .collect()
}

/// The table columns (by index) whose type must widen to take `incoming` (Widen mode).
fn widened_columns(
    columns: &[Column],
    incoming: &arrow::datatypes::Fields,
) -> Vec<(usize, Column)> {
    let mut changes = Vec::new();
    for field in incoming {
        let Some(index) = columns.iter().position(|c| c.field.name() == field.name()) else {
            continue;
        };
        let column = &columns[index];
        if field.data_type() == &DataType::Null {
            continue;
        }
        let target = if column.untyped {
            column_for(field)
        } else {
            let wider = wider_field(&column.field, field);
            if wider.data_type() == column.field.data_type()
                && is_json(&wider) == is_json(&column.field)
            {
                continue;
            }
            Column {
                field: wider,
                untyped: false,
            }
        };
        changes.push((index, target));
    }
    changes
}

/// A field that holds the values of both `table` and `incoming` (see [`SchemaEvolution::Widen`]).
fn wider_field(table: &Field, incoming: &Field) -> Field {
    let (a, b) = (table.data_type(), &storage_type(incoming.data_type()));
    let name = table.name();
    if a == b && is_json(table) == is_json(incoming) {
        return table.clone();
    }
    if a.is_integer() && b.is_integer() {
        // A wider table integer already holds the narrower one (the cast checks each value).
        let wider = if a.primitive_width() >= b.primitive_width() && a.is_signed_integer() {
            a.clone()
        } else {
            DataType::Int64
        };
        return Field::new(name, wider, true);
    }
    if (a.is_integer() || a.is_floating()) && (b.is_integer() || b.is_floating()) {
        return Field::new(name, DataType::Float64, true);
    }
    Field::new(name, DataType::Utf8, true)
}

/// Re-shapes `batch` to the table's columns, by name: reorders, fills missing columns with
/// NULL and casts differing types (failing on values that do not fit, never truncating).
fn align_to(batch: &RecordBatch, columns: &[Column]) -> Result<RecordBatch> {
    let schema = batch.schema();
    let columns: Vec<Field> = columns.iter().map(|c| c.field.clone()).collect();
    let same_shape = schema.fields().len() == columns.len()
        && schema
            .fields()
            .iter()
            .zip(&columns)
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    let target = Arc::new(Schema::new(columns.clone()));
    if same_shape {
        return RecordBatch::try_new(target, batch.columns().to_vec())
            .map_err(|e| DriverError::internal(format!("cannot re-label batch: {e}")));
    }
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let arrays = columns
        .iter()
        .map(|column| -> Result<ArrayRef> {
            match schema.index_of(column.name()) {
                Err(_) => Ok(new_null_array(column.data_type(), batch.num_rows())),
                Ok(i) => {
                    let array = batch.column(i);
                    if array.data_type() == column.data_type() {
                        Ok(Arc::clone(array))
                    } else {
                        let changed = |why: String| {
                            DriverError::data(format!(
                                "column {:?} changed type from {} to {} between batches: {why}",
                                column.name(),
                                column.data_type(),
                                array.data_type()
                            ))
                        };
                        let cast = cast_with_options(array, column.data_type(), &strict)
                            .map_err(|e| changed(e.to_string()))?;
                        if may_lose_precision(array.data_type(), column.data_type()) {
                            // Arrow's casts truncate fractions (2.5 -> 2) and sub-units
                            // (nanoseconds -> microseconds) without an error; a value that
                            // does not come back unchanged did not fit.
                            let back = cast_with_options(&cast, array.data_type(), &strict)
                                .map_err(|e| changed(e.to_string()))?;
                            if back.as_ref() != array.as_ref() {
                                return Err(changed(
                                    "some values do not fit the earlier type exactly".into(),
                                ));
                            }
                        }
                        Ok(cast)
                    }
                }
            }
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(target, arrays)
        .map_err(|e| DriverError::internal(format!("cannot build aligned batch: {e}")))
}

/// Whether casting `from` to `to` can change a value without failing: from fractional or
/// finer-grained numbers and times to anything but text.
fn may_lose_precision(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let lossy_source = matches!(
        from,
        Float16
            | Float32
            | Float64
            | Decimal32(..)
            | Decimal64(..)
            | Decimal128(..)
            | Decimal256(..)
            | Timestamp(..)
            | Time32(..)
            | Time64(..)
            | Duration(..)
            | Date64
    );
    lossy_source && !matches!(to, Utf8 | LargeUtf8 | Utf8View)
}

/// Streams the result of a query (by default a whole table) as Arrow batches.
pub struct TableReader {
    rx: mpsc::Receiver<Result<RecordBatch>>,
    schema: SchemaRef,
    handle: JoinHandle<()>,
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl TableReader {
    /// Streams every row of `table`, in its column order.
    pub async fn table(conn: duckdb::Connection, table: &TableName) -> Result<Self> {
        Self::query(conn, format!("SELECT * FROM {table}")).await
    }

    /// Streams the result of `sql`.
    pub async fn query(conn: duckdb::Connection, sql: String) -> Result<Self> {
        let (tx, rx) = mpsc::channel(DEFAULT_CHANNEL_CAPACITY);
        let (schema_tx, schema_rx) = tokio::sync::oneshot::channel();
        let handle = tokio::task::spawn_blocking(move || {
            let fail =
                |e: duckdb::Error| DriverError::duckdb("cannot read from the run database", e);
            let mut stmt = match conn.prepare(&sql).map_err(fail) {
                Ok(stmt) => stmt,
                Err(e) => {
                    let _ = schema_tx.send(Err(e));
                    return;
                }
            };
            let arrow = match stmt.query_arrow([]).map_err(fail) {
                Ok(arrow) => arrow,
                Err(e) => {
                    let _ = schema_tx.send(Err(e));
                    return;
                }
            };
            let _ = schema_tx.send(Ok(arrow.get_schema()));
            for batch in arrow {
                if tx.blocking_send(Ok(batch)).is_err() {
                    return; // the consumer stopped reading
                }
            }
        });
        let schema = schema_rx
            .await
            .map_err(|_| DriverError::internal("table reader thread ended early"))??;
        Ok(Self { rx, schema, handle })
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The next batch, or `None` at the end.
    pub async fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        self.rx.recv().await
    }

    /// Reads everything (tests and small tables only).
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next_batch().await {
            batches.push(batch?);
        }
        let _ = self.handle.await;
        Ok(batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };

    fn memory() -> duckdb::Connection {
        duckdb::Connection::open_in_memory().unwrap()
    }

    fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
        Arc::new(Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
        RecordBatch::try_new(Arc::clone(schema), columns).unwrap()
    }

    fn table_exists(conn: &duckdb::Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    }

    #[tokio::test]
    async fn writes_batches_and_commits_one_table() {
        let conn = memory();
        let table = TableName::new("read-orders").unwrap();
        let s = schema(&[
            ("id", DataType::Int64),
            ("amount", DataType::Decimal128(12, 2)),
            ("name", DataType::Utf8),
            ("at", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ]);
        let mut writer =
            TableWriter::start(conn.try_clone().unwrap(), table.clone(), Arc::clone(&s), 2);
        for chunk in 0..5i64 {
            let ids: Vec<i64> = (chunk * 1000..chunk * 1000 + 1000).collect();
            let b = batch(
                &s,
                vec![
                    Arc::new(Int64Array::from(ids.clone())),
                    Arc::new(
                        Decimal128Array::from(
                            ids.iter().map(|i| i128::from(i * 101)).collect::<Vec<_>>(),
                        )
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                    ),
                    Arc::new(StringArray::from(
                        ids.iter().map(|i| format!("n{i}")).collect::<Vec<_>>(),
                    )),
                    Arc::new(TimestampMicrosecondArray::from(
                        ids.iter().map(|i| i * 1_000_001).collect::<Vec<_>>(),
                    )),
                ],
            );
            writer.send(b).await.unwrap();
        }
        assert_eq!(writer.finish().await.unwrap(), 5000);
        let (rows, sum, types): (i64, String, String) = conn
            .query_row(
                "SELECT count(*), CAST(sum(amount) AS VARCHAR), (SELECT string_agg(data_type, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'read-orders') FROM \"read-orders\"",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(rows, 5000);
        assert_eq!(sum, "12622475.00"); // sum(0..5000) * 101 cents, exact
        assert_eq!(types, "BIGINT,DECIMAL(12,2),VARCHAR,TIMESTAMP");
    }

    #[tokio::test]
    async fn text_marked_as_json_becomes_a_json_column() {
        let conn = memory();
        let field = Field::new("doc", DataType::Utf8, true).with_metadata(
            [(
                "ARROW:extension:name".to_owned(),
                JSON_EXTENSION_NAME.to_owned(),
            )]
            .into(),
        );
        let s = Arc::new(Schema::new(vec![field]));
        let mut writer = TableWriter::start(
            conn.try_clone().unwrap(),
            TableName::new("j").unwrap(),
            Arc::clone(&s),
            1,
        );
        writer
            .send(batch(
                &s,
                vec![Arc::new(StringArray::from(vec![
                    Some(r#"{"a": [1, 2]}"#),
                    None,
                ]))],
            ))
            .await
            .unwrap();
        assert_eq!(writer.finish().await.unwrap(), 2);
        let (ty, second): (String, i64) = conn
            .query_row(
                "SELECT typeof(doc), CAST(doc->'$.a[1]' AS BIGINT) FROM j WHERE doc IS NOT NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((ty.as_str(), second), ("JSON", 2));
    }

    #[tokio::test]
    async fn duration_columns_become_intervals_with_their_nulls() {
        let conn = memory();
        let s = schema(&[("d", DataType::Duration(TimeUnit::Microsecond))]);
        let mut writer = TableWriter::start(
            conn.try_clone().unwrap(),
            TableName::new("d").unwrap(),
            Arc::clone(&s),
            1,
        );
        writer
            .send(batch(
                &s,
                vec![Arc::new(arrow::array::DurationMicrosecondArray::from(
                    vec![Some(-3_600_000_001), None, Some(90_000_000_000)],
                ))],
            ))
            .await
            .unwrap();
        assert_eq!(writer.finish().await.unwrap(), 3);
        let mut stmt = conn
            .prepare("SELECT typeof(d), CAST(d AS VARCHAR) FROM d ORDER BY rowid")
            .unwrap();
        let rows: Vec<(String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            rows,
            [
                ("INTERVAL".into(), Some("-01:00:00.000001".into())),
                ("INTERVAL".into(), None),
                ("INTERVAL".into(), Some("25:00:00".into())),
            ]
        );
    }

    #[tokio::test]
    async fn aborted_writer_leaves_no_table() {
        let conn = memory();
        let table = TableName::new("t").unwrap();
        let s = schema(&[("x", DataType::Int32)]);
        let mut writer = TableWriter::start(conn.try_clone().unwrap(), table, Arc::clone(&s), 1);
        writer
            .send(batch(&s, vec![Arc::new(Int32Array::from(vec![1, 2, 3]))]))
            .await
            .unwrap();
        writer.abort().await;
        assert!(!table_exists(&conn, "t"));
    }

    #[tokio::test]
    async fn failed_rerun_keeps_the_earlier_table() {
        let conn = memory();
        conn.execute_batch("CREATE TABLE t AS SELECT 41 AS x")
            .unwrap();
        let table = TableName::new("t").unwrap();
        let s = schema(&[("x", DataType::Int32)]);
        let mut writer =
            TableWriter::start(conn.try_clone().unwrap(), table.clone(), Arc::clone(&s), 1);
        writer
            .send(batch(&s, vec![Arc::new(Int32Array::from(vec![1]))]))
            .await
            .unwrap();
        // A batch whose column cannot be cast to the table's type fails the writer.
        let bad = schema(&[("x", DataType::Utf8)]);
        let _ = writer
            .send(batch(
                &bad,
                vec![Arc::new(StringArray::from(vec!["not a number"]))],
            ))
            .await;
        let err = writer.finish().await.unwrap_err();
        assert!(err.to_string().contains("changed type"), "{err}");
        let x: i32 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 41, "the earlier table is untouched");
    }

    #[tokio::test]
    async fn a_later_batch_whose_values_do_not_fit_exactly_fails_instead_of_truncating() {
        let conn = memory();
        let table = TableName::new("t").unwrap();
        let ints = schema(&[("x", DataType::Int64)]);
        let floats = schema(&[("x", DataType::Float64)]);
        let run = |values: Vec<f64>| {
            let (conn, table, ints, floats) = (
                conn.try_clone().unwrap(),
                table.clone(),
                Arc::clone(&ints),
                Arc::clone(&floats),
            );
            async move {
                let mut writer = TableWriter::start(conn, table, Arc::clone(&ints), 1);
                writer
                    .send(batch(&ints, vec![Arc::new(Int64Array::from(vec![1]))]))
                    .await
                    .unwrap();
                let _ = writer
                    .send(batch(&floats, vec![Arc::new(Float64Array::from(values))]))
                    .await;
                writer.finish().await
            }
        };
        // Whole numbers arriving as floats still fit the BIGINT column.
        assert_eq!(run(vec![2.0, 3.0]).await.unwrap(), 3);
        let err = run(vec![2.0, 2.5]).await.unwrap_err();
        assert!(err.to_string().contains("do not fit"), "{err}");
        let xs: i64 = conn
            .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            xs, 6,
            "the table of the earlier successful run is untouched"
        );
    }

    #[tokio::test]
    async fn successful_rerun_replaces_the_table() {
        let conn = memory();
        conn.execute_batch("CREATE TABLE t AS SELECT 'old' AS y")
            .unwrap();
        let s = schema(&[("x", DataType::Int32)]);
        let mut writer = TableWriter::start(
            conn.try_clone().unwrap(),
            TableName::new("t").unwrap(),
            Arc::clone(&s),
            1,
        );
        writer
            .send(batch(&s, vec![Arc::new(Int32Array::from(vec![5, 6]))]))
            .await
            .unwrap();
        assert_eq!(writer.finish().await.unwrap(), 2);
        let sum: i64 = conn
            .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sum, 11);
    }

    #[tokio::test]
    async fn batches_are_matched_by_name_not_position() {
        let conn = memory();
        let s = schema(&[("a", DataType::Int64), ("b", DataType::Utf8)]);
        let mut writer = TableWriter::start(
            conn.try_clone().unwrap(),
            TableName::new("t").unwrap(),
            Arc::clone(&s),
            1,
        );
        writer
            .send(batch(
                &s,
                vec![
                    Arc::new(Int64Array::from(vec![1])),
                    Arc::new(StringArray::from(vec!["x"])),
                ],
            ))
            .await
            .unwrap();
        // Reordered columns, one missing, one new, one narrower integer type.
        let s2 = schema(&[("c", DataType::Utf8), ("a", DataType::Int32)]);
        writer
            .send(batch(
                &s2,
                vec![
                    Arc::new(StringArray::from(vec!["new"])),
                    Arc::new(Int32Array::from(vec![2])),
                ],
            ))
            .await
            .unwrap();
        assert_eq!(writer.finish().await.unwrap(), 2);
        let mut stmt = conn.prepare("SELECT a, b, c FROM t ORDER BY a").unwrap();
        let rows: Vec<(i64, Option<String>, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            rows,
            [(1, Some("x".into()), None), (2, None, Some("new".into()))]
        );
    }

    #[tokio::test]
    async fn widen_mode_widens_columns_and_types_null_columns_late() {
        use arrow::array::{BooleanArray, Float64Array, NullArray};
        let conn = memory();
        let first = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("score", DataType::Int64, true),
            Field::new("later", DataType::Null, true),
            Field::new("mixed", DataType::Boolean, true),
            json_field("doc"),
        ]));
        let mut writer = TableWriter::start_with(
            conn.try_clone().unwrap(),
            TableName::new("w").unwrap(),
            Arc::clone(&first),
            1,
            SchemaEvolution::Widen,
        );
        writer
            .send(batch(
                &first,
                vec![
                    Arc::new(Int64Array::from(vec![1])),
                    Arc::new(Int64Array::from(vec![10])),
                    Arc::new(NullArray::new(1)),
                    Arc::new(BooleanArray::from(vec![true])),
                    Arc::new(StringArray::from(vec![r#"{"a":[1,2]}"#])),
                ],
            ))
            .await
            .unwrap();
        let second = schema(&[
            ("id", DataType::Int64),
            ("score", DataType::Float64),
            ("later", DataType::Int64),
            ("mixed", DataType::Utf8),
        ]);
        writer
            .send(batch(
                &second,
                vec![
                    Arc::new(Int64Array::from(vec![2])),
                    Arc::new(Float64Array::from(vec![2.5])),
                    Arc::new(Int64Array::from(vec![7])),
                    Arc::new(StringArray::from(vec!["text"])),
                ],
            ))
            .await
            .unwrap();
        assert_eq!(writer.finish().await.unwrap(), 2);
        let types: String = conn
            .query_row(
                "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'w'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            types,
            "id BIGINT, score DOUBLE, later BIGINT, mixed VARCHAR, doc JSON"
        );
        let rows: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT concat_ws('|', id, score, later, mixed, doc->>'$.a[1]') FROM w ORDER BY id")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        };
        assert_eq!(rows, ["1|10.0|true|2", "2|2.5|7|text"]);
    }

    #[tokio::test]
    async fn empty_input_still_creates_the_table_with_its_columns() {
        let conn = memory();
        let s = schema(&[("id", DataType::Int64), ("name", DataType::Utf8)]);
        let writer = TableWriter::start(
            conn.try_clone().unwrap(),
            TableName::new("empty").unwrap(),
            s,
            1,
        );
        assert_eq!(writer.finish().await.unwrap(), 0);
        let cols: String = conn
            .query_row(
                "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'empty'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cols, "id,name");
    }

    #[tokio::test]
    async fn reader_streams_a_table_back_as_arrow() {
        let conn = memory();
        conn.execute_batch(
            "CREATE TABLE \"my table\" AS SELECT range AS id, 'v' || range AS v FROM range(5000)",
        )
        .unwrap();
        let reader = TableReader::table(conn, &TableName::new("my table").unwrap())
            .await
            .unwrap();
        assert_eq!(reader.schema().field(1).name(), "v");
        let batches = reader.collect().await.unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 5000);
        assert!(batches.len() > 1, "streamed in several batches");
    }

    #[test]
    fn replace_table_as_is_atomic() {
        let conn = memory();
        let t = TableName::new("p").unwrap();
        assert_eq!(
            replace_table_as(&conn, &t, "SELECT 1 AS x UNION ALL SELECT 2").unwrap(),
            2
        );
        let err = replace_table_as(&conn, &t, "SELECT * FROM missing_table").unwrap_err();
        assert!(err.to_string().contains("missing_table"), "{err}");
        assert_eq!(table_row_count(&conn, &t).unwrap(), 2, "old table kept");
    }

    #[test]
    fn replace_table_as_runs_one_query_and_nothing_else() {
        let conn = memory();
        conn.execute_batch("CREATE TABLE src AS SELECT 1 AS x")
            .unwrap();
        let t = TableName::new("p").unwrap();
        for query in [
            "SELECT 1; DROP TABLE src",
            "SELECT 1; COMMIT; SELECT error('x')",
            "DROP TABLE src",
        ] {
            let err = replace_table_as(&conn, &t, query).unwrap_err();
            assert_eq!(err.class(), crate::ErrorClass::Config, "{query}: {err}");
            assert!(err.to_string().starts_with("config key `query`: "), "{err}");
        }
        assert_eq!(
            table_row_count(&conn, &TableName::new("src").unwrap()).unwrap(),
            1
        );
        assert!(!table_exists(&conn, "p"));
    }

    #[test]
    fn line_numbers_in_messages_count_lines_of_the_query() {
        let conn = memory();
        let t = TableName::new("p").unwrap();
        let err = replace_table_as(
            &conn,
            &t,
            "SELECT 1 AS x\nUNION ALL\nSELECT nope FROM missing_table",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("LINE 3:"), "{err}");
        assert_eq!(
            shift_line_numbers("a LINE 2: b LINE 10: c LINE x", 1),
            "a LINE 1: b LINE 9: c LINE x"
        );
    }
}
