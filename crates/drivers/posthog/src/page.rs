//! One query response (`{"columns": [...], "types": [...], "results": [[...], ...]}`) into an
//! Arrow batch. Ids and names are text, timestamps TIMESTAMP (UTC, microseconds); the JSON
//! `properties` column is spread into one column per property, typed by arrow-json's
//! inference (pages that disagree are widened by the table writer, merged by name).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType as ArrowType, Field, Schema, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use driver_api::{DriverError, Result};
use http_support::JsonOptions;
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::config::DataType;

/// A parsed query response.
#[derive(Debug)]
pub struct Page {
    /// Column names, as returned.
    pub columns: Vec<String>,
    /// ClickHouse type of each column, when the response says.
    pub types: Vec<Option<String>>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl Page {
    /// Reads a response body, moving its rows out (no copy per row).
    pub fn parse(mut body: Value) -> Result<Self> {
        let bad = |what: &str| DriverError::Remote {
            message: format!("PostHog answered with an unexpected query response: {what}"),
        };
        let columns: Vec<String> = body
            .get("columns")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `columns` list"))?
            .iter()
            .map(|c| {
                c.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("a column name is not text"))
            })
            .collect::<Result<_>>()?;
        let types_by_name: HashMap<&str, &str> = body
            .get("types")
            .and_then(Value::as_array)
            .map(|types| {
                types
                    .iter()
                    .filter_map(|t| Some((t.get(0)?.as_str()?, t.get(1)?.as_str()?)))
                    .collect()
            })
            .unwrap_or_default();
        let types = columns
            .iter()
            .map(|c| types_by_name.get(c.as_str()).map(|t| (*t).to_owned()))
            .collect();
        let Some(Value::Array(results)) = body.get_mut("results").map(Value::take) else {
            return Err(bad("no `results` list"));
        };
        let rows = results
            .into_iter()
            .map(|row| match row {
                Value::Array(values) if values.len() == columns.len() => Ok(values),
                _ => Err(bad("a row does not match the columns")),
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            columns,
            types,
            rows,
        })
    }

    /// Position of column `name`.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| DriverError::Remote {
                message: format!(
                    "PostHog's response has no `{name}` column (columns: {})",
                    self.columns.join(", ")
                ),
            })
    }
}

/// Parses a timestamp as PostHog writes it: RFC 3339 with any offset, or without an offset
/// (then UTC), with or without the `T`.
pub fn parse_timestamp(value: &Value) -> Option<Timestamp> {
    let text = value.as_str()?;
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// How a response column becomes table columns.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Text,
    Time,
    Bool,
    /// JSON object spread into `<prefix><property>` columns.
    Spread(&'static str),
    /// Typed by inference.
    Inferred,
}

fn kind_of(data_type: DataType, name: &str, clickhouse: Option<&str>) -> Kind {
    match (data_type, name) {
        (DataType::Events, "properties") => return Kind::Spread("properties_"),
        (DataType::Persons, "properties") => return Kind::Spread("person_properties_"),
        (_, "uuid" | "event" | "distinct_id" | "person_id" | "id" | "session_id") => {
            return Kind::Text;
        }
        (_, "timestamp" | "created_at" | "$start_timestamp" | "$end_timestamp") => {
            return Kind::Time;
        }
        (_, "is_identified") => return Kind::Bool,
        _ => {}
    }
    match clickhouse {
        Some(t) if t.contains("DateTime") => Kind::Time,
        _ => Kind::Inferred,
    }
}

/// Turns pages into batches, keeping property column names stable across pages.
#[derive(Debug)]
pub struct Converter {
    data_type: DataType,
    /// Property column of each (prefix, property name).
    names: HashMap<(&'static str, String), String>,
    /// Lower-cased column names taken (names are case-insensitive in DuckDB).
    taken: HashSet<String>,
}

impl Converter {
    /// A converter for one step.
    pub fn new(data_type: DataType) -> Self {
        Self {
            data_type,
            names: HashMap::new(),
            taken: HashSet::new(),
        }
    }

    fn property_column(&mut self, prefix: &'static str, property: String) -> String {
        let key = (prefix, property);
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let (prefix, property) = key;
        let base = format!("{prefix}{property}");
        let mut name = base.clone();
        let mut n = 1;
        while self.taken.contains(&name.to_lowercase()) {
            n += 1;
            name = format!("{base}_{n}");
        }
        self.taken.insert(name.to_lowercase());
        self.names.insert((prefix, property), name.clone());
        name
    }

    /// The rows `keep` of `page` as one batch.
    pub fn batch(&mut self, page: &Page, keep: &[usize]) -> Result<RecordBatch> {
        let kinds: Vec<Kind> = page
            .columns
            .iter()
            .zip(&page.types)
            .map(|(c, t)| kind_of(self.data_type, c, t.as_deref()))
            .collect();
        for (column, kind) in page.columns.iter().zip(&kinds) {
            if *kind != Kind::Inferred && !matches!(kind, Kind::Spread(_)) {
                self.taken.insert(column.to_lowercase());
            }
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (index, (column, kind)) in page.columns.iter().zip(&kinds).enumerate() {
            let values = keep.iter().map(|&r| &page.rows[r][index]);
            match kind {
                Kind::Text => {
                    let mut b = StringBuilder::new();
                    for v in values {
                        match v {
                            Value::Null => b.append_null(),
                            Value::String(s) => b.append_value(s),
                            other => b.append_value(other.to_string()),
                        }
                    }
                    fields.push(Field::new(column, ArrowType::Utf8, true));
                    arrays.push(Arc::new(b.finish()));
                }
                Kind::Time => {
                    let mut b = TimestampMicrosecondBuilder::new();
                    for v in values {
                        match v {
                            Value::Null => b.append_null(),
                            v => b.append_value(
                                parse_timestamp(v)
                                    .ok_or_else(|| DriverError::Data {
                                        message: format!(
                                            "column `{column}`: {v} is not a timestamp"
                                        ),
                                    })?
                                    .as_microsecond(),
                            ),
                        }
                    }
                    fields.push(Field::new(
                        column,
                        ArrowType::Timestamp(TimeUnit::Microsecond, None),
                        true,
                    ));
                    arrays.push(Arc::new(b.finish()));
                }
                Kind::Bool => {
                    let mut b = BooleanBuilder::new();
                    for v in values {
                        match v {
                            Value::Bool(x) => b.append_value(*x),
                            Value::Number(n) => b.append_value(n.as_i64() != Some(0)),
                            _ => b.append_null(),
                        }
                    }
                    fields.push(Field::new(column, ArrowType::Boolean, true));
                    arrays.push(Arc::new(b.finish()));
                }
                Kind::Inferred => {
                    let rows: Vec<Map<String, Value>> = values
                        .map(|v| {
                            let mut row = Map::new();
                            row.insert(column.clone(), scalar(v.clone()));
                            row
                        })
                        .collect();
                    let (f, a) = decode(rows, std::slice::from_ref(column))?;
                    fields.extend(f);
                    arrays.extend(a);
                }
                Kind::Spread(prefix) => {
                    let mut order: Vec<String> = Vec::new();
                    let mut in_order: HashSet<String> = HashSet::new();
                    let mut rows: Vec<Map<String, Value>> = Vec::with_capacity(keep.len());
                    for v in values {
                        let mut row = Map::new();
                        for (property, value) in properties(v, column)? {
                            let name = self.property_column(prefix, property);
                            if !in_order.contains(&name) {
                                in_order.insert(name.clone());
                                order.push(name.clone());
                            }
                            row.insert(name, scalar(value));
                        }
                        rows.push(row);
                    }
                    let (f, a) = decode(rows, &order)?;
                    fields.extend(f);
                    arrays.extend(a);
                }
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(keep.len()));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
            .map_err(|e| DriverError::internal(format!("cannot assemble a PostHog page: {e}")))
    }
}

/// The properties of a row: a JSON object, or JSON text holding one (HogQL returns text).
fn properties(value: &Value, column: &str) -> Result<Map<String, Value>> {
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map.clone()),
        Value::String(text) if text.is_empty() => Ok(Map::new()),
        Value::String(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(DriverError::Data {
                message: format!("column `{column}` holds {text:?}, not a JSON object"),
            }),
        },
        other => Err(DriverError::Data {
            message: format!("column `{column}` holds {other}, not a JSON object"),
        }),
    }
}

/// Objects and lists become JSON text; scalars stay.
fn scalar(value: Value) -> Value {
    match value {
        Value::Object(_) | Value::Array(_) => Value::String(value.to_string()),
        other => other,
    }
}

/// Decodes JSON rows into columns named `order`, typed by the shared JSON -> Arrow decoding.
fn decode(rows: Vec<Map<String, Value>>, order: &[String]) -> Result<(Vec<Field>, Vec<ArrayRef>)> {
    let len = rows.len();
    let records = rows.into_iter().map(Value::Object).collect();
    let batch = http_support::records_to_batch(records, JsonOptions { flatten: false })?;
    let mut fields = Vec::with_capacity(order.len());
    let mut arrays = Vec::with_capacity(order.len());
    for name in order {
        match batch
            .as_ref()
            .and_then(|b| Some((b.schema().index_of(name).ok()?, b)))
        {
            Some((index, batch)) => {
                fields.push(batch.schema().field(index).clone().with_nullable(true));
                arrays.push(Arc::clone(batch.column(index)));
            }
            None => {
                fields.push(Field::new(name, ArrowType::Utf8, true));
                arrays.push(arrow::array::new_null_array(&ArrowType::Utf8, len));
            }
        }
    }
    Ok((fields, arrays))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_spread_properties_with_case_suffix_and_json_text() {
        let page = Page::parse(json!({
            "columns": ["uuid", "event", "timestamp", "distinct_id", "person_id", "properties"],
            "types": [["timestamp", "DateTime64(6, 'UTC')"]],
            "results": [
                ["u1", "$pageview", "2024-01-01T10:00:00.123456+01:00", "d1", null,
                 "{\"$browser\": \"Firefox\", \"Plan\": 1, \"plan\": 2, \"tags\": [1, 2]}"],
                ["u2", "signup", "2024-01-01 09:30:00", "d2", "p2", "{\"plan\": 3.5}"]
            ]
        }))
        .unwrap();
        let mut converter = Converter::new(DataType::Events);
        let batch = converter.batch(&page, &[0, 1]).unwrap();
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "uuid",
                "event",
                "timestamp",
                "distinct_id",
                "person_id",
                "properties_$browser",
                "properties_Plan",
                "properties_plan_2",
                "properties_tags"
            ]
        );
        let ts = batch
            .column(2)
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(
            ts.value(0),
            "2024-01-01T09:00:00.123456Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_microsecond()
        );
        assert_eq!(
            ts.value(1),
            "2024-01-01T09:30:00Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_microsecond()
        );
        assert_eq!(batch.schema().field(7).data_type(), &ArrowType::Float64);
        let tags = batch
            .column(8)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!(tags.value(0), "[1,2]");
        // The next page keeps the names chosen on the first one.
        let page2 = Page::parse(json!({
            "columns": ["uuid", "event", "timestamp", "distinct_id", "person_id", "properties"],
            "results": [["u3", "x", "2024-01-02T00:00:00Z", "d", null, {"plan": "free"}]]
        }))
        .unwrap();
        let batch2 = converter.batch(&page2, &[0]).unwrap();
        assert_eq!(batch2.schema().field(5).name(), "properties_plan_2");
    }

    #[test]
    fn rows_not_kept_are_dropped_and_an_empty_page_still_has_its_columns() {
        let page = Page::parse(json!({
            "columns": ["session_id", "$start_timestamp", "duration"],
            "types": [["session_id", "String"], ["$start_timestamp", "DateTime64(6, 'UTC')"], ["duration", "Int64"]],
            "results": [["s1", "2024-01-01T00:00:00Z", 5], ["s2", "2024-01-01T00:00:01Z", 7]]
        }))
        .unwrap();
        let mut converter = Converter::new(DataType::Sessions);
        let batch = converter.batch(&page, &[1]).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema().field(2).data_type(), &ArrowType::Int64);
        let empty = converter.batch(&page, &[]).unwrap();
        assert_eq!(empty.num_columns(), 3);
        assert_eq!(empty.num_rows(), 0);
    }

    #[test]
    fn malformed_responses_are_remote_errors() {
        let error = Page::parse(json!({"columns": ["a"], "results": [[1, 2]]})).unwrap_err();
        assert!(
            error.to_string().contains("does not match the columns"),
            "{error}"
        );
    }
}
