//! The optional direct Postgres connection (`pg_dsn`): catalog lookups, DDL, transactional
//! replace, through the shared `pg-support` layer (TLS as the DSN's sslmode says).

use std::time::Duration;

use driver_api::{Result, SecretString};
use pg_support::tokio_postgres::Client;
pub use pg_support::{classify, columns, primary_key, table_exists};

/// Connects with `dsn` (URL or key=value form), `timeout` as the connect timeout. Errors never
/// contain the DSN.
pub async fn connect(dsn: &SecretString, timeout: Duration) -> Result<Client> {
    let config = pg_support::parse_dsn(dsn, "pg_dsn")?;
    pg_support::connect(
        config,
        timeout,
        None,
        pg_support::Verify::Full,
        "Postgres (pg_dsn)",
    )
    .await
}
