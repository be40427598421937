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

#[test]
fn a_closed_stdout_does_not_panic() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(["components", "show", "mysql.writer"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Hang up before the first write (start-up takes far longer), like `| true`.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "no panic exit");
}

#[test]
fn a_run_survives_a_closed_stdout_and_records_its_status() {
    let project = crate::common::example_project();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(["run", "pipeline.yaml", "--session-id", "s"])
        .current_dir(project.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    drop(child.stdout.take()); // nobody reads the progress
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status =
        std::fs::read_to_string(project.path().join(".osiris_sessions/s/status.json")).unwrap();
    assert!(status.contains("\"ok\": true"), "{status}");
}
