//! The `@mysql` connection ([`MysqlConnection`], shared by the extractor and the writer) and
//! connecting with it: options, TLS modes, timeouts, and the one place where `mysql_async`
//! errors become classified [`DriverError`]s without hosts, users or passwords.

use std::path::{Path, PathBuf};
use std::time::Duration;

use driver_api::{DriverError, Result, SecretString};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};
use serde::Deserialize;

/// TLS for the connection, with MySQL client semantics (see the specs' `ssl_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SslMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it, plain TCP otherwise; the certificate is not checked.
    #[default]
    Preferred,
    /// TLS or fail; the certificate is not checked.
    Required,
    /// TLS, and the certificate must chain to `ssl_ca` (or the system roots).
    VerifyCa,
    /// As `verify_ca`, and the certificate must name the host.
    VerifyIdentity,
}

/// A `@mysql` connection: the spec's `x-connection-fields`, which a step may also set itself
/// (host, port, user and password only without a connection). Shared by the extractor and
/// the writer, and what `doctor` and `discover` receive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConnection {
    /// Server host name or IP address.
    #[serde(default)]
    pub host: String,
    /// Server TCP port. Default 3306.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Database (schema) to use.
    #[serde(default)]
    pub database: String,
    /// User name.
    #[serde(default)]
    pub user: String,
    /// Password of `user`; not set = no password.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Seconds for the TCP connection and the login handshake. Default 10.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: u64,
    /// TLS mode. Default `preferred`.
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// PEM file of CA certificates for verify_ca / verify_identity. A run resolves a relative
    /// path against the pipeline file's directory ([`MysqlConnection::resolve_paths`]);
    /// `doctor` and `discover`, which have no pipeline, against the current directory.
    #[serde(default)]
    pub ssl_ca: Option<PathBuf>,
}

fn default_port() -> u16 {
    3306
}
fn default_connect_timeout() -> u64 {
    10
}

impl MysqlConnection {
    /// Resolves a relative `ssl_ca` against `base` (a run's pipeline directory, ADR 0005).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(ca) = &mut self.ssl_ca {
            *ca = base.join(&*ca);
        }
    }

    /// Fails when host, database or user is missing (none came from the step or connection),
    /// the port is 0, or TLS may be used and `ssl_ca` names no file.
    pub fn validate(&self) -> Result<()> {
        if self.port == 0 {
            return Err(DriverError::config("port", "must be a TCP port (1..65535)"));
        }
        if let Some(ca) = &self.ssl_ca
            && self.ssl_mode != SslMode::Disabled
            && !ca.is_file()
        {
            return Err(DriverError::config(
                "ssl_ca",
                format!(
                    "{} is not a file (a PEM file of CA certificates)",
                    ca.display()
                ),
            ));
        }
        for (key, value) in [
            ("host", &self.host),
            ("database", &self.database),
            ("user", &self.user),
        ] {
            if value.is_empty() {
                return Err(DriverError::config(
                    key,
                    "is required: set it in the @mysql connection or the step's config",
                ));
            }
        }
        Ok(())
    }

    fn opts(&self, tls: bool) -> OptsBuilder {
        let ssl = tls.then(|| {
            let mut ssl = SslOpts::default();
            match self.ssl_mode {
                SslMode::Disabled => {}
                SslMode::Preferred | SslMode::Required => {
                    ssl = ssl
                        .with_danger_accept_invalid_certs(true)
                        .with_danger_skip_domain_validation(true);
                }
                SslMode::VerifyCa => ssl = ssl.with_danger_skip_domain_validation(true),
                SslMode::VerifyIdentity => {}
            }
            if let Some(ca) = &self.ssl_ca {
                ssl = ssl.with_root_certs(vec![ca.clone().into()]);
            }
            ssl
        });
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .prefer_socket(false)
            .user(Some(self.user.clone()))
            .pass(self.password.as_ref().map(|p| p.expose().to_owned()))
            .db_name(Some(self.database.clone()))
            .ssl_opts(ssl)
            .stmt_cache_size(0)
            // UTC session: TIMESTAMP values are read and written in UTC. utf8mb4 for all text;
            // backslash escapes on, so that the writer's literals mean what they say.
            .init(vec![
                "SET time_zone = '+00:00', NAMES utf8mb4, \
                 sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
            ])
    }

    /// Opens one connection, within `connect_timeout`.
    pub async fn connect(&self) -> Result<Conn> {
        self.validate()?;
        let tls = self.ssl_mode != SslMode::Disabled;
        match self.connect_once(tls).await {
            Err(Failure::NoTls) if self.ssl_mode == SslMode::Preferred => {
                self.connect_once(false).await.map_err(|f| f.into_error())
            }
            other => other.map_err(|f| f.into_error()),
        }
    }

    async fn connect_once(&self, tls: bool) -> Result<Conn, Failure> {
        let limit = Duration::from_secs(self.connect_timeout.max(1));
        match tokio::time::timeout(limit, Conn::new(self.opts(tls))).await {
            Err(_) => Err(Failure::Error(DriverError::Timeout {
                message: format!(
                    "cannot connect to MySQL: no answer within connect_timeout ({}s)",
                    self.connect_timeout
                ),
            })),
            Ok(Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            ))) => Err(Failure::NoTls),
            Ok(Err(error)) => Err(Failure::Error(classify(error, "cannot connect to MySQL"))),
            Ok(Ok(conn)) => Ok(conn),
        }
    }

    /// Connects and runs `SELECT 1`: the doctor check.
    pub async fn check(&self) -> Result<()> {
        let mut conn = self.connect().await?;
        conn.query_drop("SELECT 1")
            .await
            .map_err(|e| classify(e, "the server did not answer SELECT 1"))?;
        let _ = conn.disconnect().await;
        Ok(())
    }
}

enum Failure {
    NoTls,
    Error(DriverError),
}

impl Failure {
    fn into_error(self) -> DriverError {
        match self {
            Self::NoTls => DriverError::Connection {
                message: "cannot connect to MySQL: the server does not offer TLS and ssl_mode \
                          requires it (set ssl_mode: preferred or disabled to allow plain TCP)"
                    .into(),
            },
            Self::Error(e) => e,
        }
    }
}

/// Applies the Python Osiris step fields that have no MySQL meaning of their own, shared by
/// the extractor's and the writer's `Config`: `schema` is the database (in MySQL a schema is a
/// database: used when `database` is unset, refused when it names another one), and the
/// SQLAlchemy settings are accepted with a `config.warning` event and have no effect
/// (`pool_size`, `pool_recycle`: a step opens its own connections, which live for the step;
/// `echo`: SQL is never logged, it may hold values).
pub(crate) fn apply_python_fields(
    ctx: &driver_api::StepContext,
    database: &mut String,
    schema: Option<&str>,
    pool_size: Option<u32>,
    pool_recycle: Option<u64>,
    echo: Option<bool>,
) -> Result<()> {
    if let Some(schema) = schema {
        if database.is_empty() {
            *database = schema.to_owned();
        } else if database != schema {
            return Err(DriverError::config(
                "schema",
                format!(
                    "names database {schema:?} but `database` is {database:?}; in MySQL a schema is a database: set only `database`"
                ),
            ));
        }
    }
    let sqlalchemy = [
        ("pool_size", pool_size.is_some()),
        ("pool_recycle", pool_recycle.is_some()),
        ("echo", echo.is_some()),
    ];
    for (key, _) in sqlalchemy.iter().filter(|(_, set)| *set) {
        ctx.warn_config(
            key,
            "has no effect: it configured the Python Osiris' SQLAlchemy connection pool; each step here opens its own connections and never logs SQL",
        );
    }
    Ok(())
}

/// Server error codes that mean "the configuration names something that does not exist or
/// is not SQL": unknown database, table or column, a syntax error in `query` or `where`.
const CONFIG_CODES: &[u16] = &[1049, 1054, 1064, 1146];
/// Server error codes that mean "the credentials were refused".
const AUTH_CODES: &[u16] = &[1045, 1698, 1820, 1862, 1251];
/// Server error codes that mean "the user may not do this".
const PERMISSION_CODES: &[u16] = &[1044, 1142, 1143, 1227, 1370, 1356];
/// Server error codes that mean "the connection went away".
const LOST_CODES: &[u16] = &[1053, 1927, 2006, 2013];
/// Server error codes that mean "a server-side time limit was hit".
const TIMEOUT_CODES: &[u16] = &[1205, 1969, 3024];

/// Converts a `mysql_async` error into a classified [`DriverError`] whose message starts with
/// `doing` and never contains a user name, host or password.
pub fn classify(error: mysql_async::Error, doing: &str) -> DriverError {
    use mysql_async::{Error, IoError};
    match error {
        Error::Server(e) => {
            let code = e.code;
            if AUTH_CODES.contains(&code) {
                DriverError::Auth {
                    message: format!(
                        "{doing}: the server refused the user name or password (MySQL error {code})"
                    ),
                }
            } else if PERMISSION_CODES.contains(&code) {
                DriverError::Permission {
                    message: format!(
                        "{doing}: permission denied: {} (MySQL error {code})",
                        scrub_accounts(&e.message)
                    ),
                }
            } else if LOST_CODES.contains(&code) {
                DriverError::Connection {
                    message: format!(
                        "{doing}: the connection to the server was lost: {} (MySQL error {code})",
                        scrub_accounts(&e.message)
                    ),
                }
            } else if CONFIG_CODES.contains(&code) {
                DriverError::Config {
                    key: None,
                    message: format!(
                        "{doing}: {} (MySQL error {code})",
                        scrub_accounts(&e.message)
                    ),
                }
            } else if TIMEOUT_CODES.contains(&code) {
                DriverError::Timeout {
                    message: format!(
                        "{doing}: {} (MySQL error {code})",
                        scrub_accounts(&e.message)
                    ),
                }
            } else {
                DriverError::Remote {
                    message: format!(
                        "{doing}: {} (MySQL error {code})",
                        scrub_accounts(&e.message)
                    ),
                }
            }
        }
        Error::Io(IoError::Io(e)) => match e.kind() {
            std::io::ErrorKind::TimedOut => DriverError::Timeout {
                message: format!("{doing}: the network timed out"),
            },
            std::io::ErrorKind::ConnectionRefused => DriverError::Connection {
                message: format!(
                    "{doing}: connection refused (is the server running, and are host and port right?)"
                ),
            },
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe => DriverError::Connection {
                message: format!("{doing}: the server closed the connection ({e})"),
            },
            _ => DriverError::Connection {
                message: format!("{doing}: network error: {e}"),
            },
        },
        Error::Io(other) => DriverError::Connection {
            message: format!("{doing}: TLS failed: {other}"),
        },
        Error::Driver(mysql_async::DriverError::ConnectionClosed) => DriverError::Connection {
            message: format!("{doing}: the server closed the connection"),
        },
        Error::Driver(mysql_async::DriverError::LocalInfile(e)) => DriverError::Data {
            message: format!("{doing}: {e}"),
        },
        Error::Driver(e) => DriverError::Remote {
            message: format!("{doing}: {e}"),
        },
        Error::Url(e) => DriverError::Config {
            key: None,
            message: format!("{doing}: {e}"),
        },
        Error::Other(e) => DriverError::Remote {
            message: format!("{doing}: {e}"),
        },
    }
}

/// Replaces MySQL account names (`'user'@'host'`) in a server message with `the user`.
fn scrub_accounts(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("'@'") {
        let Some(start) = rest[..at].rfind('\'') else {
            break;
        };
        let Some(end) = rest[at + 3..].find('\'') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str("the user");
        rest = &rest[at + 3 + end + 1..];
    }
    out.push_str(rest);
    out
}

/// Quotes a MySQL identifier with backticks (a backtick inside is doubled).
pub fn quote_mysql_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A MySQL string literal (backslash escapes on, as every connection sets).
pub fn quote_mysql_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    escape_literal_into(value, &mut out);
    out.push('\'');
    out
}

/// Appends `value` escaped for the inside of a MySQL '...' literal.
pub fn escape_literal_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_scrubbed_from_server_messages() {
        assert_eq!(
            scrub_accounts("SELECT command denied to user 'bob'@'10.0.0.1' for table 't'"),
            "SELECT command denied to user the user for table 't'"
        );
        assert_eq!(scrub_accounts("no account here"), "no account here");
    }

    #[test]
    fn a_relative_ssl_ca_resolves_against_the_given_directory() {
        let connection = |ca: &str| -> MysqlConnection {
            serde_json::from_value(serde_json::json!({"host": "h", "ssl_ca": ca})).unwrap()
        };
        let mut relative = connection("certs/ca.pem");
        relative.resolve_paths(Path::new("/srv/pipelines"));
        assert_eq!(
            relative.ssl_ca.as_deref(),
            Some(Path::new("/srv/pipelines/certs/ca.pem"))
        );
        let mut absolute = connection("/etc/ssl/ca.pem");
        absolute.resolve_paths(Path::new("/srv/pipelines"));
        assert_eq!(
            absolute.ssl_ca.as_deref(),
            Some(Path::new("/etc/ssl/ca.pem"))
        );
        let mut none = connection("x");
        none.ssl_ca = None;
        none.resolve_paths(Path::new("/srv"));
        assert_eq!(none.ssl_ca, None);
    }

    #[test]
    fn identifiers_and_literals_are_escaped() {
        assert_eq!(quote_mysql_identifier("a`b c"), "`a``b c`");
        assert_eq!(quote_mysql_literal("it's a \\ test"), "'it''s a \\\\ test'");
    }
}
