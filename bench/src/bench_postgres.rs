//! `bench-postgres`: `osiris run` against `psql`'s `\copy` doing the same work, in the same
//! run on the same machine (see `bench/run.sh postgres`).
//!
//! - extract: a 14-column table of mixed types (1M rows by default) into the step table with
//!   `postgres.extractor`, against `psql -c "\copy (SELECT * FROM mixed) TO '/dev/null'"`.
//!   Goal: within 1.3x.
//! - write: the same rows from the run database into PostgreSQL with `postgres.writer`
//!   (append), against `\copy ... FROM` the same rows as a CSV file. Goal: within 1.3x.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust; `testing_env/setup.sh`). The
//! source table is created once in database `osiris_bench` and kept.

mod incremental;
mod measure;
mod osiris_run;
mod stats;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};

use crate::measure::Measurement;
use crate::stats::median;

#[derive(Debug, Parser)]
#[command(
    name = "bench-postgres",
    about = "Benchmark postgres.extractor / postgres.writer against psql's \\copy.",
    after_help = "Usually run through `bash bench/run.sh postgres`, which builds the release binaries first."
)]
struct Cli {
    /// The `osiris` binary to benchmark [default: `osiris` next to this executable].
    #[arg(long, env = "OSIRIS_BIN")]
    osiris: Option<PathBuf>,
    /// Rows of the table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Runs of each side; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Database holding the benchmark tables (created when missing, kept).
    #[arg(long, default_value = "osiris_bench")]
    database: String,
    /// Directory for pipelines, the CSV/Parquet files and scratch sessions.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/out/postgres"))]
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
    /// Only the extract side (psql `\copy ... TO` against `postgres.extractor`); no write runs.
    #[arg(long, conflicts_with = "incremental")]
    extract_only: bool,

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
        eprintln!("bench-postgres: error: {error:#}");
        ExitCode::from(2)
    })
}

const PSQL: &str = "psql -X -q -h 127.0.0.1 -p 5432 -U postgres";

/// Runs SQL with psql; returns its unaligned output.
fn sql(database: &str, statement: &str) -> Result<String> {
    let output = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-d", database, "-c", statement])
        .output()
        .context("cannot run psql")?;
    if !output.status.success() {
        bail!("{statement}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The mixed workload: 14 columns of the common types, some NULLs.
const COLUMNS: &str = "id bigint PRIMARY KEY, qty integer NOT NULL, small smallint, \
    amount numeric(12,2) NOT NULL, price double precision NOT NULL, ratio real, \
    name text NOT NULL, status text NOT NULL, created timestamptz NOT NULL, \
    updated timestamp, day date NOT NULL, flag boolean NOT NULL, ref uuid NOT NULL, \
    note varchar(100)";

fn ensure_source(db: &str, rows: u64) -> Result<()> {
    if sql(
        "postgres",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"),
    )?
    .is_empty()
    {
        sql("postgres", &format!("CREATE DATABASE \"{db}\""))?;
    }
    let have = sql(db, "SELECT coalesce((SELECT count(*) FROM mixed), -1)").unwrap_or_default();
    if have == rows.to_string() {
        return Ok(());
    }
    println!("creating {db}.mixed with {rows} rows (once; kept for later runs)");
    sql(
        db,
        &format!(
            "DROP TABLE IF EXISTS mixed; CREATE TABLE mixed ({COLUMNS});
             INSERT INTO mixed SELECT g, g % 1000, CASE WHEN g % 7 = 0 THEN NULL ELSE g % 30000 END,
               (g % 10000000) / 100.0, g * 1.000001, (g % 1000) / 7.0,
               'customer-' || (g % 50000) || '-' || left(md5((g % 997)::text), 12),
               (ARRAY['open', 'paid', 'cancelled'])[1 + g % 3],
               timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second' + (g % 999983) * interval '1 microsecond',
               CASE WHEN g % 5 = 0 THEN NULL ELSE timestamp '2021-01-01' + g * interval '1 minute' END,
               date '2020-01-01' + (g % 3000), g % 2 = 0, md5(g::text)::uuid,
               CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END
             FROM generate_series(1, {rows}) g; ANALYZE mixed"
        ),
    )?;
    Ok(())
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
            "host: 127.0.0.1, port: 5432, user: postgres, database: {}, sslmode: disable",
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
        &format!("  - id: extract\n    component: postgres.extractor\n    mode: read\n    config: {{{conn}, table: mixed}}\n"),
    )?;
    let dump = format!(
        "{PSQL} -d {} -c \"\\copy (SELECT * FROM mixed) TO '/dev/null'\"",
        setup.db
    );

    let write = if cli.extract_only {
        None
    } else {
        Some(write_side(&setup, &extract, &conn)?)
    };

    println!(
        "{:<4} {:<34} {:>8} {:>8} {:>10} {:>8} {:>8}",
        "run", "side", "wall s", "step s", "peak MiB", "cpu s", "noise s"
    );
    let show = |run: u32, side: &str, m: &Measurement, step: Option<f64>| {
        println!(
            "{:<4} {:<34} {:>8.2} {:>8} {:>10.0} {:>8.2} {:>8}",
            run + 1,
            side,
            m.wall_s,
            step.map(|s| format!("{s:.2}")).unwrap_or_default(),
            m.max_rss_kib as f64 / 1024.0,
            m.cpu_s,
            m.noise_s().map(|n| format!("{n:.2}")).unwrap_or_default()
        );
    };
    let (mut dump_s, mut ext_wall, mut ext_step) = (vec![], vec![], vec![]);
    let (mut load_s, mut write_wall, mut write_step) = (vec![], vec![], vec![]);
    for run in 0..cli.runs {
        let quiet = || {
            measure::settle(cli.quiet_threshold, cli.max_wait);
        };
        quiet();
        let m = setup.shell(&dump)?;
        show(run, "psql \\copy (SELECT ...) TO /dev/null", &m, None);
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

        let Some(Write { load, write }) = &write else {
            continue;
        };
        sql(&setup.db, "TRUNCATE dst_copy; TRUNCATE dst_osiris")?;
        quiet();
        let m = setup.shell(load)?;
        show(run, "psql \\copy FROM (CSV)", &m, None);
        load_s.push(m.wall_s);
        quiet();
        let (m, step, _) = setup.osiris(write, "write", false)?;
        show(run, "osiris write (postgres.writer)", &m, Some(step));
        write_wall.push(m.wall_s);
        write_step.push(step);
        let counts = sql(
            &setup.db,
            "SELECT (SELECT count(*) FROM dst_copy) || ' ' || (SELECT count(*) FROM dst_osiris)",
        )?;
        ensure!(
            counts == format!("{0} {0}", cli.rows),
            "row counts after the write runs: {counts}"
        );
    }
    let (dump, wall, step) = (median(dump_s), median(ext_wall), median(ext_step));
    println!();
    println!(
        "extract {} rows: psql \\copy {dump:.2} s; osiris run {wall:.2} s (step {step:.2} s): ratio {:.2}x (step {:.2}x), goal 1.3x",
        cli.rows,
        wall / dump,
        step / dump
    );
    if write.is_some() {
        let (load, wwall, wstep) = (median(load_s), median(write_wall), median(write_step));
        println!(
            "write {} rows: psql \\copy FROM {load:.2} s; osiris run {wwall:.2} s (writer step {wstep:.2} s): ratio {:.2}x (step {:.2}x), goal 1.3x",
            cli.rows,
            wwall / load,
            wstep / load
        );
    }
    Ok(())
}

/// The write side's commands: `\copy dst_copy FROM` the CSV, and the `postgres.writer` pipeline.
struct Write {
    load: String,
    write: PathBuf,
}

/// Prepares the write side: the rows of one extract run as Parquet (osiris side) and CSV
/// (`\copy FROM`), the pipeline and the two empty target tables.
fn write_side(setup: &Setup, extract: &Path, conn: &str) -> Result<Write> {
    let (_, _, run_db) = setup.osiris(extract, "extract", true)?;
    let parquet = setup.out.join("rows.parquet");
    let csv = setup.out.join("rows.csv");
    {
        let duck = duckdb::Connection::open(&run_db)?;
        duck.execute_batch(&format!(
            "COPY \"extract\" TO '{}' (FORMAT parquet); COPY \"extract\" TO '{}' (FORMAT csv, HEADER false)",
            parquet.display(),
            csv.display()
        ))?;
    }
    let _ = std::fs::remove_dir_all(setup.out.join("sessions"));
    let write = setup.pipeline(
        "write",
        &format!(
            "  - id: load\n    component: duckdb.processor\n    mode: transform\n    config: {{query: \"SELECT * FROM read_parquet('{}')\"}}\n  - id: write\n    component: postgres.writer\n    mode: write\n    needs: [load]\n    config: {{{conn}, table: dst_osiris}}\n",
            parquet.display()
        ),
    )?;
    sql(
        &setup.db,
        "DROP TABLE IF EXISTS dst_osiris, dst_copy; CREATE TABLE dst_osiris (LIKE mixed INCLUDING ALL); CREATE TABLE dst_copy (LIKE mixed INCLUDING ALL)",
    )?;
    let load = format!(
        "{PSQL} -d {} -c \"\\copy dst_copy FROM '{}' (FORMAT csv)\"",
        setup.db,
        csv.display()
    );
    Ok(Write { load, write })
}

/// `--incremental`: `incr` is a copy of `mixed` with an index on the cursor `created`; the new
/// rows are copies of the first 1% with new ids and `created` 100 years later.
fn bench_incremental(cli: &Cli, setup: &Setup, conn: &str) -> Result<()> {
    let db = setup.db.as_str();
    let rows = cli.rows;
    let new = (rows / 100).max(1);
    if sql(db, "SELECT count(*) FROM pg_class WHERE relname = 'incr'")? == "0" {
        sql(
            db,
            "CREATE TABLE incr (LIKE mixed INCLUDING ALL); INSERT INTO incr SELECT * FROM mixed;
             CREATE INDEX incr_created ON incr (created); ANALYZE incr",
        )?;
    }
    let pipeline = setup.pipeline(
        "incremental",
        &format!("  - id: extract\n    component: postgres.extractor\n    mode: read\n    config: {{{conn}, table: incr, incremental: {{cursor: created, primary_key: [id]}}}}\n"),
    )?;
    let quiet = || {
        measure::settle(cli.quiet_threshold, cli.max_wait);
    };
    let source = incremental::Source {
        osiris: &|p| setup.osiris(p, "extract", true),
        // VACUUM, so that every run finds the same table: dead index entries of the deleted
        // rows would sit exactly where the incremental read starts.
        reset: &|| {
            sql(db, &format!("DELETE FROM incr WHERE id > {rows}"))?;
            sql(db, "VACUUM incr").map(drop)
        },
        add: &|| {
            sql(
                db,
                &format!(
                    "INSERT INTO incr SELECT id + {rows}, qty, small, amount, price, ratio, name, status,
                       created + interval '100 years', updated, day, flag, ref, note
                     FROM mixed WHERE id <= {new}"
                ),
            )
            .map(drop)
        },
        quiet: &quiet,
    };
    incremental::compare(&setup.out, &pipeline, cli.runs, rows, new, &source)
}
