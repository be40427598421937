//! `supabase.writer`: the table of the step it needs into a Supabase (PostgREST) table.
//!
//! append and upsert POST JSON arrays of `batch_size` rows to PostgREST (each batch with its
//! own retries); replace runs TRUNCATE + INSERT ... json_populate_recordset in one Postgres
//! transaction over `pg_dsn`, so it is all or nothing. Both paths send the same JSON, built by
//! [`crate::json_rows`]. A missing table is created from the step table's types when
//! `create_if_missing` is set (DDL saved as `artifacts/<step>/ddl_plan.sql`), else it fails the
//! step; it is never silently skipped.

use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use driver_api::{
    Driver, DriverError, Result, StepContext, StepInputs, StepOutput, TableName, TableReader,
    quote_identifier,
};
use execution_context::object;
use reqwest::Method;
use serde::Deserialize;

use crate::SupabaseConnection;
use crate::json_rows::{Hint, RowEncoder};
use crate::rest::Rest;
use crate::{KeyList, ddl, elapsed_ms, pg};

/// The `supabase.writer` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SupabaseWriter;

/// Configuration of a `supabase.writer` step (see its spec.yaml for the full contract).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Destination table.
    pub table: String,
    /// Schema of the table. Default `public`.
    #[serde(default = "public")]
    pub schema: String,
    /// append, upsert or replace. Default append.
    #[serde(default)]
    pub write_mode: WriteMode,
    /// Key column(s).
    #[serde(default)]
    pub primary_key: Option<KeyList>,
    /// Create a missing table over pg_dsn. Default true, as in the Python spec. Checked when the
    /// table turns out to be missing: without pg_dsn that fails the step then, naming the fix.
    #[serde(default = "yes")]
    pub create_if_missing: bool,
    /// Deprecated, accepted for Python Osiris pipelines with a `config.warning` event; DDL
    /// always runs over pg_dsn.
    #[serde(default)]
    pub ddl_channel: Option<DdlChannel>,
    /// Accepted for Python Osiris pipelines (which never used it) with a `config.warning`
    /// event; no effect: the writer sets PostgREST's `Prefer` header itself.
    #[serde(default)]
    pub prefer: Option<Prefer>,
    /// Accepted for Python Osiris pipelines (which never used it) with a `config.warning`
    /// event; no effect: written rows are never sent back (`return=minimal`).
    #[serde(default)]
    pub returning: Option<String>,
    /// Rows per REST request. Default 500.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Seconds one HTTP request may take. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Extra attempts per request on network errors, timeouts, 429 and 5xx. Default 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

pub(crate) fn public() -> String {
    "public".into()
}
fn default_batch_size() -> u32 {
    500
}
pub(crate) fn default_timeout() -> u64 {
    30
}
pub(crate) fn default_retries() -> u32 {
    3
}

/// How rows reach the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Insert the rows.
    #[default]
    Append,
    /// Insert, or update the row with the same key.
    Upsert,
    /// The table ends up holding exactly the step's rows.
    Replace,
}

impl WriteMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Upsert => "upsert",
            Self::Replace => "replace",
        }
    }
}

/// Deprecated DDL channel names of the Python Osiris.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DdlChannel {
    /// Same as psycopg2 here.
    Auto,
    /// DDL over pg_dsn.
    Psycopg2,
    /// The Python Osiris' SQL-over-HTTP endpoint; DDL runs over pg_dsn here.
    HttpSql,
}

/// The Python Osiris' `prefer` values (PostgREST `Prefer` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Prefer {
    /// `return=minimal`.
    #[serde(rename = "return=minimal")]
    ReturnMinimal,
    /// `return=representation`.
    #[serde(rename = "return=representation")]
    ReturnRepresentation,
    /// `resolution=merge-duplicates`.
    #[serde(rename = "resolution=merge-duplicates")]
    MergeDuplicates,
    /// `resolution=ignore-duplicates`.
    #[serde(rename = "resolution=ignore-duplicates")]
    IgnoreDuplicates,
}

/// A column of the step table: name, DuckDB type, the SELECT expression that reads it in a
/// form the JSON encoder writes exactly, and how its text is written.
struct SourceColumn {
    name: String,
    duckdb_type: String,
    select: String,
    hint: Hint,
}

fn source_column(name: String, duckdb_type: String) -> SourceColumn {
    let quoted = quote_identifier(&name);
    let upper = duckdb_type.to_ascii_uppercase();
    let nested = upper.ends_with(']')
        || upper.starts_with("STRUCT")
        || upper.starts_with("MAP")
        || upper.starts_with("UNION");
    let (select, hint) = if upper == "JSON" {
        (format!("CAST({quoted} AS VARCHAR)"), Hint::RawJson)
    } else if nested {
        (format!("CAST(to_json({quoted}) AS VARCHAR)"), Hint::RawJson)
    } else if matches!(upper.as_str(), "HUGEINT" | "UHUGEINT" | "VARINT" | "BIGNUM") {
        (format!("CAST({quoted} AS VARCHAR)"), Hint::RawNumber)
    } else if matches!(
        upper.as_str(),
        "UUID" | "INTERVAL" | "TIME WITH TIME ZONE" | "BIT"
    ) || upper.starts_with("ENUM")
    {
        // Postgres reads DuckDB's text of these as its own input.
        (format!("CAST({quoted} AS VARCHAR)"), Hint::Text)
    } else {
        (quoted, Hint::Text)
    };
    SourceColumn {
        name,
        duckdb_type,
        select,
        hint,
    }
}

fn yes() -> bool {
    true
}

#[async_trait]
impl Driver for SupabaseWriter {
    const NAME: &'static str = "supabase.writer";
    type Connection = SupabaseConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: SupabaseConnection,
        config: Config,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        let started = Instant::now();
        let input = inputs.single()?.clone();
        if config.ddl_channel.is_some() {
            ctx.warn_config(
                "ddl_channel",
                "is deprecated and has no effect: DDL always runs over pg_dsn",
            );
        }
        if config.prefer.is_some() {
            ctx.warn_config(
                "prefer",
                "has no effect (the Python Osiris never used it either): the writer sets PostgREST's Prefer header itself (return=minimal; resolution=merge-duplicates for upsert)",
            );
        }
        if config.returning.is_some() {
            ctx.warn_config(
                "returning",
                "has no effect (the Python Osiris never used it either): written rows are never sent back",
            );
        }
        let timeout = Duration::from_secs(config.timeout);
        let rest = connection.rest(Some(ctx), timeout, config.retries)?;
        // requests_made and retries are reported whether the step succeeds or not.
        let result: Result<StepOutput> = async {
            let key: Vec<String> = config
                .primary_key
                .clone()
                .map(KeyList::into_vec)
                .unwrap_or_default();
            if matches!(config.write_mode, WriteMode::Upsert | WriteMode::Replace) && key.is_empty() {
                return Err(DriverError::config(
                    "primary_key",
                    format!(
                        "write_mode {} needs primary_key: the key column(s) to match rows on",
                        config.write_mode.as_str()
                    ),
                ));
            }
            if config.write_mode == WriteMode::Replace && connection.pg_dsn.is_none() {
                return Err(DriverError::config(
                    "pg_dsn",
                    "write_mode replace needs pg_dsn: the table is truncated and loaded in one Postgres transaction, which the REST API cannot do; add pg_dsn to the connection, or use upsert",
                ));
            }
            let columns = step_columns(ctx, &input.table).await?;
            for k in &key {
                if !columns.iter().any(|c| &c.name == k) {
                    return Err(DriverError::config(
                        "primary_key",
                        format!(
                            "column {k:?} is not in the table of step {:?} (columns: {})",
                            input.table.as_str(),
                            columns
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            if !key.is_empty() && config.write_mode != WriteMode::Append {
                driver_api::check_key_columns(ctx, &input.table, &key).await?;
            }

            ctx.event(
                "write.start",
                object([
                    ("table", config.table.clone().into()),
                    ("schema", config.schema.clone().into()),
                    ("mode", config.write_mode.as_str().into()),
                    ("rows", input.rows.into()),
                    ("batch_size", config.batch_size.into()),
                ]),
            );

            let pg_client = match &connection.pg_dsn {
                Some(dsn) => Some(pg::connect(dsn, timeout).await?),
                None => None,
            };
            let exists = match &pg_client {
                Some(client) => pg::table_exists(client, &config.schema, &config.table).await?,
                None => rest_table_exists(&rest, &config.schema, &config.table).await?,
            };
            let ddl = if exists {
                None
            } else if config.create_if_missing && pg_client.is_none() {
                return Err(DriverError::config(
                    "create_if_missing",
                    format!(
                        "step {:?}: table {}.{} does not exist, and creating it needs a Postgres connection: add pg_dsn (postgresql://user:password@host:5432/postgres) to the step's connection, or create the table first",
                        ctx.step_id(),
                        config.schema,
                        config.table
                    ),
                ));
            } else if config.create_if_missing {
                let defs: Vec<(String, String)> = columns
                    .iter()
                    .map(|c| (c.name.clone(), c.duckdb_type.clone()))
                    .collect();
                let sql = ddl::create_table(&config.schema, &config.table, &defs, &key);
                let path = ctx.artifacts_dir().join("ddl_plan.sql");
                std::fs::write(&path, &sql)
                    .map_err(|e| DriverError::io(format!("cannot write {}", path.display()), e))?;
                Some((sql, path))
            } else {
                return Err(DriverError::Remote {
                    message: format!(
                        "table {}.{} does not exist; create it, or set create_if_missing: true (with pg_dsn) to create it from the step's columns",
                        config.schema, config.table
                    ),
                });
            };

            let rows = match config.write_mode {
                WriteMode::Replace => {
                    let client =
                        pg_client.ok_or_else(|| DriverError::internal("replace without pg_dsn"))?;
                    replace(ctx, client, &config, &input.table, &columns, ddl.as_ref()).await?
                }
                WriteMode::Append | WriteMode::Upsert => {
                    if let Some((sql, path)) = &ddl {
                        let client = pg_client
                            .as_ref()
                            .ok_or_else(|| DriverError::internal("DDL without pg_dsn"))?;
                        client.batch_execute(sql).await.map_err(|e| {
                            pg::classify(
                                &e,
                                &format!("cannot create table {}.{}", config.schema, config.table),
                            )
                        })?;
                        ddl_executed(ctx, &config, path);
                        client
                            .batch_execute("NOTIFY pgrst, 'reload schema'")
                            .await
                            .map_err(|e| {
                                pg::classify(&e, "cannot ask PostgREST to reload its schema")
                            })?;
                        wait_until_visible(ctx, &rest, &config, timeout).await?;
                    }
                    drop(pg_client);
                    post_batches(
                        ctx,
                        &rest,
                        &config,
                        &key,
                        &input.table,
                        &columns,
                        input.rows,
                    )
                    .await?
                }
            };

            let duration = elapsed_ms(started);
            ctx.metric("duration_ms", duration);
            ctx.event(
                "write.complete",
                object([
                    ("table", config.table.clone().into()),
                    ("schema", config.schema.clone().into()),
                    ("mode", config.write_mode.as_str().into()),
                    ("rows_written", rows.into()),
                    ("duration_ms", duration.into()),
                ]),
            );
            Ok(StepOutput::written(rows))
        }
        .await;
        rest.report(ctx);
        result
    }

    async fn doctor(&self, connection: &SupabaseConnection) -> Result<()> {
        crate::doctor(connection).await
    }
}

fn ddl_executed(ctx: &StepContext, config: &Config, path: &std::path::Path) {
    ctx.event(
        "table.ddl_executed",
        object([
            ("table", config.table.clone().into()),
            ("schema", config.schema.clone().into()),
            ("operation", "create_table".into()),
            ("ddl_path", path.display().to_string().into()),
        ]),
    );
}

/// The step table's columns with their DuckDB types, in order.
async fn step_columns(ctx: &StepContext, table: &TableName) -> Result<Vec<SourceColumn>> {
    let name = table.as_str().to_owned();
    let pairs = ctx
        .run_blocking(move |conn, _| {
            let mut stmt = conn
                .prepare(
                    "SELECT column_name, data_type FROM duckdb_columns() \
                     WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index",
                )
                .map_err(|e| DriverError::duckdb("cannot read the step table's columns", e))?;
            let rows = stmt
                .query_map([&name], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(|e| DriverError::duckdb("cannot read the step table's columns", e))?;
            rows.collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| DriverError::duckdb("cannot read the step table's columns", e))
        })
        .await?;
    if pairs.is_empty() {
        return Err(DriverError::data(format!(
            "the table of step {:?} has no columns",
            table.as_str()
        )));
    }
    Ok(pairs
        .into_iter()
        .map(|(n, t)| source_column(n, t))
        .collect())
}

/// Without pg_dsn: asks PostgREST. Only its "relation does not exist" answer means missing.
async fn rest_table_exists(rest: &Rest, schema: &str, table: &str) -> Result<bool> {
    let mut url = rest.url(table);
    url.query_pairs_mut().append_pair("limit", "0");
    match rest
        .send(
            Method::GET,
            url,
            &[("Accept-Profile", schema.to_owned())],
            None,
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(failure) if failure.is_missing_relation() => Ok(false),
        Err(failure) => {
            Err(failure.into_error(&format!("cannot check that table {schema}.{table} exists")))
        }
    }
}

/// After CREATE TABLE and NOTIFY: polls until PostgREST's schema cache has the table. Reads
/// work before that (PostgREST 12 plans them without the cache), inserts do not: `OPTIONS
/// <table>` answers 200 only once the cache knows the table.
async fn wait_until_visible(
    ctx: &StepContext,
    rest: &Rest,
    config: &Config,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let probe = rest
            .send(
                Method::OPTIONS,
                rest.url(&config.table),
                &[("Accept-Profile", config.schema.clone())],
                None,
            )
            .await;
        match probe {
            Ok(_) => return Ok(()),
            Err(f) if f.status == Some(reqwest::StatusCode::NOT_FOUND) => {}
            Err(f) => {
                return Err(f.into_error(&format!(
                    "cannot check that PostgREST sees the new table {}.{}",
                    config.schema, config.table
                )));
            }
        }
        if Instant::now() >= deadline {
            return Err(DriverError::Timeout {
                message: format!(
                    "table {}.{} was created, but PostgREST did not see it within {} s (its schema cache reloads on NOTIFY pgrst; is db-channel-enabled off?)",
                    config.schema,
                    config.table,
                    timeout.as_secs()
                ),
            });
        }
        ctx.check_cancelled()?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Streams the step table as JSON arrays of `batch_size` rows to `f`.
async fn for_each_chunk<F, Fut>(
    ctx: &StepContext,
    table: &TableName,
    columns: &[SourceColumn],
    batch_size: usize,
    mut f: F,
) -> Result<u64>
where
    F: FnMut(String, usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let hints: Vec<Hint> = columns.iter().map(|c| c.hint).collect();
    let encoder = RowEncoder::new(&names, &hints);
    let select = columns
        .iter()
        .map(|c| c.select.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut reader =
        TableReader::query(ctx.connection()?, format!("SELECT {select} FROM {table}")).await?;
    let mut body = String::from("[");
    let mut in_body = 0usize;
    let mut sent = 0u64;
    while let Some(batch) = reader.next_batch().await {
        // The rows stream out of DuckDB while batches are sent: a value that fails to read
        // late (a CSV view's row past the sniffer's sample) fails the step after some batches.
        let batch: RecordBatch = batch.map_err(|error| match sent {
            0 => error,
            sent => DriverError::data(format!(
                "{error} (after {sent} rows were written; they stay in the destination table)"
            )),
        })?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (batch_size - in_body).min(batch.num_rows() - offset);
            encoder.write_rows(&batch, offset, take, &mut body, in_body == 0)?;
            in_body += take;
            offset += take;
            if in_body == batch_size {
                body.push(']');
                f(std::mem::replace(&mut body, String::from("[")), in_body).await?;
                sent += in_body as u64;
                in_body = 0;
            }
        }
    }
    if in_body > 0 {
        body.push(']');
        f(body, in_body).await?;
        sent += in_body as u64;
    }
    Ok(sent)
}

/// append / upsert: one POST per batch, each with its own retries. A failure says which
/// batches landed.
async fn post_batches(
    ctx: &StepContext,
    rest: &Rest,
    config: &Config,
    key: &[String],
    table: &TableName,
    columns: &[SourceColumn],
    total_rows: u64,
) -> Result<u64> {
    let batch_size = config.batch_size.max(1) as usize;
    let total_batches = total_rows.div_ceil(batch_size as u64);
    let mut url = rest.url(&config.table);
    let mut prefer = String::from("return=minimal");
    if config.write_mode == WriteMode::Upsert {
        url.query_pairs_mut()
            .append_pair("on_conflict", &key.join(","));
        prefer.push_str(",resolution=merge-duplicates");
    }
    let headers = [
        ("Content-Profile", config.schema.clone()),
        ("Prefer", prefer),
    ];
    let mut written = 0u64;
    let mut batch_no = 0u64;
    let sent = for_each_chunk(ctx, table, columns, batch_size, |body, rows| {
        batch_no += 1;
        let number = batch_no;
        let url = url.clone();
        let headers = &headers;
        let landed = written;
        written += rows as u64;
        async move {
            ctx.check_cancelled()?;
            rest.send(Method::POST, url, headers, Some(body))
                .await
                .map_err(|failure| {
                    let landed_note = if number == 1 {
                        "no batch was written before it".to_owned()
                    } else {
                        format!(
                            "batches 1-{} ({landed} rows) were written and stay in the table",
                            number - 1
                        )
                    };
                    failure.into_error(&format!(
                        "batch {number} of {total_batches} ({rows} rows) to {}.{} failed ({landed_note})",
                        config.schema, config.table
                    ))
                })?;
            if number.is_multiple_of(10) {
                ctx.event(
                    "write.progress",
                    object([
                        ("batches_written", number.into()),
                        ("rows_written", (landed + rows as u64).into()),
                    ]),
                );
            }
            Ok(())
        }
    })
    .await?;
    debug_assert_eq!(sent, written);
    Ok(sent)
}

/// replace: TRUNCATE and load in one Postgres transaction (with the CREATE TABLE when the
/// table is new). Rows go in as the same JSON the REST path sends, through
/// `json_populate_recordset`, which is what PostgREST itself runs.
async fn replace(
    ctx: &StepContext,
    mut client: pg_support::tokio_postgres::Client,
    config: &Config,
    table: &TableName,
    columns: &[SourceColumn],
    ddl: Option<&(String, std::path::PathBuf)>,
) -> Result<u64> {
    let target = format!(
        "{}.{}",
        quote_identifier(&config.schema),
        quote_identifier(&config.table)
    );
    let what = format!(
        "cannot replace the rows of {}.{}",
        config.schema, config.table
    );
    let tx = client
        .transaction()
        .await
        .map_err(|e| pg::classify(&e, &what))?;
    if let Some((sql, _)) = ddl {
        tx.batch_execute(sql)
            .await
            .map_err(|e| pg::classify(&e, &format!("cannot create table {target}")))?;
    }
    tx.batch_execute(&format!("TRUNCATE TABLE {target}"))
        .await
        .map_err(|e| pg::classify(&e, &what))?;
    let list = columns
        .iter()
        .map(|c| quote_identifier(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let insert = format!(
        "INSERT INTO {target} ({list}) SELECT {list} FROM json_populate_recordset(NULL::{target}, $1::text::json)"
    );
    let statement = tx
        .prepare(&insert)
        .await
        .map_err(|e| pg::classify(&e, &what))?;
    let batch_size = config.batch_size.max(1) as usize * 10;
    let written = {
        let tx = &tx;
        let statement = &statement;
        let what = &what;
        for_each_chunk(ctx, table, columns, batch_size, |body, _rows| async move {
            ctx.check_cancelled()?;
            tx.execute(statement, &[&body])
                .await
                .map_err(|e| pg::classify(&e, what))?;
            Ok(())
        })
        .await?
    };
    tx.commit().await.map_err(|e| pg::classify(&e, &what))?;
    if let Some((_, path)) = ddl {
        ddl_executed(ctx, config, path);
    }
    Ok(written)
}
