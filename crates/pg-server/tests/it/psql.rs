//! The real psql client (PostgreSQL 15): simple protocol and its backslash-command catalog
//! queries. Fails, never skips, when psql is missing.

use std::process::Command;

use crate::common::{IDS, PASSWORD, Running, start};

const PSQL: &str = "/usr/bin/psql";

pub async fn psql(server: &Running, command: &str) -> (bool, String, String) {
    let url = format!(
        "postgresql://osiris@127.0.0.1:{}/osiris",
        server.addr.port()
    );
    let command = command.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(PSQL)
            .args([url.as_str(), "-X", "-A", "-t", "-c", command.as_str()])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap_or_else(|e| panic!("{PSQL} must be installed (postgresql-client): {e}"))
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_counts_rows_of_a_session_table() {
    let server = start(10).await;
    let (ok, out, err) = psql(
        &server,
        &format!("SELECT count(*) FROM \"{}\".\"orders\"", IDS[1]),
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "4");
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_dn_lists_the_session_schemas() {
    let server = start(10).await;
    let (ok, out, err) = psql(&server, "\\dn").await;
    assert!(ok, "{err}");
    for id in IDS {
        assert!(out.contains(id), "{id} missing from:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_dt_lists_the_tables_of_one_session() {
    let server = start(10).await;
    let (ok, out, err) = psql(&server, &format!("\\dt \"{}\".*", IDS[0])).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("{}|orders|table|osiris", IDS[0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_write_fails_with_read_only_error() {
    let server = start(10).await;
    let (ok, _, err) = psql(&server, "CREATE TABLE t (a int)").await;
    assert!(!ok);
    assert!(err.contains("read-only"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_l_lists_one_database() {
    let server = start(10).await;
    let (ok, out, err) = psql(&server, "\\l").await;
    assert!(ok, "{err}");
    assert!(out.starts_with("osiris|osiris|UTF8|"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_shows_duckdb_types_as_postgres_text() {
    let server = start(10).await;
    let (ok, out, err) = psql(
        &server,
        "SELECT 1.50::DECIMAL(10,2), 170141183460469231731687303715884105727::HUGEINT, [1, 2], \
         INTERVAL 3 DAY, 'x'::BLOB, DATE '2026-01-02', TIME '10:11:12.5', true",
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "1.50|170141183460469231731687303715884105727|[1, 2]|3 days|\\x78|2026-01-02|10:11:12.500000|t"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_version_is_postgres_like_and_names_osiris() {
    let server = start(10).await;
    let (ok, out, err) = psql(&server, "SELECT version()").await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("PostgreSQL ") && out.contains("osiris"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_d_describes_a_session_table() {
    let server = start(10).await;
    let (ok, out, err) = psql(&server, &format!("\\d \"{}\".orders", IDS[0])).await;
    assert!(ok, "{err}");
    assert!(err.is_empty(), "{err}");
    for line in [
        "id|bigint",
        "name|text",
        "amount|double precision",
        "paid|boolean",
        "created_at|timestamp without time zone",
    ] {
        assert!(out.contains(line), "{line} missing from:\n{out}");
    }
}
