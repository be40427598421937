//! `postgres.extractor` against the real PostgreSQL: query and table reads, batches, the
//! read-only transaction, config and connection errors, discover and doctor.

mod common;

use common::Db;
use driver_api::{Driver, ErrorClass};
use driver_postgres::{PostgresConnection, PostgresExtractor};
use serde_json::json;

async fn seeded(tag: &str) -> Db {
    let db = Db::new(tag).await;
    db.exec(
        "CREATE SCHEMA sales;
         CREATE TABLE sales.orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric(10,2));
         INSERT INTO sales.orders SELECT g, 'c' || (g % 7), g * 1.25 FROM generate_series(1, 25000) g;
         CREATE VIEW sales.big AS SELECT * FROM sales.orders WHERE total > 100;",
    )
    .await;
    db
}

#[tokio::test]
async fn a_query_streams_in_batches_into_the_step_table() {
    let db = seeded("query").await;
    let output = db
        .run
        .run(
            &PostgresExtractor,
            "orders",
            db.config(json!({
                "query": "SELECT id, total, customer FROM sales.orders ORDER BY id;",
                "batch_size": 1000
            })),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(output.rows, 25_000);
    assert_eq!(
        db.run
            .query_strings("SELECT count(*) || ',' || sum(total) || ',' || max(id) FROM orders"),
        [Some("25000,390640625.00,25000".into())]
    );
}

#[tokio::test]
async fn a_table_read_takes_columns_where_and_limit() {
    let db = seeded("table").await;
    db.run
        .run(
            &PostgresExtractor,
            "picked",
            db.config(json!({
                "table": "orders", "schema": "sales", "columns": ["customer", "id"],
                "where": "id <= 100 AND customer = 'c3'", "limit": 5
            })),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        db.duck_types("picked"),
        [
            ("customer".to_owned(), "VARCHAR".to_owned()),
            ("id".to_owned(), "BIGINT".to_owned())
        ]
    );
    assert_eq!(
        db.run
            .query_strings("SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM picked"),
        [Some("3,10,17,24,31".into())]
    );
}

#[tokio::test]
async fn an_unknown_column_or_table_is_a_config_error_naming_it() {
    let db = seeded("unknown").await;
    let error = db
        .run
        .run(
            &PostgresExtractor,
            "x",
            db.config(json!({"table": "orders", "schema": "sales", "columns": ["id", "nope"]})),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(error.to_string().contains("nope"), "{error}");
    assert!(error.to_string().contains("customer"), "{error}");
    let error = db
        .run
        .run(
            &PostgresExtractor,
            "x",
            db.config(json!({"table": "missing"})),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(error.to_string().contains("missing"), "{error}");
    let error = db
        .run
        .run(
            &PostgresExtractor,
            "x",
            db.config(json!({"query": "SELEC 1"})),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(!db.run.table_exists("x"));
}

#[tokio::test]
async fn the_read_is_read_only() {
    let db = seeded("readonly").await;
    let error = db
        .run
        .run(
            &PostgresExtractor,
            "x",
            db.config(json!({"query": "DELETE FROM sales.orders RETURNING id"})),
            &[],
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("read-only"), "{error}");
    assert_eq!(
        db.strings("SELECT count(*) FROM sales.orders").await,
        [Some("25000".into())]
    );
    assert!(!db.run.table_exists("x"));
}

/// A replica takes no DDL, and a session may be read-only: a query's numeric precision comes
/// from the row description, not from a view created on the server.
#[tokio::test]
async fn a_read_only_server_describes_a_querys_numeric_columns_exactly() {
    let db = seeded("typmod").await;
    db.exec(&format!(
        "ALTER DATABASE \"{}\" SET default_transaction_read_only = on",
        db.name
    ))
    .await;
    db.run
        .run(
            &PostgresExtractor,
            "exact",
            db.config(json!({
                "query": "SELECT id, total, (total / 3)::numeric(12,4) AS third, total * 2 AS free \
                          FROM sales.orders WHERE id <= 3 \
                          UNION ALL SELECT 0, 0.5::numeric(10,2), 1.2345::numeric(12,4), 7.125"
            })),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        db.duck_types("exact"),
        [
            ("id".to_owned(), "BIGINT".to_owned()),
            ("total".to_owned(), "DECIMAL(10,2)".to_owned()),
            ("third".to_owned(), "DECIMAL(12,4)".to_owned()),
            // No declared precision: exact text, as for any unconstrained numeric.
            ("free".to_owned(), "VARCHAR".to_owned()),
        ]
    );
    assert_eq!(
        db.run.query_strings(
            "SELECT string_agg(total || '/' || third || '/' || free, ' ' ORDER BY id) FROM exact"
        ),
        [Some(
            "0.50/1.2345/7.125 1.25/0.4167/2.50 2.50/0.8333/5.00 3.75/1.2500/7.50".into()
        )]
    );
}

#[tokio::test]
async fn connection_errors_are_classified_and_name_no_host_or_user() {
    let dir = tempfile::tempdir().unwrap();
    let run = driver_api::testing::TestRun::new(dir.path());
    let error = run
        .run(
            &PostgresExtractor,
            "x",
            json!({"host": "127.0.0.1", "port": 1, "database": "d", "user": "secretuser",
                   "password": "hunter2", "sslmode": "disable", "query": "SELECT 1"}),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Connection, "{error}");
    let text = error.to_string();
    for secret in ["127.0.0.1", "secretuser", "hunter2"] {
        assert!(!text.contains(secret), "{text}");
    }
    let error = run
        .run(
            &PostgresExtractor,
            "x",
            json!({"dsn": "postgresql://secretuser:hunter2@127.0.0.1:5432/postgres?sslmode=disable",
                   "user": "other", "query": "SELECT 1"}),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[tokio::test]
async fn a_dsn_connects_and_discover_lists_tables_with_keys() {
    let db = seeded("discover").await;
    let connection: PostgresConnection = serde_json::from_value(json!({
        "dsn": format!("postgresql://postgres@127.0.0.1:5432/{}?sslmode=disable", db.name)
    }))
    .unwrap();
    PostgresExtractor.doctor(&connection).await.unwrap();
    let tables = PostgresExtractor.discover(&connection).await.unwrap();
    let orders = tables.iter().find(|t| t.name == "orders").unwrap();
    assert_eq!(orders.schema.as_deref(), Some("sales"));
    assert_eq!(orders.kind, Some("table"));
    assert_eq!(orders.primary_key, ["id"]);
    let columns: Vec<(&str, &str, Option<bool>)> = orders
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.source_type.as_str(), c.nullable))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", "bigint", Some(false)),
            ("customer", "text", Some(false)),
            ("total", "numeric(10,2)", Some(true))
        ]
    );
    let view = tables.iter().find(|t| t.name == "big").unwrap();
    assert_eq!(view.kind, Some("view"));
    assert_eq!(view.estimated_rows, None);
}

#[test]
fn the_specs_describe_the_configs() {
    driver_api::testing::assert_spec_matches::<PostgresExtractor>();
    driver_api::testing::assert_spec_matches::<driver_postgres::PostgresWriter>();
}
