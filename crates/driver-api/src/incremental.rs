//! Incremental reads by a cursor column, shared by every database extractor (`mysql`,
//! `postgres`, `supabase`): the `incremental:` config block, the saved state, the lower bound
//! of the next read, the de-duplication of rows at the saved cursor value and the new state
//! computed from the rows read (ADR 0033).
//!
//! A driver asks [`Cursor::bound`] for `cursor >= value` (inclusive) and translates it into
//! its own dialect, shows [`Cursor::check_schema`] the schema it is about to write, passes
//! every batch through [`Cursor::filter`] before writing it, and returns [`Cursor::state`] as
//! the step's state. The cursor comes from the data read, never from the clock, so clock skew
//! between runs or hosts cannot skip rows. Rows sharing the last cursor value are neither lost
//! (the read is inclusive) nor repeated (their keys are saved and dropped next time). Rows
//! whose cursor is NULL never satisfy the bound: only a run without a bound (the first run
//! without `initial_value`, or `--full-refresh`) reads them, and they never move the cursor.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, RecordBatch, StringArray,
};
use arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use arrow::datatypes::{DataType, Int64Type, Schema, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use execution_context::uuid;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::{DriverError, Result};

/// Version of the state this module writes.
const STATE_FORMAT: u64 = 1;
/// Above this many keys at one cursor value the state file grows large: a warning says so.
const MANY_KEYS: usize = 100_000;
const MICROS_PER_DAY: i128 = 86_400_000_000;

/// The `incremental:` block of an extractor step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalConfig {
    /// The column whose value grows whenever a row is inserted or changed (`updated_at`, an
    /// auto-increment id). Integer, decimal, date, timestamp or text.
    pub cursor: String,
    /// The columns identifying a row: rows at the saved cursor value are recognised by them.
    #[serde(deserialize_with = "non_empty_columns")]
    pub primary_key: Vec<String>,
    /// Where a run without a saved cursor starts (`cursor >= initial_value`). Default: read
    /// everything.
    #[serde(default)]
    pub initial_value: Option<InitialValue>,
    /// How far before the saved cursor the next read starts, to catch rows committed late with
    /// an older cursor value: a duration (`10m`, `2h`, `1d`, `1h30m`) for a date or timestamp
    /// cursor, a number for an integer or decimal cursor.
    #[serde(default)]
    pub lookback: Option<Lookback>,
}

/// `initial_value` as written: a number or a text the database compares with the cursor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum InitialValue {
    /// An integer (`initial_value: 1000`).
    Integer(i64),
    /// Any other value, e.g. `2024-01-01` or `2024-01-01 00:00:00`.
    Text(String),
}

/// `lookback` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookback {
    /// A duration in microseconds (date and timestamp cursors).
    Duration(i128),
    /// An amount subtracted from an integer or decimal cursor.
    Amount(u64),
}

impl<'de> Deserialize<'de> for Lookback {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Amount(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "expected a duration such as 30s, 10m, 2h, 1d or 1h30m (date/timestamp cursors) or a non-negative number (integer/decimal cursors)",
            )
        })? {
            Raw::Amount(n) => Ok(Self::Amount(n)),
            Raw::Text(text) => parse_duration(&text).map(Self::Duration).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a duration such as 30s, 10m, 2h, 1d or 1h30m"
                ))
            }),
        }
    }
}

fn non_empty_columns<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<String>, D::Error> {
    let columns = Vec::<String>::deserialize(deserializer)?;
    if columns.is_empty() || columns.iter().any(|c| c.is_empty()) {
        return Err(serde::de::Error::custom(
            "name the columns identifying a row, e.g. [id]",
        ));
    }
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].contains(c) {
            return Err(serde::de::Error::custom(format!(
                "column {c:?} is listed twice"
            )));
        }
    }
    Ok(columns)
}

/// `30s`, `10m`, `2h`, `1d`, `1h30m` in microseconds; `None` when not a positive duration.
fn parse_duration(text: &str) -> Option<i128> {
    let mut total: i128 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: i128 = match c {
            's' => 1_000_000,
            'm' => 60_000_000,
            'h' => 3_600_000_000,
            'd' => MICROS_PER_DAY,
            _ => return None,
        };
        let n: i128 = number.parse().ok()?;
        number.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    (any && number.is_empty() && total > 0 && total < 1_000 * 365 * MICROS_PER_DAY).then_some(total)
}

/// The type of a cursor column, as saved in the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorType {
    /// Any signed or unsigned integer.
    Integer,
    /// A decimal with this scale.
    Decimal(i8),
    /// A date (days since 1970-01-01).
    Date,
    /// A timestamp without time zone (microseconds).
    Timestamp,
    /// A timestamp with time zone (microseconds since the epoch, UTC).
    TimestampTz,
    /// Text, compared byte by byte (ISO timestamps, zero-padded codes).
    Text,
}

impl CursorType {
    /// The cursor type of a column; a uuid is compared as its canonical text, which orders
    /// as its bytes do (time-ordered UUIDv7 keys make good cursors).
    fn of_field(field: &arrow::datatypes::Field) -> Option<Self> {
        if crate::is_uuid(field) {
            return Some(Self::Text);
        }
        Self::of(field.data_type())
    }

    fn of(data_type: &DataType) -> Option<Self> {
        Some(match data_type {
            integer if integer.is_integer() => Self::Integer,
            DataType::Decimal128(_, s) => Self::Decimal(*s),
            DataType::Date32 => Self::Date,
            DataType::Timestamp(unit, tz) if *unit != TimeUnit::Nanosecond => {
                if tz.is_some() {
                    Self::TimestampTz
                } else {
                    Self::Timestamp
                }
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Self::Text,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Decimal(_) => "decimal",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
            Self::TimestampTz => "timestamptz",
            Self::Text => "text",
        }
    }

    fn temporal(self) -> bool {
        matches!(self, Self::Date | Self::Timestamp | Self::TimestampTz)
    }

    fn numeric(self) -> bool {
        matches!(self, Self::Integer | Self::Decimal(_))
    }
}

/// A cursor value: numbers, dates and timestamps as one integer (timestamps in microseconds,
/// decimals scaled), text as text. Values of one cursor always have one type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Val {
    Num(i128),
    Text(String),
}

/// The lower bound of a read: `column >= value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The cursor column.
    pub column: String,
    /// The value, to be written as a literal of the driver's dialect.
    pub value: BoundValue,
}

/// A bound's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundValue {
    /// A number, safe to write without quotes (`-12`, `1234.50`).
    Number(String),
    /// Anything else (`2024-05-01 10:00:00.000000`): write it as a quoted string literal and
    /// let the database convert it to the column's type.
    Text(String),
}

impl BoundValue {
    /// The value's text, without quotes.
    pub fn text(&self) -> &str {
        match self {
            Self::Number(t) | Self::Text(t) => t,
        }
    }
}

/// The saved cursor of the previous successful run.
#[derive(Debug, Clone)]
struct Saved {
    kind: CursorType,
    value: Val,
    /// The keys (each a JSON array of the key columns' text) of the rows at `value`.
    keys: BTreeSet<String>,
}

/// The columns a batch is checked against, found by name.
#[derive(Debug, Clone)]
struct Columns {
    cursor: usize,
    keys: Vec<usize>,
    /// The cursor column's type.
    kind: CursorType,
}

/// One run of an incremental extractor step.
#[derive(Debug)]
pub struct Cursor {
    config: IncrementalConfig,
    saved: Option<Saved>,
    kind: Option<CursorType>,
    /// The greatest cursor value read in this run and the keys of its rows.
    max: Option<Val>,
    max_keys: BTreeSet<String>,
    skipped: u64,
    null_cursors: u64,
    /// Whether the cursor's type was checked against `lookback` and `initial_value`.
    checked: bool,
}

/// Opens an extractor's incremental read, when its config has one: refuses the config keys a
/// cursor read cannot honour (`conflicts`: each key and whether the step sets it), then starts
/// the cursor from the step's saved `state`.
pub fn start(
    config: Option<&IncrementalConfig>,
    state: Option<&Value>,
    conflicts: &[(&str, bool)],
) -> Result<Option<Cursor>> {
    let Some(config) = config else {
        return Ok(None);
    };
    if let Some((key, _)) = conflicts.iter().find(|(_, set)| *set) {
        return Err(DriverError::config(
            *key,
            "cannot be combined with `incremental`: an incremental read takes every row past the saved cursor, in the order the cursor needs",
        ));
    }
    Cursor::new(config, state).map(Some)
}

/// Ends an extractor's read: with a cursor, its `incremental.read` event and `output` carrying
/// the state to save; without one, `output` as it is.
pub fn finish(
    cursor: Option<&Cursor>,
    ctx: &crate::StepContext,
    bound: Option<&Bound>,
    output: crate::StepOutput,
) -> crate::StepOutput {
    match cursor {
        Some(cursor) => {
            cursor.report(ctx, bound);
            output.with_state(cursor.state())
        }
        None => output,
    }
}

impl Cursor {
    /// Starts a run from the step's saved `state` ([`StepContext::state`](crate::StepContext::state);
    /// `None` on a first run or with `--full-refresh`). A state saved for another cursor or
    /// key, or that is not a state of this module, is a config error telling how to start over.
    pub fn new(config: &IncrementalConfig, state: Option<&Value>) -> Result<Self> {
        let saved = match state {
            None => None,
            Some(state) => parse_state(config, state)?,
        };
        Ok(Self {
            config: config.clone(),
            kind: saved.as_ref().map(|s| s.kind),
            saved,
            max: None,
            max_keys: BTreeSet::new(),
            skipped: 0,
            null_cursors: 0,
            checked: false,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &IncrementalConfig {
        &self.config
    }

    /// Whether a previous run saved a cursor.
    pub fn has_saved(&self) -> bool {
        self.saved.is_some()
    }

    /// The bound of this run's read: the saved cursor minus `lookback`, else `initial_value`,
    /// else none (read everything, NULL cursors included). Fails when `lookback` does not fit
    /// the saved cursor's type.
    pub fn bound(&self) -> Result<Option<Bound>> {
        let value = match &self.saved {
            Some(saved) => {
                let value = match (&saved.value, self.config.lookback) {
                    (value, None) => value.clone(),
                    (Val::Num(v), Some(lookback)) => {
                        Val::Num(v - lookback_amount(saved.kind, lookback, &self.config.cursor)?)
                    }
                    (Val::Text(_), Some(_)) => {
                        return Err(lookback_mismatch(&self.config.cursor, saved.kind));
                    }
                };
                match value {
                    Val::Num(n) if saved.kind.numeric() => {
                        BoundValue::Number(format_value(saved.kind, &Val::Num(n)))
                    }
                    other => BoundValue::Text(format_value(saved.kind, &other)),
                }
            }
            None => match &self.config.initial_value {
                None => return Ok(None),
                Some(InitialValue::Integer(n)) => BoundValue::Number(n.to_string()),
                Some(InitialValue::Text(t)) => BoundValue::Text(t.clone()),
            },
        };
        Ok(Some(Bound {
            column: self.config.cursor.clone(),
            value,
        }))
    }

    /// The columns a keyset-paged read orders by: the cursor, then the key.
    pub fn order_columns(&self) -> Vec<&str> {
        std::iter::once(self.config.cursor.as_str())
            .chain(self.config.primary_key.iter().map(String::as_str))
            .collect()
    }

    /// Checks that `schema` (what the step is about to write) holds the cursor and key
    /// columns, that the cursor's type can be a cursor, agrees with the saved state and with
    /// `lookback`, and that `initial_value` is a value of that type. Call it before writing
    /// any row; [`filter`](Self::filter) calls it for every batch too.
    pub fn check_schema(&mut self, schema: &Schema) -> Result<()> {
        self.columns(schema).map(drop)
    }

    fn columns(&mut self, schema: &Schema) -> Result<Columns> {
        let find = |name: &str, key: &str| -> Result<usize> {
            let fields = schema.fields();
            fields
                .iter()
                .position(|f| f.name() == name)
                .or_else(|| {
                    let mut matches = fields
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| f.name().eq_ignore_ascii_case(name));
                    match (matches.next(), matches.next()) {
                        (Some((i, _)), None) => Some(i),
                        _ => None,
                    }
                })
                .ok_or_else(|| {
                    DriverError::config(
                        key,
                        format!(
                            "column {name:?} is not among the columns read ({}); read it too",
                            fields
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
        };
        let cursor = find(&self.config.cursor, "incremental.cursor")?;
        let keys = self
            .config
            .primary_key
            .iter()
            .map(|k| find(k, "incremental.primary_key"))
            .collect::<Result<Vec<_>>>()?;
        let data_type = schema.field(cursor).data_type();
        let kind = CursorType::of_field(schema.field(cursor)).ok_or_else(|| {
            DriverError::config(
                "incremental.cursor",
                format!(
                    "column {:?} is {data_type}; a cursor must be an integer, decimal, date, timestamp or text column",
                    self.config.cursor
                ),
            )
        })?;
        if !self.checked {
            self.validate_kind(kind)?;
            self.checked = true;
        }
        if let Some(known) = self.kind
            && known != kind
        {
            return Err(DriverError::config(
                "incremental.cursor",
                format!(
                    "column {:?} is now {data_type} ({}) but the saved cursor is {}; run with --full-refresh to start over",
                    self.config.cursor,
                    kind.name(),
                    known.name()
                ),
            ));
        }
        self.kind = Some(kind);
        Ok(Columns { cursor, keys, kind })
    }

    fn validate_kind(&self, kind: CursorType) -> Result<()> {
        if let Some(lookback) = self.config.lookback {
            lookback_amount(kind, lookback, &self.config.cursor)?;
        }
        if self.saved.is_none()
            && let Some(InitialValue::Text(text)) = &self.config.initial_value
            && kind != CursorType::Text
        {
            parse_value(kind, &arrow_type(kind), text).map_err(|_| {
                DriverError::config(
                    "incremental.initial_value",
                    format!(
                        "{text:?} is not a {} value of column {:?}",
                        kind.name(),
                        self.config.cursor
                    ),
                )
            })?;
        }
        Ok(())
    }

    /// Drops the rows of `batch` that the previous run delivered (cursor equal to the saved
    /// value and key among the saved keys) and records the cursor and keys of the rest.
    pub fn filter(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let columns = self.columns(&batch.schema())?;
        let kind = columns.kind;
        let values = cursor_values(kind, batch.column(columns.cursor))?;
        let keep: Option<Vec<bool>> = match &self.saved {
            Some(saved) if !saved.keys.is_empty() => {
                let keys = KeyText::new(&batch, &columns.keys)?;
                let mut keep = Vec::with_capacity(values.len());
                let mut dropped = 0u64;
                for (i, value) in values.iter().enumerate() {
                    let seen =
                        value.as_ref() == Some(&saved.value) && saved.keys.contains(&keys.key(i));
                    dropped += u64::from(seen);
                    keep.push(!seen);
                }
                self.skipped += dropped;
                (dropped > 0).then_some(keep)
            }
            _ => None,
        };
        let (batch, values) = match keep {
            None => (batch, values),
            Some(keep) => {
                let values = values
                    .into_iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(v, _)| v)
                    .collect();
                let filtered = filter_record_batch(&batch, &BooleanArray::from(keep))
                    .map_err(|e| DriverError::internal(format!("cannot filter a batch: {e}")))?;
                (filtered, values)
            }
        };
        let keys = KeyText::new(&batch, &columns.keys)?;
        self.track(&values, &keys);
        drop(keys);
        Ok(batch)
    }

    /// Records the greatest cursor value of a batch's rows and the keys of the rows at it.
    fn track(&mut self, values: &[Option<Val>], keys: &KeyText) {
        let batch_max = values.iter().flatten().max();
        self.null_cursors += values.iter().filter(|v| v.is_none()).count() as u64;
        let Some(batch_max) = batch_max else {
            return;
        };
        match &self.max {
            Some(max) if max > batch_max => return,
            Some(max) if max == batch_max => {}
            _ => {
                self.max = Some(batch_max.clone());
                self.max_keys.clear();
            }
        }
        for (i, value) in values.iter().enumerate() {
            if value.as_ref() == Some(batch_max) {
                self.max_keys.insert(keys.key(i));
            }
        }
    }

    /// Writes the `incremental.read` event: the cursor, the bound read from, the rows dropped
    /// as already delivered, the rows with a NULL cursor and the value saved if the run
    /// succeeds. Drivers call it once, after the read.
    pub fn report(&self, ctx: &crate::StepContext, bound: Option<&Bound>) {
        let state = self.state();
        ctx.event(
            "incremental.read",
            execution_context::object([
                ("cursor", self.config.cursor.clone().into()),
                (
                    "from",
                    bound.map_or(Value::Null, |b| Value::String(b.value.text().to_owned())),
                ),
                ("rows_skipped", self.skipped.into()),
                ("null_cursors", self.null_cursors.into()),
                ("next_value", state["value"].clone()),
            ]),
        );
    }

    /// Rows dropped because the previous run delivered them.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Rows read whose cursor is NULL.
    pub fn null_cursors(&self) -> u64 {
        self.null_cursors
    }

    /// The state to save: the greatest cursor value read (never below the saved one) and
    /// the keys of the rows at it. Without any cursor value yet the state says so, so that
    /// a `--full-refresh` that found nothing also replaces an old cursor.
    pub fn state(&self) -> Value {
        let (kind, value, keys): (Option<CursorType>, Option<&Val>, BTreeSet<String>) =
            match (&self.saved, &self.max) {
                (Some(saved), Some(max)) if *max < saved.value => {
                    (Some(saved.kind), Some(&saved.value), saved.keys.clone())
                }
                (Some(saved), Some(max)) if *max == saved.value => (
                    Some(saved.kind),
                    Some(&saved.value),
                    saved.keys.union(&self.max_keys).cloned().collect(),
                ),
                (_, Some(max)) => (self.kind, Some(max), self.max_keys.clone()),
                (Some(saved), None) => (Some(saved.kind), Some(&saved.value), saved.keys.clone()),
                (None, None) => (self.kind, None, BTreeSet::new()),
            };
        if keys.len() > MANY_KEYS {
            tracing::warn!(
                cursor = %self.config.cursor,
                keys = keys.len(),
                "many rows share the last cursor value; their keys make the state file large"
            );
        }
        let keys: Vec<Value> = keys
            .iter()
            .map(|k| serde_json::from_str(k).expect("keys are JSON arrays"))
            .collect();
        json!({
            "format": STATE_FORMAT,
            "cursor": self.config.cursor,
            "primary_key": self.config.primary_key,
            "type": kind.map(CursorType::name),
            "scale": match kind { Some(CursorType::Decimal(s)) => Some(s), _ => None },
            "value": match (kind, value) {
                (Some(kind), Some(value)) => Value::String(format_value(kind, value)),
                _ => Value::Null,
            },
            "keys_at_value": keys,
        })
    }
}

fn lookback_mismatch(cursor: &str, kind: CursorType) -> DriverError {
    DriverError::config(
        "incremental.lookback",
        format!(
            "column {cursor:?} is a {} cursor; lookback needs a date or timestamp cursor (a duration such as 10m) or an integer or decimal cursor (a number)",
            kind.name()
        ),
    )
}

/// `lookback` as an amount of the cursor's integer representation.
fn lookback_amount(kind: CursorType, lookback: Lookback, cursor: &str) -> Result<i128> {
    match (kind, lookback) {
        (CursorType::Timestamp | CursorType::TimestampTz, Lookback::Duration(micros)) => Ok(micros),
        // A date cursor steps back whole days, at least one.
        (CursorType::Date, Lookback::Duration(micros)) => {
            Ok((micros + MICROS_PER_DAY - 1) / MICROS_PER_DAY)
        }
        (CursorType::Integer, Lookback::Amount(n)) => Ok(i128::from(n)),
        (CursorType::Decimal(scale), Lookback::Amount(n)) => {
            Ok(i128::from(n) * 10i128.pow(u32::from(scale.max(0) as u8)))
        }
        (kind, Lookback::Amount(_)) if kind.temporal() => Err(DriverError::config(
            "incremental.lookback",
            format!(
                "column {cursor:?} is a {} cursor; write lookback as a duration such as 10m, 2h or 1d",
                kind.name()
            ),
        )),
        (kind, Lookback::Duration(_)) if kind.numeric() => Err(DriverError::config(
            "incremental.lookback",
            format!(
                "column {cursor:?} is a {} cursor; write lookback as a number of cursor units, not a duration",
                kind.name()
            ),
        )),
        (kind, _) => Err(lookback_mismatch(cursor, kind)),
    }
}

fn arrow_type(kind: CursorType) -> DataType {
    match kind {
        CursorType::Integer => DataType::Decimal128(38, 0),
        CursorType::Decimal(s) => DataType::Decimal128(38, s),
        CursorType::Date => DataType::Date32,
        CursorType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        CursorType::TimestampTz => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        }
        CursorType::Text => DataType::Utf8,
    }
}

/// The values of a cursor column, as comparable [`Val`]s.
fn cursor_values(kind: CursorType, array: &ArrayRef) -> Result<Vec<Option<Val>>> {
    if kind == CursorType::Text {
        if let Some(uuids) = array.as_fixed_size_binary_opt() {
            return Ok(uuids
                .iter()
                .map(|v| {
                    v.and_then(|b| b.try_into().ok())
                        .map(|b| Val::Text(uuid::string(b)))
                })
                .collect());
        }
        let text = cast(array, &DataType::Utf8)?;
        return Ok(text
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|s| Val::Text(s.to_owned())))
            .collect());
    }
    let normalized = match kind {
        CursorType::Integer | CursorType::Decimal(_) => cast(array, &arrow_type(kind))?,
        CursorType::Date => {
            let days = cast(array, &DataType::Int32)?;
            return Ok(days
                .as_primitive::<arrow::datatypes::Int32Type>()
                .iter()
                .map(|v| v.map(|d| Val::Num(i128::from(d))))
                .collect());
        }
        CursorType::Timestamp | CursorType::TimestampTz => {
            let micros = cast(array, &arrow_type(kind))?;
            let micros = cast(&micros, &DataType::Int64)?;
            return Ok(micros
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|m| Val::Num(i128::from(m))))
                .collect());
        }
        CursorType::Text => unreachable!("handled above"),
    };
    Ok(normalized
        .as_primitive::<arrow::datatypes::Decimal128Type>()
        .iter()
        .map(|v| v.map(Val::Num))
        .collect())
}

fn cast(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(array, to, &strict)
        .map_err(|e| DriverError::data(format!("cannot read a cursor value as {to}: {e}")))
}

/// Parses `text` as a value of a cursor of type `kind` (Arrow's own parsers).
fn parse_value(kind: CursorType, data_type: &DataType, text: &str) -> Result<Val> {
    if kind == CursorType::Text {
        return Ok(Val::Text(text.to_owned()));
    }
    let array: ArrayRef = Arc::new(StringArray::from(vec![text]));
    let typed = cast(&array, data_type)?;
    cursor_values(kind, &typed)?
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| DriverError::data(format!("{text:?} is not a cursor value")))
}

/// The text form of a cursor value, as saved and as written into a bound: integers and
/// decimals exactly, dates `YYYY-MM-DD`, timestamps `YYYY-MM-DD HH:MM:SS.ffffff` (with
/// `+00:00` when they carry a time zone).
fn format_value(kind: CursorType, value: &Val) -> String {
    match (kind, value) {
        (_, Val::Text(t)) => t.clone(),
        (CursorType::Decimal(scale), Val::Num(n)) if scale > 0 => {
            let scale = scale as usize;
            let digits = n.unsigned_abs().to_string();
            let digits = format!("{digits:0>width$}", width = scale + 1);
            let (int, frac) = digits.split_at(digits.len() - scale);
            format!("{}{int}.{frac}", if *n < 0 { "-" } else { "" })
        }
        (CursorType::Date, Val::Num(days)) => {
            let (y, m, d) = civil(*days);
            format!("{y:04}-{m:02}-{d:02}")
        }
        (CursorType::Timestamp | CursorType::TimestampTz, Val::Num(micros)) => {
            let days = micros.div_euclid(MICROS_PER_DAY);
            let rest = micros.rem_euclid(MICROS_PER_DAY);
            let (y, m, d) = civil(days);
            let secs = rest / 1_000_000;
            let text = format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                rest % 1_000_000
            );
            if kind == CursorType::TimestampTz {
                text + "+00:00"
            } else {
                text
            }
        }
        (_, Val::Num(n)) => n.to_string(),
    }
}

/// The civil date of a day number. Cursor dates and timestamps come from 32- and 64-bit
/// values, so the day number always fits the shared calendar's `i64`; one that did not would
/// saturate (a date no database holds) rather than wrap.
fn civil(days: i128) -> (i64, u32, u32) {
    let days = i64::try_from(days).unwrap_or(if days < 0 { i64::MIN / 2 } else { i64::MAX / 2 });
    execution_context::calendar::civil_from_days(days)
}

/// The key of a row as text: a JSON array of the key columns' values (text, NULL as null).
struct KeyText<'a> {
    parts: Vec<KeyPart<'a>>,
}

/// How one key column prints: UUIDs in their canonical text (as they were saved when they
/// travelled as text), anything else as Arrow displays it.
enum KeyPart<'a> {
    Uuid(&'a FixedSizeBinaryArray),
    Display(ArrayFormatter<'a>, &'a ArrayRef),
}

impl<'a> KeyText<'a> {
    fn new(batch: &'a RecordBatch, keys: &[usize]) -> Result<Self> {
        let options = FormatOptions::default();
        let parts = keys
            .iter()
            .map(|&i| {
                let array = batch.column(i);
                if crate::is_uuid(batch.schema_ref().field(i)) {
                    return Ok(KeyPart::Uuid(array.as_fixed_size_binary()));
                }
                ArrayFormatter::try_new(array.as_ref(), &options)
                    .map(|f| KeyPart::Display(f, array))
                    .map_err(|e| DriverError::internal(format!("cannot format a key column: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { parts })
    }

    fn key(&self, row: usize) -> String {
        let parts: Vec<Value> = self
            .parts
            .iter()
            .map(|part| match part {
                KeyPart::Uuid(array) if array.is_valid(row) => {
                    let bytes = <&[u8; 16]>::try_from(array.value(row));
                    bytes.map_or(Value::Null, |b| Value::String(uuid::string(b)))
                }
                KeyPart::Display(f, array) if array.is_valid(row) => {
                    Value::String(f.value(row).to_string())
                }
                _ => Value::Null,
            })
            .collect();
        Value::Array(parts).to_string()
    }
}

/// Reads a saved state; `Ok(None)` for a state without a cursor value yet.
fn parse_state(config: &IncrementalConfig, state: &Value) -> Result<Option<Saved>> {
    let bad = |what: String| {
        DriverError::config(
            "incremental",
            format!(
                "the saved incremental state {what}; run with --full-refresh to start over (or fix the state file)"
            ),
        )
    };
    if state.get("format").and_then(Value::as_u64) != Some(STATE_FORMAT) {
        return Err(bad("is not a cursor state of this version".into()));
    }
    if state.get("cursor").and_then(Value::as_str) != Some(config.cursor.as_str()) {
        return Err(bad(format!(
            "is for cursor {} but the step's cursor is {:?}",
            state.get("cursor").unwrap_or(&Value::Null),
            config.cursor
        )));
    }
    if state.get("primary_key") != Some(&json!(config.primary_key)) {
        return Err(bad(format!(
            "is for primary_key {} but the step's primary_key is {:?}",
            state.get("primary_key").unwrap_or(&Value::Null),
            config.primary_key
        )));
    }
    let Some(text) = state.get("value").and_then(Value::as_str) else {
        return Ok(None);
    };
    let kind = match (
        state.get("type").and_then(Value::as_str),
        state.get("scale").and_then(Value::as_i64),
    ) {
        (Some("integer"), _) => CursorType::Integer,
        (Some("decimal"), Some(s)) if (0..=38).contains(&s) => CursorType::Decimal(s as i8),
        (Some("date"), _) => CursorType::Date,
        (Some("timestamp"), _) => CursorType::Timestamp,
        (Some("timestamptz"), _) => CursorType::TimestampTz,
        (Some("text"), _) => CursorType::Text,
        (other, _) => return Err(bad(format!("has an unknown cursor type {other:?}"))),
    };
    let value = parse_value(kind, &arrow_type(kind), text)
        .map_err(|_| bad(format!("holds {text:?}, not a {} value", kind.name())))?;
    let mut keys = BTreeSet::new();
    for key in state
        .get("keys_at_value")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("has no keys_at_value list".into()))?
    {
        let ok = key.as_array().is_some_and(|parts| {
            parts.len() == config.primary_key.len()
                && parts.iter().all(|p| p.is_string() || p.is_null())
        });
        if !ok {
            return Err(bad(format!(
                "holds the key {key}, not one value per key column"
            )));
        }
        keys.insert(key.to_string());
    }
    Ok(Some(Saved { kind, value, keys }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, TimestampMicrosecondArray};
    use arrow::datatypes::Field;

    fn config(yaml: &str) -> IncrementalConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn batch(ids: &[i64], cursors: &[Option<i64>]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "updated_at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(TimestampMicrosecondArray::from(cursors.to_vec())),
            ],
        )
        .unwrap()
    }

    fn ids(batch: &RecordBatch) -> Vec<i64> {
        batch
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }

    const T: i64 = 1_714_557_600_000_000; // 2024-05-01 10:00:00

    #[test]
    fn config_is_validated_when_parsed() {
        let ok = config("{cursor: updated_at, primary_key: [id], lookback: 1h30m}");
        assert_eq!(ok.lookback, Some(Lookback::Duration(5_400_000_000)));
        let err = |yaml: &str| {
            serde_yaml::from_str::<IncrementalConfig>(yaml)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("{cursor: a, primary_key: [id], lookbak: 1m}").contains("unknown field `lookbak`")
        );
        assert!(
            err("{cursor: a, primary_key: [id], lookback: 10 minutes}").contains("not a duration")
        );
        assert!(err("{cursor: a}").contains("missing field `primary_key`"));
        assert!(err("{cursor: a, primary_key: []}").contains("columns identifying a row"));
        assert!(err("{cursor: a, primary_key: [id, id]}").contains("listed twice"));
        assert_eq!(parse_duration("1d"), Some(MICROS_PER_DAY));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("0s"), None);
    }

    #[test]
    fn rows_at_the_saved_value_are_neither_lost_nor_repeated() {
        let config = config("{cursor: updated_at, primary_key: [id]}");
        // Run 1: ids 1 and 2 share the last value T, across two batches.
        let mut run = Cursor::new(&config, None).unwrap();
        assert_eq!(run.bound().unwrap(), None);
        run.filter(batch(&[0, 1], &[Some(T - 5), Some(T)])).unwrap();
        run.filter(batch(&[2], &[Some(T)])).unwrap();
        let state = run.state();
        assert_eq!(state["value"], "2024-05-01 10:00:00.000000");
        assert_eq!(state["keys_at_value"], json!([["1"], ["2"]]));
        // Run 2 reads >= T: 1 and 2 again, and 3 committed since with the same value.
        let mut run = Cursor::new(&config, Some(&state)).unwrap();
        assert_eq!(
            run.bound().unwrap().unwrap().value,
            BoundValue::Text("2024-05-01 10:00:00.000000".into())
        );
        let out = run
            .filter(batch(&[1, 3, 2], &[Some(T), Some(T), Some(T)]))
            .unwrap();
        assert_eq!(ids(&out), [3]);
        assert_eq!(run.skipped(), 2);
        let state = run.state();
        assert_eq!(state["keys_at_value"], json!([["1"], ["2"], ["3"]]));
        // Run 3: a later value replaces the keys.
        let mut run = Cursor::new(&config, Some(&state)).unwrap();
        let out = run.filter(batch(&[3, 4], &[Some(T), Some(T + 1)])).unwrap();
        assert_eq!(ids(&out), [4]);
        assert_eq!(run.state()["keys_at_value"], json!([["4"]]));
        assert_eq!(run.state()["value"], "2024-05-01 10:00:00.000001");
    }

    #[test]
    fn uuid_keys_are_saved_as_their_canonical_text() {
        // PostgreSQL uuids travel as 16 bytes (ADR 0041); states saved when they travelled as
        // text must still recognise the same rows.
        let config = config("{cursor: updated_at, primary_key: [id]}");
        let schema = Arc::new(Schema::new(vec![
            crate::uuid_field("id"),
            Field::new(
                "updated_at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
        ]));
        let uuids = |first: &[u8]| {
            let values: Vec<Option<[u8; 16]>> = first
                .iter()
                .map(|&b| {
                    Some(core::array::from_fn(
                        |i| if i == 0 { b } else { i as u8 * 17 },
                    ))
                })
                .collect();
            arrow::array::FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                values.into_iter(),
                16,
            )
            .unwrap()
        };
        let batch = |first: &[u8]| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(uuids(first)),
                    Arc::new(TimestampMicrosecondArray::from(vec![Some(T); first.len()])),
                ],
            )
            .unwrap()
        };
        let mut run = Cursor::new(&config, None).unwrap();
        run.filter(batch(&[0xab])).unwrap();
        let state = run.state();
        assert_eq!(
            state["keys_at_value"],
            json!([["ab112233-4455-6677-8899-aabbccddeeff"]])
        );
        let mut again = Cursor::new(&config, Some(&state)).unwrap();
        let out = again.filter(batch(&[0xab, 0x01])).unwrap();
        assert_eq!(out.num_rows(), 1);
        assert_eq!(again.skipped(), 1);
    }

    #[test]
    fn a_uuid_cursor_compares_as_its_canonical_text() {
        let config = config("{cursor: u, primary_key: [u]}");
        let schema = Arc::new(Schema::new(vec![crate::uuid_field("u")]));
        let batch = |firsts: &[u8]| {
            let values = firsts.iter().map(|&b| {
                Some(core::array::from_fn::<u8, 16, _>(|i| {
                    if i == 0 { b } else { 0 }
                }))
            });
            let array =
                arrow::array::FixedSizeBinaryArray::try_from_sparse_iter_with_size(values, 16)
                    .unwrap();
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(array)]).unwrap()
        };
        let mut run = Cursor::new(&config, None).unwrap();
        run.filter(batch(&[0x01, 0xab, 0x0c])).unwrap();
        let state = run.state();
        assert_eq!(state["type"], "text");
        assert_eq!(state["value"], "ab000000-0000-0000-0000-000000000000");
        let mut again = Cursor::new(&config, Some(&state)).unwrap();
        assert_eq!(
            again.bound().unwrap().unwrap().value,
            BoundValue::Text("ab000000-0000-0000-0000-000000000000".into())
        );
        let out = again.filter(batch(&[0xab, 0xac])).unwrap();
        assert_eq!(
            out.num_rows(),
            1,
            "the row at the saved value is not read twice"
        );
    }

    #[test]
    fn null_cursors_never_move_the_cursor_and_nothing_read_keeps_it() {
        let config = config("{cursor: updated_at, primary_key: [id]}");
        let mut run = Cursor::new(&config, None).unwrap();
        run.filter(batch(&[1, 2], &[None, None])).unwrap();
        assert_eq!(run.null_cursors(), 2);
        let empty = run.state();
        assert_eq!(empty["value"], Value::Null);
        let mut again = Cursor::new(&config, Some(&empty)).unwrap();
        assert!(!again.has_saved());
        assert_eq!(again.bound().unwrap(), None);
        again.filter(batch(&[1, 3], &[None, Some(T)])).unwrap();
        let state = again.state();
        assert_eq!(state["keys_at_value"], json!([["3"]]));
        let run = Cursor::new(&config, Some(&state)).unwrap();
        assert_eq!(
            run.state(),
            state,
            "a run that read nothing keeps the cursor"
        );
    }

    #[test]
    fn lookback_moves_the_bound_back_and_must_fit_the_type() {
        let config = config("{cursor: updated_at, primary_key: [id], lookback: 10m}");
        let mut run = Cursor::new(&config, None).unwrap();
        run.filter(batch(&[1], &[Some(T)])).unwrap();
        let state = run.state();
        let run = Cursor::new(&config, Some(&state)).unwrap();
        assert_eq!(
            run.bound().unwrap().unwrap().value.text(),
            "2024-05-01 09:50:00.000000"
        );
        // The cursor never goes back, whatever the window re-reads.
        let mut run = Cursor::new(&config, Some(&state)).unwrap();
        run.filter(batch(&[7], &[Some(T - 60_000_000)])).unwrap();
        assert_eq!(run.state()["value"], state["value"]);

        let numeric = self::config("{cursor: id, primary_key: [id], lookback: 10m}");
        let mut run = Cursor::new(&numeric, None).unwrap();
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        let err = run.check_schema(&schema).unwrap_err().to_string();
        assert!(
            err.contains("incremental.lookback") && err.contains("not a duration"),
            "{err}"
        );
        let text = self::config("{cursor: code, primary_key: [code], lookback: 5}");
        let schema = Schema::new(vec![Field::new("code", DataType::Utf8, false)]);
        let err = Cursor::new(&text, None)
            .unwrap()
            .check_schema(&schema)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("lookback needs a date or timestamp"),
            "{err}"
        );
    }

    #[test]
    fn integer_and_decimal_cursors_and_bad_states() {
        let config = config("{cursor: seq, primary_key: [id], lookback: 3}");
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("seq", DataType::Decimal128(10, 2), true),
        ]));
        let b = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(
                    arrow::array::Decimal128Array::from(vec![Some(-5), Some(12_345)])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ],
        )
        .unwrap();
        let mut run = Cursor::new(&config, None).unwrap();
        run.filter(b).unwrap();
        let state = run.state();
        assert_eq!(state["value"], "123.45");
        let run = Cursor::new(&config, Some(&state)).unwrap();
        assert_eq!(
            run.bound().unwrap().unwrap().value,
            BoundValue::Number("120.45".into())
        );
        assert_eq!(format_value(CursorType::Decimal(2), &Val::Num(-5)), "-0.05");

        let other = self::config("{cursor: changed, primary_key: [id]}");
        let err = Cursor::new(&other, Some(&state)).unwrap_err().to_string();
        assert!(
            err.contains("--full-refresh") && err.contains("changed"),
            "{err}"
        );
        let err = Cursor::new(&config, Some(&json!({"x": 1}))).unwrap_err();
        assert!(err.to_string().contains("--full-refresh"));
    }

    #[test]
    fn initial_value_must_be_a_value_of_the_cursor() {
        let config = config("{cursor: updated_at, primary_key: [id], initial_value: yesterday}");
        let mut run = Cursor::new(&config, None).unwrap();
        let err = run
            .check_schema(&batch(&[], &[]).schema())
            .unwrap_err()
            .to_string();
        assert!(err.contains("incremental.initial_value"), "{err}");
        let config =
            self::config("{cursor: updated_at, primary_key: [id], initial_value: '2024-05-01'}");
        let mut run = Cursor::new(&config, None).unwrap();
        run.check_schema(&batch(&[], &[]).schema()).unwrap();
        assert_eq!(run.bound().unwrap().unwrap().value.text(), "2024-05-01");
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_844), (2024, 5, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
        assert_eq!(
            format_value(CursorType::TimestampTz, &Val::Num(-1)),
            "1969-12-31 23:59:59.999999+00:00"
        );
    }
}
