//! Wall time and peak memory of one child process, measured the same way for every side.
//!
//! Peak RSS comes from `getrusage(RUSAGE_CHILDREN)`, which reports the largest peak among the
//! children a process has waited for. To get it per run, every measured command runs under a
//! fresh `bench-csv measure` wrapper process whose only child is that command; the wrapper writes
//! the figures to a small JSON file.
//!
//! The machine may be shared (other builds on two cores make wall times meaningless), so the
//! wrapper also records the child's CPU time and the CPU time the whole machine spent during the
//! run (`/proc/stat`): the difference is what other processes took, reported as noise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;
use serde::{Deserialize, Serialize};

/// What the wrapper measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// From spawning the child to reaping it, in seconds.
    pub wall_s: f64,
    /// Peak resident set size of the child (and its own children), in KiB.
    pub max_rss_kib: i64,
    /// User + system CPU time of the child (and its own children), in seconds.
    pub cpu_s: f64,
    /// CPU time the whole machine was busy during the run (all CPUs, including steal), in
    /// seconds; `None` without a readable `/proc/stat`.
    pub machine_busy_s: Option<f64>,
    /// The child's exit code; `None` when a signal killed it.
    pub exit_code: Option<i32>,
}

impl Measurement {
    /// CPU seconds other processes (or the hypervisor) took during the run.
    pub fn noise_s(&self) -> Option<f64> {
        self.machine_busy_s.map(|busy| (busy - self.cpu_s).max(0.0))
    }
}

/// Busy and total CPU time of the machine so far, in seconds, from the first line of
/// `/proc/stat` (USER_HZ is 100 on Linux).
pub fn machine_cpu_times() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let field = |i: usize| ticks.get(i).copied().unwrap_or(0);
    let idle = field(3) + field(4);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    Some((busy as f64 / 100.0, (busy + idle) as f64 / 100.0))
}

/// Before a timed run: writes the page cache's dirty data back (`sync`), so that a run's own
/// fsyncs do not wait behind the previous run's files, then [`wait_for_quiet`] unless
/// `threshold` is 1.0 or more (the bench's `--quiet-threshold`; `max_wait_s` is its
/// `--max-wait`).
pub fn settle(threshold: f64, max_wait_s: u64) {
    let _ = std::process::Command::new("sync").status();
    if threshold < 1.0 {
        wait_for_quiet(threshold, Duration::from_secs(max_wait_s));
    }
}

/// Waits until the other processes on the machine use less than `threshold` of its CPUs
/// (sampled over 2 s), at most `max_wait`. Returns the busy fraction last seen and whether the
/// machine was quiet.
pub fn wait_for_quiet(threshold: f64, max_wait: Duration) -> (f64, bool) {
    let start = Instant::now();
    let mut announced = false;
    loop {
        let Some(before) = machine_cpu_times() else {
            return (0.0, true);
        };
        std::thread::sleep(Duration::from_secs(2));
        let Some(after) = machine_cpu_times() else {
            return (0.0, true);
        };
        let total = after.1 - before.1;
        let busy = if total > 0.0 {
            (after.0 - before.0) / total
        } else {
            0.0
        };
        if busy < threshold {
            return (busy, true);
        }
        if start.elapsed() >= max_wait {
            println!(
                "     (machine still {:.0}% busy after waiting {} s; measuring anyway)",
                busy * 100.0,
                max_wait.as_secs()
            );
            return (busy, false);
        }
        if !announced {
            println!(
                "     (machine {:.0}% busy with other processes; waiting up to {} s for it to quiet down)",
                busy * 100.0,
                max_wait.as_secs()
            );
            announced = true;
        }
    }
}

/// `bench-csv measure --report <file> -- <program> [args...]`: runs the program with inherited
/// stdio and writes a [`Measurement`] to `report`.
pub fn wrapper_main(report: &Path, command: &[String]) -> Result<()> {
    let (program, args) = command
        .split_first()
        .context("measure: no command given after --")?;
    let machine_before = machine_cpu_times();
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("measure: cannot start {program}"))?;
    let wall_s = start.elapsed().as_secs_f64();
    let machine_after = machine_cpu_times();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("measure: getrusage")?;
    let seconds = |t: nix::sys::time::TimeVal| t.num_microseconds() as f64 / 1e6;
    let measurement = Measurement {
        wall_s,
        max_rss_kib: usage.max_rss(),
        cpu_s: seconds(usage.user_time()) + seconds(usage.system_time()),
        machine_busy_s: machine_before
            .zip(machine_after)
            .map(|(before, after)| after.0 - before.0),
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
