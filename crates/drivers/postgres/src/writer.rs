//! `postgres.writer`: an upstream step table into a PostgreSQL table.
//!
//! The step table is read with [`TableReader`] (DuckDB types normalised by casts in the
//! SELECT), encoded into PostgreSQL's binary COPY format and sent by
//! `COPY ... FROM STDIN (FORMAT binary)` into a temporary staging table whose column types
//! follow the Arrow types. Then, in the same transaction, one statement moves the rows into
//! the destination, casting each column to the destination's type: `INSERT` (append),
//! `INSERT ... ON CONFLICT (key) DO UPDATE` (upsert), or `TRUNCATE` + `INSERT` (replace). The
//! transaction commits only when everything succeeded, so a failure at any point leaves the
//! destination exactly as it was (ADR 0031). Columns are matched by name; destination columns
//! the step table lacks get their defaults.

use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, IntervalMonthDayNanoArray,
    ListArray, StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use driver_api::{
    Driver, DriverError, Result, StepContext, StepInputs, StepOutput, TableName, TableReader,
    check_key_columns,
};
use execution_context::object;
use futures::SinkExt;
use serde::Deserialize;
use serde_json::Value;

use crate::conn::{PostgresConnection, classify, qualified, quote};

/// The `postgres.writer` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresWriter;

/// How the destination is changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Insert the rows.
    #[default]
    Append,
    /// Make the destination hold exactly the step's rows (TRUNCATE + INSERT, one transaction).
    Replace,
    /// Insert, or update the non-key columns of rows whose key exists.
    Upsert,
}

/// Configuration of a `postgres.writer` step (without the connection's fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Destination table.
    pub table: String,
    /// Its schema. Default `public`.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// append | replace | upsert. Default append.
    #[serde(default)]
    pub mode: Mode,
    /// Key columns (required for upsert; the primary key of a created table).
    #[serde(default)]
    pub primary_key: Option<Vec<String>>,
    /// Create a missing destination from the step table's columns. Default false.
    #[serde(default)]
    pub create_table: bool,
}

fn default_schema() -> String {
    "public".into()
}

/// A column of the step table as it is written.
#[derive(Debug, Clone)]
struct WriteColumn {
    name: String,
    /// DuckDB type of the step table's column.
    duck_type: String,
}

impl WriteColumn {
    /// The SELECT expression that gives the column an Arrow type the encoder knows.
    fn select(&self) -> String {
        let c = driver_api::quote_identifier(&self.name);
        let t = self.duck_type.as_str();
        match t {
            "TINYINT" => format!("CAST({c} AS SMALLINT)"),
            "UTINYINT" | "USMALLINT" => format!("CAST({c} AS INTEGER)"),
            "UINTEGER" => format!("CAST({c} AS BIGINT)"),
            "UBIGINT" | "HUGEINT" | "UHUGEINT" => format!("CAST({c} AS DECIMAL(38,0))"),
            "TIMESTAMP_S" | "TIMESTAMP_MS" | "TIMESTAMP_NS" => format!("CAST({c} AS TIMESTAMP)"),
            "JSON" | "UUID" => format!("CAST({c} AS VARCHAR)"),
            _ if t.starts_with("STRUCT") || t.starts_with("MAP") || t.starts_with("UNION") => {
                format!("CAST(to_json({c}) AS VARCHAR)")
            }
            _ if is_plain(t) => c,
            _ if t.matches("[]").count() == 1 && is_plain(t.trim_end_matches("[]")) => c,
            _ => format!("CAST({c} AS VARCHAR)"),
        }
    }

    /// The column type of a created destination: the staging type, except JSON, UUID and
    /// nested values (jsonb, uuid).
    fn create_type(&self, staging: &str) -> String {
        let t = self.duck_type.as_str();
        if t == "JSON" || t.starts_with("STRUCT") || t.starts_with("MAP") {
            "jsonb".into()
        } else if t == "UUID" {
            "uuid".into()
        } else {
            staging.into()
        }
    }
}

/// A DuckDB type whose Arrow form the encoder writes as it is (also as a list element).
fn is_plain(t: &str) -> bool {
    matches!(
        t,
        "BOOLEAN"
            | "SMALLINT"
            | "INTEGER"
            | "BIGINT"
            | "FLOAT"
            | "DOUBLE"
            | "VARCHAR"
            | "DATE"
            | "TIME"
            | "TIMESTAMP"
            | "TIMESTAMP WITH TIME ZONE"
            | "INTERVAL"
            | "BLOB"
    ) || t.starts_with("DECIMAL")
}

/// The PostgreSQL type (and element OID for arrays) of an Arrow type the encoder writes.
fn pg_type(data_type: &DataType) -> Option<(String, u32)> {
    Some(match data_type {
        DataType::Boolean => ("boolean".into(), 16),
        DataType::Int16 => ("smallint".into(), 21),
        DataType::Int32 => ("integer".into(), 23),
        DataType::Int64 => ("bigint".into(), 20),
        DataType::Float32 => ("real".into(), 700),
        DataType::Float64 => ("double precision".into(), 701),
        DataType::Decimal128(p, s) => (format!("numeric({p},{s})"), 1700),
        DataType::Utf8 => ("text".into(), 25),
        DataType::Date32 => ("date".into(), 1082),
        DataType::Time64(TimeUnit::Microsecond) => ("time".into(), 1083),
        DataType::Timestamp(TimeUnit::Microsecond, None) => ("timestamp".into(), 1114),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => ("timestamptz".into(), 1184),
        DataType::Interval(IntervalUnit::MonthDayNano) => ("interval".into(), 1186),
        DataType::Binary => ("bytea".into(), 17),
        DataType::List(element) => {
            let (name, _) = pg_type(element.data_type())?;
            (format!("{name}[]"), 0)
        }
        _ => return None,
    })
}

#[async_trait]
impl Driver for PostgresWriter {
    const NAME: &'static str = "postgres.writer";
    type Connection = PostgresConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: PostgresConnection,
        config: Config,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        let started = Instant::now();
        let mut endpoint = connection;
        endpoint.resolve_paths(ctx.base_dir());
        let input = inputs.single()?.table.clone();
        let keys = config.primary_key.clone().unwrap_or_default();
        if config.mode == Mode::Upsert && keys.is_empty() {
            return Err(DriverError::config(
                "primary_key",
                "is required for mode upsert: the columns that identify a row",
            ));
        }
        let columns = step_columns(ctx, &input).await?;
        for key in &keys {
            if !columns.iter().any(|c| &c.name == key) {
                return Err(DriverError::config(
                    "primary_key",
                    format!("{key:?} is not a column of the step table {input}"),
                ));
            }
        }
        if !keys.is_empty() {
            check_key_columns(ctx, &input, &keys).await?;
        }
        let mut client = endpoint.connect().await?;
        let rows = write(ctx, &mut client, &config, &keys, &input, &columns).await?;
        let duration_ms = started.elapsed().as_millis() as u64;
        ctx.metric("duration_ms", duration_ms);
        ctx.event(
            "write.complete",
            object([
                ("rows", rows.into()),
                ("table", Value::String(config.table.clone())),
                ("duration_ms", duration_ms.into()),
            ]),
        );
        Ok(StepOutput::written(rows))
    }

    async fn doctor(&self, connection: &PostgresConnection) -> Result<()> {
        connection.check().await
    }
}

/// The step table's columns and DuckDB types.
async fn step_columns(ctx: &StepContext, input: &TableName) -> Result<Vec<WriteColumn>> {
    let sql = format!("SELECT column_name, column_type FROM (DESCRIBE {input})");
    ctx.run_blocking(move |conn, _| {
        let fail = |e| DriverError::duckdb("cannot read the step table's columns", e);
        let mut stmt = conn.prepare(&sql).map_err(fail)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(WriteColumn {
                    name: r.get(0)?,
                    duck_type: r.get(1)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(fail)
    })
    .await
}

/// Stages the step table and applies it to the destination in one transaction.
async fn write(
    ctx: &StepContext,
    client: &mut pg_support::tokio_postgres::Client,
    config: &Config,
    keys: &[String],
    input: &TableName,
    columns: &[WriteColumn],
) -> Result<u64> {
    let target = qualified(&config.schema, &config.table);
    let select = columns
        .iter()
        .map(WriteColumn::select)
        .collect::<Vec<_>>()
        .join(", ");
    let mut reader =
        TableReader::query(ctx.connection()?, format!("SELECT {select} FROM {input}")).await?;
    let schema = reader.schema();
    let mut staging_types = Vec::new();
    for (column, field) in columns.iter().zip(schema.fields()) {
        let (name, _) = pg_type(field.data_type()).ok_or_else(|| {
            DriverError::internal(format!(
                "column {:?}: no PostgreSQL type for Arrow {}",
                column.name,
                field.data_type()
            ))
        })?;
        staging_types.push(name);
    }

    let existing = pg_support::columns(client, &config.schema, &config.table).await?;
    let create = if existing.is_empty() {
        if !config.create_table {
            return Err(DriverError::config(
                "table",
                format!(
                    "table {:?} does not exist in schema {:?}; create it or set create_table: true",
                    config.table, config.schema
                ),
            ));
        }
        let mut defs: Vec<String> = columns
            .iter()
            .zip(&staging_types)
            .map(|(c, t)| format!("{} {}", quote(&c.name), c.create_type(t)))
            .collect();
        if !keys.is_empty() {
            defs.push(format!(
                "PRIMARY KEY ({})",
                keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
            ));
        }
        Some(format!("CREATE TABLE {target} ({})", defs.join(", ")))
    } else {
        let missing: Vec<&str> = columns
            .iter()
            .filter(|c| !existing.iter().any(|e| e.name == c.name))
            .map(|c| c.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(DriverError::data(format!(
                "table {:?} has no column {}; its columns are: {}",
                config.table,
                missing.join(", "),
                existing
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        None
    };
    // The destination's type of each column (for the casts out of staging).
    let dest_types: Vec<String> = columns
        .iter()
        .zip(&staging_types)
        .map(|(c, t)| {
            existing
                .iter()
                .find(|e| e.name == c.name)
                .map(|e| e.formatted.clone())
                .unwrap_or_else(|| c.create_type(t))
        })
        .collect();

    let transaction = client
        .transaction()
        .await
        .map_err(|e| classify(&e, "cannot start a transaction"))?;
    if let Some(ddl) = &create {
        transaction
            .batch_execute(ddl)
            .await
            .map_err(|e| classify(&e, "cannot create the destination table"))?;
        ctx.event(
            "ddl.create_table",
            object([("table", Value::String(config.table.clone()))]),
        );
    }
    let staging_defs: Vec<String> = columns
        .iter()
        .zip(&staging_types)
        .map(|(c, t)| format!("{} {t}", quote(&c.name)))
        .collect();
    transaction
        .batch_execute(&format!(
            "CREATE TEMPORARY TABLE osiris_staging ({}) ON COMMIT DROP",
            staging_defs.join(", ")
        ))
        .await
        .map_err(|e| classify(&e, "cannot create the staging table"))?;
    let names = columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let sink = transaction
        .copy_in::<_, Bytes>(&format!(
            "COPY osiris_staging ({names}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .map_err(|e| classify(&e, "cannot start COPY into the staging table"))?;
    futures::pin_mut!(sink);
    let mut header = BytesMut::with_capacity(19);
    header.put_slice(b"PGCOPY\n\xff\r\n\0");
    header.put_i32(0);
    header.put_i32(0);
    sink.send(header.freeze())
        .await
        .map_err(|e| classify(&e, "COPY into the staging table failed"))?;
    let mut row_number = 0u64;
    while let Some(batch) = reader.next_batch().await {
        ctx.check_cancelled()?;
        let batch = batch?;
        let mut out = BytesMut::with_capacity(batch.get_array_memory_size() + 64);
        let encoders: Vec<Encoder<'_>> = batch
            .columns()
            .iter()
            .map(Encoder::new)
            .collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            row_number += 1;
            out.put_i16(encoders.len() as i16);
            for (encoder, column) in encoders.iter().zip(columns) {
                encoder.write(row, &mut out).map_err(|message| {
                    DriverError::data(format!(
                        "row {row_number}, column {:?}: {message}",
                        column.name
                    ))
                })?;
            }
        }
        sink.send(out.freeze())
            .await
            .map_err(|e| classify(&e, "COPY into the staging table failed"))?;
    }
    sink.send(Bytes::from_static(&[0xff, 0xff]))
        .await
        .map_err(|e| classify(&e, "COPY into the staging table failed"))?;
    let staged = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| classify(&e, "COPY into the staging table failed"))?;
    ctx.check_cancelled()?;

    let values = columns
        .iter()
        .zip(&dest_types)
        .map(|(c, t)| format!("CAST(s.{} AS {t})", quote(&c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut apply = String::new();
    if config.mode == Mode::Replace {
        apply.push_str(&format!("TRUNCATE {target}; "));
    }
    apply.push_str(&format!(
        "INSERT INTO {target} ({names}) SELECT {values} FROM osiris_staging s"
    ));
    if config.mode == Mode::Upsert {
        let key_list = keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !keys.contains(&c.name))
            .map(|c| format!("{0} = EXCLUDED.{0}", quote(&c.name)))
            .collect();
        if updates.is_empty() {
            apply.push_str(&format!(" ON CONFLICT ({key_list}) DO NOTHING"));
        } else {
            apply.push_str(&format!(
                " ON CONFLICT ({key_list}) DO UPDATE SET {}",
                updates.join(", ")
            ));
        }
    }
    transaction
        .batch_execute(&apply)
        .await
        .map_err(|e| classify(&e, &format!("cannot write into {}", config.table)))?;
    ctx.check_cancelled()?;
    transaction
        .commit()
        .await
        .map_err(|e| classify(&e, "cannot commit the write"))?;
    Ok(staged)
}

/// Writes the values of one Arrow column in PostgreSQL's binary format.
enum Encoder<'a> {
    Bool(&'a BooleanArray),
    Int2(&'a Int16Array),
    Int4(&'a Int32Array),
    Int8(&'a Int64Array),
    Float4(&'a Float32Array),
    Float8(&'a Float64Array),
    Decimal(&'a Decimal128Array, i8),
    Text(&'a StringArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray),
    Interval(&'a IntervalMonthDayNanoArray),
    Bytea(&'a BinaryArray),
    List(&'a ListArray, Box<Encoder<'a>>, u32),
}

impl<'a> Encoder<'a> {
    fn new(array: &'a ArrayRef) -> Result<Self> {
        Self::of(array.as_ref())
    }

    fn of(array: &'a dyn Array) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Boolean => Encoder::Bool(array.as_boolean()),
            DataType::Int16 => Encoder::Int2(array.as_primitive()),
            DataType::Int32 => Encoder::Int4(array.as_primitive()),
            DataType::Int64 => Encoder::Int8(array.as_primitive()),
            DataType::Float32 => Encoder::Float4(array.as_primitive()),
            DataType::Float64 => Encoder::Float8(array.as_primitive()),
            DataType::Decimal128(_, s) => Encoder::Decimal(array.as_primitive(), *s),
            DataType::Utf8 => Encoder::Text(array.as_string()),
            DataType::Date32 => Encoder::Date(array.as_primitive()),
            DataType::Time64(TimeUnit::Microsecond) => Encoder::Time(array.as_primitive()),
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Encoder::Timestamp(array.as_primitive())
            }
            DataType::Interval(IntervalUnit::MonthDayNano) => {
                Encoder::Interval(array.as_primitive())
            }
            DataType::Binary => Encoder::Bytea(array.as_binary()),
            DataType::List(element) => {
                let list = array.as_list::<i32>();
                let (_, oid) = pg_type(element.data_type()).ok_or_else(|| {
                    DriverError::internal(format!("no PostgreSQL array of {}", element.data_type()))
                })?;
                Encoder::List(list, Box::new(Encoder::of(list.values().as_ref())?), oid)
            }
            other => {
                return Err(DriverError::internal(format!(
                    "no binary COPY encoding for Arrow {other}"
                )));
            }
        })
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Encoder::Bool(a) => a.is_null(row),
            Encoder::Int2(a) => a.is_null(row),
            Encoder::Int4(a) => a.is_null(row),
            Encoder::Int8(a) => a.is_null(row),
            Encoder::Float4(a) => a.is_null(row),
            Encoder::Float8(a) => a.is_null(row),
            Encoder::Decimal(a, _) => a.is_null(row),
            Encoder::Text(a) => a.is_null(row),
            Encoder::Date(a) => a.is_null(row),
            Encoder::Time(a) => a.is_null(row),
            Encoder::Timestamp(a) => a.is_null(row),
            Encoder::Interval(a) => a.is_null(row),
            Encoder::Bytea(a) => a.is_null(row),
            Encoder::List(a, ..) => a.is_null(row),
        }
    }

    /// Writes the length-prefixed value of `row` (length -1 for NULL).
    fn write(&self, row: usize, out: &mut BytesMut) -> std::result::Result<(), String> {
        if self.is_null(row) {
            out.put_i32(-1);
            return Ok(());
        }
        match self {
            Encoder::Bool(a) => {
                out.put_i32(1);
                out.put_u8(u8::from(a.value(row)));
            }
            Encoder::Int2(a) => {
                out.put_i32(2);
                out.put_i16(a.value(row));
            }
            Encoder::Int4(a) => {
                out.put_i32(4);
                out.put_i32(a.value(row));
            }
            Encoder::Int8(a) => {
                out.put_i32(8);
                out.put_i64(a.value(row));
            }
            Encoder::Float4(a) => {
                out.put_i32(4);
                out.put_f32(a.value(row));
            }
            Encoder::Float8(a) => {
                out.put_i32(8);
                out.put_f64(a.value(row));
            }
            Encoder::Decimal(a, scale) => encode_numeric(a.value(row), *scale, out),
            Encoder::Text(a) => put_bytes(out, a.value(row).as_bytes())?,
            Encoder::Bytea(a) => put_bytes(out, a.value(row))?,
            Encoder::Date(a) => {
                let days = a.value(row);
                out.put_i32(4);
                out.put_i32(match days {
                    i32::MAX => i32::MAX,
                    d if d == -i32::MAX => i32::MIN,
                    d => d.checked_sub(10_957).ok_or("date out of range")?,
                });
            }
            Encoder::Time(a) => {
                out.put_i32(8);
                out.put_i64(a.value(row));
            }
            Encoder::Timestamp(a) => {
                let micros = a.value(row);
                out.put_i32(8);
                out.put_i64(match micros {
                    i64::MAX => i64::MAX,
                    m if m == -i64::MAX => i64::MIN,
                    m => m
                        .checked_sub(946_684_800_000_000)
                        .ok_or("timestamp out of range")?,
                });
            }
            Encoder::Interval(a) => {
                let v = a.value(row);
                out.put_i32(16);
                out.put_i64(v.nanoseconds / 1000);
                out.put_i32(v.days);
                out.put_i32(v.months);
            }
            Encoder::List(a, elements, oid) => {
                let offsets = a.value_offsets();
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                let mut body = BytesMut::new();
                if start == end {
                    body.put_i32(0);
                    body.put_i32(0);
                    body.put_u32(*oid);
                } else {
                    let has_null = (start..end).any(|i| elements.is_null(i));
                    body.put_i32(1);
                    body.put_i32(i32::from(has_null));
                    body.put_u32(*oid);
                    body.put_i32((end - start) as i32);
                    body.put_i32(1);
                    for i in start..end {
                        elements.write(i, &mut body)?;
                    }
                }
                put_bytes(out, &body)?;
            }
        }
        Ok(())
    }
}

fn put_bytes(out: &mut BytesMut, value: &[u8]) -> std::result::Result<(), String> {
    let len = i32::try_from(value.len()).map_err(|_| "value larger than 2 GiB")?;
    out.put_i32(len);
    out.put_slice(value);
    Ok(())
}

/// Writes `value / 10^scale` as a length-prefixed binary numeric.
fn encode_numeric(value: i128, scale: i8, out: &mut BytesMut) {
    let scale = scale.max(0) as usize;
    let text = value.unsigned_abs().to_string();
    let (int_part, frac_part) = if text.len() > scale {
        text.split_at(text.len() - scale)
    } else {
        ("", text.as_str())
    };
    let frac = format!("{frac_part:0>scale$}");
    let int_pad = (4 - int_part.len() % 4) % 4;
    let int = format!("{}{int_part}", "0".repeat(int_pad));
    let frac_pad = (4 - frac.len() % 4) % 4;
    let frac = format!("{frac}{}", "0".repeat(frac_pad));
    let mut groups: Vec<u16> = int
        .as_bytes()
        .chunks(4)
        .chain(frac.as_bytes().chunks(4))
        .map(|c| {
            std::str::from_utf8(c)
                .expect("digits")
                .parse()
                .expect("digits")
        })
        .collect();
    let mut weight = (int.len() / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.put_i32(8 + 2 * groups.len() as i32);
    out.put_u16(groups.len() as u16);
    out.put_i16(weight);
    out.put_u16(if value < 0 && !groups.is_empty() {
        0x4000
    } else {
        0
    });
    out.put_u16(scale as u16);
    for g in groups {
        out.put_u16(g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(value: i128, scale: i8) -> i128 {
        let mut out = BytesMut::new();
        encode_numeric(value, scale, &mut out);
        crate::types::numeric_to_i128(&out[4..], scale).unwrap()
    }

    #[test]
    fn numerics_encode_exactly() {
        for (v, s) in [
            (0, 2),
            (1, 0),
            (-1, 4),
            (12_345_678, 3),
            (100_000_000, 0),
            (-99_999_999_999_999_999_999_999_999_999_999_999_999, 38),
            (99_999_999_999_999_999_999_999_999_999_999_999_999, 0),
            (5, 9),
        ] {
            assert_eq!(roundtrip(v, s), v, "{v} scale {s}");
        }
        let mut out = BytesMut::new();
        encode_numeric(-12_345_678, 3, &mut out);
        assert_eq!(
            crate::types::numeric_to_string(&out[4..]).unwrap(),
            "-12345.678"
        );
    }
}
