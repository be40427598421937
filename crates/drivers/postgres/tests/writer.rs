//! `postgres.writer` against the real PostgreSQL: append, replace, upsert, create_table,
//! columns by name, key checks, and a failure leaving the destination as it was.

mod common;

use common::Db;
use driver_api::ErrorClass;
use driver_postgres::PostgresWriter;
use serde_json::json;

/// A step table `src` with `n` rows: id, name, amount DECIMAL(10,2), at TIMESTAMPTZ.
fn step_table(db: &Db, sql: &str) {
    db.run.connection().execute_batch(sql).unwrap();
}

async fn dest(tag: &str) -> Db {
    let db = Db::new(tag).await;
    db.exec(
        "CREATE TABLE dest (id integer PRIMARY KEY, name text NOT NULL, amount numeric(10,2),
                            note text DEFAULT 'kept');
         INSERT INTO dest VALUES (1, 'old one', 1.00, 'x'), (9, 'old nine', 9.00, 'y');",
    )
    .await;
    step_table(
        &db,
        "CREATE TABLE src AS SELECT i::INTEGER AS id, 'new ' || i AS name,
                                    (i * 1.5)::DECIMAL(10,2) AS amount
         FROM range(1, 4) t(i);",
    );
    db
}

async fn contents(db: &Db) -> Vec<Option<String>> {
    db.strings("SELECT concat_ws(',', id, name, amount, note) FROM dest ORDER BY id")
        .await
}

#[tokio::test]
async fn append_inserts_by_column_name_with_defaults() {
    let db = dest("append").await;
    db.exec("DELETE FROM dest WHERE id = 1").await;
    let output = db
        .run
        .run(
            &PostgresWriter,
            "w",
            db.config(json!({"table": "dest"})),
            &["src"],
        )
        .await
        .unwrap();
    assert_eq!(output.rows, 3);
    assert_eq!(
        contents(&db).await,
        [
            "1,new 1,1.50,kept",
            "2,new 2,3.00,kept",
            "3,new 3,4.50,kept",
            "9,old nine,9.00,y"
        ]
        .map(|s| Some(s.to_owned()))
    );
}

#[tokio::test]
async fn upsert_updates_existing_keys_and_inserts_new_ones() {
    let db = dest("upsert").await;
    db.run
        .run(
            &PostgresWriter,
            "w",
            db.config(json!({"table": "dest", "mode": "upsert", "primary_key": ["id"]})),
            &["src"],
        )
        .await
        .unwrap();
    assert_eq!(
        contents(&db).await,
        [
            "1,new 1,1.50,x",
            "2,new 2,3.00,kept",
            "3,new 3,4.50,kept",
            "9,old nine,9.00,y"
        ]
        .map(|s| Some(s.to_owned()))
    );
}

#[tokio::test]
async fn replace_leaves_exactly_the_step_rows() {
    let db = dest("replace").await;
    db.run
        .run(
            &PostgresWriter,
            "w",
            db.config(json!({"table": "dest", "mode": "replace"})),
            &["src"],
        )
        .await
        .unwrap();
    assert_eq!(
        contents(&db).await,
        [
            "1,new 1,1.50,kept",
            "2,new 2,3.00,kept",
            "3,new 3,4.50,kept"
        ]
        .map(|s| Some(s.to_owned()))
    );
}

#[tokio::test]
async fn a_failure_leaves_the_destination_as_it_was() {
    let db = dest("atomic").await;
    // Row 3 breaks the destination's NOT NULL on name: after 2 good rows.
    step_table(&db, "UPDATE src SET name = NULL WHERE id = 3");
    let before = contents(&db).await;
    for mode in ["append", "replace", "upsert"] {
        let error = db
            .run
            .run(
                &PostgresWriter,
                "w",
                db.config(json!({"table": "dest", "mode": mode, "primary_key": ["id"]})),
                &["src"],
            )
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("null value") || text.contains("duplicate key"),
            "{mode}: {error}"
        );
        assert_eq!(contents(&db).await, before, "{mode}");
    }
}

#[tokio::test]
async fn create_table_makes_the_destination_with_its_key() {
    let db = dest("create").await;
    db.run
        .run(
            &PostgresWriter,
            "w",
            db.config(json!({"table": "made", "create_table": true, "primary_key": ["id"], "mode": "upsert"})),
            &["src"],
        )
        .await
        .unwrap();
    assert_eq!(
        db.strings(
            "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
             FROM pg_attribute WHERE attrelid = 'made'::regclass AND attnum > 0"
        )
        .await,
        [Some("id integer, name text, amount numeric(10,2)".into())]
    );
    assert_eq!(
        db.strings("SELECT count(*) FROM made").await,
        [Some("3".into())]
    );
    assert_eq!(
        db.strings("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'made'::regclass AND contype = 'p'").await,
        [Some("PRIMARY KEY (id)".into())]
    );
    // Without create_table a missing table is a config error naming it.
    let error = db
        .run
        .run(
            &PostgresWriter,
            "w",
            db.config(json!({"table": "absent"})),
            &["src"],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(error.to_string().contains("absent"), "{error}");
}

#[tokio::test]
async fn keys_and_columns_are_checked_before_anything_is_written() {
    let db = dest("keys").await;
    let before = contents(&db).await;
    step_table(
        &db,
        "CREATE TABLE dup AS SELECT * FROM src UNION ALL SELECT * FROM src WHERE id = 2",
    );
    let error = db
        .run
        .run(
            &PostgresWriter,
            "w",
            db.config(json!({"table": "dest", "mode": "upsert", "primary_key": ["id"]})),
            &["dup"],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Data, "{error}");
    assert!(error.to_string().contains("more than once"), "{error}");
    step_table(&db, "CREATE TABLE extra AS SELECT *, 1 AS surplus FROM src");
    let error = db
        .run
        .run(
            &PostgresWriter,
            "w",
            db.config(json!({"table": "dest"})),
            &["extra"],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Data, "{error}");
    assert!(error.to_string().contains("surplus"), "{error}");
    let error = db
        .run
        .run(
            &PostgresWriter,
            "w",
            db.config(json!({"table": "dest", "mode": "upsert"})),
            &["src"],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert_eq!(contents(&db).await, before);
}
