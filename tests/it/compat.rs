//! Pipelines written for the Python Osiris run unchanged: its spellings (no `mode`, no `name`,
//! `mode: extract`, `inputs: {df: "${step.df}"}`, the implicit step chain), and input that
//! must be refused cleanly (exit 2, never a panic or a hang).

use std::time::{Duration, Instant};

use crate::common::{Project, example_project, rows};

fn assert_input_error(ran: &crate::common::Ran, expected: &[&str]) {
    let all = ran.all();
    assert_eq!(ran.code, 2, "{all}");
    assert!(!all.contains("panicked"), "{all}");
    for text in expected {
        assert!(all.contains(text), "missing {text:?} in:\n{all}");
    }
}

#[test]
fn a_write_mode_given_as_the_step_mode_exits_2_naming_step_and_key() {
    let project = example_project();
    let pipeline = String::from_utf8(project.read("pipeline.yaml"))
        .unwrap()
        .replace(
            "    component: filesystem.csv_writer\n    mode: write",
            "    component: filesystem.csv_writer\n    mode: replace",
        );
    project.write("pipeline.yaml", pipeline);
    for command in ["run", "validate", "compile"] {
        let ran = project.osiris(&[command, "pipeline.yaml"]);
        assert_input_error(
            &ran,
            &[
                "step 'write-revenue', key `mode`",
                "\"replace\" is a write mode",
            ],
        );
    }
    assert!(project.sessions().is_empty());
}

const PYTHON_STYLE: &str = r#"
oml_version: "0.1.0"
params:
  min_amount: 100
steps:
  - id: extract-orders
    component: filesystem.csv_extractor
    mode: extract
    config:
      path: data/orders.csv
  - id: big-orders
    component: duckdb.processor
    config:
      query: SELECT id, customer FROM "extract-orders" WHERE amount > ${params.min_amount} ORDER BY id
  - id: write-big
    component: filesystem.csv_writer
    inputs:
      df: "${big-orders.df}"
    config:
      path: output/big.csv
  - id: read-back
    component: filesystem.csv_extractor
    needs: [write-big]
    config:
      path: output/big.csv
"#;

#[test]
fn a_pipeline_in_the_python_osiris_style_runs_unchanged() {
    let project = example_project();
    project.write("daily_orders.yaml", PYTHON_STYLE);
    let ran = project.osiris(&["run", "daily_orders.yaml"]);
    let all = ran.all();
    assert_eq!(ran.code, 0, "{all}");
    for expected in [
        // Named after the file, with a warning.
        "the pipeline is named \"daily_orders\" after its file",
        // The implicit chain names both steps.
        "step 'big-orders' reads the table of step 'extract-orders'",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert!(!all.contains("not supported"), "{all}");
    let session = project.session();
    let written = rows(&session, "SELECT * FROM \"big-orders\" ORDER BY id");
    assert!(!written.is_empty());
    // The extractor that needs the writer ran after it and read what it wrote.
    assert_eq!(
        rows(&session, "SELECT * FROM \"read-back\" ORDER BY id"),
        written
    );
}

#[test]
fn params_in_sql_are_literals_so_a_value_cannot_inject_sql() {
    let project = Project::new();
    project.write(
        "inject.yaml",
        r#"
oml_version: "0.1.0"
name: inject
params: {x: "", n: 0}
steps:
  - id: q
    component: duckdb.processor
    mode: transform
    config:
      query: "SELECT '${params.x}' AS quoted, ${params.x} AS bare, ${params.n} + 1 AS n"
"#,
    );
    let value = "1'; COPY (SELECT 42) TO 'injected.csv'; --";
    let ran = project.osiris(&[
        "run",
        "inject.yaml",
        "--param",
        &format!("x={value}"),
        "--param",
        "n=41",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(!project.path().join("injected.csv").exists());
    assert_eq!(
        rows(&project.session(), "SELECT quoted, bare, n FROM q"),
        [format!("{value}|{value}|42")]
    );
}

#[test]
fn a_deeply_nested_pipeline_is_refused_at_once_naming_file_and_line() {
    let project = Project::new();
    let mut text = String::from("oml_version: \"0.1.0\"\nname: deep\nsteps: ");
    text.push_str(&"[".repeat(10 * 1024 * 1024));
    project.write("deep.yaml", text);
    let started = Instant::now();
    let ran = project.osiris(&["run", "deep.yaml"]);
    // The parser alone would take forever; the scan takes milliseconds (generous bound for
    // loaded machines).
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_input_error(
        &ran,
        &["deep.yaml: line 3: nesting is deeper than 64 levels"],
    );
}

#[test]
fn an_oversized_pipeline_is_refused_naming_file_and_limit() {
    let project = Project::new();
    let mut text = String::from("oml_version: \"0.1.0\"\nname: big\n");
    text.push_str(&"# padding\n".repeat(17 * 1024 * 1024 / 10));
    project.write("big.yaml", text);
    let ran = project.osiris(&["validate", "big.yaml"]);
    assert_input_error(
        &ran,
        &["big.yaml is larger than 16 MiB, the limit for a YAML input file"],
    );
}

#[test]
fn connections_files_are_read_within_limits_and_warn_without_connections_key() {
    let project = example_project();
    // Families at the top level, as some hand-written files have them: read as nothing.
    project.write(
        "osiris_connections.yaml",
        "version: 1\nmysql:\n  main: {host: localhost}\n",
    );
    let ran = project.osiris(&["validate", "pipeline.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.all()
            .contains("osiris_connections.yaml has no `connections:` key"),
        "{}",
        ran.all()
    );
    project.write(
        "osiris_connections.yaml",
        format!("connections: {}", "{a: ".repeat(100)),
    );
    let ran = project.osiris(&["validate", "pipeline.yaml"]);
    assert_input_error(
        &ran,
        &["osiris_connections.yaml: line 1: nesting is deeper than 64 levels"],
    );
}

#[test]
fn a_deeply_nested_spec_file_is_a_problem_of_that_file() {
    let project = Project::new();
    let path = project.write("spec.yaml", format!("name: x\nmodes: {}", "[".repeat(1000)));
    let ran = project.osiris(&["components", "validate", path.to_str().unwrap()]);
    assert_ne!(ran.code, 0, "{}", ran.all());
    assert!(!ran.all().contains("panicked"), "{}", ran.all());
    assert!(
        ran.all()
            .contains("spec.yaml: line 2: nesting is deeper than 64 levels"),
        "{}",
        ran.all()
    );
}
