//! The Parquet drivers against files written by DuckDB and by pyarrow, exact types, and the
//! writer's options and atomicity.

use std::path::{Path, PathBuf};
use std::process::Command;

use driver_api::ErrorClass;
use driver_api::testing::TestRun;
use serde_json::{Value, json};

use super::*;

fn setup() -> (tempfile::TempDir, TestRun) {
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    (dir, run)
}

fn sql(run: &TestRun, statement: &str) {
    run.connection().execute_batch(statement).unwrap();
}

/// The existing tests check the table path (row counts, errors while reading); view tests say
/// `materialize: view`.
fn table_unless_said(mut config: Value) -> Value {
    if let Some(object) = config.as_object_mut() {
        object.entry("materialize").or_insert("table".into());
    }
    config
}

async fn extract(run: &TestRun, config: Value) -> Result<StepOutput> {
    run.run(&ParquetExtractor, "t", table_unless_said(config), &[])
        .await
}

/// `column: TYPE` for every column of `table`.
fn schema(run: &TestRun, table: &str) -> Vec<String> {
    run.query_strings(&format!(
        "SELECT column_name || ': ' || data_type FROM information_schema.columns \
         WHERE table_name = '{table}' ORDER BY ordinal_position"
    ))
    .into_iter()
    .map(Option::unwrap)
    .collect()
}

/// The pyarrow of the tests' venv (testing_env/setup.sh installs it).
fn python() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let python = PathBuf::from(home).join(".cache/osiris-rs/venv-files/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run bash testing_env/setup.sh",
        python.display()
    );
    python
}

fn pyarrow_write(script: &str, dir: &Path) {
    let status = Command::new(python())
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "pyarrow script failed");
}

#[tokio::test]
async fn a_pyarrow_file_reads_with_exact_types_and_values() {
    let (dir, run) = setup();
    pyarrow_write(
        r#"
import decimal, datetime, pyarrow as pa, pyarrow.parquet as pq
t = pa.table({
    "amount": pa.array([decimal.Decimal("1234567890123456789012345678.0123456789"), decimal.Decimal("-0.0000000001"), None], pa.decimal128(38, 10)),
    "ts": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc), datetime.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=datetime.timezone.utc), None], pa.timestamp("us", tz="UTC")),
    "tags": pa.array([[["a", "b"], []], None, [["c"]]], pa.list_(pa.list_(pa.string()))),
    "point": pa.array([{"x": 1, "y": [1.5]}, {"x": None, "y": []}, None], pa.struct([("x", pa.int64()), ("y", pa.list_(pa.float64()))])),
})
pq.write_table(t, "py.parquet")
"#,
        dir.path(),
    );
    let output = extract(&run, json!({"path": "py.parquet"})).await.unwrap();
    assert_eq!(output.rows, 3);
    assert_eq!(
        schema(&run, "t"),
        [
            "amount: DECIMAL(38,10)",
            "ts: TIMESTAMP WITH TIME ZONE",
            "tags: VARCHAR[][]",
            "point: STRUCT(x BIGINT, y DOUBLE[])",
        ]
    );
    assert_eq!(
        run.query_strings(
            "SELECT concat_ws(' | ', amount, ts, tags, point) FROM t ORDER BY amount NULLS LAST"
        ),
        [
            Some("-0.0000000001 | 1999-12-31 23:59:59.000001+00 | {'x': NULL, 'y': []}".into()),
            Some(
                "1234567890123456789012345678.0123456789 | 2024-01-02 03:04:05.123456+00 | [[a, b], []] | {'x': 1, 'y': [1.5]}"
                    .into()
            ),
            Some("[[c]]".into()),
        ]
    );
}

#[tokio::test]
async fn the_writer_round_trips_exact_types_through_pyarrow() {
    let (dir, run) = setup();
    sql(
        &run,
        "CREATE TABLE src AS SELECT * FROM (VALUES \
           (1, 12345678901234567890.1234567890::DECIMAL(38,10), TIMESTAMPTZ '2024-05-06 07:08:09.654321+00', [[1, 2], [3]]), \
           (2, -0.5::DECIMAL(38,10), NULL, [])) v(id, amount, ts, nested)",
    );
    let output = run
        .run(
            &ParquetWriter,
            "w",
            json!({"path": "out/w.parquet", "compression": "zstd"}),
            &["src"],
        )
        .await
        .unwrap();
    assert_eq!(output.rows, 2);
    // Another reader sees the same exact values and types.
    let out = Command::new(python())
        .arg("-c")
        .arg(
            "import pyarrow.parquet as pq\n\
             f = pq.ParquetFile('out/w.parquet')\n\
             print(f.metadata.num_row_groups, f.metadata.row_group(0).column(0).compression)\n\
             t = f.read()\n\
             print(t.schema.field('amount').type, t.schema.field('ts').type, t.schema.field('nested').type)\n\
             print(t.column('amount').to_pylist(), t.column('ts')[0].value, t.column('nested').to_pylist())",
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1 ZSTD");
    assert_eq!(
        lines[1],
        "decimal128(38, 10) timestamp[us, tz=UTC] list<element: list<element: int32>>"
    );
    assert_eq!(
        lines[2],
        "[Decimal('12345678901234567890.1234567890'), Decimal('-0.5000000000')] 1714979289654321 [[[1, 2], [3]], []]"
    );
    // Row groups of the configured size (DuckDB rounds up to whole vectors of 2048 rows).
    sql(
        &run,
        "CREATE TABLE big AS SELECT range AS id FROM range(5000)",
    );
    run.run(
        &ParquetWriter,
        "w",
        json!({"path": "big.parquet", "row_group_size": 2048, "compression": "gzip"}),
        &["big"],
    )
    .await
    .unwrap();
    assert_eq!(
        run.query_strings(&format!(
            "SELECT count(DISTINCT row_group_id) || ' ' || min(compression) FROM parquet_metadata('{}/big.parquet')",
            dir.path().display()
        )),
        [Some("3 GZIP".into())]
    );
    // And the extractor reads back what was written.
    extract(&run, json!({"path": "out/w.parquet"}))
        .await
        .unwrap();
    assert_eq!(
        run.query_strings(
            "SELECT count(*)::VARCHAR FROM (SELECT * FROM t EXCEPT SELECT * FROM src)"
        ),
        [Some("0".into())]
    );
}

#[tokio::test]
async fn a_glob_and_a_list_read_many_files_into_one_table_by_column_name() {
    let (dir, run) = setup();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    sql(
        &run,
        &format!(
            "COPY (SELECT 1 AS id, 'a' AS name) TO '{d}/in/p1.parquet' (FORMAT parquet); \
             COPY (SELECT 'b' AS name, 2 AS id, true AS extra) TO '{d}/in/p2.parquet' (FORMAT parquet);",
            d = dir.path().display()
        ),
    );
    let output = extract(
        &run,
        json!({"path": "in/p*.parquet", "columns": ["id", "name", "extra"]}),
    )
    .await
    .unwrap();
    assert_eq!(output.rows, 2);
    assert_eq!(
        run.query_strings(
            "SELECT concat_ws(',', id, name, coalesce(extra::VARCHAR, 'null')) FROM t ORDER BY id"
        ),
        [Some("1,a,null".into()), Some("2,b,true".into())]
    );
    let output = extract(
        &run,
        json!({"path": ["in/p2.parquet", "in/p1.parquet"], "limit": 1, "columns": ["id"]}),
    )
    .await
    .unwrap();
    assert_eq!(output.rows, 1);
    assert_eq!(schema(&run, "t"), ["id: INTEGER"]);
}

#[tokio::test]
async fn a_malformed_file_is_a_data_error_naming_it_and_leaves_no_table() {
    let (dir, run) = setup();
    std::fs::write(dir.path().join("bad.parquet"), b"PAR1 this is not parquet").unwrap();
    let error = extract(&run, json!({"path": "bad.parquet"}))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Data, "{error}");
    assert!(error.to_string().contains("bad.parquet"), "{error}");
    assert!(!run.table_exists("t"));

    let error = extract(&run, json!({"path": "nothing-*.parquet"}))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(error.to_string().contains("no file matches"), "{error}");

    let error = extract(&run, json!({"path": "missing.parquet"}))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("missing.parquet does not exist"),
        "{error}"
    );

    sql(
        &run,
        &format!(
            "COPY (SELECT 1 AS id) TO '{}/ok.parquet' (FORMAT parquet)",
            dir.path().display()
        ),
    );
    let error = extract(&run, json!({"path": "ok.parquet", "columns": ["nope"]}))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(
        error.to_string().contains("its columns are \"id\""),
        "{error}"
    );
}

#[tokio::test]
async fn partitioned_output_is_a_directory_replaced_only_on_success() {
    let (dir, run) = setup();
    sql(
        &run,
        "CREATE TABLE src AS SELECT i AS id, i % 2 AS part FROM range(10) r(i)",
    );
    let config = json!({"path": "parts", "partition_by": ["part"], "compression": "none"});
    run.run(&ParquetWriter, "w", config.clone(), &["src"])
        .await
        .unwrap();
    let mut entries: Vec<String> = std::fs::read_dir(dir.path().join("parts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["part=0", "part=1"]);
    // Writing again replaces the directory (no stale partition survives).
    sql(
        &run,
        "CREATE OR REPLACE TABLE src AS SELECT 7 AS id, 5 AS part",
    );
    run.run(&ParquetWriter, "w", config, &["src"])
        .await
        .unwrap();
    let entries: Vec<String> = std::fs::read_dir(dir.path().join("parts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["part=5"]);
    // A failed write leaves it as it was and no temporary file behind.
    let error = run
        .run(
            &ParquetWriter,
            "w",
            json!({"path": "parts", "partition_by": ["nope"]}),
            &["src"],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(error.to_string().contains("partition_by"), "{error}");
    let mut all: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "session")
        .collect();
    all.sort();
    assert_eq!(all, ["parts"]);
    // A file target stays untouched when the write fails.
    std::fs::write(dir.path().join("keep.parquet"), b"old").unwrap();
    sql(
        &run,
        "DROP TABLE src; CREATE VIEW src AS SELECT error('boom') AS y",
    );
    let error = run
        .run(
            &ParquetWriter,
            "w",
            json!({"path": "keep.parquet"}),
            &["src"],
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("boom"), "{error}");
    assert_eq!(
        std::fs::read(dir.path().join("keep.parquet")).unwrap(),
        b"old"
    );
}

#[test]
fn specs_and_configs_agree() {
    driver_api::testing::assert_spec_matches::<ParquetExtractor>();
    driver_api::testing::assert_spec_matches::<ParquetWriter>();
}
