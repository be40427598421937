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
