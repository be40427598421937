//! Incremental reads by cursor column (ADR 0033) end to end, through the real `osiris` binary
//! against MariaDB, PostgreSQL and PostgREST: the example pipelines, and the classic traps –
//! equal cursor values across a batch/page boundary and across a run boundary, late rows in
//! the lookback window, NULL cursors, a failed writer leaving the cursor where it was, a
//! cursor taken from the data whatever the clock says, `--full-refresh`, and bad config.

use std::path::PathBuf;

use crate::common::{Project, ScratchMariaDb, repo_root, rows};
use crate::postgres::ScratchPg;
use crate::supabase::harness;

/// Runs `osiris run <pipeline> --session-id <session> <extra>` and returns the exit code and
/// output.
fn run(
    project: &Project,
    env: &[(&str, &str)],
    pipeline: &str,
    session: &str,
    extra: &[&str],
) -> crate::common::Ran {
    let mut args = vec!["run", pipeline, "--session-id", session];
    args.extend_from_slice(extra);
    project.osiris_env(&args, env)
}

fn run_ok(project: &Project, env: &[(&str, &str)], pipeline: &str, session: &str, extra: &[&str]) {
    let ran = run(project, env, pipeline, session, extra);
    assert_eq!(ran.code, 0, "{session}: {}", ran.all());
}

fn session(project: &Project, id: &str) -> PathBuf {
    project.path().join(".osiris_sessions").join(id)
}

/// The ids in a step table of a session, in order.
fn ids(project: &Project, id: &str, table: &str) -> Vec<String> {
    rows(
        &session(project, id),
        &format!("SELECT id FROM \"{table}\" ORDER BY id"),
    )
}

fn state(project: &Project, pipeline: &str, step: &str) -> serde_json::Value {
    let path = project
        .path()
        .join(".osiris/state")
        .join(pipeline)
        .join(format!("{step}.json"));
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn copy_example(project: &Project, dir: &str, files: &[&str]) {
    for file in files {
        project.write(
            file,
            std::fs::read(repo_root().join("examples").join(dir).join(file)).unwrap(),
        );
    }
}

/// The MySQL example: the saved cursor comes from the data (2024 timestamps, years before the
/// clock), rows at the last value are not repeated while a new one at that value is read, a
/// late row inside the lookback window is read, a failed writer leaves the cursor unchanged
/// so the next run reads the same rows again, and `--full-refresh` reads everything.
#[test]
fn mysql_incremental_example_survives_the_classic_traps() {
    let db = ScratchMariaDb::new("osiris_incr_mysql");
    db.query(&std::fs::read_to_string(repo_root().join("examples/mysql/shop.sql")).unwrap());
    let project = Project::new();
    copy_example(
        &project,
        "mysql",
        &["osiris_connections.yaml", "incremental_orders.yaml"],
    );
    let env = [("MYSQL_DATABASE", db.0.as_str())];
    let pipeline = "incremental_orders.yaml";

    run_ok(&project, &env, pipeline, "run1", &[]);
    assert_eq!(
        ids(&project, "run1", "changed-orders"),
        ["1", "2", "3", "4"]
    );
    let saved = state(&project, "orders-replica-mysql", "changed-orders");
    assert_eq!(
        saved["state"]["value"], "2024-03-04 17:00:00.000000",
        "{saved}"
    );
    assert_eq!(
        saved["state"]["keys_at_value"],
        serde_json::json!([["2"], ["4"]])
    );

    // 5: same cursor value as the saved one (a run boundary inside equal values); 6: committed
    // late, 5 minutes before the cursor (inside the 10m lookback); 7: an hour late (outside:
    // missed by design); 8: after the cursor. All in 2024: a cursor taken from the clock
    // (2026) would read none of them.
    db.query(
        "INSERT INTO orders VALUES
           (5, 1, 5.00, 'open', '2024-03-04 17:00:00', '2024-03-04 17:00:00'),
           (6, 2, 6.00, 'open', '2024-03-04 16:55:00', '2024-03-04 16:55:00'),
           (7, 3, 7.00, 'open', '2024-03-04 16:00:00', '2024-03-04 16:00:00'),
           (8, 1, 8.00, 'open', '2024-03-04 18:00:00', '2024-03-04 18:00:00')",
    );
    run_ok(&project, &env, pipeline, "run2", &[]);
    assert_eq!(ids(&project, "run2", "changed-orders"), ["5", "6", "8"]);
    let saved = state(&project, "orders-replica-mysql", "changed-orders");
    assert_eq!(saved["state"]["value"], "2024-03-04 18:00:00.000000");
    assert_eq!(
        db.query("SELECT count(*) FROM orders_replica"),
        "7\n",
        "the writer upserted runs 1 and 2"
    );

    // A writer that fails: the run fails and the cursor stays where it was.
    db.query("ALTER TABLE orders_replica ADD CONSTRAINT small CHECK (amount < 1000)");
    db.query("INSERT INTO orders VALUES (9, 1, 5000.00, 'open', '2024-03-05 09:00:00', '2024-03-05 09:00:00')");
    let before = std::fs::read(
        project
            .path()
            .join(".osiris/state/orders-replica-mysql/changed-orders.json"),
    )
    .unwrap();
    let failed = run(&project, &env, pipeline, "run3", &[]);
    assert_ne!(failed.code, 0, "{}", failed.all());
    assert_eq!(ids(&project, "run3", "changed-orders"), ["9"]);
    let after = std::fs::read(
        project
            .path()
            .join(".osiris/state/orders-replica-mysql/changed-orders.json"),
    )
    .unwrap();
    assert_eq!(
        before, after,
        "a failed run leaves the state file untouched"
    );

    // Fixed: the next run reads order 9 again and delivers it.
    db.query("ALTER TABLE orders_replica DROP CONSTRAINT small");
    run_ok(&project, &env, pipeline, "run4", &[]);
    assert_eq!(ids(&project, "run4", "changed-orders"), ["9"]);
    assert_eq!(
        db.query("SELECT amount FROM orders_replica WHERE id = 9"),
        "5000.00\n"
    );

    // Nothing new: an empty step table, the cursor stays.
    run_ok(&project, &env, pipeline, "run5", &[]);
    assert!(ids(&project, "run5", "changed-orders").is_empty());
    assert_eq!(
        state(&project, "orders-replica-mysql", "changed-orders")["state"]["value"],
        "2024-03-05 09:00:00.000000"
    );

    // --full-refresh reads everything again.
    run_ok(&project, &env, pipeline, "run6", &["--full-refresh"]);
    assert_eq!(ids(&project, "run6", "changed-orders").len(), 9);
}

/// Equal cursor values spanning batches (batch_size 100) and partitions (parallel range
/// reads): all rows of the first run arrive, only the new one of the second, none twice; rows
/// whose cursor is NULL are read by the first run only and never become the cursor.
#[test]
fn mysql_equal_cursor_values_across_batches_and_partitions_and_null_cursors() {
    let db = ScratchMariaDb::new("osiris_incr_mysql_eq");
    let mut sql = String::from(
        "CREATE TABLE items (id INT PRIMARY KEY, seq BIGINT NULL, note VARCHAR(10)); INSERT INTO items VALUES ",
    );
    let values: Vec<String> = (1..=250).map(|i| format!("({i}, 7, 'x')")).collect();
    sql.push_str(&values.join(","));
    sql.push_str(", (251, NULL, 'null'), (252, 3, 'old')");
    db.query(&sql);
    let project = Project::new();
    copy_example(&project, "mysql", &["osiris_connections.yaml"]);
    project.write(
        "items.yaml",
        r#"
oml_version: "0.1.0"
name: items
steps:
  - id: items
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.shop"
      table: items
      batch_size: 100
      partition_on: id
      partitions: 3
      incremental: {cursor: seq, primary_key: [id]}
"#,
    );
    let env = [("MYSQL_DATABASE", db.0.as_str())];
    run_ok(&project, &env, "items.yaml", "r1", &[]);
    assert_eq!(
        ids(&project, "r1", "items").len(),
        252,
        "NULL cursors on the first run"
    );
    let saved = state(&project, "items", "items");
    assert_eq!(saved["state"]["value"], "7");
    assert_eq!(saved["state"]["type"], "integer");
    assert_eq!(
        saved["state"]["keys_at_value"].as_array().unwrap().len(),
        250
    );

    db.query("INSERT INTO items VALUES (253, 7, 'same'), (254, NULL, 'null2'), (255, 6, 'late')");
    run_ok(&project, &env, "items.yaml", "r2", &[]);
    assert_eq!(
        ids(&project, "r2", "items"),
        ["253"],
        "only the new row at the last value; no NULL, nothing below the cursor"
    );
    assert_eq!(
        state(&project, "items", "items")["state"]["keys_at_value"]
            .as_array()
            .unwrap()
            .len(),
        251
    );
}

/// The PostgreSQL example (a `query` wrapped with the bound), and the same traps: equal values
/// at the run boundary, a late row in the lookback window, a cursor from the data,
/// `--full-refresh`.
#[test]
fn postgres_incremental_example_reads_only_what_is_new() {
    let db = ScratchPg::new();
    db.query(&std::fs::read_to_string(repo_root().join("examples/postgres/shop.sql")).unwrap());
    let project = Project::new();
    copy_example(
        &project,
        "postgres",
        &["osiris_connections.yaml", "incremental_orders.yaml"],
    );
    let env = [("PGDATABASE", db.0.as_str())];
    let pipeline = "incremental_orders.yaml";

    run_ok(&project, &env, pipeline, "run1", &[]);
    assert_eq!(
        ids(&project, "run1", "changed-orders"),
        ["1", "2", "3", "4"]
    );
    let saved = state(&project, "orders-replica-postgres", "changed-orders");
    assert_eq!(
        saved["state"]["value"], "2024-03-04 17:00:00.000000+00:00",
        "{saved}"
    );
    assert_eq!(saved["state"]["type"], "timestamptz");

    db.query(
        "INSERT INTO orders VALUES
           (5, 1, 5.00, 'open', '2024-03-04 17:00:00+00', '{}', '2024-03-04 17:00:00+00'),
           (6, 2, 6.00, 'open', '2024-03-04 16:55:00+00', '{}', '2024-03-04 16:55:00+00'),
           (7, 3, 7.00, 'open', '2024-03-04 16:00:00+00', '{}', '2024-03-04 16:00:00+00'),
           (8, 1, 8.00, 'open', '2024-03-04 18:00:00+00', '{}', '2024-03-04 18:00:00+00')",
    );
    run_ok(&project, &env, pipeline, "run2", &[]);
    assert_eq!(ids(&project, "run2", "changed-orders"), ["5", "6", "8"]);
    assert_eq!(
        state(&project, "orders-replica-postgres", "changed-orders")["state"]["value"],
        "2024-03-04 18:00:00.000000+00:00"
    );
    assert_eq!(db.query("SELECT count(*) FROM orders_replica"), "7\n");

    // A failed writer (a CHECK on the replica): the state stays, the next run re-reads.
    db.query("ALTER TABLE orders_replica ADD CONSTRAINT small CHECK (amount < 1000)");
    db.query(
        "INSERT INTO orders VALUES (9, 1, 5000, 'open', now(), '{}', '2024-03-05 09:00:00+00')",
    );
    let state_path = project
        .path()
        .join(".osiris/state/orders-replica-postgres/changed-orders.json");
    let before = std::fs::read(&state_path).unwrap();
    let failed = run(&project, &env, pipeline, "run3", &[]);
    assert_ne!(failed.code, 0, "{}", failed.all());
    assert_eq!(std::fs::read(&state_path).unwrap(), before);
    db.query("ALTER TABLE orders_replica DROP CONSTRAINT small");
    run_ok(&project, &env, pipeline, "run4", &[]);
    assert_eq!(ids(&project, "run4", "changed-orders"), ["9"]);

    run_ok(&project, &env, pipeline, "run5", &["--full-refresh"]);
    assert_eq!(ids(&project, "run5", "changed-orders").len(), 9);
}

/// PostgreSQL `table` reads: equal values across batches, NULL cursors, `initial_value`, and
/// config errors naming the step and key.
#[test]
fn postgres_equal_values_across_batches_null_cursors_and_bad_config() {
    let db = ScratchPg::new();
    db.query(
        "CREATE TABLE items (id int PRIMARY KEY, day date, note text);
         INSERT INTO items SELECT g, DATE '2024-05-01', 'x' FROM generate_series(1, 250) g;
         INSERT INTO items VALUES (251, NULL, 'null'), (252, DATE '2023-12-31', 'old');",
    );
    let project = Project::new();
    copy_example(&project, "postgres", &["osiris_connections.yaml"]);
    let pipeline = |incremental: &str| {
        format!(
            r#"
oml_version: "0.1.0"
name: items
steps:
  - id: items
    component: postgres.extractor
    mode: read
    config:
      connection: "@postgres.shop"
      table: items
      batch_size: 100
      incremental: {incremental}
"#
        )
    };
    let env = [("PGDATABASE", db.0.as_str())];
    project.write("items.yaml", pipeline("{cursor: day, primary_key: [id]}"));
    run_ok(&project, &env, "items.yaml", "r1", &[]);
    assert_eq!(ids(&project, "r1", "items").len(), 252);
    assert_eq!(
        state(&project, "items", "items")["state"]["value"],
        "2024-05-01"
    );

    db.query("INSERT INTO items VALUES (253, DATE '2024-05-01', 'same'), (254, NULL, 'n'), (255, DATE '2024-05-02', 'new')");
    run_ok(&project, &env, "items.yaml", "r2", &[]);
    assert_eq!(ids(&project, "r2", "items"), ["253", "255"]);

    // initial_value bounds a first run (another state directory = a first run); NULLs are
    // not read then either.
    project.write(
        "items.yaml",
        pipeline("{cursor: day, primary_key: [id], initial_value: '2024-05-02'}"),
    );
    run_ok(
        &project,
        &env,
        "items.yaml",
        "r3",
        &["--state-dir", "other"],
    );
    assert_eq!(ids(&project, "r3", "items"), ["255"]);

    // A duration lookback on an integer cursor: a config error naming the step and the key.
    project.write(
        "items.yaml",
        pipeline("{cursor: id, primary_key: [id], lookback: 10m}"),
    );
    let bad = run(
        &project,
        &env,
        "items.yaml",
        "r4",
        &["--state-dir", "third"],
    );
    assert_ne!(bad.code, 0);
    assert!(
        bad.all().contains("items") && bad.all().contains("incremental.lookback"),
        "{}",
        bad.all()
    );
    let r4 = session(&project, "r4");
    if r4.join("pipeline_data.duckdb").exists() {
        assert!(
            !crate::common::tables(&r4).contains(&"items".to_owned()),
            "no partial table"
        );
    }

    // The cursor must be read.
    project.write(
        "items.yaml",
        pipeline("{cursor: changed_at, primary_key: [id]}"),
    );
    let bad = run(
        &project,
        &env,
        "items.yaml",
        "r5",
        &["--state-dir", "fourth"],
    );
    assert_ne!(bad.code, 0);
    assert!(
        bad.all().contains("incremental.cursor") && bad.all().contains("changed_at"),
        "{}",
        bad.all()
    );

    // Errors the config itself shows stop the run before anything starts (exit 2).
    for (incremental, expected) in [
        ("{cursor: day, primary_key: [id], lookbak: 1m}", "lookbak"),
        (
            "{cursor: day, primary_key: [id], lookback: 10 minutes}",
            "lookback",
        ),
        ("{cursor: day}", "primary_key"),
        ("{cursor: day, primary_key: []}", "primary_key"),
        ("{cursor: day, primary_key: [id]}\n      limit: 10", "limit"),
    ] {
        project.write("items.yaml", pipeline(incremental));
        let bad = run(&project, &env, "items.yaml", "bad", &[]);
        assert_eq!(bad.code, 2, "{incremental}: {}", bad.all());
        assert!(
            bad.all().contains(expected) && bad.all().contains("items"),
            "{incremental}: {}",
            bad.all()
        );
    }
}

/// A uuid cursor (time-ordered UUIDv7 keys): the step table keeps the uuids as DuckDB `UUID`
/// (ADR 0041), the saved cursor is their canonical text, and the second run reads only the
/// newer rows.
#[test]
fn postgres_uuid_cursor_reads_only_newer_uuids() {
    let db = ScratchPg::new();
    db.query(
        "CREATE TABLE events (id uuid PRIMARY KEY, what text);
         INSERT INTO events VALUES
           ('018f0000-0000-7000-8000-000000000001', 'a'),
           ('018f0000-0000-7000-8000-000000000002', 'b'),
           ('018f0000-0000-7000-8000-00000000000a', 'c');",
    );
    let project = Project::new();
    copy_example(&project, "postgres", &["osiris_connections.yaml"]);
    project.write(
        "events.yaml",
        r#"
oml_version: "0.1.0"
name: events
steps:
  - id: events
    component: postgres.extractor
    mode: read
    config:
      connection: "@postgres.shop"
      table: events
      incremental: {cursor: id, primary_key: [id]}
"#,
    );
    let env = [("PGDATABASE", db.0.as_str())];
    run_ok(&project, &env, "events.yaml", "u1", &[]);
    assert_eq!(ids(&project, "u1", "events").len(), 3);
    assert_eq!(
        rows(
            &session(&project, "u1"),
            "SELECT DISTINCT typeof(id) FROM events"
        ),
        ["UUID"]
    );
    let saved = state(&project, "events", "events");
    assert_eq!(saved["state"]["type"], "text", "{saved}");
    assert_eq!(
        saved["state"]["value"],
        "018f0000-0000-7000-8000-00000000000a"
    );

    db.query(
        "INSERT INTO events VALUES ('018f0000-0000-7000-8000-000000000003', 'late'),
                                   ('018f0000-0000-7000-8000-00000000000b', 'new')",
    );
    run_ok(&project, &env, "events.yaml", "u2", &[]);
    assert_eq!(
        ids(&project, "u2", "events"),
        ["018f0000-0000-7000-8000-00000000000b"]
    );
}

/// Supabase (PostgREST): the example, and keyset paging over equal cursor values and NULL
/// cursors with pages of two rows.
#[tokio::test(flavor = "multi_thread")]
async fn supabase_incremental_example_and_keyset_pages() {
    let pg = harness::PostgRest::start(None).await;
    let project = Project::new();
    copy_example(
        &project,
        "supabase",
        &[
            "csv_to_supabase.yaml",
            "incremental_customers.yaml",
            "data/customers.csv",
        ],
    );
    crate::supabase::connect_example(&project, &pg);
    run_ok(&project, &[], "csv_to_supabase.yaml", "load", &[]);
    run_ok(&project, &[], "incremental_customers.yaml", "i1", &[]);
    assert_eq!(
        String::from_utf8(project.read("output/new_customers.csv"))
            .unwrap()
            .lines()
            .count(),
        5,
        "header and four customers"
    );
    let sql = pg.sql().await;
    sql.batch_execute(
        "INSERT INTO customers (id, name, email, balance, signed_up_at, active) VALUES
           (5, 'Same Second', 'a@b', 1, '2024-03-04 17:45:30', true),
           (6, 'Later', 'c@d', 2, '2024-03-05 08:00:00', true)",
    )
    .await
    .unwrap();
    run_ok(&project, &[], "incremental_customers.yaml", "i2", &[]);
    assert_eq!(ids(&project, "i2", "new-customers"), ["5", "6"]);

    // Keyset pages of 2 rows over 5 equal values and 2 NULL cursors.
    pg.exec(
        "CREATE TABLE ticks (id int PRIMARY KEY, at timestamptz, v text);
         INSERT INTO ticks SELECT g, '2024-05-01 10:00:00+00', 'x' FROM generate_series(1, 5) g;
         INSERT INTO ticks VALUES (6, NULL, 'n'), (7, NULL, 'n');",
        &["ticks"],
    )
    .await;
    project.write(
        "ticks.yaml",
        r#"
oml_version: "0.1.0"
name: ticks
steps:
  - id: ticks
    component: supabase.extractor
    mode: read
    config:
      connection: "@supabase.main"
      table: ticks
      page_size: 2
      incremental: {cursor: at, primary_key: [id]}
"#,
    );
    run_ok(&project, &[], "ticks.yaml", "t1", &[]);
    assert_eq!(
        ids(&project, "t1", "ticks"),
        ["1", "2", "3", "4", "5", "6", "7"]
    );
    sql.batch_execute(
        "INSERT INTO ticks VALUES (8, '2024-05-01 10:00:00+00', 'same'), (9, NULL, 'n'), (10, '2024-05-01 10:00:01+00', 'new')",
    )
    .await
    .unwrap();
    run_ok(&project, &[], "ticks.yaml", "t2", &[]);
    assert_eq!(
        ids(&project, "t2", "ticks"),
        ["8", "10"],
        "no NULL, no repeat"
    );
    assert_eq!(
        state(&project, "ticks", "ticks")["state"]["value"],
        "2024-05-01 10:00:01.000000+00:00"
    );
}

/// `postgres.extractor` reads a table by ranges of an integer column on parallel connections
/// (the ranges shared with mysql.extractor): every row once, NULLs of the column included, the
/// incremental bound applied to every range; a non-integer column is a config error.
#[test]
fn postgres_parallel_range_reads_every_row_once_with_the_incremental_bound() {
    let db = ScratchPg::new();
    db.query(
        "CREATE TABLE big (id int PRIMARY KEY, part bigint, changed int NOT NULL, label text);
         INSERT INTO big SELECT g, CASE WHEN g % 50 = 0 THEN NULL ELSE g END, g % 10, 'row ' || g
         FROM generate_series(1, 1000) g;",
    );
    let project = Project::new();
    copy_example(&project, "postgres", &["osiris_connections.yaml"]);
    let pipeline = |partition_on: &str| {
        format!(
            r#"
oml_version: "0.1.0"
name: big
steps:
  - id: big
    component: postgres.extractor
    mode: read
    config:
      connection: "@postgres.shop"
      table: big
      where: "label <> 'row 7'"
      batch_size: 100
      partition_on: {partition_on}
      partitions: 4
      incremental: {{cursor: changed, primary_key: [id]}}
"#
        )
    };
    let env = [("PGDATABASE", db.0.as_str())];
    project.write("big.yaml", pipeline("part"));
    let ran = run(&project, &env, "big.yaml", "p1", &["--json"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let events = crate::common::jsonl(&session(&project, "p1").join("events.jsonl"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "extraction.complete" && e["partitions"] == 4),
        "four parallel reads"
    );
    let s = session(&project, "p1");
    assert_eq!(
        rows(
            &s,
            "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE part IS NULL) FROM big"
        ),
        ["999|999|20"]
    );
    assert_eq!(state(&project, "big", "big")["state"]["value"], "9");

    // The second run: only changed >= 9 in every range, those delivered dropped.
    db.query("INSERT INTO big VALUES (1001, 1001, 9, 'new'), (1002, NULL, 10, 'newer')");
    run_ok(&project, &env, "big.yaml", "p2", &[]);
    assert_eq!(ids(&project, "p2", "big"), ["1001", "1002"]);

    project.write("big.yaml", pipeline("label"));
    let bad = run(&project, &env, "big.yaml", "p3", &["--full-refresh"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.all().contains("partition_on") && bad.all().contains("not an integer"),
        "{}",
        bad.all()
    );
}
