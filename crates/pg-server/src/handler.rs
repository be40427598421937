//! pgwire handlers: MD5 login, simple and extended queries, values encoded as PostgreSQL types.

use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime};
use duckdb::types::Value;
use futures::Sink;
use pgwire::api::auth::md5pass::{Md5PasswordAuthStartupHandler, hash_md5_password};
use pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use crate::ServerConfig;
use crate::backend::{Backend, Rows, error};
use crate::numeric::Numeric;
use crate::sql::{self, Kind};

/// The handlers of one client connection.
pub struct Handlers {
    query: Arc<QueryHandler>,
    startup: Arc<Md5PasswordAuthStartupHandler<PasswordSource, DefaultServerParameterProvider>>,
}

impl Handlers {
    pub fn new(config: Arc<ServerConfig>) -> Self {
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = format!("16.0 (osiris {})", env!("CARGO_PKG_VERSION"));
        parameters.default_transaction_read_only = true;
        let startup = Md5PasswordAuthStartupHandler::new(
            Arc::new(PasswordSource(Arc::clone(&config))),
            Arc::new(parameters),
        );
        Self {
            query: Arc::new(QueryHandler {
                config,
                backend: Arc::new(Mutex::new(None)),
                parser: Arc::new(NoopQueryParser::new()),
            }),
            startup: Arc::new(startup),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.query)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.query)
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::clone(&self.startup)
    }
}

/// The configured password, MD5-salted per login. No `Debug` of the value.
struct PasswordSource(Arc<ServerConfig>);

impl Debug for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordSource")
    }
}

#[async_trait]
impl AuthSource for PasswordSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let salt = RandomState::new().build_hasher().finish().to_le_bytes()[..4].to_vec();
        let hash = hash_md5_password(
            login.user().unwrap_or_default(),
            self.0.password.expose(),
            &salt,
        );
        Ok(Password::new(Some(salt), hash.into_bytes()))
    }
}

/// Answers queries against the client's own [`Backend`], opened on first use.
pub struct QueryHandler {
    config: Arc<ServerConfig>,
    backend: Arc<Mutex<Option<Backend>>>,
    parser: Arc<NoopQueryParser>,
}

fn user_error(info: Box<ErrorInfo>) -> PgWireError {
    PgWireError::UserError(info)
}

fn read_only() -> Box<ErrorInfo> {
    error(
        "25006",
        "osiris serves sessions read-only: only queries (SELECT, WITH, VALUES, SHOW, DESCRIBE, \
         EXPLAIN) are allowed",
    )
}

/// What a statement produced.
enum Outcome {
    Rows(Rows),
    Tag(&'static str),
}

impl QueryHandler {
    /// Runs `f` on a blocking thread with the client's backend (opened on first use).
    async fn with_backend<T, F>(&self, f: F) -> PgWireResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Backend) -> Result<T, Box<ErrorInfo>> + Send + 'static,
    {
        let backend = Arc::clone(&self.backend);
        let config = Arc::clone(&self.config);
        tokio::task::spawn_blocking(move || {
            let mut guard = backend.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(Backend::open(&config.sessions_root, config.attach_recent)?);
            }
            match guard.as_mut() {
                Some(b) => f(b),
                None => Err(error("XX000", "no backend")),
            }
        })
        .await
        .map_err(|e| user_error(error("XX000", format!("query thread failed: {e}"))))?
        .map_err(user_error)
    }

    /// Runs one statement with parameters.
    async fn run(&self, statement: &str, params: Vec<Value>) -> PgWireResult<Outcome> {
        match sql::classify(statement) {
            Kind::Write => Err(user_error(read_only())),
            Kind::NoOp(tag) => Ok(Outcome::Tag(tag)),
            Kind::Attach(id) => {
                let id = match (id, params.into_iter().next()) {
                    (Some(id), _) => id,
                    (None, Some(Value::Text(id))) => id,
                    _ => {
                        return Err(user_error(error(
                            "22023",
                            "osiris_attach takes a session id",
                        )));
                    }
                };
                self.with_backend(move |b| b.attach(&id))
                    .await
                    .map(Outcome::Rows)
            }
            Kind::Query => {
                let sql = sql::rewrite_catalog(statement).unwrap_or_else(|| statement.to_owned());
                self.with_backend(move |b| b.query(&sql, params))
                    .await
                    .map(Outcome::Rows)
            }
        }
    }

    /// Parameter count and result columns of a statement, without real parameters.
    async fn describe(&self, statement: &str) -> PgWireResult<(usize, Vec<(String, Type)>)> {
        match sql::classify(statement) {
            Kind::Write => Err(user_error(read_only())),
            Kind::NoOp(_) => Ok((0, Vec::new())),
            Kind::Attach(id) => Ok((
                usize::from(id.is_none()),
                vec![("attached".to_owned(), Type::TEXT)],
            )),
            Kind::Query => {
                let sql = sql::rewrite_catalog(statement).unwrap_or_else(|| statement.to_owned());
                self.with_backend(move |b| {
                    let n = b.parameter_count(&sql)?;
                    let rows = b.describe(&sql)?;
                    Ok((n, rows.columns))
                })
                .await
            }
        }
    }
}

fn fields(columns: &[(String, Type)], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            FieldInfo::new(name.clone(), None, None, ty.clone(), format.format_for(i))
        })
        .collect()
}

fn response(rows: Rows, format: &Format) -> PgWireResult<Response> {
    let schema = Arc::new(fields(&rows.columns, format));
    let mut encoder = DataRowEncoder::new(Arc::clone(&schema));
    let mut data = Vec::with_capacity(rows.rows.len());
    for row in rows.rows {
        for (value, (_, ty)) in row.into_iter().zip(&rows.columns) {
            encode(&mut encoder, ty, value)?;
        }
        data.push(Ok(encoder.take_row()));
    }
    Ok(Response::Query(QueryResponse::new(
        schema,
        futures::stream::iter(data),
    )))
}

fn outcome_response(outcome: Outcome, format: &Format) -> PgWireResult<Response> {
    match outcome {
        Outcome::Rows(rows) => response(rows, format),
        Outcome::Tag(tag @ "BEGIN") => Ok(Response::TransactionStart(Tag::new(tag))),
        Outcome::Tag(tag @ ("COMMIT" | "ROLLBACK")) => Ok(Response::TransactionEnd(Tag::new(tag))),
        Outcome::Tag(tag) => Ok(Response::Execution(Tag::new(tag))),
    }
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut out = Vec::new();
        let statements = sql::split(query);
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        for statement in statements {
            match self.run(statement, Vec::new()).await {
                Ok(outcome) => out.push(outcome_response(outcome, &Format::UnifiedText)?),
                Err(PgWireError::UserError(info)) => {
                    out.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// Reads parameter `i` as the type the client declared (or `text`, which we describe).
fn parameter(portal: &Portal<String>, i: usize) -> PgWireResult<Value> {
    let ty = portal
        .statement
        .parameter_types
        .get(i)
        .cloned()
        .flatten()
        .unwrap_or(Type::TEXT);
    let value = match ty {
        Type::BOOL => portal.parameter::<bool>(i, &ty)?.map(Value::Boolean),
        Type::INT2 => portal.parameter::<i16>(i, &ty)?.map(Value::SmallInt),
        Type::INT4 => portal.parameter::<i32>(i, &ty)?.map(Value::Int),
        Type::INT8 => portal.parameter::<i64>(i, &ty)?.map(Value::BigInt),
        Type::FLOAT4 => portal.parameter::<f32>(i, &ty)?.map(Value::Float),
        Type::FLOAT8 => portal.parameter::<f64>(i, &ty)?.map(Value::Double),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            portal.parameter::<String>(i, &ty)?.map(Value::Text)
        }
        other => {
            return Err(user_error(error(
                "0A000",
                format!(
                    "parameter ${} of type {} is not supported; send it as text",
                    i + 1,
                    other.name()
                ),
            )));
        }
    };
    Ok(value.unwrap_or(Value::Null))
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let params = (0..portal.parameter_len())
            .map(|i| parameter(portal, i))
            .collect::<PgWireResult<Vec<_>>>()?;
        let outcome = self.run(&portal.statement.statement, params).await?;
        outcome_response(outcome, &portal.result_column_format)
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (count, columns) = self.describe(&target.statement).await?;
        // DuckDB does not tell parameter types through its Rust API: undeclared ones are text,
        // which DuckDB casts to whatever the parameter needs.
        let params = (0..count.max(target.parameter_types.len()))
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or(Type::TEXT)
            })
            .collect();
        Ok(DescribeStatementResponse::new(
            params,
            fields(&columns, &Format::UnifiedText),
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        target: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (_, columns) = self.describe(&target.statement.statement).await?;
        Ok(DescribePortalResponse::new(fields(
            &columns,
            &target.result_column_format,
        )))
    }
}

fn integer(v: &Value) -> Option<i128> {
    Some(match *v {
        Value::TinyInt(x) => x.into(),
        Value::SmallInt(x) => x.into(),
        Value::Int(x) => x.into(),
        Value::BigInt(x) => x.into(),
        Value::HugeInt(x) => x,
        Value::UTinyInt(x) => x.into(),
        Value::USmallInt(x) => x.into(),
        Value::UInt(x) => x.into(),
        Value::UBigInt(x) => x.into(),
        Value::UHugeInt(x) => i128::try_from(x).ok()?,
        _ => return None,
    })
}

fn micros(unit: duckdb::types::TimeUnit, v: i64) -> i64 {
    unit.to_micros(v)
}

/// Encodes one value as the column's PostgreSQL type (text or binary, as the field says).
fn encode(enc: &mut DataRowEncoder, ty: &Type, v: Value) -> PgWireResult<()> {
    let mismatch = |v: &Value| {
        user_error(error(
            "XX000",
            format!("cannot send {v:?} as {}", ty.name()),
        ))
    };
    if matches!(v, Value::Null) {
        return enc.encode_field(&None::<i32>);
    }
    match *ty {
        Type::BOOL => match v {
            Value::Boolean(b) => enc.encode_field(&b),
            v => Err(mismatch(&v)),
        },
        Type::INT2 => {
            let n = integer(&v).and_then(|n| i16::try_from(n).ok());
            enc.encode_field(&n.ok_or_else(|| mismatch(&v))?)
        }
        Type::INT4 => {
            let n = integer(&v).and_then(|n| i32::try_from(n).ok());
            enc.encode_field(&n.ok_or_else(|| mismatch(&v))?)
        }
        Type::INT8 => {
            let n = integer(&v).and_then(|n| i64::try_from(n).ok());
            enc.encode_field(&n.ok_or_else(|| mismatch(&v))?)
        }
        Type::NUMERIC => {
            let text = match &v {
                Value::Decimal(d) => Some(d.to_string()),
                Value::UHugeInt(n) => Some(n.to_string()),
                v => integer(v).map(|n| n.to_string()),
            };
            enc.encode_field(&Numeric(text.ok_or_else(|| mismatch(&v))?))
        }
        Type::FLOAT4 => match v {
            Value::Float(f) => enc.encode_field(&f),
            v => Err(mismatch(&v)),
        },
        Type::FLOAT8 => match v {
            Value::Double(f) => enc.encode_field(&f),
            Value::Float(f) => enc.encode_field(&f64::from(f)),
            v => Err(mismatch(&v)),
        },
        Type::DATE => match v {
            Value::Date32(days) => {
                let d = NaiveDate::from_ymd_opt(1970, 1, 1)
                    .and_then(|e| e.checked_add_signed(chrono::Duration::days(days.into())));
                enc.encode_field(&d.ok_or_else(|| mismatch(&v))?)
            }
            v => Err(mismatch(&v)),
        },
        Type::TIMESTAMP | Type::TIMESTAMPTZ => match v {
            Value::Timestamp(unit, t) => {
                let ts =
                    DateTime::from_timestamp_micros(micros(unit, t)).ok_or_else(|| mismatch(&v))?;
                if *ty == Type::TIMESTAMP {
                    enc.encode_field(&ts.naive_utc())
                } else {
                    enc.encode_field(&ts)
                }
            }
            v => Err(mismatch(&v)),
        },
        Type::TIME => match v {
            Value::Time64(unit, t) => {
                let us = micros(unit, t);
                let time = NaiveTime::from_num_seconds_from_midnight_opt(
                    u32::try_from(us / 1_000_000).unwrap_or(0),
                    u32::try_from(us % 1_000_000 * 1000).unwrap_or(0),
                );
                enc.encode_field(&time.ok_or_else(|| mismatch(&v))?)
            }
            v => Err(mismatch(&v)),
        },
        Type::BYTEA => match v {
            Value::Blob(b) => enc.encode_field(&b.as_slice()),
            v => Err(mismatch(&v)),
        },
        _ => enc.encode_field(&render(&v)),
    }
}

/// A value as text, for types PostgreSQL clients get as `text` (lists, structs, intervals...).
fn render(v: &Value) -> String {
    let list = |items: &[Value]| {
        let inner: Vec<String> = items.iter().map(render).collect();
        format!("[{}]", inner.join(", "))
    };
    match v {
        Value::Null => "NULL".to_owned(),
        Value::Boolean(b) => b.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Text(s) | Value::Enum(s) => s.clone(),
        Value::Blob(b) | Value::Geometry(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::List(items) | Value::Array(items) => list(items),
        Value::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("'{k}': {}", render(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Map(entries) => {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}={}", render(k), render(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Union(inner) => render(inner),
        Value::Interval {
            months,
            days,
            nanos,
        } => interval(*months, *days, *nanos),
        other => integer(other).map_or_else(|| format!("{other:?}"), |n| n.to_string()),
    }
}

/// PostgreSQL's default interval output: `1 year 2 mons 3 days 04:05:06.5`.
fn interval(months: i32, days: i32, nanos: i64) -> String {
    let mut parts = Vec::new();
    let unit = |n: i32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if months / 12 != 0 {
        parts.push(unit(months / 12, "year", "years"));
    }
    if months % 12 != 0 {
        parts.push(unit(months % 12, "mon", "mons"));
    }
    if days != 0 {
        parts.push(unit(days, "day", "days"));
    }
    if nanos != 0 || parts.is_empty() {
        let sign = if nanos < 0 { "-" } else { "" };
        let us = (nanos / 1000).unsigned_abs();
        let (h, m, s, frac) = (
            us / 3_600_000_000,
            us / 60_000_000 % 60,
            us / 1_000_000 % 60,
            us % 1_000_000,
        );
        let mut time = format!("{sign}{h:02}:{m:02}:{s:02}");
        if frac != 0 {
            time.push_str(format!(".{frac:06}").trim_end_matches('0'));
        }
        parts.push(time);
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_render_like_postgres() {
        assert_eq!(interval(14, 3, 0), "1 year 2 mons 3 days");
        assert_eq!(interval(0, 1, 3_723_500_000_000), "1 day 01:02:03.5");
        assert_eq!(interval(0, 0, 0), "00:00:00");
    }
}
