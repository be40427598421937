//! Kept run sessions: every run leaves `<sessions root>/<session id>/` with its
//! `pipeline_data.duckdb` (one table per step), `status.json`, events and metrics. This crate
//! finds them, tells their state (including runs still in progress and runs that crashed),
//! opens their databases read-only, and removes them.
//!
//! A run holds `run.lock` (its process id) from start to end. A session with a lock whose process
//! is alive is running and is never removed; a lock whose process is gone marks a crashed run,
//! shown as abandoned.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use execution_context::ExecutionContext;
use serde::Serialize;
use serde_json::Value;

/// File a run holds while it is in progress.
pub const LOCK_FILE: &str = "run.lock";
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
pub fn begin(exec: &ExecutionContext, started_at: &str, manifest: &str) -> Result<()> {
    let session_dir = exec.session_dir();
    let manifest = exec.redactor().redact(manifest);
    std::fs::create_dir_all(session_dir).map_err(|source| Error::Io {
        action: "cannot create",
        path: session_dir.to_owned(),
        source,
    })?;
    acquire(session_dir, started_at)?;
    let path = session_dir.join(MANIFEST_FILE);
    std::fs::write(&path, manifest.as_bytes()).map_err(|source| Error::Io {
        action: "cannot write",
        path,
        source,
    })
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

/// Opens a session's database read-only (a running session's file is locked by its process).
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
    duckdb::Connection::open_with_flags(session.database_path(), config).map_err(fail)
}

/// A table in a session's database.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Table name (= step id).
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// `(column name, DuckDB type)`, in order.
    pub columns: Vec<(String, String)>,
}

/// The tables of a session's database, sorted by name. A session without a database (every
/// step failed before writing) has none.
pub fn tables(session: &Session) -> Result<Vec<Table>> {
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
                name: table,
                rows: 0,
                columns: vec![(column, ty)],
            }),
        }
    }
    for table in &mut tables {
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
}
