//! The driver writes its table, refuses a config its spec does not allow, and matches its spec.

use std::path::Path;

use driver_api::ErrorClass;
use driver_api::testing::{TestRun, assert_spec_file_matches};
use driver_sequence::SequenceExtractor;
use serde_json::json;

#[tokio::test]
async fn writes_the_sequence_as_the_step_table() {
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    let output = run
        .run(
            &SequenceExtractor,
            "numbers",
            json!({"count": 100_000, "start": -5}),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(output.rows, 100_000);
    assert_eq!(
        run.query_strings(
            "SELECT min(n) || ',' || max(n) || ',' || count(DISTINCT n) FROM numbers"
        ),
        [Some("-5,99994,100000".to_owned())]
    );
}

#[tokio::test]
async fn an_unknown_key_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    let error = run
        .run(
            &SequenceExtractor,
            "numbers",
            json!({"count": 1, "stat": 2}),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert!(error.to_string().contains("stat"), "{error}");
    assert!(!run.table_exists("numbers"));
}

#[test]
fn the_spec_describes_the_config() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec.yaml");
    assert_spec_file_matches::<SequenceExtractor>(&spec);
}
