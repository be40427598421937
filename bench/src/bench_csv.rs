//! `bench-csv`: `osiris run` CSV -> DuckDB -> CSV against DuckDB alone doing the same work,
//! measured in the same run on the same machine with the same DuckDB library.
//!
//! Hand-run (see `bench/run.sh`); prints phase times, peak memory and the osiris/DuckDB ratio,
//! and checks that both sides wrote the same rows. Goal (issue): within 1.15x of DuckDB alone.
//! With `--movement`, one of issue 16's movements instead, with its peers (`movement.rs`; the
//! MariaDB movements need MariaDB on 127.0.0.1:3306).

mod baseline;
mod data;
mod measure;
mod movement;
mod mysql_mixed;
mod stats;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::baseline::BaselineTimes;
use crate::measure::run_measured;
use crate::stats::median;

#[derive(Debug, Parser)]
#[command(
    name = "bench-csv",
    about = "Benchmark `osiris run` CSV -> DuckDB -> CSV against DuckDB alone doing the same work.",
    long_about = "Benchmark `osiris run` CSV -> DuckDB -> CSV against DuckDB alone doing the same \
        work (CREATE TABLE t AS SELECT * FROM read_csv(...); COPY t TO ... (FORMAT csv, HEADER)) \
        in a fresh DuckDB file, through the same DuckDB library. Each side runs as its own \
        process, --runs times, in alternating order; the medians of wall time per phase and of \
        peak RSS are printed with the osiris/DuckDB ratio. Both output files are compared.",
    after_help = "Usually run through bench/run.sh, which builds the release binaries first."
)]
struct Cli {
    /// The `osiris` binary to benchmark [default: `osiris` next to this executable].
    #[arg(long, env = "OSIRIS_BIN")]
    osiris: Option<PathBuf>,

    /// Rows in the generated input CSV.
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    rows: u64,

    /// Runs of each side; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// Directory for the cached input, the pipeline file, the outputs and scratch databases.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/out"))]
    out_dir: PathBuf,

    /// Generate the input CSV again even when a cached one exists.
    #[arg(long)]
    regenerate: bool,

    /// The goal for osiris total time / the limit's [default: 1.15; mariadb-duckdb 1.5,
    /// csv-mariadb 1.3].
    #[arg(long)]
    goal: Option<f64>,

    /// Exit with status 1 when the goal is missed.
    #[arg(long)]
    require_goal: bool,

    /// Before each run, wait until other processes use less than this fraction of all CPUs
    /// (sampled over 2 s). 1 disables waiting.
    #[arg(long, default_value_t = 0.10)]
    quiet_threshold: f64,

    /// The longest wait for a quiet machine before each run, in seconds; then it measures
    /// anyway and marks the run as noisy.
    #[arg(long, default_value_t = 600)]
    max_wait: u64,

    /// How often a noisy run (other processes took more than 10% of its own CPU time) is
    /// discarded and repeated before it is kept anyway, marked noisy.
    #[arg(long, default_value_t = 3)]
    retries: u32,

    /// What to move (issue 16's table): `csv-csv` (the default: CSV -> DuckDB -> CSV, no
    /// transformation), `csv-table` (CSV -> DuckDB table), `csv-groupby-csv` (CSV -> GROUP BY
    /// -> CSV), `mariadb-duckdb` (MariaDB table -> DuckDB table) or `csv-mariadb` (CSV ->
    /// MariaDB table). `csv-table` and `csv-groupby-csv` read the 14-column workload with quoted
    /// line breaks; the MariaDB movements a MariaDB table of the `mixed` shape (and its rows as
    /// CSV). All but `csv-csv` add the peers named by --peers.
    #[arg(long, value_enum, default_value_t = movement::Movement::Copy)]
    movement: movement::Movement,

    /// MariaDB database of the MariaDB movements (127.0.0.1:3306, root, no password; created
    /// when missing, its source table kept).
    #[arg(long, default_value = "osiris_bench")]
    database: String,

    /// Peers to run beside osiris and the limit (from bench/peers/setup.sh's venv): `sling`,
    /// `pandas` (csv-groupby-csv), `dlt` (csv-table), `dlt`, `sling` (mariadb-duckdb,
    /// csv-mariadb). Comma-separated.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,

    /// Runs of each peer (slow peers: fewer runs than --runs).
    #[arg(long, default_value_t = 1)]
    peer_runs: u32,

    /// The venv bench/peers/setup.sh made.
    #[arg(long, env = "OSIRIS_PEERS_VENV")]
    peers_venv: Option<PathBuf>,

    #[command(subcommand)]
    internal: Option<Internal>,
}

/// Subcommands bench-csv runs itself in child processes.
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
    /// DuckDB alone: CREATE TABLE AS read_csv, then COPY TO; prints phase times as JSON.
    #[command(hide = true)]
    Baseline {
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        db: PathBuf,
    },
    /// DuckDB alone: runs one SQL text on a database file (the limit of a movement).
    #[command(hide = true)]
    Sql {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        sql: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.internal {
        Some(Internal::Measure { report, command }) => {
            measure::wrapper_main(report, command).map(|()| ExitCode::SUCCESS)
        }
        Some(Internal::Baseline { csv, out, db }) => {
            baseline::baseline_main(csv, out, db).map(|()| ExitCode::SUCCESS)
        }
        Some(Internal::Sql { db, sql }) => duckdb::Connection::open(db)
            .and_then(|conn| conn.execute_batch(sql))
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        None => bench(&cli),
    };
    result.unwrap_or_else(|error| {
        eprintln!("bench-csv: error: {error:#}");
        ExitCode::from(2)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Duckdb,
    Osiris,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Self::Duckdb => "duckdb alone",
            Self::Osiris => "osiris run",
        }
    }
}

/// One run of one side. Times in seconds.
#[derive(Debug, Clone)]
struct RunResult {
    extract_s: f64,
    write_s: f64,
    /// `total_s - extract_s - write_s`: process start, opening and closing the database, ...
    other_s: f64,
    /// Wall time of the whole process.
    total_s: f64,
    /// User + system CPU time of the process.
    cpu_s: f64,
    /// CPU seconds other processes took during the run.
    noise_s: f64,
    rss_mib: f64,
    db_mib: f64,
}

impl RunResult {
    fn new(extract_s: f64, write_s: f64, measurement: &measure::Measurement, db_mib: f64) -> Self {
        Self {
            extract_s,
            write_s,
            other_s: measurement.wall_s - extract_s - write_s,
            total_s: measurement.wall_s,
            cpu_s: measurement.cpu_s,
            noise_s: measurement.noise_s().unwrap_or(0.0),
            rss_mib: measurement.max_rss_kib as f64 / 1024.0,
            db_mib,
        }
    }

    /// Other processes took more than 10% of this run's own CPU time.
    fn noisy(&self) -> bool {
        self.noise_s > 0.1 * self.cpu_s
    }
}

struct Setup {
    osiris: PathBuf,
    input: PathBuf,
    pipeline: PathBuf,
    osiris_out: PathBuf,
    duckdb_out: PathBuf,
    scratch: tempfile::TempDir,
    rows: u64,
}

fn bench(cli: &Cli) -> Result<ExitCode> {
    let osiris = match &cli.osiris {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("cannot locate the bench-csv executable")?
            .with_file_name("osiris"),
    };
    ensure!(
        osiris.is_file(),
        "osiris binary not found at {} (build it with bench/run.sh, or pass --osiris)",
        osiris.display()
    );
    let osiris = std::path::absolute(&osiris)?;
    std::fs::create_dir_all(&cli.out_dir)
        .with_context(|| format!("cannot create {}", cli.out_dir.display()))?;
    let out_dir = std::path::absolute(&cli.out_dir)?;

    print_machine(&osiris)?;
    if cli.movement != movement::Movement::Copy {
        let input = movement::prepare_input(
            cli.movement,
            &out_dir,
            cli.rows,
            cli.regenerate,
            &osiris,
            &cli.database,
        )?;
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let venv = cli
            .peers_venv
            .clone()
            .unwrap_or_else(|| home.join(".cache/osiris-rs/venv-peers"));
        return movement::run(&movement::Options {
            movement: cli.movement,
            osiris: &osiris,
            input: &input,
            database: &cli.database,
            rows: cli.rows,
            runs: cli.runs,
            peer_runs: cli.peer_runs,
            peers: &cli.peers,
            peers_venv: &venv,
            out_dir: &out_dir,
            goal: cli.goal.unwrap_or(cli.movement.default_goal()),
            quiet_threshold: cli.quiet_threshold,
            max_wait: cli.max_wait,
        });
    }
    let input = data::ensure_input(&out_dir, cli.rows, cli.regenerate)?;
    let input_mib = mib(std::fs::metadata(&input)?.len());
    println!(
        "input size: {input_mib:.1} MiB, {} rows",
        thousands(cli.rows)
    );

    let osiris_out = out_dir.join("osiris_out.csv");
    let duckdb_out = out_dir.join("duckdb_out.csv");
    let pipeline = out_dir.join("pipeline.yaml");
    write_pipeline(&pipeline, &input, &osiris_out)?;
    println!("pipeline: {}", pipeline.display());
    let scratch = tempfile::Builder::new()
        .prefix("scratch-")
        .tempdir_in(&out_dir)
        .context("cannot create a scratch directory")?;
    data::warm_page_cache(&input)?;

    let setup = Setup {
        osiris,
        input,
        pipeline,
        osiris_out,
        duckdb_out,
        scratch,
        rows: cli.rows,
    };
    let mut duckdb_runs = Vec::new();
    let mut osiris_runs = Vec::new();
    println!();
    println!(
        "{:<4} {:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>9} {:>8}",
        "run",
        "side",
        "extract s",
        "write s",
        "other s",
        "total s",
        "cpu s",
        "peak RSS MiB",
        "db MiB",
        "noise s"
    );
    for run in 0..cli.runs {
        let order = if run % 2 == 0 {
            [Side::Duckdb, Side::Osiris]
        } else {
            [Side::Osiris, Side::Duckdb]
        };
        for side in order {
            let mut attempt = 0;
            let result = loop {
                measure::settle(cli.quiet_threshold, cli.max_wait);
                let result = match side {
                    Side::Duckdb => run_duckdb(&setup, run)?,
                    Side::Osiris => run_osiris(&setup, run)?,
                };
                if !result.noisy() || attempt >= cli.retries {
                    break result;
                }
                attempt += 1;
                println!(
                    "{:<4} {:<13} discarded: other processes took {:.2} CPU s during the run \
                     (retry {attempt} of {})",
                    run + 1,
                    side.label(),
                    result.noise_s,
                    cli.retries
                );
            };
            println!(
                "{:<4} {:<13} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>12.0} {:>9.0} {:>8.2}{}",
                run + 1,
                side.label(),
                result.extract_s,
                result.write_s,
                result.other_s,
                result.total_s,
                result.cpu_s,
                result.rss_mib,
                result.db_mib,
                result.noise_s,
                if result.noisy() { "  noisy" } else { "" }
            );
            match side {
                Side::Duckdb => duckdb_runs.push(result),
                Side::Osiris => osiris_runs.push(result),
            }
        }
    }

    let duckdb = median_of(&duckdb_runs);
    let osiris = median_of(&osiris_runs);
    let ratio = osiris.total_s / duckdb.total_s;
    print_summary(cli, &duckdb, &osiris);
    let noisy = duckdb_runs
        .iter()
        .chain(&osiris_runs)
        .filter(|r| r.noisy())
        .count();
    if noisy > 0 {
        println!(
            "WARNING: {noisy} of {} runs were noisy (other processes took more than 10% of the \
             run's own CPU time): wall times are unreliable; compare cpu s, or rerun on a quiet \
             machine",
            duckdb_runs.len() + osiris_runs.len()
        );
    }

    let outputs_ok = print_comparison(&setup)?;
    let goal_met = ratio <= cli.goal.unwrap_or(cli.movement.default_goal());
    if !outputs_ok {
        eprintln!("bench-csv: the outputs have different row counts");
        return Ok(ExitCode::FAILURE);
    }
    if cli.require_goal && !goal_met {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_machine(osiris: &Path) -> Result<()> {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown".to_owned(),
            |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
        );
    let conn = duckdb::Connection::open_in_memory().context("cannot open DuckDB in memory")?;
    let (version, source_id): (String, String) = conn
        .query_row(
            "SELECT library_version, source_id FROM pragma_version()",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .context("cannot read the DuckDB version (pragma_version())")?;
    let threads: i64 = conn
        .query_row("SELECT current_setting('threads')", [], |r| r.get(0))
        .context("cannot read the threads setting")?;
    let osiris_version = Command::new(osiris)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("machine: {nproc} CPUs ({cpu}), {mem} RAM");
    println!("DuckDB: {version} ({source_id}), default threads {threads}");
    println!("osiris: {} ({osiris_version})", osiris.display());
    Ok(())
}

fn write_pipeline(path: &Path, input: &Path, output: &Path) -> Result<()> {
    let quote = |p: &Path| -> Result<String> {
        let text = p
            .to_str()
            .with_context(|| format!("{} is not UTF-8", p.display()))?;
        // A JSON string is a valid YAML double-quoted scalar.
        Ok(serde_json::to_string(text)?)
    };
    let yaml = format!(
        "# Generated by bench-csv: CSV -> DuckDB -> CSV, no transformation.\n\
         oml_version: \"0.1.0\"\n\
         name: bench-csv\n\
         description: Read a CSV into the run database and write it back out.\n\
         steps:\n  \
           - id: extract\n    \
             component: filesystem.csv_extractor\n    \
             mode: read\n    \
             config:\n      \
               path: {}\n  \
           - id: write\n    \
             component: filesystem.csv_writer\n    \
             mode: write\n    \
             needs: [extract]\n    \
             config:\n      \
               path: {}\n",
        quote(input)?,
        quote(output)?
    );
    std::fs::write(path, yaml).with_context(|| format!("cannot write {}", path.display()))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Writes back the dirty pages earlier runs left (a 500 MB output each), so that no run pays
/// for the previous one's writeback. Best effort: without a `sync` command runs are noisier.
fn flush_disk_writes() {
    let _ = Command::new("sync").status();
}

fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| mib(m.len()))
}

fn run_duckdb(setup: &Setup, run: u32) -> Result<RunResult> {
    let db = setup.scratch.path().join(format!("baseline-{run}.duckdb"));
    remove_if_exists(&setup.duckdb_out)?;
    flush_disk_writes();
    let this = std::env::current_exe().context("cannot locate the bench-csv executable")?;
    let args = [
        "baseline".to_owned(),
        "--csv".to_owned(),
        path_arg(&setup.input)?,
        "--out".to_owned(),
        path_arg(&setup.duckdb_out)?,
        "--db".to_owned(),
        path_arg(&db)?,
    ];
    let measured = run_measured(setup.scratch.path(), &this, &args)
        .context("the DuckDB-alone baseline failed")?;
    let times: BaselineTimes = serde_json::from_str(measured.stdout.trim()).with_context(|| {
        format!(
            "unreadable baseline output: {:?} (stderr: {})",
            measured.stdout, measured.stderr
        )
    })?;
    ensure!(
        times.rows == setup.rows,
        "the baseline loaded {} rows, expected {}",
        times.rows,
        setup.rows
    );
    let db_mib = file_mib(&db);
    remove_if_exists(&db)?;
    remove_if_exists(&db.with_extension("duckdb.wal"))?;
    Ok(RunResult::new(
        times.extract_s,
        times.write_s,
        &measured.measurement,
        db_mib,
    ))
}

fn run_osiris(setup: &Setup, run: u32) -> Result<RunResult> {
    let sessions = setup.scratch.path().join(format!("sessions-{run}"));
    remove_if_exists(&setup.osiris_out)?;
    flush_disk_writes();
    let args = [
        "run".to_owned(),
        path_arg(&setup.pipeline)?,
        "--sessions-dir".to_owned(),
        path_arg(&sessions)?,
        "--json".to_owned(),
    ];
    let measured =
        run_measured(setup.scratch.path(), &setup.osiris, &args).context("osiris run failed")?;
    let summary: Value = serde_json::from_str(&measured.stdout).with_context(|| {
        format!(
            "osiris --json printed no JSON object: {:?} (stderr: {})",
            measured.stdout, measured.stderr
        )
    })?;
    let status = summary.get("status").and_then(Value::as_str);
    ensure!(
        status == Some("ok"),
        "osiris run status is {status:?}, not \"ok\": {summary}"
    );
    let step = |id: &str| -> Result<(f64, u64)> {
        let steps = summary
            .get("steps")
            .and_then(Value::as_array)
            .context("osiris --json output has no steps array")?;
        let step = steps
            .iter()
            .find(|s| s.get("step_id").and_then(Value::as_str) == Some(id))
            .with_context(|| format!("osiris --json output has no step {id:?}"))?;
        let ms = step
            .get("duration_ms")
            .and_then(Value::as_u64)
            .with_context(|| format!("step {id:?} has no duration_ms"))?;
        let rows = step
            .get("rows")
            .and_then(Value::as_u64)
            .with_context(|| format!("step {id:?} has no rows: {step}"))?;
        // The extractor's step is a view by default (ADR 0036): it reads no row itself.
        ensure!(
            rows == setup.rows || (id == "extract" && rows == 0),
            "step {id:?} reports {rows} rows, expected {}",
            setup.rows
        );
        Ok((ms as f64 / 1000.0, rows))
    };
    let (extract_s, _) = step("extract")?;
    let (write_s, _) = step("write")?;
    let db_mib = summary
        .get("database")
        .and_then(Value::as_str)
        .map_or(0.0, |db| file_mib(Path::new(db)));
    std::fs::remove_dir_all(&sessions)
        .with_context(|| format!("cannot remove {}", sessions.display()))?;
    Ok(RunResult::new(
        extract_s,
        write_s,
        &measured.measurement,
        db_mib,
    ))
}

fn path_arg(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The median of every column independently.
fn median_of(runs: &[RunResult]) -> RunResult {
    RunResult {
        extract_s: median(runs.iter().map(|r| r.extract_s)),
        write_s: median(runs.iter().map(|r| r.write_s)),
        other_s: median(runs.iter().map(|r| r.other_s)),
        total_s: median(runs.iter().map(|r| r.total_s)),
        cpu_s: median(runs.iter().map(|r| r.cpu_s)),
        noise_s: median(runs.iter().map(|r| r.noise_s)),
        rss_mib: median(runs.iter().map(|r| r.rss_mib)),
        db_mib: median(runs.iter().map(|r| r.db_mib)),
    }
}

fn print_summary(cli: &Cli, duckdb: &RunResult, osiris: &RunResult) {
    let ratio = |a: f64, b: f64| format!("{:.3}x", a / b);
    println!();
    println!(
        "CSV -> DuckDB -> CSV, {} rows, median of {} run{} per side",
        thousands(cli.rows),
        cli.runs,
        if cli.runs == 1 { "" } else { "s" }
    );
    println!(
        "{:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>13}",
        "side", "extract s", "write s", "other s", "total s", "cpu s", "peak RSS MiB"
    );
    for (label, r) in [("duckdb alone", duckdb), ("osiris run", osiris)] {
        println!(
            "{:<15} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>13.0}",
            label, r.extract_s, r.write_s, r.other_s, r.total_s, r.cpu_s, r.rss_mib
        );
    }
    println!(
        "{:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>13}",
        "osiris/duckdb",
        ratio(osiris.extract_s, duckdb.extract_s),
        ratio(osiris.write_s, duckdb.write_s),
        format!("{:+.2} s", osiris.other_s - duckdb.other_s),
        ratio(osiris.total_s, duckdb.total_s),
        ratio(osiris.cpu_s, duckdb.cpu_s),
        ratio(osiris.rss_mib, duckdb.rss_mib)
    );
    println!(
        "(extract/write: CREATE TABLE AS read_csv / COPY TO timed inside the baseline process, \
         and osiris's per-step duration_ms; total: wall time of the whole process; other: \
         total - extract - write = process start, opening and closing the database, session \
         files; cpu: user + system time of the process; peak RSS: getrusage(RUSAGE_CHILDREN) \
         of each process; each column is its own median)"
    );
    let total_ratio = osiris.total_s / duckdb.total_s;
    let goal = cli.goal.unwrap_or(cli.movement.default_goal());
    let verdict = if total_ratio <= goal {
        "MET"
    } else {
        "NOT MET"
    };
    println!("goal: osiris total within {goal:.2}x of DuckDB alone: {verdict} ({total_ratio:.3}x)");
}

/// Prints how the two outputs compare; false when their row counts differ.
fn print_comparison(setup: &Setup) -> Result<bool> {
    let cmp = data::compare(&setup.osiris_out, &setup.duckdb_out)?;
    let rows = |lines: u64| lines.saturating_sub(1);
    let (osiris_rows, duckdb_rows) = (rows(cmp.lines.0), rows(cmp.lines.1));
    println!();
    println!(
        "outputs: osiris {} ({} rows, {:.1} MiB), duckdb {} ({} rows, {:.1} MiB)",
        setup.osiris_out.display(),
        thousands(osiris_rows),
        file_mib(&setup.osiris_out),
        setup.duckdb_out.display(),
        thousands(duckdb_rows),
        file_mib(&setup.duckdb_out)
    );
    let same_rows = osiris_rows == duckdb_rows && osiris_rows == setup.rows;
    println!(
        "row counts: {}",
        if same_rows {
            "equal".to_owned()
        } else {
            format!(
                "DIFFER (osiris {osiris_rows}, duckdb {duckdb_rows}, input {})",
                setup.rows
            )
        }
    );
    if cmp.identical {
        println!("byte-identical: yes");
        return Ok(same_rows);
    }
    println!(
        "byte-identical: NO ({} of {} lines differ)",
        thousands(cmp.differing_lines),
        thousands(cmp.lines.0.min(cmp.lines.1))
    );
    if let Some((line, a, b)) = &cmp.first_difference {
        let mut text = String::new();
        let _ = writeln!(text, "first difference at line {line}:");
        let _ = writeln!(text, "  osiris: {}", shorten(a));
        let _ = writeln!(text, "  duckdb: {}", shorten(b));
        let header = data::split_csv_line(&cmp.header);
        let (fa, fb) = (data::split_csv_line(a), data::split_csv_line(b));
        for i in 0..fa.len().max(fb.len()) {
            let (va, vb) = (fa.get(i), fb.get(i));
            if va != vb {
                let name = header.get(i).map_or("?", String::as_str);
                let _ = writeln!(
                    text,
                    "  column {} ({name}): osiris {:?} vs duckdb {:?}",
                    i + 1,
                    va.map_or("<missing>", String::as_str),
                    vb.map_or("<missing>", String::as_str)
                );
            }
        }
        if a.ends_with("\r\n") != b.ends_with("\r\n") {
            let _ = writeln!(text, "  line endings differ (CRLF vs LF)");
        }
        print!("{text}");
    }
    Ok(same_rows)
}

fn shorten(line: &str) -> String {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.chars().count() <= 240 {
        return format!("{line:?}");
    }
    let head: String = line.chars().take(240).collect();
    format!("{head:?}...")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(5_000_000), "5,000,000");
    }

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(
            data::split_csv_line("1,\"a, \"\"b\"\"\",x\n"),
            vec!["1", "a, \"b\"", "x"]
        );
    }

    #[test]
    fn comparison_finds_the_first_differing_line() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        std::fs::write(&a, "h,k\n1,2\n3,4\n").unwrap();
        std::fs::write(&b, "h,k\n1,2\n3,5\n").unwrap();
        let cmp = data::compare(&a, &b).unwrap();
        assert!(!cmp.identical);
        assert_eq!(cmp.lines, (3, 3));
        assert_eq!(cmp.differing_lines, 1);
        assert_eq!(cmp.first_difference.unwrap().0, 3);
        std::fs::write(&b, "h,k\n1,2\n3,4\n").unwrap();
        assert!(data::compare(&a, &b).unwrap().identical);
    }

    #[test]
    fn baseline_and_generator_work_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let input = data::ensure_input(dir.path(), 1000, false).unwrap();
        let out = dir.path().join("out.csv");
        baseline::baseline_main(&input, &out, &dir.path().join("b.duckdb")).unwrap();
        let cmp = data::compare(&input, &out).unwrap();
        assert_eq!(cmp.lines, (1001, 1001));
    }
}
