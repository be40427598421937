//! Result rows framed for the wire (DataRow bodies or COPY lines), written column by column
//! straight from DuckDB's Arrow chunks into one reused buffer (ADR 0038).
//!
//! Every row of a chunk is written into the same growing `BytesMut` and split off as its own
//! message (the messages share the allocation), so a row costs no allocation and no boxed
//! value. Numbers, dates and timestamps are formatted by hand with the exact text the `Value`
//! path ([`crate::handler::encode`], pgwire's `ToSqlText`/`ToSql`) gives; column types without a
//! fast path (lists, structs, intervals, ...) go through that path cell by cell, so both write
//! the same bytes and the framing (lengths, COPY escapes, CSV quotes) lives here only.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate};
use duckdb::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Decimal128Array, GenericByteArray,
    LargeBinaryArray, PrimitiveArray, StringViewArray,
};
use duckdb::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, LargeUtf8Type, Time64MicrosecondType, TimeUnit as ArrowUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type, Utf8Type,
};
use duckdb::types::TimeUnit;
use pgwire::api::Type;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql};

use crate::backend::error;
use crate::handler::{FieldSink, user_error};
use crate::numeric::Numeric;

/// How rows are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// DataRow messages; each field text or binary as its column says.
    DataRow,
    /// `COPY ... TO STDOUT`: tab-separated, backslash escapes, `\N` for NULL.
    CopyText,
    /// `COPY ... TO STDOUT (FORMAT csv)`: comma-separated, quoted where needed, NULL empty.
    CopyCsv,
    /// `COPY ... TO STDOUT (FORMAT binary)`: the PGCOPY header, then binary tuples.
    CopyBinary,
}

/// A protocol message holding one encoded row.
pub trait WireRow: Send + 'static {
    /// The message for a row body of `fields` fields.
    fn from_body(body: BytesMut, fields: i16) -> Self;
}

impl WireRow for DataRow {
    fn from_body(data: BytesMut, field_count: i16) -> Self {
        DataRow::new(data, field_count)
    }
}

impl WireRow for CopyData {
    fn from_body(body: BytesMut, _: i16) -> Self {
        CopyData::new(body.freeze())
    }
}

/// New buffer space is taken in blocks of this size; rows share a block.
const BLOCK: usize = 256 * 1024;

/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's binary epoch).
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Writes rows of one result into messages of type `M`.
pub struct RowWriter<M> {
    layout: Layout,
    /// Per column: binary or text.
    binary: Vec<bool>,
    types: Vec<Type>,
    buf: BytesMut,
    rows: Vec<M>,
    /// Cells written in the current row.
    cell: usize,
    header_written: bool,
    options: FormatOptions,
}

impl<M: WireRow> RowWriter<M> {
    /// A writer for rows with these fields.
    pub fn new(fields: &[FieldInfo], layout: Layout) -> Self {
        let binary = fields
            .iter()
            .map(|f| match layout {
                Layout::DataRow => f.format() == FieldFormat::Binary,
                Layout::CopyBinary => true,
                Layout::CopyText | Layout::CopyCsv => false,
            })
            .collect();
        Self {
            layout,
            binary,
            types: fields.iter().map(|f| f.datatype().clone()).collect(),
            buf: BytesMut::with_capacity(BLOCK),
            rows: Vec::new(),
            cell: 0,
            header_written: false,
            options: FormatOptions::default(),
        }
    }

    /// The rows written since the last call.
    pub fn take_rows(&mut self) -> Vec<M> {
        std::mem::take(&mut self.rows)
    }

    /// Ends the rows: a binary COPY of no rows still starts with its header.
    pub fn finish(&mut self) {
        if self.layout == Layout::CopyBinary && !self.header_written {
            self.start_row();
            // start_row wrote the header and a tuple's field count: keep the header only.
            self.buf.truncate(self.buf.len() - 2);
            let header = self.buf.split();
            self.rows.push(M::from_body(header, 0));
        }
    }

    /// Number of rows waiting in [`Self::take_rows`].
    pub fn pending(&self) -> usize {
        self.rows.len()
    }

    fn start_row(&mut self) {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(BLOCK);
        }
        if self.layout == Layout::CopyBinary {
            if !self.header_written {
                self.buf.put_slice(b"PGCOPY\n\xFF\r\n\x00");
                self.buf.put_i32(0);
                self.buf.put_i32(0);
                self.header_written = true;
            }
            self.buf.put_i16(self.types.len() as i16);
        }
        self.cell = 0;
    }

    fn finish_row(&mut self) {
        if matches!(self.layout, Layout::CopyText | Layout::CopyCsv) {
            self.buf.put_u8(b'\n');
        }
        let body = self.buf.split();
        self.rows.push(M::from_body(body, self.types.len() as i16));
    }

    /// Starts a cell: the delimiter or the length placeholder; the offset its value starts at.
    fn begin_cell(&mut self) -> usize {
        match self.layout {
            Layout::DataRow | Layout::CopyBinary => {
                self.buf.put_i32(-1);
            }
            Layout::CopyText if self.cell > 0 => self.buf.put_u8(b'\t'),
            Layout::CopyCsv if self.cell > 0 => self.buf.put_u8(b','),
            Layout::CopyText | Layout::CopyCsv => {}
        }
        self.buf.len()
    }

    /// Ends a cell whose value was written from `start`; `plain` promises that the value holds
    /// no byte COPY would escape or quote.
    fn end_cell(&mut self, start: usize, plain: bool) {
        match self.layout {
            Layout::DataRow | Layout::CopyBinary => {
                let len = (self.buf.len() - start) as i32;
                self.buf[start - 4..start].copy_from_slice(&len.to_be_bytes());
            }
            Layout::CopyText if !plain => {
                let special = |b: &u8| matches!(b, b'\n' | b'\r' | b'\t' | b'\\');
                if self.buf[start..].iter().any(special) {
                    let raw = self.buf.split_off(start);
                    for &b in raw.iter() {
                        match b {
                            b'\n' => self.buf.put_slice(b"\\n"),
                            b'\r' => self.buf.put_slice(b"\\r"),
                            b'\t' => self.buf.put_slice(b"\\t"),
                            b'\\' => self.buf.put_slice(b"\\\\"),
                            b => self.buf.put_u8(b),
                        }
                    }
                }
            }
            Layout::CopyCsv if !plain => {
                let special = |b: &u8| matches!(b, b',' | b'"' | b'\n' | b'\r');
                if self.buf[start..].iter().any(special) {
                    let raw = self.buf.split_off(start);
                    self.buf.put_u8(b'"');
                    for &b in raw.iter() {
                        if b == b'"' {
                            self.buf.put_u8(b);
                        }
                        self.buf.put_u8(b);
                    }
                    self.buf.put_u8(b'"');
                }
            }
            Layout::CopyText | Layout::CopyCsv => {}
        }
        self.cell += 1;
    }

    fn null_cell(&mut self) {
        match self.layout {
            Layout::DataRow | Layout::CopyBinary => self.buf.put_i32(-1),
            Layout::CopyText => {
                if self.cell > 0 {
                    self.buf.put_u8(b'\t');
                }
                self.buf.put_slice(b"\\N");
            }
            Layout::CopyCsv => {
                if self.cell > 0 {
                    self.buf.put_u8(b',');
                }
            }
        }
        self.cell += 1;
    }

    /// Writes one row of `Value`s (catalog answers, column types without a fast path).
    pub fn value_row(&mut self, values: Vec<duckdb::types::Value>) -> PgWireResult<()> {
        self.start_row();
        for (i, value) in values.into_iter().enumerate() {
            let ty = self.types[i].clone();
            crate::handler::encode(self, &ty, value)?;
        }
        self.finish_row();
        Ok(())
    }

    /// Writes every row of a DuckDB chunk; `false` when a column has no fast path (then
    /// nothing was written and the chunk must go through [`Self::value_row`]).
    pub fn chunk(&mut self, columns: &[ArrayRef]) -> PgWireResult<bool> {
        let Some(cols) = columns
            .iter()
            .zip(&self.types)
            .map(|(a, t)| Col::of(a.as_ref(), t))
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(false);
        };
        let rows = columns.first().map_or(0, |a| a.len());
        let mut scratch = String::new();
        for row in 0..rows {
            self.start_row();
            for (i, col) in cols.iter().enumerate() {
                if col.array.is_null(row) {
                    self.null_cell();
                    continue;
                }
                let start = self.begin_cell();
                let plain = if self.binary[i] {
                    col.binary(row, &mut self.buf, &mut scratch)
                } else {
                    col.text(row, &mut self.buf, &self.options)
                }
                .map_err(|e| {
                    user_error(error(
                        "XX000",
                        format!("cannot send a value as {}: {e}", self.types[i].name()),
                    ))
                })?;
                self.end_cell(start, plain);
            }
            self.finish_row();
        }
        Ok(true)
    }
}

impl<M: WireRow> FieldSink for RowWriter<M> {
    fn field<T: ToSql + ToSqlText + Sized>(&mut self, value: &T) -> PgWireResult<()> {
        let ty = self.types[self.cell].clone();
        let start = self.begin_cell();
        let written = if self.binary[self.cell] {
            value.to_sql(&ty, &mut self.buf)
        } else {
            value.to_sql_text(&ty, &mut self.buf, &self.options)
        };
        match written {
            Ok(IsNull::No) => {
                self.end_cell(start, false);
                Ok(())
            }
            Ok(IsNull::Yes) => {
                // Undo the cell's start; write it as NULL.
                let prefix = match self.layout {
                    Layout::DataRow | Layout::CopyBinary => 4,
                    Layout::CopyText | Layout::CopyCsv => usize::from(self.cell > 0),
                };
                self.buf.truncate(start - prefix);
                self.null_cell();
                Ok(())
            }
            Err(e) => Err(user_error(error(
                "XX000",
                format!("cannot send a value as {}: {e}", ty.name()),
            ))),
        }
    }
}

/// Whether columns of this DuckDB type sent as `ty` are written by [`RowWriter::chunk`].
pub fn has_fast_path(data_type: &DataType, ty: &Type) -> bool {
    let empty = duckdb::arrow::array::new_empty_array(data_type);
    Col::of(empty.as_ref(), ty).is_some()
}

/// A column of a chunk, typed once per chunk.
struct Col<'a> {
    array: &'a dyn Array,
    values: Values<'a>,
}

enum Values<'a> {
    Bool(&'a BooleanArray),
    /// An integer column sent as int2/int4/int8 (`width` bytes in binary).
    Int(Ints<'a>, usize),
    /// UBIGINT, DECIMAL and HUGEINT: numeric; `scale` digits after the point.
    Unsigned(&'a [u64]),
    Decimal(&'a [i128], u32),
    F32(&'a [f32]),
    F64(&'a [f64]),
    Utf8(&'a GenericByteArray<Utf8Type>),
    /// A DuckDB `UUID` (its canonical text) sent as uuid.
    Uuid(&'a GenericByteArray<Utf8Type>),
    LargeUtf8(&'a GenericByteArray<LargeUtf8Type>),
    Utf8View(&'a StringViewArray),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    Date(&'a [i32]),
    /// Timestamps in `unit`; with time zone when `tz`.
    Timestamp(&'a [i64], TimeUnit, bool),
    Time(&'a [i64]),
}

enum Ints<'a> {
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
}

impl Ints<'_> {
    #[inline]
    fn get(&self, i: usize) -> i64 {
        match self {
            Ints::I8(v) => v[i].into(),
            Ints::I16(v) => v[i].into(),
            Ints::I32(v) => v[i].into(),
            Ints::I64(v) => v[i],
            Ints::U8(v) => v[i].into(),
            Ints::U16(v) => v[i].into(),
            Ints::U32(v) => v[i].into(),
        }
    }
}

fn prim<T: ArrowPrimitiveType>(a: &dyn Array) -> &[T::Native] {
    let array: &PrimitiveArray<T> = a.as_primitive();
    array.values()
}

type Res = Result<bool, Box<dyn Error + Sync + Send>>;

impl<'a> Col<'a> {
    /// The fast path for a column of this Arrow type sent as `ty`, if there is one. The pairs
    /// are the ones `backend::pg_type` makes.
    fn of(a: &'a dyn Array, ty: &Type) -> Option<Self> {
        let int = |ints, width| Some(Values::Int(ints, width));
        let values = match (a.data_type(), ty) {
            (DataType::Boolean, &Type::BOOL) => Some(Values::Bool(a.as_boolean())),
            (DataType::Int8, &Type::INT2) => int(Ints::I8(prim::<Int8Type>(a)), 2),
            (DataType::Int16, &Type::INT2) => int(Ints::I16(prim::<Int16Type>(a)), 2),
            (DataType::UInt8, &Type::INT2) => int(Ints::U8(prim::<UInt8Type>(a)), 2),
            (DataType::Int32, &Type::INT4) => int(Ints::I32(prim::<Int32Type>(a)), 4),
            (DataType::UInt16, &Type::INT4) => int(Ints::U16(prim::<UInt16Type>(a)), 4),
            (DataType::Int64, &Type::INT8) => int(Ints::I64(prim::<Int64Type>(a)), 8),
            (DataType::UInt32, &Type::INT8) => int(Ints::U32(prim::<UInt32Type>(a)), 8),
            (DataType::UInt64, &Type::NUMERIC) => Some(Values::Unsigned(prim::<UInt64Type>(a))),
            (DataType::Decimal128(_, scale), &Type::NUMERIC) if *scale >= 0 => {
                let array: &Decimal128Array = a.as_primitive();
                Some(Values::Decimal(array.values(), u32::try_from(*scale).ok()?))
            }
            (DataType::Float32, &Type::FLOAT4) => Some(Values::F32(prim::<Float32Type>(a))),
            (DataType::Float64, &Type::FLOAT8) => Some(Values::F64(prim::<Float64Type>(a))),
            (DataType::Utf8, &Type::TEXT) => Some(Values::Utf8(a.as_string::<i32>())),
            (DataType::Utf8, &Type::UUID) => Some(Values::Uuid(a.as_string::<i32>())),
            (DataType::LargeUtf8, &Type::TEXT) => Some(Values::LargeUtf8(a.as_string::<i64>())),
            (DataType::Utf8View, &Type::TEXT) => Some(Values::Utf8View(a.as_string_view())),
            (DataType::Binary, &Type::BYTEA) => Some(Values::Binary(a.as_binary::<i32>())),
            (DataType::LargeBinary, &Type::BYTEA) => {
                Some(Values::LargeBinary(a.as_binary::<i64>()))
            }
            (DataType::Date32, &Type::DATE) => Some(Values::Date(prim::<Date32Type>(a))),
            (DataType::Timestamp(unit, tz), &Type::TIMESTAMP | &Type::TIMESTAMPTZ) => {
                if tz.is_some() != (*ty == Type::TIMESTAMPTZ) {
                    return None;
                }
                let (values, unit) = match unit {
                    ArrowUnit::Second => (prim::<TimestampSecondType>(a), TimeUnit::Second),
                    ArrowUnit::Millisecond => {
                        (prim::<TimestampMillisecondType>(a), TimeUnit::Millisecond)
                    }
                    ArrowUnit::Microsecond => {
                        (prim::<TimestampMicrosecondType>(a), TimeUnit::Microsecond)
                    }
                    ArrowUnit::Nanosecond => {
                        (prim::<TimestampNanosecondType>(a), TimeUnit::Nanosecond)
                    }
                };
                Some(Values::Timestamp(values, unit, tz.is_some()))
            }
            (DataType::Time64(ArrowUnit::Microsecond), &Type::TIME) => {
                Some(Values::Time(prim::<Time64MicrosecondType>(a)))
            }
            _ => None,
        }?;
        Some(Self { array: a, values })
    }

    /// Writes row `i` as text; `Ok(true)` when it needs no COPY escaping.
    #[inline]
    fn text(&self, i: usize, out: &mut BytesMut, options: &FormatOptions) -> Res {
        match &self.values {
            Values::Bool(a) => out.put_u8(if a.value(i) { b't' } else { b'f' }),
            Values::Int(v, _) => out.put_slice(itoa::Buffer::new().format(v.get(i)).as_bytes()),
            Values::Unsigned(v) => out.put_slice(itoa::Buffer::new().format(v[i]).as_bytes()),
            Values::Decimal(v, scale) => decimal_text(v[i], *scale, out),
            Values::F32(v) => {
                v[i].to_sql_text(&Type::FLOAT4, out, options)?;
            }
            Values::F64(v) => {
                v[i].to_sql_text(&Type::FLOAT8, out, options)?;
            }
            Values::Utf8(a) => {
                out.put_slice(a.value(i).as_bytes());
                return Ok(false);
            }
            // Hex digits and dashes: nothing to escape.
            Values::Uuid(a) => out.put_slice(a.value(i).as_bytes()),
            Values::LargeUtf8(a) => {
                out.put_slice(a.value(i).as_bytes());
                return Ok(false);
            }
            Values::Utf8View(a) => {
                out.put_slice(a.value(i).as_bytes());
                return Ok(false);
            }
            Values::Binary(a) => {
                hex_text(a.value(i), out);
                return Ok(false);
            }
            Values::LargeBinary(a) => {
                hex_text(a.value(i), out);
                return Ok(false);
            }
            Values::Date(v) => date_text(i64::from(v[i]), out)?,
            Values::Timestamp(v, unit, tz) => {
                let micros = unit.to_micros(v[i]);
                let days = micros.div_euclid(MICROS_PER_DAY);
                date_text(days, out)?;
                out.put_u8(b' ');
                time_text(micros.rem_euclid(MICROS_PER_DAY), out);
                if *tz {
                    out.put_slice(b"+00");
                }
            }
            Values::Time(v) => {
                if !(0..MICROS_PER_DAY).contains(&v[i]) {
                    return Err(format!("{} is not a time of day", v[i]).into());
                }
                time_text(v[i], out);
            }
        }
        Ok(true)
    }

    /// Writes row `i` in PostgreSQL's binary format.
    #[inline]
    fn binary(&self, i: usize, out: &mut BytesMut, scratch: &mut String) -> Res {
        match &self.values {
            Values::Bool(a) => out.put_u8(u8::from(a.value(i))),
            Values::Int(v, 2) => out.put_i16(v.get(i) as i16),
            Values::Int(v, 4) => out.put_i32(v.get(i) as i32),
            Values::Int(v, _) => out.put_i64(v.get(i)),
            Values::Unsigned(v) => {
                scratch.clear();
                scratch.push_str(itoa::Buffer::new().format(v[i]));
                numeric_binary(scratch, out)?;
            }
            Values::Decimal(v, scale) => {
                let mut text = BytesMut::new();
                decimal_text(v[i], *scale, &mut text);
                scratch.clear();
                scratch.push_str(std::str::from_utf8(&text)?);
                numeric_binary(scratch, out)?;
            }
            Values::F32(v) => out.put_f32(v[i]),
            Values::F64(v) => out.put_f64(v[i]),
            Values::Utf8(a) => out.put_slice(a.value(i).as_bytes()),
            Values::Uuid(a) => crate::uuid::uuid_binary(a.value(i), out)?,
            Values::LargeUtf8(a) => out.put_slice(a.value(i).as_bytes()),
            Values::Utf8View(a) => out.put_slice(a.value(i).as_bytes()),
            Values::Binary(a) => out.put_slice(a.value(i)),
            Values::LargeBinary(a) => out.put_slice(a.value(i)),
            Values::Date(v) => {
                let days = i64::from(v[i]) - PG_EPOCH_DAYS;
                out.put_i32(i32::try_from(days).map_err(|_| "date out of range")?);
            }
            Values::Timestamp(v, unit, _) => {
                let micros = unit.to_micros(v[i]);
                // The same range the text form (and chrono) accepts.
                DateTime::from_timestamp_micros(micros).ok_or("timestamp out of range")?;
                out.put_i64(micros - PG_EPOCH_DAYS * MICROS_PER_DAY);
            }
            Values::Time(v) => {
                if !(0..MICROS_PER_DAY).contains(&v[i]) {
                    return Err(format!("{} is not a time of day", v[i]).into());
                }
                out.put_i64(v[i]);
            }
        }
        Ok(true)
    }
}

fn numeric_binary(text: &str, out: &mut BytesMut) -> Result<(), Box<dyn Error + Sync + Send>> {
    Numeric(text.to_owned()).to_sql(&Type::NUMERIC, out)?;
    Ok(())
}

/// `value / 10^scale` with exactly `scale` digits after the point (rust_decimal's display).
fn decimal_text(value: i128, scale: u32, out: &mut BytesMut) {
    if value < 0 {
        out.put_u8(b'-');
    }
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(value.unsigned_abs()).as_bytes();
    let scale = scale as usize;
    if scale == 0 {
        out.put_slice(digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.put_slice(int);
        out.put_u8(b'.');
        out.put_slice(frac);
    } else {
        out.put_slice(b"0.");
        out.put_bytes(b'0', scale - digits.len());
        out.put_slice(digits);
    }
}

/// `\x` and lowercase hex digits, as pgwire's bytea text.
fn hex_text(bytes: &[u8], out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 + bytes.len() * 2);
    out.put_slice(b"\\x");
    for b in bytes {
        out.put_u8(HEX[usize::from(b >> 4)]);
        out.put_u8(HEX[usize::from(b & 15)]);
    }
}

fn two(n: u32, out: &mut BytesMut) {
    out.put_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
}

/// `YYYY-MM-DD` for days since 1970-01-01, as chrono's `%Y-%m-%d`.
fn date_text(days: i64, out: &mut BytesMut) -> Result<(), Box<dyn Error + Sync + Send>> {
    let (y, m, d) = execution_context::calendar::civil_from_days(days);
    if (0..=9999).contains(&y) {
        let y = y as u32;
        two(y / 100, out);
        two(y % 100, out);
        out.put_u8(b'-');
        two(m, out);
        out.put_u8(b'-');
        two(d, out);
        return Ok(());
    }
    // Years chrono writes with a sign.
    let date = NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|e| e.checked_add_signed(chrono::Duration::days(days)))
        .ok_or("date out of range")?;
    use std::fmt::Write;
    write!(out, "{}", date.format("%Y-%m-%d"))?;
    Ok(())
}

/// `HH:MM:SS.ffffff` for microseconds since midnight, as chrono's `%H:%M:%S%.6f`.
fn time_text(micros: i64, out: &mut BytesMut) {
    let secs = (micros / 1_000_000) as u32;
    let frac = (micros % 1_000_000) as u32;
    two(secs / 3600, out);
    out.put_u8(b':');
    two(secs / 60 % 60, out);
    out.put_u8(b':');
    two(secs % 60, out);
    out.put_u8(b'.');
    let mut digits = [b'0'; 6];
    let mut f = frac;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (f % 10) as u8;
        f /= 10;
    }
    out.put_slice(&digits);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use duckdb::arrow::array::{
        Date32Array, Float64Array, Int32Array, Int64Array, StringArray, Time64MicrosecondArray,
        TimestampMicrosecondArray,
    };
    use duckdb::types::Value;
    use pgwire::api::results::FieldFormat;

    fn fields(types: &[Type], format: FieldFormat) -> Vec<FieldInfo> {
        types
            .iter()
            .enumerate()
            .map(|(i, t)| FieldInfo::new(format!("c{i}"), None, None, t.clone(), format))
            .collect()
    }

    /// The bytes of every row, through the fast path and through the `Value` path.
    fn both(
        types: &[Type],
        columns: Vec<ArrayRef>,
        values: Vec<Vec<Value>>,
        layout: Layout,
        format: FieldFormat,
    ) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let f = fields(types, format);
        let mut fast = RowWriter::<CopyData>::new(&f, layout);
        assert!(fast.chunk(&columns).unwrap(), "a fast path for {types:?}");
        let mut slow = RowWriter::<CopyData>::new(&f, layout);
        for row in values {
            slow.value_row(row).unwrap();
        }
        let bytes = |w: &mut RowWriter<CopyData>| {
            w.take_rows()
                .into_iter()
                .map(|m| m.data.to_vec())
                .collect::<Vec<_>>()
        };
        (bytes(&mut fast), bytes(&mut slow))
    }

    #[test]
    fn fast_path_writes_the_bytes_the_value_path_writes() {
        let types = [
            Type::INT8,
            Type::INT4,
            Type::NUMERIC,
            Type::FLOAT8,
            Type::TEXT,
            Type::DATE,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ,
            Type::TIME,
            Type::BOOL,
        ];
        let ts = [1_704_067_201_000_001_i64, -62_135_596_800_000_000, 0];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(-5), None, Some(i64::MAX)])),
            Arc::new(Int32Array::from(vec![7, i32::MIN, 0])),
            Arc::new(
                Decimal128Array::from(vec![12050, -5, 0])
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
            ),
            Arc::new(Float64Array::from(vec![1.5, 0.1, f64::NAN])),
            Arc::new(StringArray::from(vec![
                Some("a\tb\\c\nd"),
                Some("Globex, \"Inc\""),
                None,
            ])),
            Arc::new(Date32Array::from(vec![19_723, -719_162, 2_932_896])),
            Arc::new(TimestampMicrosecondArray::from(ts.to_vec())),
            Arc::new(TimestampMicrosecondArray::from(ts.to_vec()).with_timezone("UTC")),
            Arc::new(Time64MicrosecondArray::from(vec![
                0,
                3_723_500_000,
                86_399_999_999,
            ])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ];
        let values = (0..3)
            .map(|r| {
                columns
                    .iter()
                    .map(|c| {
                        if c.is_null(r) {
                            return Value::Null;
                        }
                        match c.data_type() {
                            DataType::Int64 => {
                                Value::BigInt(c.as_primitive::<Int64Type>().value(r))
                            }
                            DataType::Int32 => Value::Int(c.as_primitive::<Int32Type>().value(r)),
                            DataType::Decimal128(..) => Value::Decimal(
                                duckdb::types::Decimal::new(
                                    12,
                                    2,
                                    c.as_primitive::<duckdb::arrow::datatypes::Decimal128Type>()
                                        .value(r),
                                )
                                .unwrap(),
                            ),
                            DataType::Float64 => {
                                Value::Double(c.as_primitive::<Float64Type>().value(r))
                            }
                            DataType::Utf8 => Value::Text(c.as_string::<i32>().value(r).into()),
                            DataType::Date32 => {
                                Value::Date32(c.as_primitive::<Date32Type>().value(r))
                            }
                            DataType::Timestamp(..) => Value::Timestamp(
                                TimeUnit::Microsecond,
                                c.as_primitive::<TimestampMicrosecondType>().value(r),
                            ),
                            DataType::Time64(_) => Value::Time64(
                                TimeUnit::Microsecond,
                                c.as_primitive::<Time64MicrosecondType>().value(r),
                            ),
                            DataType::Boolean => Value::Boolean(c.as_boolean().value(r)),
                            t => panic!("{t}"),
                        }
                    })
                    .collect()
            })
            .collect::<Vec<Vec<Value>>>();
        for (layout, format) in [
            (Layout::DataRow, FieldFormat::Text),
            (Layout::DataRow, FieldFormat::Binary),
            (Layout::CopyText, FieldFormat::Text),
            (Layout::CopyCsv, FieldFormat::Text),
            (Layout::CopyBinary, FieldFormat::Binary),
        ] {
            let (fast, slow) = both(&types, columns.clone(), values.clone(), layout, format);
            assert_eq!(fast, slow, "{layout:?} {format:?}");
        }
        // And the text is PostgreSQL's.
        let (fast, _) = both(&types, columns, values, Layout::CopyCsv, FieldFormat::Text);
        assert_eq!(
            String::from_utf8(fast[0].clone()).unwrap(),
            "-5,7,120.50,1.5,\"a\tb\\c\nd\",2024-01-01,2024-01-01 00:00:01.000001,\
             2024-01-01 00:00:01.000001+00,00:00:00.000000,t\n"
        );
        assert!(String::from_utf8(fast[1].clone()).unwrap().starts_with(
            ",-2147483648,-0.05,0.1,\"Globex, \"\"Inc\"\"\",0001-01-01,0001-01-01 00:00:00.000000,"
        ));
    }

    #[test]
    fn uuids_are_their_text_or_their_sixteen_bytes_on_both_paths() {
        let text = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        let columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![Some(text), None]))];
        let values = vec![vec![Value::Text(text.into())], vec![Value::Null]];
        for (layout, format) in [
            (Layout::DataRow, FieldFormat::Text),
            (Layout::DataRow, FieldFormat::Binary),
            (Layout::CopyText, FieldFormat::Text),
            (Layout::CopyBinary, FieldFormat::Binary),
        ] {
            let (fast, slow) = both(
                &[Type::UUID],
                columns.clone(),
                values.clone(),
                layout,
                format,
            );
            assert_eq!(fast, slow, "{layout:?} {format:?}");
        }
        let (text_rows, _) = both(
            &[Type::UUID],
            columns.clone(),
            values.clone(),
            Layout::CopyText,
            FieldFormat::Text,
        );
        assert_eq!(text_rows[0], format!("{text}\n").into_bytes());
        let (binary_rows, _) = both(
            &[Type::UUID],
            columns,
            values,
            Layout::DataRow,
            FieldFormat::Binary,
        );
        assert!(binary_rows[0].ends_with(&execution_context::uuid::parse(text).unwrap()));
    }

    #[test]
    fn a_binary_copy_of_no_rows_still_has_its_header() {
        let f = fields(&[Type::INT4], FieldFormat::Binary);
        let mut w = RowWriter::<CopyData>::new(&f, Layout::CopyBinary);
        w.finish();
        let rows: Vec<_> = w.take_rows().into_iter().map(|m| m.data.to_vec()).collect();
        assert_eq!(rows, [b"PGCOPY\n\xFF\r\n\x00\0\0\0\0\0\0\0\0".to_vec()]);
        // With rows, the header comes once, before the first.
        let mut w = RowWriter::<CopyData>::new(&f, Layout::CopyBinary);
        let columns: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(vec![7, 8]))];
        assert!(w.chunk(&columns).unwrap());
        w.finish();
        let rows: Vec<_> = w.take_rows().into_iter().map(|m| m.data.to_vec()).collect();
        assert_eq!(rows.len(), 2);
        assert!(
            rows[0].starts_with(b"PGCOPY") && rows[0].ends_with(&[0, 1, 0, 0, 0, 4, 0, 0, 0, 7])
        );
        assert_eq!(rows[1], [0, 1, 0, 0, 0, 4, 0, 0, 0, 8]);
    }

    #[test]
    fn copy_text_escapes_what_postgres_escapes() {
        let f = fields(&[Type::TEXT, Type::INT4], FieldFormat::Text);
        let mut w = RowWriter::<CopyData>::new(&f, Layout::CopyText);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("a\tb\\c\nd"), None])),
            Arc::new(Int32Array::from(vec![None, Some(3)])),
        ];
        assert!(w.chunk(&columns).unwrap());
        let rows: Vec<_> = w.take_rows().into_iter().map(|m| m.data.to_vec()).collect();
        assert_eq!(rows[0], b"a\\tb\\\\c\\nd\t\\N\n");
        assert_eq!(rows[1], b"\\N\t3\n");
    }
}
