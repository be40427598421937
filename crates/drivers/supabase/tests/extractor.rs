//! supabase.extractor and discovery against a real PostgREST 12 and the real PostgreSQL.

mod common;

use common::PostgRest;
use driver_api::testing::TestRun;
use driver_supabase::SupabaseExtractor;
use serde_json::{Map, Value, json};

fn connection(pg: &PostgRest, with_dsn: bool) -> Map<String, Value> {
    let mut c = json!({"rest_url": pg.rest_url(), "service_role_key": pg.service_key()});
    if with_dsn {
        c["pg_dsn"] = pg.dsn().into();
    }
    c.as_object().unwrap().clone()
}

fn config(pg: &PostgRest, with_dsn: bool, extra: Value) -> Value {
    let mut c = connection(pg, with_dsn);
    c.extend(extra.as_object().unwrap().clone());
    Value::Object(c)
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_continue_past_db_max_rows_in_primary_key_order() {
    let pg = PostgRest::start(Some(100)).await;
    pg.exec(
        "CREATE TABLE events (id int8 PRIMARY KEY, v text);
         INSERT INTO events SELECT g, 'e' || g FROM generate_series(1, 2500) g ORDER BY random();",
        &["events"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    // The server caps every page at 100 rows although 1000 are asked for: the read goes on.
    let out = run
        .run(
            &SupabaseExtractor,
            "read",
            config(&pg, true, json!({"table": "events", "page_size": 1000})),
            &[],
        )
        .await
        .expect("read");
    assert_eq!(out.rows, 2500);
    assert_eq!(
        run.query_strings(
            "SELECT concat_ws(',', count(DISTINCT id), min(id), max(id), sum(id)) FROM read"
        ),
        vec![Some("2500,1,2500,3126250".into())]
    );
    // pages: 25 full ones and the empty one that ends the read.
    let metrics =
        std::fs::read_to_string(run.execution_context().session_dir().join("metrics.jsonl"))
            .unwrap();
    assert!(
        metrics.contains(r#""metric":"pages_fetched","value":26"#),
        "{metrics}"
    );

    // limit is a total over pages, with an explicit order.
    let out = run
        .run(
            &SupabaseExtractor,
            "top",
            config(
                &pg,
                false,
                json!({"table": "events", "order": "id.desc", "limit": 250, "page_size": 30}),
            ),
            &[],
        )
        .await
        .expect("limited read");
    assert_eq!(out.rows, 250);
    assert_eq!(
        run.query_strings("SELECT concat_ws(',', min(id), max(id)) FROM top"),
        vec![Some("2251,2500".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn select_filter_and_schema_shape_the_read() {
    let pg = PostgRest::start(None).await;
    pg.exec(
        "CREATE TABLE sales.orders (id int8 PRIMARY KEY, status text, amount numeric(12,2),
                                    created_at timestamptz, note text);
         INSERT INTO sales.orders VALUES
           (1, 'paid', 10.00, '2024-01-05T10:00:00Z', 'a'),
           (2, 'paid', 99.99, '2024-01-20T10:00:00Z', 'b'),
           (3, 'open', 50.00, '2024-01-21T10:00:00Z', 'c'),
           (4, 'paid', 150.00, '2024-02-01T10:00:00Z', 'd'),
           (5, 'paid', NULL, '2024-01-25T10:00:00Z', 'e & f');",
        &["sales.orders"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    run.run(
        &SupabaseExtractor,
        "paid",
        config(
            &pg,
            true,
            json!({"schema": "sales", "table": "orders", "select": "id,amount,note",
                   "filter": {"status": "eq.paid",
                              "created_at": ["gte.2024-01-01", "lt.2024-02-01"]},
                   "order": "id"}),
        ),
        &[],
    )
    .await
    .expect("filtered read");
    assert_eq!(
        run.query_strings(
            "SELECT concat_ws('|', id, amount, note, typeof(amount)) FROM paid ORDER BY id"
        ),
        vec![
            Some("1|10.00|a|DECIMAL(12,2)".into()),
            Some("2|99.99|b|DECIMAL(12,2)".into()),
            Some("5|e & f|DECIMAL(12,2)".into()),
        ]
    );

    // A raw filter string, and an empty result that keeps its columns and types.
    run.run(
        &SupabaseExtractor,
        "none",
        config(
            &pg,
            true,
            json!({"schema": "sales", "table": "orders", "filter": "status=eq.cancelled"}),
        ),
        &[],
    )
    .await
    .expect("empty read");
    assert_eq!(
        run.query_strings(
            "SELECT column_name || ' ' || data_type FROM duckdb_columns() WHERE table_name = 'none' ORDER BY column_index"
        ),
        vec![
            Some("id BIGINT".into()),
            Some("status VARCHAR".into()),
            Some("amount DECIMAL(12,2)".into()),
            Some("created_at TIMESTAMP WITH TIME ZONE".into()),
            Some("note VARCHAR".into()),
        ]
    );
    assert_eq!(
        run.query_strings("SELECT count(*)::VARCHAR FROM none"),
        vec![Some("0".into())]
    );

    // A missing table is an error, never an empty table.
    let err = run
        .run(
            &SupabaseExtractor,
            "missing",
            config(&pg, false, json!({"table": "nope"})),
            &[],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!run.table_exists("missing"));
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_lists_tables_and_columns() {
    let pg = PostgRest::start(None).await;
    pg.exec(
        "CREATE TABLE customers (id int8 PRIMARY KEY, name text, balance numeric(10,2));
         CREATE VIEW rich AS SELECT id, name FROM customers WHERE balance > 100;",
        &["customers", "rich"],
    )
    .await;
    let with_dsn = driver_api::DynDriver::discover_json(&SupabaseExtractor, &connection(&pg, true))
        .await
        .expect("discover over pg_dsn");
    let names: Vec<&str> = with_dsn.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["customers", "rich"]);
    let columns = |t: &driver_api::DiscoveredTable| -> Vec<(String, String)> {
        t.columns
            .iter()
            .map(|c| (c.name.clone(), c.source_type.clone()))
            .collect()
    };
    assert_eq!(
        columns(&with_dsn[0]),
        [
            ("id".to_owned(), "bigint".to_owned()),
            ("name".to_owned(), "text".to_owned()),
            ("balance".to_owned(), "numeric(10,2)".to_owned()),
        ]
    );
    assert_eq!(with_dsn[0].primary_key, ["id"]);
    assert_eq!(with_dsn[0].kind, Some("table"));
    assert_eq!(with_dsn[1].kind, Some("view"));

    let via_openapi =
        driver_api::DynDriver::discover_json(&SupabaseExtractor, &connection(&pg, false))
            .await
            .expect("discover via OpenAPI");
    let names: Vec<&str> = via_openapi.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["customers", "rich"]);
    assert!(
        columns(&via_openapi[0]).contains(&("id".to_owned(), "bigint".to_owned())),
        "{:?}",
        via_openapi[0].columns
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_accepts_a_good_connection_and_names_a_bad_key() {
    use driver_api::{DynDriver, ErrorClass};
    let pg = PostgRest::start(None).await;
    SupabaseExtractor
        .doctor_json(&connection(&pg, true))
        .await
        .expect("healthy connection");

    let mut wrong = connection(&pg, false);
    wrong.insert(
        "service_role_key".into(),
        common::jwt("service_role", "not-the-server-secret-but-long-enough-0000").into(),
    );
    let err = SupabaseExtractor.doctor_json(&wrong).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");

    let mut down = connection(&pg, false);
    down.insert("rest_url".into(), "http://127.0.0.1:9".into());
    let err = SupabaseExtractor.doctor_json(&down).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Connection, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_resources_and_computed_columns_get_inferred_types() {
    let pg = PostgRest::start(None).await;
    pg.exec(
        "CREATE TABLE authors (id int8 PRIMARY KEY, name text);
         CREATE TABLE posts (id int8 PRIMARY KEY, title text, author_id int8 REFERENCES authors,
                             score numeric(6,3), meta jsonb);
         INSERT INTO authors VALUES (1, 'Ann'), (2, 'Bo');
         INSERT INTO posts VALUES (10, 'first', 1, 1.250, '{\"tags\": [\"a\"]}'),
                                  (11, 'second', 2, NULL, NULL);",
        &["authors", "posts"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    run.run(
        &SupabaseExtractor,
        "posts",
        config(
            &pg,
            true,
            json!({"table": "posts", "select": "id,score,meta,headline:title,author:authors(name)"}),
        ),
        &[],
    )
    .await
    .expect("read with an embedded resource");
    assert_eq!(
        run.query_strings(
            "SELECT concat_ws('|', id, typeof(score), score, typeof(meta), meta, typeof(headline), headline, typeof(author), author)
             FROM posts ORDER BY id"
        ),
        vec![
            Some(r#"10|DECIMAL(6,3)|1.250|JSON|{"tags": ["a"]}|VARCHAR|first|JSON|{"name": "Ann"}"#.into()),
            Some(r#"11|DECIMAL(6,3)|JSON|VARCHAR|second|JSON|{"name": "Bo"}"#.into()),
        ]
    );
    assert!(!run.table_exists("__supabase_stage_posts"));
}

#[tokio::test(flavor = "multi_thread")]
async fn offset_skips_rows_before_limit_counts_and_pages() {
    let pg = PostgRest::start(None).await;
    pg.exec(
        "CREATE TABLE offs (id int8 PRIMARY KEY, v text);
         INSERT INTO offs SELECT g, 'o' || g FROM generate_series(1, 100) g;",
        &["offs"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    let out = run
        .run(
            &SupabaseExtractor,
            "skip",
            config(
                &pg,
                false,
                json!({"table": "offs", "order": "id.asc", "offset": 90, "page_size": 4}),
            ),
            &[],
        )
        .await
        .expect("read with offset");
    assert_eq!(out.rows, 10);
    assert_eq!(
        run.query_strings("SELECT concat_ws(',', min(id), max(id), count(*)) FROM skip"),
        vec![Some("91,100,10".into())]
    );
    let out = run
        .run(
            &SupabaseExtractor,
            "page_window",
            config(
                &pg,
                true,
                json!({"table": "offs", "offset": 10, "limit": 5, "page_size": 2}),
            ),
            &[],
        )
        .await
        .expect("read with offset and limit");
    assert_eq!(out.rows, 5);
    assert_eq!(
        run.query_strings("SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM page_window"),
        vec![Some("11,12,13,14,15".into())]
    );
}
