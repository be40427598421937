//! supabase.writer against a real PostgREST 12 and the real PostgreSQL.

mod common;

use std::time::Duration;

use common::PostgRest;
use driver_api::ErrorClass;
use driver_api::testing::TestRun;
use driver_supabase::{SupabaseExtractor, SupabaseWriter};
use serde_json::{Value, json};

fn run_in(dir: &tempfile::TempDir) -> TestRun {
    TestRun::new(dir.path())
}

fn source(run: &TestRun, sql: &str) {
    run.connection().execute_batch(sql).expect("source table");
}

async fn texts(pg: &PostgRest, sql: &str) -> Vec<Option<String>> {
    let client = pg.sql().await;
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get::<_, Option<String>>(0))
        .collect()
}

async fn count(pg: &PostgRest, table: &str) -> i64 {
    pg.sql()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

fn metric(run: &TestRun, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(run.execution_context().session_dir().join("metrics.jsonl"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["metric"] == name)
        .map(|m| m["value"].clone())
        .next_back()
}

const EVERY_TYPE: &str = r#"
CREATE TABLE src AS SELECT * FROM (VALUES
  (1::BIGINT, 7::SMALLINT, 2147483647::INTEGER, 9223372036854775807::BIGINT,
   170141183460469231731687303715884105727::HUGEINT,
   '1234567890123456789012345678.0123456789'::DECIMAL(38,10), 0.1::DOUBLE, 1.5::FLOAT, true,
   DATE '2024-02-29', TIME '13:14:15.123456', TIMESTAMP '2024-01-02 03:04:05.678901',
   TIMESTAMPTZ '2024-01-02 03:04:05.5+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID,
   '{"k": [1, 2.50, "x"], "n": null}'::JSON, [1, 2, 3]::INTEGER[],
   {'a': 1, 'b': 'two'}, '\x00\xFF\x10'::BLOB, 'quote " back\ slash ünï 😀', INTERVAL 1 DAY + INTERVAL 2 HOUR),
  (2, NULL, NULL, -9223372036854775808, NULL, -0.0000000001, NULL, NULL, false, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', NULL)
) t(id, i16, i32, i64, huge, dec, dbl, flt, flag, day, tod, ts, tstz, uid, doc, list, rec, bin, txt, span)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips_through_create_if_missing_and_the_extractor() {
    let pg = PostgRest::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(&dir);
    source(&run, EVERY_TYPE);

    let out = run
        .run(
            &SupabaseWriter,
            "load",
            json!({"rest_url": pg.rest_url(), "service_role_key": pg.service_key(),
                   "pg_dsn": pg.dsn(), "table": "every", "write_mode": "upsert",
                   "primary_key": "id", "create_if_missing": true}),
            &["src"],
        )
        .await
        .expect("write succeeds");
    assert_eq!(out.rows, 2);

    // The DDL: exact types, quoted identifiers, primary key; saved as an artifact.
    let ddl = std::fs::read_to_string(
        run.execution_context()
            .session_dir()
            .join("artifacts/load/ddl_plan.sql"),
    )
    .expect("ddl_plan.sql");
    for part in [
        "CREATE TABLE \"public\".\"every\"",
        "\"i64\" bigint",
        "\"huge\" numeric",
        "\"dec\" numeric(38,10)",
        "\"tstz\" timestamptz",
        "\"doc\" jsonb",
        "\"list\" jsonb",
        "\"bin\" bytea",
        "\"uid\" uuid",
        "PRIMARY KEY (\"id\")",
    ] {
        assert!(ddl.contains(part), "{part} missing from\n{ddl}");
    }

    // Postgres holds the exact values.
    let row = texts(
        &pg,
        "SELECT concat_ws('|', i16, i32, i64, huge, dec, dbl, flt, flag, day, tod, ts,
                 tstz AT TIME ZONE 'UTC', uid, doc, list, rec, encode(bin, 'hex'), txt, span)
         FROM every WHERE id = 1",
    )
    .await;
    assert_eq!(
        row,
        vec![Some(
            "7|2147483647|9223372036854775807|170141183460469231731687303715884105727|\
             1234567890123456789012345678.0123456789|0.1|1.5|t|2024-02-29|13:14:15.123456|\
             2024-01-02 03:04:05.678901|2024-01-02 01:04:05.5|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|\
             {\"k\": [1, 2.50, \"x\"], \"n\": null}|[1, 2, 3]|{\"a\": 1, \"b\": \"two\"}|00ff10|\
             quote \" back\\ slash ünï 😀|1 day 02:00:00"
                .into()
        )]
    );
    let nulls = texts(
        &pg,
        "SELECT concat_ws('|', i64, dec, flag, txt = '', i16 IS NULL, doc IS NULL, bin IS NULL) FROM every WHERE id = 2",
    )
    .await;
    assert_eq!(
        nulls,
        vec![Some("-9223372036854775808|-0.0000000001|f|t|t|t|t".into())]
    );

    // Back through PostgREST with catalog types: the same values.
    run.run(
        &SupabaseExtractor,
        "back",
        json!({"rest_url": pg.rest_url(), "service_role_key": pg.service_key(),
               "pg_dsn": pg.dsn(), "table": "every"}),
        &[],
    )
    .await
    .expect("read back");
    let types = run.query_strings(
        "SELECT column_name || ' ' || data_type FROM duckdb_columns() WHERE table_name = 'back' ORDER BY column_index",
    );
    let types: Vec<String> = types.into_iter().flatten().collect();
    assert_eq!(
        types,
        [
            "id BIGINT",
            "i16 SMALLINT",
            "i32 INTEGER",
            "i64 BIGINT",
            "huge VARCHAR",
            "dec DECIMAL(38,10)",
            "dbl DOUBLE",
            "flt FLOAT",
            "flag BOOLEAN",
            "day DATE",
            "tod TIME",
            "ts TIMESTAMP",
            "tstz TIMESTAMP WITH TIME ZONE",
            "uid UUID",
            "doc JSON",
            "list JSON",
            "rec JSON",
            "bin BLOB",
            "txt VARCHAR",
            "span VARCHAR",
        ]
    );
    let same = run.query_strings(
        "SELECT count(*)::VARCHAR FROM src s JOIN back b USING (id)
         WHERE s.i64 = b.i64 AND s.huge::VARCHAR IS NOT DISTINCT FROM b.huge AND s.dec = b.dec
           AND s.dbl IS NOT DISTINCT FROM b.dbl AND s.flag = b.flag
           AND s.day IS NOT DISTINCT FROM b.day AND s.tod IS NOT DISTINCT FROM b.tod
           AND s.ts IS NOT DISTINCT FROM b.ts AND s.tstz IS NOT DISTINCT FROM b.tstz
           AND s.uid IS NOT DISTINCT FROM b.uid AND s.bin IS NOT DISTINCT FROM b.bin
           AND s.txt = b.txt AND s.span::VARCHAR IS NOT DISTINCT FROM b.span",
    );
    assert_eq!(same, vec![Some("2".into())]);
    // JSON keeps its exact numbers (2.50, not 2.5).
    let json = run.query_strings(
        "SELECT concat_ws('|', doc::VARCHAR, list::VARCHAR, rec::VARCHAR) FROM back WHERE id = 1",
    );
    assert_eq!(
        json,
        vec![Some(
            r#"{"k": [1, 2.50, "x"], "n": null}|[1, 2, 3]|{"a": 1, "b": "two"}"#.into()
        )]
    );

    // Without pg_dsn the OpenAPI description gives the types (numerics stay exact text).
    run.run(
        &SupabaseExtractor,
        "openapi",
        json!({"rest_url": pg.rest_url(), "service_role_key": pg.service_key(),
               "table": "every", "order": "id"}),
        &[],
    )
    .await
    .expect("read via OpenAPI types");
    let got = run.query_strings(
        "SELECT concat_ws('|', typeof(i64), typeof(tstz), typeof(dec), dec, typeof(uid), typeof(doc), typeof(bin))
         FROM openapi WHERE id = 1",
    );
    assert_eq!(
        got,
        vec![Some(
            "BIGINT|TIMESTAMP WITH TIME ZONE|VARCHAR|1234567890123456789012345678.0123456789|UUID|JSON|BLOB"
                .into()
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_updates_matching_keys_and_inserts_the_rest() {
    let pg = PostgRest::start(None).await;
    pg.exec(
        "CREATE TABLE sales.items (id int8 PRIMARY KEY, name text, price numeric(10,2));
             INSERT INTO sales.items VALUES (1, 'old', 1.00), (2, 'keep', 2.00);",
        &["sales.items"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(&dir);
    source(
        &run,
        "CREATE TABLE src AS SELECT * FROM (VALUES (1, 'new', 10.10::DECIMAL(10,2)), (3, 'added', 3.30)) t(id, name, price)",
    );
    run.run(
        &SupabaseWriter,
        "up",
        json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "schema": "sales",
               "table": "items", "write_mode": "upsert", "primary_key": ["id"], "batch_size": 1}),
        &["src"],
    )
    .await
    .expect("upsert");
    let rows = texts(
        &pg,
        "SELECT concat_ws(',', id, name, price) FROM sales.items ORDER BY id",
    )
    .await;
    assert_eq!(
        rows,
        vec![
            Some("1,new,10.10".into()),
            Some("2,keep,2.00".into()),
            Some("3,added,3.30".into())
        ]
    );

    // Duplicate keys in the step table are refused before anything is sent.
    source(
        &run,
        "CREATE TABLE dup AS SELECT * FROM (VALUES (5, 'a'), (5, 'b')) t(id, name)",
    );
    let err = run
        .run(
            &SupabaseWriter,
            "dup_up",
            json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "schema": "sales",
                   "table": "items", "write_mode": "upsert", "primary_key": "id"}),
            &["dup"],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than once"), "{err}");
    assert_eq!(count(&pg, "sales.items").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_is_one_transaction_and_needs_pg_dsn() {
    let pg = PostgRest::start(None).await;
    pg.exec(
        "CREATE TABLE scores (id int8 PRIMARY KEY, score int4 CHECK (score >= 0));
             INSERT INTO scores SELECT g, g FROM generate_series(1, 5) g;",
        &["scores"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(&dir);
    source(
        &run,
        "CREATE TABLE src AS SELECT * FROM (VALUES (10, 100), (11, 110)) t(id, score)",
    );
    let config = |extra: Value| {
        let mut c = json!({"rest_url": pg.rest_url(), "key": pg.service_key(),
                           "table": "scores", "write_mode": "replace", "primary_key": "id"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };

    // Without pg_dsn: refused, saying what is needed; the table is untouched.
    let err = run
        .run(&SupabaseWriter, "r0", config(json!({})), &["src"])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(err.to_string().contains("pg_dsn"), "{err}");
    assert_eq!(count(&pg, "scores").await, 5);

    run.run(
        &SupabaseWriter,
        "r1",
        config(json!({"pg_dsn": pg.dsn()})),
        &["src"],
    )
    .await
    .expect("replace");
    let rows = texts(
        &pg,
        "SELECT concat_ws(',', id, score) FROM scores ORDER BY id",
    )
    .await;
    assert_eq!(rows, vec![Some("10,100".into()), Some("11,110".into())]);

    // A row the table rejects: nothing changes (TRUNCATE rolled back with the load).
    source(
        &run,
        "CREATE TABLE bad AS SELECT * FROM (VALUES (20, 1), (21, -1)) t(id, score)",
    );
    let err = run
        .run(
            &SupabaseWriter,
            "r2",
            config(json!({"pg_dsn": pg.dsn(), "batch_size": 1})),
            &["bad"],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("check constraint"), "{err}");
    let rows = texts(&pg, "SELECT id::text FROM scores ORDER BY id").await;
    assert_eq!(rows, vec![Some("10".into()), Some("11".into())]);

    // replace into a missing table with create_if_missing: created and loaded in one go.
    run.run(
        &SupabaseWriter,
        "r3",
        json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "pg_dsn": pg.dsn(),
               "table": "fresh_scores", "write_mode": "replace", "primary_key": "id",
               "create_if_missing": true}),
        &["src"],
    )
    .await
    .expect("replace creates the table");
    let rows = texts(
        &pg,
        "SELECT concat_ws(',', id, score) FROM fresh_scores ORDER BY id",
    )
    .await;
    assert_eq!(rows, vec![Some("10,100".into()), Some("11,110".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_fails_unless_create_if_missing() {
    let pg = PostgRest::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(&dir);
    source(&run, "CREATE TABLE src AS SELECT 1::BIGINT AS id, 'x' AS v");

    // Without pg_dsn PostgREST's "does not exist" answer is the only "missing".
    let err = run
        .run(
            &SupabaseWriter,
            "w",
            json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "table": "nope",
                   "create_if_missing": false}),
            &["src"],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("public.nope does not exist; create it, or set create_if_missing"),
        "{err}"
    );
    // With pg_dsn the catalog says so.
    let err = run
        .run(
            &SupabaseWriter,
            "w2",
            json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "pg_dsn": pg.dsn(),
                   "table": "nope", "create_if_missing": false}),
            &["src"],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");

    // create_if_missing with append: created, PostgREST reloaded, rows written.
    run.run(
        &SupabaseWriter,
        "w3",
        json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "pg_dsn": pg.dsn(),
               "table": "fresh", "create_if_missing": true}),
        &["src"],
    )
    .await
    .expect("created and written");
    assert_eq!(
        texts(&pg, "SELECT v FROM fresh").await,
        vec![Some("x".into())]
    );
    let events =
        std::fs::read_to_string(run.execution_context().session_dir().join("events.jsonl"))
            .unwrap();
    assert!(events.contains("table.ddl_executed"), "{events}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_key_and_missing_grant_are_clear_auth_errors() {
    let pg = PostgRest::start(None).await;
    pg.exec(
        "CREATE TABLE private (id int8 PRIMARY KEY);
             REVOKE ALL ON private FROM anon, authenticated;",
        &["private"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(&dir);
    source(&run, "CREATE TABLE src AS SELECT 1::BIGINT AS id");

    let wrong = common::jwt(
        "service_role",
        "a-different-secret-that-is-long-enough-1234",
    );
    let err = run
        .run(
            &SupabaseWriter,
            "w",
            json!({"rest_url": pg.rest_url(), "key": wrong, "table": "private"}),
            &["src"],
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("401") && text.contains("rejected the API key"),
        "{text}"
    );
    assert!(!text.contains(&wrong), "the key leaked: {text}");

    // A role without the grant: 403 for a signed-in role (401 for anon), both named clearly.
    for (step, key, status) in [
        ("w2", common::jwt("authenticated", common::SECRET), "403"),
        ("w3", pg.anon_key(), "401"),
    ] {
        let err = run
            .run(
                &SupabaseWriter,
                step,
                json!({"rest_url": pg.rest_url(), "anon_key": key, "table": "private"}),
                &["src"],
            )
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Auth, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(status) && text.contains("permission denied") && text.contains("GRANT"),
            "{text}"
        );
    }
    assert_eq!(count(&pg, "private").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgrest_restart_during_a_write_is_retried() {
    let mut pg = PostgRest::start(None).await;
    pg.exec("CREATE TABLE big (id int8 PRIMARY KEY, v text)", &["big"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(&dir);
    source(
        &run,
        "CREATE TABLE src AS SELECT range::BIGINT AS id, 'row ' || range AS v FROM range(40000)",
    );
    let config = json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "table": "big",
                        "write_mode": "upsert", "primary_key": "id", "batch_size": 50,
                        "retries": 5});
    let writer_run = run.clone();
    let write =
        tokio::spawn(async move { writer_run.run(&SupabaseWriter, "w", config, &["src"]).await });
    // Once rows arrive, stop PostgREST for a moment, then start it again on the same port.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count(&pg, "big").await < 500 {
        assert!(std::time::Instant::now() < deadline, "no rows arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pg.stop();
    let at_stop = count(&pg, "big").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.start_again().await;
    let out = write
        .await
        .unwrap()
        .expect("the write survives the restart");
    assert!(
        at_stop < 40000,
        "the restart came too late to test anything"
    );
    assert_eq!(out.rows, 40000);
    assert_eq!(count(&pg, "big").await, 40000);
    let retries = metric(&run, "retries")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    assert!(retries >= 1, "retries metric: {retries}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_batch_reports_which_batches_landed() {
    let pg = PostgRest::start(None).await;
    pg.exec(
        "CREATE TABLE capped (id int8 PRIMARY KEY CHECK (id < 250))",
        &["capped"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(&dir);
    source(
        &run,
        "CREATE TABLE src AS SELECT range::BIGINT AS id FROM range(300)",
    );
    let err = run
        .run(
            &SupabaseWriter,
            "w",
            json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "table": "capped",
                   "batch_size": 100}),
            &["src"],
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("batch 3 of 3 (100 rows)")
            && text.contains("batches 1-2 (200 rows) were written"),
        "{text}"
    );
    assert_eq!(count(&pg, "capped").await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_row_that_fails_to_read_late_fails_the_step_and_says_what_was_written() {
    // The step's rows stream out of DuckDB while batches are posted: a source view whose row
    // 150,000 cannot be computed fails the step, and the message says how many rows landed.
    let pg = PostgRest::start(None).await;
    pg.exec("CREATE TABLE late (id int8 PRIMARY KEY)", &["late"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(&dir);
    source(
        &run,
        "CREATE VIEW src AS SELECT CASE WHEN range < 150000 THEN range \
         ELSE error('bad row ' || range) END::BIGINT AS id FROM range(200000)",
    );
    let err = run
        .run(
            &SupabaseWriter,
            "w",
            json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "table": "late",
                   "batch_size": 10000}),
            &["src"],
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("bad row 150000"), "{text}");
    let landed = count(&pg, "late").await;
    match text.split_once("(after ") {
        Some((_, rest)) => {
            let rows: i64 = rest.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(rows, landed, "{text}");
            assert!(
                text.contains("they stay in the destination table"),
                "{text}"
            );
        }
        None => assert_eq!(landed, 0, "nothing said, nothing written: {text}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_if_missing_without_pg_dsn_fails_only_when_the_table_is_missing() {
    let pg = PostgRest::start(None).await;
    pg.exec(
        "CREATE TABLE present (id int8 PRIMARY KEY, v text);",
        &["present"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(&dir);
    source(&run, "CREATE TABLE src AS SELECT 1::BIGINT AS id, 'x' AS v");
    // The table exists: create_if_missing is never needed, so no pg_dsn is needed either.
    // The Python spec's prefer, returning and ddl_channel http_sql are accepted with warnings.
    run.run(
        &SupabaseWriter,
        "existing",
        json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "table": "present",
               "create_if_missing": true, "prefer": "return=minimal", "returning": "minimal",
               "ddl_channel": "http_sql"}),
        &["src"],
    )
    .await
    .expect("written into the existing table");
    assert_eq!(
        texts(&pg, "SELECT v FROM present").await,
        vec![Some("x".into())]
    );
    let events =
        std::fs::read_to_string(run.execution_context().session_dir().join("events.jsonl"))
            .unwrap();
    for key in ["prefer", "returning", "ddl_channel"] {
        assert!(
            events
                .lines()
                .any(|l| l.contains("\"event\":\"config.warning\"")
                    && l.contains(&format!("\"key\":\"{key}\""))),
            "{key}: {events}"
        );
    }

    // The table is missing: now the step fails, naming the step, the table and the fix.
    let err = run
        .run(
            &SupabaseWriter,
            "absent",
            json!({"rest_url": pg.rest_url(), "key": pg.service_key(), "table": "absent_t",
                   "create_if_missing": true}),
            &["src"],
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    let message = err.to_string();
    for part in ["\"absent\"", "public.absent_t does not exist", "add pg_dsn"] {
        assert!(message.contains(part), "{part}: {message}");
    }
}
