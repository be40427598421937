//! `bench-remote`: per-step overhead of `osiris run --target remote` (worker over stdio, the
//! default child process) against the same pipeline run locally: a chain of tiny DuckDB steps.
//!
//! Hand-run (see `bench/remote.sh`). Goal (issue 7): under 20 ms of overhead per step.

mod stats;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    name = "bench-remote",
    about = "Per-step overhead of a remote run over stdio against the same pipeline run locally."
)]
struct Cli {
    /// The `osiris` binary to benchmark [default: `osiris` next to this executable].
    #[arg(long, env = "OSIRIS_BIN")]
    osiris: Option<PathBuf>,
    /// Steps in the pipeline (each a tiny duckdb.processor reading the previous one).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    steps: u32,
    /// Runs of each side; medians are reported.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// The goal, in milliseconds of overhead per step.
    #[arg(long, default_value_t = 20.0)]
    goal_ms: f64,
    /// Exit with status 1 when the goal is missed.
    #[arg(long)]
    require_goal: bool,
}

struct Sample {
    wall_ms: f64,
    run_ms: f64,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("bench-remote: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let cli = Cli::parse();
    let osiris = match cli.osiris {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("osiris"),
    };
    // Runs happen in a scratch directory: a relative path would not resolve there.
    let osiris = std::path::absolute(&osiris)?;
    let dir = tempfile::tempdir()?;
    let mut yaml = String::from("oml_version: \"0.1.0\"\nname: tiny-chain\nsteps:\n");
    yaml.push_str("  - {id: s1, component: duckdb.processor, mode: transform, config: {query: \"SELECT 1 AS x\"}}\n");
    for i in 2..=cli.steps {
        yaml.push_str(&format!(
            "  - {{id: s{i}, component: duckdb.processor, mode: transform, needs: [s{}], config: {{query: \"SELECT x + 1 AS x FROM s{}\"}}}}\n",
            i - 1,
            i - 1
        ));
    }
    std::fs::write(dir.path().join("pipeline.yaml"), yaml)?;
    let mut local = Vec::new();
    let mut remote = Vec::new();
    // Warm-up (page cache, binary), then alternate sides.
    measure(&osiris, dir.path(), false, "warm-local")?;
    measure(&osiris, dir.path(), true, "warm-remote")?;
    for i in 0..cli.runs {
        local.push(measure(&osiris, dir.path(), false, &format!("l{i}"))?);
        remote.push(measure(&osiris, dir.path(), true, &format!("r{i}"))?);
    }
    let steps = f64::from(cli.steps);
    let median = |v: &[Sample], f: fn(&Sample) -> f64| stats::median(v.iter().map(f));
    let (lw, rw) = (
        median(&local, |s| s.wall_ms),
        median(&remote, |s| s.wall_ms),
    );
    let (lr, rr) = (median(&local, |s| s.run_ms), median(&remote, |s| s.run_ms));
    println!("{} steps, {} runs per side, medians:", cli.steps, cli.runs);
    println!("| side | wall ms | step loop ms (status.json duration_ms) |");
    println!("|---|---|---|");
    println!("| local | {lw:.1} | {lr:.1} |");
    println!("| remote (stdio child) | {rw:.1} | {rr:.1} |");
    let per_step_loop = (rr - lr) / steps;
    let per_step_wall = (rw - lw) / steps;
    println!(
        "overhead per step: {per_step_loop:.2} ms in the step loop; {per_step_wall:.2} ms of wall time including worker start, handshake and pull-back ({:.1} ms in all)",
        rw - lw
    );
    let met = per_step_wall < cli.goal_ms;
    println!(
        "goal (< {} ms per step, wall): {}",
        cli.goal_ms,
        if met { "met" } else { "MISSED" }
    );
    Ok(met || !cli.require_goal)
}

fn measure(osiris: &Path, dir: &Path, remote: bool, id: &str) -> Result<Sample> {
    let mut command = Command::new(osiris);
    command
        .args(["run", "pipeline.yaml", "--json", "--session-id", id])
        .current_dir(dir);
    if remote {
        command.args(["--target", "remote"]);
    }
    let started = Instant::now();
    let output = command.output().context("running osiris")?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    ensure!(
        output.status.success(),
        "osiris failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout)?;
    let run_ms = summary["duration_ms"].as_f64().context("no duration_ms")?;
    Ok(Sample { wall_ms, run_ms })
}
