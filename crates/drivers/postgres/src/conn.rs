//! The `@postgres` connection ([`PostgresConnection`], shared by the extractor and the writer)
//! and connecting with it through `pg-support` (TLS, error classes without hosts, users or
//! passwords).

use std::path::{Path, PathBuf};
use std::time::Duration;

use driver_api::{DriverError, Result, SecretString};
use pg_support::tokio_postgres::{self, Client};
use serde::Deserialize;

/// TLS for the connection, with libpq's `sslmode` names and meaning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, plain TCP otherwise.
    #[default]
    Prefer,
    /// TLS or fail; the certificate is not checked.
    Require,
    /// TLS, and the certificate must chain to the Mozilla roots or to `sslrootcert` and name
    /// the host.
    VerifyFull,
}

/// A `@postgres` connection: the spec's `x-connection-fields`. Either `dsn` or the separate
/// fields (`host`, `database`, `user`, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConnection {
    /// Server host name or IP address.
    #[serde(default)]
    pub host: String,
    /// Server TCP port. Default 5432.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Database to connect to.
    #[serde(default)]
    pub database: String,
    /// User name.
    #[serde(default)]
    pub user: String,
    /// Password of `user`; not set = no password.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// TLS mode. Default `prefer`.
    #[serde(default)]
    pub sslmode: SslMode,
    /// PEM file of CA certificates trusted besides the Mozilla roots. A run resolves a
    /// relative path against the pipeline file's directory.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// A whole connection string (`postgresql://user:password@host:5432/db?sslmode=require`
    /// or `key=value` pairs) instead of the separate fields.
    #[serde(default)]
    pub dsn: Option<SecretString>,
    /// Seconds for the TCP connection and the login. Default 10.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: u64,
}

fn default_port() -> u16 {
    5432
}
fn default_connect_timeout() -> u64 {
    10
}

impl PostgresConnection {
    /// Resolves a relative `sslrootcert` against `base` (a run's pipeline directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(ca) = &mut self.sslrootcert {
            *ca = base.join(&*ca);
        }
    }

    /// The `tokio_postgres` configuration: from `dsn`, or from the separate fields (then
    /// host, database and user are required). Setting both is a config error.
    pub fn config(&self) -> Result<tokio_postgres::Config> {
        if let Some(dsn) = &self.dsn {
            if !self.host.is_empty() || !self.user.is_empty() || self.password.is_some() {
                return Err(DriverError::config(
                    "dsn",
                    "set either `dsn` or host/user/password, not both",
                ));
            }
            return pg_support::parse_dsn(dsn, "dsn");
        }
        if self.port == 0 {
            return Err(DriverError::config("port", "must be a TCP port (1..65535)"));
        }
        for (key, value) in [
            ("host", &self.host),
            ("database", &self.database),
            ("user", &self.user),
        ] {
            if value.is_empty() {
                return Err(DriverError::config(
                    key,
                    "is required: set it (or `dsn`) in the @postgres connection or the step's config",
                ));
            }
        }
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .dbname(&self.database)
            .user(&self.user)
            .application_name("osiris")
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        Ok(config)
    }

    /// Opens one connection, within `connect_timeout`.
    pub async fn connect(&self) -> Result<Client> {
        let config = self.config()?;
        pg_support::connect(
            config,
            Duration::from_secs(self.connect_timeout.max(1)),
            self.sslrootcert.as_deref(),
            if self.sslmode == SslMode::VerifyFull {
                pg_support::Verify::Full
            } else {
                pg_support::Verify::None
            },
            "PostgreSQL",
        )
        .await
    }

    /// Connects and runs `SELECT 1`: the doctor check.
    pub async fn check(&self) -> Result<()> {
        let client = self.connect().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| classify(&e, "the server did not answer SELECT 1"))?;
        Ok(())
    }
}

/// A PostgreSQL error as a classified [`DriverError`]: [`pg_support::classify`], except that
/// a statement naming something that does not exist or that is not valid SQL (SQLSTATE class
/// 42 but 42501, and 3F000 unknown schema) is a config error.
pub fn classify(error: &tokio_postgres::Error, context: &str) -> DriverError {
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        if (code.starts_with("42") && code != "42501") || code == "3F000" {
            return DriverError::Config {
                key: None,
                message: format!("{context}: {} (SQLSTATE {code})", db.message()),
            };
        }
    }
    pg_support::classify(error, context)
}

/// Quotes an identifier for PostgreSQL (double quotes, a quote inside doubled).
pub fn quote(name: &str) -> String {
    driver_api::quote_identifier(name)
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote(schema), quote(table))
}
