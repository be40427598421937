//! `--incremental` of the database benchmarks (bench-mysql, bench-postgres): a full read of
//! table `incr` by an incremental extractor (no saved cursor), then 1% new rows, then the
//! second, incremental run. Goal: the second run under 5% of the first (issue 17).

use std::path::Path;

use anyhow::{Result, ensure};

use crate::measure::Measurement;
use crate::stats::median;

/// `osiris run --json` of a pipeline: the measurement, the step's seconds and the run database.
pub type RunOsiris<'a> = &'a dyn Fn(&Path) -> Result<(Measurement, f64, std::path::PathBuf)>;

/// What differs between the databases.
pub struct Source<'a> {
    /// `osiris run --json` of the pipeline, returning the measurement, the step's seconds and
    /// the run database (kept).
    pub osiris: RunOsiris<'a>,
    /// Brings `incr` back to its original rows.
    pub reset: &'a dyn Fn() -> Result<()>,
    /// Adds the new rows (cursor past every existing one).
    pub add: &'a dyn Fn() -> Result<()>,
    /// Waits for a quiet machine.
    pub quiet: &'a dyn Fn(),
}

/// Runs the comparison `runs` times and prints the medians. `pipeline` reads `incr` with
/// `incremental` into step `extract`; its state lives under `out/.osiris`.
pub fn compare(
    out: &Path,
    pipeline: &Path,
    runs: u32,
    rows: u64,
    new: u64,
    source: &Source<'_>,
) -> Result<()> {
    let count = |db: &Path| -> Result<u64> {
        let duck = duckdb::Connection::open(db)?;
        Ok(duck.query_row("SELECT count(*) FROM \"extract\"", [], |r| {
            r.get::<_, i64>(0)
        })? as u64)
    };
    println!(
        "{:<4} {:<34} {:>8} {:>8} {:>10}",
        "run", "side", "wall s", "step s", "peak MiB"
    );
    let (mut full_s, mut full_step, mut next_s, mut next_step) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        (source.reset)()?;
        let _ = std::fs::remove_dir_all(out.join(".osiris"));
        (source.quiet)();
        let (m, step, db) = (source.osiris)(pipeline)?;
        ensure!(
            count(&db)? == rows,
            "the full run read {} rows, expected {rows}",
            count(&db)?
        );
        println!(
            "{:<4} {:<34} {:>8.2} {:>8.2} {:>10.0}",
            run + 1,
            format!("full run, {rows} rows"),
            m.wall_s,
            step,
            m.max_rss_kib as f64 / 1024.0
        );
        full_s.push(m.wall_s);
        full_step.push(step);
        (source.add)()?;
        (source.quiet)();
        let (m, step, db) = (source.osiris)(pipeline)?;
        ensure!(
            count(&db)? == new,
            "the incremental run read {} rows, expected {new}",
            count(&db)?
        );
        println!(
            "{:<4} {:<34} {:>8.2} {:>8.2} {:>10.0}",
            run + 1,
            format!("incremental run, {new} new rows"),
            m.wall_s,
            step,
            m.max_rss_kib as f64 / 1024.0
        );
        next_s.push(m.wall_s);
        next_step.push(step);
    }
    let (full, full_step) = (median(full_s), median(full_step));
    let (next, next_step) = (median(next_s), median(next_step));
    println!();
    println!(
        "incremental: full run {full:.2} s (step {full_step:.2} s); second run with {new} new rows {next:.2} s (step {next_step:.2} s): {:.1}% of the full run (step {:.1}%), goal under 5%",
        100.0 * next / full,
        100.0 * next_step / full_step
    );
    Ok(())
}
