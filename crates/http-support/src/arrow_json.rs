//! JSON records to Arrow batches, decoded by arrow-json (no per-row maps).
//!
//! One page at a time: a first pass over the records infers each column's kind, the few values
//! that must become JSON text are turned into strings in place, then arrow-json decodes all
//! records into columns at once. Nested objects decode as Arrow structs and are then split
//! into dotted columns (`a.b`) without copying. Types: integers Int64, other numbers Float64
//! (integers and fractions together: Float64), booleans Boolean, strings Utf8, lists (and
//! objects when not flattening) JSON text marked [`JSON_EXTENSION_NAME`], values of different
//! kinds in one column Utf8 holding their JSON text (strings stay as they are), a column with
//! only nulls Arrow `Null`. Columns are ordered by first appearance. Batches of different
//! pages may differ; [`TableWriter`](driver_api::TableWriter) in
//! [`SchemaEvolution::Widen`](driver_api::SchemaEvolution::Widen) merges them by name.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StructArray, make_array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema};
use arrow::json::ReaderBuilder;
use driver_api::{DriverError, JSON_EXTENSION_NAME, Result, json_field};
use serde_json::Value;

/// How records become columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonOptions {
    /// Nested objects become dotted columns (`{"a": {"b": 1}}` -> `a.b`); otherwise each
    /// top-level key is one column and objects are JSON text. Lists are JSON text either way.
    pub flatten: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        Self { flatten: true }
    }
}

/// The column a record that is not an object (a number, a string, a list) is stored in.
pub const VALUE_COLUMN: &str = "value";

#[derive(Debug, Clone)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    /// Lists, and objects when not flattening: stored as JSON text.
    Json,
    /// Values of different kinds: text (JSON text for non-strings).
    Mixed,
    Object(Columns),
}

impl Kind {
    fn needs_text(&self) -> bool {
        match self {
            Self::Json | Self::Mixed => true,
            Self::Object(columns) => columns.needs_text,
            _ => false,
        }
    }
}

/// The columns of an object level, in order of first appearance.
#[derive(Debug, Clone, Default)]
struct Columns {
    names: Vec<String>,
    kinds: Vec<Kind>,
    index: HashMap<String, usize>,
    needs_text: bool,
}

impl Columns {
    fn observe(&mut self, record: &serde_json::Map<String, Value>, flatten: bool) {
        for (position, (key, value)) in record.iter().enumerate() {
            // Records of one API mostly list their keys in the same order: try the key's
            // position first, hash only when it differs.
            let hinted = self.names.get(position).is_some_and(|n| n == key);
            let i = match hinted
                .then_some(position)
                .or_else(|| self.index.get(key).copied())
            {
                Some(i) => i,
                None => {
                    self.index.insert(key.clone(), self.names.len());
                    self.names.push(key.clone());
                    self.kinds.push(Kind::Null);
                    self.names.len() - 1
                }
            };
            merge(&mut self.kinds[i], value, flatten);
        }
        self.needs_text = self.kinds.iter().any(Kind::needs_text);
    }

    fn arrow_fields(&self) -> Fields {
        self.names
            .iter()
            .zip(&self.kinds)
            .map(|(name, kind)| Field::new(name, decode_type(kind), true))
            .collect()
    }
}

fn kind_of(value: &Value, flatten: bool) -> Kind {
    match value {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() => Kind::Int,
        Value::Number(_) => Kind::Float,
        Value::String(_) => Kind::Str,
        Value::Array(_) => Kind::Json,
        Value::Object(map) if flatten => {
            let mut columns = Columns::default();
            columns.observe(map, flatten);
            Kind::Object(columns)
        }
        Value::Object(_) => Kind::Json,
    }
}

fn merge(kind: &mut Kind, value: &Value, flatten: bool) {
    match (&mut *kind, value) {
        (_, Value::Null) => {}
        (Kind::Null, _) => *kind = kind_of(value, flatten),
        (Kind::Object(columns), Value::Object(map)) => columns.observe(map, flatten),
        (Kind::Mixed, _) => {}
        (Kind::Bool, Value::Bool(_)) | (Kind::Str, Value::String(_)) => {}
        (Kind::Json, Value::Array(_)) => {}
        (Kind::Json, Value::Object(_)) if !flatten => {}
        (Kind::Int, Value::Number(n)) => {
            if !n.is_i64() {
                *kind = Kind::Float;
            }
        }
        (Kind::Float, Value::Number(_)) => {}
        _ => *kind = Kind::Mixed,
    }
}

fn decode_type(kind: &Kind) -> DataType {
    match kind {
        Kind::Null => DataType::Null,
        Kind::Bool => DataType::Boolean,
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Str | Kind::Json | Kind::Mixed => DataType::Utf8,
        Kind::Object(columns) => DataType::Struct(columns.arrow_fields()),
    }
}

/// Turns the values of JSON and mixed columns into strings (in place) so arrow-json can decode
/// them as Utf8; numbers and booleans in mixed columns are coerced by arrow-json itself.
fn stringify(record: &mut serde_json::Map<String, Value>, columns: &Columns) {
    for (name, kind) in columns.names.iter().zip(&columns.kinds) {
        if !kind.needs_text() {
            continue;
        }
        let Some(value) = record.get_mut(name) else {
            continue;
        };
        match kind {
            Kind::Json | Kind::Mixed => {
                if matches!(value, Value::Array(_) | Value::Object(_)) {
                    *value = Value::String(value.to_string());
                }
            }
            Kind::Object(inner) => {
                if let Value::Object(map) = value {
                    stringify(map, inner);
                }
            }
            _ => {}
        }
    }
}

/// Decodes one page of records into a batch (`None` for no records). Records that are not
/// objects become rows with the single column [`VALUE_COLUMN`].
pub fn records_to_batch(records: Vec<Value>, options: JsonOptions) -> Result<Option<RecordBatch>> {
    if records.is_empty() {
        return Ok(None);
    }
    let mut rows: Vec<Value> = records
        .into_iter()
        .map(|record| match record {
            Value::Object(_) => record,
            other => {
                let mut map = serde_json::Map::with_capacity(1);
                map.insert(VALUE_COLUMN.into(), other);
                Value::Object(map)
            }
        })
        .collect();
    let mut columns = Columns::default();
    for row in &rows {
        if let Value::Object(map) = row {
            columns.observe(map, options.flatten);
        }
    }
    if columns.needs_text {
        for row in &mut rows {
            if let Value::Object(map) = row {
                stringify(map, &columns);
            }
        }
    }
    if columns.names.is_empty() {
        // Only empty objects: one all-null column keeps the row count.
        let schema = Arc::new(Schema::new(vec![Field::new(
            VALUE_COLUMN,
            DataType::Null,
            true,
        )]));
        let nulls: ArrayRef = Arc::new(arrow::array::NullArray::new(rows.len()));
        return RecordBatch::try_new(schema, vec![nulls])
            .map(Some)
            .map_err(|e| DriverError::internal(format!("cannot build a batch: {e}")));
    }
    let schema = Arc::new(Schema::new(columns.arrow_fields()));
    let mut decoder = ReaderBuilder::new(Arc::clone(&schema))
        .with_batch_size(rows.len())
        .with_coerce_primitive(true)
        .build_decoder()
        .map_err(|e| DriverError::internal(format!("cannot build the JSON decoder: {e}")))?;
    decoder
        .serialize(&rows)
        .map_err(|e| DriverError::data(format!("cannot decode the JSON records: {e}")))?;
    let decoded = decoder
        .flush()
        .map_err(|e| DriverError::data(format!("cannot decode the JSON records: {e}")))?
        .ok_or_else(|| DriverError::internal("the JSON decoder returned no batch"))?;
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for ((name, kind), array) in columns
        .names
        .iter()
        .zip(&columns.kinds)
        .zip(decoded.columns())
    {
        output_columns(name, kind, Arc::clone(array), &mut fields, &mut arrays)?;
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = fields.iter().find(|f| !seen.insert(f.name().clone())) {
        return Err(DriverError::data(format!(
            "two record keys give the column {:?} (a key containing a dot collides with a flattened nested key); set flatten_result: false",
            dup.name()
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map(Some)
        .map_err(|e| DriverError::internal(format!("cannot build a batch: {e}")))
}

/// Appends the output column(s) of one decoded column: structs split into dotted columns
/// (a null parent makes its children null), JSON columns marked as such.
fn output_columns(
    name: &str,
    kind: &Kind,
    array: ArrayRef,
    fields: &mut Vec<Field>,
    arrays: &mut Vec<ArrayRef>,
) -> Result<()> {
    match kind {
        Kind::Object(columns) => {
            let structs = array
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(|| {
                    DriverError::internal("a nested object did not decode as a struct")
                })?;
            let parent_nulls = structs.nulls().cloned();
            for ((child_name, child_kind), child) in columns
                .names
                .iter()
                .zip(&columns.kinds)
                .zip(structs.columns())
            {
                let child = with_parent_nulls(child, parent_nulls.as_ref());
                output_columns(
                    &format!("{name}.{child_name}"),
                    child_kind,
                    child,
                    fields,
                    arrays,
                )?;
            }
        }
        Kind::Json => {
            fields.push(json_field(name));
            arrays.push(array);
        }
        other => {
            fields.push(Field::new(name, decode_type(other), true));
            arrays.push(array);
        }
    }
    Ok(())
}

fn with_parent_nulls(child: &ArrayRef, parent: Option<&NullBuffer>) -> ArrayRef {
    let Some(parent) = parent else {
        return Arc::clone(child);
    };
    if child.data_type() == &DataType::Null {
        return Arc::clone(child);
    }
    let nulls = NullBuffer::union(Some(parent), child.logical_nulls().as_ref());
    let data = child.to_data().into_builder().nulls(nulls);
    // Only the validity changes; the layout is the child's own, so this cannot fail.
    match data.build() {
        Ok(data) => make_array(data),
        Err(_) => Arc::clone(child),
    }
}

/// Whether a field holds JSON text (see [`JSON_EXTENSION_NAME`]).
pub fn is_json_field(field: &Field) -> bool {
    field.extension_type_name() == Some(JSON_EXTENSION_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use serde_json::json;

    fn decode(records: Value, flatten: bool) -> RecordBatch {
        let Value::Array(records) = records else {
            panic!()
        };
        records_to_batch(records, JsonOptions { flatten })
            .unwrap()
            .unwrap()
    }

    fn columns(batch: &RecordBatch) -> Vec<String> {
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let json = if is_json_field(f) { " json" } else { "" };
                format!("{} {}{json}", f.name(), f.data_type())
            })
            .collect()
    }

    fn cells(batch: &RecordBatch, column: &str) -> Vec<String> {
        let array = batch.column(batch.schema().index_of(column).unwrap());
        let options = FormatOptions::default().with_null("NULL");
        let f = ArrayFormatter::try_new(array.as_ref(), &options).unwrap();
        (0..array.len()).map(|i| f.value(i).to_string()).collect()
    }

    #[test]
    fn infers_types_and_flattens_nested_objects() {
        let batch = decode(
            json!([
                {"id": 1, "score": 1, "user": {"name": "a", "geo": {"lat": 1.5}}, "tags": ["x"], "n": null},
                {"id": 2, "score": 2.5, "user": null, "tags": [], "extra": true, "n": null},
                {"id": 3, "user": {"name": "c", "geo": null}}
            ]),
            true,
        );
        assert_eq!(
            columns(&batch),
            [
                "id Int64",
                "score Float64",
                "user.name Utf8",
                "user.geo.lat Float64",
                "tags Utf8 json",
                "n Null",
                "extra Boolean"
            ]
        );
        assert_eq!(cells(&batch, "user.name"), ["a", "NULL", "c"]);
        assert_eq!(cells(&batch, "user.geo.lat"), ["1.5", "NULL", "NULL"]);
        assert_eq!(cells(&batch, "tags"), ["[\"x\"]", "[]", "NULL"]);
        assert_eq!(cells(&batch, "score"), ["1.0", "2.5", "NULL"]);
    }

    #[test]
    fn mixed_kinds_become_json_text_and_unflattened_objects_json() {
        let batch = decode(
            json!([
                {"v": 1, "o": {"a": 1}},
                {"v": "two", "o": {"a": [2]}},
                {"v": {"three": 3}, "o": 5},
                {"v": true}
            ]),
            true,
        );
        assert_eq!(columns(&batch), ["v Utf8", "o Utf8"]);
        assert_eq!(cells(&batch, "v"), ["1", "two", "{\"three\":3}", "true"]);
        assert_eq!(
            cells(&batch, "o"),
            ["{\"a\":1}", "{\"a\":[2]}", "5", "NULL"]
        );

        let batch = decode(json!([{"o": {"a": {"b": 1}}, "s": "x"}]), false);
        assert_eq!(columns(&batch), ["o Utf8 json", "s Utf8"]);
        assert_eq!(cells(&batch, "o"), ["{\"a\":{\"b\":1}}"]);
    }

    #[test]
    fn scalars_become_the_value_column() {
        let batch = decode(json!([1, 2, 3]), true);
        assert_eq!(columns(&batch), ["value Int64"]);
        assert_eq!(batch.num_rows(), 3);
        let batch = decode(json!([{}, {}]), true);
        assert_eq!(batch.num_rows(), 2);
        assert!(
            records_to_batch(Vec::new(), JsonOptions::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn colliding_dotted_names_fail_clearly() {
        let Value::Array(records) = json!([{"a.b": 1, "a": {"b": 2}}]) else {
            panic!()
        };
        let err = records_to_batch(records, JsonOptions { flatten: true }).unwrap_err();
        assert!(err.to_string().contains("\"a.b\""), "{err}");
    }
}
