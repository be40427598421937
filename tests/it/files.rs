//! filesystem.json_* and filesystem.parquet_* end to end: `osiris run` of the two pipelines in
//! examples/files (JSON Lines -> partitioned Parquet, then Parquet -> JSON array), through a
//! `@filesystem` connection, under the run's restricted file access.

use crate::common::{Project, repo_root, rows};

fn project() -> Project {
    let project = Project::new();
    let example = repo_root().join("examples/files");
    for file in [
        "json_to_parquet.yaml",
        "parquet_to_json.yaml",
        "osiris_connections.yaml",
        "data/events-2024-01.jsonl",
        "data/events-2024-02.jsonl",
    ] {
        project.write(file, std::fs::read(example.join(file)).unwrap());
    }
    project
}

#[test]
fn example_pipelines_move_json_lines_to_partitioned_parquet_and_back_to_json() {
    let project = project();
    let ran = project.osiris(&["run", "json_to_parquet.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let session = project.session();
    // Two files through one glob, nested objects flattened.
    assert_eq!(
        rows(
            &session,
            "SELECT count(*), string_agg(DISTINCT \"user.address.city\", ',' ORDER BY \"user.address.city\") FROM \"read-events\""
        ),
        ["5|Lund,Oslo"]
    );
    let mut partitions: Vec<String> = project
        .files("output/events")
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    partitions.sort();
    assert_eq!(
        partitions,
        [
            "output/events/month=2024-01/data_0.parquet",
            "output/events/month=2024-02/data_0.parquet"
        ]
    );

    let ran = project.osiris(&["run", "parquet_to_json.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let second = project
        .sessions()
        .into_iter()
        .find(|s| s != &session)
        .unwrap();
    // Exact types survive Parquet; the partition column comes back from the directory names.
    assert_eq!(
        rows(
            &second,
            "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_name = 'read-events'"
        ),
        [
            "id BIGINT, occurred_at TIMESTAMP WITH TIME ZONE, amount DECIMAL(12,2), customer VARCHAR, city VARCHAR, tags VARCHAR[], month VARCHAR"
        ]
    );
    let written: serde_json::Value =
        serde_json::from_slice(&project.read("output/revenue.json")).unwrap();
    assert_eq!(
        written,
        serde_json::json!([
            {"customer": "Ann", "events": 2, "revenue": 139.99, "last_at": "2024-01-30 23:59:59+00"},
            {"customer": "Bo", "events": 2, "revenue": 12.50, "last_at": "2024-02-14 12:30:00+00"},
            {"customer": "Cy", "events": 1, "revenue": 42.10, "last_at": "2024-02-01 00:00:00+00"}
        ])
    );
    let text = String::from_utf8(project.read("output/revenue.json")).unwrap();
    assert!(
        text.contains("\"revenue\":139.99"),
        "exact decimal digits: {text}"
    );
}

#[test]
fn a_malformed_json_file_fails_the_run_naming_it_and_writes_nothing() {
    let project = project();
    project.write("data/events-2024-03.jsonl", "{\"id\": 6, \"month\": \n");
    let ran = project.osiris(&["run", "json_to_parquet.yaml"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.all().contains("events-2024-03.jsonl"), "{}", ran.all());
    assert!(!project.path().join("output/events").exists());
}

#[test]
fn components_list_shows_the_file_components() {
    let ran = Project::new().osiris(&["components", "list", "--json"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    for name in [
        "filesystem.parquet_extractor",
        "filesystem.parquet_writer",
        "filesystem.json_extractor",
        "filesystem.json_writer",
    ] {
        assert!(
            ran.stdout.contains(&format!("\"{name}\"")),
            "{name} missing"
        );
    }
}

#[test]
fn a_list_of_paths_is_readable_under_the_runs_file_access_and_nothing_else_is() {
    // Outside the pipeline's directory (which is always readable): only the listed files are.
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().display().to_string();
    std::fs::write(outside.path().join("a.jsonl"), "{\"id\": 1}\n").unwrap();
    std::fs::create_dir(outside.path().join("sub")).unwrap();
    std::fs::write(
        outside.path().join("sub/b.json"),
        "[{\"id\": 2, \"x\": true}]",
    )
    .unwrap();
    std::fs::write(outside.path().join("secret.jsonl"), "{\"pin\": 1234}\n").unwrap();
    let project = Project::new();
    project.write(
        "p.yaml",
        format!(
            "oml_version: \"0.1.0\"\nname: x\nsteps:\n  \
             - {{id: merged, component: filesystem.json_extractor, mode: read, config: {{path: [{dir}/a.jsonl, {dir}/sub/b.json]}}}}\n  \
             - {{id: out, component: filesystem.parquet_writer, mode: write, needs: [merged], config: {{path: out/merged.parquet}}}}\n"
        ),
    );
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        rows(&project.session(), "SELECT id, x FROM merged ORDER BY id"),
        ["1|NULL", "2|true"]
    );
    assert!(project.path().join("out/merged.parquet").is_file());

    // A processor cannot read a file no file step names (ADR 0023), even beside listed ones.
    project.write(
        "q.yaml",
        format!(
            "oml_version: \"0.1.0\"\nname: q\nsteps:\n  \
             - {{id: merged, component: filesystem.json_extractor, mode: read, config: {{path: [{dir}/a.jsonl]}}}}\n  \
             - {{id: peek, component: duckdb.processor, mode: transform, needs: [merged], config: {{query: \"SELECT * FROM read_json('{dir}/secret.jsonl')\"}}}}\n"
        ),
    );
    let ran = project.osiris(&["run", "q.yaml"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.all().contains("peek"), "{}", ran.all());
    assert!(!ran.all().contains("1234"), "{}", ran.all());
}
