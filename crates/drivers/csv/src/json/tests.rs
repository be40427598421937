//! The JSON drivers: JSON Lines and arrays, STRUCT or flattened, malformed input, and the
//! writer's formats.

use driver_api::ErrorClass;
use driver_api::testing::TestRun;
use serde_json::{Value, json};

use super::*;

fn setup() -> (tempfile::TempDir, TestRun) {
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    (dir, run)
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
    run.run(&JsonExtractor, "t", table_unless_said(config), &[])
        .await
}

fn schema(run: &TestRun) -> Vec<String> {
    run.query_strings(
        "SELECT column_name || ': ' || data_type FROM information_schema.columns \
         WHERE table_name = 't' ORDER BY ordinal_position",
    )
    .into_iter()
    .map(Option::unwrap)
    .collect()
}

const LINES: &str = "{\"id\": 1, \"user\": {\"name\": \"Ann\", \"address\": {\"city\": \"Oslo\"}}, \"tags\": [\"a\", \"b\"]}\n\
                     {\"id\": 2, \"user\": {\"name\": \"Bo\", \"address\": {\"city\": null}}, \"tags\": []}\n";

#[tokio::test]
async fn nested_objects_are_structs_or_flattened_columns() {
    let (dir, run) = setup();
    std::fs::write(dir.path().join("u.jsonl"), LINES).unwrap();
    extract(&run, json!({"path": "u.jsonl", "format": "lines"}))
        .await
        .unwrap();
    assert_eq!(
        schema(&run),
        [
            "id: BIGINT",
            "user: STRUCT(\"name\" VARCHAR, address STRUCT(city VARCHAR))",
            "tags: VARCHAR[]"
        ]
    );
    let output = extract(&run, json!({"path": "u.jsonl", "flatten": true}))
        .await
        .unwrap();
    assert_eq!(output.rows, 2);
    assert_eq!(
        schema(&run),
        [
            "id: BIGINT",
            "user.name: VARCHAR",
            "user.address.city: VARCHAR",
            "tags: VARCHAR[]"
        ]
    );
    assert_eq!(
        run.query_strings(
            "SELECT concat_ws('|', id, \"user.name\", coalesce(\"user.address.city\", 'null'), tags) FROM t ORDER BY id"
        ),
        [Some("1|Ann|Oslo|[a, b]".into()), Some("2|Bo|null|[]".into())]
    );
    extract(
        &run,
        json!({"path": "u.jsonl", "flatten": true, "columns": ["user.address.city", "id"]}),
    )
    .await
    .unwrap();
    assert_eq!(schema(&run), ["user.address.city: VARCHAR", "id: BIGINT"]);
}

#[tokio::test]
async fn a_json_array_and_lines_files_read_into_one_table() {
    let (dir, run) = setup();
    std::fs::write(
        dir.path().join("a.json"),
        "[{\"id\": 3, \"v\": 1.25}, {\"id\": 4}]",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.json"), "{\"id\": 5, \"v\": 2}\n").unwrap();
    let error = extract(
        &run,
        json!({"path": ["a.json", "b.json"], "format": "array"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Data, "{error}");
    let output = extract(&run, json!({"path": ["a.json", "b.json"]}))
        .await
        .unwrap();
    assert_eq!(output.rows, 3);
    assert_eq!(
        run.query_strings("SELECT id || ':' || coalesce(v::VARCHAR, 'null') FROM t ORDER BY id"),
        [
            Some("3:1.25".into()),
            Some("4:null".into()),
            Some("5:2.0".into())
        ]
    );
}

#[tokio::test]
async fn a_malformed_file_is_a_data_error_naming_it_and_leaves_no_table() {
    let (dir, run) = setup();
    std::fs::write(dir.path().join("bad.jsonl"), "{\"id\": 1}\n{\"id\": \n").unwrap();
    let error = extract(&run, json!({"path": "bad.jsonl", "format": "lines"}))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Data, "{error}");
    assert!(error.to_string().contains("bad.jsonl"), "{error}");
    assert!(error.to_string().contains("Malformed JSON"), "{error}");
    assert!(!run.table_exists("t"));
    // A key with a dot collides with a flattened key.
    std::fs::write(
        dir.path().join("dot.jsonl"),
        "{\"a.b\": 1, \"a\": {\"b\": 2}}\n",
    )
    .unwrap();
    let error = extract(&run, json!({"path": "dot.jsonl", "flatten": true}))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Data, "{error}");
    assert!(error.to_string().contains("\"a.b\""), "{error}");
}

#[tokio::test]
async fn the_writer_writes_lines_arrays_and_gzip_with_exact_decimals() {
    let (dir, run) = setup();
    run.connection()
        .execute_batch(
            "CREATE TABLE src AS SELECT * FROM (VALUES \
             (1, 12345678901234567890.1234567890::DECIMAL(38,10), TIMESTAMPTZ '2024-05-06 07:08:09.654321+00', [1, 2], {'k': 'v'}), \
             (2, NULL, NULL, [], NULL)) v(id, amount, ts, list, obj)",
        )
        .unwrap();
    run.run(&JsonWriter, "w", json!({"path": "o.jsonl"}), &["src"])
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap(),
        "{\"id\":1,\"amount\":12345678901234567890.1234567890,\"ts\":\"2024-05-06 07:08:09.654321+00\",\"list\":[1,2],\"obj\":{\"k\":\"v\"}}\n\
         {\"id\":2,\"amount\":null,\"ts\":null,\"list\":[],\"obj\":null}\n"
    );
    run.run(
        &JsonWriter,
        "w",
        json!({"path": "o.json", "format": "array"}),
        &["src"],
    )
    .await
    .unwrap();
    let array: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("o.json")).unwrap()).unwrap();
    assert_eq!(array.as_array().unwrap().len(), 2);
    let output = run
        .run(&JsonWriter, "w", json!({"path": "o.json.gz"}), &["src"])
        .await
        .unwrap();
    assert_eq!(output.rows, 2);
    let gz = std::fs::read(dir.path().join("o.json.gz")).unwrap();
    assert_eq!(&gz[..2], [0x1f, 0x8b], "gzip magic");
    // Read back: the same rows.
    extract(&run, json!({"path": "o.json.gz"})).await.unwrap();
    assert_eq!(
        run.query_strings(
            "SELECT id || ':' || list::VARCHAR || ':' || coalesce(obj.k, 'null') FROM t ORDER BY id"
        ),
        [Some("1:[1, 2]:v".into()), Some("2:[]:null".into())]
    );
    // Partitioned JSON writes a directory too; an unknown column fails before any file.
    let error = run
        .run(
            &JsonWriter,
            "w",
            json!({"path": "p", "partition_by": ["zz"]}),
            &["src"],
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("zz"), "{error}");
    assert!(!dir.path().join("p").exists());
}

#[test]
fn specs_and_configs_agree() {
    driver_api::testing::assert_spec_matches::<JsonExtractor>();
    driver_api::testing::assert_spec_matches::<JsonWriter>();
}
