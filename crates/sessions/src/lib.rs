//! Kept run sessions: every run leaves `<sessions root>/<session id>/` with its
//! `pipeline_data.duckdb` (one table per step), `status.json`, events and metrics. This crate
//! finds them, tells their state (including runs still in progress and runs that crashed),
//! opens their databases read-only, and removes them.
//!
//! A run holds `run.lock` (its process id) from start to end. A session with a lock whose process
//! is alive is running and is never removed; a lock whose process is gone marks a crashed run,
//! shown as abandoned.
#![warn(missing_docs)]

mod diff;

/// Source views and the fingerprints of the files they read (ADR 0036).
pub use execution_context::sources;

pub use diff::{Comparison, Diff, StepDiff, diff};

use std::path::{Path, PathBuf};

use execution_context::ExecutionContext;
use serde::Serialize;
use serde_json::Value;

/// File a run holds while it is in progress.
pub const LOCK_FILE: &str = "run.lock";
/// Name of the directory (under the base directory) that holds one directory per run.
pub const SESSIONS_DIR: &str = ".osiris_sessions";
/// File a finished run writes.
pub const STATUS_FILE: &str = "status.json";

/// Errors of session handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No session with that id.
    #[error("no session `{id}` in {}{}", root.display(), hint)]
    NotFound {
        /// The id asked for.
        id: String,
        /// Where it was looked for.
        root: PathBuf,
        /// A hint listing similar or recent ids.
        hint: String,
    },
    /// The session is still running.
    #[error("session `{0}` is still running (its run.lock belongs to a live process)")]
    Running(String),
    /// A run asked for a session id that is already taken (running, finished or crashed):
    /// reusing it would mix two runs in one directory.
    #[error(
        "session `{id}` already exists in {}: a session id names one run; choose another --session-id, or omit it for a new generated id",
        root.display()
    )]
    Exists {
        /// The id asked for.
        id: String,
        /// The sessions root it is in.
        root: PathBuf,
    },
    /// A file could not be read or removed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Neither of two compared sessions has a table for the step asked for.
    #[error("neither session has a table for step '{0}'")]
    NoTable(String),
    /// The session's database could not be read.
    #[error("cannot read the run database of session `{id}`: {source}")]
    Database {
        /// The session id.
        id: String,
        /// DuckDB's error.
        source: duckdb::Error,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The state of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Finished, every step completed.
    Ok,
    /// Finished with a failed step.
    Failed,
    /// Interrupted by the user.
    Cancelled,
    /// In progress (its process is alive).
    Running,
    /// Never finished: the process died (crash, kill -9, power loss).
    Abandoned,
}

impl State {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Running => "running",
            Self::Abandoned => "abandoned",
        }
    }
}

/// What is known about one session without opening its database.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// Session id (the directory name).
    pub id: String,
    /// Session directory.
    pub dir: PathBuf,
    /// State.
    pub state: State,
    /// Pipeline name, if recorded.
    pub pipeline: Option<String>,
    /// Start time (UTC ISO 8601), if recorded.
    pub started_at: Option<String>,
    /// Run duration, if finished.
    pub duration_ms: Option<u64>,
    /// Steps in the plan, if finished.
    pub steps_total: Option<u64>,
    /// Steps that completed, if finished.
    pub steps_completed: Option<u64>,
    /// The failed step, if any.
    pub failed_step: Option<String>,
    /// Bytes used by the session directory.
    pub size_bytes: u64,
}

impl Session {
    /// Path of the session's run database.
    pub fn database_path(&self) -> PathBuf {
        self.dir.join(execution_context::DATABASE_FILE)
    }

    /// Start time as a timestamp, if known.
    pub fn started(&self) -> Option<jiff::Timestamp> {
        self.started_at.as_deref().and_then(|s| s.parse().ok())
    }
}

/// Writes `run.lock` for the current process; the run calls [`release`] when it has finished.
pub fn acquire(session_dir: &Path, started_at: &str) -> Result<()> {
    let path = session_dir.join(LOCK_FILE);
    let text = serde_json::json!({"pid": std::process::id(), "started_at": started_at}).to_string();
    std::fs::write(&path, text + "\n").map_err(|source| Error::Io {
        action: "cannot write",
        path,
        source,
    })
}

/// Removes `run.lock`.
pub fn release(session_dir: &Path) -> Result<()> {
    let path = session_dir.join(LOCK_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            action: "cannot remove",
            path,
            source: e,
        }),
        _ => Ok(()),
    }
}

/// File holding the plan that ran.
pub const MANIFEST_FILE: &str = "manifest.yaml";

/// Starts a run's session directory, the same for every adapter: creates it, takes `run.lock`
/// (held until [`finish`]: a session with a live lock is running and is never removed; a lock
/// left by a dead process marks a crashed run) and writes `manifest.yaml`, scrubbed by the
/// run's redactor (a plan holds connection references, never resolved values, but a secret
/// must not reach the session even if one slipped in).
///
/// The directory is created exclusively ([`create`]): an id that is already taken, in whatever
/// state, is refused with [`Error::Exists`] and nothing of that session is touched.
pub fn begin(exec: &ExecutionContext, started_at: &str, manifest: &str) -> Result<()> {
    let session_dir = exec.session_dir();
    let manifest = exec.redactor().redact(manifest);
    create(session_dir)?;
    acquire(session_dir, started_at)?;
    let path = session_dir.join(MANIFEST_FILE);
    std::fs::write(&path, manifest.as_bytes()).map_err(|source| Error::Io {
        action: "cannot write",
        path,
        source,
    })
}

/// Creates a new session directory: its parents as needed, the directory itself with one
/// atomic `mkdir` that fails when it exists, so two runs can never share a directory (a second
/// run with the same id would otherwise overwrite the first one's manifest and lock).
pub fn create(session_dir: &Path) -> Result<()> {
    let io = |source, path: &Path| Error::Io {
        action: "cannot create",
        path: path.to_owned(),
        source,
    };
    if let Some(root) = session_dir.parent() {
        std::fs::create_dir_all(root).map_err(|e| io(e, root))?;
    }
    match std::fs::create_dir(session_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists {
            id: session_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            root: session_dir.parent().unwrap_or(Path::new(".")).to_owned(),
        }),
        Err(e) => Err(io(e, session_dir)),
    }
}

/// Ends a run's session: writes `status.json` (pretty JSON of `status`) and releases `run.lock`.
pub fn finish(session_dir: &Path, status: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(status).expect("a status serializes");
    let path = session_dir.join(STATUS_FILE);
    std::fs::write(&path, text + "\n").map_err(|source| Error::Io {
        action: "cannot write",
        path,
        source,
    })?;
    if let Err(error) = release(session_dir) {
        // The status is written: the run is over whatever the lock says.
        eprintln!("warning: {error}");
    }
    Ok(())
}

fn process_alive(pid: u64) -> bool {
    // Linux: a live process has /proc/<pid>. A zombie counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read_json(path: &Path) -> Option<Value> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// Reads one session directory. `None` when the directory is not a session.
pub fn read(dir: &Path) -> Option<Session> {
    let id = dir.file_name()?.to_str()?.to_owned();
    let status = read_json(&dir.join(STATUS_FILE));
    let lock = read_json(&dir.join(LOCK_FILE));
    if status.is_none() && lock.is_none() && !dir.join(execution_context::EVENTS_FILE).exists() {
        return None;
    }
    let text = |v: &Option<Value>, key: &str| {
        v.as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let number =
        |v: &Option<Value>, key: &str| v.as_ref().and_then(|v| v.get(key)).and_then(Value::as_u64);
    let state = match (&status, &lock) {
        (_, Some(lock))
            if lock
                .get("pid")
                .and_then(Value::as_u64)
                .is_some_and(process_alive) =>
        {
            State::Running
        }
        (Some(status), _) => match status.get("status").and_then(Value::as_str) {
            Some("ok") => State::Ok,
            Some("cancelled") => State::Cancelled,
            Some("failed") => State::Failed,
            _ => State::Abandoned,
        },
        (None, _) => State::Abandoned,
    };
    Some(Session {
        pipeline: text(&status, "pipeline").or_else(|| pipeline_from_manifest(dir)),
        started_at: text(&status, "started_at").or_else(|| text(&lock, "started_at")),
        duration_ms: number(&status, "duration_ms"),
        steps_total: number(&status, "steps_total"),
        steps_completed: number(&status, "steps_completed"),
        failed_step: text(&status, "failed_step"),
        size_bytes: dir_size(dir),
        state,
        dir: dir.to_owned(),
        id,
    })
}

fn pipeline_from_manifest(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("manifest.yaml")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("name: "))
        .map(|n| n.trim().trim_matches(['"', '\'']).to_owned())
}

/// Every session under `root`, newest first (ids sort by start time).
pub fn list(root: &Path) -> Vec<Session> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut sessions: Vec<Session> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| read(&e.path()))
        .collect();
    sessions.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    sessions
}

/// The session `id` under `root`.
pub fn find(root: &Path, id: &str) -> Result<Session> {
    let dir = root.join(id);
    if !id.contains(['/', '\\'])
        && id != "."
        && id != ".."
        && let Some(session) = read(&dir)
    {
        return Ok(session);
    }
    let all = list(root);
    let matches: Vec<&Session> = all.iter().filter(|s| s.id.contains(id)).collect();
    if let [only] = matches.as_slice() {
        return Ok((*only).clone());
    }
    let hint = if matches.len() > 1 {
        format!(
            "; `{id}` matches {} sessions: {}",
            matches.len(),
            matches
                .iter()
                .take(5)
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if all.is_empty() {
        "; there are no sessions yet".to_owned()
    } else {
        format!(
            "; most recent: {}",
            all.iter()
                .take(3)
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(Error::NotFound {
        id: id.to_owned(),
        root: root.to_owned(),
        hint,
    })
}

/// Opens a session's database read-only and without access to anything but that file and the
/// files its source views read (ADR 0036; a running session's file is locked by its process).
pub fn open_read_only(session: &Session) -> Result<duckdb::Connection> {
    if session.state == State::Running {
        return Err(Error::Running(session.id.clone()));
    }
    let fail = |source| Error::Database {
        id: session.id.clone(),
        source,
    };
    let config = execution_context::base_config()
        .and_then(|c| c.access_mode(duckdb::AccessMode::ReadOnly))
        .map_err(fail)?;
    let conn =
        duckdb::Connection::open_with_flags(session.database_path(), config).map_err(fail)?;
    // External access off: a query on a kept run reads its tables and the files its views
    // were made over, not the machine's files (`read_text('/etc/passwd')`, `COPY ... TO`,
    // `ATTACH` all fail). Reading the catalog first runs no view.
    let mut access = execution_context::FileAccess::none();
    for file in sources::source_files(&conn, None).map_err(fail)? {
        access.allow_file(file);
    }
    access.lock_down(&conn).map_err(fail)?;
    Ok(conn)
}

/// A table (or source view) in a session's database.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Table name (= step id).
    pub name: String,
    /// Rows (of a source view: counted through it, 0 when a file it reads no longer matches).
    pub rows: u64,
    /// `(column name, DuckDB type)`, in order.
    pub columns: Vec<(String, String)>,
    /// For a step kept as a view over files: its definition and how each file compares with
    /// what the run read.
    pub source: Option<ViewSource>,
}

/// A source view's definition and the state of its files.
#[derive(Debug, Clone, Serialize)]
pub struct ViewSource {
    /// `CREATE VIEW ... AS SELECT ... FROM read_csv(...)`.
    pub definition: String,
    /// Each file with its state now.
    pub files: Vec<(PathBuf, sources::FileState)>,
}

impl ViewSource {
    /// Whether every file still matches.
    pub fn matches(&self) -> bool {
        self.files.iter().all(|(_, state)| state.matches())
    }
}

/// The tables (and source views) of a session's database, sorted by name. A session without a
/// database (every step failed before writing) has none.
pub fn tables(session: &Session) -> Result<Vec<Table>> {
    if !session.database_path().exists() {
        return Ok(Vec::new());
    }
    let conn = open_read_only(session)?;
    let db = |source| Error::Database {
        id: session.id.clone(),
        source,
    };
    let views = sources::source_views(&conn, None).map_err(db)?;
    let mut stmt = conn
        .prepare(
            "SELECT table_name, column_name, data_type FROM information_schema.columns \
             WHERE table_schema = 'main' ORDER BY table_name, ordinal_position",
        )
        .map_err(db)?;
    let mut tables: Vec<Table> = Vec::new();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(db)?;
    for row in rows {
        let (table, column, ty) = row.map_err(db)?;
        match tables.last_mut() {
            Some(t) if t.name == table => t.columns.push((column, ty)),
            _ => tables.push(Table {
                source: views.iter().find(|v| v.name == table).map(|v| ViewSource {
                    definition: v.definition.clone(),
                    files: v.record.check(),
                }),
                name: table,
                rows: 0,
                columns: vec![(column, ty)],
            }),
        }
    }
    for table in &mut tables {
        if table.source.as_ref().is_some_and(|s| !s.matches()) {
            continue;
        }
        let sql = format!(
            "SELECT count(*) FROM {}",
            execution_context::quote_identifier(&table.name)
        );
        table.rows = conn
            .query_row(&sql, [], |r| r.get::<_, i64>(0))
            .map_err(db)? as u64;
    }
    Ok(tables)
}

/// The names of the tables and views of a session's database, sorted, from the catalog only
/// (no row is counted, no file a view reads is touched).
pub fn table_names(session: &Session) -> Result<Vec<String>> {
    if !session.database_path().exists() {
        return Ok(Vec::new());
    }
    let conn = open_read_only(session)?;
    let db = |source| Error::Database {
        id: session.id.clone(),
        source,
    };
    let mut stmt = conn
        .prepare(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' \
             ORDER BY table_name",
        )
        .map_err(db)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(db)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(db)?;
    Ok(names)
}

/// A source view (its name) and the files it reads that no longer match.
pub type ChangedSource = (String, Vec<(PathBuf, sources::FileState)>);

/// The source views of a session whose files no longer match what the run read (changed,
/// moved or removed), with the files that differ. Empty when all match (or there are none).
pub fn changed_sources(session: &Session) -> Result<Vec<ChangedSource>> {
    if !session.database_path().exists() {
        return Ok(Vec::new());
    }
    let conn = open_read_only(session)?;
    let views = sources::source_views(&conn, None).map_err(|source| Error::Database {
        id: session.id.clone(),
        source,
    })?;
    Ok(views
        .into_iter()
        .filter_map(|v| {
            let differ: Vec<_> = v
                .record
                .check()
                .into_iter()
                .filter(|(_, state)| !state.matches())
                .collect();
            (!differ.is_empty()).then_some((v.name, differ))
        })
        .collect())
}

/// Removes a session directory; refuses a running one.
pub fn remove(session: &Session) -> Result<()> {
    if read(&session.dir).is_some_and(|s| s.state == State::Running) {
        return Err(Error::Running(session.id.clone()));
    }
    std::fs::remove_dir_all(&session.dir).map_err(|source| Error::Io {
        action: "cannot remove",
        path: session.dir.clone(),
        source,
    })
}

/// Which sessions a garbage collection removes: those started before `older_than` (all when
/// `None`), except the `keep_last` newest and any running one.
pub fn gc_candidates(
    sessions: &[Session],
    older_than: Option<jiff::Timestamp>,
    keep_last: usize,
) -> Vec<Session> {
    sessions
        .iter()
        .skip(keep_last)
        .filter(|s| s.state != State::Running)
        .filter(|s| match (older_than, s.started()) {
            (None, _) => true,
            (Some(cutoff), Some(started)) => started < cutoff,
            // Unknown start: fall back to the directory's modification time.
            (Some(cutoff), None) => std::fs::metadata(&s.dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .is_some_and(|t| t < cutoff),
        })
        .cloned()
        .collect()
}

/// Name prefixes of the tables drivers stage rows in before a step's table appears (renamed or
/// copied in one transaction). A run killed in the middle of a step can leave one behind.
pub const STAGING_PREFIXES: &[&str] = &["__osiris_staging", "__supabase_stage_"];

/// Drops the staging tables ([`STAGING_PREFIXES`]) a killed run left in a kept session's
/// database and returns their names. The database is opened for writing only when it holds
/// some; a running session is refused.
pub fn drop_staging_tables(session: &Session) -> Result<Vec<String>> {
    let leftovers: Vec<String> = tables(session)?
        .into_iter()
        .map(|t| t.name)
        .filter(|name| STAGING_PREFIXES.iter().any(|p| name.starts_with(p)))
        .collect();
    if leftovers.is_empty() {
        return Ok(leftovers);
    }
    if read(&session.dir).is_some_and(|s| s.state == State::Running) {
        return Err(Error::Running(session.id.clone()));
    }
    let db = |source| Error::Database {
        id: session.id.clone(),
        source,
    };
    let conn = execution_context::base_config()
        .and_then(|c| c.enable_external_access(false))
        .and_then(|c| duckdb::Connection::open_with_flags(session.database_path(), c))
        .map_err(db)?;
    for name in &leftovers {
        conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS {}",
            execution_context::quote_identifier(name)
        ))
        .map_err(db)?;
    }
    Ok(leftovers)
}

/// Session directories under a worker's sessions root whose worker died: they still hold a
/// `run.lock` whose process is gone (a worker releases its lock when its host ends the session
/// in order; a killed host or worker leaves it). Only those started before `older_than` (all
/// when `None`). Directories a worker kept on purpose (`--no-pull`) hold no lock and are left.
pub fn crashed_worker_dirs(root: &Path, older_than: Option<jiff::Timestamp>) -> Vec<Session> {
    let crashed: Vec<Session> = list(root)
        .into_iter()
        .filter(|s| s.state == State::Abandoned && s.dir.join(LOCK_FILE).exists())
        .collect();
    gc_candidates(&crashed, older_than, 0)
}

/// Removes the temporary files a killed run left next to an output file: writers write
/// `.<file name>.<pid>-<n>.osiris-tmp` beside `target` and rename it over `target` at the end
/// (a file, or a directory for partitioned output). One whose process is gone is junk; one of a
/// live process is a write in progress and stays. Returns the removed paths.
pub fn remove_dead_temp_files(target: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Vec::new();
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(middle) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".osiris-tmp"))
        else {
            continue;
        };
        let Some(pid) = middle
            .split_once('-')
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<u64>().ok()))
        else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        // A partitioned Parquet/JSON write stages a directory; never follow a link.
        let path = entry.path();
        let gone = match entry.file_type() {
            Ok(t) if t.is_file() => std::fs::remove_file(&path).is_ok(),
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path).is_ok(),
            _ => false,
        };
        if gone {
            removed.push(path);
        }
    }
    removed
}

/// At the start of a run: removes the temporary files killed runs left next to the files this
/// run writes (`targets`, see [`remove_dead_temp_files`]), with one `stale_temp_file_removed`
/// event each.
pub fn clean_write_targets(exec: &ExecutionContext, targets: impl IntoIterator<Item = PathBuf>) {
    for target in targets {
        for removed in remove_dead_temp_files(&target) {
            exec.event(
                "stale_temp_file_removed",
                execution_context::object([("path", Value::String(removed.display().to_string()))]),
            );
        }
    }
}

/// Parses `7d`, `24h`, `30m`, `45s` or `2w` into a duration.
pub fn parse_age(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(n.checked_mul(seconds)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(root: &Path, id: &str, status: Option<&str>, lock_pid: Option<u64>) -> PathBuf {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("events.jsonl"), "").unwrap();
        if let Some(status) = status {
            std::fs::write(
                dir.join(STATUS_FILE),
                serde_json::json!({"status": status, "pipeline": "p", "started_at": format!("2026-11-{}T00:00:00+00:00", &id[1..]), "duration_ms": 5, "steps_total": 2, "steps_completed": 1}).to_string(),
            )
            .unwrap();
        }
        if let Some(pid) = lock_pid {
            let lock = serde_json::json!({"pid": pid, "started_at": format!("2026-11-{}T00:00:00+00:00", &id[1..])});
            std::fs::write(dir.join(LOCK_FILE), lock.to_string()).unwrap();
        }
        dir
    }

    #[test]
    fn states_come_from_status_and_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        session(root, "s10", Some("ok"), None);
        session(root, "s11", Some("failed"), None);
        session(root, "s12", None, Some(u64::from(std::process::id()))); // alive: this process
        session(root, "s13", None, Some(999_999_999)); // no such process
        session(root, "s14", Some("ok"), Some(999_999_999)); // finished, stale lock
        std::fs::create_dir_all(root.join("not-a-session")).unwrap();
        let states: Vec<(String, State)> =
            list(root).into_iter().map(|s| (s.id, s.state)).collect();
        assert_eq!(
            states,
            [
                ("s14".into(), State::Ok),
                ("s13".into(), State::Abandoned),
                ("s12".into(), State::Running),
                ("s11".into(), State::Failed),
                ("s10".into(), State::Ok),
            ]
        );
    }

    #[test]
    fn running_sessions_are_never_removed() {
        let tmp = tempfile::tempdir().unwrap();
        session(tmp.path(), "s12", None, Some(u64::from(std::process::id())));
        let running = find(tmp.path(), "s12").unwrap();
        assert!(matches!(remove(&running), Err(Error::Running(_))));
        assert!(running.dir.exists());
        let all = list(tmp.path());
        assert!(gc_candidates(&all, None, 0).is_empty());
    }

    #[test]
    fn gc_keeps_the_newest_and_respects_age() {
        let tmp = tempfile::tempdir().unwrap();
        for day in 10..15 {
            session(tmp.path(), &format!("s{day}"), Some("ok"), None);
        }
        let all = list(tmp.path());
        let ids = |v: Vec<Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(gc_candidates(&all, None, 2)), ["s12", "s11", "s10"]);
        let cutoff: jiff::Timestamp = "2026-11-12T00:00:00Z".parse().unwrap();
        assert_eq!(ids(gc_candidates(&all, Some(cutoff), 0)), ["s11", "s10"]);
    }

    #[test]
    fn find_accepts_a_unique_fragment_and_lists_candidates_otherwise() {
        let tmp = tempfile::tempdir().unwrap();
        session(tmp.path(), "s10", Some("ok"), None);
        session(tmp.path(), "s21", Some("ok"), None);
        assert_eq!(find(tmp.path(), "21").unwrap().id, "s21");
        let err = find(tmp.path(), "s").unwrap_err().to_string();
        assert!(err.contains("`s` matches 2 sessions"), "{err}");
        let err = find(tmp.path(), "zz").unwrap_err().to_string();
        assert!(err.contains("most recent: s21, s10"), "{err}");
    }

    #[test]
    fn ages_parse() {
        assert_eq!(
            parse_age("7d"),
            Some(std::time::Duration::from_secs(7 * 86_400))
        );
        assert_eq!(parse_age("30m"), Some(std::time::Duration::from_secs(1800)));
        assert_eq!(parse_age("7"), None);
        assert_eq!(parse_age("d"), None);
        assert_eq!(parse_age("5y"), None);
    }

    #[test]
    fn tables_lists_columns_and_rows_read_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = session(tmp.path(), "s10", Some("ok"), None);
        {
            let conn =
                duckdb::Connection::open(dir.join(execution_context::DATABASE_FILE)).unwrap();
            conn.execute_batch(
                "CREATE TABLE \"read-x\" AS SELECT range AS id, 'a' AS v FROM range(3)",
            )
            .unwrap();
        }
        let s = find(tmp.path(), "s10").unwrap();
        let t = tables(&s).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name, "read-x");
        assert_eq!(t[0].rows, 3);
        assert_eq!(
            t[0].columns,
            [
                ("id".to_owned(), "BIGINT".to_owned()),
                ("v".to_owned(), "VARCHAR".to_owned())
            ]
        );
    }

    #[test]
    fn an_existing_session_id_is_refused_whatever_its_state() {
        let tmp = tempfile::tempdir().unwrap();
        let running = session(tmp.path(), "s12", None, Some(u64::from(std::process::id())));
        let finished = session(tmp.path(), "s13", Some("ok"), None);
        let manifest_before = std::fs::read(running.join(LOCK_FILE)).unwrap();
        for dir in [&running, &finished] {
            let err = create(dir).unwrap_err();
            assert!(matches!(err, Error::Exists { .. }), "{err}");
            assert!(
                err.to_string().contains("choose another --session-id"),
                "{err}"
            );
        }
        let exec = ExecutionContext::new("s12", &running);
        assert!(matches!(
            begin(&exec, "2026-11-12T00:00:00+00:00", "name: p\n"),
            Err(Error::Exists { .. })
        ));
        assert_eq!(
            std::fs::read(running.join(LOCK_FILE)).unwrap(),
            manifest_before
        );
        assert!(!running.join(MANIFEST_FILE).exists());
        assert_eq!(find(tmp.path(), "s12").unwrap().state, State::Running);
        // A new id under a root that does not exist yet is created with its parents.
        create(&tmp.path().join("deeper/s20")).unwrap();
    }

    #[test]
    fn queries_on_a_kept_session_cannot_reach_files_and_staging_tables_are_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = session(tmp.path(), "s10", Some("failed"), None);
        {
            let conn =
                duckdb::Connection::open(dir.join(execution_context::DATABASE_FILE)).unwrap();
            conn.execute_batch(
                "CREATE TABLE kept AS SELECT 1 AS x; \
                 CREATE TABLE \"__supabase_stage_people\" AS SELECT 1 AS x; \
                 CREATE TABLE \"__osiris_staging_load\" AS SELECT 1 AS x;",
            )
            .unwrap();
        }
        let s = find(tmp.path(), "s10").unwrap();
        let conn = open_read_only(&s).unwrap();
        for sql in [
            "SELECT * FROM read_text('/etc/passwd')",
            "COPY kept TO '/tmp/osiris-should-not-exist.csv'",
        ] {
            assert!(conn.execute_batch(sql).is_err(), "{sql} must fail");
        }
        drop(conn);
        let mut dropped = drop_staging_tables(&s).unwrap();
        dropped.sort();
        assert_eq!(
            dropped,
            ["__osiris_staging_load", "__supabase_stage_people"]
        );
        let names: Vec<String> = tables(&s).unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["kept"]);
        assert!(drop_staging_tables(&s).unwrap().is_empty());
    }

    #[test]
    fn only_worker_dirs_whose_worker_died_are_collected() {
        let tmp = tempfile::tempdir().unwrap();
        session(tmp.path(), "s10", None, Some(999_999_999)); // worker killed
        session(tmp.path(), "s11", None, Some(u64::from(std::process::id()))); // alive
        session(tmp.path(), "s12", None, None); // ended in order, kept (--no-pull)
        let ids: Vec<String> = crashed_worker_dirs(tmp.path(), None)
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["s10"]);
    }

    #[test]
    fn temp_files_of_dead_writers_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out.csv");
        let dead = tmp.path().join(".out.csv.999999999-0.osiris-tmp");
        let live = tmp
            .path()
            .join(format!(".out.csv.{}-3.osiris-tmp", std::process::id()));
        let other = tmp.path().join(".other.csv.999999999-0.osiris-tmp");
        for f in [&dead, &live, &other, &target] {
            std::fs::write(f, "x").unwrap();
        }
        assert_eq!(remove_dead_temp_files(&target), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && other.exists() && target.exists());

        // A partitioned write's staging directory, with its partitions.
        let parts = tmp.path().join("parts");
        let dead_dir = tmp.path().join(".parts.999999999-1.osiris-tmp");
        std::fs::create_dir_all(dead_dir.join("year=2024")).unwrap();
        std::fs::write(dead_dir.join("year=2024/data_0.parquet"), "x").unwrap();
        assert_eq!(remove_dead_temp_files(&parts), vec![dead_dir.clone()]);
        assert!(!dead_dir.exists());
    }
}
