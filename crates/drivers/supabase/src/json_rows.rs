//! Arrow rows -> the JSON PostgREST (and `json_populate_recordset`) takes, exactly.
//!
//! Every row is an object with the same keys in the same order, NULL written as an explicit
//! `null`. Numbers are never routed through floating point unless they are floats: DECIMAL is
//! written from its exact decimal text as a JSON number, and text columns flagged as
//! [`Hint::RawNumber`] (HUGEINT read as text) likewise. Dates, times and timestamps become ISO
//! 8601 strings (TIMESTAMPTZ with its UTC offset), binary becomes bytea's `\x` hex input form,
//! nested Arrow values (lists, structs, maps) and [`Hint::RawJson`] text become JSON values.
//! Non-finite floats are written as the strings Postgres reads them from (`NaN`, `Infinity`).

use std::fmt::Write as _;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, BooleanArray, FixedSizeBinaryArray,
    LargeBinaryArray, LargeStringArray, StringArray, StringViewArray, make_array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::record_batch::RecordBatch;
use driver_api::{DriverError, Result};

/// How a text column's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hint {
    /// A JSON string.
    #[default]
    Text,
    /// The text is an exact number (e.g. a HUGEINT cast to text): written as a JSON number.
    RawNumber,
    /// The text is a JSON document (DuckDB JSON, or a nested value turned into JSON): embedded.
    RawJson,
}

/// Writes one row after another as JSON objects with a fixed key set.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    /// The keys, already JSON-escaped with quotes and the colon: `"name":`.
    keys: Vec<String>,
    hints: Vec<Hint>,
}

impl RowEncoder {
    /// An encoder for columns `names` with the given hints (missing hints mean [`Hint::Text`]).
    pub fn new(names: &[String], hints: &[Hint]) -> Self {
        let keys = names
            .iter()
            .map(|n| format!("{}:", serde_json::Value::String(n.clone())))
            .collect();
        let hints = (0..names.len())
            .map(|i| hints.get(i).copied().unwrap_or_default())
            .collect();
        Self { keys, hints }
    }

    /// Appends rows `start..start+len` of `batch` (columns in the encoder's order) to `out`,
    /// each preceded by a comma when `out` already holds a row (`first` tells whether it does).
    pub fn write_rows(
        &self,
        batch: &RecordBatch,
        start: usize,
        len: usize,
        out: &mut String,
        mut first: bool,
    ) -> Result<()> {
        if batch.num_columns() != self.keys.len() {
            return Err(DriverError::internal(format!(
                "row encoder expects {} columns, the batch has {}",
                self.keys.len(),
                batch.num_columns()
            )));
        }
        let columns: Vec<Column> = batch
            .columns()
            .iter()
            .zip(&self.hints)
            .map(|(array, hint)| Column::new(array, *hint))
            .collect::<Result<_>>()?;
        for row in start..start + len {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('{');
            for (i, (key, column)) in self.keys.iter().zip(&columns).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(key);
                column.write(row, out)?;
            }
            out.push('}');
        }
        Ok(())
    }
}

/// A column prepared for writing. Types written from their text form (decimals, dates, times,
/// timestamps, intervals) are cast to text once per batch; Arrow's text is exact and ISO 8601.
struct Column {
    array: ArrayRef,
    hint: Hint,
    children: Vec<(String, Column)>,
}

impl Column {
    fn new(array: &ArrayRef, hint: Hint) -> Result<Self> {
        Self::owned(prepare(array)?, hint)
    }

    fn owned(array: ArrayRef, hint: Hint) -> Result<Self> {
        let as_text = |array: &ArrayRef| {
            cast(array, &DataType::Utf8).map_err(|e| {
                DriverError::internal(format!("cannot format {}: {e}", array.data_type()))
            })
        };
        let (array, hint) = match array.data_type() {
            DataType::Decimal32(_, _)
            | DataType::Decimal64(_, _)
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _) => (as_text(&array)?, Hint::RawNumber),
            // Instants: the same epoch values read in UTC (named zones would need a zone
            // database; the offset is what Postgres needs).
            DataType::Timestamp(unit, Some(_)) => {
                let utc = DataType::Timestamp(*unit, Some("+00:00".into()));
                let data = array
                    .to_data()
                    .into_builder()
                    .data_type(utc)
                    .build()
                    .map_err(|e| {
                        DriverError::internal(format!("cannot relabel timestamps: {e}"))
                    })?;
                (as_text(&make_array(data))?, Hint::Text)
            }
            DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Timestamp(_, None)
            | DataType::Interval(_)
            | DataType::Duration(_) => (as_text(&array)?, Hint::Text),
            _ => (array, hint),
        };
        let children = match array.data_type() {
            DataType::Struct(fields) => {
                let structs = array.as_struct();
                fields
                    .iter()
                    .zip(structs.columns())
                    .map(|(f, c)| Ok((f.name().clone(), Column::new(c, Hint::Text)?)))
                    .collect::<Result<_>>()?
            }
            _ => Vec::new(),
        };
        Ok(Self {
            array,
            hint,
            children,
        })
    }

    fn write(&self, row: usize, out: &mut String) -> Result<()> {
        let array = &self.array;
        if array.is_null(row) {
            out.push_str("null");
            return Ok(());
        }
        match array.data_type() {
            DataType::Null => out.push_str("null"),
            DataType::Boolean => {
                let b = array
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .map(|a| a.value(row))
                    .unwrap_or_default();
                out.push_str(if b { "true" } else { "false" });
            }
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => {
                let text = arrow::util::display::array_value_to_string(array, row)
                    .map_err(|e| DriverError::internal(format!("cannot format integer: {e}")))?;
                out.push_str(&text);
            }
            DataType::Float16 => {
                let text = arrow::util::display::array_value_to_string(array, row)
                    .map_err(|e| DriverError::internal(format!("cannot format float: {e}")))?;
                out.push_str(&text);
            }
            DataType::Float32 => {
                let v = array.as_primitive::<Float32Type>().value(row);
                write_float(v.is_finite(), v.is_nan(), v > 0.0, || json_of(&v), out);
            }
            DataType::Float64 => {
                let v = array.as_primitive::<Float64Type>().value(row);
                write_float(v.is_finite(), v.is_nan(), v > 0.0, || json_of(&v), out);
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let text = string_value(array, row);
                match self.hint {
                    Hint::Text => push_json_string(text, out),
                    Hint::RawNumber | Hint::RawJson => out.push_str(text),
                }
            }
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => {
                let bytes = binary_value(array, row);
                out.push_str("\"\\\\x");
                for b in bytes {
                    let _ = write!(out, "{b:02x}");
                }
                out.push('"');
            }
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(_, _)
            | DataType::Map(_, _) => {
                let values = match array.data_type() {
                    DataType::List(_) => array.as_list::<i32>().value(row),
                    DataType::LargeList(_) => array.as_list::<i64>().value(row),
                    DataType::FixedSizeList(_, _) => array.as_fixed_size_list().value(row),
                    _ => {
                        let entries = array.as_map().value(row);
                        return write_map(&entries, out);
                    }
                };
                let child = Column::new(&values, Hint::Text)?;
                out.push('[');
                for i in 0..values.len() {
                    if i > 0 {
                        out.push(',');
                    }
                    child.write(i, out)?;
                }
                out.push(']');
            }
            DataType::Struct(_) => {
                out.push('{');
                for (i, (name, child)) in self.children.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(name, out);
                    out.push(':');
                    child.write(row, out)?;
                }
                out.push('}');
            }
            other => {
                return Err(DriverError::data(format!(
                    "values of type {other} cannot be sent as JSON"
                )));
            }
        }
        Ok(())
    }
}

/// Dictionaries inside nested values are decoded to their values.
fn prepare(array: &ArrayRef) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Dictionary(_, _) => cast(array, &DataType::Utf8)
            .map_err(|e| DriverError::internal(format!("cannot decode dictionary: {e}"))),
        _ => Ok(std::sync::Arc::clone(array)),
    }
}

fn write_map(entries: &arrow::array::StructArray, out: &mut String) -> Result<()> {
    let keys = prepare(entries.column(0))?;
    let values = Column::new(entries.column(1), Hint::Text)?;
    out.push('{');
    for i in 0..entries.len() {
        if i > 0 {
            out.push(',');
        }
        let key = arrow::util::display::array_value_to_string(&keys, i)
            .map_err(|e| DriverError::internal(format!("cannot format a map key: {e}")))?;
        push_json_string(&key, out);
        out.push(':');
        values.write(i, out)?;
    }
    out.push('}');
    Ok(())
}

fn json_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn write_float(
    finite: bool,
    nan: bool,
    positive: bool,
    text: impl FnOnce() -> String,
    out: &mut String,
) {
    if finite {
        out.push_str(&text());
    } else if nan {
        out.push_str("\"NaN\"");
    } else if positive {
        out.push_str("\"Infinity\"");
    } else {
        out.push_str("\"-Infinity\"");
    }
}

fn push_json_string(text: &str, out: &mut String) {
    out.push_str(&json_of(&text));
}

fn string_value(array: &ArrayRef, row: usize) -> &str {
    if let Some(a) = array.as_any().downcast_ref::<StringArray>() {
        a.value(row)
    } else if let Some(a) = array.as_any().downcast_ref::<LargeStringArray>() {
        a.value(row)
    } else if let Some(a) = array.as_any().downcast_ref::<StringViewArray>() {
        a.value(row)
    } else {
        ""
    }
}

fn binary_value(array: &ArrayRef, row: usize) -> &[u8] {
    if let Some(a) = array.as_any().downcast_ref::<BinaryArray>() {
        a.value(row)
    } else if let Some(a) = array.as_any().downcast_ref::<LargeBinaryArray>() {
        a.value(row)
    } else if let Some(a) = array.as_any().downcast_ref::<BinaryViewArray>() {
        a.value(row)
    } else if let Some(a) = array.as_any().downcast_ref::<FixedSizeBinaryArray>() {
        a.value(row)
    } else {
        &[]
    }
}
