//! The input CSV (generated once, deterministically) and the comparison of the two outputs.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::baseline::sql_string;

/// Bumped whenever [`GENERATOR_SQL`] changes, so that a cached file is never stale.
const GENERATOR_VERSION: u32 = 1;

/// One row per `i` in `range(rows)`; `r` is a cheap deterministic pseudo-random number.
/// Columns: BIGINT id, an integer with NULLs (empty fields), a 2-place decimal, a double, a short
/// string, a string that needs quoting (commas and double quotes), a date, a timestamp, a boolean.
const GENERATOR_SQL: &str = "
SELECT
    i AS id,
    CASE WHEN i % 10 = 3 THEN NULL ELSE CAST(r % 100000 AS INTEGER) END AS quantity,
    CAST((r % 10000000) / 100.0 AS DECIMAL(12, 2)) AS amount,
    CAST(r AS DOUBLE) / 2147483648 * 2000 - 1000 AS score,
    ['alpha', 'beta', 'gamma', 'delta', 'epsilon'][1 + (r % 5)] AS code,
    CASE i % 4
        WHEN 0 THEN 'plain note ' || (r % 1000)
        WHEN 1 THEN 'comma, note ' || (r % 997)
        WHEN 2 THEN 'say \"hi\" ' || (r % 991)
        ELSE 'both, \"quoted\", ' || (r % 983)
    END AS note,
    DATE '2000-01-01' + CAST(r % 9000 AS INTEGER) AS day,
    TIMESTAMP '2020-01-01 00:00:00' + to_seconds(r % 150000000) AS created_at,
    r % 3 <> 0 AS active
FROM (SELECT i, (i * 1103515245 + 12345) % 2147483648 AS r FROM range(?) t(i))
";

/// Returns the input CSV for `rows` rows, generating it (with DuckDB) when not cached.
pub fn ensure_input(dir: &Path, rows: u64, regenerate: bool) -> Result<PathBuf> {
    ensure_csv(
        dir,
        &format!("mixed_v{GENERATOR_VERSION}_{rows}"),
        GENERATOR_SQL,
        rows,
        regenerate,
    )
}

/// `<dir>/<name>.csv`: the rows of `generator` (its `?` replaced by `rows`) written by DuckDB
/// through a `.partial` file renamed into place, unless already there.
fn ensure_csv(
    dir: &Path,
    name: &str,
    generator: &str,
    rows: u64,
    regenerate: bool,
) -> Result<PathBuf> {
    let path = dir.join(format!("{name}.csv"));
    if path.is_file() && !regenerate {
        println!("input: {} (cached)", path.display());
        return Ok(path);
    }
    let partial = dir.join(format!("{name}.csv.partial"));
    let start = Instant::now();
    let conn = duckdb::Connection::open_in_memory().context("cannot open DuckDB in memory")?;
    let sql = generator.replace('?', &rows.to_string());
    let partial_str = partial
        .to_str()
        .context("the output directory is not UTF-8")?;
    conn.execute_batch(&format!(
        "COPY ({sql}) TO {} (FORMAT csv, HEADER)",
        sql_string(partial_str)
    ))
    .with_context(|| format!("generating the input CSV {name} failed"))?;
    std::fs::rename(&partial, &path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    println!(
        "input: {} (generated in {:.1} s)",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// Bumped whenever [`MIXED14_SQL`] changes.
const MIXED14_VERSION: u32 = 1;

/// The mixed 14-column workload of issue 16 (the same columns as the MariaDB/PostgreSQL
/// benchmarks' `mixed` table): integers with and without NULLs, a DECIMAL, floats, short and
/// long strings, timestamps with and without NULLs, a date, a boolean, a UUID, and a note that
/// needs quoting: commas, doubled quotes and quoted line breaks (one row in five).
const MIXED14_SQL: &str = "
SELECT
    g AS id,
    g % 1000 AS qty,
    CAST(CASE WHEN g % 7 = 0 THEN NULL ELSE g % 30000 END AS SMALLINT) AS small,
    CAST((g % 10000000) / 100.0 AS DECIMAL(12, 2)) AS amount,
    g * 1.000001 AS price,
    CAST((g % 1000) / 7.0 AS REAL) AS ratio,
    'customer-' || (g % 50000) || '-' || left(md5(CAST(g % 997 AS VARCHAR)), 12) AS name,
    ['open', 'paid', 'cancelled'][1 + g % 3] AS status,
    TIMESTAMP '2020-01-01 00:00:00' + to_seconds(g) + to_microseconds(g % 999983) AS created,
    CASE WHEN g % 5 = 0 THEN NULL ELSE TIMESTAMP '2021-01-01' + to_minutes(g) END AS updated,
    DATE '2020-01-01' + CAST(g % 3000 AS INTEGER) AS day,
    g % 2 = 0 AS flag,
    CAST(md5(CAST(g AS VARCHAR)) AS UUID) AS ref,
    CASE g % 5
        WHEN 0 THEN NULL
        WHEN 1 THEN 'note ' || g
        WHEN 2 THEN 'first line' || chr(10) || 'second line ' || g
        WHEN 3 THEN 'say \"hi\", ' || g
        ELSE 'both, \"quoted\"' || chr(10) || 'and broken ' || g
    END AS note
FROM range(1, ? + 1) t(g)
";

/// Returns the CSV of the 14-column workload for `rows` rows (issue 16's movements),
/// generating it when not cached.
pub fn ensure_mixed14(dir: &Path, rows: u64, regenerate: bool) -> Result<PathBuf> {
    ensure_csv(
        dir,
        &format!("mixed14_v{MIXED14_VERSION}_{rows}"),
        MIXED14_SQL,
        rows,
        regenerate,
    )
}

/// Reads a file once so that both sides start from a warm page cache.
pub fn warm_page_cache(path: &Path) -> Result<u64> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// How two CSV outputs compare.
pub struct Comparison {
    /// Lines (including the header) of each file.
    pub lines: (u64, u64),
    /// Same bytes.
    pub identical: bool,
    /// Lines that differ (among the lines both have).
    pub differing_lines: u64,
    /// The first differing line: number (1-based) and both texts.
    pub first_difference: Option<(u64, String, String)>,
    /// Header line of the first file, to name the column that differs.
    pub header: String,
}

/// Compares two files line by line (line endings included).
pub fn compare(a: &Path, b: &Path) -> Result<Comparison> {
    let open = |p: &Path| -> Result<BufReader<File>> {
        let file = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
        Ok(BufReader::with_capacity(1 << 20, file))
    };
    let (mut ra, mut rb) = (open(a)?, open(b)?);
    let (mut la, mut lb) = (Vec::new(), Vec::new());
    let mut result = Comparison {
        lines: (0, 0),
        identical: true,
        differing_lines: 0,
        first_difference: None,
        header: String::new(),
    };
    loop {
        la.clear();
        lb.clear();
        let na = ra
            .read_until(b'\n', &mut la)
            .with_context(|| format!("cannot read {}", a.display()))?;
        let nb = rb
            .read_until(b'\n', &mut lb)
            .with_context(|| format!("cannot read {}", b.display()))?;
        if na == 0 && nb == 0 {
            return Ok(result);
        }
        if na > 0 {
            result.lines.0 += 1;
        }
        if nb > 0 {
            result.lines.1 += 1;
        }
        if result.lines.0 == 1 && na > 0 {
            result.header = String::from_utf8_lossy(&la).trim_end().to_owned();
        }
        if la != lb {
            result.identical = false;
            if na > 0 && nb > 0 {
                result.differing_lines += 1;
            }
            if result.first_difference.is_none() {
                let line = result.lines.0.max(result.lines.1);
                result.first_difference = Some((
                    line,
                    String::from_utf8_lossy(&la).into_owned(),
                    String::from_utf8_lossy(&lb).into_owned(),
                ));
            }
        }
    }
}

/// The fields of one CSV line (RFC 4180 quoting), for naming the column that differs.
pub fn split_csv_line(line: &str) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    reader
        .records()
        .next()
        .and_then(|r| r.ok())
        .map(|r| r.iter().map(str::to_owned).collect())
        .unwrap_or_default()
}
