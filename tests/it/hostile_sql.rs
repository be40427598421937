//! Hostile SQL in a `duckdb.processor` step: one query and nothing else, and no reach beyond
//! the paths the pipeline's own file steps name. Locally and on a worker.

use crate::common::{Project, rows, tables};

fn pipeline(query: &str) -> String {
    format!(
        r#"
oml_version: "0.1.0"
name: hostile
steps:
  - {{id: src, component: filesystem.csv_extractor, mode: read, config: {{path: data/input.csv}}}}
  - id: evil
    component: duckdb.processor
    mode: transform
    needs: [src]
    config:
      query: |
        {query}
"#
    )
}

fn project(query: &str) -> Project {
    let project = Project::new();
    project.write("data/input.csv", "id,amount\n1,10\n2,20\n");
    project.write("data/other.csv", "x\n1\n");
    project.write("p.yaml", pipeline(query));
    project
}

/// The step failed as a config error, left no table, and the earlier step's table is intact.
fn assert_refused(project: &Project, ran: &crate::common::Ran) {
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("error: step 'evil' (duckdb.processor): config key `query`"),
        "{}",
        ran.stderr
    );
    let session = project.session();
    assert_eq!(tables(&session), ["src"], "{}", ran.all());
    assert_eq!(rows(&session, "SELECT count(*) FROM src"), ["2"]);
}

#[test]
fn a_second_statement_never_runs() {
    for query in [
        "SELECT 1 AS x; DROP TABLE src",
        "SELECT 1 AS x; COMMIT; SELECT error('boom')",
        "DROP TABLE src",
    ] {
        let project = project(query);
        let ran = project.osiris(&["run", "p.yaml"]);
        assert_refused(&project, &ran);
    }
}

#[test]
fn files_outside_the_pipeline_are_out_of_reach() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "do not read").unwrap();
    let secret = outside.path().join("secret.txt").display().to_string();
    let written = outside.path().join("written.csv").display().to_string();
    for query in [
        format!("SELECT * FROM read_text('{secret}')"),
        "SELECT * FROM read_text('/etc/passwd')".to_owned(),
        format!("SELECT * FROM read_csv('{secret}')"),
    ] {
        let project = project(&query);
        let ran = project.osiris(&["run", "p.yaml"]);
        assert_eq!(ran.code, 1, "{query}: {}", ran.all());
        assert!(
            ran.stderr.contains("Permission Error")
                || ran.stderr.contains("disabled by configuration"),
            "{query}: {}",
            ran.stderr
        );
        assert!(!ran.all().contains("do not read"));
        assert_eq!(tables(&project.session()), ["src"]);
    }
    for query in [
        format!("COPY (SELECT 1) TO '{written}'"),
        format!("ATTACH '{written}.duckdb' AS other"),
        "INSTALL httpfs".to_owned(),
    ] {
        let project = project(&query);
        let ran = project.osiris(&["run", "p.yaml"]);
        assert_refused(&project, &ran);
    }
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        1,
        "nothing was written outside"
    );
}

#[test]
fn a_query_may_read_files_beside_the_pipeline() {
    let project = Project::new();
    project.write("data/input.csv", "id,amount\n1,10\n2,20\n");
    project.write("data/rates.csv", "id,rate\n1,2\n2,3\n");
    let rates = project.path().join("data/rates.csv").display().to_string();
    project.write(
        "p.yaml",
        pipeline(&format!(
            "SELECT sum(amount * rate) AS total FROM src JOIN read_csv('{rates}') r USING (id)"
        )),
    );
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(rows(&project.session(), "SELECT total FROM evil"), ["80"]);
}

#[test]
fn a_worker_applies_the_same_limits() {
    let reader = project("SELECT * FROM read_text('/etc/passwd')");
    let ran = reader.osiris(&["run", "p.yaml", "--target", "remote"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(!ran.stdout.contains("root:"), "{}", ran.stdout);
    assert!(
        ran.stderr.contains("Permission Error") || ran.stderr.contains("disabled by configuration"),
        "{}",
        ran.stderr
    );
    let dropper = project("SELECT 1 AS x; DROP TABLE src");
    let ran = dropper.osiris(&["run", "p.yaml", "--target", "remote"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.stderr.contains("2 statements"), "{}", ran.stderr);
}

#[test]
fn an_error_inside_a_multi_line_query_names_the_pipeline_line() {
    let project = Project::new();
    project.write("data/input.csv", "id,amount\n1,10\n");
    project.write(
        "p.yaml",
        r#"oml_version: "0.1.0"
name: positions
steps:
  - {id: src, component: filesystem.csv_extractor, mode: read, config: {path: data/input.csv}}
  - id: totals
    component: duckdb.processor
    mode: transform
    needs: [src]
    config:
      query: |
        SELECT
          id,
          sum(amount_usd) AS total
        FROM src
        GROUP BY id
"#,
    );
    for target in [
        &["run", "p.yaml"][..],
        &["run", "p.yaml", "--target", "remote"],
    ] {
        let ran = project.osiris(target);
        assert_eq!(ran.code, 1, "{}", ran.all());
        // `amount_usd` is on the query's third line, line 13 of the file.
        assert!(
            ran.stderr.contains("LINE 3 (p.yaml line 13):"),
            "{target:?}: {}",
            ran.stderr
        );
    }
}
