//! One client's DuckDB: an in-memory database with sessions attached READ_ONLY, one schema
//! (DuckDB database) per session id, the PostgreSQL catalog over them (`catalog.sql`) and a table
//! `osiris_sessions`. Every call blocks; the handler runs them on a blocking thread.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use duckdb::arrow::datatypes::DataType;
use duckdb::types::Value;
use pgwire::api::Type;
use pgwire::error::ErrorInfo;

use crate::settings::Settings;
use crate::sql::{quote_identifier, quote_literal};
use crate::translate::{Hint, Origin, OriginItem};

/// A query error with its SQLSTATE.
pub fn error(code: &str, message: impl Into<String>) -> Box<ErrorInfo> {
    Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    ))
}

/// Generic query failure (bad SQL, unknown table, ...).
pub const QUERY_FAILED: &str = "42000";

/// A result column: name, PostgreSQL type and type modifier (numeric precision/scale).
#[derive(Debug, Clone)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// PostgreSQL type.
    pub ty: Type,
    /// `atttypmod`: `((precision << 16) | scale) + 4` for numeric, else -1.
    pub typmod: i32,
    /// The table oid and column number it is read from, when it is a table's column.
    pub origin: Option<(i32, i16)>,
}

impl Column {
    /// A column without a type modifier.
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Self {
            name: name.into(),
            ty,
            typmod: -1,
            origin: None,
        }
    }
}

/// A result set, fully read.
#[derive(Debug, Default)]
pub struct Rows {
    /// Columns.
    pub columns: Vec<Column>,
    /// Values, row by row.
    pub rows: Vec<Vec<Value>>,
}

/// The catalog every client's database gets (ADR 0029).
const CATALOG_SQL: &str = include_str!("catalog.sql");

/// How often the sessions directory is looked at for new sessions.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// One client's database.
pub struct Backend {
    conn: duckdb::Connection,
    root: PathBuf,
    /// Sessions seen (attached, or skipped as too old) so far.
    seen: HashSet<String>,
    last_refresh: Instant,
    settings: Settings,
    /// The statements that give a connection this client's search path and time zone.
    session_sql: String,
}

impl Backend {
    /// Opens the in-memory database, builds the catalog and attaches the `attach_recent` newest
    /// finished sessions; `user` and `pid` are the client's.
    pub fn open(
        root: &Path,
        attach_recent: usize,
        user: &str,
        pid: i32,
    ) -> Result<Self, Box<ErrorInfo>> {
        let fail = |e: duckdb::Error| error("58000", format!("cannot open the database: {e}"));
        let config = execution_context::base_config().map_err(fail)?;
        let conn = duckdb::Connection::open_in_memory_with_flags(config).map_err(fail)?;
        conn.execute_batch(CATALOG_SQL).map_err(fail)?;
        conn.execute_batch(
            "CREATE TABLE memory.main.osiris_sessions (id VARCHAR, pipeline VARCHAR, \
             status VARCHAR, started_at TIMESTAMPTZ, size_mb DOUBLE, tables VARCHAR)",
        )
        .map_err(fail)?;
        let version = conn
            .query_row("SELECT library_version FROM pragma_version()", [], |r| {
                r.get::<_, String>(0)
            })
            .map_err(fail)?;
        let mut backend = Self {
            conn,
            root: root.to_owned(),
            seen: HashSet::new(),
            last_refresh: Instant::now(),
            settings: Settings::new(user, pid, &version),
            session_sql: String::new(),
        };
        let mut attached = 0;
        for session in sessions::list(root) {
            if session.state == sessions::State::Running || !session.database_path().exists() {
                continue;
            }
            backend.seen.insert(session.id.clone());
            if attached < attach_recent {
                attached += 1;
                if let Err(e) = backend.attach_session(&session) {
                    tracing::warn!(session_id = %session.id, error = %e.message, "cannot attach session");
                }
            }
        }
        // Queries may read the session files, and the input files that attached sessions keep
        // as views (ADR 0036), only: no reading arbitrary files through read_csv(...) and the
        // like, no extension downloads. DuckDB cannot widen the list once external access is
        // off, so views over files of a session attached later fail with a permission error.
        let mut access = execution_context::FileAccess::none();
        access.allow_directory(root);
        for file in backend.view_files() {
            access.allow_file(file);
        }
        access.lock_down(&backend.conn).map_err(fail)?;
        backend.apply_settings()?;
        backend.refresh_sessions_table()?;
        Ok(backend)
    }

    /// Attaches sessions that finished since the last look, so that they show up as schemas
    /// without `osiris_attach`.
    fn refresh(&mut self) {
        if self.last_refresh.elapsed() < REFRESH_EVERY {
            return;
        }
        self.last_refresh = Instant::now();
        for session in sessions::list(&self.root) {
            if self.seen.contains(&session.id)
                || session.state == sessions::State::Running
                || !session.database_path().exists()
            {
                continue;
            }
            self.seen.insert(session.id.clone());
            if let Err(e) = self.attach_session(&session) {
                tracing::warn!(session_id = %session.id, error = %e.message, "cannot attach session");
            }
        }
    }

    /// The files that the source views of every attached session read (ADR 0036).
    fn view_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for id in self.seen.iter().filter(|id| self.attached(id)) {
            match sessions::sources::source_files(&self.conn, Some(id)) {
                Ok(found) => files.extend(found),
                Err(e) => {
                    tracing::warn!(session_id = %id, error = %e, "cannot list source views")
                }
            }
        }
        files
    }

    fn attached(&self, id: &str) -> bool {
        self.conn
            .query_row(
                "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?",
                [id],
                |r| r.get::<_, i64>(0),
            )
            .is_ok_and(|n| n > 0)
    }

    fn attach_session(&self, session: &sessions::Session) -> Result<(), Box<ErrorInfo>> {
        if self.attached(&session.id) {
            return Ok(());
        }
        if session.state == sessions::State::Running {
            return Err(error(
                "55006",
                format!("session `{}` is still running", session.id),
            ));
        }
        let path = session.database_path();
        if !path.exists() {
            return Err(error(
                "58P01",
                format!("session `{}` has no run database", session.id),
            ));
        }
        self.conn
            .execute_batch(&format!(
                "ATTACH {} AS {} (READ_ONLY)",
                quote_literal(&path.display().to_string()),
                quote_identifier(&session.id)
            ))
            .map_err(|e| {
                error(
                    "58000",
                    format!("cannot attach session `{}`: {e}", session.id),
                )
            })
    }

    /// `osiris_attach(id)`: attaches a session; the result names its schema.
    pub fn attach(&mut self, id: &str) -> Result<Rows, Box<ErrorInfo>> {
        let session = sessions::find(&self.root, id).map_err(|e| error("3F000", e.to_string()))?;
        self.attach_session(&session)?;
        self.seen.insert(session.id.clone());
        self.apply_settings()?;
        Ok(Rows {
            columns: vec![Column::new("attached", Type::TEXT)],
            rows: vec![vec![Value::Text(session.id)]],
        })
    }

    /// Refills `osiris_sessions` from the sessions directory.
    fn refresh_sessions_table(&self) -> Result<(), Box<ErrorInfo>> {
        let fail = |e: duckdb::Error| error("58000", format!("cannot list sessions: {e}"));
        self.conn
            .execute_batch("DELETE FROM memory.main.osiris_sessions")
            .map_err(fail)?;
        let mut insert = self
            .conn
            .prepare(
                "INSERT INTO memory.main.osiris_sessions \
                 VALUES (?, ?, ?, TRY_CAST(? AS TIMESTAMPTZ), ?, ?)",
            )
            .map_err(fail)?;
        for s in sessions::list(&self.root) {
            let tables = if self.attached(&s.id) {
                self.attached_tables(&s.id)
            } else {
                sessions::tables(&s)
                    .map(|t| t.into_iter().map(|t| t.name).collect())
                    .unwrap_or_default()
            };
            insert
                .execute(duckdb::params![
                    s.id,
                    s.pipeline,
                    s.state.as_str(),
                    s.started_at,
                    s.size_bytes as f64 / 1_048_576.0,
                    tables.join(","),
                ])
                .map_err(fail)?;
        }
        Ok(())
    }

    fn attached_tables(&self, id: &str) -> Vec<String> {
        let Ok(mut stmt) = self.conn.prepare(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY table_name",
        ) else {
            return Vec::new();
        };
        stmt.query_map([id], |r| r.get::<_, String>(0))
            .map(|rows| rows.flatten().collect())
            .unwrap_or_default()
    }

    /// `SET name = value` (`None`: the default).
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), Box<ErrorInfo>> {
        self.settings.set(name, value)?;
        self.apply_settings()
    }

    /// `RESET ALL`.
    pub fn reset_all(&mut self) -> Result<(), Box<ErrorInfo>> {
        self.settings.reset_all();
        self.apply_settings()
    }

    /// `SHOW name` / `SHOW ALL`.
    pub fn show(&self, name: &str) -> Result<Rows, Box<ErrorInfo>> {
        self.settings.show(name)
    }

    /// The current `statement_timeout`, if any.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.settings.statement_timeout()
    }

    /// Mirrors the settings into the catalog (`pg_settings`, `current_setting`, ...) and into
    /// DuckDB's search path and time zone.
    fn apply_settings(&mut self) -> Result<(), Box<ErrorInfo>> {
        let fail = |e: duckdb::Error| error("XX000", format!("cannot apply settings: {e}"));
        let attached: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT database_name FROM duckdb_databases() WHERE NOT internal")
                .map_err(fail)?;
            stmt.query_map([], |r| r.get::<_, String>(0))
                .map_err(fail)?
                .flatten()
                .filter(|d| d != "memory")
                .collect()
        };
        let schemas = self.settings.visible_schemas(&attached);
        // DuckDB: the in-memory database first (it holds the catalog the translated queries
        // name), then the sessions on the search path, in order.
        let mut path = vec!["memory.main".to_owned()];
        path.extend(
            schemas
                .iter()
                .filter(|s| *s != "public")
                .map(|s| format!("{}.main", quote_identifier(s))),
        );
        self.session_sql = format!("SET search_path = {};", quote_literal(&path.join(",")));
        self.conn.execute_batch(&self.session_sql).map_err(fail)?;
        if let Some(tz) = self.settings.get("timezone") {
            let set_tz = format!("SET TimeZone = {};", quote_literal(&tz));
            match self.conn.execute_batch(&set_tz) {
                Ok(()) => self.session_sql.push_str(&set_tz),
                Err(e) => tracing::debug!(error = %e, "time zone not applied"),
            }
        }
        self.settings
            .set_internal("osiris.schemas", &schemas.join(","));
        self.settings.set_internal(
            "osiris.current_schema",
            schemas.first().map(String::as_str).unwrap_or(""),
        );
        self.conn
            .execute_batch("DELETE FROM osiris_catalog.osiris_settings")
            .map_err(fail)?;
        let mut insert = self
            .conn
            .prepare("INSERT INTO osiris_catalog.osiris_settings VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .map_err(fail)?;
        let mut variables = String::new();
        for s in self.settings.rows() {
            // The catalog's functions read the server's own values as DuckDB variables (no
            // subquery, so that table functions can take them).
            if s.name.starts_with("osiris.") {
                variables.push_str(&format!(
                    "SET VARIABLE {} = {};",
                    quote_identifier(&s.name),
                    quote_literal(&s.value)
                ));
            }
            insert
                .execute(duckdb::params![
                    s.name.to_ascii_lowercase(),
                    s.value,
                    s.reset,
                    s.unit,
                    s.category,
                    s.description,
                    s.vartype,
                    "user"
                ])
                .map_err(fail)?;
        }
        self.conn.execute_batch(&variables).map_err(fail)?;
        // DuckDB variables belong to a connection: streamed queries' connections get them too.
        self.session_sql.push_str(&variables);
        Ok(())
    }

    /// The table column each result column is read from, where the query reads one table
    /// (`None` for computed columns); empty when that cannot be told.
    pub fn origins(&self, origin: Option<&Origin>) -> Vec<Option<(i32, i16)>> {
        let none = Vec::new();
        let Some(origin) = origin else {
            return none;
        };
        let (database, table) = match origin.relation.as_slice() {
            [table] => (None, table),
            [database, table] | [database, _, table] => (Some(database.as_str()), table),
            _ => return none,
        };
        // An unqualified table is looked up along the search path, then in `public`.
        let mut order: Vec<String> = match database {
            Some(d) => vec![d.to_owned()],
            None => self
                .settings
                .get("osiris.schemas")
                .unwrap_or_default()
                .split(',')
                .map(str::to_owned)
                .collect(),
        };
        order.push("memory".to_owned());
        let Ok(mut stmt) = self.conn.prepare(
            "SELECT database_name, table_oid, column_name, column_index FROM duckdb_columns() \
             WHERE table_name = ? AND schema_name = 'main' ORDER BY column_index",
        ) else {
            return none;
        };
        let Ok(rows) = stmt.query_map([table], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        }) else {
            return none;
        };
        let rows: Vec<_> = rows.flatten().collect();
        let Some(chosen) = order.iter().find(|d| rows.iter().any(|r| &r.0 == *d)) else {
            return none;
        };
        let columns: Vec<(i32, String, i16)> = rows
            .iter()
            .filter(|r| &r.0 == chosen)
            .filter_map(|r| {
                Some((
                    i32::try_from(r.1).ok()?,
                    r.2.clone(),
                    i16::try_from(r.3).ok()?,
                ))
            })
            .collect();
        let mut out = Vec::new();
        for item in &origin.items {
            match item {
                OriginItem::All => out.extend(columns.iter().map(|c| Some((c.0, c.2)))),
                OriginItem::Column(name) => out.push(
                    columns
                        .iter()
                        .find(|c| c.1.eq_ignore_ascii_case(name))
                        .map(|c| (c.0, c.2)),
                ),
                OriginItem::Computed => out.push(None),
            }
        }
        out
    }

    /// The type of each parameter from the query's hints (`None`: unknown).
    pub fn parameter_types(&mut self, hints: &[Option<Hint>], sql: &str) -> Vec<Option<Type>> {
        hints
            .iter()
            .map(|hint| match hint {
                Some(Hint::Cast(t)) => pg_type_named(t),
                Some(Hint::Column(c)) => self.column_type(c, sql),
                None => None,
            })
            .collect()
    }

    /// The type of a column of that name in a relation the query reads.
    fn column_type(&self, column: &str, sql: &str) -> Option<Type> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.data_type, c.table_name FROM duckdb_columns() c \
                 WHERE lower(c.column_name) = lower(?) AND c.database_name NOT IN ('system', 'temp')",
            )
            .ok()?;
        let rows: Vec<(String, String)> = stmt
            .query_map([column], |r| Ok((r.get(0)?, r.get(1)?)))
            .ok()?
            .flatten()
            .collect();
        let lower = sql.to_ascii_lowercase();
        rows.iter()
            .find(|(_, table)| lower.contains(&table.to_ascii_lowercase()))
            .and_then(|(t, _)| pg_type_named(t))
    }

    /// A connection to this client's database for one streamed query: sessions that appeared
    /// are attached first, and the connection gets the client's search path and time zone.
    pub fn stream_connection(&mut self, sql: &str) -> Result<duckdb::Connection, Box<ErrorInfo>> {
        self.refresh();
        if sql.to_ascii_lowercase().contains("osiris_sessions") {
            self.refresh_sessions_table()?;
        }
        let fail =
            |e: duckdb::Error| error("58000", format!("cannot open a query connection: {e}"));
        let conn = self.conn.try_clone().map_err(fail)?;
        conn.execute_batch(&self.session_sql).map_err(fail)?;
        Ok(conn)
    }

    /// The result columns of a query, without running it.
    pub fn describe(&mut self, sql: &str) -> Result<Vec<Column>, Box<ErrorInfo>> {
        self.refresh();
        // duckdb-rs reads the result schema after the statement ran: wrap it in LIMIT 0.
        let body = sql.trim_end().trim_end_matches(';');
        let wrapped = format!("SELECT * FROM ({body}\n) AS osiris_describe LIMIT 0");
        let rows = self
            .query(&wrapped, Vec::new())
            .or_else(|_| self.query(sql, Vec::new()))?;
        Ok(rows.columns)
    }

    /// Runs a query; `params` fill `$1..`. Missing params are bound as NULL.
    pub fn query(&mut self, sql: &str, params: Vec<Value>) -> Result<Rows, Box<ErrorInfo>> {
        self.refresh();
        if sql.to_ascii_lowercase().contains("osiris_sessions") {
            self.refresh_sessions_table()?;
        }
        let fail = |e: duckdb::Error| error(QUERY_FAILED, e.to_string());
        let mut stmt = self.conn.prepare(sql).map_err(fail)?;
        let mut params = params;
        params.resize(stmt.parameter_count(), Value::Null);
        let mut rows = stmt.query(duckdb::params_from_iter(params)).map_err(fail)?;
        let columns = rows
            .as_ref()
            .map(columns_of)
            .ok_or_else(|| error("XX000", "no result schema"))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(row.get::<_, Value>(i).map_err(fail)?);
            }
            out.push(values);
        }
        Ok(Rows { columns, rows: out })
    }
}

/// The PostgreSQL columns of an executed statement's result. Types come from the Arrow schema,
/// except `UUID`, which DuckDB's Arrow export turns into text: it stays `uuid`.
pub fn columns_of(stmt: &duckdb::Statement<'_>) -> Vec<Column> {
    let schema = stmt.schema();
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let uuid = f.data_type() == &DataType::Utf8
                && stmt.column_logical_type(i).id() == duckdb::core::LogicalTypeId::Uuid;
            Column {
                name: f.name().clone(),
                ty: if uuid {
                    Type::UUID
                } else {
                    pg_type(f.data_type())
                },
                typmod: typmod(f.data_type()),
                origin: None,
            }
        })
        .collect()
}

/// Sets the columns' origins (from [`Backend::origins`]) when there is one per column.
pub fn set_origins(columns: &mut [Column], origins: &[Option<(i32, i16)>]) {
    if origins.len() == columns.len() {
        for (column, origin) in columns.iter_mut().zip(origins) {
            column.origin = *origin;
        }
    }
}

/// The numeric type modifier of a DECIMAL column.
fn typmod(t: &DataType) -> i32 {
    match t {
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            ((i32::from(*p) << 16) | i32::from(*s).max(0)) + 4
        }
        _ => -1,
    }
}

/// The PostgreSQL type of a DuckDB (or PostgreSQL) type name.
fn pg_type_named(name: &str) -> Option<Type> {
    let upper = name.trim().to_ascii_uppercase();
    let base = upper.split('(').next().unwrap_or("").trim();
    Some(match base {
        "BOOLEAN" | "BOOL" => Type::BOOL,
        "TINYINT" | "SMALLINT" | "INT2" | "UTINYINT" => Type::INT2,
        "INTEGER" | "INT" | "INT4" | "USMALLINT" => Type::INT4,
        "BIGINT" | "INT8" | "UINTEGER" => Type::INT8,
        "FLOAT" | "REAL" | "FLOAT4" => Type::FLOAT4,
        "DOUBLE" | "FLOAT8" | "DOUBLE PRECISION" => Type::FLOAT8,
        "DECIMAL" | "NUMERIC" | "HUGEINT" | "UBIGINT" | "UHUGEINT" => Type::NUMERIC,
        "VARCHAR" | "TEXT" | "STRING" | "CHARACTER VARYING" => Type::TEXT,
        "DATE" => Type::DATE,
        "TIME" => Type::TIME,
        "TIMESTAMP"
        | "TIMESTAMP WITHOUT TIME ZONE"
        | "TIMESTAMP_S"
        | "TIMESTAMP_MS"
        | "TIMESTAMP_NS"
        | "DATETIME" => Type::TIMESTAMP,
        "TIMESTAMP WITH TIME ZONE" | "TIMESTAMPTZ" => Type::TIMESTAMPTZ,
        "INTERVAL" => Type::INTERVAL,
        "BLOB" | "BYTEA" => Type::BYTEA,
        "UUID" => Type::UUID,
        "JSON" => Type::JSON,
        "JSONB" => Type::JSONB,
        _ => return None,
    })
}

/// The PostgreSQL type a DuckDB result column is sent as.
fn pg_type(t: &DataType) -> Type {
    match t {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Time32(_) | DataType::Time64(_) => Type::TIME,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        _ => Type::TEXT,
    }
}
