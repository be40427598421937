//! Wall time and peak memory of one child process, measured the same way for every side.
//!
//! Peak RSS comes from `getrusage(RUSAGE_CHILDREN)`, which reports the largest peak among the
//! children a process has waited for. To get it per run, every measured command runs under a
//! fresh `bench-csv measure` wrapper process whose only child is that command; the wrapper writes
//! the figures to a small JSON file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};
use serde::{Deserialize, Serialize};

/// What the wrapper measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// From spawning the child to reaping it, in seconds.
    pub wall_s: f64,
    /// Peak resident set size of the child (and its own children), in KiB.
    pub max_rss_kib: i64,
    /// The child's exit code; `None` when a signal killed it.
    pub exit_code: Option<i32>,
}

/// `bench-csv measure --report <file> -- <program> [args...]`: runs the program with inherited
/// stdio and writes a [`Measurement`] to `report`.
pub fn wrapper_main(report: &Path, command: &[String]) -> Result<()> {
    let (program, args) = command
        .split_first()
        .context("measure: no command given after --")?;
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("measure: cannot start {program}"))?;
    let wall_s = start.elapsed().as_secs_f64();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("measure: getrusage")?;
    let measurement = Measurement {
        wall_s,
        max_rss_kib: usage.max_rss(),
        exit_code: status.code(),
    };
    let json = serde_json::to_string(&measurement)?;
    std::fs::write(report, json)
        .with_context(|| format!("measure: cannot write {}", report.display()))?;
    Ok(())
}

/// A finished measured run: the figures and what the child printed.
pub struct Measured {
    pub measurement: Measurement,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` under the measuring wrapper (this executable), capturing its output.
/// Fails when the command did not exit with status 0, showing what it printed.
pub fn run_measured(report_dir: &Path, program: &Path, args: &[String]) -> Result<Measured> {
    let this = std::env::current_exe().context("cannot locate the bench-csv executable")?;
    let report: PathBuf = report_dir.join("measurement.json");
    // A stale report must never pass for this run's.
    match std::fs::remove_file(&report) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", report.display())),
    }
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(&this)
        .arg("measure")
        .arg("--report")
        .arg(&report)
        .arg("--")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {}", this.display()))?;
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let shown = || {
        format!(
            "command: {} {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            program.display(),
            args.join(" "),
            tail(&stdout),
            tail(&stderr)
        )
    };
    if !status.success() {
        bail!("the measuring wrapper failed ({status})\n{}", shown());
    }
    let text = std::fs::read_to_string(&report)
        .with_context(|| format!("the measuring wrapper left no report\n{}", shown()))?;
    let measurement: Measurement = serde_json::from_str(&text)
        .with_context(|| format!("unreadable measurement report {}", report.display()))?;
    if measurement.exit_code != Some(0) {
        let how = measurement.exit_code.map_or_else(
            || "was killed by a signal".to_owned(),
            |c| format!("exited with {c}"),
        );
        bail!("the measured command {how}\n{}", shown());
    }
    Ok(Measured {
        measurement,
        stdout,
        stderr,
    })
}

/// The last lines of a long output, so that an error stays readable.
fn tail(text: &str) -> &str {
    const MAX: usize = 4000;
    if text.len() <= MAX {
        return text;
    }
    let mut cut = text.len() - MAX;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    &text[cut..]
}
