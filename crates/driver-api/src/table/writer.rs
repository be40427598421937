//! [`TableWriter`]: Arrow batches into a new step table, atomically, with schema evolution.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    DataType, Field, IntervalMonthDayNanoType, IntervalUnit, Schema, SchemaRef, TimeUnit,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::sink::BlockingSink;
use super::sql::in_transaction;
use super::types::{duckdb_type_for_field, is_json, is_uuid, storage_type, uuid_field};
use super::*;
use crate::{DriverError, Result, StepContext, TableName, quote_identifier};

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
    Batch {
        batch: RecordBatch,
        /// Its Arrow size, measured once when it was sent.
        bytes: usize,
        /// Its share of the writer's byte budget, returned when it has been appended.
        _budget: OwnedSemaphorePermit,
    },
    Commit,
}

/// The Arrow bytes a writer accepts ahead of its thread, in units of [`BUDGET_UNIT`]: with the
/// channel's batch count, this bounds a step's memory whatever its `batch_size` (10 MB batches
/// of 65,536 rows filled the channel with ~160 MiB more than 10,000-row batches did). A batch
/// larger than the whole budget takes all of it and travels alone.
const BUDGET_UNITS: u32 = 512;
const BUDGET_UNIT: usize = 64 << 10;

/// Streams Arrow batches into a new step table, atomically. See the module docs.
pub struct TableWriter {
    sink: BlockingSink<Message>,
    budget: Arc<Semaphore>,
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
        let serial = ctx.serial_bulk_append(&conn);
        Ok(Self::spawn(
            conn,
            ctx.output_table().clone(),
            schema,
            DEFAULT_CHANNEL_CAPACITY,
            evolution,
            serial,
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
        Self::spawn(conn, table, schema, capacity, evolution, None)
    }

    /// Starts the writer's thread; `serial` (DuckDB single-threaded for a lone step, ADR 0044)
    /// ends with the thread, after the commit or the rollback.
    fn spawn(
        conn: duckdb::Connection,
        table: TableName,
        schema: SchemaRef,
        capacity: usize,
        evolution: SchemaEvolution,
        serial: Option<execution_context::SerialAppend>,
    ) -> Self {
        let sink = BlockingSink::spawn("table writer", capacity, move |rx| {
            let _serial = serial;
            write_table(&conn, &table, schema, evolution, rx)
        });
        Self {
            sink,
            budget: Arc::new(Semaphore::new(BUDGET_UNITS as usize)),
        }
    }

    /// Sends one batch, waiting while the batches not yet appended hold the writer's byte
    /// budget. When the writer has already failed, returns its error.
    pub async fn send(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 && batch.num_columns() == 0 {
            return Ok(());
        }
        let bytes = batch.get_array_memory_size();
        let units = bytes.div_ceil(BUDGET_UNIT).clamp(1, BUDGET_UNITS as usize) as u32;
        // Never closed; a failed thread drops the queued batches and so their permits.
        let budget = Arc::clone(&self.budget)
            .acquire_many_owned(units)
            .await
            .map_err(|_| DriverError::internal("the table writer's budget was closed"))?;
        self.sink
            .send(Message::Batch {
                batch,
                bytes,
                _budget: budget,
            })
            .await
    }

    /// The budget units free now (all of them once every batch sent has been appended).
    #[cfg(test)]
    pub(super) fn budget_free(&self) -> usize {
        self.budget.available_permits()
    }

    /// Commits the table and returns the number of rows written.
    pub async fn finish(self) -> Result<u64> {
        self.sink.finish(Message::Commit).await
    }

    /// Abandons the table: the transaction rolls back and nothing of it stays visible.
    pub async fn abort(self) {
        self.sink.abort().await;
    }
}

/// How much Arrow data a writer appends between two looks at DuckDB's cache of written table
/// blocks, and how much of that cache it leaves (ADR 0043): a long append's memory stays flat.
const RELEASE_EVERY_BYTES: usize = 64 << 20;
const KEEP_CACHED_BYTES: u64 = 32 << 20;

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
    let mut appended_since_release = 0usize;
    let mut appender = conn
        .appender(table.as_str())
        .map_err(duck("cannot append to"))?;
    loop {
        match rx.blocking_recv() {
            Some(Message::Batch {
                batch,
                bytes,
                _budget,
            }) => {
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
                appended_since_release += bytes;
                let aligned = durations_as_micros(align_to(&batch, &columns)?)?;
                appender
                    .append_record_batch(aligned)
                    .map_err(duck("cannot append a batch to"))?;
                if appended_since_release >= RELEASE_EVERY_BYTES {
                    appended_since_release = 0;
                    execution_context::release_table_cache(conn, KEEP_CACHED_BYTES)
                        .map_err(duck("cannot release the cached blocks of"))?;
                }
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
        .filter(|f| matches!(f.data_type(), DataType::Duration(_) | DataType::Interval(_)))
    {
        let col = quote_identifier(field.name());
        let using = if let DataType::Duration(_) = field.data_type() {
            format!("to_microseconds({col})")
        } else {
            format!("CAST({col} AS INTERVAL)")
        };
        conn.execute_batch(&format!(
            "ALTER TABLE {table} ALTER COLUMN {col} SET DATA TYPE INTERVAL USING {using}"
        ))
        .map_err(duck("cannot convert a duration column of"))?;
    }
    Ok(rows)
}

/// The table column for an incoming field.
fn column_for(field: &Field) -> Column {
    let stored = Field::new(field.name(), storage_type(field.data_type()), true);
    Column {
        field: if is_json(field) {
            json_field(field.name())
        } else if is_uuid(field) {
            uuid_field(field.name())
        } else {
            stored
        },
        untyped: field.data_type() == &DataType::Null,
    }
}

/// Replaces duration columns by their microseconds (Int64) and interval columns by their
/// text, NULLs kept; see [`column_type`].
fn durations_as_micros(batch: RecordBatch) -> Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Duration(_) | DataType::Interval(_)))
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
        } else if let DataType::Interval(_) = field.data_type() {
            let intervals = cast_with_options(
                array,
                &DataType::Interval(IntervalUnit::MonthDayNano),
                &CastOptions::default(),
            )
            .map_err(fail)?;
            let text: StringArray = intervals
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        format!(
                            "{} months {} days {} microseconds",
                            v.months,
                            v.days,
                            v.nanoseconds / 1000
                        )
                    })
                })
                .collect();
            arrays.push(Arc::new(text));
            fields.push(Field::new(field.name(), DataType::Utf8, true));
        } else {
            arrays.push(Arc::clone(array));
            fields.push(field.as_ref().clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(fail)
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
