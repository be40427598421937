//! How names and strings are embedded in DuckDB SQL, and the settings every DuckDB connection of
//! osiris starts from: the one place for both, below every crate that talks to DuckDB.

use std::sync::{Mutex, OnceLock};

/// Quotes an identifier for DuckDB: `"` around it, inner `"` doubled. Any name is then safe,
/// including hyphens, dots, spaces, keywords and unicode.
pub fn quote_identifier(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string literal for DuckDB: `'` around it, inner `'` doubled.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The configuration every DuckDB connection starts from. Extension auto-install is off: without
/// internet a query needing an uninstalled extension must fail at once instead of hanging on a
/// download. The memory limit is this process's ([`set_memory_limit`], ADR 0040); bulk appends
/// write every row group as it fills (ADR 0042); a commit of more than a few thousand rows
/// checkpoints at once (ADR 0043).
pub fn base_config() -> duckdb::Result<duckdb::Config> {
    let config = duckdb::Config::default()
        .with("autoinstall_known_extensions", "false")?
        // Bulk appends (step tables) compress and write each row group as soon as it is full
        // instead of buffering five: faster and smaller for every extract (ADR 0042).
        .with("write_buffer_row_group_count", "1")?
        // A step's commit of more than a few thousand rows writes its table into the file at
        // once instead of logging the rows to the WAL and compressing them at the close
        // (ADR 0043).
        .with("checkpoint_threshold", CHECKPOINT_THRESHOLD)?;
    match MEMORY_LIMIT.get() {
        Some(limit) => config.with("memory_limit", &limit.0),
        None => Ok(config),
    }
}

/// Settings of the run database that DuckDB takes only from `SET`, not from the configuration
/// a database opens with (it ignores `disabled_compression_methods` there): run once on every
/// new run database handle, before anything is written.
///
/// No dictionary compression (ADR 0047): analysing every string column for a dictionary cost
/// 20% of a bulk insert, and FSST compresses the same columns to about the same size (a 1M-row
/// MariaDB extract: 1.09-1.11 s against 1.23-1.24 s, a 29.4 MB file against 27.8 MB).
pub(crate) fn apply_run_settings(conn: &duckdb::Connection) -> duckdb::Result<()> {
    conn.execute_batch("SET disabled_compression_methods = 'dictionary'")
}

/// The memory limit of every DuckDB database this process opens from now on (`--memory-limit`,
/// `OSIRIS_MEMORY_LIMIT`); the first call wins. Without one, DuckDB's own default applies.
pub fn set_memory_limit(limit: MemoryLimit) {
    let _ = MEMORY_LIMIT.set(limit);
}

static MEMORY_LIMIT: OnceLock<MemoryLimit> = OnceLock::new();

/// `checkpoint_threshold` of [`base_config`]: a commit whose WAL would be larger checkpoints
/// instead. Below it (a view, a few hundred rows) a checkpoint's fixed ~1.6 ms costs more than
/// logging the rows and compressing them at the close (ADR 0043).
const CHECKPOINT_THRESHOLD: &str = "256KiB";

/// The lowest limit [`release_table_cache`] sets for its moment.
const TRIM_FLOOR: i64 = 64 << 20;

/// Evicts table blocks that DuckDB's buffer pool keeps cached beyond `keep` bytes, and returns
/// whether it did; called by long bulk appends so that their memory stays flat (ADR 0043).
///
/// A block a bulk append has written is clean (it is in the file) but stays in the pool until
/// the memory limit (80% of RAM by default) forces it out: a 5M-row extract held ~130 MiB of
/// its own blocks that nothing reads during the append. DuckDB evicts only for an allocation
/// or a lower `memory_limit`, so this lowers the limit by the excess (clean blocks go first and
/// cost nothing to drop; an unpinned temporary buffer of a parallel step would be spilled) and
/// at once puts back the process's limit ([`set_memory_limit`], else DuckDB's default). When
/// too little is evictable the lowering fails and DuckDB keeps the limit it had.
pub fn release_table_cache(conn: &duckdb::Connection, keep: u64) -> duckdb::Result<bool> {
    // Two writers trimming at once must not put back each other's lowered limit.
    static TRIMMING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = TRIMMING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (cached, used): (i64, i64) = conn.query_row(
        "SELECT coalesce(sum(memory_usage_bytes) FILTER (WHERE tag = 'BASE_TABLE'), 0)::BIGINT, \
                coalesce(sum(memory_usage_bytes), 0)::BIGINT \
         FROM duckdb_memory()",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let excess = cached.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
    if excess <= 0 {
        return Ok(false);
    }
    // The floor leaves room for the statement that puts the limit back. DuckDB keeps the old
    // limit when it cannot evict down to the new one (it evicts what it can first).
    let lower = format!(
        "SET memory_limit = '{}B'",
        used.saturating_sub(excess).max(TRIM_FLOOR)
    );
    if conn.execute_batch(&lower).is_err() {
        return Ok(false);
    }
    match MEMORY_LIMIT.get() {
        Some(limit) => {
            conn.execute_batch(&format!("SET memory_limit = {}", quote_literal(&limit.0)))?
        }
        None => conn.execute_batch("RESET memory_limit")?,
    }
    Ok(true)
}

/// The error a streaming query of `sql` (with `params`) on `conn` really failed with, when
/// DuckDB reported it as `INTERRUPT Error: Interrupted!` although nobody interrupted it.
///
/// DuckDB 1.5 sometimes reports the error of a streaming query that fails on one of its worker
/// threads (a CSV value that does not convert, `error()`) as an interruption: the failing task
/// interrupts the others, and the fetching thread can report its own interruption instead of
/// the error (about 1 query in 200 from Python, 1 in 15 in one of our tests; DuckDB fixed the
/// same race for materialized results in its PR #10337). For a connection that nobody
/// interrupts, this streams `sql` again, keeping nothing, and returns the error that read fails
/// with (up to three times while it is again an interruption). Anything else, or a read that
/// does not fail, leaves `error` as it was. Only for read-only queries: `sql` runs again
/// (ADR 0045).
pub fn unmask_interrupt(
    conn: &duckdb::Connection,
    sql: &str,
    params: &[duckdb::types::Value],
    error: duckdb::Error,
) -> duckdb::Error {
    let mut error = error;
    for _ in 0..3 {
        if !is_interrupt(&error) {
            return error;
        }
        match drain(conn, sql, params) {
            Err(again) => error = again,
            Ok(()) => return error,
        }
    }
    error
}

fn is_interrupt(error: &duckdb::Error) -> bool {
    error.to_string().starts_with("INTERRUPT Error")
}

/// Streams `sql`'s result to the end without keeping it.
fn drain(
    conn: &duckdb::Connection,
    sql: &str,
    params: &[duckdb::types::Value],
) -> duckdb::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    stmt.stream_arrow(duckdb::params_from_iter(params))
        .map(drop)?;
    while stmt.step()?.is_some() {}
    Ok(())
}

/// A size DuckDB's `memory_limit` accepts: a number and a unit, `512MB`, `2GiB`, `1.5 GB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit(String);

impl MemoryLimit {
    /// The limit as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for MemoryLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const UNITS: [&str; 8] = ["KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"];
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let unit = unit.trim();
        let positive = number.parse::<f64>().is_ok_and(|n| n > 0.0);
        if !positive || !UNITS.iter().any(|u| u.eq_ignore_ascii_case(unit)) {
            return Err(format!(
                "{text:?} is not a memory size: give a number and one of {} (e.g. 512MB, 2GiB)",
                UNITS.join(", ")
            ));
        }
        Ok(Self(format!("{number}{unit}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `INTERRUPT Error`: a streaming query interrupted between two chunks.
    fn interrupted(conn: &duckdb::Connection) -> duckdb::Error {
        let mut stmt = conn.prepare("SELECT * FROM range(100000000)").unwrap();
        stmt.stream_arrow([]).map(drop).unwrap();
        assert!(stmt.step().unwrap().is_some());
        conn.interrupt_handle().interrupt();
        loop {
            match stmt.step() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the interrupted query ran to its end"),
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn an_interruption_nobody_asked_for_gives_way_to_the_querys_own_error() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE VIEW late AS SELECT CASE WHEN range < 150000 THEN range \
             ELSE error('bad row ' || range) END AS id FROM range(200000)",
        )
        .unwrap();
        let error = interrupted(&conn);
        assert!(error.to_string().starts_with("INTERRUPT Error"), "{error}");
        let unmasked = unmask_interrupt(&conn, "SELECT id FROM late", &[], error);
        assert!(
            unmasked.to_string().contains("bad row 150000"),
            "{unmasked}"
        );

        // A query that does not fail again leaves the interruption as it was.
        let error = interrupted(&conn);
        let kept = unmask_interrupt(&conn, "SELECT 1", &[], error);
        assert!(kept.to_string().starts_with("INTERRUPT Error"), "{kept}");

        // Any other error is never read again.
        let other = conn.execute_batch("SELECT error('first')").unwrap_err();
        let same = unmask_interrupt(&conn, "SELECT id FROM late", &[], other);
        assert!(same.to_string().contains("first"), "{same}");
    }

    #[test]
    fn memory_limits_are_a_positive_number_and_a_unit_duckdb_knows() {
        for (text, kept) in [("512MB", "512MB"), ("2 GiB", "2GiB"), ("1.5gb", "1.5gb")] {
            assert_eq!(text.parse::<MemoryLimit>().unwrap().as_str(), kept);
            let config = duckdb::Config::default()
                .with("memory_limit", kept)
                .unwrap();
            let conn = duckdb::Connection::open_in_memory_with_flags(config).unwrap();
            let set: String = conn
                .query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))
                .unwrap();
            assert!(set.ends_with("iB"), "{text}: {set}");
        }
        for bad in ["", "512", "80%", "0MB", "-1GB", "lots", "1 PB"] {
            let err = bad.parse::<MemoryLimit>().unwrap_err();
            assert!(err.contains("is not a memory size"), "{bad}: {err}");
        }
    }

    #[test]
    fn bulk_appends_flush_every_row_group() {
        let conn = duckdb::Connection::open_in_memory_with_flags(base_config().unwrap()).unwrap();
        let (count, autoinstall, threshold): (i64, bool, String) = conn
            .query_row(
                "SELECT current_setting('write_buffer_row_group_count'), \
                        current_setting('autoinstall_known_extensions'), \
                        current_setting('checkpoint_threshold')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((count, autoinstall), (1, false));
        assert_eq!(threshold, "256.0 KiB");
    }

    #[test]
    fn a_commit_of_many_rows_leaves_them_in_the_database_file_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.duckdb");
        let conn = duckdb::Connection::open_with_flags(&path, base_config().unwrap()).unwrap();
        conn.execute_batch(
            "CREATE TABLE step AS SELECT i, 'row ' || i AS label FROM range(100000) t(i)",
        )
        .unwrap();
        // Still open, never closed: the rows are in the file, not only in its WAL.
        let wal = std::fs::metadata(dir.path().join("run.duckdb.wal")).map_or(0, |m| m.len());
        assert_eq!(wal, 0, "nothing is left in the WAL");
        let copy = dir.path().join("copy.duckdb");
        std::fs::copy(&path, &copy).unwrap();
        let copied = duckdb::Connection::open(&copy).unwrap();
        let (rows, last): (i64, String) = copied
            .query_row("SELECT count(*), max_by(label, i) FROM step", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((rows, last.as_str()), (100_000, "row 99999"));
        drop(conn);
    }

    #[test]
    fn identifiers_and_literals_double_their_quotes() {
        assert_eq!(quote_identifier("read-orders"), "\"read-orders\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
