//! `osiris worker`: runs the steps of `osiris run --target remote` hosts (docs/protocol.md).

use std::path::PathBuf;
use std::time::Duration;

use adapter_remote::worker::{WorkerOptions, listen, serve_stdio};
use clap::Args;

use crate::load::{DuckDbArgs, engine};
use crate::outcome::Outcome;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("transport").required(true).args(["stdio", "listen"]))]
pub struct WorkerArgs {
    /// Speak the protocol on stdin/stdout (for a child process, ssh or kubectl exec -i).
    #[arg(long)]
    stdio: bool,

    /// Accept hosts on ADDR (e.g. 127.0.0.1:7700); each must present the token of --token-file.
    #[arg(long, value_name = "ADDR", requires = "token_file")]
    listen: Option<String>,

    /// File holding the token hosts must present (--listen).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,

    /// Directory for the worker's session directories (default: <temp dir>/osiris-worker-sessions).
    #[arg(long, env = "OSIRIS_WORKER_SESSIONS_DIR", value_name = "DIR")]
    sessions_dir: Option<PathBuf>,

    /// Resolve relative paths of step configs against DIR instead of the host's pipeline
    /// directory.
    #[arg(long, value_name = "DIR")]
    base_dir: Option<PathBuf>,

    #[command(flatten)]
    duckdb: DuckDbArgs,
}

pub fn execute(args: WorkerArgs) -> anyhow::Result<Outcome> {
    args.duckdb.apply();
    let engine = engine()?;
    let sessions_root = args
        .sessions_dir
        .unwrap_or_else(adapter_remote::worker::default_sessions_root);
    let sessions_root = std::path::absolute(&sessions_root).unwrap_or(sessions_root);
    let options = WorkerOptions {
        sessions_root,
        base_dir: args.base_dir,
        heartbeat: Duration::from_secs(1),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let result = match (&args.listen, &args.token_file) {
        (Some(addr), Some(file)) => {
            let token = match std::fs::read_to_string(file) {
                Ok(token) if !token.trim().is_empty() => token.trim().to_owned(),
                Ok(_) => {
                    return Ok(Outcome::input(format!(
                        "--token-file {} is empty",
                        file.display()
                    )));
                }
                Err(e) => {
                    return Ok(Outcome::input(format!(
                        "cannot read --token-file {}: {e}",
                        file.display()
                    )));
                }
            };
            runtime.block_on(async {
                tokio::select! {
                    result = listen(engine, addr, token, options) => result,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        }
        _ => runtime.block_on(serve_stdio(engine, options)),
    };
    // The thread blocked reading stdin cannot be interrupted: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => Ok(Outcome::ok()),
        Err(error) => Ok(Outcome::input(format!("worker: {error}"))),
    }
}
