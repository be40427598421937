//! The file movements of issue 16, side by side in one run: `csv-table` (CSV -> DuckDB table)
//! and `csv-groupby-csv` (CSV -> GROUP BY -> CSV), each against its physical limit (DuckDB
//! alone, through this binary's libduckdb, the same library osiris links) and the peers a user
//! would install from PyPI (bench/peers/setup.sh: Sling's PyPI binary, pandas, dlt).
//!
//! Every side is one process under the same measuring wrapper (wall time, CPU, peak RSS, CPU
//! taken by other processes). Sides alternate order per run; medians are printed with the ratio
//! to the limit, and each side's result is checked against the limit's: the same rows.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::baseline::sql_string;
use crate::measure::{self, Measurement, run_measured};
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
    pub input: &'a Path,
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
        match self.opts.movement {
            Movement::Table => self.scratch.join(format!("{name}.duckdb")),
            _ => self.scratch.join(format!("{name}.csv")),
        }
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
    let mut sides = vec![Side::new("duckdb alone", Role::Limit)];
    match opts.movement {
        Movement::Table => sides.push(Side::new(
            "osiris (materialize: table)",
            Role::Osiris(Some("table")),
        )),
        _ => {
            sides.push(Side::new("osiris (default)", Role::Osiris(None)));
            sides.push(Side::new(
                "osiris (materialize: table)",
                Role::Osiris(Some("table")),
            ));
        }
    }
    for peer in opts.peers {
        sides.push(Side::new(peer, Role::Peer(peer.clone())));
    }
    crate::data::warm_page_cache(opts.input)?;
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
        match opts.movement {
            Movement::Table => "CSV -> DuckDB table",
            _ => "CSV -> GROUP BY -> CSV",
        },
        opts.rows,
        opts.runs,
        opts.peer_runs.min(opts.runs)
    );
    println!(
        "{:<30} {:>9} {:>8} {:>9} {:>12}  steps (s)",
        "side", "wall s", "ratio", "cpu s", "peak RSS MiB"
    );
    let reference = setup.output(&sides[0]);
    let mut all_same = true;
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
            "{:<30} {:>9.2} {:>7.2}x {:>9.2} {:>12.0}  {steps}",
            side.label,
            wall,
            wall / limit,
            median(side.runs.iter().map(|m| m.cpu_s)),
            median(side.runs.iter().map(|m| m.max_rss_kib as f64 / 1024.0)),
        );
    }
    println!();
    for side in sides.iter().skip(1).filter(|s| !s.runs.is_empty()) {
        // A peer's table has its own types (dlt: no DATE, its own columns): its row count is
        // compared, osiris's rows and types exactly.
        let exact = opts.movement != Movement::Table || !matches!(side.role, Role::Peer(_));
        let verdict = same_result(opts.movement, &reference, &setup.output(side), exact);
        match verdict {
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
    if let Some(default) = sides.iter().find(|s| s.role == Role::Osiris(None)) {
        let wall = median(default.runs.iter().map(|m| m.wall_s));
        let verdict = if wall / limit <= opts.goal {
            "MET"
        } else {
            "NOT MET"
        };
        println!(
            "goal: osiris with default settings within {:.2}x of DuckDB alone: {verdict} ({:.3}x)",
            opts.goal,
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
    let opts = setup.opts;
    let this = std::env::current_exe()?;
    match &side.role {
        Role::Limit => {
            let sql = match opts.movement {
                Movement::Table => {
                    format!("CREATE TABLE t AS SELECT * FROM {}", setup.read_csv()?)
                }
                _ => format!(
                    "COPY ({}) TO {} (FORMAT csv, HEADER)",
                    setup.query(&setup.read_csv()?),
                    sql_string(path_str(&out)?)
                ),
            };
            let db = match opts.movement {
                Movement::Table => out.clone(),
                _ => setup.scratch.join(format!("limit-{run}.duckdb")),
            };
            let args = vec![
                "sql".to_owned(),
                "--db".to_owned(),
                path_str(&db)?.to_owned(),
                "--sql".to_owned(),
                sql,
            ];
            let m = run_measured(&setup.scratch, &this, &args)?.measurement;
            if opts.movement != Movement::Table {
                let _ = std::fs::remove_file(&db);
            }
            Ok((m, Vec::new()))
        }
        Role::Osiris(materialize) => {
            let pipeline = setup.scratch.join("pipeline.yaml");
            let materialize = materialize
                .map(|m| format!("\n      materialize: {m}"))
                .unwrap_or_default();
            let extract = format!(
                "  - id: extract\n    component: filesystem.csv_extractor\n    mode: read\n    config:\n      path: {}{materialize}\n",
                yaml_string(path_str(opts.input)?)
            );
            let rest = match opts.movement {
                Movement::Table => String::new(),
                _ => format!(
                    "  - id: aggregate\n    component: duckdb.processor\n    mode: transform\n    needs: [extract]\n    config:\n      query: {}\n  - id: write\n    component: filesystem.csv_writer\n    mode: write\n    needs: [aggregate]\n    config:\n      path: {}\n",
                    yaml_string(&setup.query("extract")),
                    yaml_string(path_str(&out)?)
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
            if opts.movement == Movement::Table {
                let db = summary["database"].as_str().unwrap_or_default();
                std::fs::copy(db, &out).context("cannot keep the run database")?;
            }
            let _ = std::fs::remove_dir_all(&sessions);
            Ok((measured.measurement, steps))
        }
        Role::Peer(name) => {
            let python = opts.peers_venv.join("bin/python");
            let peers_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
            let (program, args): (PathBuf, Vec<String>) = match (name.as_str(), opts.movement) {
                ("pandas", Movement::GroupBy) => (
                    python,
                    vec![
                        path_str(&peers_dir.join("pandas_groupby.py"))?.to_owned(),
                        path_str(opts.input)?.to_owned(),
                        path_str(&out)?.to_owned(),
                    ],
                ),
                ("sling", Movement::GroupBy) => (
                    Path::new("/usr/bin/env").to_owned(),
                    vec![
                        format!(
                            "DUCKDB=duckdb://{}",
                            path_str(&setup.scratch.join(format!("sling-{run}.duckdb")))?
                        ),
                        path_str(&opts.peers_venv.join("bin/sling"))?.to_owned(),
                        "run".to_owned(),
                        "--src-conn".to_owned(),
                        "DUCKDB".to_owned(),
                        "--src-stream".to_owned(),
                        setup.query(&setup.read_csv()?),
                        "--tgt-object".to_owned(),
                        format!("file://{}", path_str(&out)?),
                    ],
                ),
                ("dlt", Movement::Table) => (
                    python,
                    vec![
                        path_str(&peers_dir.join("dlt_csv_table.py"))?.to_owned(),
                        path_str(opts.input)?.to_owned(),
                        path_str(&out)?.to_owned(),
                        path_str(&setup.scratch.join("dlt-pipelines"))?.to_owned(),
                    ],
                ),
                (other, movement) => bail!("no peer {other:?} for movement {movement:?}"),
            };
            let m = run_measured(&setup.scratch, &program, &args)?.measurement;
            Ok((m, Vec::new()))
        }
    }
}

/// Whether `side`'s result has the same rows as the limit's: for a CSV the same records, each
/// field the same text or (floats printed by another tool) the same number; for a DuckDB file
/// the same row count and the same order-independent hash of all rows of its one table.
fn same_result(movement: Movement, limit: &Path, side: &Path, exact: bool) -> Result<()> {
    if movement == Movement::Table {
        let digest = |db: &Path| -> Result<(i64, String)> {
            let conn = duckdb::Connection::open(db)
                .with_context(|| format!("cannot open {}", db.display()))?;
            let table: String = conn.query_row(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                 WHERE table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' \
                 ORDER BY table_name LIMIT 1",
                [],
                |r| r.get(0),
            )?;
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
