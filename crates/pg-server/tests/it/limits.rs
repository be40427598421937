//! Cancel, statement_timeout, streaming with max-rows, and sessions that finish while a client
//! is connected.

use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

use crate::common::{PASSWORD, add_session, connect, start};

/// Runs for far longer than any test waits.
const LONG_QUERY: &str = "SELECT sum(hash(i)) FROM range(20000000000) t(i)";

#[tokio::test(flavor = "multi_thread")]
async fn cancel_request_interrupts_the_running_query() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let token = client.cancel_token();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await.unwrap();
    });
    let err = client.simple_query(LONG_QUERY).await.unwrap_err();
    canceller.await.unwrap();
    assert_eq!(err.code().unwrap().code(), "57014", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The connection is usable at once (the query no longer holds it).
    let row = client.query_one("SELECT 41 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    // The extended protocol too.
    let token = client.cancel_token();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await.unwrap();
    });
    let err = client.query(LONG_QUERY, &[]).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "57014", "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn statement_timeout_interrupts_a_long_query() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let row = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "300ms");
    let started = Instant::now();
    let err = client.query(LONG_QUERY, &[]).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "57014", "{err}");
    assert!(
        err.as_db_error().unwrap().message().contains("timeout"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    let row = client
        .query_one("SELECT count(*) FROM range(10)", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn portals_suspend_after_max_rows_and_other_statements_run_meanwhile() {
    let server = start(10).await;
    let mut client = connect(&server, PASSWORD).await.unwrap();
    let tx = client.transaction().await.unwrap();
    let portal = tx
        .bind("SELECT i FROM range(1000000) t(i) ORDER BY i", &[])
        .await
        .unwrap();
    let first = tx.query_portal(&portal, 3).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    // Another statement while the portal is suspended.
    let row = tx
        .query_one("SELECT count(*) FROM pg_catalog.pg_namespace", &[])
        .await
        .unwrap();
    assert!(row.get::<_, i64>(0) >= 6);
    let next = tx.query_portal(&portal, 2).await.unwrap();
    assert_eq!(
        next.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(),
        [3, 4]
    );
    drop(portal);
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_finished_after_connect_shows_up_without_attach() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let before = client
        .query_one("SELECT count(*) FROM pg_catalog.pg_namespace", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    add_session(&server.root, "2026-11-21T00-00-04Z_01JLATE", 4, 7);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let row = client
        .query_one(
            "SELECT count(*) FROM \"2026-11-21T00-00-04Z_01JLATE\".orders",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 7);
    let after = client
        .query_one("SELECT count(*) FROM pg_catalog.pg_namespace", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(after, before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_that_fails_late_reports_its_own_error_not_an_interruption() {
    // DuckDB sometimes reports such a failure as "Interrupted!" (ADR 0045); the server reads
    // the query again for its error, with the same parameters, so every attempt names the row.
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let sql = "SELECT CASE WHEN range < $1::BIGINT THEN range \
               ELSE error('bad row ' || range) END AS id FROM range(200000)";
    for attempt in 0..50 {
        let limit: i64 = 150_000;
        let rows = client
            .query_raw(sql, [&limit as &(dyn tokio_postgres::types::ToSql + Sync)])
            .await;
        let error = match rows {
            Err(error) => error,
            Ok(rows) => {
                futures::pin_mut!(rows);
                let mut read = 0u64;
                loop {
                    match futures::StreamExt::next(&mut rows).await {
                        Some(Ok(_)) => {
                            read += 1;
                            // A reader slower than DuckDB, as a remote client is.
                            if read.is_multiple_of(2048) {
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                        }
                        Some(Err(error)) => break error,
                        None => panic!("attempt {attempt}: the failing query read to its end"),
                    }
                }
            }
        };
        let text = error.as_db_error().map(|e| e.message().to_owned());
        assert!(
            text.as_deref()
                .is_some_and(|t| t.contains("bad row 150000")),
            "attempt {attempt}: {error:?}"
        );
    }
}
