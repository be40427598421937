//! MySQL result columns -> Arrow: one [`Kind`] per column, chosen from the result set's column
//! metadata (never from values), and one Arrow builder per column that values are decoded
//! straight into. See the crate docs for the table.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    DurationMicrosecondBuilder, Float32Builder, Float64Builder, Int8Builder, Int16Builder,
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
    UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column, Value};

/// The binary character set number: BINARY, VARBINARY and BLOB columns carry it.
const BINARY_CHARSET: u16 = 63;

/// How one result column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TINYINT.
    I8,
    /// SMALLINT, YEAR.
    I16,
    /// MEDIUMINT, INT.
    I32,
    /// BIGINT.
    I64,
    /// TINYINT UNSIGNED.
    U8,
    /// SMALLINT UNSIGNED.
    U16,
    /// MEDIUMINT / INT UNSIGNED.
    U32,
    /// BIGINT UNSIGNED, BIT(n > 1).
    U64,
    /// FLOAT.
    F32,
    /// DOUBLE.
    F64,
    /// DECIMAL(p, s) with p <= 38.
    Decimal(u8, i8),
    /// DATE.
    Date,
    /// DATETIME, TIMESTAMP.
    Timestamp,
    /// TIME.
    Time,
    /// BIT(1).
    Bool,
    /// BIT(n), n > 1.
    Bits,
    /// Text (CHAR, VARCHAR, TEXT, ENUM, SET, DECIMAL with p > 38).
    Text,
    /// JSON, kept as its text.
    Json,
    /// BINARY, VARBINARY, BLOB, GEOMETRY.
    Binary,
}

impl Kind {
    /// The kind of a result column.
    pub fn of(column: &Column) -> Self {
        let unsigned = column.flags().contains(ColumnFlags::UNSIGNED_FLAG);
        let binary = column.character_set() == BINARY_CHARSET;
        match column.column_type() {
            ColumnType::MYSQL_TYPE_TINY if unsigned => Self::U8,
            ColumnType::MYSQL_TYPE_TINY => Self::I8,
            ColumnType::MYSQL_TYPE_SHORT if unsigned => Self::U16,
            ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR => Self::I16,
            ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG if unsigned => Self::U32,
            ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG => Self::I32,
            ColumnType::MYSQL_TYPE_LONGLONG if unsigned => Self::U64,
            ColumnType::MYSQL_TYPE_LONGLONG => Self::I64,
            ColumnType::MYSQL_TYPE_FLOAT => Self::F32,
            ColumnType::MYSQL_TYPE_DOUBLE => Self::F64,
            ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
                let scale = column.decimals();
                // The display length counts the sign (when signed) and the point (when s > 0).
                let precision =
                    column.column_length() as i64 - i64::from(scale > 0) - i64::from(!unsigned);
                match u8::try_from(precision) {
                    Ok(p) if (1..=38).contains(&p) && scale <= p => Self::Decimal(p, scale as i8),
                    _ => Self::Text,
                }
            }
            ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => Self::Date,
            ColumnType::MYSQL_TYPE_DATETIME
            | ColumnType::MYSQL_TYPE_DATETIME2
            | ColumnType::MYSQL_TYPE_TIMESTAMP
            | ColumnType::MYSQL_TYPE_TIMESTAMP2 => Self::Timestamp,
            ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => Self::Time,
            ColumnType::MYSQL_TYPE_BIT if column.column_length() == 1 => Self::Bool,
            ColumnType::MYSQL_TYPE_BIT => Self::Bits,
            ColumnType::MYSQL_TYPE_JSON => Self::Json,
            ColumnType::MYSQL_TYPE_GEOMETRY => Self::Binary,
            ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET => Self::Text,
            ColumnType::MYSQL_TYPE_STRING
            | ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB
            | ColumnType::MYSQL_TYPE_BLOB
                if binary =>
            {
                Self::Binary
            }
            _ => Self::Text,
        }
    }

    /// The Arrow type of this kind.
    pub fn data_type(self) -> DataType {
        match self {
            Self::I8 => DataType::Int8,
            Self::I16 => DataType::Int16,
            Self::I32 => DataType::Int32,
            Self::I64 => DataType::Int64,
            Self::U8 => DataType::UInt8,
            Self::U16 => DataType::UInt16,
            Self::U32 => DataType::UInt32,
            Self::U64 | Self::Bits => DataType::UInt64,
            Self::F32 => DataType::Float32,
            Self::F64 => DataType::Float64,
            Self::Decimal(p, s) => DataType::Decimal128(p, s),
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::Time => DataType::Duration(TimeUnit::Microsecond),
            Self::Bool => DataType::Boolean,
            Self::Text | Self::Json => DataType::Utf8,
            Self::Binary => DataType::Binary,
        }
    }

    /// The Arrow field of a column of this kind.
    pub fn field(self, name: &str) -> Field {
        let field = Field::new(name, self.data_type(), true);
        if self == Self::Json {
            field.with_metadata(
                [(
                    "ARROW:extension:name".to_owned(),
                    driver_api::JSON_EXTENSION_NAME.to_owned(),
                )]
                .into(),
            )
        } else {
            field
        }
    }
}

/// The Arrow schema of a result.
pub fn schema_of(names: &[String], kinds: &[Kind]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .zip(kinds)
            .map(|(n, k)| k.field(n))
            .collect::<Vec<_>>(),
    ))
}

/// One column's builder.
enum Builder {
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Time(DurationMicrosecondBuilder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Binary(BinaryBuilder),
}

/// Rows being collected into one Arrow batch.
pub struct BatchBuilder {
    schema: SchemaRef,
    kinds: Vec<Kind>,
    builders: Vec<Builder>,
    rows: usize,
}

/// A value that does not fit its column's type.
#[derive(Debug)]
pub struct BadValue {
    /// Column index.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl BatchBuilder {
    /// Builders for `kinds`, sized for `capacity` rows.
    pub fn new(schema: SchemaRef, kinds: Vec<Kind>, capacity: usize) -> Self {
        let builders = kinds.iter().map(|k| new_builder(*k, capacity)).collect();
        Self {
            schema,
            kinds,
            builders,
            rows: 0,
        }
    }

    /// Rows collected so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one row's values, in column order.
    pub fn push_row(&mut self, values: Vec<Option<Value>>) -> Result<(), BadValue> {
        for (column, (value, builder)) in values.into_iter().zip(&mut self.builders).enumerate() {
            let value = value.unwrap_or(Value::NULL);
            push(builder, value).map_err(|message| BadValue { column, message })?;
        }
        self.rows += 1;
        Ok(())
    }

    /// The batch of the rows collected; the builders start over.
    pub fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(finish).collect();
        self.rows = 0;
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
    }

    /// The column kinds.
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }
}

fn new_builder(kind: Kind, capacity: usize) -> Builder {
    match kind {
        Kind::I8 => Builder::I8(Int8Builder::with_capacity(capacity)),
        Kind::I16 => Builder::I16(Int16Builder::with_capacity(capacity)),
        Kind::I32 => Builder::I32(Int32Builder::with_capacity(capacity)),
        Kind::I64 => Builder::I64(Int64Builder::with_capacity(capacity)),
        Kind::U8 => Builder::U8(UInt8Builder::with_capacity(capacity)),
        Kind::U16 => Builder::U16(UInt16Builder::with_capacity(capacity)),
        Kind::U32 => Builder::U32(UInt32Builder::with_capacity(capacity)),
        Kind::U64 | Kind::Bits => Builder::U64(UInt64Builder::with_capacity(capacity)),
        Kind::F32 => Builder::F32(Float32Builder::with_capacity(capacity)),
        Kind::F64 => Builder::F64(Float64Builder::with_capacity(capacity)),
        Kind::Decimal(p, s) => Builder::Decimal(
            Decimal128Builder::with_capacity(capacity)
                .with_precision_and_scale(p, s)
                .unwrap_or_default(),
            p,
            s,
        ),
        Kind::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
        Kind::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity)),
        Kind::Time => Builder::Time(DurationMicrosecondBuilder::with_capacity(capacity)),
        Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
        Kind::Text | Kind::Json => {
            Builder::Text(StringBuilder::with_capacity(capacity, capacity * 16))
        }
        Kind::Binary => Builder::Binary(BinaryBuilder::with_capacity(capacity, capacity * 16)),
    }
}

fn finish(builder: &mut Builder) -> ArrayRef {
    match builder {
        Builder::I8(b) => Arc::new(b.finish()),
        Builder::I16(b) => Arc::new(b.finish()),
        Builder::I32(b) => Arc::new(b.finish()),
        Builder::I64(b) => Arc::new(b.finish()),
        Builder::U8(b) => Arc::new(b.finish()),
        Builder::U16(b) => Arc::new(b.finish()),
        Builder::U32(b) => Arc::new(b.finish()),
        Builder::U64(b) => Arc::new(b.finish()),
        Builder::F32(b) => Arc::new(b.finish()),
        Builder::F64(b) => Arc::new(b.finish()),
        Builder::Decimal(b, _, _) => Arc::new(b.finish()),
        Builder::Date(b) => Arc::new(b.finish()),
        Builder::Timestamp(b) => Arc::new(b.finish()),
        Builder::Time(b) => Arc::new(b.finish()),
        Builder::Bool(b) => Arc::new(b.finish()),
        Builder::Text(b) => ArrayBuilder::finish(b),
        Builder::Binary(b) => ArrayBuilder::finish(b),
    }
}

/// An integer value of any integer representation (binary protocol or text).
fn integer(value: &Value) -> Result<i128, String> {
    match value {
        Value::Int(i) => Ok(i128::from(*i)),
        Value::UInt(u) => Ok(i128::from(*u)),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse::<i128>().ok())
            .ok_or_else(|| format!("{:?} is not an integer", String::from_utf8_lossy(b))),
        other => Err(format!("unexpected value {other:?} for an integer column")),
    }
}

fn narrow<T: TryFrom<i128>>(value: &Value) -> Result<T, String> {
    let wide = integer(value)?;
    T::try_from(wide).map_err(|_| format!("{wide} is out of range"))
}

fn float(value: &Value) -> Result<f64, String> {
    match value {
        Value::Float(f) => Ok(f64::from(*f)),
        Value::Double(d) => Ok(*d),
        Value::Int(i) => Ok(*i as f64),
        Value::UInt(u) => Ok(*u as f64),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("{:?} is not a number", String::from_utf8_lossy(b))),
        other => Err(format!(
            "unexpected value {other:?} for a floating point column"
        )),
    }
}

/// Parses exact decimal text (`-12.3400`) into an integer scaled by `scale`.
pub fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::try_from(scale).ok()?;
    if frac_part.len() > scale
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || (int_part.is_empty() && frac_part.is_empty())
    {
        return None;
    }
    let mut value: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    for _ in frac_part.len()..scale {
        value = value.checked_mul(10)?;
    }
    Some(if negative { -value } else { value })
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian), `None` for zero or invalid
/// dates (MySQL's `0000-00-00`, `2024-00-00`).
pub fn days_from_civil(year: u16, month: u8, day: u8) -> Option<i64> {
    if year == 0 && month == 0 && day == 0 {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // Howard Hinnant's algorithm.
    let y = i64::from(year) - i64::from(month <= 2);
    let m = i64::from(month);
    let d = i64::from(day);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let y = u32::from(year);
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Parses MySQL's text form of a DATE / DATETIME into (y, m, d, h, mi, s, us).
fn parse_datetime_text(text: &str) -> Option<(u16, u8, u8, u8, u8, u8, u32)> {
    let (date, time) = text.split_once([' ', 'T']).unwrap_or((text, ""));
    let mut d = date.split('-');
    let y = d.next()?.parse().ok()?;
    let m = d.next()?.parse().ok()?;
    let day = d.next()?.parse().ok()?;
    if time.is_empty() {
        return Some((y, m, day, 0, 0, 0, 0));
    }
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':');
    let h = t.next()?.parse().ok()?;
    let mi = t.next()?.parse().ok()?;
    let s = t.next()?.parse().ok()?;
    Some((y, m, day, h, mi, s, micros_of(frac)?))
}

fn micros_of(frac: &str) -> Option<u32> {
    if frac.is_empty() {
        return Some(0);
    }
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{frac:0<6}");
    padded.parse().ok()
}

/// Parses MySQL's text form of a TIME (`-838:59:59.000000`) into microseconds.
fn parse_time_text(text: &str) -> Option<i64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let mut t = hms.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let m: i64 = t.next()?.parse().ok()?;
    let s: i64 = t.next()?.parse().ok()?;
    let us = ((h * 60 + m) * 60 + s) * 1_000_000 + i64::from(micros_of(frac)?);
    Some(if negative { -us } else { us })
}

fn datetime_micros(value: &Value) -> Result<Option<i64>, String> {
    let (y, mo, d, h, mi, s, us) = match value {
        Value::Date(y, mo, d, h, mi, s, us) => (*y, *mo, *d, *h, *mi, *s, *us),
        Value::Bytes(b) => {
            let text = String::from_utf8_lossy(b);
            parse_datetime_text(&text).ok_or_else(|| format!("{text:?} is not a date/time"))?
        }
        other => return Err(format!("unexpected value {other:?} for a date/time column")),
    };
    let Some(days) = days_from_civil(y, mo, d) else {
        return Ok(None); // zero date
    };
    let seconds = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    Ok(Some(seconds * 1_000_000 + i64::from(us)))
}

fn push(builder: &mut Builder, value: Value) -> Result<(), String> {
    if value == Value::NULL {
        match builder {
            Builder::I8(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::U8(b) => b.append_null(),
            Builder::U16(b) => b.append_null(),
            Builder::U32(b) => b.append_null(),
            Builder::U64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Decimal(b, _, _) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::Binary(b) => b.append_null(),
        }
        return Ok(());
    }
    match builder {
        Builder::I8(b) => b.append_value(narrow(&value)?),
        Builder::I16(b) => b.append_value(narrow(&value)?),
        Builder::I32(b) => b.append_value(narrow(&value)?),
        Builder::I64(b) => b.append_value(narrow(&value)?),
        Builder::U8(b) => b.append_value(narrow(&value)?),
        Builder::U16(b) => b.append_value(narrow(&value)?),
        Builder::U32(b) => b.append_value(narrow(&value)?),
        Builder::U64(b) => match &value {
            // BIT(n): big-endian bytes.
            Value::Bytes(bytes) if bytes.len() <= 8 && !bytes.iter().all(u8::is_ascii_digit) => {
                b.append_value(bytes.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
            }
            _ => b.append_value(narrow(&value)?),
        },
        Builder::F32(b) => b.append_value(float(&value)? as f32),
        Builder::F64(b) => b.append_value(float(&value)?),
        Builder::Decimal(b, p, s) => {
            let scaled = match &value {
                Value::Bytes(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|t| parse_decimal(t, *s)),
                Value::Int(i) => {
                    i128::from(*i).checked_mul(10i128.pow(u32::from(s.unsigned_abs())))
                }
                Value::UInt(u) => {
                    i128::from(*u).checked_mul(10i128.pow(u32::from(s.unsigned_abs())))
                }
                _ => None,
            }
            .ok_or_else(|| format!("{value:?} is not a DECIMAL({p},{s})"))?;
            b.append_value(scaled);
        }
        Builder::Date(b) => match datetime_micros(&value)? {
            None => b.append_null(),
            Some(us) => b.append_value(
                i32::try_from(us.div_euclid(86_400_000_000))
                    .map_err(|_| "date out of range".to_owned())?,
            ),
        },
        Builder::Timestamp(b) => match datetime_micros(&value)? {
            None => b.append_null(),
            Some(us) => b.append_value(us),
        },
        Builder::Time(b) => {
            let us = match &value {
                Value::Time(negative, days, h, m, s, us) => {
                    let total = ((i64::from(*days) * 24 + i64::from(*h)) * 60 + i64::from(*m)) * 60
                        + i64::from(*s);
                    let us = total * 1_000_000 + i64::from(*us);
                    if *negative { -us } else { us }
                }
                Value::Bytes(bytes) => {
                    let text = String::from_utf8_lossy(bytes);
                    parse_time_text(&text).ok_or_else(|| format!("{text:?} is not a TIME"))?
                }
                other => return Err(format!("unexpected value {other:?} for a TIME column")),
            };
            b.append_value(us);
        }
        Builder::Bool(b) => match &value {
            Value::Bytes(bytes) if bytes.len() == 1 && bytes[0] <= 1 => {
                b.append_value(bytes[0] == 1)
            }
            _ => b.append_value(integer(&value)? != 0),
        },
        Builder::Text(b) => match value {
            Value::Bytes(bytes) => match String::from_utf8(bytes) {
                Ok(text) => b.append_value(text),
                Err(e) => {
                    return Err(format!(
                        "the value is not valid UTF-8 text ({})",
                        e.utf8_error()
                    ));
                }
            },
            Value::Int(i) => b.append_value(i.to_string()),
            Value::UInt(u) => b.append_value(u.to_string()),
            Value::Float(f) => b.append_value(f.to_string()),
            Value::Double(d) => b.append_value(d.to_string()),
            other => b.append_value(format!("{other:?}")),
        },
        Builder::Binary(b) => match value {
            Value::Bytes(bytes) => b.append_value(bytes),
            other => return Err(format!("unexpected value {other:?} for a binary column")),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("-12.34", 4), Some(-123_400));
        assert_eq!(parse_decimal("0.5", 1), Some(5));
        assert_eq!(
            parse_decimal("99999999999999999999999999999999999999", 0),
            Some(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
        assert_eq!(parse_decimal("1.234", 2), None);
        assert_eq!(parse_decimal("abc", 2), None);
    }

    #[test]
    fn civil_days_and_zero_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(1969, 12, 31), Some(-1));
        assert_eq!(days_from_civil(0, 0, 0), None);
        assert_eq!(days_from_civil(2024, 0, 0), None);
        assert_eq!(days_from_civil(2023, 2, 29), None);
        assert_eq!(days_from_civil(2024, 2, 29), Some(19_782));
    }

    #[test]
    fn time_text_allows_negative_and_long_values() {
        assert_eq!(
            parse_time_text("-838:59:59.5"),
            Some(-(838 * 3600 + 59 * 60 + 59) * 1_000_000 - 500_000)
        );
        assert_eq!(parse_time_text("25:00:00"), Some(25 * 3_600_000_000));
    }
}
