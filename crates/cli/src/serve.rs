//! `osiris serve --pg ADDR`: kept sessions for SQL clients over the PostgreSQL wire protocol.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use execution_context::SecretString;
use sessions::SESSIONS_DIR;

use crate::outcome::Outcome;

/// Environment variable holding the password clients must use.
const PASSWORD_VAR: &str = "OSIRIS_PG_PASSWORD";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on for PostgreSQL clients (psql, drivers, BI tools), e.g.
    /// 127.0.0.1:5433. Clients log in with any user name and the password in
    /// OSIRIS_PG_PASSWORD (environment or .env).
    #[arg(long, value_name = "ADDR")]
    pg: SocketAddr,

    /// Listen on a non-loopback address (the server has no TLS: use only on trusted networks).
    #[arg(long)]
    allow_remote: bool,

    /// Attach this many most recent sessions as schemas on connect; `SELECT
    /// osiris_attach('<id>')` attaches any other.
    #[arg(long, default_value_t = pg_server::DEFAULT_ATTACH_RECENT)]
    attach_recent: usize,

    /// Directory that holds the session directories.
    #[arg(long, env = "OSIRIS_SESSIONS_DIR", default_value = SESSIONS_DIR)]
    sessions_dir: PathBuf,
}

pub fn execute(args: ServeArgs) -> anyhow::Result<Outcome> {
    let Some(password) = std::env::var(PASSWORD_VAR).ok().filter(|p| !p.is_empty()) else {
        return Ok(Outcome::input(format!(
            "set {PASSWORD_VAR} (in the environment or .env) to the password PostgreSQL clients must use"
        )));
    };
    let root = std::path::absolute(&args.sessions_dir).unwrap_or(args.sessions_dir);
    let mut config =
        pg_server::ServerConfig::new(args.pg, root.clone(), SecretString::new(password));
    config.allow_remote = args.allow_remote;
    config.attach_recent = args.attach_recent;
    let runtime = tokio::runtime::Runtime::new()?;
    Ok(runtime.block_on(async {
        let server = match pg_server::bind(config).await {
            Ok(server) => server,
            Err(error) => return Outcome::input(error.to_string()),
        };
        let addr = server.local_addr();
        println!(
            "Serving sessions of {} on postgresql://osiris@{addr}/osiris (read-only; Ctrl-C stops)",
            root.display()
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.cancel();
            }
        });
        // The listener failing (say, out of file descriptors) is the machine's, not a bug.
        match server.run(shutdown).await {
            Ok(()) => Outcome::ok(),
            Err(error) => Outcome::failed(
                driver_api::ErrorClass::Io,
                format!("the server stopped: {error}"),
            ),
        }
    }))
}
