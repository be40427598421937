//! One JSON error shape for every command (docs/cli-json.md): with `--json`, bad input exits 2
//! and prints the same object, whatever the command; an internal error (a bug) exits 70 in the
//! same shape, so that it is never mistaken for bad input.

use serde_json::Value;

use crate::common::{Project, Ran, example_project};

/// The keys of every error, in order.
const KEYS: [&str; 9] = [
    "ok",
    "status",
    "exit_code",
    "kind",
    "error_class",
    "message",
    "file",
    "errors",
    "warnings",
];

/// The error `ran` printed on stdout, checked against the one shape.
fn error(ran: &Ran, code: i32, kind: &str) -> Value {
    assert_eq!(ran.code, code, "{}", ran.all());
    let value: Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {}", ran.all()));
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, KEYS, "{value}");
    assert_eq!(value["ok"], false);
    assert_eq!(value["status"], "error");
    assert_eq!(value["exit_code"], code);
    assert_eq!(value["kind"], kind);
    assert!(value["error_class"].is_string(), "{value}");
    assert!(!value["message"].as_str().unwrap().is_empty(), "{value}");
    assert!(value["file"].is_null() || value["file"].is_string());
    assert!(value["errors"].is_array() && value["warnings"].is_array());
    value
}

const INVALID: &str =
    "oml_version: \"0.1.0\"\nname: bad\nsteps:\n  - {id: a, component: nope.thing, mode: read}\n";

#[test]
fn bad_input_gives_one_json_shape_and_exit_2_for_every_command() {
    let project = example_project();
    project.write("bad.yaml", INVALID);
    let cases: &[&[&str]] = &[
        &["run", "missing.yaml"],
        &["run", "pipeline.yaml", "--worker-cmd", "true"],
        &["run", "pipeline.yaml", "--session-id", ".."],
        &[
            "run",
            "pipeline.yaml",
            "--from-step",
            "nope",
            "--session",
            "nope",
        ],
        &[
            "run",
            "pipeline.yaml",
            "--target",
            "remote",
            "--worker-cmd",
            " ",
        ],
        &["run", "pipeline.yaml", "--no-such-flag"],
        &["run"],
        &["validate", "missing.yaml"],
        &["compile", "missing.yaml"],
        &["components", "show", "nope.thing"],
        &["components", "validate", "nope.thing"],
        &["connections", "list", "--connections", "missing.yaml"],
        &["connections", "doctor", "not-a-reference"],
        &["connections", "discover", "@nope.none"],
        &["sessions", "show", "nope"],
        &["sessions", "query", "nope", "SELECT 1"],
        &["sessions", "diff", "nope", "other"],
        &["sessions", "rm", "nope"],
        &["sessions", "list", "--since", "soon"],
        &["serve", "--pg", "127.0.0.1:0"],
        &[
            "worker",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            "missing-token",
        ],
    ];
    for args in cases {
        let mut args = args.to_vec();
        args.push("--json");
        let ran = project.osiris_env(&args, &[("OSIRIS_PG_PASSWORD", "")]);
        let value = error(&ran, 2, "input");
        assert_eq!(value["error_class"], "config", "{args:?}: {value}");
    }
}

#[test]
fn a_command_line_clap_refuses_names_what_is_missing_in_the_same_shape() {
    let project = Project::new();
    let ran = project.osiris(&["run", "--json"]);
    let value = error(&ran, 2, "input");
    assert_eq!(
        value["message"],
        "the following required arguments were not provided: <PIPELINE>"
    );
    let ran = project.osiris(&["run", "p.yaml", "--json", "--bogus"]);
    let value = error(&ran, 2, "input");
    assert!(
        value["message"]
            .as_str()
            .unwrap()
            .starts_with("unexpected argument '--bogus'"),
        "{value}"
    );
}

#[test]
fn an_invalid_pipeline_lists_its_problems_in_the_same_shape_for_run_validate_and_compile() {
    let project = Project::new();
    project.write("bad.yaml", INVALID);
    for command in ["run", "validate", "compile"] {
        let ran = project.osiris(&[command, "bad.yaml", "--json"]);
        let value = error(&ran, 2, "input");
        assert_eq!(value["file"], "bad.yaml", "{command}");
        let errors = value["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{command}: {value}");
        assert_eq!(errors[0]["step"], "a");
        assert_eq!(errors[0]["key"], "component");
        assert!(
            value["message"].as_str().unwrap().contains("(1 error)"),
            "{command}: {value}"
        );
    }
    assert!(project.sessions().is_empty(), "nothing ran");
}

#[test]
fn a_spec_with_problems_is_bad_input_in_the_same_shape() {
    let project = Project::new();
    project.write(
        "spec.yaml",
        "name: x.y\nversion: 1.0.0\nmodes: [extract]\ncapabilities: {discover: no}\nconfigSchema: {type: object}\n",
    );
    let ran = project.osiris(&["components", "validate", "spec.yaml", "--json"]);
    let value = error(&ran, 2, "input");
    assert_eq!(value["file"], "spec.yaml");
    assert!(!value["errors"].as_array().unwrap().is_empty(), "{value}");
}

#[test]
fn an_internal_error_exits_70_in_the_same_shape_never_as_bad_input() {
    let project = example_project();
    for fault in ["error", "panic"] {
        for args in [
            &["components", "list", "--json"][..],
            &["run", "pipeline.yaml", "--json"][..],
            &["sessions", "list", "--json"][..],
        ] {
            let ran = project.osiris_env(args, &[("OSIRIS_DEBUG_FAULT", fault)]);
            let value = error(&ran, 70, "internal");
            assert_eq!(value["error_class"], "internal", "{args:?}");
            assert!(
                value["message"]
                    .as_str()
                    .unwrap()
                    .contains("OSIRIS_DEBUG_FAULT"),
                "{value}"
            );
        }
        let text = project.osiris_env(&["components", "list"], &[("OSIRIS_DEBUG_FAULT", fault)]);
        assert_eq!(text.code, 70, "{}", text.all());
        assert!(text.stdout.is_empty(), "{}", text.all());
        assert!(text.stderr.contains("internal error"), "{}", text.stderr);
    }
    assert!(project.sessions().is_empty(), "nothing ran");
}

#[test]
fn without_json_bad_input_is_one_error_line_on_stderr() {
    let project = Project::new();
    let ran = project.osiris(&["sessions", "show", "nope"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.stdout.is_empty(), "{}", ran.all());
    assert!(
        ran.stderr.starts_with("error: no session `nope`"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_failure_of_the_world_exits_1_in_the_same_shape() {
    let project = Project::new();
    project.write(
        "osiris_connections.yaml",
        "connections:\n  mysql:\n    closed:\n      host: 127.0.0.1\n      port: 1\n      database: shop\n      user: root\n      password: Closed-Port-Secret-77\n",
    );
    let ran = project.osiris(&["connections", "discover", "@mysql.closed", "--json"]);
    let value = error(&ran, 1, "failed");
    assert_eq!(value["error_class"], "connection", "{value}");
    assert!(
        value["message"]
            .as_str()
            .unwrap()
            .starts_with("@mysql.closed: "),
        "{value}"
    );
    assert!(
        !ran.all().contains("Closed-Port-Secret-77"),
        "{}",
        ran.all()
    );
}
