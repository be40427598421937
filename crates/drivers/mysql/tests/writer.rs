//! mysql.writer against the real server: modes, atomic replace, upsert checks, warnings,
//! create_table.

mod common;

use common::Db;
use driver_api::ErrorClass;
use driver_mysql::MysqlWriter;
use serde_json::json;

/// A step table `src` in the run database.
fn step_table(db: &Db, sql: &str) {
    db.run
        .connection()
        .execute_batch(&format!("CREATE OR REPLACE TABLE src AS {sql}"))
        .unwrap();
}

async fn people(db: &Db) {
    db.exec(
        "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(10) NOT NULL, score INT NULL DEFAULT 7);
         INSERT INTO people VALUES (1, 'old-1', 1), (2, 'old-2', 2)",
    )
    .await;
}

async fn contents(db: &Db, table: &str) -> Vec<Option<String>> {
    db.strings(&format!(
        "SELECT CONCAT_WS('|', id, name, IFNULL(score, 'null')) FROM `{table}` ORDER BY id"
    ))
    .await
}

#[tokio::test]
async fn upsert_updates_existing_keys_and_inserts_new_ones() {
    let db = Db::new("upsert").await;
    people(&db).await;
    step_table(
        &db,
        "SELECT * FROM (VALUES (2, 'new-2'), (3, 'new-3')) t(id, name)",
    );
    let config = db.config(json!({"table": "people", "mode": "upsert", "upsert_keys": ["id"]}));
    let out = db
        .run
        .run(&MysqlWriter, "w", config, &["src"])
        .await
        .unwrap();
    assert_eq!(out.rows, 2);
    // Columns the step lacks keep their value on update and get their default on insert.
    assert_eq!(
        contents(&db, "people").await,
        [
            Some("1|old-1|1".into()),
            Some("2|new-2|2".into()),
            Some("3|new-3|7".into())
        ]
    );

    // Keys must match a unique index of the destination...
    let config = db.config(json!({"table": "people", "mode": "upsert", "primary_key": ["name"]}));
    let err = db
        .run
        .run(&MysqlWriter, "w", config, &["src"])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(err.to_string().contains("PRIMARY (id)"), "{err}");
    // ...and identify the step's rows.
    step_table(
        &db,
        "SELECT * FROM (VALUES (4, 'a'), (4, 'b'), (NULL, 'c')) t(id, name)",
    );
    let config = db.config(json!({"table": "people", "mode": "upsert", "primary_key": ["id"]}));
    let err = db
        .run
        .run(&MysqlWriter, "w", config.clone(), &["src"])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("NULL in a primary_key column"),
        "{err}"
    );
    step_table(&db, "SELECT * FROM (VALUES (4, 'a'), (4, 'b')) t(id, name)");
    let err = db
        .run
        .run(&MysqlWriter, "w", config, &["src"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than once"), "{err}");
    assert_eq!(contents(&db, "people").await.len(), 3, "nothing written");
}

#[tokio::test]
async fn replace_swaps_atomically_and_a_failure_leaves_the_destination_untouched() {
    let db = Db::new("replace").await;
    people(&db).await;
    step_table(
        &db,
        "SELECT i AS id, 'row-' || i AS name, i * 10 AS score FROM range(1, 2001) r(i)",
    );
    let config = db.config(json!({"table": "people", "mode": "replace"}));
    let out = db
        .run
        .run(&MysqlWriter, "w", config.clone(), &["src"])
        .await
        .unwrap();
    assert_eq!(out.rows, 2000);
    assert_eq!(
        db.strings("SELECT CONCAT(COUNT(*), '/', SUM(score)) FROM people")
            .await,
        [Some("2000/20010000".into())]
    );

    // Row 1500 does not fit VARCHAR(10): the server loads the rest with a warning.
    step_table(
        &db,
        "SELECT i AS id, CASE WHEN i = 1500 THEN 'far too long a name' ELSE 'x' || i END AS name, i AS score FROM range(1, 3001) r(i)",
    );
    let err = db
        .run
        .run(&MysqlWriter, "w", config, &["src"])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Data);
    assert!(
        err.to_string().contains("1406") || err.to_string().contains("1265"),
        "{err}"
    );
    assert!(err.to_string().contains("name"), "{err}");
    assert_eq!(
        db.strings("SELECT CONCAT(COUNT(*), '/', SUM(score)) FROM people")
            .await,
        [Some("2000/20010000".into())],
        "destination exactly as before"
    );
    assert_eq!(
        db.strings(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
        )
        .await,
        [Some("1".into())],
        "no staging table left"
    );
}

#[tokio::test]
async fn replace_refuses_tables_with_foreign_keys() {
    let db = Db::new("fk").await;
    people(&db).await;
    db.exec("CREATE TABLE orders (id INT PRIMARY KEY, person INT, FOREIGN KEY (person) REFERENCES people (id))")
        .await;
    step_table(&db, "SELECT 1 AS id, 'x' AS name");
    let config = db.config(json!({"table": "people", "mode": "replace"}));
    let err = db
        .run
        .run(&MysqlWriter, "w", config, &["src"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("foreign key"), "{err}");
    assert_eq!(contents(&db, "people").await.len(), 2);
}

#[tokio::test]
async fn append_is_one_transaction_and_warnings_fail_it() {
    let db = Db::new("append").await;
    people(&db).await;
    step_table(
        &db,
        "SELECT * FROM (VALUES (10, 'ten', NULL), (11, 'eleven', 11)) t(id, name, score)",
    );
    let config = db.config(json!({"table": "people", "truncate_before": true}));
    let out = db
        .run
        .run(&MysqlWriter, "w", config, &["src"])
        .await
        .unwrap();
    assert_eq!(out.rows, 2);
    assert_eq!(
        contents(&db, "people").await,
        [Some("10|ten|null".into()), Some("11|eleven|11".into())]
    );

    // An invalid value: the warning fails the step and the transaction (with its DELETE)
    // rolls back.
    step_table(
        &db,
        "SELECT * FROM (VALUES (12, 'twelve', 'abc')) t(id, name, score)",
    );
    let config = db.config(json!({"table": "people", "truncate_before": true}));
    let err = db
        .run
        .run(&MysqlWriter, "w", config, &["src"])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Data);
    assert!(
        err.to_string().contains("warning") && err.to_string().contains("score"),
        "{err}"
    );
    assert_eq!(contents(&db, "people").await.len(), 2, "rolled back");

    // Step columns the destination lacks fail before writing.
    step_table(&db, "SELECT 13 AS id, 'x' AS name, 1 AS extra");
    let config = db.config(json!({"table": "people"}));
    let err = db
        .run
        .run(&MysqlWriter, "w", config, &["src"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no column extra"), "{err}");

    // A missing destination without create_table.
    let config = db.config(json!({"table": "nope"}));
    let err = db
        .run
        .run(&MysqlWriter, "w", config, &["src"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("create_table"), "{err}");
}

#[tokio::test]
async fn create_table_maps_duckdb_types_and_saves_the_ddl() {
    let db = Db::new("create").await;
    step_table(
        &db,
        "SELECT 'k1' AS key, true AS flag, 200::UTINYINT AS small, 12345678901234567890::UBIGINT AS big,
                170141183460469231731687303715884105727::HUGEINT AS huge, 1.5::DECIMAL(7,3) AS dec,
                DATE '2024-01-02' AS day, TIMESTAMPTZ '2024-01-02 03:04:05+02' AS at, [1, 2] AS list,
                {'a': 1} AS obj, 'ž' AS txt, '\\x01'::BLOB AS bin, gen_random_uuid() AS uid",
    );
    let config = db.config(
        json!({"table": "made", "mode": "upsert", "primary_key": ["key"], "create_table": true}),
    );
    db.run
        .run(&MysqlWriter, "make", config, &["src"])
        .await
        .unwrap();
    let types = db
        .strings("SELECT GROUP_CONCAT(CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE) ORDER BY ORDINAL_POSITION SEPARATOR ', ') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'made'")
        .await;
    assert_eq!(
        types[0].as_deref(),
        Some(
            "key varchar(255), flag tinyint(1), small tinyint(3) unsigned, big bigint(20) unsigned, huge decimal(39,0), dec decimal(7,3), day date, at datetime(6), list longtext, obj longtext, txt longtext, bin longblob, uid char(36)"
        )
    );
    assert_eq!(
        db.strings("SELECT CONCAT_WS('|', `key`, flag, big, huge, at, list, obj, txt) FROM made").await,
        [Some("k1|1|12345678901234567890|170141183460469231731687303715884105727|2024-01-02 01:04:05.000000|[1,2]|{\"a\":1}|ž".into())]
    );
    let ddl = std::fs::read_to_string(db.dir.path().join("session/artifacts/make/ddl_plan.sql"))
        .or_else(|_| {
            // The artifact layout belongs to the execution context: find the file.
            let mut found = None;
            for entry in walk(db.dir.path()) {
                if entry.ends_with("make/ddl_plan.sql") {
                    found = Some(std::fs::read_to_string(&entry).unwrap());
                }
            }
            found.ok_or(())
        })
        .expect("ddl_plan.sql saved");
    assert!(
        ddl.starts_with("CREATE TABLE `made` (`key` VARCHAR(255) NOT NULL"),
        "{ddl}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
