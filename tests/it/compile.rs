//! `osiris compile` and running a compiled manifest.

use crate::common::{Project, example_project};

#[test]
fn compiling_twice_gives_byte_identical_output() {
    let project = example_project();
    let first = project.osiris(&["compile", "pipeline.yaml", "--json"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let summary: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    let manifest = summary["manifest_path"].as_str().unwrap().to_owned();
    let hash = summary["manifest_hash"].as_str().unwrap();
    assert!(
        manifest.starts_with(&format!(
            "build/pipelines/orders-revenue/{}-{hash}",
            &hash[..7]
        )),
        "{manifest}"
    );
    let before = project.files("build");
    assert_eq!(
        before.len(),
        4,
        "manifest + 3 step configs: {:?}",
        before.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(project.path().join("build")).unwrap();
    let second = project.osiris(&["compile", "pipeline.yaml", "--json"]);
    assert_eq!(second.code, 0, "{}", second.all());
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(before, project.files("build"), "same bytes in every file");

    let text = String::from_utf8(project.read(&manifest)).unwrap();
    for expected in [
        "fingerprints:",
        "oml_fp: sha256:",
        "params_fp: sha256:",
        "registry_fp: sha256:",
        "manifest_fp: sha256:",
        "cfg_path: cfg/read-orders.json",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
}

#[test]
fn a_compiled_manifest_runs_like_the_pipeline() {
    let project = example_project();
    assert_eq!(
        project
            .osiris(&["compile", "pipeline.yaml", "--out", "compiled"])
            .code,
        0
    );
    let ran = project.osiris(&["run", "compiled/manifest.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let expected =
        std::fs::read(crate::common::fixtures().join("orders/expected_revenue_by_customer.csv"))
            .unwrap();
    assert_eq!(
        project.read("output/revenue_by_customer.csv"),
        expected,
        "relative paths still resolve against the pipeline's directory"
    );
}

#[test]
fn an_edited_manifest_is_refused() {
    let project = example_project();
    assert_eq!(
        project
            .osiris(&["compile", "pipeline.yaml", "--out", "compiled"])
            .code,
        0
    );
    let cfg = project.path().join("compiled/cfg/revenue_by_customer.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("DESC", "ASC");
    std::fs::write(&cfg, text).unwrap();
    let ran = project.osiris(&["run", "compiled/manifest.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr
            .contains("revenue_by_customer.json was changed after it was compiled"),
        "{}",
        ran.stderr
    );
    assert!(project.sessions().is_empty());
}

#[test]
fn params_are_fixed_at_compile_time() {
    let project = Project::new();
    project.write(
        "p.yaml",
        "oml_version: \"0.1.0\"\nname: p\nparams: {n: 3}\nsteps:\n  - {id: a, component: duckdb.processor, mode: transform, config: {query: \"SELECT * FROM range(${params.n})\"}}\n",
    );
    let a = project.osiris(&[
        "compile", "p.yaml", "--out", "a", "--param", "n=5", "--json",
    ]);
    let b = project.osiris(&["compile", "p.yaml", "--out", "b", "--json"]);
    let hash = |r: &crate::common::Ran| {
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["manifest_hash"].clone()
    };
    assert_ne!(hash(&a), hash(&b), "params change the fingerprint");
    assert!(
        String::from_utf8(project.read("a/cfg/a.json"))
            .unwrap()
            .contains("range(5)")
    );
    let ran = project.osiris(&["run", "a/manifest.yaml", "--session-id", "s"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        crate::common::rows(
            &project.path().join(".osiris_sessions/s"),
            "SELECT count(*) FROM a"
        ),
        ["5"]
    );
}
