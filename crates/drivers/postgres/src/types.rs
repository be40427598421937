//! PostgreSQL binary values into Arrow: the [`Kind`] of a result column (chosen from its type
//! and type modifier, never from values) and the column builders that decode the binary COPY
//! format straight into Arrow arrays.

use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, IntervalMonthDayNanoBuilder, ListArray, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, IntervalMonthDayNano, IntervalUnit, TimeUnit};
use pg_support::tokio_postgres::types::{Kind as PgKind, Type};

/// Days from 1970-01-01 to PostgreSQL's epoch 2000-01-01.
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to PostgreSQL's epoch 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How a result column is decoded and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// boolean -> Boolean.
    Bool,
    /// smallint -> Int16.
    Int2,
    /// integer -> Int32.
    Int4,
    /// bigint -> Int64.
    Int8,
    /// oid -> Int64.
    Oid,
    /// real -> Float32.
    Float4,
    /// double precision -> Float64.
    Float8,
    /// numeric(p,s), p <= 38, s >= 0 -> Decimal128(p,s).
    Decimal(u8, i8),
    /// numeric without a declared precision, or p > 38 -> the exact text.
    NumericText,
    /// text, varchar, char(n), name, enums, and types read as text -> Utf8.
    Text,
    /// json -> Utf8 marked JSON.
    Json,
    /// jsonb -> Utf8 marked JSON.
    Jsonb,
    /// bytea -> Binary.
    Bytea,
    /// date -> Date32 (infinity kept as DuckDB's infinity).
    Date,
    /// time -> Time64(us).
    Time,
    /// timestamp -> Timestamp(us).
    Timestamp,
    /// timestamptz -> Timestamp(us, UTC).
    TimestampTz,
    /// interval -> Interval(MonthDayNano).
    Interval,
    /// uuid -> FixedSizeBinary(16) marked `arrow.uuid` (DuckDB `UUID`; ADR 0041).
    Uuid,
    /// A one-dimensional array of a supported element type -> List.
    List(Box<Kind>),
}

impl Kind {
    /// The kind of a column of type `ty` with type modifier `typmod` (-1 when unknown);
    /// `None` for a type read as text (the query casts it to `text`).
    pub fn of(ty: &Type, typmod: i32) -> Option<Kind> {
        let kind = match ty.oid() {
            16 => Kind::Bool,
            21 => Kind::Int2,
            23 => Kind::Int4,
            20 => Kind::Int8,
            26 => Kind::Oid,
            700 => Kind::Float4,
            701 => Kind::Float8,
            1700 => numeric(typmod),
            25 | 1043 | 1042 | 19 => Kind::Text,
            114 => Kind::Json,
            3802 => Kind::Jsonb,
            17 => Kind::Bytea,
            1082 => Kind::Date,
            1083 => Kind::Time,
            1114 => Kind::Timestamp,
            1184 => Kind::TimestampTz,
            1186 => Kind::Interval,
            2950 => Kind::Uuid,
            _ => match ty.kind() {
                PgKind::Enum(_) => Kind::Text,
                PgKind::Domain(base) => return Kind::of(base, typmod),
                PgKind::Array(element) => match Kind::of(element, typmod)? {
                    Kind::List(_) => return None,
                    element => Kind::List(Box::new(element)),
                },
                _ => return None,
            },
        };
        Some(kind)
    }

    /// The Arrow type of the column.
    pub fn data_type(&self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int2 => DataType::Int16,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 | Kind::Oid => DataType::Int64,
            Kind::Float4 => DataType::Float32,
            Kind::Float8 => DataType::Float64,
            Kind::Decimal(p, s) => DataType::Decimal128(*p, *s),
            Kind::NumericText | Kind::Text | Kind::Json | Kind::Jsonb => DataType::Utf8,
            Kind::Uuid => DataType::FixedSizeBinary(16),
            Kind::Bytea => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            Kind::List(element) => DataType::List(element_field(element)),
        }
    }

    /// The Arrow field of a column named `name`.
    pub fn field(&self, name: &str) -> Field {
        match self {
            Kind::Json | Kind::Jsonb => driver_api::json_field(name),
            Kind::Uuid => driver_api::uuid_field(name),
            other => Field::new(name, other.data_type(), true),
        }
    }
}

fn element_field(element: &Kind) -> FieldRef {
    Arc::new(match element {
        // JSON elements stay plain text (VARCHAR[]); uuid elements keep their extension.
        Kind::Uuid => driver_api::uuid_field("item"),
        other => Field::new("item", other.data_type(), true),
    })
}

/// numeric(p,s) from its type modifier.
fn numeric(typmod: i32) -> Kind {
    if typmod < 4 {
        return Kind::NumericText;
    }
    let m = typmod - 4;
    let precision = (m >> 16) & 0xffff;
    let scale = (m & 0xffff) as i16;
    if precision <= 38 && (0..=precision as i16).contains(&scale) {
        Kind::Decimal(precision as u8, scale as i8)
    } else {
        Kind::NumericText
    }
}

/// An Arrow builder for one column.
pub enum Column {
    /// boolean.
    Bool(BooleanBuilder),
    /// smallint.
    Int2(Int16Builder),
    /// integer.
    Int4(Int32Builder),
    /// bigint.
    Int8(Int64Builder),
    /// oid.
    Oid(Int64Builder),
    /// real.
    Float4(Float32Builder),
    /// double precision.
    Float8(Float64Builder),
    /// numeric(p,s) with its scale.
    Decimal(Decimal128Builder, i8),
    /// numeric as text.
    NumericText(StringBuilder),
    /// text-like.
    Text(StringBuilder),
    /// jsonb (a version byte, then the text).
    Jsonb(StringBuilder),
    /// bytea.
    Bytea(BinaryBuilder),
    /// date.
    Date(Date32Builder),
    /// time.
    Time(Time64MicrosecondBuilder),
    /// timestamp and timestamptz.
    Timestamp(TimestampMicrosecondBuilder),
    /// interval.
    Interval(IntervalMonthDayNanoBuilder),
    /// uuid (its 16 bytes).
    Uuid(FixedSizeBinaryBuilder),
    /// a one-dimensional array.
    List {
        /// The element field.
        field: FieldRef,
        /// Offsets into the element builder.
        offsets: Vec<i32>,
        /// Which lists are NULL.
        nulls: NullBufferBuilder,
        /// The elements.
        elements: Box<Column>,
    },
}

impl Column {
    /// An empty builder for `kind`.
    pub fn new(kind: &Kind, capacity: usize) -> Self {
        match kind {
            Kind::Bool => Column::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::Int2 => Column::Int2(Int16Builder::with_capacity(capacity)),
            Kind::Int4 => Column::Int4(Int32Builder::with_capacity(capacity)),
            Kind::Int8 => Column::Int8(Int64Builder::with_capacity(capacity)),
            Kind::Oid => Column::Oid(Int64Builder::with_capacity(capacity)),
            Kind::Float4 => Column::Float4(Float32Builder::with_capacity(capacity)),
            Kind::Float8 => Column::Float8(Float64Builder::with_capacity(capacity)),
            Kind::Decimal(p, s) => Column::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(*p, *s)
                    .expect("precision <= 38 and 0 <= scale <= precision"),
                *s,
            ),
            Kind::NumericText => Column::NumericText(text_builder(capacity)),
            Kind::Text | Kind::Json => Column::Text(text_builder(capacity)),
            Kind::Jsonb => Column::Jsonb(text_builder(capacity)),
            Kind::Bytea => Column::Bytea(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            Kind::Date => Column::Date(Date32Builder::with_capacity(capacity)),
            Kind::Time => Column::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            Kind::Timestamp => {
                Column::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            Kind::TimestampTz => Column::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            Kind::Interval => {
                Column::Interval(IntervalMonthDayNanoBuilder::with_capacity(capacity))
            }
            Kind::Uuid => Column::Uuid(FixedSizeBinaryBuilder::with_capacity(capacity, 16)),
            Kind::List(element) => Column::List {
                field: element_field(element),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(capacity),
                elements: Box::new(Column::new(element, capacity)),
            },
        }
    }

    /// Appends one value in PostgreSQL's binary format (`None` = NULL).
    pub fn push(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        let Some(v) = value else {
            self.push_null();
            return Ok(());
        };
        match self {
            Column::Bool(b) => b.append_value(fixed::<1>(v)?[0] != 0),
            Column::Int2(b) => b.append_value(i16::from_be_bytes(fixed(v)?)),
            Column::Int4(b) => b.append_value(i32::from_be_bytes(fixed(v)?)),
            Column::Int8(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Column::Oid(b) => b.append_value(i64::from(u32::from_be_bytes(fixed(v)?))),
            Column::Float4(b) => b.append_value(f32::from_be_bytes(fixed(v)?)),
            Column::Float8(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
            Column::Decimal(b, scale) => b.append_value(numeric_to_i128(v, *scale)?),
            Column::NumericText(b) => b.append_value(numeric_to_string(v)?),
            Column::Text(b) => b.append_value(utf8(v)?),
            Column::Jsonb(b) => match v.split_first() {
                Some((1, text)) => b.append_value(utf8(text)?),
                _ => return Err("unknown jsonb binary version".into()),
            },
            Column::Bytea(b) => b.append_value(v),
            Column::Date(b) => {
                let days = i32::from_be_bytes(fixed(v)?);
                b.append_value(match days {
                    i32::MAX => i32::MAX,
                    i32::MIN => -i32::MAX,
                    d => d.checked_add(EPOCH_DAYS).ok_or("date out of range")?,
                });
            }
            Column::Time(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Column::Timestamp(b) => {
                let micros = i64::from_be_bytes(fixed(v)?);
                b.append_value(match micros {
                    i64::MAX => i64::MAX,
                    i64::MIN => -i64::MAX,
                    m => m
                        .checked_add(EPOCH_MICROS)
                        .ok_or("timestamp out of range")?,
                });
            }
            Column::Interval(b) => {
                let v: [u8; 16] = fixed(v)?;
                let micros = i64::from_be_bytes(v[0..8].try_into().expect("8 bytes"));
                let days = i32::from_be_bytes(v[8..12].try_into().expect("4 bytes"));
                let months = i32::from_be_bytes(v[12..16].try_into().expect("4 bytes"));
                let nanos = micros.checked_mul(1000).ok_or("interval out of range")?;
                b.append_value(IntervalMonthDayNano::new(months, days, nanos));
            }
            Column::Uuid(b) => b
                .append_value(fixed::<16>(v)?)
                .map_err(|e| format!("uuid: {e}"))?,
            Column::List {
                offsets,
                nulls,
                elements,
                ..
            } => {
                let count = push_array(elements, v)?;
                let last = *offsets.last().expect("offsets start with 0");
                let next = i32::try_from(count)
                    .ok()
                    .and_then(|c| last.checked_add(c))
                    .ok_or("array too large")?;
                offsets.push(next);
                nulls.append_non_null();
            }
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match self {
            Column::Bool(b) => b.append_null(),
            Column::Int2(b) => b.append_null(),
            Column::Int4(b) => b.append_null(),
            Column::Int8(b) | Column::Oid(b) => b.append_null(),
            Column::Float4(b) => b.append_null(),
            Column::Float8(b) => b.append_null(),
            Column::Decimal(b, _) => b.append_null(),
            Column::NumericText(b) | Column::Text(b) | Column::Jsonb(b) => b.append_null(),
            Column::Uuid(b) => b.append_null(),
            Column::Bytea(b) => b.append_null(),
            Column::Date(b) => b.append_null(),
            Column::Time(b) => b.append_null(),
            Column::Timestamp(b) => b.append_null(),
            Column::Interval(b) => b.append_null(),
            Column::List { offsets, nulls, .. } => {
                let last = *offsets.last().expect("offsets start with 0");
                offsets.push(last);
                nulls.append_null();
            }
        }
    }

    /// The values appended since the last call, as an array.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Int2(b) => Arc::new(b.finish()),
            Column::Int4(b) => Arc::new(b.finish()),
            Column::Int8(b) | Column::Oid(b) => Arc::new(b.finish()),
            Column::Float4(b) => Arc::new(b.finish()),
            Column::Float8(b) => Arc::new(b.finish()),
            Column::Decimal(b, _) => Arc::new(b.finish()),
            Column::NumericText(b) | Column::Text(b) | Column::Jsonb(b) => Arc::new(b.finish()),
            Column::Uuid(b) => Arc::new(b.finish()),
            Column::Bytea(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Time(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish()),
            Column::Interval(b) => Arc::new(b.finish()),
            Column::List {
                field,
                offsets,
                nulls,
                elements,
            } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(ListArray::new(
                    Arc::clone(field),
                    offsets,
                    elements.finish(),
                    nulls.finish(),
                ))
            }
        }
    }
}

/// A string builder for `capacity` values of about 16 bytes (it grows past that).
fn text_builder(capacity: usize) -> StringBuilder {
    StringBuilder::with_capacity(capacity, capacity * 16)
}

/// Appends the elements of a binary array value; returns how many.
fn push_array(elements: &mut Column, v: &[u8]) -> Result<usize, String> {
    let mut r = Reader(v);
    let dims = r.i32()?;
    let _flags = r.i32()?;
    let _element_type = r.i32()?;
    match dims {
        0 => return Ok(0),
        1 => {}
        _ => {
            return Err(format!(
                "a {dims}-dimensional array; only one-dimensional arrays are read (cast the column to text in a query)"
            ));
        }
    }
    let count = r.i32()?;
    let _lower_bound = r.i32()?;
    let count = usize::try_from(count).map_err(|_| "bad array length")?;
    for _ in 0..count {
        let len = r.i32()?;
        if len < 0 {
            elements.push(None)?;
        } else {
            elements.push(Some(r.bytes(len as usize)?))?;
        }
    }
    Ok(count)
}

/// A cursor over a binary value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated binary value".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(fixed(self.bytes(4)?)?))
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(fixed(self.bytes(2)?)?))
    }
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|_| "text is not valid UTF-8".to_owned())
}

/// The parts of a binary numeric: (base-10000 digits, weight, negative, display scale).
struct Numeric<'a> {
    digits: &'a [u8],
    weight: i16,
    negative: bool,
    dscale: u16,
}

fn numeric_parts(v: &[u8]) -> Result<Numeric<'_>, &'static str> {
    let mut r = Reader(v);
    let head = |_| "truncated numeric";
    let ndigits = r.u16().map_err(head)? as usize;
    let weight = r.u16().map_err(head)? as i16;
    let sign = r.u16().map_err(head)?;
    let dscale = r.u16().map_err(head)?;
    let digits = r.bytes(ndigits * 2).map_err(head)?;
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        0xC000 => return Err("NaN"),
        0xD000 => return Err("Infinity"),
        0xF000 => return Err("-Infinity"),
        _ => return Err("bad numeric sign"),
    };
    Ok(Numeric {
        digits,
        weight,
        negative,
        dscale,
    })
}

impl Numeric<'_> {
    fn digit(&self, k: isize) -> u16 {
        if k < 0 || (k as usize) * 2 >= self.digits.len() {
            return 0;
        }
        let i = k as usize * 2;
        u16::from_be_bytes([self.digits[i], self.digits[i + 1]])
    }
    fn ndigits(&self) -> isize {
        (self.digits.len() / 2) as isize
    }
}

/// A binary numeric as an integer scaled by 10^`scale` (Decimal128), exactly.
pub fn numeric_to_i128(v: &[u8], scale: i8) -> Result<i128, String> {
    const POW10: [u16; 5] = [1, 10, 100, 1000, 10_000];
    let n = numeric_parts(v).map_err(|e| format!("{e} does not fit a DECIMAL column"))?;
    let scale = i32::from(scale);
    let overflow = || "the value does not fit DECIMAL(38)".to_owned();
    let mut acc: i128 = 0;
    // Exponent (power of ten) of the last decimal digit added to acc.
    let mut last = None;
    for k in 0..n.ndigits() {
        let group = n.digit(k);
        // Exponent of the group's last digit; its last `drop` digits lie below 10^-scale.
        let low = 4 * (i32::from(n.weight) - k as i32);
        let drop = (-scale - low).clamp(0, 4) as usize;
        if group % POW10[drop] != 0 {
            return Err(format!("has more than {scale} decimal places"));
        }
        if drop == 4 {
            continue;
        }
        acc = acc
            .checked_mul(i128::from(POW10[4 - drop]))
            .and_then(|a| a.checked_add(i128::from(group / POW10[drop])))
            .ok_or_else(overflow)?;
        last = Some(low + drop as i32);
    }
    if let Some(last) = last {
        let shift = u32::try_from(last + scale).expect("last >= -scale");
        acc = 10i128
            .checked_pow(shift)
            .and_then(|p| acc.checked_mul(p))
            .ok_or_else(overflow)?;
    }
    Ok(if n.negative { -acc } else { acc })
}

/// A binary numeric as PostgreSQL prints it (display scale kept; NaN and infinities by name).
pub fn numeric_to_string(v: &[u8]) -> Result<String, String> {
    let n = match numeric_parts(v) {
        Ok(n) => n,
        Err(name @ ("NaN" | "Infinity" | "-Infinity")) => return Ok(name.to_owned()),
        Err(e) => return Err(e.to_owned()),
    };
    let mut s = String::new();
    if n.negative {
        s.push('-');
    }
    let weight = isize::from(n.weight);
    if weight < 0 {
        s.push('0');
    } else {
        for k in 0..=weight {
            if k == 0 {
                s.push_str(&n.digit(k).to_string());
            } else {
                s.push_str(&format!("{:04}", n.digit(k)));
            }
        }
    }
    if n.dscale > 0 {
        s.push('.');
        let mut fraction = String::new();
        let mut f = 1;
        while fraction.len() < usize::from(n.dscale) {
            fraction.push_str(&format!("{:04}", n.digit(weight + f)));
            f += 1;
        }
        fraction.truncate(usize::from(n.dscale));
        s.push_str(&fraction);
    }
    let _ = n.ndigits();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [ndigits, weight as u16, sign, dscale] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_decode_exactly() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        let v = numeric(3, 1, 0, 3, &[1, 2345, 6780]);
        assert_eq!(numeric_to_i128(&v, 3).unwrap(), 12_345_678);
        assert_eq!(numeric_to_i128(&v, 5).unwrap(), 1_234_567_800);
        assert_eq!(numeric_to_string(&v).unwrap(), "12345.678");
        assert!(numeric_to_i128(&v, 2).is_err());
        // -0.0001 = [1], weight -1, dscale 4
        let v = numeric(1, -1, 0x4000, 4, &[1]);
        assert_eq!(numeric_to_i128(&v, 4).unwrap(), -1);
        assert_eq!(numeric_to_string(&v).unwrap(), "-0.0001");
        // 1e8 = [1], weight 2, dscale 0
        let v = numeric(1, 2, 0, 0, &[1]);
        assert_eq!(numeric_to_i128(&v, 0).unwrap(), 100_000_000);
        assert_eq!(numeric_to_string(&v).unwrap(), "100000000");
        let zero = numeric(0, 0, 0, 2, &[]);
        assert_eq!(numeric_to_i128(&zero, 2).unwrap(), 0);
        assert_eq!(numeric_to_string(&zero).unwrap(), "0.00");
        // 1.2300 at scale 2: the zeros past the scale are dropped; 1.2301 does not fit.
        assert_eq!(
            numeric_to_i128(&numeric(2, 0, 0, 4, &[1, 2300]), 2).unwrap(),
            123
        );
        assert!(numeric_to_i128(&numeric(2, 0, 0, 4, &[1, 2301]), 2).is_err());
        // 99999999999999999999999999999999999999 (38 nines) fits; a 39th digit does not.
        let nines: Vec<u16> = std::iter::once(99).chain([9999; 9]).collect();
        let max = numeric(10, 9, 0, 0, &nines);
        assert_eq!(numeric_to_i128(&max, 0).unwrap(), 10i128.pow(38) - 1);
        assert!(numeric_to_i128(&numeric(10, 9, 0, 0, &[999; 10]), 0).is_err());
        let nan = numeric(0, 0, 0xC000, 0, &[]);
        assert_eq!(numeric_to_string(&nan).unwrap(), "NaN");
        assert!(numeric_to_i128(&nan, 0).is_err());
    }
}
