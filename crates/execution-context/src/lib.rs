//! The per-run context every step shares: the session id and directory, the lazily opened run
//! database `pipeline_data.duckdb`, the `events.jsonl` / `metrics.jsonl` sinks (with secret
//! scrubbing and automatic `step_id` tagging), per-step artifact directories and cancellation.
//!
//! DuckDB's `Connection` is `Send` but not `Sync`, and every call blocks. The context opens the
//! file once, on first use, keeps that handle, and gives every caller its own `try_clone()`, so
//! that each step (or each blocking task of a step) owns a connection to the same database.
#![warn(missing_docs)]

mod access;
pub mod calendar;
mod parallelism;
mod redact;
mod secret;
mod sink;
pub mod sources;
mod sql;
pub mod uuid;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value};

pub use access::FileAccess;
pub use parallelism::{RunningStep, SerialAppend};
pub use redact::{MASK, Redactor, is_secret_key};
pub use secret::SecretString;
use sink::JsonlSink;
pub use sql::{
    MemoryLimit, base_config, quote_identifier, quote_literal, release_table_cache,
    set_memory_limit, unmask_interrupt,
};
/// The token that cancels a run and its steps ([`ExecutionContext::cancellation`]).
pub use tokio_util::sync::CancellationToken;

/// File name of the run database inside a session directory.
pub const DATABASE_FILE: &str = "pipeline_data.duckdb";
/// File name of the event log inside a session directory.
pub const EVENTS_FILE: &str = "events.jsonl";
/// File name of the metric log inside a session directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Directory (inside a session directory) holding one sub-directory per step.
pub const ARTIFACTS_DIR: &str = "artifacts";

/// Errors of the execution context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory of the session could not be created or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The run database could not be opened or configured.
    #[error("cannot open the run database {}: {source}", path.display())]
    Database {
        /// Path of the database file.
        path: PathBuf,
        /// The DuckDB error.
        source: duckdb::Error,
    },
    /// A step id cannot name an artifact directory.
    #[error("step id {0:?} cannot be used as a directory name")]
    InvalidStepId(String),
    /// File access was restricted after the run database had been opened (a bug of the caller:
    /// DuckDB cannot narrow or widen it on an open database).
    #[error("the file access of the run database must be set before it is opened")]
    AccessAfterOpen,
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Generates a new session id: `YYYY-MM-DDTHH-MM-SSZ_<ULID>`, sortable by start time and unique.
pub fn new_session_id() -> String {
    let now = jiff::Timestamp::now();
    format!(
        "{}_{}",
        now.strftime("%Y-%m-%dT%H-%M-%SZ"),
        ulid::Ulid::new()
    )
}

/// The current time as UTC ISO 8601 with microseconds and an explicit offset.
pub fn now_iso() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// Everything a run shares between its steps. Cheap to share behind an `Arc`.
pub struct ExecutionContext {
    session_id: String,
    session_dir: PathBuf,
    db: Mutex<Option<duckdb::Connection>>,
    /// The database was opened by [`ExecutionContext::open_database_ahead`] and no connection
    /// has announced it yet (`database_opened`).
    opened_ahead: AtomicBool,
    file_access: Mutex<Option<FileAccess>>,
    events: JsonlSink,
    metrics: JsonlSink,
    redactor: Arc<Redactor>,
    cancel: CancellationToken,
    tap: Option<Tap>,
    parallelism: Arc<parallelism::Parallelism>,
}

/// Which log a tapped line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// `events.jsonl`.
    Event,
    /// `metrics.jsonl`.
    Metric,
}

/// Receives every line written to `events.jsonl` / `metrics.jsonl`, after secret scrubbing
/// (a remote worker streams them to its host). Called on the writing thread: keep it quick.
pub type Tap = Arc<dyn Fn(LogKind, &str) + Send + Sync>;

impl std::fmt::Debug for ExecutionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionContext")
            .field("session_id", &self.session_id)
            .field("session_dir", &self.session_dir)
            .finish_non_exhaustive()
    }
}

impl ExecutionContext {
    /// A context for the session `session_id` living in `session_dir`. Nothing is created on
    /// disk until something is written: the directory appears with the first event, the
    /// database with the first [`connection`](Self::connection).
    pub fn new(session_id: impl Into<String>, session_dir: impl Into<PathBuf>) -> Self {
        Self::with_redactor(session_id, session_dir, Arc::new(Redactor::default()))
    }

    /// The context of a run whose session lives in `sessions_root`, under `session_id` or a
    /// new one from [`new_session_id`]: how every adapter opens a run.
    pub fn in_sessions_root(
        sessions_root: &Path,
        session_id: Option<String>,
        redactor: Arc<Redactor>,
    ) -> Self {
        let session_id = session_id.unwrap_or_else(new_session_id);
        let session_dir = sessions_root.join(&session_id);
        Self::with_redactor(session_id, session_dir, redactor)
    }

    /// Like [`new`](Self::new), scrubbing the secrets known to `redactor` from every line written.
    pub fn with_redactor(
        session_id: impl Into<String>,
        session_dir: impl Into<PathBuf>,
        redactor: Arc<Redactor>,
    ) -> Self {
        let session_dir = session_dir.into();
        Self {
            session_id: session_id.into(),
            events: JsonlSink::new(session_dir.join(EVENTS_FILE)),
            metrics: JsonlSink::new(session_dir.join(METRICS_FILE)),
            session_dir,
            db: Mutex::new(None),
            opened_ahead: AtomicBool::new(false),
            file_access: Mutex::new(None),
            redactor,
            cancel: CancellationToken::new(),
            tap: None,
            parallelism: Arc::default(),
        }
    }

    /// Sends every event and metric line this context writes to `tap` as well.
    pub fn with_tap(mut self, tap: Tap) -> Self {
        self.tap = Some(tap);
        self
    }

    /// The session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The session directory.
    pub fn session_dir(&self) -> &Path {
        &self.session_dir
    }

    /// Path of the run database (which may not exist yet).
    pub fn database_path(&self) -> PathBuf {
        self.session_dir.join(DATABASE_FILE)
    }

    /// The secret scrubber applied to everything this context writes.
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// The run's cancellation token; cancelling it asks every step to stop.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Restricts what SQL on the run database may reach outside it to `access` (and the session
    /// directory): DuckDB's external access is turned off when the database opens, except for
    /// these paths. Every adapter sets this before a run's first step; a context without it
    /// (unit tests, tools) opens the database unrestricted. Fails once the database is open.
    pub fn restrict_file_access(&self, access: FileAccess) -> Result<()> {
        let db = self.lock_db();
        if db.is_some() {
            return Err(Error::AccessAfterOpen);
        }
        *self
            .file_access
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(access);
        Ok(())
    }

    /// A connection to the run database, opening (and creating) it on first use. Every call
    /// returns a new `try_clone()` of the one cached handle: all of them see the same tables.
    pub fn connection(&self) -> Result<duckdb::Connection> {
        let mut guard = self.lock_db();
        let announce = match guard.as_ref() {
            None => {
                *guard = Some(self.open()?);
                true
            }
            Some(_) => self.opened_ahead.swap(false, Ordering::AcqRel),
        };
        if announce {
            drop(guard);
            self.event(
                "database_opened",
                object([(
                    "path",
                    Value::String(self.database_path().display().to_string()),
                )]),
            );
            guard = self.lock_db();
        }
        let conn = guard.as_ref().expect("database handle was just cached");
        conn.try_clone().map_err(|source| Error::Database {
            path: self.database_path(),
            source,
        })
    }

    /// Starts opening the run database on another thread: creating a DuckDB instance takes
    /// 10-15 ms, which the first step then overlaps with connecting to its source instead of
    /// waiting for it. [`connection`](Self::connection) waits for the open to finish and
    /// still emits `database_opened` at first use, so events keep their order; if the open
    /// fails, the first connection tries again and reports the error. Call it once the file
    /// access is restricted ([`restrict_file_access`](Self::restrict_file_access)).
    pub fn open_database_ahead(self: &Arc<Self>) {
        if self.is_database_open() {
            return;
        }
        let ctx = Arc::clone(self);
        std::thread::spawn(move || {
            let mut guard = ctx.lock_db();
            if guard.is_none()
                && let Ok(conn) = ctx.open()
            {
                *guard = Some(conn);
                ctx.opened_ahead.store(true, Ordering::Release);
            }
        });
    }

    /// Opens (and creates) the run database with the run's file access.
    fn open(&self) -> Result<duckdb::Connection> {
        let path = self.database_path();
        self.ensure_session_dir()?;
        let access = self
            .file_access
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        match access {
            Some(mut access) => {
                access.allow_directory(&self.session_dir);
                open_restricted(&path, &access)
            }
            None => open_database(&path),
        }
    }

    /// Counts a step of this run as running until the returned guard is dropped (every
    /// `StepContext` holds one). If a lone bulk append runs DuckDB single-threaded
    /// ([`serial_bulk_append`](Self::serial_bulk_append)), DuckDB gets its threads back first,
    /// so that the new step's SQL runs in parallel as usual.
    pub fn step_running(&self) -> RunningStep {
        self.parallelism.step_started()
    }

    /// When the caller's step is the only running step of the run, runs DuckDB with one thread
    /// until the returned guard is dropped or another step starts, whichever comes first; else
    /// (or when DuckDB already has one thread) `None`. For bulk appends: an appender's flush
    /// then runs on the appending thread instead of a worker that the appending thread waits
    /// for by spinning (ADR 0044). `conn` is any connection to the run database.
    pub fn serial_bulk_append(&self, conn: &duckdb::Connection) -> Option<SerialAppend> {
        self.parallelism.serial_append(conn)
    }

    /// Whether the run database is currently open.
    pub fn is_database_open(&self) -> bool {
        self.lock_db().is_some()
    }

    /// Closes the cached database handle (connections handed out earlier stay usable until
    /// dropped). A later [`connection`](Self::connection) reopens the file.
    pub fn close_database(&self) -> Result<()> {
        let conn = self.lock_db().take();
        // Opened ahead but never used: nothing was announced, nothing to announce now.
        let unused = self.opened_ahead.swap(false, Ordering::AcqRel);
        if let Some(conn) = conn {
            let path = self.database_path();
            conn.close().map_err(|(_, source)| Error::Database {
                path: path.clone(),
                source,
            })?;
            if !unused {
                self.event(
                    "database_closed",
                    object([("path", Value::String(path.display().to_string()))]),
                );
            }
        }
        Ok(())
    }

    /// The artifact directory of a step (`artifacts/<step_id>/`), created if missing.
    pub fn step_artifacts_dir(&self, step_id: &str) -> Result<PathBuf> {
        if step_id.is_empty()
            || step_id == "."
            || step_id == ".."
            || step_id.contains(['/', '\\', '\0'])
        {
            return Err(Error::InvalidStepId(step_id.to_owned()));
        }
        let dir = self.session_dir.join(ARTIFACTS_DIR).join(step_id);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "cannot create artifact directory",
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// Writes one event line `{"ts","session","event",...fields}` to `events.jsonl`.
    /// Writing is best effort: a full disk must not turn a good run into a failed one, so
    /// failures are reported through `tracing` only.
    pub fn event(&self, name: &str, fields: Map<String, Value>) {
        self.write_line(&self.events, LogKind::Event, name, None, fields);
    }

    /// Writes one metric line `{"ts","session","metric","value",...tags}` to `metrics.jsonl`.
    pub fn metric(&self, name: &str, value: impl Into<Value>, tags: Map<String, Value>) {
        self.write_line(
            &self.metrics,
            LogKind::Metric,
            name,
            Some(value.into()),
            tags,
        );
    }

    /// An emitter that tags every event and metric with `step_id`.
    pub fn step_emitter(self: &Arc<Self>, step_id: &str) -> StepEmitter {
        StepEmitter {
            ctx: Arc::clone(self),
            step_id: step_id.to_owned(),
        }
    }

    fn write_line(
        &self,
        sink: &JsonlSink,
        kind: LogKind,
        name: &str,
        value: Option<Value>,
        fields: Map<String, Value>,
    ) {
        let mut record = Map::with_capacity(fields.len() + 4);
        record.insert("ts".into(), Value::String(now_iso()));
        record.insert("session".into(), Value::String(self.session_id.clone()));
        let key = match kind {
            LogKind::Event => "event",
            LogKind::Metric => "metric",
        };
        record.insert(key.into(), Value::String(name.to_owned()));
        if let Some(value) = value {
            record.insert("value".into(), value);
        }
        for (key, value) in fields {
            record.entry(key).or_insert(value);
        }
        let line = Value::Object(record).to_string();
        let line = self.redactor.redact(&line);
        if let Some(tap) = &self.tap {
            tap(kind, &line);
        }
        if let Err(error) = self.ensure_session_dir().and_then(|()| sink.append(&line)) {
            tracing::warn!(%error, file = %sink.path().display(), "cannot write log line");
        }
    }

    fn ensure_session_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.session_dir).map_err(|source| Error::Io {
            action: "cannot create session directory",
            path: self.session_dir.clone(),
            source,
        })
    }

    fn lock_db(&self) -> MutexGuard<'_, Option<duckdb::Connection>> {
        // A panic while holding this lock cannot leave the Option half-written.
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Opens a DuckDB database file with the settings every connection uses ([`base_config`]).
pub fn open_database(path: &Path) -> Result<duckdb::Connection> {
    let err = |source| Error::Database {
        path: path.to_owned(),
        source,
    };
    // Neither link mode builds ICU in, so TIMESTAMPTZ values always render in UTC: output does
    // not depend on the machine's time zone (a test below keeps it so).
    let config = base_config().map_err(err)?;
    let conn = duckdb::Connection::open_with_flags(path, config).map_err(err)?;
    sql::apply_run_settings(&conn).map_err(err)?;
    Ok(conn)
}

/// Opens a DuckDB database file like [`open_database`], with external access off except for
/// what `access` allows ([`FileAccess`]).
pub fn open_restricted(path: &Path, access: &FileAccess) -> Result<duckdb::Connection> {
    let conn = open_database(path)?;
    access.lock_down(&conn).map_err(|source| Error::Database {
        path: path.to_owned(),
        source,
    })?;
    Ok(conn)
}

/// Tags events and metrics of one step with its `step_id`.
#[derive(Clone)]
pub struct StepEmitter {
    ctx: Arc<ExecutionContext>,
    step_id: String,
}

impl std::fmt::Debug for StepEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepEmitter")
            .field("step_id", &self.step_id)
            .finish()
    }
}

impl StepEmitter {
    /// The step id this emitter tags with.
    pub fn step_id(&self) -> &str {
        &self.step_id
    }

    /// Writes an event with `step_id` set.
    pub fn event(&self, name: &str, mut fields: Map<String, Value>) {
        fields.insert("step_id".into(), Value::String(self.step_id.clone()));
        self.ctx.event(name, fields);
    }

    /// Writes a metric with `step_id` set.
    pub fn metric(&self, name: &str, value: impl Into<Value>) {
        self.metric_with(name, value, Map::new());
    }

    /// Writes a metric with `step_id` and extra tags set.
    pub fn metric_with(&self, name: &str, value: impl Into<Value>, mut tags: Map<String, Value>) {
        tags.insert("step_id".into(), Value::String(self.step_id.clone()));
        self.ctx.metric(name, value, tags);
    }
}

/// Builds a JSON object from `(key, value)` pairs; a small convenience for event fields.
pub fn object<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(dir: &Path) -> Arc<ExecutionContext> {
        Arc::new(ExecutionContext::new("s1", dir.join("sessions").join("s1")))
    }

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn restricted_database_reaches_only_the_allowed_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(data.join("in.csv"), "a\n1\n").unwrap();
        std::fs::write(elsewhere.join("secret.txt"), "top secret").unwrap();
        std::fs::write(elsewhere.join("one.csv"), "b\n2\n").unwrap();
        let ctx = context(tmp.path());
        let mut access = FileAccess::none();
        access.allow_directory(&data);
        access.allow_file(elsewhere.join("one.csv"));
        ctx.restrict_file_access(access).unwrap();
        let conn = ctx.connection().unwrap();
        let lit = |p: &Path| quote_literal(&p.display().to_string());
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM read_csv({})",
                lit(&data.join("in.csv"))
            ))
            .unwrap(),
            1
        );
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM read_csv({})",
                lit(&elsewhere.join("one.csv"))
            ))
            .unwrap(),
            1
        );
        conn.execute_batch(&format!(
            "COPY (SELECT 1) TO {}",
            lit(&data.join("out.csv"))
        ))
        .unwrap();
        // The session directory (spill files, a step's scratch files) is always reachable.
        conn.execute_batch(&format!(
            "COPY (SELECT 1) TO {}",
            lit(&ctx.session_dir().join("x.csv"))
        ))
        .unwrap();
        for sql in [
            format!(
                "SELECT count(*) FROM read_text({})",
                lit(&elsewhere.join("secret.txt"))
            ),
            format!("COPY (SELECT 1) TO {}", lit(&elsewhere.join("out.csv"))),
            format!("ATTACH {} AS other", lit(&elsewhere.join("other.duckdb"))),
            "SET enable_external_access = true".to_owned(),
            "INSTALL httpfs".to_owned(),
            "SELECT count(*) FROM read_text('/etc/passwd')".to_owned(),
        ] {
            assert!(conn.execute_batch(&sql).is_err(), "{sql} must fail");
        }
        assert!(!elsewhere.join("out.csv").exists());
        assert!(!elsewhere.join("other.duckdb").exists());
        // Clones share the restriction: it is the database's, not the connection's.
        let other = ctx.connection().unwrap();
        assert!(
            other
                .execute_batch(&format!(
                    "COPY (SELECT 1) TO {}",
                    lit(&elsewhere.join("o.csv"))
                ))
                .is_err()
        );
        // Too late once open.
        assert!(matches!(
            ctx.restrict_file_access(FileAccess::none()),
            Err(Error::AccessAfterOpen)
        ));
    }

    #[test]
    fn no_database_file_exists_before_first_use() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        assert!(!ctx.database_path().exists());
        assert!(!ctx.session_dir().exists(), "nothing is created eagerly");
        assert!(!ctx.is_database_open());
        let _conn = ctx.connection().unwrap();
        assert!(ctx.database_path().exists());
        assert!(ctx.is_database_open());
    }

    #[test]
    fn database_lives_in_the_session_dir_and_parents_are_created() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        ctx.connection().unwrap();
        assert_eq!(
            ctx.database_path(),
            tmp.path().join("sessions/s1/pipeline_data.duckdb")
        );
        assert!(ctx.database_path().is_file());
    }

    #[test]
    fn two_uses_share_one_database() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        let a = ctx.connection().unwrap();
        let b = ctx.connection().unwrap();
        a.execute_batch("CREATE TABLE shared AS SELECT 42 AS x")
            .unwrap();
        let x: i32 = b
            .query_row("SELECT x FROM shared", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, 42);
        let opened = lines(&ctx.session_dir().join(EVENTS_FILE))
            .iter()
            .filter(|e| e["event"] == "database_opened")
            .count();
        assert_eq!(opened, 1, "the file is opened once, then cloned");
    }

    #[test]
    fn close_then_use_reopens_and_keeps_tables() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        {
            let conn = ctx.connection().unwrap();
            conn.execute_batch("CREATE TABLE kept AS SELECT 7 AS x")
                .unwrap();
        }
        ctx.close_database().unwrap();
        assert!(!ctx.is_database_open());
        let conn = ctx.connection().unwrap();
        let x: i32 = conn
            .query_row("SELECT x FROM kept", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, 7);
        let names: Vec<String> = lines(&ctx.session_dir().join(EVENTS_FILE))
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            ["database_opened", "database_closed", "database_opened"]
        );
    }

    /// The run database compresses strings without dictionaries (ADR 0047); DuckDB's default
    /// would store this low-cardinality column as one.
    #[test]
    fn the_run_database_compresses_strings_without_dictionaries() {
        let dir = tempfile::tempdir().unwrap();
        let compression = |conn: &duckdb::Connection| -> Vec<String> {
            conn.execute_batch(
                "CREATE TABLE t AS SELECT CASE i % 3 WHEN 0 THEN 'open' WHEN 1 THEN 'shipped' \
                 ELSE 'cancelled' END AS status FROM range(300000) r(i); CHECKPOINT",
            )
            .unwrap();
            let mut stmt = conn
                .prepare(
                    "SELECT DISTINCT compression FROM pragma_storage_info('t') \
                     WHERE segment_type = 'VARCHAR' ORDER BY 1",
                )
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let plain = duckdb::Connection::open_with_flags(
            dir.path().join("plain.duckdb"),
            base_config().unwrap(),
        )
        .unwrap();
        assert_eq!(compression(&plain), ["Dictionary"]);
        let run = open_database(&dir.path().join("run.duckdb")).unwrap();
        // Steps write through clones of the handle: the setting is the database's.
        let used = compression(&run.try_clone().unwrap());
        assert!(
            !used.is_empty() && !used.iter().any(|c| c == "Dictionary"),
            "{used:?}"
        );
    }

    #[test]
    fn a_database_opened_ahead_is_announced_at_first_use_and_shared() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        ctx.restrict_file_access(FileAccess::none()).unwrap();
        ctx.open_database_ahead();
        ctx.event("between", Map::new());
        // Waits for the open ahead; the handle it made is the one connections clone.
        let conn = ctx.connection().unwrap();
        conn.execute_batch("CREATE TABLE t AS SELECT 1 AS x")
            .unwrap();
        let other = ctx.connection().unwrap();
        let x: i32 = other
            .query_row("SELECT x FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, 1);
        // The file access of the run applies to it as to any open.
        assert!(
            other
                .execute_batch("SELECT * FROM read_text('/etc/hostname')")
                .is_err()
        );
        drop((conn, other));
        ctx.close_database().unwrap();
        let names: Vec<String> = lines(&ctx.session_dir().join(EVENTS_FILE))
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["between", "database_opened", "database_closed"]);

        // Opened ahead, never used: closed without a word.
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        ctx.open_database_ahead();
        while !ctx.is_database_open() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        ctx.close_database().unwrap();
        assert!(!ctx.is_database_open());
        assert!(!ctx.session_dir().join(EVENTS_FILE).exists(), "no event");
    }

    #[test]
    fn several_step_tables_live_in_one_file() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        for id in ["extract-orders", "big_orders", "select"] {
            let conn = ctx.connection().unwrap();
            conn.execute_batch(&format!("CREATE TABLE \"{id}\" AS SELECT 1 AS x"))
                .unwrap();
        }
        ctx.close_database().unwrap();
        let conn = duckdb::Connection::open(ctx.database_path()).unwrap();
        let mut stmt = conn
            .prepare("SELECT table_name FROM information_schema.tables ORDER BY 1")
            .unwrap();
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(names, ["big_orders", "extract-orders", "select"]);
    }

    #[test]
    fn timestamptz_renders_in_utc() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        let conn = ctx.connection().unwrap();
        let ts: String = conn
            .query_row(
                "SELECT CAST(TIMESTAMPTZ '2024-01-01 10:00:00+02' AS VARCHAR)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ts, "2024-01-01 08:00:00+00");
    }

    #[test]
    fn step_emitter_tags_events_and_metrics() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        let step = ctx.step_emitter("load");
        step.event("write.start", object([("rows", 3.into())]));
        step.metric("rows_written", 3);
        let events = lines(&ctx.session_dir().join(EVENTS_FILE));
        assert_eq!(events[0]["event"], "write.start");
        assert_eq!(events[0]["step_id"], "load");
        assert_eq!(events[0]["session"], "s1");
        assert!(events[0]["ts"].as_str().unwrap().ends_with("+00:00"));
        let metrics = lines(&ctx.session_dir().join(METRICS_FILE));
        assert_eq!(metrics[0]["metric"], "rows_written");
        assert_eq!(metrics[0]["value"], 3);
        assert_eq!(metrics[0]["step_id"], "load");
    }

    #[test]
    fn secrets_are_scrubbed_from_every_line() {
        let tmp = tempfile::tempdir().unwrap();
        let redactor = Arc::new(Redactor::default());
        redactor.add_secret("hunter2-very-secret");
        let ctx = Arc::new(ExecutionContext::with_redactor(
            "s1",
            tmp.path().join("s1"),
            redactor,
        ));
        ctx.event(
            "connection_failed",
            object([(
                "error",
                "login as root with hunter2-very-secret failed".into(),
            )]),
        );
        let text = std::fs::read_to_string(ctx.session_dir().join(EVENTS_FILE)).unwrap();
        assert!(!text.contains("hunter2-very-secret"));
        assert!(text.contains("login as root with *** failed"));
    }

    #[test]
    fn artifact_dirs_are_per_step_and_reject_path_tricks() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path());
        let dir = ctx.step_artifacts_dir("load-orders").unwrap();
        assert!(dir.ends_with("artifacts/load-orders") && dir.is_dir());
        assert!(matches!(
            ctx.step_artifacts_dir("../escape"),
            Err(Error::InvalidStepId(_))
        ));
    }
}
