//! `bench-parallel`: independent steps in parallel (issue 16, ADR 0034). Five MariaDB tables of
//! the `mixed` shape -> five `mysql.extractor` step tables -> one `duckdb.processor` join ->
//! `filesystem.csv_writer`, with `osiris run --jobs 1`, the default (one job per core) and
//! `--jobs 5`, in the same run; against the same movement by dlt (`sql_database` source,
//! parallelized extract, DuckDB destination, then the join in DuckDB) and by Sling (one
//! replication with five streams to CSV files, `SLING_THREADS=5`, then the join with the DuckDB
//! CLI; Sling's DuckDB target needs the httpfs extension, which cannot be installed offline), from
//! the peers' venv (`bench/peers/setup.sh`). Every side's CSV must have the same row count and
//! the same sum of a column.
//!
//!   target/release/bench-parallel --osiris target/release/osiris --rows 1000000 --runs 3
//!
//! Needs MariaDB on 127.0.0.1:3306 (root, no password). The tables `par_0`..`par_4` are created
//! once in database `osiris_bench` and kept.

mod measure;
mod mysql_mixed;
mod osiris_run;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};

use crate::measure::Measurement;
use crate::mysql_mixed::ensure_mixed;
use crate::stats::median;

const TABLES: usize = 5;

#[derive(Debug, Parser)]
#[command(
    name = "bench-parallel",
    about = "Five MariaDB tables -> five step tables -> one join -> CSV: --jobs N against --jobs 1, dlt and Sling."
)]
struct Cli {
    /// The `osiris` binary to benchmark [default: `osiris` next to this executable].
    #[arg(long, env = "OSIRIS_BIN")]
    osiris: Option<PathBuf>,
    /// Rows of each of the five tables.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Runs of each side; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Database holding the benchmark tables (created when missing, kept).
    #[arg(long, default_value = "osiris_bench")]
    database: String,
    /// The peers' venv (dlt, sling, duckdb CLI), from `bench/peers/setup.sh`; empty: no peers.
    #[arg(long, env = "OSIRIS_PEERS_VENV", default_value_t = default_venv())]
    peers_venv: String,
    /// Directory for pipelines, outputs and scratch sessions.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/out/parallel"))]
    out_dir: PathBuf,
    /// Before each run, wait until other processes use less than this fraction of all CPUs.
    #[arg(long, default_value_t = 0.5)]
    quiet_threshold: f64,
    /// The longest wait for a quiet machine before each run, in seconds.
    #[arg(long, default_value_t = 60)]
    max_wait: u64,

    #[command(subcommand)]
    internal: Option<Internal>,
}

fn default_venv() -> String {
    std::env::var("HOME")
        .map(|home| format!("{home}/.cache/osiris-rs/venv-peers"))
        .unwrap_or_default()
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
        Some(Internal::Measure { report, command }) => measure::wrapper_main(report, command),
        None => bench(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-parallel: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The join every side runs over its five tables (`{0}`..`{4}` are their names), ordered so
/// that the CSV files compare.
fn join_sql(names: &[String]) -> String {
    format!(
        "SELECT t0.id, t0.qty + t1.qty + t2.qty + t3.qty + t4.qty AS qty, \
         t0.amount + t1.amount + t2.amount + t3.amount + t4.amount AS amount, \
         t2.name, t3.status, t4.created \
         FROM {} t0 JOIN {} t1 ON t1.id = t0.id JOIN {} t2 ON t2.id = t0.id \
         JOIN {} t3 ON t3.id = t0.id JOIN {} t4 ON t4.id = t0.id ORDER BY t0.id",
        names[0], names[1], names[2], names[3], names[4]
    )
}

/// Row count and sum of `qty` of a CSV file, read with DuckDB: what every side must agree on.
fn check(csv: &Path) -> Result<(i64, i64)> {
    let duck = duckdb::Connection::open_in_memory()?;
    let (rows, qty) = duck.query_row(
        &format!(
            "SELECT count(*), sum(qty)::BIGINT FROM read_csv('{}')",
            csv.display()
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((rows, qty))
}

struct Side {
    name: String,
    wall: Vec<f64>,
    rss: Vec<f64>,
    cpu: Vec<f64>,
}

impl Side {
    fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            wall: Vec::new(),
            rss: Vec::new(),
            cpu: Vec::new(),
        }
    }

    fn record(&mut self, run: u32, m: &Measurement) {
        println!(
            "{:<4} {:<36} {:>8.2} {:>8.2} {:>10.0} {:>8}",
            run + 1,
            self.name,
            m.wall_s,
            m.cpu_s,
            m.max_rss_kib as f64 / 1024.0,
            m.noise_s().map(|n| format!("{n:.2}")).unwrap_or_default()
        );
        self.wall.push(m.wall_s);
        self.rss.push(m.max_rss_kib as f64 / 1024.0);
        self.cpu.push(m.cpu_s);
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
    let osiris = std::path::absolute(osiris)?;
    let out = std::path::absolute(&cli.out_dir)?;
    std::fs::create_dir_all(&out)?;
    let db = &cli.database;
    let tables: Vec<String> = (0..TABLES).map(|i| format!("par_{i}")).collect();
    for table in &tables {
        ensure_mixed(db, table, cli.rows)?;
    }

    // osiris: five extractors, the join, the CSV writer.
    let osiris_csv = out.join("osiris.csv");
    let mut steps = String::new();
    for table in &tables {
        steps.push_str(&format!(
            "  - id: {table}\n    component: mysql.extractor\n    mode: read\n    config: {{host: 127.0.0.1, port: 3306, user: root, database: {db}, table: {table}}}\n"
        ));
    }
    let quoted: Vec<String> = tables.iter().map(|t| format!("\\\"{t}\\\"")).collect();
    steps.push_str(&format!(
        "  - id: joined\n    component: duckdb.processor\n    mode: transform\n    needs: [{}]\n    config: {{query: \"{}\"}}\n  - id: write\n    component: filesystem.csv_writer\n    mode: write\n    needs: [joined]\n    config: {{path: {}}}\n",
        tables.join(", "),
        join_sql(&quoted),
        osiris_csv.display()
    ));
    let pipeline = out.join("parallel.yaml");
    std::fs::write(
        &pipeline,
        format!("oml_version: \"0.1.0\"\nname: parallel\nsteps:\n{steps}"),
    )?;

    // dlt: the sql_database source over the five tables, extracted in parallel into DuckDB,
    // then the same join in DuckDB.
    let venv = PathBuf::from(&cli.peers_venv);
    let peers = !cli.peers_venv.is_empty() && venv.join("bin/python").is_file();
    if !peers {
        println!(
            "no peers venv at {:?} (bash bench/peers/setup.sh): osiris sides only",
            cli.peers_venv
        );
    }
    let dlt_db = out.join("dlt.duckdb");
    let dlt_csv = out.join("dlt.csv");
    let dlt_script = out.join("dlt_parallel.py");
    let dlt_names: Vec<String> = tables.iter().map(|t| format!("src.{t}")).collect();
    std::fs::write(
        &dlt_script,
        format!(
            r#"import os, shutil
os.environ["EXTRACT__WORKERS"] = "{TABLES}"
os.environ["NORMALIZE__WORKERS"] = "2"
os.environ["LOAD__WORKERS"] = "{TABLES}"
os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
import dlt, duckdb
from dlt.sources.sql_database import sql_database
db = {db_path:?}
shutil.rmtree({pipes:?}, ignore_errors=True)
if os.path.exists(db):
    os.remove(db)
source = sql_database(
    "mysql+pymysql://root@127.0.0.1:3306/{db}",
    table_names={tables:?},
    backend="connectorx",
    backend_kwargs={{"conn": "mysql://root@127.0.0.1:3306/{db}"}},
).parallelize()
pipeline = dlt.pipeline(pipeline_name="parallel", destination=dlt.destinations.duckdb(db),
                        dataset_name="src", pipelines_dir={pipes:?})
pipeline.run(source)
con = duckdb.connect(db)
con.execute("COPY ({join}) TO '{csv}' (HEADER)")
"#,
            db_path = dlt_db.display().to_string(),
            pipes = out.join("dlt-pipelines").display().to_string(),
            tables = tables,
            join = join_sql(&dlt_names),
            csv = dlt_csv.display(),
        ),
    )?;
    let dlt = format!(
        "{} {}",
        venv.join("bin/python").display(),
        dlt_script.display()
    );

    // Sling: one replication of five streams, SLING_THREADS=5, then the join with the DuckDB
    // CLI. Sling loads a DuckDB target through DuckDB's httpfs extension, which cannot be
    // installed offline, so its streams go to CSV files (its local target) instead.
    let sling_dir = out.join("sling");
    let sling_csv = out.join("sling.csv");
    let replication = out.join("sling.yaml");
    let mut streams = String::new();
    for table in &tables {
        streams.push_str(&format!(
            "  {db}.{table}:\n    object: file://{}/{table}.csv\n",
            sling_dir.display()
        ));
    }
    std::fs::write(
        &replication,
        format!(
            "source: BENCH_MARIADB\ntarget: LOCAL\ndefaults:\n  mode: full-refresh\nstreams:\n{streams}"
        ),
    )?;
    let sling_names: Vec<String> = tables
        .iter()
        .map(|t| format!("read_csv('{}/{t}.csv')", sling_dir.display()))
        .collect();
    let sling = format!(
        "rm -rf {dir} && mkdir -p {dir} && BENCH_MARIADB='mysql://root@127.0.0.1:3306/{db}' SLING_THREADS={TABLES} {sling} run -r {replication} > {log} 2>&1 && {duckdb} -c \"COPY ({join}) TO '{csv}' (HEADER)\"",
        dir = sling_dir.display(),
        sling = venv.join("bin/sling").display(),
        replication = replication.display(),
        log = out.join("sling.log").display(),
        duckdb = venv.join("bin/duckdb").display(),
        join = join_sql(&sling_names),
        csv = sling_csv.display(),
    );

    println!(
        "{} tables x {} rows -> {} step tables -> join -> CSV; {} run(s) per side",
        TABLES, cli.rows, TABLES, cli.runs
    );
    println!(
        "{:<4} {:<36} {:>8} {:>8} {:>10} {:>8}",
        "run", "side", "wall s", "CPU s", "peak MiB", "noise s"
    );
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut one = Side::new("osiris --jobs 1");
    let mut default = Side::new(format!("osiris (default --jobs {cores})"));
    let mut five = Side::new(format!("osiris --jobs {TABLES}"));
    let mut dlt_side = Side::new(format!("dlt (connectorx, {TABLES} workers)"));
    let mut sling_side = Side::new(format!("sling (SLING_THREADS={TABLES})"));
    let mut expected = None;
    let mut agree = |name: &str, csv: &Path| -> Result<()> {
        let got = check(csv).with_context(|| format!("{name}: cannot read {}", csv.display()))?;
        ensure!(
            got.0 == cli.rows as i64,
            "{name}: {} rows, expected {}",
            got.0,
            cli.rows
        );
        match expected {
            None => expected = Some(got),
            Some(want) => ensure!(got == want, "{name} produced {got:?}, osiris {want:?}"),
        }
        Ok(())
    };
    let jobs_five = TABLES.to_string();
    for run in 0..cli.runs {
        let quiet = || {
            measure::settle(cli.quiet_threshold, cli.max_wait);
        };
        quiet();
        let (m, _, _) =
            osiris_run::osiris_with(&out, &osiris, &pipeline, "joined", false, &["--jobs", "1"])?;
        one.record(run, &m);
        agree("osiris --jobs 1", &osiris_csv)?;
        quiet();
        let (m, _, _) = osiris_run::osiris(&out, &osiris, &pipeline, "joined", false)?;
        default.record(run, &m);
        agree("osiris", &osiris_csv)?;
        quiet();
        let (m, _, _) = osiris_run::osiris_with(
            &out,
            &osiris,
            &pipeline,
            "joined",
            false,
            &["--jobs", &jobs_five],
        )?;
        five.record(run, &m);
        agree("osiris --jobs 5", &osiris_csv)?;
        if peers {
            quiet();
            let m = osiris_run::shell(&out, &dlt)?;
            dlt_side.record(run, &m);
            agree("dlt", &dlt_csv)?;
            quiet();
            let m = osiris_run::shell(&out, &sling)?;
            sling_side.record(run, &m);
            agree("sling", &sling_csv)?;
        }
    }
    println!();
    let base = median(one.wall.iter().copied());
    let mut sides = vec![&one, &default, &five];
    if peers {
        sides.extend([&dlt_side, &sling_side]);
    }
    println!(
        "{:<36} {:>8} {:>8} {:>10} {:>14}",
        "median", "wall s", "CPU s", "peak MiB", "vs --jobs 1"
    );
    for side in sides {
        let wall = median(side.wall.iter().copied());
        println!(
            "{:<36} {:>8.2} {:>8.2} {:>10.0} {:>13.2}x",
            side.name,
            wall,
            median(side.cpu.iter().copied()),
            median(side.rss.iter().copied()),
            wall / base
        );
    }
    Ok(())
}
