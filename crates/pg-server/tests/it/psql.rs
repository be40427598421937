//! The real psql client (PostgreSQL 15): simple protocol and its backslash-command catalog
//! queries. Fails, never skips, when psql is missing.

use std::process::Command;

use crate::common::{IDS, PASSWORD, Running, start};

const PSQL: &str = "/usr/bin/psql";

async fn psql(server: &Running, command: &str) -> (bool, String, String) {
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
