//! The movements of issue 16, side by side in one run, each against its physical limit and the
//! peers a user would install from PyPI (bench/peers/setup.sh: Sling's PyPI binary, pandas, dlt):
//!
//! - `csv-table` (CSV -> DuckDB table) and `csv-groupby-csv` (CSV -> GROUP BY -> CSV): the limit
//!   is DuckDB alone, through this binary's libduckdb, the same library osiris links;
//! - `mariadb-duckdb` (a MariaDB table -> DuckDB table): the limit is the MariaDB client reading
//!   every row, `mariadb --quick --batch -e 'SELECT * FROM t' > /dev/null`;
//! - `csv-mariadb` (a CSV file -> MariaDB table): the limit is `LOAD DATA LOCAL INFILE`.
//!
//! Every side is one process under the same measuring wrapper (wall time, CPU, peak RSS, CPU
//! taken by other processes). Sides alternate order per run; medians are printed with the ratio
//! to the limit, and each side's result is checked: the same rows as the limit's (file
//! movements), or the same digest as the MariaDB source table (MariaDB movements, see
//! [`DIGEST`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::baseline::sql_string;
use crate::measure::{self, Measurement, run_measured};
use crate::mysql_mixed::{self, CLIENT};
use crate::stats::median;

/// A movement of issue 16's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Movement {
    /// CSV -> DuckDB -> CSV with no transformation (the original bench-csv).
    #[value(name = "csv-csv")]
    Copy,
    /// CSV -> DuckDB table, against `CREATE TABLE AS SELECT * FROM read_csv`.
    #[value(name = "csv-table")]
    Table,
    /// CSV -> GROUP BY (5 of 14 columns) -> CSV, against DuckDB alone doing the same query.
    #[value(name = "csv-groupby-csv")]
    GroupBy,
    /// MariaDB table -> DuckDB table, against `mariadb --quick --batch ... > /dev/null`.
    #[value(name = "mariadb-duckdb")]
    MariadbDuckdb,
    /// CSV file -> MariaDB table, against `LOAD DATA LOCAL INFILE`.
    #[value(name = "csv-mariadb")]
    CsvMariadb,
}

impl Movement {
    /// The goal for osiris with default settings / the limit (issue 16: item 3 asks 1.3x of
    /// `mariadb --quick` for MariaDB -> DuckDB, where issue 4 had asked 1.5x).
    pub fn default_goal(self) -> f64 {
        match self {
            Self::MariadbDuckdb | Self::CsvMariadb => 1.3,
            Self::Copy | Self::Table | Self::GroupBy => 1.15,
        }
    }

    /// Whether the movement reads or writes MariaDB (its rows are checked by [`DIGEST`]).
    pub fn uses_mariadb(self) -> bool {
        matches!(self, Self::MariadbDuckdb | Self::CsvMariadb)
    }

    fn title(self) -> &'static str {
        match self {
            Self::Copy => "CSV -> DuckDB -> CSV",
            Self::Table => "CSV -> DuckDB table",
            Self::GroupBy => "CSV -> GROUP BY -> CSV",
            Self::MariadbDuckdb => "MariaDB table -> DuckDB table",
            Self::CsvMariadb => "CSV -> MariaDB table",
        }
    }

    fn limit_label(self) -> &'static str {
        match self {
            Self::MariadbDuckdb => "mariadb --quick > /dev/null",
            Self::CsvMariadb => "LOAD DATA LOCAL INFILE",
            Self::Copy | Self::Table | Self::GroupBy => "duckdb alone",
        }
    }

    /// The side's output is a DuckDB file (else a CSV file or a MariaDB table).
    fn writes_duckdb(self) -> bool {
        matches!(self, Self::Table | Self::MariadbDuckdb)
    }
}

/// What the MariaDB movements compare, in SQL that MariaDB and DuckDB both read, on the source
/// table and on every side's destination (whatever column types a peer chose): the row count,
/// sums of the numeric columns, the non-NULL notes and the total length of a string.
const DIGEST: &[&str] = &[
    "COUNT(*)",
    "SUM(id)",
    "SUM(qty)",
    "SUM(amount)",
    "SUM(price)",
    "SUM(CAST(flag AS INTEGER))",
    "COUNT(note)",
    "SUM(LENGTH(name))",
];

/// MariaDB on 127.0.0.1:3306 as root (the client flags of [`CLIENT`]), as a URL for the peers.
const MARIADB_URL: &str = "mysql://root@127.0.0.1:3306";

/// The MariaDB table of the `mixed` shape the MariaDB movements read (`rows` rows, kept).
pub fn source_table(rows: u64) -> String {
    format!("movement_{rows}")
}

/// The GROUP BY of `csv-groupby-csv`: 5 of the 14 columns, about 9,000 groups. Every side
/// prints the same text for these aggregates (integers, and min/max of doubles, which every
/// tool prints as the shortest text that reads back exactly).
const GROUP_BY: &str = "SELECT status, day, count(*) AS n, sum(qty) AS qty, \
    max(amount) AS max_amount, min(price) AS min_price FROM {src} \
    GROUP BY status, day ORDER BY status, day";

/// What the movement needs from the command line.
pub struct Options<'a> {
    pub movement: Movement,
    pub osiris: &'a Path,
    /// The input CSV (every movement but `mariadb-duckdb`, which reads [`source_table`]).
    pub input: &'a Path,
    /// The MariaDB database of the source table and the destinations.
    pub database: &'a str,
    pub rows: u64,
    pub runs: u32,
    pub peer_runs: u32,
    pub peers: &'a [String],
    pub peers_venv: &'a Path,
    pub out_dir: &'a Path,
    pub goal: f64,
    pub quiet_threshold: f64,
    pub max_wait: u64,
}

/// The input of `movement` at `rows` rows: the 14-column CSV of the file movements, or the
/// MariaDB source table [`source_table`] (made when missing, kept) and, for `csv-mariadb`, its
/// rows as a CSV file in `out_dir`, made once (see [`export_csv`]). `mariadb-duckdb` reads no
/// file: the returned path is empty.
pub fn prepare_input(
    movement: Movement,
    out_dir: &Path,
    rows: u64,
    regenerate: bool,
    osiris: &Path,
    database: &str,
) -> Result<PathBuf> {
    if !movement.uses_mariadb() {
        return crate::data::ensure_mixed14(out_dir, rows, regenerate);
    }
    let table = source_table(rows);
    mysql_mixed::ensure_mixed(database, &table, rows)?;
    if movement == Movement::MariadbDuckdb {
        return Ok(PathBuf::new());
    }
    let csv = out_dir.join(format!("mariadb_{table}.csv"));
    if csv.is_file() && !regenerate {
        println!("input: {} (cached)", csv.display());
    } else {
        export_csv(osiris, out_dir, database, &table, &csv)?;
        println!(
            "input: {} (exported from {database}.{table})",
            csv.display()
        );
    }
    Ok(csv)
}

/// Writes `database.table` to `csv` as DuckDB writes a CSV (a header line, RFC 4180 quoting,
/// NULL as an empty field): `osiris run` of a `mysql.extractor` step, then `COPY` of the step's
/// table, through a `.partial` file renamed into place.
fn export_csv(
    osiris: &Path,
    out_dir: &Path,
    database: &str,
    table: &str,
    csv: &Path,
) -> Result<()> {
    let work = out_dir.join("export");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let pipeline = work.join("export.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "oml_version: \"0.1.0\"\nname: bench-export\nsteps:\n  - id: extract\n    component: mysql.extractor\n    mode: read\n    config: {{{}, table: {table}}}\n",
            mariadb_config(database)
        ),
    )?;
    let output = std::process::Command::new(osiris)
        .arg("run")
        .arg(&pipeline)
        .arg("--sessions-dir")
        .arg(work.join("sessions"))
        .arg("--json")
        .output()
        .context("cannot run osiris")?;
    let summary: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "no JSON from osiris: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    ensure!(summary["status"] == "ok", "osiris run failed: {summary}");
    let db = summary["database"]
        .as_str()
        .context("osiris reported no run database")?;
    let partial = csv.with_extension("csv.partial");
    duckdb::Connection::open(db)?.execute_batch(&format!(
        "COPY \"extract\" TO {} (FORMAT csv, HEADER)",
        sql_string(path_str(&partial)?)
    ))?;
    std::fs::rename(&partial, csv)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Who a side is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// The physical limit (DuckDB alone).
    Limit,
    /// `osiris run` with the given `materialize` of the extractor (`None`: the default).
    Osiris(Option<&'static str>),
    /// A peer from bench/peers.
    Peer(String),
}

struct Side {
    label: String,
    role: Role,
    runs: Vec<Measurement>,
    /// The step durations osiris reported, per run (`step id -> s`).
    steps: Vec<Vec<(String, f64)>>,
}

struct Setup<'a> {
    opts: &'a Options<'a>,
    scratch: PathBuf,
}

impl Setup<'_> {
    fn output(&self, side: &Side) -> PathBuf {
        let name: String = side
            .label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if self.opts.movement.writes_duckdb() {
            self.scratch.join(format!("{name}.duckdb"))
        } else {
            self.scratch.join(format!("{name}.csv"))
        }
    }

    /// `csv-mariadb`: the side's destination, `(database, table)`. dlt makes its own database
    /// (its dataset) and names the table after the resource.
    fn mariadb_target(&self, side: &Side) -> (String, String) {
        let db = self.opts.database.to_owned();
        match &side.role {
            Role::Limit => (db, "mv_limit".to_owned()),
            Role::Osiris(_) => (db, "mv_osiris".to_owned()),
            Role::Peer(name) if name == "dlt" => (format!("{db}_dlt"), "t".to_owned()),
            Role::Peer(name) => (db, format!("mv_{name}")),
        }
    }

    fn source(&self) -> String {
        source_table(self.opts.rows)
    }

    /// `mariadb-duckdb`: the side's output, or `csv-mariadb`: its destination table, made empty
    /// before a run (unmeasured). The limit and osiris append to an empty table of the source's
    /// DDL; a peer creates its own.
    fn prepare_target(&self, side: &Side) -> Result<()> {
        if self.opts.movement != Movement::CsvMariadb {
            return Ok(());
        }
        let (db, table) = self.mariadb_target(side);
        let statement = match &side.role {
            Role::Limit | Role::Osiris(_) => format!(
                "DROP TABLE IF EXISTS `{table}`; CREATE TABLE `{table}` LIKE `{}`",
                self.source()
            ),
            Role::Peer(name) if name == "dlt" => format!("DROP DATABASE IF EXISTS `{db}`"),
            Role::Peer(_) => format!("DROP TABLE IF EXISTS `{table}`"),
        };
        mysql_mixed::sql(Some(self.opts.database), &statement)?;
        Ok(())
    }

    fn query(&self, src: &str) -> String {
        GROUP_BY.replace("{src}", src)
    }

    fn read_csv(&self) -> Result<String> {
        Ok(format!(
            "read_csv({})",
            sql_string(path_str(self.opts.input)?)
        ))
    }
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

fn yaml_string(text: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(text).unwrap_or_default()
}

/// Runs the movement and prints its table; exit 1 when a side's rows differ from the limit's.
pub fn run(opts: &Options) -> Result<ExitCode> {
    let scratch = opts
        .out_dir
        .join(format!("{:?}", opts.movement).to_lowercase());
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let setup = Setup {
        opts,
        scratch: std::path::absolute(&scratch)?,
    };
    let mut sides = vec![Side::new(opts.movement.limit_label(), Role::Limit)];
    match opts.movement {
        Movement::Table => sides.push(Side::new(
            "osiris (materialize: table)",
            Role::Osiris(Some("table")),
        )),
        Movement::MariadbDuckdb | Movement::CsvMariadb => {
            sides.push(Side::new("osiris (default)", Role::Osiris(None)));
        }
        Movement::Copy | Movement::GroupBy => {
            sides.push(Side::new("osiris (default)", Role::Osiris(None)));
            sides.push(Side::new(
                "osiris (materialize: table)",
                Role::Osiris(Some("table")),
            ));
        }
    }
    for peer in opts.peers.iter().filter(|p| !p.is_empty()) {
        sides.push(Side::new(
            &peer_label(peer, opts.movement)?,
            Role::Peer(peer.clone()),
        ));
    }
    if opts.movement != Movement::MariadbDuckdb {
        crate::data::warm_page_cache(opts.input)?;
    }
    println!(
        "\n{:<4} {:<30} {:>9} {:>9} {:>12} {:>9}",
        "run", "side", "wall s", "cpu s", "peak RSS MiB", "noise s"
    );
    for run in 0..opts.runs {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for i in order {
            if matches!(sides[i].role, Role::Peer(_)) && run >= opts.peer_runs {
                continue;
            }
            setup.prepare_target(&sides[i])?;
            measure::settle(opts.quiet_threshold, opts.max_wait);
            let (m, steps) = run_side(&setup, &sides[i], run)
                .with_context(|| format!("side {:?} failed", sides[i].label))?;
            println!(
                "{:<4} {:<30} {:>9.2} {:>9.2} {:>12.0} {:>9}",
                run + 1,
                sides[i].label,
                m.wall_s,
                m.cpu_s,
                m.max_rss_kib as f64 / 1024.0,
                m.noise_s().map(|n| format!("{n:.2}")).unwrap_or_default()
            );
            sides[i].runs.push(m);
            sides[i].steps.push(steps);
        }
    }

    let limit = median(sides[0].runs.iter().map(|m| m.wall_s));
    println!(
        "\n{} ({} rows), medians ({} runs; peers {}):",
        opts.movement.title(),
        opts.rows,
        opts.runs,
        opts.peer_runs.min(opts.runs)
    );
    println!(
        "{:<30} {:>9} {:>8} {:>9} {:>12} {:>9}  steps (s)",
        "side", "wall s", "ratio", "cpu s", "peak RSS MiB", "noise s"
    );
    for side in &sides {
        if side.runs.is_empty() {
            continue;
        }
        let wall = median(side.runs.iter().map(|m| m.wall_s));
        let steps =
            side.steps
                .first()
                .map(|steps| {
                    steps
                        .iter()
                        .map(|(id, _)| {
                            let s = median(side.steps.iter().filter_map(|run| {
                                run.iter().find(|(i, _)| i == id).map(|(_, s)| *s)
                            }));
                            format!("{id} {s:.2}")
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
        println!(
            "{:<30} {:>9.2} {:>7.2}x {:>9.2} {:>12.0} {:>9.2}  {steps}",
            side.label,
            wall,
            wall / limit,
            median(side.runs.iter().map(|m| m.cpu_s)),
            median(side.runs.iter().map(|m| m.max_rss_kib as f64 / 1024.0)),
            median(side.runs.iter().filter_map(Measurement::noise_s)),
        );
    }
    println!();
    let all_same = if opts.movement.uses_mariadb() {
        check_digests(&setup, &sides)?
    } else {
        check_files(&setup, &sides)
    };
    if let Some(default) = sides.iter().find(|s| s.role == Role::Osiris(None)) {
        let wall = median(default.runs.iter().map(|m| m.wall_s));
        let verdict = if wall / limit <= opts.goal {
            "MET"
        } else {
            "NOT MET"
        };
        println!(
            "goal: osiris with default settings within {:.2}x of {}: {verdict} ({:.3}x)",
            opts.goal,
            sides[0].label,
            wall / limit
        );
        for peer in sides.iter().filter(|s| matches!(s.role, Role::Peer(_))) {
            if let Some(peer_wall) =
                (!peer.runs.is_empty()).then(|| median(peer.runs.iter().map(|m| m.wall_s)))
            {
                println!(
                    "goal: faster than {}: {} ({wall:.2} s vs {peer_wall:.2} s)",
                    peer.label,
                    if wall < peer_wall { "MET" } else { "NOT MET" }
                );
            }
        }
    }
    if opts.movement == Movement::GroupBy {
        debugging_session(&setup)?;
    }
    Ok(if all_same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The file movements: each side's output against the limit's (see [`same_result`]).
fn check_files(setup: &Setup, sides: &[Side]) -> bool {
    let movement = setup.opts.movement;
    let reference = setup.output(&sides[0]);
    let mut all_same = true;
    for side in sides.iter().skip(1).filter(|s| !s.runs.is_empty()) {
        // A peer's table has its own types (dlt: no DATE, its own columns): its row count is
        // compared, osiris's rows and types exactly.
        let exact = movement != Movement::Table || !matches!(side.role, Role::Peer(_));
        match same_result(movement, &reference, &setup.output(side), exact) {
            Ok(()) if exact => println!("same rows as duckdb alone: {}: yes", side.label),
            Ok(()) => println!(
                "same rows as duckdb alone: {}: yes (row count; its own column types)",
                side.label
            ),
            Err(e) => {
                all_same = false;
                println!("same rows as duckdb alone: {}: NO: {e:#}", side.label);
            }
        }
    }
    all_same
}

/// The MariaDB movements: each side's destination has the [`DIGEST`] of the source table.
fn check_digests(setup: &Setup, sides: &[Side]) -> Result<bool> {
    let opts = setup.opts;
    let source = mariadb_digest(opts.database, &setup.source())?;
    println!(
        "source {}.{}: {}",
        opts.database,
        setup.source(),
        show_digest(&source)
    );
    let mut all_same = true;
    for side in sides.iter().filter(|s| !s.runs.is_empty()) {
        let digest = match opts.movement {
            Movement::MariadbDuckdb if side.role == Role::Limit => {
                println!(
                    "same rows as the source: {}: (reads to /dev/null)",
                    side.label
                );
                continue;
            }
            Movement::MariadbDuckdb => duckdb_digest(&setup.output(side)),
            _ => {
                let (db, table) = setup.mariadb_target(side);
                mariadb_digest(&db, &table)
            }
        };
        match digest.and_then(|d| same_digest(&source, &d).map(|()| d)) {
            Ok(_) => println!("same rows as the source: {}: yes", side.label),
            Err(e) => {
                all_same = false;
                println!("same rows as the source: {}: NO: {e:#}", side.label);
            }
        }
    }
    Ok(all_same)
}

/// [`DIGEST`] of a MariaDB table (NaN for a NULL sum).
fn mariadb_digest(db: &str, table: &str) -> Result<Vec<f64>> {
    let row = mysql_mixed::sql(
        Some(db),
        &format!("SELECT {} FROM `{table}`", DIGEST.join(", ")),
    )?;
    Ok(row
        .split('\t')
        .map(|v| v.parse().unwrap_or(f64::NAN))
        .collect())
}

/// [`DIGEST`] of the one table of a DuckDB file (see [`data_table`]).
fn duckdb_digest(db: &Path) -> Result<Vec<f64>> {
    let conn =
        duckdb::Connection::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    let table = data_table(&conn)?;
    let list = DIGEST
        .iter()
        .map(|e| format!("CAST({e} AS DOUBLE)"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(
        conn.query_row(&format!("SELECT {list} FROM {table}"), [], |r| {
            (0..DIGEST.len())
                .map(|i| Ok(r.get::<_, Option<f64>>(i)?.unwrap_or(f64::NAN)))
                .collect()
        })?,
    )
}

/// Equal digests: every figure the same, up to the rounding of a sum of doubles (a peer may
/// keep a DECIMAL column as DOUBLE).
fn same_digest(want: &[f64], got: &[f64]) -> Result<()> {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
    ensure!(
        want.len() == got.len() && want.iter().zip(got).all(|(a, b)| close(*a, *b)),
        "{} (the source: {})",
        show_digest(got),
        show_digest(want)
    );
    Ok(())
}

fn show_digest(digest: &[f64]) -> String {
    DIGEST
        .iter()
        .zip(digest)
        .map(|(e, v)| format!("{e} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one data table of a DuckDB file: not dlt's bookkeeping tables.
fn data_table(conn: &duckdb::Connection) -> Result<String> {
    Ok(conn.query_row(
        "SELECT table_schema || '.\"' || table_name || '\"' FROM information_schema.tables \
         WHERE table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' \
         ORDER BY table_name LIMIT 1",
        [],
        |r| r.get(0),
    )?)
}

/// The label of a peer of `movement`; an error for a peer that does not do its work.
fn peer_label(name: &str, movement: Movement) -> Result<String> {
    Ok(match (name, movement) {
        ("pandas" | "sling", Movement::GroupBy) | ("dlt", Movement::Table) => name.to_owned(),
        ("dlt", Movement::MariadbDuckdb) => "dlt (sql_database, connectorx)".to_owned(),
        // Its default streams over local HTTP into the duckdb CLI, which needs the httpfs
        // extension: not installable offline.
        ("sling", Movement::MariadbDuckdb) => "sling (named_pipes)".to_owned(),
        ("dlt", Movement::CsvMariadb) => "dlt (read_csv, sqlalchemy)".to_owned(),
        ("sling", Movement::CsvMariadb) => "sling".to_owned(),
        (other, movement) => bail!("no peer {other:?} for movement {movement:?}"),
    })
}

impl Side {
    fn new(label: &str, role: Role) -> Self {
        Self {
            label: label.to_owned(),
            role,
            runs: Vec::new(),
            steps: Vec::new(),
        }
    }
}

/// Runs one side once; its output replaces the previous run's.
fn run_side(setup: &Setup, side: &Side, run: u32) -> Result<(Measurement, Vec<(String, f64)>)> {
    let out = setup.output(side);
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(out.with_extension("duckdb.wal"));
    let _ = std::process::Command::new("sync").status();
    match &side.role {
        Role::Limit => Ok((run_limit(setup, &out, run)?, Vec::new())),
        Role::Osiris(materialize) => run_osiris(setup, side, *materialize, &out),
        Role::Peer(name) => {
            let (program, args) = peer_command(setup, side, name, &out, run)?;
            let m = run_measured(&setup.scratch, &program, &args)?.measurement;
            Ok((m, Vec::new()))
        }
    }
}

/// The physical limit: DuckDB alone (through this binary's `sql` subcommand), or the MariaDB
/// client.
fn run_limit(setup: &Setup, out: &Path, run: u32) -> Result<Measurement> {
    let opts = setup.opts;
    let mariadb = |args: Vec<String>| -> Result<Measurement> {
        // The rows go to /dev/null, not through the measuring wrapper's pipe.
        let mut argv = vec![
            "-c".to_owned(),
            "exec \"$0\" \"$@\" > /dev/null".to_owned(),
            "mariadb".to_owned(),
        ];
        argv.extend(CLIENT.iter().map(|a| (*a).to_owned()));
        argv.extend(args);
        Ok(run_measured(&setup.scratch, Path::new("/bin/sh"), &argv)?.measurement)
    };
    match opts.movement {
        Movement::MariadbDuckdb => {
            return mariadb(vec![
                "--quick".to_owned(),
                "--batch".to_owned(),
                opts.database.to_owned(),
                "-e".to_owned(),
                format!("SELECT * FROM `{}`", setup.source()),
            ]);
        }
        Movement::CsvMariadb => {
            return mariadb(vec![
                "--local-infile=1".to_owned(),
                opts.database.to_owned(),
                "-e".to_owned(),
                load_data(setup)?,
            ]);
        }
        Movement::Copy | Movement::Table | Movement::GroupBy => {}
    }
    let sql = match opts.movement {
        Movement::Table => {
            format!("CREATE TABLE t AS SELECT * FROM {}", setup.read_csv()?)
        }
        _ => format!(
            "COPY ({}) TO {} (FORMAT csv, HEADER)",
            setup.query(&setup.read_csv()?),
            sql_string(path_str(out)?)
        ),
    };
    let db = match opts.movement {
        Movement::Table => out.to_owned(),
        _ => setup.scratch.join(format!("limit-{run}.duckdb")),
    };
    let args = vec![
        "sql".to_owned(),
        "--db".to_owned(),
        path_str(&db)?.to_owned(),
        "--sql".to_owned(),
        sql,
    ];
    let this = std::env::current_exe()?;
    let m = run_measured(&setup.scratch, &this, &args)?.measurement;
    if opts.movement != Movement::Table {
        let _ = std::fs::remove_file(&db);
    }
    Ok(m)
}

/// `csv-mariadb`'s limit: `LOAD DATA LOCAL INFILE` of the input CSV (a header line, fields
/// quoted the RFC 4180 way, NULL as an empty field) into the limit's table, as a user would
/// write it: the nullable columns read through a variable, an empty field made NULL.
fn load_data(setup: &Setup) -> Result<String> {
    let opts = setup.opts;
    let columns = mysql_mixed::sql(
        Some(opts.database),
        &format!(
            "SELECT COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{}' ORDER BY ORDINAL_POSITION",
            setup.source()
        ),
    )?;
    let (mut list, mut set) = (Vec::new(), Vec::new());
    for line in columns.lines() {
        let (name, nullable) = line
            .split_once('\t')
            .with_context(|| format!("unexpected column line {line:?}"))?;
        if nullable == "YES" {
            list.push(format!("@`{name}`"));
            set.push(format!("`{name}` = NULLIF(@`{name}`, '')"));
        } else {
            list.push(format!("`{name}`"));
        }
    }
    let (_, table) = setup.mariadb_target(&Side::new("", Role::Limit));
    Ok(format!(
        "LOAD DATA LOCAL INFILE {} INTO TABLE `{table}` CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' \
         LINES TERMINATED BY '\\n' IGNORE 1 LINES ({}){}",
        sql_string(path_str(opts.input)?),
        list.join(", "),
        if set.is_empty() {
            String::new()
        } else {
            format!(" SET {}", set.join(", "))
        }
    ))
}

/// The MariaDB connection fields of an osiris step's config (flow mapping, no braces).
fn mariadb_config(database: &str) -> String {
    format!("host: 127.0.0.1, port: 3306, user: root, database: {database}")
}

/// `osiris run` of the movement's pipeline; the step durations it reported.
fn run_osiris(
    setup: &Setup,
    side: &Side,
    materialize: Option<&'static str>,
    out: &Path,
) -> Result<(Measurement, Vec<(String, f64)>)> {
    let opts = setup.opts;
    let pipeline = setup.scratch.join("pipeline.yaml");
    let materialize = materialize
        .map(|m| format!("\n      materialize: {m}"))
        .unwrap_or_default();
    let extract = match opts.movement {
        Movement::MariadbDuckdb => format!(
            "  - id: extract\n    component: mysql.extractor\n    mode: read\n    config: {{{}, table: {}}}\n",
            mariadb_config(opts.database),
            setup.source()
        ),
        _ => format!(
            "  - id: extract\n    component: filesystem.csv_extractor\n    mode: read\n    config:\n      path: {}{materialize}\n",
            yaml_string(path_str(opts.input)?)
        ),
    };
    let rest = match opts.movement {
        Movement::Table | Movement::MariadbDuckdb => String::new(),
        Movement::CsvMariadb => format!(
            "  - id: write\n    component: mysql.writer\n    mode: write\n    needs: [extract]\n    config: {{{}, table: {}}}\n",
            mariadb_config(opts.database),
            setup.mariadb_target(side).1
        ),
        Movement::Copy | Movement::GroupBy => format!(
            "  - id: aggregate\n    component: duckdb.processor\n    mode: transform\n    needs: [extract]\n    config:\n      query: {}\n  - id: write\n    component: filesystem.csv_writer\n    mode: write\n    needs: [aggregate]\n    config:\n      path: {}\n",
            yaml_string(&setup.query("extract")),
            yaml_string(path_str(out)?)
        ),
    };
    std::fs::write(
        &pipeline,
        format!("oml_version: \"0.1.0\"\nname: bench-movement\nsteps:\n{extract}{rest}"),
    )?;
    let sessions = setup.scratch.join("sessions");
    let _ = std::fs::remove_dir_all(&sessions);
    let args = vec![
        "run".to_owned(),
        path_str(&pipeline)?.to_owned(),
        "--sessions-dir".to_owned(),
        path_str(&sessions)?.to_owned(),
        "--json".to_owned(),
    ];
    let measured = run_measured(&setup.scratch, opts.osiris, &args)?;
    let summary: Value = serde_json::from_str(&measured.stdout)
        .with_context(|| format!("no JSON from osiris: {}", measured.stderr))?;
    ensure!(summary["status"] == "ok", "osiris run failed: {summary}");
    let steps = summary["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s["step_id"].as_str()?.to_owned(),
                s["duration_ms"].as_u64()? as f64 / 1000.0,
            ))
        })
        .collect();
    if opts.movement.writes_duckdb() {
        let db = summary["database"].as_str().unwrap_or_default();
        std::fs::copy(db, out).context("cannot keep the run database")?;
    }
    let _ = std::fs::remove_dir_all(&sessions);
    Ok((measured.measurement, steps))
}

/// The command line of a peer from bench/peers (checked by [`peer_label`] first).
fn peer_command(
    setup: &Setup,
    side: &Side,
    name: &str,
    out: &Path,
    run: u32,
) -> Result<(PathBuf, Vec<String>)> {
    let opts = setup.opts;
    let python = opts.peers_venv.join("bin/python");
    let sling = path_str(&opts.peers_venv.join("bin/sling"))?.to_owned();
    let peers_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
    let script = |file: &str| -> Result<String> { Ok(path_str(&peers_dir.join(file))?.to_owned()) };
    let pipelines = path_str(&setup.scratch.join("dlt-pipelines"))?.to_owned();
    let mariadb_url = format!("{MARIADB_URL}/{}", opts.database);
    let env = Path::new("/usr/bin/env").to_owned();
    Ok(match (name, opts.movement) {
        ("pandas", Movement::GroupBy) => (
            python,
            vec![
                script("pandas_groupby.py")?,
                path_str(opts.input)?.to_owned(),
                path_str(out)?.to_owned(),
            ],
        ),
        ("sling", Movement::GroupBy) => (
            env,
            vec![
                format!(
                    "DUCKDB=duckdb://{}",
                    path_str(&setup.scratch.join(format!("sling-{run}.duckdb")))?
                ),
                sling,
                "run".to_owned(),
                "--src-conn".to_owned(),
                "DUCKDB".to_owned(),
                "--src-stream".to_owned(),
                setup.query(&setup.read_csv()?),
                "--tgt-object".to_owned(),
                format!("file://{}", path_str(out)?),
            ],
        ),
        ("dlt", Movement::Table) => (
            python,
            vec![
                script("dlt_csv_table.py")?,
                path_str(opts.input)?.to_owned(),
                path_str(out)?.to_owned(),
                pipelines,
            ],
        ),
        ("dlt", Movement::MariadbDuckdb) => (
            python,
            vec![
                script("dlt_mariadb_duckdb.py")?,
                mariadb_url,
                setup.source(),
                path_str(out)?.to_owned(),
                pipelines,
            ],
        ),
        ("sling", Movement::MariadbDuckdb) => (
            env,
            vec![
                format!("MARIADB={mariadb_url}"),
                format!("DUCKDB=duckdb://{}?copy_method=named_pipes", path_str(out)?),
                sling,
                "run".to_owned(),
                "--src-conn".to_owned(),
                "MARIADB".to_owned(),
                "--src-stream".to_owned(),
                format!("{}.{}", opts.database, setup.source()),
                "--tgt-conn".to_owned(),
                "DUCKDB".to_owned(),
                "--tgt-object".to_owned(),
                "main.t".to_owned(),
            ],
        ),
        ("dlt", Movement::CsvMariadb) => (
            python,
            vec![
                script("dlt_csv_mariadb.py")?,
                path_str(opts.input)?.to_owned(),
                mariadb_url,
                setup.mariadb_target(side).0,
                pipelines,
            ],
        ),
        ("sling", Movement::CsvMariadb) => {
            let (db, table) = setup.mariadb_target(side);
            (
                env,
                vec![
                    format!("MARIADB={mariadb_url}"),
                    sling,
                    "run".to_owned(),
                    "--src-stream".to_owned(),
                    format!("file://{}", path_str(opts.input)?),
                    // Sling reads an empty field as an empty string unless told.
                    "--src-options".to_owned(),
                    r#"{"empty_as_null": true}"#.to_owned(),
                    "--tgt-conn".to_owned(),
                    "MARIADB".to_owned(),
                    "--tgt-object".to_owned(),
                    format!("{db}.{table}"),
                ],
            )
        }
        (other, movement) => bail!("no peer {other:?} for movement {movement:?}"),
    })
}

/// Whether `side`'s result has the same rows as the limit's: for a CSV the same records, each
/// field the same text or (floats printed by another tool) the same number; for a DuckDB file
/// the same row count and the same order-independent hash of all rows of its one table.
fn same_result(movement: Movement, limit: &Path, side: &Path, exact: bool) -> Result<()> {
    if movement == Movement::Table {
        let digest = |db: &Path| -> Result<(i64, String)> {
            let conn = duckdb::Connection::open(db)
                .with_context(|| format!("cannot open {}", db.display()))?;
            let table = data_table(&conn)?;
            let columns: Vec<String> = {
                let mut stmt = conn.prepare(&format!(
                    "SELECT column_name FROM (DESCRIBE {table}) WHERE column_name NOT LIKE '\\_dlt%' ESCAPE '\\'"
                ))?;
                stmt.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()?
            };
            let list = columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            Ok(conn.query_row(
                &format!(
                    "SELECT count(*), CAST(sum(hash(x)) AS VARCHAR) FROM (SELECT {list} FROM {table}) x"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        };
        let (a, b) = (digest(limit)?, digest(side)?);
        ensure!(a.0 == b.0, "{} rows vs {} rows", b.0, a.0);
        ensure!(
            !exact || a.1 == b.1,
            "the same row count ({}) but other values (hash {} vs {})",
            a.0,
            b.1,
            a.1
        );
        return Ok(());
    }
    let read = |p: &Path| -> Result<Vec<csv::StringRecord>> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(p)
            .with_context(|| format!("cannot read {}", p.display()))?;
        Ok(reader.records().collect::<Result<_, _>>()?)
    };
    let (a, b) = (read(limit)?, read(side)?);
    ensure!(a.len() == b.len(), "{} lines vs {} lines", b.len(), a.len());
    for (i, (ra, rb)) in a.iter().zip(&b).enumerate() {
        let same = ra.len() == rb.len()
            && ra.iter().zip(rb.iter()).all(|(x, y)| {
                x == y
                    || matches!((x.parse::<f64>(), y.parse::<f64>()),
                        (Ok(p), Ok(q)) if (p - q).abs() <= 1e-9 * p.abs().max(1.0))
            });
        if !same {
            bail!("line {} differs: {:?} vs {:?}", i + 1, rb, ra);
        }
    }
    Ok(())
}

/// A debugging session on a kept run: one query on the extractor's step, as a user looking at
/// a failed run later would ask, on a session kept with each `materialize`.
fn debugging_session(setup: &Setup) -> Result<()> {
    let opts = setup.opts;
    println!("\ndebugging a kept run: `osiris sessions query` on the extractor's step");
    for materialize in ["view", "table"] {
        let pipeline = setup.scratch.join(format!("keep-{materialize}.yaml"));
        std::fs::write(
            &pipeline,
            format!(
                "oml_version: \"0.1.0\"\nname: bench-keep\nsteps:\n  - id: extract\n    component: filesystem.csv_extractor\n    mode: read\n    config:\n      path: {}\n      materialize: {materialize}\n",
                yaml_string(path_str(opts.input)?)
            ),
        )?;
        let sessions = setup.scratch.join(format!("keep-{materialize}"));
        let _ = std::fs::remove_dir_all(&sessions);
        let run = run_measured(
            &setup.scratch,
            opts.osiris,
            &[
                "run".into(),
                path_str(&pipeline)?.into(),
                "--sessions-dir".into(),
                path_str(&sessions)?.into(),
                "--session-id".into(),
                "kept".into(),
                "--json".into(),
            ],
        )?;
        for (what, sql) in [
            (
                "one row by id",
                "SELECT id, status, amount FROM extract WHERE id = 123456",
            ),
            (
                "an aggregate of 2 columns",
                "SELECT status, count(*), max(amount) FROM extract GROUP BY status ORDER BY 1",
            ),
            ("every column of 10 rows", "SELECT * FROM extract LIMIT 10"),
        ] {
            let query = run_measured(
                &setup.scratch,
                opts.osiris,
                &[
                    "sessions".into(),
                    "query".into(),
                    "kept".into(),
                    sql.into(),
                    "--sessions-dir".into(),
                    path_str(&sessions)?.into(),
                    "--format".into(),
                    "csv".into(),
                ],
            )?;
            println!(
                "  materialize: {materialize:<5}  run {:>6.2} s  query ({what}) {:>6.2} s, peak RSS {:>5.0} MiB",
                run.measurement.wall_s,
                query.measurement.wall_s,
                query.measurement.max_rss_kib as f64 / 1024.0
            );
        }
        let db = sessions.join("kept").join("pipeline_data.duckdb");
        println!(
            "  materialize: {materialize:<5}  kept run database {:.1} MiB",
            std::fs::metadata(&db).map_or(0.0, |m| m.len() as f64 / 1048576.0)
        );
        let _ = std::fs::remove_dir_all(&sessions);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_as_numbers_up_to_double_rounding() {
        let source = [1e6, 500000500000.0, 5000005000.0];
        // A peer that keeps DECIMAL(12,2) as DOUBLE sums with rounding error.
        assert!(same_digest(&source, &[1e6, 500000500000.0, 5000005000.000001]).is_ok());
        assert!(same_digest(&source, &[999_999.0, 500000500000.0, 5000005000.0]).is_err());
        // A NULL sum (an empty destination) is NaN: never equal.
        assert!(same_digest(&source, &[1e6, f64::NAN, 5000005000.0]).is_err());
        assert!(same_digest(&source, &source[..2]).is_err());
    }

    #[test]
    fn peers_exist_only_for_the_movements_they_do() {
        assert!(peer_label("dlt", Movement::MariadbDuckdb).is_ok());
        assert!(peer_label("sling", Movement::CsvMariadb).is_ok());
        assert!(peer_label("pandas", Movement::CsvMariadb).is_err());
        assert!(peer_label("dlt", Movement::GroupBy).is_err());
    }

    #[test]
    fn duckdb_digest_reads_the_data_table_not_dlt_bookkeeping() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d.duckdb");
        let conn = duckdb::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE _dlt_loads (x INT); INSERT INTO _dlt_loads VALUES (1);
             CREATE TABLE t AS SELECT i AS id, i % 10 AS qty, CAST(i / 100 AS DECIMAL(12,2)) AS amount,
               i / 2 AS price, i % 2 = 0 AS flag, CASE WHEN i % 5 = 0 THEN NULL ELSE 'n' END AS note,
               'abc' AS name FROM range(1, 11) r(i)",
        )
        .unwrap();
        drop(conn);
        let digest = duckdb_digest(&db).unwrap();
        assert_eq!(digest, vec![10.0, 55.0, 45.0, 0.55, 27.5, 5.0, 8.0, 30.0]);
    }
}
