//! pgwire handlers: MD5 login, simple and extended queries, values encoded as PostgreSQL types.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime};
use duckdb::types::Value;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::RandomPidSecretKeyGenerator;
use pgwire::api::auth::md5pass::{Md5PasswordAuthStartupHandler, hash_md5_password};
use pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::send_copy_out_response;
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::send_execution_response;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    CopyResponse, DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, DEFAULT_NAME,
    PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use pgwire::messages::extendedquery::{Execute, PortalSuspended};
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::startup::SecretKey;
use pgwire::types::ToSqlText;
use postgres_types::ToSql;

use crate::ServerConfig;
use crate::backend::{Backend, Column, Rows, error, set_origins};
use crate::encode::{Layout, RowWriter, WireRow};
use crate::numeric::Numeric;
use crate::params;
use crate::sql;
use crate::stream;
use crate::stream::{Cancels, Running};
use crate::translate::{self, CopyFormat, Origin, Plan};

/// The handlers of one client connection.
pub struct Handlers {
    query: Arc<QueryHandler>,
    cancel: Arc<Canceller>,
    startup: Arc<Md5PasswordAuthStartupHandler<PasswordSource, DefaultServerParameterProvider>>,
}

impl Handlers {
    /// `shared` holds the server's registries that CancelRequests look clients up in.
    pub fn new(config: Arc<ServerConfig>, shared: &Shared) -> Self {
        let Shared {
            connections,
            cancels,
            pids,
        } = shared.clone();
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = crate::settings::SERVER_VERSION.to_owned();
        parameters.default_transaction_read_only = true;
        let startup = Md5PasswordAuthStartupHandler::new(
            Arc::new(PasswordSource(Arc::clone(&config))),
            Arc::new(parameters),
        )
        .with_connection_manager(Arc::clone(&connections))
        .with_pid_secret_key_generator(pids);
        Self {
            query: Arc::new(QueryHandler {
                config,
                cursors: Mutex::new(HashMap::new()),
                backend: Arc::new(Mutex::new(None)),
                parser: Arc::new(NoopQueryParser::new()),
                running: Arc::new(Running::default()),
                cancels: Arc::clone(&cancels),
                pid: OnceLock::new(),
            }),
            startup: Arc::new(startup),
            cancel: Arc::new(Canceller {
                connections,
                cancels,
            }),
        }
    }
}

/// What every connection of a server shares.
#[derive(Clone, Default)]
pub struct Shared {
    connections: Arc<ConnectionManager>,
    cancels: Arc<Cancels>,
    /// One pid sequence for the server: each connection gets its own pid (a generator per
    /// connection would give them all the same one).
    pids: Arc<RandomPidSecretKeyGenerator>,
}

/// Answers CancelRequests: stops the connection's DuckDB queries, whether they are still
/// computing, sending rows or suspended (ADR 0038), and lets pgwire drop a query that has
/// not produced its first rows.
struct Canceller {
    connections: Arc<ConnectionManager>,
    cancels: Arc<Cancels>,
}

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.cancels.cancel(request.pid, &request.secret_key);
        self.connections
            .cancel(request.pid, &request.secret_key)
            .await;
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

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::clone(&self.cancel)
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
    /// Open cursors (DECLARE), by name.
    cursors: Mutex<HashMap<String, Cursor>>,
    backend: Arc<Mutex<Option<Backend>>>,
    parser: Arc<NoopQueryParser>,
    /// This connection's queries, for CancelRequests.
    running: Arc<Running>,
    cancels: Arc<Cancels>,
    /// The key this connection is registered under in `cancels`.
    pid: OnceLock<(i32, SecretKey)>,
}

impl Drop for QueryHandler {
    fn drop(&mut self) {
        if let Some((pid, secret)) = self.pid.get() {
            self.cancels.unregister(*pid, secret);
        }
    }
}

pub(crate) fn user_error(info: Box<ErrorInfo>) -> PgWireError {
    PgWireError::UserError(info)
}

fn read_only() -> Box<ErrorInfo> {
    error(
        "25006",
        "osiris serves sessions read-only: only queries (SELECT, WITH, VALUES, SHOW, DESCRIBE, \
         EXPLAIN) are allowed",
    )
}

/// A DECLAREd cursor: its portal (rows read on by FETCH) and its columns.
struct Cursor {
    portal: Arc<Portal<String>>,
    columns: Vec<Column>,
    /// Tells the query the wire format its first FETCH asks for (text or binary); the rows
    /// are encoded from then on.
    format: Option<tokio::sync::oneshot::Sender<Format>>,
}

/// A CSV field (a header name), quoted when it must be.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// What a statement produced.
enum Outcome {
    Rows(Rows),
    /// A streamed query result.
    Response(Response),
    /// A cursor was declared (its portal, for the extended protocol's portal store).
    Declared(Arc<Portal<String>>),
    /// Cursors were closed.
    Closed(Vec<String>),
    Tag(&'static str),
    /// BEGIN / COMMIT / ROLLBACK.
    Transaction(&'static str),
}

/// Who the client is, for the backend opened on its first statement.
#[derive(Clone)]
struct Client {
    user: String,
    pid: i32,
    secret: SecretKey,
}

fn client_of<C: ClientInfo>(client: &C) -> Client {
    let (pid, secret) = client.pid_and_secret_key();
    Client {
        user: client
            .metadata()
            .get(pgwire::api::METADATA_USER)
            .cloned()
            .unwrap_or_else(|| "osiris".to_owned()),
        pid,
        secret,
    }
}

impl QueryHandler {
    /// Runs `f` on a blocking thread with the client's backend (opened on first use).
    async fn with_backend<T, F>(&self, client: &Client, f: F) -> PgWireResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Backend) -> Result<T, Box<ErrorInfo>> + Send + 'static,
    {
        let backend = Arc::clone(&self.backend);
        let config = Arc::clone(&self.config);
        let client = client.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = backend.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(Backend::open(
                    &config.sessions_root,
                    config.attach_recent,
                    &client.user,
                    client.pid,
                )?);
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

    /// Starts a query on its own connection (see [`crate::stream`]), its rows framed as
    /// `layout` says.
    async fn start_query<M: WireRow>(
        &self,
        client: &Client,
        sql: String,
        params: Vec<Value>,
        (format, layout): (Format, Layout),
        origin: Option<Origin>,
        deferred: Option<tokio::sync::oneshot::Receiver<Format>>,
    ) -> PgWireResult<stream::Started<M>> {
        if self.pid.set((client.pid, client.secret.clone())).is_ok() {
            self.cancels
                .register(client.pid, &client.secret, &self.running);
        }
        let (conn, timeout, sql, origins) = self
            .with_backend(client, move |b| {
                let origins = b.origins(origin.as_ref());
                Ok((
                    b.stream_connection(&sql)?,
                    b.statement_timeout(),
                    sql,
                    origins,
                ))
            })
            .await?;
        let query = stream::Query {
            sql,
            params,
            format,
            layout,
            timeout,
            origins,
            deferred,
        };
        stream::start(conn, query, &self.running).await
    }

    /// `DECLARE name CURSOR FOR query`: the query starts; FETCH reads it on.
    async fn declare(
        &self,
        client: &Client,
        name: String,
        sql: String,
        params: Vec<Value>,
    ) -> PgWireResult<Arc<Portal<String>>> {
        let (format_tx, format_rx) = tokio::sync::oneshot::channel();
        let started = self
            .start_query::<DataRow>(
                client,
                sql.clone(),
                params,
                (Format::UnifiedText, Layout::DataRow),
                None,
                Some(format_rx),
            )
            .await?;
        let statement = Arc::new(StoredStatement::new(name.clone(), sql, Vec::new()));
        let portal = Arc::new(Portal::new_cursor(name.clone(), statement));
        portal
            .start(QueryResponse::new(
                Arc::clone(&started.schema),
                started.rows,
            ))
            .await;
        let columns = started
            .schema
            .iter()
            .map(|f| Column {
                name: f.name().to_owned(),
                ty: f.datatype().clone(),
                typmod: f.type_modifier(),
                origin: f.table_id().zip(f.column_id()),
            })
            .collect();
        let cursor = Cursor {
            portal: Arc::clone(&portal),
            columns,
            format: Some(format_tx),
        };
        self.cursors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, cursor);
        Ok(portal)
    }

    /// `FETCH count FROM name`, its rows in `format` (the first FETCH's format holds for the
    /// rest of the cursor).
    async fn fetch(&self, name: &str, count: usize, format: &Format) -> PgWireResult<Response> {
        let cursor = self
            .cursors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(name)
            .map(|c| {
                if let Some(tell) = c.format.take() {
                    let _ = tell.send(format.clone());
                }
                (Arc::clone(&c.portal), fields(&c.columns, format))
            });
        let Some((portal, schema)) = cursor else {
            return Err(user_error(error(
                "34000",
                format!("cursor \"{name}\" does not exist"),
            )));
        };
        let schema = Arc::new(schema);
        // The rows stream from the cursor's portal as they are sent (pgwire's Portal::fetch
        // would collect them: FETCH ALL of a large cursor would sit whole in memory).
        let state = portal.state().lock_owned().await;
        let rows = futures::stream::unfold((state, 0), move |(mut state, sent)| async move {
            if count > 0 && sent >= count {
                return None;
            }
            let next = match &mut *state {
                PortalExecutionState::Suspended(running) => running.data_rows().next().await,
                _ => None,
            };
            match next {
                Some(row) => Some((row, (state, sent + 1))),
                None => {
                    *state = PortalExecutionState::Finished;
                    None
                }
            }
        });
        let mut response = QueryResponse::new(schema, rows);
        response.set_command_tag("FETCH");
        Ok(Response::Query(response))
    }

    /// `CLOSE name` / `CLOSE ALL`; the names of the closed cursors.
    fn close(&self, name: Option<&str>) -> Vec<String> {
        let mut cursors = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
        match name {
            Some(name) => cursors
                .remove(name)
                .map(|_| name.to_owned())
                .into_iter()
                .collect(),
            None => cursors.drain().map(|(name, _)| name).collect(),
        }
    }

    /// `COPY (query) TO STDOUT` in text, CSV or binary.
    async fn copy(
        &self,
        client: &Client,
        sql: String,
        params: Vec<Value>,
        format: CopyFormat,
    ) -> PgWireResult<Response> {
        let (layout, wire_format, field_format) = match format {
            CopyFormat::Text => (Layout::CopyText, 0, Format::UnifiedText),
            CopyFormat::Csv { .. } => (Layout::CopyCsv, 0, Format::UnifiedText),
            CopyFormat::Binary => (Layout::CopyBinary, 1, Format::UnifiedBinary),
        };
        let started = self
            .start_query::<CopyData>(client, sql, params, (field_format, layout), None, None)
            .await?;
        let columns = started.schema.len();
        let header = match format {
            CopyFormat::Csv { header: true } => {
                let names: Vec<String> =
                    started.schema.iter().map(|f| csv_field(f.name())).collect();
                Some(Ok(CopyData::new(format!("{}\n", names.join(",")).into())))
            }
            _ => None,
        };
        let data = futures::stream::iter(header).chain(started.rows);
        Ok(Response::CopyOut(CopyResponse::new(
            wire_format,
            columns,
            data,
        )))
    }

    /// Runs one statement with parameters.
    async fn run(
        &self,
        client: &Client,
        statement: &str,
        params: Vec<Value>,
        format: &Format,
    ) -> PgWireResult<Outcome> {
        match translate::plan(statement) {
            Plan::Write => Err(user_error(read_only())),
            Plan::Transaction(tag) => Ok(Outcome::Transaction(tag)),
            Plan::NoOp(tag) => Ok(Outcome::Tag(tag)),
            Plan::Set(name, value) => {
                self.with_backend(client, move |b| b.set(&name, value.as_deref()))
                    .await?;
                Ok(Outcome::Tag("SET"))
            }
            Plan::SetConfig(name, value) => self
                .with_backend(client, move |b| {
                    b.set(&name, Some(&value))?;
                    Ok(Rows {
                        columns: vec![Column::new("set_config", Type::TEXT)],
                        rows: vec![vec![Value::Text(value)]],
                    })
                })
                .await
                .map(Outcome::Rows),
            Plan::ResetAll => {
                self.with_backend(client, Backend::reset_all).await?;
                Ok(Outcome::Tag("RESET"))
            }
            Plan::Show(name) => self
                .with_backend(client, move |b| b.show(&name))
                .await
                .map(Outcome::Rows),
            Plan::Attach(id) => {
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
                self.with_backend(client, move |b| b.attach(&id))
                    .await
                    .map(Outcome::Rows)
            }
            Plan::Query {
                sql,
                origin,
                settings,
                ..
            } => {
                if !settings.is_empty() {
                    self.with_backend(client, move |b| {
                        settings.iter().try_for_each(|(n, v)| b.set(n, Some(v)))
                    })
                    .await?;
                }
                let started = self
                    .start_query::<DataRow>(
                        client,
                        sql,
                        params,
                        (format.clone(), Layout::DataRow),
                        origin,
                        None,
                    )
                    .await?;
                Ok(Outcome::Response(Response::Query(QueryResponse::new(
                    started.schema,
                    started.rows,
                ))))
            }
            Plan::Declare { name, sql } => self
                .declare(client, name, sql, params)
                .await
                .map(Outcome::Declared),
            Plan::Fetch { name, count } => self
                .fetch(&name, count, format)
                .await
                .map(Outcome::Response),
            Plan::Close(name) => Ok(Outcome::Closed(self.close(name.as_deref()))),
            Plan::Copy { sql, format } => self
                .copy(client, sql, params, format)
                .await
                .map(Outcome::Response),
            Plan::Unsupported(what) => Err(user_error(error(
                "0A000",
                format!("not supported by osiris serve: {what}"),
            ))),
        }
    }

    /// Parameter types and result columns of a statement, without running it.
    async fn describe(
        &self,
        client: &Client,
        statement: &str,
    ) -> PgWireResult<(Vec<Option<Type>>, Vec<Column>)> {
        match translate::plan(statement) {
            Plan::Write => Err(user_error(read_only())),
            Plan::Attach(id) => Ok((
                if id.is_none() {
                    vec![Some(Type::TEXT)]
                } else {
                    Vec::new()
                },
                vec![Column::new("attached", Type::TEXT)],
            )),
            Plan::SetConfig(..) => Ok((Vec::new(), vec![Column::new("set_config", Type::TEXT)])),
            Plan::Fetch { name, .. } => {
                let cursors = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
                let columns = cursors.get(&name).map(|c| c.columns.clone());
                Ok((Vec::new(), columns.unwrap_or_default()))
            }
            Plan::Show(name) => {
                self.with_backend(client, move |b| Ok((Vec::new(), b.show(&name)?.columns)))
                    .await
            }
            Plan::Query {
                sql, hints, origin, ..
            } => {
                self.with_backend(client, move |b| {
                    let types = b.parameter_types(&hints, &sql);
                    let mut columns = b.describe(&sql)?;
                    set_origins(&mut columns, &b.origins(origin.as_ref()));
                    Ok((types, columns))
                })
                .await
            }
            _ => Ok((Vec::new(), Vec::new())),
        }
    }

    /// The types parameters are decoded as: the client's, else the ones described.
    async fn parameter_types(
        &self,
        client: &Client,
        portal: &Portal<String>,
    ) -> PgWireResult<Vec<Type>> {
        let declared = &portal.statement.parameter_types;
        let n = portal.parameter_len();
        let known = (0..n).all(|i| declared.get(i).cloned().flatten().is_some());
        let described = if known {
            Vec::new()
        } else {
            self.describe(client, &portal.statement.statement).await?.0
        };
        Ok((0..n)
            .map(|i| {
                declared
                    .get(i)
                    .cloned()
                    .flatten()
                    .or_else(|| described.get(i).cloned().flatten())
                    .unwrap_or(Type::TEXT)
            })
            .collect())
    }
}

pub(crate) fn fields(columns: &[Column], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            FieldInfo::new(
                c.name.clone(),
                c.origin.map(|o| o.0),
                c.origin.map(|o| o.1),
                c.ty.clone(),
                format.format_for(i),
            )
            .with_type_modifier(c.typmod)
        })
        .collect()
}

fn response(rows: Rows, format: &Format) -> PgWireResult<Response> {
    let schema = Arc::new(fields(&rows.columns, format));
    let mut writer = RowWriter::<DataRow>::new(&schema, Layout::DataRow);
    for row in rows.rows {
        writer.value_row(row)?;
    }
    let data = writer.take_rows().into_iter().map(Ok);
    Ok(Response::Query(QueryResponse::new(
        schema,
        futures::stream::iter(data),
    )))
}

fn outcome_response(outcome: Outcome, format: &Format) -> PgWireResult<Response> {
    match outcome {
        Outcome::Rows(rows) => response(rows, format),
        Outcome::Response(response) => Ok(response),
        Outcome::Declared(_) => Ok(Response::Execution(Tag::new("DECLARE CURSOR"))),
        Outcome::Closed(_) => Ok(Response::Execution(Tag::new("CLOSE CURSOR"))),
        Outcome::Transaction(tag @ "BEGIN") => Ok(Response::TransactionStart(Tag::new(tag))),
        Outcome::Transaction(tag) => Ok(Response::TransactionEnd(Tag::new(tag))),
        Outcome::Tag(tag) => Ok(Response::Execution(Tag::new(tag))),
    }
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let client = client_of(client);
        let mut out = Vec::new();
        let statements = sql::split(query);
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        for statement in statements {
            match self
                .run(&client, statement, Vec::new(), &Format::UnifiedText)
                .await
            {
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

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    /// pgwire's Execute, except that rows go to the client as the portal's stream yields them:
    /// pgwire collects up to max-rows rows first, which for max-rows 0 (psycopg, asyncpg,
    /// node-postgres, JDBC without fetchSize) is the whole result in the server's memory.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let mut transaction_status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let portal = match client.portal_store().get_portal(portal_name) {
            Some(Entry::Value(portal)) => portal,
            Some(Entry::Empty) => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                client.set_state(PgWireConnectionState::ReadyForQuery);
                return Ok(());
            }
            None => return Err(PgWireError::PortalNotFound(portal_name.to_owned())),
        };
        let initial = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        let mut stream_rows = !initial;
        if initial {
            let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
                Some(handle) => Some(handle.start_query().await),
                None => None,
            };
            let response = match cancel {
                Some(cancel) => {
                    match futures::future::select(
                        ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows),
                        cancel,
                    )
                    .await
                    {
                        futures::future::Either::Left((result, _)) => result,
                        futures::future::Either::Right(_) => Err(PgWireError::QueryCanceled),
                    }
                }
                None => {
                    ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows).await
                }
            }?;
            match response {
                Response::Query(results) => {
                    portal.start(results).await;
                    stream_rows = true;
                }
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                }
                Response::Execution(tag) => send_execution_response(client, tag).await?,
                Response::TransactionStart(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_in_transaction_state();
                }
                Response::TransactionEnd(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_idle_state();
                    client.portal_store().rm_portal(DEFAULT_NAME);
                }
                Response::Error(err) => {
                    client
                        .send(PgWireBackendMessage::ErrorResponse((*err).into()))
                        .await?;
                    transaction_status = transaction_status.to_error_state();
                }
                Response::CopyOut(result) => send_copy_out_response(client, result).await?,
                Response::CopyIn(_) | Response::CopyBoth(_) => {
                    return Err(user_error(read_only()));
                }
            }
        }
        if stream_rows {
            let state = portal.state();
            let mut state = state.lock().await;
            let (tag, rows, suspended) = match &mut *state {
                PortalExecutionState::Suspended(response) => {
                    let tag = response.command_tag().to_owned();
                    let data = response.data_rows();
                    let mut rows = 0;
                    let mut suspended = true;
                    while max_rows == 0 || rows < max_rows {
                        match data.next().await {
                            Some(row) => {
                                client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                                rows += 1;
                            }
                            None => {
                                suspended = false;
                                break;
                            }
                        }
                    }
                    (tag, rows, suspended)
                }
                PortalExecutionState::Finished => ("SELECT".to_owned(), 0, false),
                PortalExecutionState::Initial => return Err(PgWireError::PortalNotStarted),
            };
            if suspended {
                client
                    .send(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
                    .await?;
            } else {
                *state = PortalExecutionState::Finished;
                let tag = Tag::new(&tag).with_rows(rows);
                client
                    .send(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?;
            }
        }
        if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            client.set_state(PgWireConnectionState::ReadyForQuery);
            client.set_transaction_status(transaction_status);
        }
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let who = client_of(client);
        let types = self.parameter_types(&who, portal).await?;
        let params = (0..portal.parameter_len())
            .map(|i| {
                let bytes = portal.parameters.get(i).cloned().flatten();
                params::decode(
                    bytes.as_deref(),
                    &types[i],
                    portal.parameter_format.is_binary(i),
                )
                .map_err(|message| {
                    user_error(error("22P02", format!("parameter ${}: {message}", i + 1)))
                })
            })
            .collect::<PgWireResult<Vec<_>>>()?;
        let outcome = self
            .run(
                &who,
                &portal.statement.statement,
                params,
                &portal.result_column_format,
            )
            .await?;
        // A declared cursor is a portal the client may Describe (psycopg's named cursors).
        match &outcome {
            Outcome::Declared(cursor) => client.portal_store().put_portal(Arc::clone(cursor)),
            Outcome::Closed(names) => {
                for name in names {
                    client.portal_store().rm_portal(name);
                }
            }
            _ => {}
        }
        outcome_response(outcome, &portal.result_column_format)
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let client = client_of(client);
        let (described, columns) = self.describe(&client, &target.statement).await?;
        // The client's declared types win; else the type the query implies (a cast, or the
        // column the parameter is compared with); else text, which DuckDB casts to whatever
        // the parameter needs.
        let params = (0..described.len().max(target.parameter_types.len()))
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .or_else(|| described.get(i).cloned().flatten())
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
        client: &mut C,
        target: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // A cursor's portal already runs: its columns are known.
        if let PortalExecutionState::Suspended(running) = &*target.state().lock().await {
            return Ok(DescribePortalResponse::new(
                running.row_schema().as_ref().clone(),
            ));
        }
        let client = client_of(client);
        let (_, columns) = self.describe(&client, &target.statement.statement).await?;
        Ok(DescribePortalResponse::new(fields(
            &columns,
            &target.result_column_format,
        )))
    }
}

/// Where encoded fields go: a data row or a COPY line.
pub(crate) trait FieldSink {
    /// Encodes the next field.
    fn field<T: ToSql + ToSqlText + Sized>(&mut self, value: &T) -> PgWireResult<()>;
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
pub(crate) fn encode<E: FieldSink>(enc: &mut E, ty: &Type, v: Value) -> PgWireResult<()> {
    let mismatch = |v: &Value| {
        user_error(error(
            "XX000",
            format!("cannot send {v:?} as {}", ty.name()),
        ))
    };
    if matches!(v, Value::Null) {
        return enc.field(&None::<i32>);
    }
    match *ty {
        Type::BOOL => match v {
            Value::Boolean(b) => enc.field(&b),
            v => Err(mismatch(&v)),
        },
        Type::INT2 => {
            let n = integer(&v).and_then(|n| i16::try_from(n).ok());
            enc.field(&n.ok_or_else(|| mismatch(&v))?)
        }
        Type::INT4 => {
            let n = integer(&v).and_then(|n| i32::try_from(n).ok());
            enc.field(&n.ok_or_else(|| mismatch(&v))?)
        }
        Type::INT8 => {
            let n = integer(&v).and_then(|n| i64::try_from(n).ok());
            enc.field(&n.ok_or_else(|| mismatch(&v))?)
        }
        Type::NUMERIC => {
            let text = match &v {
                Value::Decimal(d) => Some(d.to_string()),
                Value::UHugeInt(n) => Some(n.to_string()),
                v => integer(v).map(|n| n.to_string()),
            };
            enc.field(&Numeric(text.ok_or_else(|| mismatch(&v))?))
        }
        Type::FLOAT4 => match v {
            Value::Float(f) => enc.field(&f),
            v => Err(mismatch(&v)),
        },
        Type::UUID => match v {
            Value::Text(text) => enc.field(&crate::uuid::Uuid(text)),
            v => Err(mismatch(&v)),
        },
        Type::FLOAT8 => match v {
            Value::Double(f) => enc.field(&f),
            Value::Float(f) => enc.field(&f64::from(f)),
            v => Err(mismatch(&v)),
        },
        Type::DATE => match v {
            Value::Date32(days) => {
                let d = NaiveDate::from_ymd_opt(1970, 1, 1)
                    .and_then(|e| e.checked_add_signed(chrono::Duration::days(days.into())));
                enc.field(&d.ok_or_else(|| mismatch(&v))?)
            }
            v => Err(mismatch(&v)),
        },
        Type::TIMESTAMP | Type::TIMESTAMPTZ => match v {
            Value::Timestamp(unit, t) => {
                let ts =
                    DateTime::from_timestamp_micros(micros(unit, t)).ok_or_else(|| mismatch(&v))?;
                if *ty == Type::TIMESTAMP {
                    enc.field(&ts.naive_utc())
                } else {
                    enc.field(&ts)
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
                enc.field(&time.ok_or_else(|| mismatch(&v))?)
            }
            v => Err(mismatch(&v)),
        },
        Type::BYTEA => match v {
            Value::Blob(b) => enc.field(&b.as_slice()),
            v => Err(mismatch(&v)),
        },
        _ => enc.field(&render(&v)),
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
