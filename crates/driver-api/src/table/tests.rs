use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::sql::shift_line_numbers;
use super::*;
use crate::TableName;

fn memory() -> duckdb::Connection {
    duckdb::Connection::open_in_memory().unwrap()
}

fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(Arc::clone(schema), columns).unwrap()
}

fn table_exists(conn: &duckdb::Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        == 1
}

#[tokio::test]
async fn writes_batches_and_commits_one_table() {
    let conn = memory();
    let table = TableName::new("read-orders").unwrap();
    let s = schema(&[
        ("id", DataType::Int64),
        ("amount", DataType::Decimal128(12, 2)),
        ("name", DataType::Utf8),
        ("at", DataType::Timestamp(TimeUnit::Microsecond, None)),
    ]);
    let mut writer =
        TableWriter::start(conn.try_clone().unwrap(), table.clone(), Arc::clone(&s), 2);
    for chunk in 0..5i64 {
        let ids: Vec<i64> = (chunk * 1000..chunk * 1000 + 1000).collect();
        let b = batch(
            &s,
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(
                    Decimal128Array::from(
                        ids.iter().map(|i| i128::from(i * 101)).collect::<Vec<_>>(),
                    )
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
                ),
                Arc::new(StringArray::from(
                    ids.iter().map(|i| format!("n{i}")).collect::<Vec<_>>(),
                )),
                Arc::new(TimestampMicrosecondArray::from(
                    ids.iter().map(|i| i * 1_000_001).collect::<Vec<_>>(),
                )),
            ],
        );
        writer.send(b).await.unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), 5000);
    let (rows, sum, types): (i64, String, String) = conn
            .query_row(
                "SELECT count(*), CAST(sum(amount) AS VARCHAR), (SELECT string_agg(data_type, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'read-orders') FROM \"read-orders\"",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
    assert_eq!(rows, 5000);
    assert_eq!(sum, "12622475.00"); // sum(0..5000) * 101 cents, exact
    assert_eq!(types, "BIGINT,DECIMAL(12,2),VARCHAR,TIMESTAMP");
}

#[tokio::test]
async fn bytes_marked_as_uuid_become_a_uuid_column() {
    let conn = memory();
    let s = Arc::new(Schema::new(vec![uuid_field("id")]));
    let mut writer = TableWriter::start(
        conn.try_clone().unwrap(),
        TableName::new("u").unwrap(),
        Arc::clone(&s),
        1,
    );
    let bytes: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
    let ids = arrow::array::FixedSizeBinaryArray::try_from_sparse_iter_with_size(
        [Some(bytes), None, Some([0xff; 16])].into_iter(),
        16,
    )
    .unwrap();
    writer.send(batch(&s, vec![Arc::new(ids)])).await.unwrap();
    assert_eq!(writer.finish().await.unwrap(), 3);
    let rows: Vec<(String, Option<String>)> = conn
        .prepare("SELECT typeof(id), CAST(id AS VARCHAR) FROM u ORDER BY id NULLS LAST")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [
            (
                "UUID".into(),
                Some("00112233-4455-6677-8899-aabbccddeeff".into())
            ),
            (
                "UUID".into(),
                Some("ffffffff-ffff-ffff-ffff-ffffffffffff".into())
            ),
            ("UUID".into(), None),
        ]
    );
}

#[tokio::test]
async fn text_marked_as_json_becomes_a_json_column() {
    let conn = memory();
    let field = Field::new("doc", DataType::Utf8, true).with_metadata(
        [(
            "ARROW:extension:name".to_owned(),
            JSON_EXTENSION_NAME.to_owned(),
        )]
        .into(),
    );
    let s = Arc::new(Schema::new(vec![field]));
    let mut writer = TableWriter::start(
        conn.try_clone().unwrap(),
        TableName::new("j").unwrap(),
        Arc::clone(&s),
        1,
    );
    writer
        .send(batch(
            &s,
            vec![Arc::new(StringArray::from(vec![
                Some(r#"{"a": [1, 2]}"#),
                None,
            ]))],
        ))
        .await
        .unwrap();
    assert_eq!(writer.finish().await.unwrap(), 2);
    let (ty, second): (String, i64) = conn
        .query_row(
            "SELECT typeof(doc), CAST(doc->'$.a[1]' AS BIGINT) FROM j WHERE doc IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((ty.as_str(), second), ("JSON", 2));
}

#[tokio::test]
async fn duration_columns_become_intervals_with_their_nulls() {
    let conn = memory();
    let s = schema(&[("d", DataType::Duration(TimeUnit::Microsecond))]);
    let mut writer = TableWriter::start(
        conn.try_clone().unwrap(),
        TableName::new("d").unwrap(),
        Arc::clone(&s),
        1,
    );
    writer
        .send(batch(
            &s,
            vec![Arc::new(arrow::array::DurationMicrosecondArray::from(
                vec![Some(-3_600_000_001), None, Some(90_000_000_000)],
            ))],
        ))
        .await
        .unwrap();
    assert_eq!(writer.finish().await.unwrap(), 3);
    let mut stmt = conn
        .prepare("SELECT typeof(d), CAST(d AS VARCHAR) FROM d ORDER BY rowid")
        .unwrap();
    let rows: Vec<(String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            ("INTERVAL".into(), Some("-01:00:00.000001".into())),
            ("INTERVAL".into(), None),
            ("INTERVAL".into(), Some("25:00:00".into())),
        ]
    );
}

#[tokio::test]
async fn aborted_writer_leaves_no_table() {
    let conn = memory();
    let table = TableName::new("t").unwrap();
    let s = schema(&[("x", DataType::Int32)]);
    let mut writer = TableWriter::start(conn.try_clone().unwrap(), table, Arc::clone(&s), 1);
    writer
        .send(batch(&s, vec![Arc::new(Int32Array::from(vec![1, 2, 3]))]))
        .await
        .unwrap();
    writer.abort().await;
    assert!(!table_exists(&conn, "t"));
}

#[tokio::test]
async fn failed_rerun_keeps_the_earlier_table() {
    let conn = memory();
    conn.execute_batch("CREATE TABLE t AS SELECT 41 AS x")
        .unwrap();
    let table = TableName::new("t").unwrap();
    let s = schema(&[("x", DataType::Int32)]);
    let mut writer =
        TableWriter::start(conn.try_clone().unwrap(), table.clone(), Arc::clone(&s), 1);
    writer
        .send(batch(&s, vec![Arc::new(Int32Array::from(vec![1]))]))
        .await
        .unwrap();
    // A batch whose column cannot be cast to the table's type fails the writer.
    let bad = schema(&[("x", DataType::Utf8)]);
    let _ = writer
        .send(batch(
            &bad,
            vec![Arc::new(StringArray::from(vec!["not a number"]))],
        ))
        .await;
    let err = writer.finish().await.unwrap_err();
    assert!(err.to_string().contains("changed type"), "{err}");
    let x: i32 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, 41, "the earlier table is untouched");
}

#[tokio::test]
async fn a_later_batch_whose_values_do_not_fit_exactly_fails_instead_of_truncating() {
    let conn = memory();
    let table = TableName::new("t").unwrap();
    let ints = schema(&[("x", DataType::Int64)]);
    let floats = schema(&[("x", DataType::Float64)]);
    let run = |values: Vec<f64>| {
        let (conn, table, ints, floats) = (
            conn.try_clone().unwrap(),
            table.clone(),
            Arc::clone(&ints),
            Arc::clone(&floats),
        );
        async move {
            let mut writer = TableWriter::start(conn, table, Arc::clone(&ints), 1);
            writer
                .send(batch(&ints, vec![Arc::new(Int64Array::from(vec![1]))]))
                .await
                .unwrap();
            let _ = writer
                .send(batch(&floats, vec![Arc::new(Float64Array::from(values))]))
                .await;
            writer.finish().await
        }
    };
    // Whole numbers arriving as floats still fit the BIGINT column.
    assert_eq!(run(vec![2.0, 3.0]).await.unwrap(), 3);
    let err = run(vec![2.0, 2.5]).await.unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
    let xs: i64 = conn
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        xs, 6,
        "the table of the earlier successful run is untouched"
    );
}

#[tokio::test]
async fn successful_rerun_replaces_the_table() {
    let conn = memory();
    conn.execute_batch("CREATE TABLE t AS SELECT 'old' AS y")
        .unwrap();
    let s = schema(&[("x", DataType::Int32)]);
    let mut writer = TableWriter::start(
        conn.try_clone().unwrap(),
        TableName::new("t").unwrap(),
        Arc::clone(&s),
        1,
    );
    writer
        .send(batch(&s, vec![Arc::new(Int32Array::from(vec![5, 6]))]))
        .await
        .unwrap();
    assert_eq!(writer.finish().await.unwrap(), 2);
    let sum: i64 = conn
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, 11);
}

#[tokio::test]
async fn batches_are_matched_by_name_not_position() {
    let conn = memory();
    let s = schema(&[("a", DataType::Int64), ("b", DataType::Utf8)]);
    let mut writer = TableWriter::start(
        conn.try_clone().unwrap(),
        TableName::new("t").unwrap(),
        Arc::clone(&s),
        1,
    );
    writer
        .send(batch(
            &s,
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["x"])),
            ],
        ))
        .await
        .unwrap();
    // Reordered columns, one missing, one new, one narrower integer type.
    let s2 = schema(&[("c", DataType::Utf8), ("a", DataType::Int32)]);
    writer
        .send(batch(
            &s2,
            vec![
                Arc::new(StringArray::from(vec!["new"])),
                Arc::new(Int32Array::from(vec![2])),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(writer.finish().await.unwrap(), 2);
    let mut stmt = conn.prepare("SELECT a, b, c FROM t ORDER BY a").unwrap();
    let rows: Vec<(i64, Option<String>, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        rows,
        [(1, Some("x".into()), None), (2, None, Some("new".into()))]
    );
}

#[tokio::test]
async fn widen_mode_widens_columns_and_types_null_columns_late() {
    use arrow::array::{BooleanArray, Float64Array, NullArray};
    let conn = memory();
    let first = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("score", DataType::Int64, true),
        Field::new("later", DataType::Null, true),
        Field::new("mixed", DataType::Boolean, true),
        json_field("doc"),
    ]));
    let mut writer = TableWriter::start_with(
        conn.try_clone().unwrap(),
        TableName::new("w").unwrap(),
        Arc::clone(&first),
        1,
        SchemaEvolution::Widen,
    );
    writer
        .send(batch(
            &first,
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(Int64Array::from(vec![10])),
                Arc::new(NullArray::new(1)),
                Arc::new(BooleanArray::from(vec![true])),
                Arc::new(StringArray::from(vec![r#"{"a":[1,2]}"#])),
            ],
        ))
        .await
        .unwrap();
    let second = schema(&[
        ("id", DataType::Int64),
        ("score", DataType::Float64),
        ("later", DataType::Int64),
        ("mixed", DataType::Utf8),
    ]);
    writer
        .send(batch(
            &second,
            vec![
                Arc::new(Int64Array::from(vec![2])),
                Arc::new(Float64Array::from(vec![2.5])),
                Arc::new(Int64Array::from(vec![7])),
                Arc::new(StringArray::from(vec!["text"])),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(writer.finish().await.unwrap(), 2);
    let types: String = conn
            .query_row(
                "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'w'",
                [],
                |r| r.get(0),
            )
            .unwrap();
    assert_eq!(
        types,
        "id BIGINT, score DOUBLE, later BIGINT, mixed VARCHAR, doc JSON"
    );
    let rows: Vec<String> = {
        let mut stmt = conn
            .prepare(
                "SELECT concat_ws('|', id, score, later, mixed, doc->>'$.a[1]') FROM w ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(rows, ["1|10.0|true|2", "2|2.5|7|text"]);
}

#[tokio::test]
async fn empty_input_still_creates_the_table_with_its_columns() {
    let conn = memory();
    let s = schema(&[("id", DataType::Int64), ("name", DataType::Utf8)]);
    let writer = TableWriter::start(
        conn.try_clone().unwrap(),
        TableName::new("empty").unwrap(),
        s,
        1,
    );
    assert_eq!(writer.finish().await.unwrap(), 0);
    let cols: String = conn
            .query_row(
                "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'empty'",
                [],
                |r| r.get(0),
            )
            .unwrap();
    assert_eq!(cols, "id,name");
}

#[tokio::test]
async fn reader_streams_a_table_back_as_arrow() {
    let conn = memory();
    conn.execute_batch(
        "CREATE TABLE \"my table\" AS SELECT range AS id, 'v' || range AS v FROM range(5000)",
    )
    .unwrap();
    let reader = TableReader::table(conn, &TableName::new("my table").unwrap())
        .await
        .unwrap();
    assert_eq!(reader.schema().field(1).name(), "v");
    let batches = reader.collect().await.unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 5000);
    assert!(batches.len() > 1, "streamed in several batches");
}

#[tokio::test]
async fn reader_streams_a_query_and_reports_a_late_failure_as_an_error() {
    // The first rows convert; a row far into the result does not. In DuckDB's streaming mode
    // the reader hands out rows before the failing one is computed, then the error: a writer
    // sees `Err` (and rolls back), never a panic or a silently short result.
    let sql = "SELECT CASE WHEN i < 1000000 THEN i::VARCHAR ELSE error('row ' || i || ' is bad') END AS v \
               FROM range(1000001) t(i)";
    let mut reader = TableReader::query(memory(), sql.into()).await.unwrap();
    let mut rows = 0;
    let error = loop {
        match reader.next_batch().await {
            Some(Ok(batch)) => rows += batch.num_rows(),
            Some(Err(error)) => break error,
            None => panic!("the failing row was not reported ({rows} rows read)"),
        }
    };
    assert!(error.to_string().contains("row 1000000 is bad"), "{error}");
    assert!(
        rows > 0,
        "rows before the failure were streamed, not computed up front"
    );
    assert!(
        reader.next_batch().await.is_none(),
        "nothing after the error"
    );
}

#[test]
fn replace_table_as_is_atomic() {
    let conn = memory();
    let t = TableName::new("p").unwrap();
    assert_eq!(
        replace_table_as(&conn, &t, "SELECT 1 AS x UNION ALL SELECT 2").unwrap(),
        2
    );
    let err = replace_table_as(&conn, &t, "SELECT * FROM missing_table").unwrap_err();
    assert!(err.to_string().contains("missing_table"), "{err}");
    assert_eq!(table_row_count(&conn, &t).unwrap(), 2, "old table kept");
}

#[test]
fn replace_table_as_runs_one_query_and_nothing_else() {
    let conn = memory();
    conn.execute_batch("CREATE TABLE src AS SELECT 1 AS x")
        .unwrap();
    let t = TableName::new("p").unwrap();
    for query in [
        "SELECT 1; DROP TABLE src",
        "SELECT 1; COMMIT; SELECT error('x')",
        "DROP TABLE src",
    ] {
        let err = replace_table_as(&conn, &t, query).unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::Config, "{query}: {err}");
        assert!(err.to_string().starts_with("config key `query`: "), "{err}");
    }
    assert_eq!(
        table_row_count(&conn, &TableName::new("src").unwrap()).unwrap(),
        1
    );
    assert!(!table_exists(&conn, "p"));
}

#[test]
fn line_numbers_in_messages_count_lines_of_the_query() {
    let conn = memory();
    let t = TableName::new("p").unwrap();
    let err = replace_table_as(
        &conn,
        &t,
        "SELECT 1 AS x\nUNION ALL\nSELECT nope FROM missing_table",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("LINE 3:"), "{err}");
    assert_eq!(
        shift_line_numbers("a LINE 2: b LINE 10: c LINE x", 1),
        "a LINE 1: b LINE 9: c LINE x"
    );
}

/// Writes `batches` batches of 8 MiB of values DuckDB cannot compress (8 BIGINT columns of
/// 131,072 rows) into `table` and checks that every row arrived.
async fn write_incompressible(conn: &duckdb::Connection, table: &str, batches: i64) {
    let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let s = schema(&names.map(|n| (n, DataType::Int64)));
    let name = TableName::new(table).unwrap();
    let mut writer = TableWriter::start(conn.try_clone().unwrap(), name, Arc::clone(&s), 2);
    let rows_per_batch = 131_072i64;
    for b in 0..batches {
        let arrays: Vec<ArrayRef> = (0..names.len() as i64)
            .map(|c| {
                let values = (0..rows_per_batch).map(|i| {
                    let n = (b * rows_per_batch + i) * 8 + c;
                    (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as i64
                });
                Arc::new(Int64Array::from_iter_values(values)) as ArrayRef
            })
            .collect();
        writer.send(batch(&s, arrays)).await.unwrap();
    }
    let rows = batches * rows_per_batch;
    assert_eq!(writer.finish().await.unwrap(), rows as u64);
    let (count, distinct): (i64, i64) = conn
        .query_row(
            &format!("SELECT count(*), count(DISTINCT a) FROM \"{table}\""),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((count, distinct), (rows, rows));
}

/// The bytes of table blocks in DuckDB's buffer pool, and its memory limit.
fn cached_and_limit(conn: &duckdb::Connection) -> (i64, String) {
    conn.query_row(
        "SELECT (SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'BASE_TABLE'), \
                current_setting('memory_limit')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn run_database(dir: &tempfile::TempDir) -> duckdb::Connection {
    duckdb::Connection::open_with_flags(
        dir.path().join("run.duckdb"),
        execution_context::base_config().unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_long_append_leaves_few_of_its_written_blocks_cached() {
    let dir = tempfile::tempdir().unwrap();
    let conn = run_database(&dir);
    // 160 MiB of table blocks; without the release they would all stay cached.
    write_incompressible(&conn, "wide", 20).await;
    let (cached, limit) = cached_and_limit(&conn);
    assert!(cached < 100 << 20, "{} MiB still cached", cached >> 20);
    let fresh =
        duckdb::Connection::open_in_memory_with_flags(execution_context::base_config().unwrap())
            .unwrap();
    let default: String = fresh
        .query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(limit, default, "DuckDB's default limit is put back");
}

// nextest runs every test in its own process, so the process-wide limit is this test's alone.
#[tokio::test]
async fn parallel_long_appends_put_back_the_configured_memory_limit() {
    execution_context::set_memory_limit("512MB".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let conn = run_database(&dir);
    let (_, configured) = cached_and_limit(&conn);
    assert_eq!(configured, "488.2 MiB");
    let other = conn.try_clone().unwrap();
    tokio::join!(
        write_incompressible(&conn, "left", 12),
        write_incompressible(&other, "right", 12),
    );
    // Both tables are complete (checked above); how much stays cached depends on how the two
    // writers' releases interleave, so only the single-writer test bounds it.
    let (_, limit) = cached_and_limit(&conn);
    assert_eq!(limit, configured, "the configured limit is put back");
}

#[tokio::test]
async fn batches_larger_than_the_byte_budget_travel_one_at_a_time() {
    let conn = memory();
    let s = schema(&[("n", DataType::Int64)]);
    let table = TableName::new("big").unwrap();
    let mut writer = TableWriter::start(conn.try_clone().unwrap(), table, Arc::clone(&s), 8);
    let full = writer.budget_free();
    // 36 MB each: more than the whole budget, so the second waits for the first's append.
    let rows = 4_500_000i64;
    let within = std::time::Duration::from_secs(60);
    for b in 0..2 {
        let values = Int64Array::from_iter_values(b * rows..(b + 1) * rows);
        tokio::time::timeout(within, writer.send(batch(&s, vec![Arc::new(values)])))
            .await
            .expect("the budget is returned after each append")
            .unwrap();
    }
    // Once the thread has appended both, their budget is free again.
    let deadline = std::time::Instant::now() + within;
    while writer.budget_free() < full && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(writer.budget_free(), full);
    assert_eq!(writer.finish().await.unwrap(), 2 * rows as u64);
    let sum: i128 = conn
        .query_row("SELECT sum(n)::HUGEINT FROM big", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, i128::from(2 * rows) * i128::from(2 * rows - 1) / 2);
}

fn duckdb_threads(conn: &duckdb::Connection) -> i64 {
    conn.query_row("SELECT current_setting('threads')::BIGINT", [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Sends `batch` and commits: the table holds its rows.
async fn send_and_commit(mut writer: TableWriter, batch: RecordBatch) {
    let rows = batch.num_rows() as u64;
    writer.send(batch).await.unwrap();
    assert_eq!(writer.finish().await.unwrap(), rows);
}

#[tokio::test]
async fn a_lone_steps_append_runs_duckdb_single_threaded_until_another_step_starts() {
    use crate::StepContext;
    use execution_context::ExecutionContext;

    let dir = tempfile::tempdir().unwrap();
    let exec = Arc::new(ExecutionContext::new("threads", dir.path().join("session")));
    let probe = exec.connection().unwrap();
    // A known count above one, whatever the machine's cores.
    probe.execute_batch("SET threads = 3").unwrap();
    let s = schema(&[("n", DataType::Int64)]);
    let values = || batch(&s, vec![Arc::new(Int64Array::from_iter_values(0..1000))]);

    // The only running step: its append runs on one thread, and the threads come back after.
    let lone = StepContext::new(&exec, "lone", "test.writer", dir.path()).unwrap();
    let writer = TableWriter::for_step(&lone, Arc::clone(&s)).unwrap();
    assert_eq!(duckdb_threads(&probe), 1);
    send_and_commit(writer, values()).await;
    assert_eq!(duckdb_threads(&probe), 3);

    // A step that starts meanwhile gets DuckDB's threads back before it runs anything.
    let writer = TableWriter::for_step(&lone, Arc::clone(&s)).unwrap();
    assert_eq!(duckdb_threads(&probe), 1);
    let sibling = StepContext::new(&exec, "sibling", "test.writer", dir.path()).unwrap();
    assert_eq!(duckdb_threads(&probe), 3);
    send_and_commit(writer, values()).await;
    assert_eq!(duckdb_threads(&probe), 3);

    // With two steps running, neither append touches the threads.
    let writer = TableWriter::for_step(&sibling, Arc::clone(&s)).unwrap();
    assert_eq!(duckdb_threads(&probe), 3);
    send_and_commit(writer, values()).await;

    // A step that has ended no longer counts: the lone step's next append is serial again.
    drop(sibling);
    let writer = TableWriter::for_step(&lone, Arc::clone(&s)).unwrap();
    assert_eq!(duckdb_threads(&probe), 1);
    writer.abort().await;
    assert_eq!(duckdb_threads(&probe), 3);
    assert_eq!(
        probe
            .query_row("SELECT count(*) FROM lone", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        1000,
        "the aborted append left the committed table as it was"
    );
}

#[tokio::test]
async fn a_read_that_fails_late_reports_the_querys_error_every_time() {
    // DuckDB sometimes reports such a failure as "Interrupted!" (1 in ~15 reads here): the
    // reader reads again to find the real error, so every one of these reads names the row.
    let conn = memory();
    conn.execute_batch(
        "CREATE VIEW late AS SELECT CASE WHEN range < 150000 THEN range \
         ELSE error('bad row ' || range) END::BIGINT AS id FROM range(200000)",
    )
    .unwrap();
    for attempt in 0..40 {
        let mut reader =
            TableReader::query(conn.try_clone().unwrap(), "SELECT id FROM late".into())
                .await
                .unwrap();
        let error = loop {
            match reader.next_batch().await {
                // A consumer slower than DuckDB, as a writer to a remote database is.
                Some(Ok(_)) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
                Some(Err(error)) => break error,
                None => panic!("read {attempt}: the failing view read to its end"),
            }
        };
        let text = error.to_string();
        assert!(text.contains("bad row 150000"), "read {attempt}: {text}");
    }
}
