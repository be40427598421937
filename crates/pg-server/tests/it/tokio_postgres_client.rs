//! tokio-postgres: simple and extended protocol, binary results, parameters, errors.

use tokio_postgres::types::{FromSql, Type};

use crate::common::{IDS, PASSWORD, connect, start};

#[tokio::test]
async fn osiris_sessions_lists_every_session_with_its_tables() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let rows = client
        .query(
            "SELECT id, pipeline, status, size_mb, tables FROM osiris_sessions ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, IDS);
    for row in &rows {
        assert_eq!(row.get::<_, String>(1), "p");
        assert_eq!(row.get::<_, String>(2), "ok");
        assert!(row.get::<_, f64>(3) > 0.0);
        assert_eq!(row.get::<_, String>(4), "orders");
    }
}

#[tokio::test]
async fn prepared_statement_with_parameter_returns_typed_rows() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let sql = format!(
        "SELECT id, name, amount, paid, created_at FROM \"{}\".orders WHERE id >= $1 ORDER BY id",
        IDS[2]
    );
    // Undeclared parameter: described with the type of the column it is compared with.
    let stmt = client.prepare(&sql).await.unwrap();
    assert_eq!(stmt.params(), &[Type::INT8]);
    let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        [
            Type::INT8,
            Type::TEXT,
            Type::FLOAT8,
            Type::BOOL,
            Type::TIMESTAMP
        ]
    );
    let rows = client.query(&stmt, &[&4_i64]).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, i64>(0), 4);
    assert_eq!(rows[0].get::<_, String>(1), "name-4");
    assert_eq!(rows[0].get::<_, f64>(2), 6.0);
    assert!(rows[0].get::<_, bool>(3));
    assert!(!rows[1].get::<_, bool>(3));
    let at = rows[0].get::<_, std::time::SystemTime>(4);
    // 2026-11-20 10:00 + 4 h, UTC.
    assert_eq!(
        at,
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_183_200)
    );
    // A declared int8 parameter, sent binary.
    let stmt = client
        .prepare_typed(
            &format!("SELECT count(*) FROM \"{}\".orders WHERE id < $1", IDS[2]),
            &[Type::INT8],
        )
        .await
        .unwrap();
    let row = client.query_one(&stmt, &[&3_i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
}

#[tokio::test]
async fn osiris_attach_makes_an_older_session_queryable() {
    let server = start(1).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let old = format!("SELECT count(*) FROM \"{}\".orders", IDS[0]);
    assert!(
        client.query(&old, &[]).await.is_err(),
        "only the newest session is attached by default"
    );
    let row = client
        .query_one(&format!("SELECT osiris_attach('{}')", IDS[0]), &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), IDS[0]);
    let row = client.query_one(&old, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 3);
    let err = client
        .query_one("SELECT osiris_attach('no-such-session')", &[])
        .await
        .unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("no-such-session")
    );
}

#[tokio::test]
async fn writes_are_refused_as_read_only() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    for sql in [
        "CREATE TABLE t (a INT)".to_owned(),
        format!("INSERT INTO \"{}\".orders (id) VALUES (99)", IDS[2]),
        "ATTACH '/tmp/x.duckdb' AS x".to_owned(),
    ] {
        let err = client.batch_execute(&sql).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "25006", "{sql}");
        let err = client.execute(&sql, &[]).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "25006", "{sql} (extended)");
    }
    // The connection is still usable.
    let row = client.query_one("SELECT 1::BIGINT", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn queries_cannot_read_files_outside_the_sessions() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let err = client
        .query("SELECT * FROM read_csv('/etc/passwd')", &[])
        .await
        .unwrap_err();
    let message = err.as_db_error().expect("a server error").message();
    assert!(message.contains("disabled"), "{message}");
}

#[tokio::test]
async fn wrong_password_is_refused_with_28p01() {
    let server = start(10).await;
    let err = connect(&server, "wrong").await.err().unwrap();
    assert_eq!(err.code().unwrap().code(), "28P01");
    assert!(!err.to_string().contains(PASSWORD));
}

#[tokio::test]
async fn non_loopback_address_is_refused_unless_allowed() {
    let config = pg_server::ServerConfig::new(
        "0.0.0.0:0".parse().unwrap(),
        std::env::temp_dir(),
        pg_server::SecretString::new("x"),
    );
    let err = pg_server::bind(config.clone()).await.unwrap_err();
    assert!(err.to_string().contains("not a loopback address"), "{err}");
    let mut allowed = config;
    allowed.allow_remote = true;
    assert!(pg_server::bind(allowed).await.is_ok());
}

/// A `numeric` as its raw binary wire bytes.
struct RawNumeric(Vec<u8>);

impl<'a> FromSql<'a> for RawNumeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw.to_vec()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[tokio::test]
async fn decimals_are_sent_as_binary_numeric() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let row = client
        .query_one(
            "SELECT 1.50::DECIMAL(10, 2), -12345678901234567890::HUGEINT",
            &[],
        )
        .await
        .unwrap();
    // ndigits 2, weight 0, sign +, dscale 2, digits 1 and 5000.
    assert_eq!(
        row.get::<_, RawNumeric>(0).0,
        [0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0x13, 0x88]
    );
    // -1234|5678|9012|3456|7890: 5 digits, weight 4, sign negative.
    let raw = row.get::<_, RawNumeric>(1).0;
    assert_eq!(&raw[..8], [0, 5, 0, 4, 0x40, 0, 0, 0]);
    assert_eq!(&raw[8..10], 1234_i16.to_be_bytes());
}

#[tokio::test]
async fn run_returns_once_shutdown_is_cancelled() {
    let root = tempfile::tempdir().unwrap();
    let config = pg_server::ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        root.path().to_owned(),
        pg_server::SecretString::new(PASSWORD),
    );
    let server = pg_server::bind(config).await.unwrap();
    let addr = server.local_addr();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone()));
    tokio::net::TcpStream::connect(addr).await.unwrap();
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), running)
        .await
        .expect("run returns")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn two_clients_read_the_same_session_at_once() {
    let server = start(10).await;
    let a = connect(&server, PASSWORD).await.unwrap();
    let b = connect(&server, PASSWORD).await.unwrap();
    let sql = format!("SELECT count(*) FROM \"{}\".orders", IDS[2]);
    let (ra, rb) = tokio::join!(a.query_one(&sql, &[]), b.query_one(&sql, &[]));
    assert_eq!(ra.unwrap().get::<_, i64>(0), 5);
    assert_eq!(rb.unwrap().get::<_, i64>(0), 5);
}

#[tokio::test]
async fn result_columns_name_the_table_column_they_are_read_from() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let stmt = client
        .prepare(&format!(
            "SELECT id, name AS who, amount * 2 AS doubled FROM \"{}\".orders",
            IDS[2]
        ))
        .await
        .unwrap();
    let oid: i64 = client
        .query_one(
            "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
             ON n.oid = c.relnamespace WHERE c.relname = 'orders' AND n.nspname = $1",
            &[&IDS[2]],
        )
        .await
        .unwrap()
        .get(0);
    let origins: Vec<(Option<u32>, Option<i16>)> = stmt
        .columns()
        .iter()
        .map(|c| (c.table_oid(), c.column_id()))
        .collect();
    let oid = u32::try_from(oid).unwrap();
    assert_eq!(
        origins,
        [(Some(oid), Some(1)), (Some(oid), Some(2)), (None, None)]
    );
}

#[tokio::test]
async fn search_path_makes_a_session_the_default_schema() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    client
        .batch_execute(&format!("SET search_path TO \"{}\", public", IDS[2]))
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT count(*), current_schema(), current_setting('search_path') FROM orders",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5);
    assert_eq!(row.get::<_, String>(1), IDS[2]);
    assert_eq!(row.get::<_, String>(2), format!("\"{}\", public", IDS[2]));
    // A string literal keeps its case too.
    client
        .batch_execute(&format!("SET search_path = '{}'", IDS[1]))
        .await
        .unwrap();
    let row = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 4);
    client.batch_execute("RESET search_path").await.unwrap();
    assert!(
        client
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .is_err()
    );
}
