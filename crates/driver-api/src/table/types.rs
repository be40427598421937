//! Arrow types as DuckDB stores them: the column type of a field, JSON text columns.

use arrow::datatypes::{DataType, Field, TimeUnit};

use super::*;
use crate::{DriverError, Result, quote_identifier};

/// A nullable `Utf8` field marked as JSON text (stored as a DuckDB `JSON` column).
pub fn json_field(name: impl Into<String>) -> Field {
    extension_field(name, DataType::Utf8, JSON_EXTENSION_NAME)
}

/// A nullable 16-byte `FixedSizeBinary` field marked as a UUID (stored as a DuckDB `UUID`
/// column; the Appender moves the 16 bytes without parsing text).
pub fn uuid_field(name: impl Into<String>) -> Field {
    extension_field(name, DataType::FixedSizeBinary(16), UUID_EXTENSION_NAME)
}

/// A nullable field of `data_type` carrying the Arrow extension name `extension`.
fn extension_field(name: impl Into<String>, data_type: DataType, extension: &str) -> Field {
    let metadata = [("ARROW:extension:name".to_owned(), extension.to_owned())].into();
    Field::new(name, data_type, true).with_metadata(metadata)
}

/// Whether `field` holds UUIDs as [`uuid_field`] makes them.
pub fn is_uuid(field: &Field) -> bool {
    field.extension_type_name() == Some(UUID_EXTENSION_NAME)
        && field.data_type() == &DataType::FixedSizeBinary(16)
}

pub(crate) fn is_json(field: &Field) -> bool {
    field.extension_type_name() == Some(JSON_EXTENSION_NAME) && field.data_type() == &DataType::Utf8
}

/// The Arrow type a column is stored as: types DuckDB has no direct equivalent for are widened.
pub(crate) fn storage_type(data_type: &DataType) -> DataType {
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
            format!("{}[]", element_type(child)?)
        }
        DataType::FixedSizeList(child, n) => {
            format!("{}[{n}]", element_type(child)?)
        }
        DataType::Struct(fields) => {
            let members = fields
                .iter()
                .map(|f| {
                    Ok(format!(
                        "{} {}",
                        quote_identifier(f.name()),
                        element_type(f)?
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

/// The DuckDB type of a list element or struct member: as the Appender maps nested fields
/// (UUIDs by their extension name; JSON text stays VARCHAR).
fn element_type(field: &Field) -> Result<String> {
    if is_uuid(field) {
        Ok("UUID".into())
    } else {
        duckdb_type_for(field.data_type())
    }
}

/// The DuckDB column type of a field: [`duckdb_type_for`] its type, `JSON` for JSON text,
/// `UUID` for [`uuid_field`]s.
pub(crate) fn duckdb_type_for_field(field: &Field) -> Result<String> {
    if is_json(field) {
        Ok("JSON".into())
    } else if is_uuid(field) {
        Ok("UUID".into())
    } else if let DataType::Duration(_) = field.data_type() {
        // Appended as microseconds and converted to INTERVAL before commit: the Arrow
        // conversion of duckdb-rs drops the NULLs of duration columns.
        Ok("BIGINT".into())
    } else if let DataType::Interval(_) = field.data_type() {
        // Appended as text and converted to INTERVAL before commit: the Arrow conversion of
        // duckdb-rs drops the NULLs of interval columns too.
        Ok("VARCHAR".into())
    } else {
        duckdb_type_for(field.data_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_fields_map_to_duckdb_uuid() {
        assert_eq!(duckdb_type_for_field(&uuid_field("u")).unwrap(), "UUID");
        let list = Field::new(
            "l",
            DataType::List(std::sync::Arc::new(uuid_field("item"))),
            true,
        );
        assert_eq!(duckdb_type_for_field(&list).unwrap(), "UUID[]");
        // Without the extension name, 16 bytes are a BLOB.
        let plain = Field::new("b", DataType::FixedSizeBinary(16), true);
        assert_eq!(duckdb_type_for_field(&plain).unwrap(), "BLOB");
    }
}
