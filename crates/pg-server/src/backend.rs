//! One client's DuckDB: an in-memory database with sessions attached READ_ONLY, one schema
//! (DuckDB database) per session id, and a temp table `osiris_sessions`. Every call blocks; the
//! handler runs them on a blocking thread.

use std::path::{Path, PathBuf};

use duckdb::arrow::datatypes::DataType;
use duckdb::types::Value;
use pgwire::api::Type;
use pgwire::error::ErrorInfo;

use crate::sql::{quote_identifier, quote_literal};

/// A query error with its SQLSTATE.
pub fn error(code: &str, message: impl Into<String>) -> Box<ErrorInfo> {
    Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    ))
}

/// Generic query failure (bad SQL, unknown table, ...).
const QUERY_FAILED: &str = "42000";

/// A result set, fully read.
#[derive(Debug, Default)]
pub struct Rows {
    /// Column names and their PostgreSQL types.
    pub columns: Vec<(String, Type)>,
    /// Values, row by row.
    pub rows: Vec<Vec<Value>>,
}

/// One client's database.
pub struct Backend {
    conn: duckdb::Connection,
    root: PathBuf,
}

impl Backend {
    /// Opens the in-memory database and attaches the `attach_recent` newest finished sessions.
    pub fn open(root: &Path, attach_recent: usize) -> Result<Self, Box<ErrorInfo>> {
        let fail = |e: duckdb::Error| error("58000", format!("cannot open the database: {e}"));
        let config = execution_context::base_config().map_err(fail)?;
        let conn = duckdb::Connection::open_in_memory_with_flags(config).map_err(fail)?;
        let backend = Self {
            conn,
            root: root.to_owned(),
        };
        for session in sessions::list(root)
            .into_iter()
            .filter(|s| s.state != sessions::State::Running && s.database_path().exists())
            .take(attach_recent)
        {
            if let Err(e) = backend.attach_session(&session) {
                tracing::warn!(session_id = %session.id, error = %e.message, "cannot attach session");
            }
        }
        // Queries may read the session files only: no reading arbitrary files through
        // read_csv(...) and the like, no extension downloads.
        let root_text = root.display().to_string();
        backend
            .conn
            .execute_batch(&format!(
                "SET allowed_directories = [{}]; SET enable_external_access = false;",
                quote_literal(&root_text)
            ))
            .map_err(fail)?;
        backend.refresh_sessions_table()?;
        Ok(backend)
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
        Ok(Rows {
            columns: vec![("attached".to_owned(), Type::TEXT)],
            rows: vec![vec![Value::Text(session.id)]],
        })
    }

    /// Refills `osiris_sessions` from the sessions directory.
    fn refresh_sessions_table(&self) -> Result<(), Box<ErrorInfo>> {
        let fail = |e: duckdb::Error| error("58000", format!("cannot list sessions: {e}"));
        self.conn
            .execute_batch(
                "CREATE OR REPLACE TEMP TABLE osiris_sessions (id VARCHAR, pipeline VARCHAR, \
                 status VARCHAR, started_at TIMESTAMPTZ, size_mb DOUBLE, tables VARCHAR)",
            )
            .map_err(fail)?;
        let mut insert = self
            .conn
            .prepare(
                "INSERT INTO osiris_sessions VALUES (?, ?, ?, TRY_CAST(? AS TIMESTAMPTZ), ?, ?)",
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

    /// Number of parameters (`$n`) of a statement.
    pub fn parameter_count(&self, sql: &str) -> Result<usize, Box<ErrorInfo>> {
        let stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| error(QUERY_FAILED, e.to_string()))?;
        Ok(stmt.parameter_count())
    }

    /// The result columns of a query, without reading its rows when it can be wrapped in a
    /// subquery (a prepared `SELECT * FROM big` would otherwise run in full just to be described).
    pub fn describe(&mut self, sql: &str) -> Result<Rows, Box<ErrorInfo>> {
        let body = sql.trim_end().trim_end_matches(';');
        let wrapped = format!("SELECT * FROM ({body}\n) AS osiris_describe LIMIT 0");
        self.query(&wrapped, Vec::new())
            .or_else(|_| self.query(sql, Vec::new()))
    }

    /// Runs a query; `params` fill `$1..`. `None` params (describe) are bound as NULL.
    pub fn query(&mut self, sql: &str, params: Vec<Value>) -> Result<Rows, Box<ErrorInfo>> {
        if sql.to_ascii_lowercase().contains("osiris_sessions") {
            self.refresh_sessions_table()?;
        }
        let fail = |e: duckdb::Error| error(QUERY_FAILED, e.to_string());
        let mut stmt = self.conn.prepare(sql).map_err(fail)?;
        let mut params = params;
        params.resize(stmt.parameter_count(), Value::Null);
        let mut rows = stmt.query(duckdb::params_from_iter(params)).map_err(fail)?;
        let schema = rows
            .as_ref()
            .map(|s| s.schema())
            .ok_or_else(|| error("XX000", "no result schema"))?;
        let columns: Vec<(String, Type)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), pg_type(f.data_type())))
            .collect();
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
