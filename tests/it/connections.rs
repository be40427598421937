//! Connections, secrets, `.env` and parameters, end to end.

use crate::common::{Project, rows};

const PASSWORD: &str = "Vault-Pass-0x5f3759df";
const TOKEN: &str = "Tok-Literal-8c1d9e2f";
const DSN_SECRET: &str = "Dsn-Secret-77aa41";

const CONNECTIONS: &str = r#"
connections:
  filesystem:
    vault:
      default: true
      base_dir: ${DATA_DIR:-data}
      password: ${VAULT_PASSWORD}
      api_token: Tok-Literal-8c1d9e2f
      dsn: postgres://app:Dsn-Secret-77aa41@db.internal:5432/x
    other:
      base_dir: elsewhere
"#;

const PIPELINE: &str = r#"
oml_version: "0.1.0"
name: vault-copy
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config: {connection: "@filesystem.vault", path: orders.csv}
  - id: totals
    component: duckdb.processor
    mode: transform
    needs: [extract]
    config: {query: "SELECT count(*) AS n, sum(amount) AS total FROM extract"}
  - id: load
    component: filesystem.csv_writer
    mode: write
    needs: [totals]
    config: {connection: "@filesystem.vault", path: out/totals.csv}
"#;

fn vault_project() -> Project {
    let project = Project::new();
    project.write("osiris_connections.yaml", CONNECTIONS);
    project.write(".env", format!("VAULT_PASSWORD={PASSWORD}\n"));
    project.write("data/orders.csv", "id,amount\n1,10.5\n2,4.5\n");
    project.write("pipeline.yaml", PIPELINE);
    project
}

fn assert_no_secret(what: &str, bytes: &[u8]) {
    for secret in [PASSWORD, TOKEN, DSN_SECRET] {
        let hit = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!hit, "secret {secret:?} leaked into {what}");
    }
}

#[test]
fn csv_paths_resolve_against_the_connections_base_dir() {
    let project = vault_project();
    let ran = project.osiris(&["run", "pipeline.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        rows(&project.session(), "SELECT n, total FROM totals"),
        ["2|15.0"]
    );
    assert_eq!(project.read("data/out/totals.csv"), b"n,total\n2,15.0\n");
}

#[test]
fn secrets_never_reach_any_file_or_output() {
    let project = vault_project();
    let mut outputs = Vec::new();
    let mut record = |label: &str, ran: crate::common::Ran| {
        outputs.push((label.to_owned(), ran.all()));
        ran
    };
    let ok = record("run", project.osiris(&["run", "pipeline.yaml", "--json"]));
    assert_eq!(ok.code, 0, "{}", ok.all());

    // A failing run whose SQL and error message carry a secret value (by value, not by key).
    project.write(
        "leaky.yaml",
        PIPELINE.replace(
            "SELECT count(*) AS n, sum(amount) AS total FROM extract",
            &format!("SELECT * FROM \\\"{TOKEN}\\\""),
        ),
    );
    let failed = record("failing run", project.osiris(&["run", "leaky.yaml"]));
    assert_eq!(failed.code, 1, "{}", failed.all());
    assert!(
        failed.stderr.contains("***"),
        "the secret was in the error and got masked: {}",
        failed.stderr
    );

    for args in [
        vec!["validate", "pipeline.yaml", "--json"],
        vec!["connections", "list"],
        vec!["connections", "list", "--json"],
        vec!["connections", "doctor"],
        vec!["compile", "pipeline.yaml", "--out", "build/c"],
    ] {
        let ran = project.osiris(&args);
        assert_eq!(ran.code, 0, "{args:?}: {}", ran.all());
        record(&args.join(" "), ran);
    }

    for (label, text) in &outputs {
        assert_no_secret(&format!("the output of {label}"), text.as_bytes());
    }
    let files = [project.files(".osiris_sessions"), project.files("build")].concat();
    assert!(
        files.len() > 10,
        "sessions and compile output exist: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, bytes) in &files {
        assert_no_secret(path, bytes);
    }
    // The connection really reached the driver: its (non-secret) base_dir is in the cleaned
    // config, and its secret-named fields did not.
    let cleaned = files
        .iter()
        .find(|(p, _)| p.ends_with("artifacts/extract/cleaned_config.json"))
        .unwrap();
    let cleaned = String::from_utf8_lossy(&cleaned.1);
    assert!(cleaned.contains("\"base_dir\": \"data\""), "{cleaned}");
}

#[test]
fn connections_list_masks_literals_and_reports_variables() {
    let project = vault_project();
    let ran = project.osiris(&["connections", "list", "--json"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let list: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let vault = list["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["connection"] == "@filesystem.vault")
        .unwrap();
    assert_eq!(vault["default"], true);
    assert_eq!(
        vault["fields"]["password"], "${VAULT_PASSWORD}",
        "references are shown as written"
    );
    assert_eq!(vault["fields"]["api_token"], "***");
    assert_eq!(vault["fields"]["dsn"], "***");
    assert_eq!(vault["fields"]["base_dir"], "${DATA_DIR:-data}");
    assert_eq!(vault["env"]["VAULT_PASSWORD"], true, ".env was loaded");
    assert_eq!(vault["env"]["DATA_DIR"], false);
}

#[test]
fn the_environment_wins_over_dotenv() {
    let project = vault_project();
    project.write(
        ".env",
        format!("VAULT_PASSWORD={PASSWORD}\nDATA_DIR=missing\n"),
    );
    project.write("real/orders.csv", "id,amount\n1,1\n");
    let ran = project.osiris_env(&["run", "pipeline.yaml"], &[("DATA_DIR", "real")]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(rows(&project.session(), "SELECT n FROM totals"), ["1"]);
}

#[test]
fn missing_variable_and_unknown_alias_are_validation_errors() {
    let project = vault_project();
    std::fs::remove_file(project.path().join(".env")).unwrap();
    project.write(
        "p2.yaml",
        PIPELINE.replace(
            "@filesystem.vault\", path: out",
            "@filesystem.nope\", path: out",
        ),
    );
    let ran = project.osiris(&["validate", "p2.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("p2.yaml: error: step 'extract', key `config.connection`: environment variable VAULT_PASSWORD is not set (used by field `password` of connection @filesystem.vault)"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("step 'load', key `config.connection`: no connection `nope` in family `filesystem`; aliases: other, vault"),
        "{}",
        ran.stderr
    );
    assert!(project.sessions().is_empty());
    // compile does not need connection values
    let compiled = project.osiris(&["compile", "p2.yaml", "--out", "b"]);
    assert_eq!(compiled.code, 0, "{}", compiled.all());
}

#[test]
fn connections_file_can_be_given_explicitly() {
    let project = vault_project();
    std::fs::rename(
        project.path().join("osiris_connections.yaml"),
        project.path().join("conns.yaml"),
    )
    .unwrap();
    let ran = project.osiris(&["run", "pipeline.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("no osiris_connections.yaml found"),
        "{}",
        ran.stderr
    );
    let ran = project.osiris(&["run", "pipeline.yaml", "--connections", "conns.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
}

#[test]
fn inline_secret_in_a_pipeline_is_rejected() {
    let project = vault_project();
    project.write(
        "p.yaml",
        "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: a, component: duckdb.processor, mode: transform, config: {query: SELECT 1, password: hunter22}}\n",
    );
    let ran = project.osiris(&["validate", "p.yaml", "--json"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let inline = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["message"].as_str().unwrap().starts_with("inline secret"))
        .expect("an inline-secret error");
    assert_eq!(inline["step"], "a");
    assert_eq!(inline["pointer"], "/steps/0/config/password");
    assert!(!ran.stdout.contains("hunter22"));
}

const PARAMS: &str = r#"
oml_version: "0.1.0"
name: params-demo
params:
  min_amount: 5
  label: {default: all}
profiles:
  big: {params: {min_amount: 100}}
steps:
  - id: pick
    component: duckdb.processor
    mode: transform
    config:
      query: "SELECT '${params.label}' AS label, count(*) AS n FROM range(200) t(x) WHERE x >= ${params.min_amount}"
"#;

#[test]
fn params_come_from_defaults_env_profile_and_flags() {
    let project = Project::new();
    project.write("p.yaml", PARAMS);
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (&[], &[], "all|195"),
        (&[], &[("OSIRIS_PARAM_MIN_AMOUNT", "150")], "all|50"),
        (
            &["--profile", "big"],
            &[("OSIRIS_PARAM_MIN_AMOUNT", "150")],
            "all|100",
        ),
        (
            &[
                "--profile",
                "big",
                "--param",
                "min_amount=190",
                "--param",
                "label=top",
            ],
            &[],
            "top|10",
        ),
    ];
    for (i, (flags, env, expected)) in cases.iter().enumerate() {
        let session = format!("s{i}");
        let mut args = vec!["run", "p.yaml", "--session-id", &session];
        args.extend_from_slice(flags);
        let ran = project.osiris_env(&args, env);
        assert_eq!(ran.code, 0, "{flags:?}: {}", ran.all());
        let dir = project.path().join(".osiris_sessions").join(&session);
        assert_eq!(
            rows(&dir, "SELECT label, n FROM pick"),
            [*expected],
            "{flags:?} {env:?}"
        );
    }
}

#[test]
fn unresolved_params_and_unknown_profiles_exit_2() {
    let project = Project::new();
    project.write(
        "p.yaml",
        PARAMS.replace("${params.label}", "${params.region}"),
    );
    let ran = project.osiris(&["run", "p.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("unresolved parameter region"),
        "{}",
        ran.stderr
    );
    let ran = project.osiris(&["run", "p.yaml", "--param", "region=eu", "-p", "huge"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("no profile `huge`; profiles: big"),
        "{}",
        ran.stderr
    );
}

#[test]
fn config_values_are_checked_against_the_spec() {
    let project = Project::new();
    project.write("in.csv", "a\n1\n");
    project.write(
        "p.yaml",
        r#"
oml_version: "0.1.0"
name: checks
steps:
  - {id: a, component: filesystem.csv_extractor, mode: read, config: {path: in.csv, skip_rows: -1, encoding: ebcdic}}
  - {id: b, component: filesystem.csv_writer, mode: write, needs: [a], config: {path: o.csv, quoting: sometimes, header: "yes"}}
"#,
    );
    let ran = project.osiris(&["validate", "p.yaml"]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    for expected in [
        "step 'a', key `config.skip_rows`: -1 is less than the minimum of 0",
        "step 'a', key `config.encoding`: \"ebcdic\" is not one of",
        "step 'b', key `config.quoting`: \"sometimes\" is not one of \"minimal\", \"all\", \"nonnumeric\"",
        "step 'b', key `config.header`: \"yes\" is not of type \"boolean\"",
    ] {
        assert!(
            ran.stderr.contains(expected),
            "missing {expected:?} in\n{}",
            ran.stderr
        );
    }
}

#[test]
fn a_connection_key_one_typo_from_a_field_is_a_warning_naming_both() {
    let project = Project::new();
    project.write(
        "osiris_connections.yaml",
        "connections:\n  filesystem:\n    typo:\n      base_dri: data\n      description: the shared drive\n      alias: python-osiris-extra\n",
    );
    project.write("data/orders.csv", "id,amount\n1,1\n");
    project.write(
        "pipeline.yaml",
        PIPELINE.replace("@filesystem.vault", "@filesystem.typo"),
    );
    let ran = project.osiris(&["validate", "pipeline.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(
        ran.stderr.contains("step 'extract', key `config.connection`: connection @filesystem.typo has `base_dri`, which filesystem.csv_extractor does not read; did you mean `base_dir`?"),
        "{}",
        ran.stderr
    );
    // Keys that are no typo of a field pass through silently, as in Python Osiris.
    assert!(!ran.stderr.contains("description"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("`alias`"), "{}", ran.stderr);
}
