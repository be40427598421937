//! A read-only PostgreSQL wire protocol server over kept run sessions (`osiris serve --pg`).
//!
//! Every client gets its own in-memory DuckDB database into which the most recent finished
//! sessions are attached READ_ONLY, one schema per session id (sessions that finish later are
//! attached as they appear), plus a table `osiris_sessions` listing every session and a
//! PostgreSQL catalog over them (ADR 0029). `SELECT osiris_attach('<id>')` attaches any other
//! session. Queries are translated from PostgreSQL to DuckDB SQL on sqlparser's syntax tree;
//! statements that could write are refused with SQLSTATE 25006. Both the simple and the
//! extended query protocol are answered (pgwire does the framing), rows stream as DuckDB
//! produces them; a password (MD5) guards the login.
#![warn(missing_docs)]

/// `ToSqlText` of a newtype over the text PostgreSQL's text format carries as it is (`numeric`,
/// `uuid`): the text itself, with nothing to escape. Their binary forms differ and stay theirs.
macro_rules! text_as_is {
    ($newtype:ty) => {
        impl pgwire::types::ToSqlText for $newtype {
            fn to_sql_text(
                &self,
                _: &pgwire::api::Type,
                out: &mut bytes::BytesMut,
                _: &pgwire::types::format::FormatOptions,
            ) -> Result<postgres_types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                bytes::BufMut::put_slice(out, self.0.as_bytes());
                Ok(postgres_types::IsNull::No)
            }
        }
    };
}

mod backend;
mod encode;
mod handler;
mod numeric;
mod params;
mod settings;
mod sql;
mod stream;
mod translate;
mod uuid;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use execution_context::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Sessions attached at connect time when the config does not say.
pub const DEFAULT_ATTACH_RECENT: usize = 10;

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address is not a loopback address and remote access was not allowed.
    #[error(
        "refusing to listen on {0}: it is not a loopback address and the server has no TLS; \
         allow remote access explicitly to listen there"
    )]
    RemoteNotAllowed(SocketAddr),
    /// No password was configured.
    #[error("a password is required to serve sessions over the PostgreSQL protocol")]
    NoPassword,
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Accepting a connection failed.
    #[error("cannot accept a connection: {0}")]
    Accept(std::io::Error),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; must be loopback unless `allow_remote` is set.
    pub addr: SocketAddr,
    /// Directory holding the session directories.
    pub sessions_root: PathBuf,
    /// The password clients must give (any user name is accepted).
    pub password: SecretString,
    /// How many of the most recent finished sessions each client sees attached.
    pub attach_recent: usize,
    /// Listen on a non-loopback address too.
    pub allow_remote: bool,
}

impl ServerConfig {
    /// A config with the defaults: `attach_recent` = [`DEFAULT_ATTACH_RECENT`], loopback only.
    pub fn new(addr: SocketAddr, sessions_root: PathBuf, password: SecretString) -> Self {
        Self {
            addr,
            sessions_root,
            password,
            attach_recent: DEFAULT_ATTACH_RECENT,
            allow_remote: false,
        }
    }
}

/// A bound server, not yet accepting.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: Arc<ServerConfig>,
}

/// Binds the listening socket (port 0 picks a free port).
pub async fn bind(config: ServerConfig) -> Result<Server> {
    if !config.addr.ip().is_loopback() && !config.allow_remote {
        return Err(Error::RemoteNotAllowed(config.addr));
    }
    if config.password.is_empty() {
        return Err(Error::NoPassword);
    }
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| Error::Bind {
            addr: config.addr,
            source,
        })?;
    Ok(Server {
        listener,
        config: Arc::new(config),
    })
}

impl Server {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.addr)
    }

    /// Accepts clients until `shutdown` is cancelled; open connections are dropped then.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let connections = tokio_util::task::TaskTracker::new();
        let shared = handler::Shared::default();
        loop {
            let (socket, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    // A client that resets before accept is no reason to stop serving.
                    Err(e) if is_transient(&e) => continue,
                    Err(e) => return Err(Error::Accept(e)),
                },
            };
            let handlers = Arc::new(handler::Handlers::new(Arc::clone(&self.config), &shared));
            let shutdown = shutdown.clone();
            connections.spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    result = pgwire::tokio::process_socket(socket, None, handlers) => {
                        if let Err(error) = result {
                            tracing::debug!(%peer, %error, "client connection ended with an error");
                        }
                    }
                }
            });
        }
        connections.close();
        connections.wait().await;
        Ok(())
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

/// Binds and serves until `shutdown` is cancelled. Prints nothing.
pub async fn serve(config: ServerConfig, shutdown: CancellationToken) -> Result<()> {
    bind(config).await?.run(shutdown).await
}
