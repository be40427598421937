//! `bench-mysql`: `osiris run` against the MariaDB command-line client doing the same work, in
//! the same run on the same machine (see `bench/run.sh mysql`).
//!
//! - extract: a table of mixed types (5M rows by default) into the step table with
//!   `mysql.extractor`, against `mariadb --quick --batch -e 'SELECT * FROM t' > /dev/null`.
//!   Goal (issue 16): within 1.3x, peak memory under 300 MB, no growth from 1M to 5M rows (the
//!   1M-row extract runs too, to compare peaks).
//! - the write (a CSV file into MySQL with `mysql.writer`, against `LOAD DATA LOCAL INFILE` of
//!   the same file; goal within 1.3x) is the movement `bash bench/run.sh csv-mariadb`
//!   (bench/src/movement.rs), with its peers.
//!
//! Needs MariaDB on 127.0.0.1:3306 (root, no password; `testing_env/setup.sh` starts it). The
//! source table is created once in database `osiris_bench` and kept.

mod incremental;
mod measure;
mod mysql_mixed;
mod osiris_run;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, ensure};
use clap::{Parser, Subcommand};

use crate::measure::Measurement;
use crate::mysql_mixed::{CLIENT, sql};
use crate::stats::median;

#[derive(Debug, Parser)]
#[command(
    name = "bench-mysql",
    about = "Benchmark mysql.extractor against the mariadb client (the write: bench/run.sh csv-mariadb).",
    after_help = "Usually run through `bash bench/run.sh mysql`, which builds the release binaries first."
)]
struct Cli {
    /// The `osiris` binary to benchmark [default: `osiris` next to this executable].
    #[arg(long, env = "OSIRIS_BIN")]
    osiris: Option<PathBuf>,
    /// Rows of the extract table.
    #[arg(long, default_value_t = 5_000_000)]
    rows: u64,
    /// Rows of the smaller extract (peak memory comparison).
    #[arg(long, alias = "write-rows", default_value_t = 1_000_000)]
    small_rows: u64,
    /// Runs of each side; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Database holding the benchmark tables (created when missing, kept).
    #[arg(long, default_value = "osiris_bench")]
    database: String,
    /// Directory for pipelines, the CSV/Parquet files and scratch sessions.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/out/mysql"))]
    out_dir: PathBuf,
    /// Before each run, wait until other processes use less than this fraction of all CPUs.
    #[arg(long, default_value_t = 0.5)]
    quiet_threshold: f64,
    /// The longest wait for a quiet machine before each run, in seconds.
    #[arg(long, default_value_t = 120)]
    max_wait: u64,
    /// Instead: a full incremental read of a copy of the table (`incr`, indexed on `created`),
    /// then one that finds 1% new rows; goal under 5% of the full run.
    #[arg(long)]
    incremental: bool,

    #[command(subcommand)]
    internal: Option<Internal>,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// Run a command and write its wall time and peak RSS to a JSON file.
    #[command(hide = true)]
    Measure {
        #[arg(long)]
        report: PathBuf,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.internal {
        Some(Internal::Measure { report, command }) => {
            measure::wrapper_main(report, command).map(|()| ExitCode::SUCCESS)
        }
        None => bench(&cli).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|error| {
        eprintln!("bench-mysql: error: {error:#}");
        ExitCode::from(2)
    })
}

fn ensure_source(db: &str, rows: u64) -> Result<()> {
    mysql_mixed::ensure_mixed(db, "mixed", rows)
}

struct Setup {
    osiris: PathBuf,
    out: PathBuf,
    db: String,
}

impl Setup {
    fn pipeline(&self, name: &str, steps: &str) -> Result<PathBuf> {
        let path = self.out.join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!("oml_version: \"0.1.0\"\nname: {name}\nsteps:\n{steps}"),
        )?;
        Ok(path)
    }

    fn connection(&self) -> String {
        format!(
            "host: 127.0.0.1, port: 3306, user: root, database: {}",
            self.db
        )
    }

    /// `osiris run <pipeline> --json`; see [`osiris_run::osiris`].
    fn osiris(
        &self,
        pipeline: &Path,
        step: &str,
        keep: bool,
    ) -> Result<(Measurement, f64, PathBuf)> {
        osiris_run::osiris(&self.out, &self.osiris, pipeline, step, keep)
    }

    /// A shell command under the measuring wrapper.
    fn shell(&self, command: &str) -> Result<Measurement> {
        osiris_run::shell(&self.out, command)
    }
}

fn mib(m: &Measurement) -> f64 {
    m.max_rss_kib as f64 / 1024.0
}

fn bench(cli: &Cli) -> Result<()> {
    let osiris = match &cli.osiris {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("osiris"),
    };
    ensure!(
        osiris.is_file(),
        "osiris binary not found at {}",
        osiris.display()
    );
    std::fs::create_dir_all(&cli.out_dir)?;
    let setup = Setup {
        osiris: std::path::absolute(osiris)?,
        out: std::path::absolute(&cli.out_dir)?,
        db: cli.database.clone(),
    };
    ensure_source(&setup.db, cli.rows)?;
    let conn = setup.connection();
    if cli.incremental {
        return bench_incremental(cli, &setup, &conn);
    }
    let extract = setup.pipeline(
        "extract",
        &format!("  - id: extract\n    component: mysql.extractor\n    mode: read\n    config: {{{conn}, table: mixed}}\n"),
    )?;
    let extract_small = setup.pipeline(
        "extract_small",
        &format!(
            "  - id: extract\n    component: mysql.extractor\n    mode: read\n    config: {{{conn}, table: mixed, where: \"id <= {}\"}}\n",
            cli.small_rows
        ),
    )?;
    let dump = format!(
        "mariadb {} --quick --batch {} -e 'SELECT * FROM mixed' > /dev/null",
        CLIENT.join(" "),
        setup.db
    );

    println!(
        "{:<4} {:<34} {:>8} {:>8} {:>10} {:>8}",
        "run", "side", "wall s", "step s", "peak MiB", "noise s"
    );
    let mut dump_s = Vec::new();
    let (mut ext_wall, mut ext_step, mut ext_rss, mut small_rss) = (vec![], vec![], vec![], vec![]);
    let show = |run: u32, side: &str, m: &Measurement, step: Option<f64>| {
        println!(
            "{:<4} {:<34} {:>8.2} {:>8} {:>10.0} {:>8}",
            run + 1,
            side,
            m.wall_s,
            step.map(|s| format!("{s:.2}")).unwrap_or_default(),
            mib(m),
            m.noise_s().map(|n| format!("{n:.2}")).unwrap_or_default()
        );
    };
    for run in 0..cli.runs {
        let quiet = || {
            measure::settle(cli.quiet_threshold, cli.max_wait);
        };
        quiet();
        let m = setup.shell(&dump)?;
        show(run, "mariadb --quick --batch > /dev/null", &m, None);
        dump_s.push(m.wall_s);
        quiet();
        let (m, step, _) = setup.osiris(&extract, "extract", false)?;
        show(
            run,
            &format!("osiris extract {} rows", cli.rows),
            &m,
            Some(step),
        );
        ext_wall.push(m.wall_s);
        ext_step.push(step);
        ext_rss.push(mib(&m));
        quiet();
        let (m, step, _) = setup.osiris(&extract_small, "extract", false)?;
        show(
            run,
            &format!("osiris extract {} rows", cli.small_rows),
            &m,
            Some(step),
        );
        small_rss.push(mib(&m));
    }
    let (dump, wall, step) = (median(dump_s), median(ext_wall), median(ext_step));
    println!();
    println!(
        "extract {} rows: mariadb client {dump:.2} s; osiris run {wall:.2} s (step {step:.2} s): ratio {:.2}x (step {:.2}x), goal 1.3x",
        cli.rows,
        wall / dump,
        step / dump
    );
    println!(
        "peak RSS of osiris run: {:.0} MiB at {} rows, {:.0} MiB at {} rows (goal < 300 MB, no growth)",
        median(small_rss),
        cli.small_rows,
        median(ext_rss),
        cli.rows
    );
    Ok(())
}

/// `--incremental`: `incr` is a copy of `mixed` with an index on the cursor `created`; the new
/// rows are copies of the first 1% with new ids and `created` 100 years later.
fn bench_incremental(cli: &Cli, setup: &Setup, conn: &str) -> Result<()> {
    let db = Some(setup.db.as_str());
    let rows = cli.rows;
    let new = (rows / 100).max(1);
    if sql(
        db,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'incr'",
    )? == "0"
    {
        sql(
            db,
            "CREATE TABLE incr LIKE mixed; INSERT INTO incr SELECT * FROM mixed;
             CREATE INDEX incr_created ON incr (created); ANALYZE TABLE incr",
        )?;
    }
    let pipeline = setup.pipeline(
        "incremental",
        &format!("  - id: extract\n    component: mysql.extractor\n    mode: read\n    config: {{{conn}, table: incr, incremental: {{cursor: created, primary_key: [id]}}}}\n"),
    )?;
    let quiet = || {
        measure::settle(cli.quiet_threshold, cli.max_wait);
    };
    let source = incremental::Source {
        osiris: &|p| setup.osiris(p, "extract", true),
        reset: &|| sql(db, &format!("DELETE FROM incr WHERE id > {rows}")).map(drop),
        add: &|| {
            sql(
                db,
                &format!(
                    "INSERT INTO incr SELECT id + {rows}, qty, amount, price, name, status,
                       created + INTERVAL 100 YEAR, day, flag, note
                     FROM mixed WHERE id <= {new}"
                ),
            )
            .map(drop)
        },
        quiet: &quiet,
    };
    incremental::compare(&setup.out, &pipeline, cli.runs, rows, new, &source)
}
