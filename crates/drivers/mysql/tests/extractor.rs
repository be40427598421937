//! mysql.extractor against the real server: table options, partitions, read-only, large
//! results with flat memory, a killed connection, credentials errors, odd identifiers,
//! discover.

mod common;

use common::Db;
use driver_api::{DriverError, DynDriver, ErrorClass, testing::assert_spec_matches};
use driver_mysql::{MysqlExtractor, MysqlWriter};
use mysql_async::prelude::Queryable;
use serde_json::json;

#[test]
fn specs_match_the_config_structs() {
    assert_spec_matches::<MysqlExtractor>();
    assert_spec_matches::<MysqlWriter>();
}

async fn numbers(db: &Db, rows: u32) {
    db.exec(&format!(
        "CREATE TABLE nums (id INT PRIMARY KEY, grp INT NULL, name VARCHAR(40), amount DECIMAL(10,2));
         INSERT INTO nums SELECT seq, IF(seq % 10 = 0, NULL, seq % 7), CONCAT('n', seq), seq / 4 FROM seq_1_to_{rows}"
    ))
    .await;
}

#[tokio::test]
async fn table_reads_honour_columns_where_limit_and_offset() {
    let db = Db::new("table").await;
    numbers(&db, 100).await;
    let config = db.config(json!({
        "table": "nums", "columns": ["name", "id"], "where": "id > 10", "limit": 3, "offset": 2,
        "batch_size": 100
    }));
    let out = db
        .run
        .run(&MysqlExtractor, "read", config, &[])
        .await
        .unwrap();
    assert_eq!(out.rows, 3);
    assert_eq!(
        db.run
            .query_strings("SELECT name || ':' || id FROM \"read\" ORDER BY id"),
        [
            Some("n13:13".into()),
            Some("n14:14".into()),
            Some("n15:15".into())
        ]
    );
    assert_eq!(
        db.duck_types("read")[0].0,
        "name",
        "columns keep their order"
    );

    let bad = db.config(json!({"table": "nums", "columns": ["id", "nope"]}));
    let err = db
        .run
        .run(&MysqlExtractor, "bad", bad, &[])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config);
    let message = err.to_string();
    assert!(
        message.contains("\"nope\"") && message.contains("id, grp, name, amount"),
        "{message}"
    );
    assert!(!db.run.table_exists("bad"));

    let offset_only = db.config(json!({"table": "nums", "offset": 98}));
    let out = db
        .run
        .run(&MysqlExtractor, "tail", offset_only, &[])
        .await
        .unwrap();
    assert_eq!(out.rows, 2);
}

#[tokio::test]
async fn partitioned_reads_cover_every_row_once() {
    let db = Db::new("parts").await;
    numbers(&db, 10_000).await;
    let config = db.config(json!({
        "table": "nums", "partition_on": "grp", "partitions": 4, "where": "id <= 9000", "batch_size": 500
    }));
    let out = db
        .run
        .run(&MysqlExtractor, "read", config, &[])
        .await
        .unwrap();
    assert_eq!(out.rows, 9000);
    assert_eq!(
        db.run.query_strings("SELECT CAST(count(DISTINCT id) AS VARCHAR) || '/' || CAST(sum(amount) AS VARCHAR) || '/' || CAST(count(*) FILTER (WHERE grp IS NULL) AS VARCHAR) FROM \"read\""),
        [Some("9000/10126125.00/900".into())]
    );

    let not_int = db.config(json!({"table": "nums", "partition_on": "name", "partitions": 2}));
    let err = db
        .run
        .run(&MysqlExtractor, "bad", not_int, &[])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(err.to_string().contains("not an integer"), "{err}");
}

#[tokio::test]
async fn queries_run_read_only() {
    let db = Db::new("readonly").await;
    numbers(&db, 5).await;
    let err = db
        .run
        .run(
            &MysqlExtractor,
            "del",
            db.config(json!({"query": "DELETE FROM nums"})),
            &[],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("READ ONLY"), "{err}");
    assert_eq!(
        db.strings("SELECT COUNT(*) FROM nums").await,
        [Some("5".into())]
    );
    assert!(!db.run.table_exists("del"));
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_stream_with_flat_memory() {
    let db = Db::new("million").await;
    db.exec(
        "CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(100), amount DECIMAL(12,2), at DATETIME(6));
         INSERT INTO big SELECT seq, CONCAT('name-', seq, '-', REPEAT('x', 60)), seq / 8, \
         TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_1000000",
    )
    .await;
    let expected = db
        .strings("SELECT CONCAT(SUM(amount), '/', CAST(MAX(at) AS DATETIME)) FROM big")
        .await;
    let before = peak_rss_kib();
    let out = db
        .run
        .run(
            &MysqlExtractor,
            "read",
            db.config(json!({"table": "big", "batch_size": 10000})),
            &[],
        )
        .await
        .unwrap();
    let growth_mib = (peak_rss_kib() - before) / 1024;
    eprintln!("peak memory growth: {growth_mib} MiB");
    assert_eq!(out.rows, 1_000_000);
    assert_eq!(
        db.run.query_strings("SELECT CAST(sum(amount) AS VARCHAR) || '/' || CAST(max(\"at\") AS VARCHAR) FROM \"read\""),
        expected
    );
    // Measured: ~155 MiB, of which the driver's reading side (batches in flight) is ~26 MiB
    // and the rest DuckDB's buffers for the new table. The rows are ~100 MB as text and
    // several times that as decoded MySQL values: holding them would break this bound.
    assert!(
        growth_mib < 220,
        "peak memory grew by {growth_mib} MiB while reading 1M rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_fails_the_step_and_leaves_no_table() {
    let db = Db::new("killed").await;
    db.exec(
        "CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(100));
         INSERT INTO big SELECT seq, REPEAT('y', 90) FROM seq_1_to_400000",
    )
    .await;
    let run = db.run.clone();
    let config = db.config(json!({"table": "big", "batch_size": 1000}));
    let extract = tokio::spawn(async move { run.run(&MysqlExtractor, "read", config, &[]).await });
    let mut admin = db.conn().await;
    let mut killed = false;
    for _ in 0..1000 {
        let id: Option<u64> = admin
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE 'SELECT * FROM `big`%'",
                (&db.name,),
            )
            .await
            .unwrap();
        if let Some(id) = id {
            admin
                .query_drop(format!("KILL CONNECTION {id}"))
                .await
                .unwrap();
            killed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        killed,
        "the extract query never showed up in the process list"
    );
    let err = extract.await.unwrap().unwrap_err();
    assert_eq!(err.class(), ErrorClass::Connection, "{err}");
    assert!(err.to_string().contains("reading the rows failed"), "{err}");
    assert!(!db.run.table_exists("read"), "no partial table");
}

const WRONG_PASSWORD: &str = "Wrong-Secret-9f8e7d";

#[tokio::test]
async fn credential_and_network_errors_are_classified_without_secrets() {
    let db = Db::new("auth").await;
    let fields = |extra: serde_json::Value| {
        let mut m = db.config(json!({})).as_object().unwrap().clone();
        for (k, v) in extra.as_object().unwrap() {
            m.insert(k.clone(), v.clone());
        }
        m
    };
    let clean = |message: &str| {
        for secret in [WRONG_PASSWORD, "root", "127.0.0.1"] {
            assert!(!message.contains(secret), "{secret:?} in {message:?}");
        }
    };

    MysqlExtractor
        .doctor_json(&fields(json!({})))
        .await
        .unwrap();

    let err = MysqlExtractor
        .doctor_json(&fields(json!({"password": WRONG_PASSWORD})))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
    clean(&err.to_string());

    let err = MysqlWriter
        .doctor_json(&fields(json!({"port": 1})))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Connection, "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
    clean(&err.to_string());

    // Valid credentials without access to the database: permission, no user name shown.
    let user = format!("osiris_noperm_{}", std::process::id());
    db.exec(&format!("DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY '{WRONG_PASSWORD}'"))
        .await;
    let err = MysqlExtractor
        .doctor_json(&fields(json!({"user": user, "password": WRONG_PASSWORD})))
        .await
        .unwrap_err();
    db.exec(&format!("DROP USER '{user}'@'%'")).await;
    assert_eq!(err.class(), ErrorClass::Permission, "{err}");
    clean(&err.to_string());
    assert!(!err.to_string().contains(&user), "{err}");

    // A password full of URL and SQL metacharacters is passed as it is (no URL to escape).
    let odd_password = "p@ss:w/rd?#%&'\"`\\ ž";
    db.exec(&format!(
        "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY {}; GRANT SELECT ON `{}`.* TO '{user}'@'%'",
        mysql_async::Value::from(odd_password).as_sql(false),
        db.name
    ))
    .await;
    let result = MysqlExtractor
        .doctor_json(&fields(json!({"user": user, "password": odd_password})))
        .await;
    db.exec(&format!("DROP USER '{user}'@'%'")).await;
    result.unwrap();

    // A server that accepts TCP but never greets: the connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let err = MysqlExtractor
        .doctor_json(&fields(json!({"port": port, "connect_timeout": 1})))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout, "{err}");
    clean(&err.to_string());

    // A step with a wrong password fails as auth, secret-free, and leaves no table.
    let config = db.config(json!({"password": WRONG_PASSWORD, "query": "SELECT 1"}));
    let err = db
        .run
        .run(&MysqlExtractor, "read", config, &[])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    clean(&err.to_string());
    assert!(!db.run.table_exists("read"));
}

#[tokio::test]
async fn quotes_spaces_and_backticks_in_names() {
    let db = Db::new("idents").await;
    db.exec(
        "CREATE TABLE `we``ird \"ta'ble` (`col ``x```INT PRIMARY KEY, `sp ace` VARCHAR(20), `quo\"te` INT, `it's` TEXT);
         INSERT INTO `we``ird \"ta'ble` VALUES (1, 'a', 10, 'x'), (2, NULL, 20, 'y''z')",
    )
    .await;
    let table = "we`ird \"ta'ble";
    let config =
        db.config(json!({"table": table, "columns": ["it's", "col `x`", "sp ace", "quo\"te"]}));
    let out = db
        .run
        .run(&MysqlExtractor, "odd step", config, &[])
        .await
        .unwrap();
    assert_eq!(out.rows, 2);
    assert_eq!(
        db.run.query_strings("SELECT \"it's\" || '|' || coalesce(\"sp ace\", '-') FROM \"odd step\" ORDER BY \"col `x`\""),
        [Some("x|a".into()), Some("y'z|-".into())]
    );

    let target = "out `t` 'q' \"z\"";
    let write = db.config(json!({
        "table": target, "mode": "upsert", "primary_key": ["col `x`"], "create_table": true
    }));
    db.run
        .run(&MysqlWriter, "odd write", write.clone(), &["odd step"])
        .await
        .unwrap();
    db.run
        .run(&MysqlWriter, "odd write", write, &["odd step"])
        .await
        .unwrap();
    assert_eq!(
        db.strings("SELECT CONCAT(`col ``x```, '|', `it's`, '|', `quo\"te`) FROM `out ``t`` 'q' \"z\"` ORDER BY 1").await,
        [Some("1|x|10".into()), Some("2|y'z|20".into())]
    );
}

#[tokio::test]
async fn discover_lists_tables_columns_keys_and_estimates() {
    let db = Db::new("discover").await;
    numbers(&db, 50).await;
    db.exec("CREATE VIEW v AS SELECT id FROM nums; CREATE TABLE pair (a INT, b VARCHAR(5), PRIMARY KEY (b, a))")
        .await;
    let mut fields = db.config(json!({})).as_object().unwrap().clone();
    fields.remove("query");
    let tables = MysqlExtractor.discover_json(&fields).await.unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["nums", "pair", "v"]);
    assert_eq!(tables[0].primary_key, ["id"]);
    assert_eq!(tables[1].primary_key, ["b", "a"]);
    assert_eq!(tables[0].columns[3].source_type, "decimal(10,2)");
    assert_eq!(tables[0].columns[1].nullable, Some(true));
    assert_eq!(tables[0].columns[0].nullable, Some(false));
    assert!(tables[0].estimated_rows.is_some());
    assert_eq!(tables[0].kind, Some("table"));
    assert_eq!(tables[2].kind, Some("view"));
    assert_eq!(tables[2].estimated_rows, None);
}

#[tokio::test]
async fn ssl_modes_follow_mysql_client_semantics() {
    let db = Db::new("ssl").await;
    let have_ssl = db
        .strings("SELECT @@have_ssl")
        .await
        .remove(0)
        .unwrap_or_default();
    let fields = |mode: &str| {
        let mut m = db
            .config(json!({"ssl_mode": mode}))
            .as_object()
            .unwrap()
            .clone();
        m.remove("query");
        m
    };
    MysqlExtractor
        .doctor_json(&fields("disabled"))
        .await
        .unwrap();
    // preferred: TLS when offered, plain TCP otherwise.
    MysqlExtractor
        .doctor_json(&fields("preferred"))
        .await
        .unwrap();
    let required = MysqlExtractor.doctor_json(&fields("required")).await;
    if have_ssl == "YES" {
        required.unwrap();
    } else {
        let err = required.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Connection, "{err}");
        assert!(err.to_string().contains("does not offer TLS"), "{err}");
    }
}

#[tokio::test]
async fn a_missing_table_is_a_config_error() {
    let db = Db::new("missing").await;
    let config = db.config(json!({"table": "no_such_table"}));
    let err = db
        .run
        .run(&MysqlExtractor, "read", config, &[])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(err.to_string().contains("no_such_table"), "{err}");
    let query = db.config(json!({"query": "SELECT * FROM no_such_table"}));
    let err = db
        .run
        .run(&MysqlExtractor, "read", query, &[])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
}

#[tokio::test]
async fn python_schema_and_pool_fields_are_honoured_or_reported() {
    let db = Db::new("pyfields").await;
    numbers(&db, 3).await;
    // `schema` names the database: alone it is the database, equal to `database` it is fine.
    let mut config = db.config(json!({
        "table": "nums", "schema": db.name, "pool_size": 5, "pool_recycle": 3600, "echo": false
    }));
    config.as_object_mut().unwrap().remove("database");
    let out = db
        .run
        .run(&MysqlExtractor, "read", config, &[])
        .await
        .unwrap();
    assert_eq!(out.rows, 3);
    let events = std::fs::read_to_string(
        db.run
            .execution_context()
            .session_dir()
            .join("events.jsonl"),
    )
    .unwrap();
    for key in ["pool_size", "pool_recycle", "echo"] {
        assert!(
            events
                .lines()
                .any(|l| l.contains("\"event\":\"config.warning\"")
                    && l.contains(&format!("\"key\":\"{key}\""))),
            "{key}: {events}"
        );
    }
    let other = db.config(json!({"table": "nums", "schema": "elsewhere"}));
    let err = db
        .run
        .run(&MysqlExtractor, "read2", other, &[])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(err.to_string().contains("`schema`"), "{err}");
}

/// The connection is typed: doctor and discover name a bad field instead of guessing (a
/// non-numeric `connect_timeout` once silently became 10), for the writer too, and before any
/// connection is attempted (port 9 would refuse it).
#[tokio::test]
async fn a_bad_connection_field_is_a_config_error_naming_it() {
    let connection = |extra: serde_json::Value| {
        let mut fields = json!({"host": "127.0.0.1", "port": 9, "database": "d", "user": "u"});
        for (k, v) in extra.as_object().unwrap() {
            fields[k] = v.clone();
        }
        fields.as_object().unwrap().clone()
    };
    let key_of = |error: DriverError| match error {
        DriverError::Config { key, message } => (key, message),
        other => panic!("not a config error: {other}"),
    };
    let (key, message) = key_of(
        MysqlExtractor
            .doctor_json(&connection(json!({"connect_timeout": "soon"})))
            .await
            .unwrap_err(),
    );
    assert_eq!(key.as_deref(), Some("connect_timeout"), "{message}");
    assert!(
        message.contains("in the connection: invalid type"),
        "{message}"
    );
    let (key, message) = key_of(
        MysqlWriter
            .doctor_json(&connection(json!({"hostname": "db.internal"})))
            .await
            .unwrap_err(),
    );
    assert!(
        message.contains("in the connection: unknown field `hostname`, expected one of `host`"),
        "{key:?}: {message}"
    );
    let (key, _) = key_of(
        MysqlExtractor
            .discover_json(&connection(json!({"ssl_mode": "sometimes"})))
            .await
            .unwrap_err(),
    );
    assert_eq!(key.as_deref(), Some("ssl_mode"));
    // A numeric connect_timeout is used: port 9 refuses at once, well within it.
    let error = MysqlExtractor
        .doctor_json(&connection(json!({"connect_timeout": 3})))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Connection, "{error}");
}

/// In a run, a relative `ssl_ca` names a file next to the pipeline (the run's base directory),
/// as every other relative path does, whatever the current directory.
#[tokio::test]
async fn a_relative_ssl_ca_resolves_against_the_pipeline_directory() {
    let db = Db::new("sslca").await;
    let config = |ca: &str| {
        db.config(json!({"query": "SELECT 1 AS one", "ssl_mode": "preferred", "ssl_ca": ca}))
    };
    let err = db
        .run
        .run(&MysqlExtractor, "missing", config("certs/ca.pem"), &[])
        .await
        .unwrap_err();
    let expected = db.dir.path().join("certs/ca.pem");
    assert!(
        matches!(&err, DriverError::Config { key: Some(k), message } if k == "ssl_ca" && message.contains(&expected.display().to_string())),
        "{err}"
    );
    // The file next to the pipeline is found: a server without TLS is then read in plain TCP
    // (`preferred`); one with TLS would check the (placeholder) certificate.
    let have_ssl = db.strings("SELECT @@have_ssl").await.remove(0);
    if have_ssl.as_deref() == Some("YES") {
        return;
    }
    std::fs::create_dir_all(db.dir.path().join("certs")).unwrap();
    std::fs::write(&expected, "-----BEGIN CERTIFICATE-----\n").unwrap();
    assert!(!std::path::Path::new("certs/ca.pem").exists());
    let out = db
        .run
        .run(&MysqlExtractor, "found", config("certs/ca.pem"), &[])
        .await
        .unwrap();
    assert_eq!(out.rows, 1);
}
