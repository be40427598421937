//! `supabase.extractor`: one table or view of a Supabase project through PostgREST.
//!
//! Column types come from the Postgres catalog when `pg_dsn` is given, else from PostgREST's
//! OpenAPI description, else they are inferred from the values (ADR 0016). Pages of
//! `page_size` rows are read at increasing offsets (advancing by the rows received, so a server
//! row cap smaller than the page does not end the read) until an empty page or `limit`; the
//! order is `order`, else the primary key (pg_dsn), else none, with a warning when more than one
//! page is read. Known NUMERIC columns are selected as `::text` and pages are parsed as raw JSON,
//! so that no digit goes through a float.
//!
//! With `incremental`, the shared [`Cursor`] gives the lower bound, sent as `<cursor>=gte.<value>`;
//! pages are read by keyset on (cursor, primary key) instead of offsets (`order=<cursor>.asc.nullsfirst,<key>.asc`
//! and, from the second page on, `or=(<cursor>.gt.C,and(<cursor>.eq.C,<key>.gt.K))` after the
//! last row C, K of the previous page), so rows changing while pages are read cannot shift a
//! page boundary; every page passes through the cursor (de-duplication, new cursor from the
//! data) before the writer (ADR 0033).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, BinaryBuilder, RecordBatch, StringArray, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use driver_api::incremental::{self, Cursor, IncrementalConfig};
use driver_api::{
    DiscoveredTable, Driver, DriverError, Result, StepContext, StepInputs, StepOutput, TableName,
    TableWriter, quote_identifier, replace_table_as,
};
use execution_context::object;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::SupabaseConnection;
use crate::rest::Rest;
use crate::writer::{default_retries, default_timeout, public};
use crate::{elapsed_ms, pg};

/// The `supabase.extractor` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SupabaseExtractor;

/// Configuration of a `supabase.extractor` step (see its spec.yaml for the full contract).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Table or view to read.
    pub table: String,
    /// Schema of the table. Default `public`.
    #[serde(default = "public")]
    pub schema: String,
    /// PostgREST select list. Default `*`.
    #[serde(default = "star")]
    pub select: String,
    /// Row filter in PostgREST operator syntax.
    #[serde(default)]
    pub filter: Option<Filter>,
    /// PostgREST order.
    #[serde(default)]
    pub order: Option<String>,
    /// Read at most this many rows.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many rows first (in `order`). Default 0.
    #[serde(default)]
    pub offset: u64,
    /// Rows per page. Default 1000.
    #[serde(default = "default_page_size")]
    pub page_size: u64,
    /// Seconds one HTTP request may take. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Extra attempts per request on network errors, timeouts, 429 and 5xx. Default 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Read only the rows past the cursor saved by the previous successful run.
    #[serde(default)]
    pub incremental: Option<IncrementalConfig>,
}

fn star() -> String {
    "*".into()
}
fn default_page_size() -> u64 {
    1000
}

/// A row filter: column -> condition(s), or a raw query-string fragment.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Filter {
    /// `column: op.value` or `column: [op.value, ...]`; `or`/`and` take logic trees.
    Map(BTreeMap<String, OneOrMany>),
    /// A raw fragment like `status=eq.active&amount=gte.10`.
    Raw(String),
}

/// One condition or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One condition.
    One(String),
    /// All of these.
    Many(Vec<String>),
}

/// What a column holds, as far as the driver needs to know to store it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    SmallInt,
    Int,
    BigInt,
    Real,
    Double,
    /// numeric(p,s) with p <= 38.
    Decimal(u8, i8),
    /// numeric without (usable) precision: kept as exact text.
    Numeric,
    Bool,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    Json,
    Bytea,
    Text,
}

impl Kind {
    /// From a Postgres type name (`pg_type.typname` or PostgREST's OpenAPI `format`).
    pub(crate) fn from_pg(name: &str, category: Option<&str>, numeric: Option<(u8, i8)>) -> Self {
        if category == Some("A") || name.ends_with("[]") || name.starts_with('_') {
            return Self::Json;
        }
        match name {
            "int2" | "smallint" => Self::SmallInt,
            "int4" | "integer" => Self::Int,
            "int8" | "bigint" => Self::BigInt,
            "float4" | "real" => Self::Real,
            "float8" | "double precision" => Self::Double,
            "numeric" => match numeric {
                Some((p, s)) if p > 0 && p <= 38 && s >= 0 && (s as u8) <= p => Self::Decimal(p, s),
                _ => Self::Numeric,
            },
            "bool" | "boolean" => Self::Bool,
            "date" => Self::Date,
            "time" | "time without time zone" => Self::Time,
            "timestamp" | "timestamp without time zone" => Self::Timestamp,
            "timestamptz" | "timestamp with time zone" => Self::TimestampTz,
            "uuid" => Self::Uuid,
            "json" | "jsonb" => Self::Json,
            "bytea" => Self::Bytea,
            _ => Self::Text,
        }
    }

    fn arrow(self) -> DataType {
        match self {
            Self::SmallInt => DataType::Int16,
            Self::Int => DataType::Int32,
            Self::BigInt => DataType::Int64,
            Self::Real => DataType::Float32,
            Self::Double => DataType::Float64,
            Self::Decimal(p, s) => DataType::Decimal128(p, s),
            Self::Bool => DataType::Boolean,
            Self::Date => DataType::Date32,
            Self::Time => DataType::Time64(TimeUnit::Microsecond),
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            Self::Bytea => DataType::Binary,
            Self::Numeric | Self::Uuid | Self::Json | Self::Text => DataType::Utf8,
        }
    }

    /// The DuckDB type a staged text column is cast to at the end, when Arrow cannot carry it.
    fn final_cast(self) -> Option<&'static str> {
        match self {
            Self::Uuid => Some("UUID"),
            Self::Json => Some("JSON"),
            _ => None,
        }
    }

    fn is_numeric_text(self) -> bool {
        matches!(self, Self::Decimal(_, _) | Self::Numeric)
    }
}

/// Known column types of the table, in table order.
type Known = Vec<(String, Kind)>;

#[async_trait]
impl Driver for SupabaseExtractor {
    const NAME: &'static str = "supabase.extractor";
    type Connection = SupabaseConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: SupabaseConnection,
        config: Config,
        _inputs: StepInputs,
    ) -> Result<StepOutput> {
        let started = Instant::now();
        let timeout = Duration::from_secs(config.timeout);
        let mut cursor = incremental::start(
            config.incremental.as_ref(),
            ctx.state(),
            &[
                ("order", config.order.is_some()),
                ("limit", config.limit.is_some()),
                ("offset", config.offset > 0),
            ],
        )?;
        let bound = cursor.as_ref().map(Cursor::bound).transpose()?.flatten();
        let rest = connection.rest(Some(ctx), timeout, config.retries)?;
        // requests_made and retries are reported whether the step succeeds or not.
        let result: Result<StepOutput> = async {
            ctx.event(
                "extraction.start",
                object([
                    ("table", config.table.clone().into()),
                    ("schema", config.schema.clone().into()),
                ]),
            );

            // Column types and the default order.
            let (known, key) = match &connection.pg_dsn {
                Some(dsn) => {
                    let client = pg::connect(dsn, timeout).await?;
                    let cols = pg::columns(&client, &config.schema, &config.table).await?;
                    if cols.is_empty() {
                        return Err(DriverError::Remote {
                            message: format!(
                                "table {}.{} does not exist (Postgres catalog of pg_dsn)",
                                config.schema, config.table
                            ),
                        });
                    }
                    let key = pg::primary_key(&client, &config.schema, &config.table).await?;
                    let known: Known = cols
                        .iter()
                        .map(|c| {
                            (
                                c.name.clone(),
                                Kind::from_pg(&c.type_name, Some(&c.category), c.numeric),
                            )
                        })
                        .collect();
                    (known, key)
                }
                None => match openapi_columns(&rest, &config.schema, &config.table).await {
                    Ok(known) => (known, Vec::new()),
                    Err(reason) => {
                        tracing::warn!(
                            step = ctx.step_id(),
                            "column types will be inferred from the values: {reason}"
                        );
                        (Vec::new(), Vec::new())
                    }
                },
            };

            let select = select_list(&config.select, &known);
            let keyset: Option<Vec<String>> = cursor
                .as_ref()
                .map(|c| c.order_columns().into_iter().map(str::to_owned).collect());
            let order = match &keyset {
                Some(columns) => Some(
                    columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            format!("{}.asc{}", postgrest_name(c), if i == 0 { ".nullsfirst" } else { "" })
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                None => config.order.clone(),
            };
            let order = order.or_else(|| {
                (!key.is_empty()).then(|| {
                    key.iter()
                        .map(|k| postgrest_name(k))
                        .collect::<Vec<_>>()
                        .join(",")
                })
            });
            let mut filters = filter_pairs(config.filter.as_ref())?;
            if let Some(bound) = &bound {
                filters.push((bound.column.clone(), format!("gte.{}", bound.value.text())));
            }
            let selected = selected_columns(&config.select, &known);
            if let Some(cursor) = cursor.as_mut()
                && !selected.is_empty()
            {
                cursor.check_schema(&schema_of(&selected))?;
            }
            // Keyset paging: the `or` filter selecting the rows after the previous page's last.
            let mut after: Option<String> = None;

            // Rows go to a staging table first: columns whose DuckDB type Arrow cannot carry
            // (UUID, JSON) are cast when it becomes the step table (see `finish_stage`).
            let out = ctx.output_table().clone();
            let target = TableName::new(format!("__supabase_stage_{}", out.as_str()))?;
            let mut writer: Option<TableWriter> = None;
            let mut all_columns: Vec<(String, Kind)> = Vec::new();
            let mut offset = 0u64;
            let mut pages = 0u64;
            let mut warned = false;
            let result: Result<()> = async {
                loop {
                    ctx.check_cancelled()?;
                    let want = match config.limit {
                        Some(limit) if limit <= offset => break,
                        Some(limit) => config.page_size.min(limit - offset),
                        None => config.page_size,
                    };
                    let mut url = rest.url(&config.table);
                    {
                        let mut q = url.query_pairs_mut();
                        q.append_pair("select", &select);
                        for (k, v) in &filters {
                            q.append_pair(k, v);
                        }
                        if let Some(order) = &order {
                            q.append_pair("order", order);
                        }
                        q.append_pair("limit", &want.to_string());
                        match (&keyset, &after) {
                            (Some(_), Some(after)) => {
                                q.append_pair("or", after);
                            }
                            (Some(_), None) => {}
                            (None, _) => {
                                q.append_pair("offset", &(config.offset + offset).to_string());
                            }
                        }
                    }
                    if let Some(Filter::Raw(raw)) = &config.filter {
                        let query = url.query().unwrap_or_default().to_owned();
                        url.set_query(Some(&format!("{query}&{}", raw.trim_start_matches('&'))));
                    }
                    let answer = rest
                        .send(
                            Method::GET,
                            url,
                            &[("Accept-Profile", config.schema.clone())],
                            None,
                        )
                        .await
                        .map_err(|f| {
                            f.into_error(&format!(
                                "cannot read {}.{} (rows from {})",
                                config.schema,
                                config.table,
                                config.offset + offset
                            ))
                        })?;
                    pages += 1;
                    let rows: Vec<RawRow<'_>> = serde_json::from_slice(&answer.body)
                        .map_err(|e| {
                            DriverError::data(format!(
                                "PostgREST answered with something that is not a JSON array of rows: {e}"
                            ))
                        })?;
                    if rows.is_empty() {
                        break;
                    }
                    if pages == 2 && order.is_none() && !warned {
                        warned = true;
                        tracing::warn!(
                            step = ctx.step_id(),
                            "reading more than one page without `order` (and without pg_dsn to find the primary key): pages at offsets are unordered, rows can be missed or repeated; set `order` to a unique column"
                        );
                    }
                    offset += rows.len() as u64;
                    if let (Some(columns), Some(last)) = (&keyset, rows.last()) {
                        after = Some(after_row(columns, last)?);
                    }
                    let batch = page_to_batch(&rows, &selected, &mut all_columns)?;
                    let batch = match cursor.as_mut() {
                        Some(cursor) => cursor.filter(batch)?,
                        None => batch,
                    };
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    match &mut writer {
                        Some(w) => w.send(batch).await?,
                        None => {
                            let conn = ctx.connection()?;
                            let mut w = TableWriter::start(
                                conn,
                                target.clone(),
                                batch.schema(),
                                driver_api::DEFAULT_CHANNEL_CAPACITY,
                            );
                            w.send(batch).await?;
                            writer = Some(w);
                        }
                    }
                }
                Ok(())
            }
            .await;
            if let Err(error) = result {
                if let Some(w) = writer {
                    w.abort().await;
                }
                return Err(error);
            }
            let rows = match writer {
                Some(w) => w.finish().await?,
                None => {
                    // No rows: the table keeps its columns, from the catalog/OpenAPI or the select list.
                    if selected.is_empty() {
                        return Err(DriverError::Data {
                            message: format!(
                                "{}.{} returned no rows and its columns are unknown (no pg_dsn, no OpenAPI description for the key, select is not a plain column list); cannot create an empty table",
                                config.schema, config.table
                            ),
                        });
                    }
                    all_columns = selected.clone();
                    let w = TableWriter::start(
                        ctx.connection()?,
                        target.clone(),
                        schema_of(&selected),
                        driver_api::DEFAULT_CHANNEL_CAPACITY,
                    );
                    w.finish().await?
                }
            };
            finish_stage(ctx, &target, &out, &all_columns).await?;

            let duration = elapsed_ms(started);
            ctx.metric("pages_fetched", pages);
            ctx.metric("duration_ms", duration);
            ctx.event(
                "extraction.complete",
                object([
                    ("table", config.table.clone().into()),
                    ("rows", rows.into()),
                    ("pages", pages.into()),
                    ("duration_ms", duration.into()),
                ]),
            );
            let output = StepOutput::table(out, rows);
            Ok(incremental::finish(
                cursor.as_ref(),
                ctx,
                bound.as_ref(),
                output,
            ))
        }
        .await;
        rest.report(ctx);
        result
    }

    async fn doctor(&self, connection: &SupabaseConnection) -> Result<()> {
        crate::doctor(connection).await
    }

    /// The tables and views of the `public` schema.
    async fn discover(&self, connection: &SupabaseConnection) -> Result<Vec<DiscoveredTable>> {
        crate::discover(connection, "public").await
    }
}

/// Turns the staging table into the step table: renamed when every column already has its
/// final type, else copied with casts (UUID, JSON); one transaction, so the step table appears
/// complete or not at all.
async fn finish_stage(
    ctx: &StepContext,
    stage: &TableName,
    out: &TableName,
    columns: &[(String, Kind)],
) -> Result<()> {
    let casts = columns.iter().any(|(_, k)| k.final_cast().is_some());
    let list = columns
        .iter()
        .map(|(name, kind)| {
            let q = quote_identifier(name);
            match kind.final_cast() {
                Some(ty) => format!("CAST({q} AS {ty}) AS {q}"),
                None => q,
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let stage = stage.clone();
    let out = out.clone();
    ctx.run_blocking(move |conn, _| {
        let result = if casts {
            replace_table_as(conn, &out, &format!("SELECT {list} FROM {stage}")).map(drop)
        } else {
            conn.execute_batch(&format!(
                "BEGIN TRANSACTION; DROP TABLE IF EXISTS {out}; ALTER TABLE {stage} RENAME TO {out}; COMMIT"
            ))
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                DriverError::duckdb(format!("cannot create table {out}"), e)
            })
        };
        let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {stage}"));
        result
    })
    .await
}

fn schema_of(columns: &[(String, Kind)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, k)| Field::new(n, k.arrow(), true))
            .collect::<Vec<_>>(),
    ))
}

/// How PostgREST's select and order name a column: bare when plain, else double-quoted.
fn postgrest_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\\\""))
    }
}

/// The keyset filter selecting the rows after `last` in the order of `columns` (cursor first,
/// then the key; NULL cursors first): `(cursor, key...) > (C, K...)` as a PostgREST logic tree,
/// values double-quoted as its grammar asks for text with `,.:()`.
fn after_row(columns: &[String], last: &RawRow<'_>) -> Result<String> {
    let mut values = Vec::with_capacity(columns.len());
    for column in columns {
        let raw = last.get(column).ok_or_else(|| {
            DriverError::config(
                "incremental",
                format!("column {column:?} is not among the columns read; add it to `select`"),
            )
        })?;
        values.push(raw_text(raw)?);
    }
    let quoted = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    // One alternative per position: equal on the columns before it, greater on it.
    let mut alternatives = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        let name = postgrest_name(column);
        let mut parts: Vec<String> = Vec::new();
        for (prev, value) in columns[..i].iter().zip(&values) {
            let prev = postgrest_name(prev);
            parts.push(match value {
                Some(v) => format!("{prev}.eq.{}", quoted(v)),
                None => format!("{prev}.is.null"),
            });
        }
        match &values[i] {
            Some(v) => parts.push(format!("{name}.gt.{}", quoted(v))),
            // Only the cursor can be NULL here (it sorts first): any non-NULL value is after it.
            None if i == 0 => parts.push(format!("{name}.not.is.null")),
            None => continue,
        }
        alternatives.push(if parts.len() == 1 {
            parts.remove(0)
        } else {
            format!("and({})", parts.join(","))
        });
    }
    Ok(format!("({})", alternatives.join(",")))
}

/// Splits a select list at top-level commas (not inside parentheses or quotes).
fn split_select(select: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut current = String::new();
    for c in select.chars() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                items.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        items.push(current.trim().to_owned());
    }
    items
}

/// The select list sent: `*` expands to the known columns; numeric columns read as text.
fn select_list(select: &str, known: &Known) -> String {
    let kind_of = |name: &str| known.iter().find(|(n, _)| n == name).map(|(_, k)| *k);
    if select.trim() == "*" {
        if known.is_empty() {
            return "*".into();
        }
        return known
            .iter()
            .map(|(name, kind)| {
                let n = postgrest_name(name);
                if kind.is_numeric_text() {
                    format!("{n}::text")
                } else {
                    n
                }
            })
            .collect::<Vec<_>>()
            .join(",");
    }
    split_select(select)
        .into_iter()
        .map(|item| match kind_of(&item) {
            Some(kind) if kind.is_numeric_text() => format!("{}::text", postgrest_name(&item)),
            _ => item,
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The output columns whose types are known in advance: all known ones for `*`, the plain
/// column names of a list (unknown plain names as text), none for anything else.
fn selected_columns(select: &str, known: &Known) -> Known {
    if select.trim() == "*" {
        return known.clone();
    }
    let mut out = Vec::new();
    for item in split_select(select) {
        let plain = item.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain || item.is_empty() {
            continue;
        }
        let kind = known
            .iter()
            .find(|(n, _)| *n == item)
            .map_or(Kind::Text, |(_, k)| *k);
        out.push((item, kind));
    }
    out
}

/// Query pairs of the filter map (the raw form is appended as written elsewhere).
fn filter_pairs(filter: Option<&Filter>) -> Result<Vec<(String, String)>> {
    match filter {
        None => Ok(Vec::new()),
        Some(Filter::Raw(raw)) => {
            for part in raw.split('&') {
                let name = part.split('=').next().unwrap_or_default().trim();
                if matches!(name, "select" | "order" | "limit" | "offset") {
                    return Err(DriverError::config(
                        "filter",
                        format!("may not set `{name}`; use the step's own `{name}` key"),
                    ));
                }
            }
            Ok(Vec::new())
        }
        Some(Filter::Map(map)) => Ok(map
            .iter()
            .flat_map(|(column, cond)| {
                let conds = match cond {
                    OneOrMany::One(c) => vec![c.clone()],
                    OneOrMany::Many(cs) => cs.clone(),
                };
                conds.into_iter().map(move |c| (column.clone(), c))
            })
            .collect()),
    }
}

/// Column types from PostgREST's OpenAPI description (GET <root>/). Err says why not.
async fn openapi_columns(
    rest: &Rest,
    schema: &str,
    table: &str,
) -> std::result::Result<Known, String> {
    let doc = openapi(rest, schema).await?;
    let props = doc
        .pointer(&format!(
            "/definitions/{}/properties",
            table.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_object)
        .ok_or_else(|| format!("the OpenAPI description does not describe {schema}.{table}"))?;
    Ok(props
        .iter()
        .map(|(name, prop)| {
            let format = prop.get("format").and_then(Value::as_str).unwrap_or("text");
            let format = format.split('(').next().unwrap_or(format).trim();
            (name.clone(), Kind::from_pg(format, None, None))
        })
        .collect())
}

async fn openapi(rest: &Rest, schema: &str) -> std::result::Result<Value, String> {
    let answer = rest
        .send(
            Method::GET,
            rest.root().clone(),
            &[
                ("Accept-Profile", schema.to_owned()),
                ("Accept", "application/openapi+json".to_owned()),
            ],
            None,
        )
        .await
        .map_err(|f| format!("no OpenAPI description ({})", f.message))?;
    serde_json::from_slice(&answer.body)
        .map_err(|e| format!("the OpenAPI description is not JSON: {e}"))
}

/// One page of JSON rows as an Arrow batch: known columns with their types (in their order),
/// then columns only seen in the values with inferred types. `seen` collects every column
/// written so far (for the final casts).
fn page_to_batch(
    rows: &[RawRow<'_>],
    known: &Known,
    seen: &mut Vec<(String, Kind)>,
) -> Result<RecordBatch> {
    let mut columns: Vec<(String, Kind)> = known.clone();
    for row in rows {
        for (key, _) in &row.0 {
            if !columns.iter().any(|(n, _)| n == key) {
                columns.push((key.clone(), infer(rows, key)));
            }
        }
    }
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (name, kind) in &columns {
        let array = column_array(rows, name, *kind)?;
        fields.push(Field::new(name, kind.arrow(), true));
        arrays.push(array);
        if !seen.iter().any(|(n, _)| n == name) {
            seen.push((name.clone(), *kind));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| DriverError::internal(format!("cannot build a page batch: {e}")))
}

/// Spec rules for columns without a known type: integers BIGINT, other numbers DOUBLE,
/// booleans BOOLEAN, strings VARCHAR, objects and lists JSON, all-null VARCHAR.
fn infer(rows: &[RawRow<'_>], key: &str) -> Kind {
    let mut kind: Option<Kind> = None;
    for raw in rows.iter().filter_map(|r| r.get(key)) {
        let text = raw.get();
        let this = match text.as_bytes().first() {
            None | Some(b'n') => continue,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'"') => Kind::Text,
            Some(b'{' | b'[') => Kind::Json,
            Some(_) if text.contains(['.', 'e', 'E']) => Kind::Double,
            Some(_) => Kind::BigInt,
        };
        kind = Some(match (kind, this) {
            (None, t) => t,
            (Some(a), b) if a == b => a,
            (Some(Kind::BigInt), Kind::Double) | (Some(Kind::Double), Kind::BigInt) => Kind::Double,
            (Some(Kind::Json), _) | (_, Kind::Json) => Kind::Json,
            _ => Kind::Text,
        });
    }
    kind.unwrap_or(Kind::Text)
}

/// One row of a page, its values as they were written (numbers and nested JSON verbatim, so
/// no digit goes through a float), keys in the server's order.
pub(crate) struct RawRow<'a>(Vec<(String, &'a RawValue)>);

impl<'a> RawRow<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawRow<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = RawRow<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object (one row)")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> std::result::Result<Self::Value, M::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    pairs.push((k, v));
                }
                Ok(RawRow(pairs))
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// The text of a value: strings unescaped, everything else verbatim; None for null.
fn raw_text(raw: &RawValue) -> Result<Option<String>> {
    let text = raw.get();
    if text == "null" {
        Ok(None)
    } else if text.starts_with('"') {
        serde_json::from_str::<String>(text)
            .map(Some)
            .map_err(|e| DriverError::data(format!("bad JSON string in a page: {e}")))
    } else {
        Ok(Some(text.to_owned()))
    }
}

/// A column of the page: the values' text, cast (strictly) to the column's Arrow type.
fn column_array(rows: &[RawRow<'_>], name: &str, kind: Kind) -> Result<ArrayRef> {
    let texts = rows
        .iter()
        .map(|row| row.get(name).map_or(Ok(None), raw_text))
        .collect::<Result<Vec<Option<String>>>>()?;
    if kind == Kind::Bytea {
        let mut builder = BinaryBuilder::new();
        for text in &texts {
            match text {
                None => builder.append_null(),
                Some(s) => builder.append_value(decode_bytea(s).ok_or_else(|| {
                    DriverError::data(format!(
                        "column {name:?}: {s:?} is not bytea in hex form (\\x...)"
                    ))
                })?),
            }
        }
        return Ok(Arc::new(builder.finish()));
    }
    let text: ArrayRef = Arc::new(StringArray::from(texts));
    let target = kind.arrow();
    if target == DataType::Utf8 {
        return Ok(text);
    }
    if text.null_count() == text.len() {
        return Ok(new_null_array(&target, text.len()));
    }
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(&text, &target, &strict).map_err(|e| {
        DriverError::data(format!(
            "column {name:?}: a value does not fit its type {target}: {e}"
        ))
    })
}

fn decode_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_star_expands_and_reads_numerics_as_text() {
        let known = vec![
            ("id".to_owned(), Kind::BigInt),
            ("amount".to_owned(), Kind::Decimal(12, 2)),
            ("my col".to_owned(), Kind::Text),
        ];
        assert_eq!(select_list("*", &known), "id,amount::text,\"my col\"");
        assert_eq!(
            select_list("id, amount,author(name,email)", &known),
            "id,amount::text,author(name,email)"
        );
        assert_eq!(select_list("*", &Vec::new()), "*");
    }

    #[test]
    fn bytea_hex_decodes() {
        assert_eq!(decode_bytea("\\x00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_bytea("00ff"), None);
    }

    #[test]
    fn raw_filters_may_not_set_paging() {
        let f = Filter::Raw("status=eq.a&limit=5".into());
        assert!(filter_pairs(Some(&f)).is_err());
    }
}
