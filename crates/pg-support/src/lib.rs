//! The one PostgreSQL connection layer of the drivers (supabase, postgres): parsing a
//! connection string, TLS as its sslmode says (rustls with the Mozilla roots, plus an optional
//! PEM file of CA certificates; `prefer` falls back to plain text when the server offers no
//! TLS), errors as classified [`DriverError`]s that never contain the connection string, a
//! host, a user or a password, and the catalog lookups both drivers need.
//! A library beside `driver-api`, not a driver (ADR 0002).
#![warn(missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use driver_api::{DriverError, Result, SecretString};
pub use tokio_postgres;
use tokio_postgres::Client;
use tokio_postgres::config::SslMode;

/// Parses `dsn` (URL or key=value form); an error names the config key `key` and never
/// contains the DSN.
pub fn parse_dsn(dsn: &SecretString, key: &str) -> Result<tokio_postgres::Config> {
    dsn.expose().parse().map_err(|_| {
        DriverError::config(
            key,
            "is not a valid Postgres connection string (postgresql://user:password@host:5432/db or key=value pairs)",
        )
    })
}

/// How the server's certificate is checked when the connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// It must chain to the Mozilla roots or to the given PEM file, and name the host.
    Full,
    /// Not at all: encryption only (libpq's `prefer` and `require`).
    None,
}

/// Connects with `config` (its connect timeout set to `timeout`), TLS as its sslmode says,
/// checking the certificate as `verify` says (trusting the Mozilla roots and the certificates
/// of the PEM file `root_cert` when given).
/// `what` names the connection in errors (`Postgres (pg_dsn)`); errors never contain the
/// connection's host, user or password.
pub async fn connect(
    mut config: tokio_postgres::Config,
    timeout: Duration,
    root_cert: Option<&Path>,
    verify: Verify,
    what: &str,
) -> Result<Client> {
    config.connect_timeout(timeout);
    let tls_config = if config.get_ssl_mode() == SslMode::Disable {
        None
    } else {
        Some(tls(root_cert, verify)?)
    };
    let connecting = async {
        match tls_config {
            None => {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "postgres connection ended");
                    }
                });
                Ok(client)
            }
            Some(tls) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
                let (client, connection) = config.connect(tls).await?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "postgres connection ended");
                    }
                });
                Ok(client)
            }
        }
    };
    match tokio::time::timeout(timeout + Duration::from_secs(1), connecting).await {
        Ok(result) => result.map_err(|e| classify(&e, &format!("cannot connect to {what}"))),
        Err(_) => Err(DriverError::Timeout {
            message: format!("cannot connect to {what} within {} s", timeout.as_secs()),
        }),
    }
}

/// The rustls client configuration: the Mozilla roots, and the certificates of `root_cert`.
fn tls(root_cert: Option<&Path>, verify: Verify) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = root_cert {
        let bad = |detail: String| {
            DriverError::config(
                "sslrootcert",
                format!(
                    "{} is not a PEM file of CA certificates: {detail}",
                    path.display()
                ),
            )
        };
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
        let mut added = 0;
        for cert in certs {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("it holds no certificate".into()));
        }
    }
    let config = rustls::ClientConfig::builder();
    Ok(match verify {
        Verify::Full => config.with_root_certificates(roots).with_no_client_auth(),
        Verify::None => config
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                rustls::crypto::ring::default_provider(),
            )))
            .with_no_client_auth(),
    })
}

/// Accepts any certificate (signatures are still checked): TLS for encryption only.
#[derive(Debug)]
struct NoVerification(rustls::crypto::CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A Postgres error as a driver error: `context: message`, classified (auth for refused
/// credentials and missing privileges, connection, remote). A refused login never repeats the
/// server's text (it names the role); no message contains the password.
pub fn classify(error: &tokio_postgres::Error, context: &str) -> DriverError {
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        if code.starts_with("28") {
            // The server's text names the role (and sometimes the client's host): left out.
            return DriverError::Auth {
                message: format!(
                    "{context}: the server refused the user name or password (SQLSTATE {code})"
                ),
            };
        }
        let message = format!("{context}: {} (SQLSTATE {code})", db.message());
        return if code == "42501" {
            DriverError::Auth { message }
        } else {
            DriverError::Remote { message }
        };
    }
    let text = error.to_string();
    if error.is_closed() || text.contains("error connecting") || text.contains("timed out") {
        DriverError::Connection {
            message: format!("{context}: {text}"),
        }
    } else {
        DriverError::Remote {
            message: format!("{context}: {text}"),
        }
    }
}

/// The regclass of `schema.table`, as the SQL expression on parameters $1 and $2.
const REGCLASS: &str = "to_regclass(format('%I.%I', $1::text, $2::text))";

/// Whether `schema.table` exists (a table, view or other relation).
pub async fn table_exists(client: &Client, schema: &str, table: &str) -> Result<bool> {
    let row = client
        .query_one(
            &format!("SELECT {REGCLASS} IS NOT NULL"),
            &[&schema, &table],
        )
        .await
        .map_err(|e| classify(&e, "cannot look the table up in the Postgres catalog"))?;
    Ok(row.get(0))
}

/// A column of a Postgres table: name, type name (`int8`, `numeric`, ...), type category
/// (`A` array, `E` enum, ...), and numeric precision and scale when declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgColumn {
    /// Column name.
    pub name: String,
    /// `pg_type.typname`.
    pub type_name: String,
    /// `pg_type.typcategory`.
    pub category: String,
    /// `numeric(p,s)`: (p, s).
    pub numeric: Option<(u8, i8)>,
    /// Postgres' own spelling of the type (`numeric(12,2)`, `timestamp with time zone`).
    pub formatted: String,
}

/// The columns of `schema.table` in order; empty when it does not exist.
pub async fn columns(client: &Client, schema: &str, table: &str) -> Result<Vec<PgColumn>> {
    let rows = client
        .query(
            &format!(
                "SELECT a.attname::text, t.typname::text, t.typcategory::text, a.atttypmod,
                        format_type(a.atttypid, a.atttypmod)
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid = {REGCLASS} AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum"
            ),
            &[&schema, &table],
        )
        .await
        .map_err(|e| {
            classify(
                &e,
                "cannot read the table's columns from the Postgres catalog",
            )
        })?;
    Ok(rows
        .iter()
        .map(|r| {
            let type_name: String = r.get(1);
            let typmod: i32 = r.get(3);
            let numeric = (type_name == "numeric" && typmod >= 4).then(|| {
                let m = typmod - 4;
                (((m >> 16) & 0xffff) as u8, (m & 0xffff) as i16 as i8)
            });
            PgColumn {
                name: r.get(0),
                type_name,
                category: r.get(2),
                numeric,
                formatted: r.get(4),
            }
        })
        .collect())
}

/// The primary key columns of `schema.table`, in key order.
pub async fn primary_key(client: &Client, schema: &str, table: &str) -> Result<Vec<String>> {
    let rows = client
        .query(
            &format!(
                "SELECT a.attname::text
                 FROM pg_index i
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                 WHERE i.indrelid = {REGCLASS} AND i.indisprimary
                 ORDER BY array_position(i.indkey::int2[], a.attnum)"
            ),
            &[&schema, &table],
        )
        .await
        .map_err(|e| classify(&e, "cannot read the primary key from the Postgres catalog"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
