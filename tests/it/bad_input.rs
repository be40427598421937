//! Bad input: each case gets a clear message naming the step, key or line, a distinct exit
//! code (2 before anything runs, 1 when a step fails), and no table of the failed step.

use crate::common::{Project, rows, tables};

const CSV_TO_CSV: &str = r#"
oml_version: "0.1.0"
name: csv-copy
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config: {path: input.csv}
  - id: load
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config: {path: out/copy.csv}
"#;

fn assert_no_session(project: &Project) {
    assert!(
        project.sessions().is_empty(),
        "nothing may run for invalid input"
    );
}

fn assert_step_failed_without_table(project: &Project, step: &str) {
    let session = project.session();
    assert!(
        !tables(&session).contains(&step.to_owned()),
        "table {step} must not exist"
    );
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(session.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["ok"], false);
    assert_eq!(status["exit_code"], 1);
    assert_eq!(status["failed_step"], step);
}

#[test]
fn malformed_yaml_names_line_and_column_and_exits_2() {
    let project = Project::new();
    project.write(
        "p.yaml",
        "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - id: a\n    component: [unclosed\n",
    );
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("malformed YAML at line 6 column 1"),
        "{}",
        ran.stderr
    );
    assert_no_session(&project);
}

#[test]
fn unknown_component_lists_the_known_ones() {
    let project = Project::new();
    project.write(
        "p.yaml",
        "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: a, component: filesystem.csv_extractr, mode: read, config: {path: x.csv}}\n",
    );
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("p.yaml: error: step 'a', key `component`: unknown component `filesystem.csv_extractr`; did you mean `filesystem.csv_extractor`? known components: duckdb.processor, filesystem.csv_extractor, filesystem.csv_writer, filesystem.json_extractor, filesystem.json_writer, filesystem.parquet_extractor, filesystem.parquet_writer, graphql.extractor, mysql.extractor, mysql.writer, postgres.extractor, postgres.writer, posthog.extractor, supabase.extractor, supabase.writer\n"),
        "{}",
        ran.stderr
    );
    assert_no_session(&project);
}

#[test]
fn every_described_component_is_runnable_in_the_default_build() {
    // A component described by a spec but without a driver fails validation by name; the
    // engine tests that with a registry missing a driver. The default build has them all.
    let project = Project::new();
    let listed = project.osiris(&["components", "list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.all());
    let list: Vec<serde_json::Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(list.len(), 15, "{}", listed.stdout);
    let missing: Vec<&serde_json::Value> = list.iter().filter(|c| c["runnable"] != true).collect();
    assert!(
        missing.is_empty(),
        "components without a driver: {missing:?}"
    );
}

#[test]
fn unknown_config_key_suggests_the_nearest_valid_key() {
    let project = Project::new();
    project.write("input.csv", "a\n1\n");
    project.write(
        "p.yaml",
        CSV_TO_CSV.replace("{path: input.csv}", "{path: input.csv, delimitr: ';'}"),
    );
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("step 'extract', key `config.delimitr`: unknown key `delimitr` for `filesystem.csv_extractor`; did you mean `delimiter`?"),
        "{}",
        ran.stderr
    );
    assert_no_session(&project);
}

#[test]
fn wrong_config_type_names_the_key() {
    let project = Project::new();
    project.write(
        "p.yaml",
        CSV_TO_CSV.replace("{path: input.csv}", "{path: input.csv, skip_rows: many}"),
    );
    let ran = project.osiris(&["validate", "p.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("step 'extract', key `config.skip_rows`"),
        "{}",
        ran.stderr
    );
}

#[test]
fn missing_required_key_is_reported() {
    let project = Project::new();
    project.write("p.yaml", CSV_TO_CSV.replace("{path: out/copy.csv}", "{}"));
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("step 'load', key `config.path`: missing required key `path`\n"),
        "{}",
        ran.stderr
    );
}

#[test]
fn missing_input_file_fails_the_step_with_exit_1() {
    let project = Project::new();
    project.write("p.yaml", CSV_TO_CSV);
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("error: step 'extract' (filesystem.csv_extractor):"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("input.csv") && ran.stderr.contains("does not exist"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stdout.contains("Run failed: 0/2 steps"),
        "{}",
        ran.stdout
    );
    assert_step_failed_without_table(&project, "extract");
    assert!(
        !project.path().join("out/copy.csv").exists(),
        "later steps do not run"
    );
}

#[test]
fn csv_row_with_wrong_field_count_names_its_line() {
    let project = Project::new();
    project.write("input.csv", "id,name\n1,a\n2,b\n3,c,extra\n4,d\n");
    project.write("p.yaml", CSV_TO_CSV);
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.stderr.contains("line 4"), "{}", ran.stderr);
    assert!(ran.stderr.contains("expected 2 fields"), "{}", ran.stderr);
    assert!(ran.stderr.contains("found 3"), "{}", ran.stderr);
    assert_step_failed_without_table(&project, "extract");
}

#[test]
fn invalid_utf8_for_the_declared_encoding_names_its_line() {
    let project = Project::new();
    project.write("input.csv", b"id,name\n1,ok\n2,caf\xe9\n".as_slice());
    project.write("p.yaml", CSV_TO_CSV);
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.stderr.contains("line 3"), "{}", ran.stderr);
    assert!(
        ran.stderr.to_lowercase().contains("utf-8"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("encoding"), "{}", ran.stderr);
    assert_step_failed_without_table(&project, "extract");
}

#[test]
fn the_same_file_reads_with_the_right_encoding() {
    let project = Project::new();
    project.write("input.csv", b"id,name\n1,ok\n2,caf\xe9\n".as_slice());
    project.write(
        "p.yaml",
        CSV_TO_CSV.replace("{path: input.csv}", "{path: input.csv, encoding: latin-1}"),
    );
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        rows(&project.session(), "SELECT name FROM extract ORDER BY id"),
        ["ok", "café"]
    );
}

#[test]
fn sql_error_names_the_step_and_keeps_duckdbs_message() {
    let project = Project::new();
    project.write("input.csv", "id,amount\n1,10\n");
    project.write(
        "p.yaml",
        r#"
oml_version: "0.1.0"
name: sql-error
steps:
  - {id: extract, component: filesystem.csv_extractor, mode: read, config: {path: input.csv}}
  - id: totals
    component: duckdb.processor
    mode: transform
    needs: [extract]
    config: {query: "SELECT sum(amount_usd) FROM extract"}
"#,
    );
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("error: step 'totals' (duckdb.processor): config key `query`: query failed:"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("amount_usd"), "{}", ran.stderr);
    assert!(ran.stdout.contains("✗ totals"), "{}", ran.stdout);
    assert_step_failed_without_table(&project, "totals");
    assert_eq!(
        tables(&project.session()),
        ["extract"],
        "the earlier step's table is kept"
    );
}

#[test]
fn duplicate_step_id_exits_2() {
    let project = Project::new();
    project.write("p.yaml", CSV_TO_CSV.replace("id: load", "id: extract"));
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("duplicate step id: steps[0] and steps[1] are both 'extract'"),
        "{}",
        ran.stderr
    );
    assert_no_session(&project);
}

#[test]
fn cycle_in_needs_exits_2_with_the_cycle() {
    let project = Project::new();
    project.write(
        "p.yaml",
        r#"
oml_version: "0.1.0"
name: cyclic
steps:
  - {id: a, component: duckdb.processor, mode: transform, needs: [b], config: {query: "SELECT 1"}}
  - {id: b, component: duckdb.processor, mode: transform, needs: [a], config: {query: "SELECT 1"}}
"#,
    );
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("`needs` form a cycle: a -> b -> a")
            || ran.stderr.contains("`needs` form a cycle: b -> a -> b"),
        "{}",
        ran.stderr
    );
    assert_no_session(&project);
}

#[test]
fn validate_reports_every_problem_at_once() {
    let project = Project::new();
    project.write(
        "p.yaml",
        r#"
oml_version: "0.1.0"
name: many-problems
steps:
  - {id: a, component: filesystem.csv_extractor, mode: write, config: {pth: x.csv}}
  - {id: b, component: nope.thing, mode: read}
  - {id: c, component: filesystem.csv_writer, mode: write, needs: [zz], config: {path: o.csv}}
"#,
    );
    let ran = project.osiris(&["validate", "p.yaml", "--json"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(report["status"], "error");
    assert_eq!(report["kind"], "input");
    let errors: Vec<String> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}|{}",
                e["step"].as_str().unwrap_or(""),
                e["key"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            "c|needs",
            "a|mode",
            "a|needs",
            "a|config.pth",
            "a|config.path",
            "b|component"
        ]
    );
}

#[test]
fn unknown_flag_exits_2() {
    let project = Project::new();
    let ran = project.osiris(&["run", "p.yaml", "--frobnicate"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.stderr.contains("--frobnicate"), "{}", ran.stderr);
}

#[test]
fn missing_pipeline_file_exits_2() {
    let project = Project::new();
    let ran = project.osiris(&["run", "nowhere.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("cannot read pipeline nowhere.yaml"),
        "{}",
        ran.stderr
    );
}
