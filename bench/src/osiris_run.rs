//! Running `osiris run --json` and shell commands under the measuring wrapper, for the database
//! benchmarks (bench-mysql, bench-postgres).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::measure::{Measurement, run_measured};

/// `osiris run <pipeline> --json` with its sessions under `out/sessions`: the measurement, the
/// duration of step `step` in seconds, and the run database. `keep: false` removes the session.
pub fn osiris(
    out: &Path,
    osiris: &Path,
    pipeline: &Path,
    step: &str,
    keep: bool,
) -> Result<(Measurement, f64, PathBuf)> {
    osiris_with(out, osiris, pipeline, step, keep, &[])
}

/// Like [`osiris`], with `extra` arguments for `osiris run` (e.g. `--jobs 5`).
#[allow(
    dead_code,
    reason = "bench-parallel passes --jobs; the other benchmarks do not"
)]
pub fn osiris_with(
    out: &Path,
    osiris: &Path,
    pipeline: &Path,
    step: &str,
    keep: bool,
    extra: &[&str],
) -> Result<(Measurement, f64, PathBuf)> {
    let sessions = out.join("sessions");
    let _ = std::fs::remove_dir_all(&sessions);
    let mut args = vec![
        "run".to_owned(),
        pipeline.display().to_string(),
        "--sessions-dir".to_owned(),
        sessions.display().to_string(),
        "--json".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let measured = run_measured(out, osiris, &args).context("osiris run failed")?;
    let summary: Value = serde_json::from_str(&measured.stdout)
        .with_context(|| format!("no JSON from osiris: {}", measured.stderr))?;
    ensure!(summary["status"] == "ok", "osiris run failed: {summary}");
    let ms = summary["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step_id"] == step))
        .and_then(|s| s["duration_ms"].as_u64())
        .with_context(|| format!("no duration for step {step}: {summary}"))?;
    let database = PathBuf::from(summary["database"].as_str().unwrap_or_default());
    if !keep {
        let _ = std::fs::remove_dir_all(&sessions);
    }
    Ok((measured.measurement, ms as f64 / 1000.0, database))
}

/// A shell command under the measuring wrapper.
pub fn shell(out: &Path, command: &str) -> Result<Measurement> {
    let args = vec!["-c".to_owned(), command.to_owned()];
    Ok(run_measured(out, Path::new("/bin/sh"), &args)?.measurement)
}
