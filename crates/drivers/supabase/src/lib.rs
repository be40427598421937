//! Supabase drivers: `supabase.extractor` and `supabase.writer`, talking to PostgREST (the
//! Supabase REST API, or a plain PostgREST server) and, when a `pg_dsn` is given, directly to
//! the project's Postgres for catalog lookups, DDL and transactional replace.
#![warn(missing_docs)]

mod ddl;
mod extractor;
mod json_rows;
mod pg;
mod rest;
mod writer;

use std::time::Duration;

use driver_api::{DiscoveredColumn, DiscoveredTable, DriverError, Result, SecretString};
use serde::Deserialize;
use serde_json::Value;

pub use extractor::{Config as ExtractorConfig, Filter, OneOrMany, SupabaseExtractor};
pub use json_rows::{Hint, RowEncoder};
pub use writer::{Config as WriterConfig, DdlChannel, SupabaseWriter, WriteMode};

/// One key column or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum KeyList {
    /// One column.
    One(String),
    /// Several columns, in key order.
    Many(Vec<String>),
}

impl KeyList {
    /// The column names.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(c) => vec![c],
            Self::Many(cs) => cs,
        }
    }
}

pub(crate) fn elapsed_ms(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A `@supabase` connection (the spec's `x-connection-fields`), shared by the extractor and
/// the writer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupabaseConnection {
    /// Project URL; REST requests go to `<url>/rest/v1`.
    #[serde(default)]
    pub url: Option<String>,
    /// Project reference, standing for `https://<project_id>.supabase.co`.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Root URL of a PostgREST server, used instead of `<url>/rest/v1`.
    #[serde(default)]
    pub rest_url: Option<String>,
    /// API key (secret).
    #[serde(default)]
    pub key: Option<SecretString>,
    /// Service-role key (secret), preferred.
    #[serde(default)]
    pub service_role_key: Option<SecretString>,
    /// Anonymous key (secret).
    #[serde(default)]
    pub anon_key: Option<SecretString>,
    /// Postgres connection string (secret), for column types, primary keys, discovery,
    /// replace, create_if_missing and table checks.
    #[serde(default)]
    pub pg_dsn: Option<SecretString>,
}

impl SupabaseConnection {
    /// The REST client of the connection: `ctx` (a step) gets retry events and cancellation.
    pub(crate) fn rest(
        &self,
        ctx: Option<&driver_api::StepContext>,
        timeout: Duration,
        retries: u32,
    ) -> Result<rest::Rest> {
        let location = rest::Location {
            url: self.url.as_deref(),
            project_id: self.project_id.as_deref(),
            rest_url: self.rest_url.as_deref(),
            service_role_key: self.service_role_key.as_ref(),
            anon_key: self.anon_key.as_ref(),
            key: self.key.as_ref(),
        };
        rest::Rest::new(
            ctx,
            location.rest_root()?,
            location.api_key()?,
            timeout,
            retries,
        )
    }
}

/// Checks a Supabase connection: PostgREST answers and accepts the key (a request for the
/// root; 401 is a refused key), and, when `pg_dsn` is set, Postgres accepts a login.
pub(crate) async fn doctor(fields: &SupabaseConnection) -> Result<()> {
    let rest = fields.rest(None, Duration::from_secs(10), 0)?;
    match rest
        .send(reqwest::Method::GET, rest.root().clone(), &[], None)
        .await
    {
        Ok(_) => {}
        Err(f)
            if f.status
                .is_some_and(|s| s.is_client_error() && s.as_u16() != 401) =>
        {
            // Reachable and the key accepted; the root itself may be closed to this role.
        }
        Err(f) => return Err(f.into_error("PostgREST check failed")),
    }
    if let Some(dsn) = &fields.pg_dsn {
        let client = pg::connect(dsn, Duration::from_secs(10)).await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| pg::classify(&e, "Postgres check failed"))?;
    }
    Ok(())
}

/// Lists the tables and views of `schema` with their columns (and, with `pg_dsn`, primary
/// keys and estimated row counts from the catalog; without, from PostgREST's OpenAPI
/// description, which Supabase may serve only to the service_role key). Sorted by name.
pub(crate) async fn discover(
    fields: &SupabaseConnection,
    schema: &str,
) -> Result<Vec<DiscoveredTable>> {
    if let Some(dsn) = &fields.pg_dsn {
        let client = pg::connect(dsn, Duration::from_secs(30)).await?;
        let rows = client
            .query(
                "SELECT c.relname::text, greatest(c.reltuples, 0)::int8, c.relkind::text
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
                 ORDER BY c.relname",
                &[&schema],
            )
            .await
            .map_err(|e| pg::classify(&e, "cannot list tables"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get(0);
            let columns = pg::columns(&client, schema, &name)
                .await?
                .into_iter()
                .map(|c| DiscoveredColumn {
                    name: c.name,
                    source_type: c.formatted,
                    nullable: None,
                })
                .collect();
            let primary_key = pg::primary_key(&client, schema, &name).await?;
            let relkind: String = row.get(2);
            let estimated: i64 = row.get(1);
            out.push(DiscoveredTable {
                name,
                schema: Some(schema.to_owned()),
                kind: Some(if matches!(relkind.as_str(), "v" | "m") {
                    "view"
                } else {
                    "table"
                }),
                estimated_rows: u64::try_from(estimated).ok(),
                primary_key,
                columns,
            });
        }
        return Ok(out);
    }
    let rest = fields.rest(None, Duration::from_secs(10), 0)?;
    let answer = rest
        .send(
            reqwest::Method::GET,
            rest.root().clone(),
            &[
                ("Accept-Profile", schema.to_owned()),
                ("Accept", "application/openapi+json".to_owned()),
            ],
            None,
        )
        .await
        .map_err(|f| f.into_error("cannot read PostgREST's OpenAPI description"))?;
    let doc: Value = serde_json::from_slice(&answer.body).map_err(|e| {
        DriverError::data(format!("PostgREST's OpenAPI description is not JSON: {e}"))
    })?;
    let mut out: Vec<DiscoveredTable> = doc
        .get("definitions")
        .and_then(Value::as_object)
        .map(|defs| {
            defs.iter()
                .map(|(name, def)| DiscoveredTable {
                    name: name.clone(),
                    schema: Some(schema.to_owned()),
                    kind: None,
                    columns: def
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|props| {
                            props
                                .iter()
                                .map(|(c, p)| {
                                    let ty =
                                        p.get("format").and_then(Value::as_str).unwrap_or("text");
                                    DiscoveredColumn {
                                        name: c.clone(),
                                        source_type: ty.to_owned(),
                                        nullable: None,
                                    }
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    primary_key: Vec::new(),
                    estimated_rows: None,
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
