//! `osiris components list|show`.

use crate::common::Project;

#[test]
fn list_shows_each_component_and_whether_it_runs() {
    let ran = Project::new().osiris(&["components", "list", "--json"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let list: Vec<serde_json::Value> = serde_json::from_str(&ran.stdout).unwrap();
    let names: Vec<&str> = list.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for name in [
        "duckdb.processor",
        "filesystem.csv_extractor",
        "filesystem.csv_writer",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(
        list.iter()
            .filter(|c| names.contains(&c["name"].as_str().unwrap()))
            .all(|c| c["modes"].is_array())
    );
    let processor = list
        .iter()
        .find(|c| c["name"] == "duckdb.processor")
        .unwrap();
    assert_eq!(processor["runnable"], true);
}

#[test]
fn show_prints_fields_defaults_and_an_example() {
    let ran = Project::new().osiris(&["components", "show", "filesystem.csv_writer"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.stdout.starts_with("filesystem.csv_writer "),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("  path: string (required)"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("  delimiter: string = \",\""),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("Example"), "{}", ran.stdout);
}

#[test]
fn show_of_an_unknown_component_exits_2_with_a_suggestion() {
    let ran = Project::new().osiris(&["components", "show", "duckdb.procesor"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("Did you mean `duckdb.processor`?"),
        "{}",
        ran.stderr
    );
}

#[test]
fn validate_accepts_builtin_specs_and_names_problems_in_a_broken_one() {
    let project = Project::new();
    let ran = project.osiris(&["components", "validate", "mysql.writer"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(ran.stdout, "mysql.writer: valid\n");

    let spec = std::fs::read_to_string(
        crate::common::repo_root().join("components/duckdb.processor/spec.yaml"),
    )
    .unwrap()
    .replace("streaming: false", "streaming: \"no\"");
    project.write(
        "broken/spec.yaml",
        spec.replace("name: duckdb.processor", "name: broken"),
    );
    let ran = project.osiris(&["components", "validate", "broken/spec.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("/capabilities/streaming"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("\"no\" is not of type \"boolean\""),
        "{}",
        ran.stderr
    );
}
