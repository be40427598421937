//! "DuckDB alone": the same CSV -> DuckDB file -> CSV work as the pipeline, done with two plain
//! statements through the same DuckDB library. Runs in its own process (`bench-csv baseline`)
//! so that its wall time and peak memory are measured exactly like osiris's.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Phase times of one baseline run, printed as one JSON line on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineTimes {
    /// Opening (creating) the database file.
    pub open_s: f64,
    /// `CREATE TABLE t AS SELECT * FROM read_csv(...)`.
    pub extract_s: f64,
    /// `COPY t TO ... (FORMAT csv, HEADER)`.
    pub write_s: f64,
    /// Closing the database (final checkpoint).
    pub close_s: f64,
    /// Rows in the table.
    pub rows: u64,
}

/// A string as a SQL literal.
pub fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs the baseline against a database file that must not exist yet.
pub fn baseline_main(csv: &Path, out: &Path, db: &Path) -> Result<()> {
    if db.exists() {
        bail!(
            "{} already exists; the baseline needs a fresh database",
            db.display()
        );
    }
    let csv = csv.to_str().context("the CSV path is not UTF-8")?;
    let out = out.to_str().context("the output path is not UTF-8")?;

    let start = Instant::now();
    let conn = duckdb::Connection::open(db)
        .with_context(|| format!("cannot open DuckDB database {}", db.display()))?;
    let open_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    conn.execute_batch(&format!(
        "CREATE TABLE t AS SELECT * FROM read_csv({})",
        sql_string(csv)
    ))
    .context("CREATE TABLE t AS SELECT * FROM read_csv(...) failed")?;
    let extract_s = start.elapsed().as_secs_f64();

    let rows: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
        .context("cannot count the rows of t")?;

    let start = Instant::now();
    conn.execute_batch(&format!(
        "COPY t TO {} (FORMAT csv, HEADER)",
        sql_string(out)
    ))
    .context("COPY t TO ... failed")?;
    let write_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    conn.close()
        .map_err(|(_, e)| e)
        .context("closing the database failed")?;
    let close_s = start.elapsed().as_secs_f64();

    let times = BaselineTimes {
        open_s,
        extract_s,
        write_s,
        close_s,
        rows: u64::try_from(rows).context("negative row count")?,
    };
    println!("{}", serde_json::to_string(&times)?);
    Ok(())
}
