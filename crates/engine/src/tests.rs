//! Tests of the engine as a whole: validation, the step loop, doctor, cancellation, state.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use async_trait::async_trait;
use component_spec::ComponentSpec;
use driver_api::{Driver, StepOutput, replace_table_as};
use driver_api::{DriverError, ErrorClass, InputTable, StepContext, StepInputs};
use execution_context::{CancellationToken, ExecutionContext};
use serde::Deserialize;
use serde_json::Value;

/// Creates its table from `sql`, after `sleep_ms`; fails when `fail` is set; waits until
/// cancelled when `hang` is set (with `partial`, inside a transaction that has created its
/// table).
struct SqlStep;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlConfig {
    sql: String,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    hang: bool,
    #[serde(default)]
    partial: bool,
    #[serde(default)]
    sleep_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // port and label are only checked for presence by the tests
struct SqlConnection {
    host: Option<String>,
    port: Option<u16>,
    password: Option<driver_api::SecretString>,
    label: Option<String>,
}

#[async_trait]
impl Driver for SqlStep {
    const NAME: &'static str = "test.sql";
    type Connection = SqlConnection;
    type Config = SqlConfig;

    async fn doctor(&self, connection: &SqlConnection) -> driver_api::Result<()> {
        let password = connection.password.as_ref().map(|p| p.expose());
        match connection.host.as_deref() {
            Some("db.internal") if password == Some("right-pw") => Ok(()),
            Some("db.internal") => Err(DriverError::Auth {
                message: "access denied".into(),
            }),
            Some("slow.internal") => Err(DriverError::Timeout {
                message: "no answer in 5s".into(),
            }),
            _ => Err(DriverError::Connection {
                message: "connection refused".into(),
            }),
        }
    }
    async fn run(
        &self,
        ctx: &StepContext,
        _connection: SqlConnection,
        config: SqlConfig,
        _inputs: StepInputs,
    ) -> driver_api::Result<StepOutput> {
        if config.hang {
            // Half-done work: the table exists only in this open transaction.
            let conn = if config.partial {
                let conn = ctx.connection()?;
                conn.execute_batch(&format!(
                    "BEGIN TRANSACTION; CREATE TABLE {} AS {}",
                    ctx.output_table(),
                    config.sql
                ))
                .map_err(|e| DriverError::data(e.to_string()))?;
                Some(conn)
            } else {
                None
            };
            // Waits until cancelled, as a well-behaved driver would stop its work; dropping
            // the connection rolls its transaction back.
            ctx.cancellation().cancelled().await;
            drop(conn);
            return Err(DriverError::Cancelled);
        }
        if config.sleep_ms > 0 {
            // Yield first, as a real driver's first await (a blocking DuckDB task, a network
            // read) does: a step must not finish inside its first poll, however late the
            // timer is looked at on a loaded machine.
            tokio::task::yield_now().await;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(config.sleep_ms)) => {}
                () = ctx.cancellation().cancelled() => return Err(DriverError::Cancelled),
            }
        }
        if config.fail {
            return Err(DriverError::data("bad row on line 3"));
        }
        let conn = ctx.connection()?;
        let rows = replace_table_as(&conn, ctx.output_table(), &config.sql)?;
        Ok(StepOutput::table(ctx.output_table().clone(), rows))
    }
}

const SPEC: &str = r#"
name: test.sql
version: 1.0.0
modes: [extract, transform]
capabilities: {discover: false, adHocAnalytics: false, inMemoryMove: false, streaming: false, bulkOperations: false, transactions: false, partitioning: false, customTransforms: false}
configSchema:
  type: object
  additionalProperties: false
  properties:
    connection: {type: string}
    sql: {type: string}
    fail: {type: boolean}
    hang: {type: boolean}
    partial: {type: boolean}
    sleep_ms: {type: integer}
    host: {type: string}
    port: {type: integer, maximum: 65535}
    password: {type: string}
    label: {type: string}
  required: [sql]
secrets: [/password]
x-connection-fields:
  - {name: host, override: forbidden}
  - {name: port, override: warning}
  - {name: password, override: forbidden}
  - {name: label, override: allowed}
x-runtime: {driver: test.sql}
"#;

/// An engine with only the `test.sql` driver and the given variant of its spec.
fn engine_with_spec(spec: &str) -> Engine {
    let mut drivers = DriverRegistry::new();
    drivers.register(SqlStep);
    let mut specs = SpecRegistry::default();
    specs.insert(ComponentSpec::from_yaml("test", spec).unwrap());
    Engine::new(drivers, specs)
}

fn engine() -> Engine {
    let mut drivers = DriverRegistry::new();
    drivers.register(SqlStep);
    let mut specs = SpecRegistry::default();
    specs.insert(ComponentSpec::from_yaml("test", SPEC).unwrap());
    specs.insert(
            ComponentSpec::from_yaml(
                "spec-only",
                "name: test.described\nversion: 1.0.0\nmodes: [extract]\ncapabilities: {discover: false, adHocAnalytics: false, inMemoryMove: false, streaming: false, bulkOperations: false, transactions: false, partitioning: false, customTransforms: false}\nconfigSchema: {type: object, properties: {}}\n",
            )
            .unwrap(),
        );
    Engine::new(drivers, specs)
}

fn pipeline(steps: &str) -> Pipeline {
    let text = format!("oml_version: \"0.1.0\"\nname: t\nsteps:\n{steps}");
    pipeline::parse(&text).unwrap().0
}

fn prepared(p: &Pipeline) -> PreparedPlan {
    let (plan, problems) = engine().prepare(p, &ConnectionMode::Assume);
    plan.unwrap_or_else(|| panic!("{problems}"))
}

fn errors(problems: &Problems) -> Vec<String> {
    problems.errors().map(ToString::to_string).collect()
}

#[test]
fn validation_checks_component_mode_keys_and_types() {
    let p = pipeline(
        r#"
  - {id: a, component: test.sqll, mode: read}
  - {id: b, component: test.described, mode: read}
  - {id: c, component: test.sql, mode: write, needs: [a], config: {sql: x}}
  - {id: d, component: test.sql, mode: read, config: {sqk: x}}
  - {id: e, component: test.sql, mode: read, config: {sql: 5}}
"#,
    );
    assert_eq!(
        errors(&engine().validate(&p)),
        [
            "error: step 'a', key `component`: unknown component `test.sqll`; did you mean `test.sql`? known components: test.described, test.sql",
            "error: step 'b', key `component`: component `test.described` is described but not runnable: this build has no driver for it (runnable: test.sql)",
            "error: step 'c', key `mode`: component `test.sql` cannot run in mode `write` (its modes: extract, transform)",
            "error: step 'd', key `config.sqk`: unknown key `sqk` for `test.sql`; did you mean `sql`?",
            "error: step 'd', key `config.sql`: missing required key `sql`",
            "error: step 'e', key `config.sql`: 5 is not of type \"string\"",
        ]
    );
}

#[test]
fn a_step_whose_mode_could_not_be_read_fails_validation_without_panicking() {
    let text = "oml_version: \"0.1.0\"\nname: t\nsteps:\n  - {id: a, component: test.sql, mode: read, config: {sql: SELECT 1}}\n  - {id: w, component: test.sql, mode: replace, needs: [a], config: {sql: SELECT 1}}\n";
    let (pipeline, parse_problems) = pipeline::parse_lenient(text, &Default::default());
    assert!(parse_problems.has_errors());
    let (plan, _) = engine().prepare(&pipeline.unwrap(), &ConnectionMode::Assume);
    assert!(plan.is_none());
}

#[test]
fn default_mode_is_the_specs_only_runnable_mode() {
    let engine = engine();
    assert_eq!(engine.default_mode("test.described"), Some(StepMode::Read));
    assert_eq!(
        engine.default_mode("test.sql"),
        None,
        "two modes: no default"
    );
    assert_eq!(engine.default_mode("test.unknown"), None);
}

fn writer_engine() -> Engine {
    engine_with_spec(&SPEC.replace(
        "modes: [extract, transform]",
        "modes: [extract, transform, write]",
    ))
}

#[test]
fn a_write_step_writes_the_one_table_its_needs_or_inputs_name() {
    let check = |steps: &str| errors(&writer_engine().validate(&pipeline(steps)));
    let base = "  - {id: a, component: test.sql, mode: read, config: {sql: SELECT 1}}\n  - {id: b, component: test.sql, mode: read, config: {sql: SELECT 1}}\n  - {id: w1, component: test.sql, mode: write, needs: [a], config: {sql: SELECT 1}}\n";
    // A needed writer only orders the run.
    assert!(
            check(&format!("{base}  - {{id: w2, component: test.sql, mode: write, needs: [w1, b], config: {{sql: SELECT 1}}}}\n")).is_empty()
        );
    assert_eq!(
        check(&format!(
            "{base}  - {{id: w2, component: test.sql, mode: write, needs: [a, b], config: {{sql: SELECT 1}}}}\n"
        )),
        [
            "error: step 'w2', key `needs`: a write step writes one table but needs 2 steps that produce one (a, b); name the one to write with `inputs: {df: \"${<step id>.df}\"}`, or join them in a duckdb.processor step first"
        ]
    );
    assert!(
            check(&format!("{base}  - {{id: w2, component: test.sql, mode: write, needs: [a, b], inputs: {{df: \"${{b.df}}\"}}, config: {{sql: SELECT 1}}}}\n")).is_empty()
        );
    assert_eq!(
        check(&format!(
            "{base}  - {{id: w2, component: test.sql, mode: write, needs: [w1], config: {{sql: SELECT 1}}}}\n"
        )),
        [
            "error: step 'w2', key `needs`: a write step needs the step whose table it writes: add `needs: [<step id>]` or `inputs: {df: \"${<step id>.df}\"}`"
        ]
    );
    assert_eq!(
        check(&format!(
            "{base}  - {{id: w2, component: test.sql, mode: write, inputs: {{df: \"${{w1.df}}\"}}, config: {{sql: SELECT 1}}}}\n"
        )),
        [
            "error: step 'w2', key `inputs`: step 'w1' writes to a destination and has no table to read"
        ]
    );
}

#[test]
fn inputs_are_the_named_steps_or_else_the_needed_steps_with_tables() {
    let table = |name: &str| InputTable {
        table: driver_api::TableName::new(name.to_owned()).unwrap(),
        rows: 1,
    };
    let outputs: HashMap<String, InputTable> =
        [("a".to_owned(), table("a")), ("b".to_owned(), table("b"))].into();
    let mut step = pipeline("  - {id: a, component: test.sql, mode: read}\n").steps[0].clone();
    step.needs = vec!["writer".into(), "a".into(), "b".into()];
    let from =
        |r: Vec<(&str, &InputTable)>| r.into_iter().map(|(s, _)| s.to_owned()).collect::<Vec<_>>();
    assert_eq!(from(input_tables(&step, &outputs).unwrap()), ["a", "b"]);
    step.inputs = vec!["b".into()];
    assert_eq!(from(input_tables(&step, &outputs).unwrap()), ["b"]);
    step.inputs = vec!["writer".into()];
    assert_eq!(
        input_tables(&step, &outputs).unwrap_err().to_string(),
        "config key `inputs`: step 'writer' produced no table to read"
    );
}

/// A run context in a fresh temporary directory (kept alive by the returned guard).
fn scratch_run() -> (tempfile::TempDir, Arc<ExecutionContext>) {
    let dir = tempfile::tempdir().unwrap();
    let exec = Arc::new(ExecutionContext::new("s", dir.path().join("s")));
    (dir, exec)
}

#[tokio::test]
async fn a_step_may_need_a_writer_to_run_after_it() {
    let (dir, exec) = scratch_run();
    let p = pipeline(
        r#"
  - {id: one, component: test.sql, mode: read, config: {sql: "SELECT 1 AS x"}}
  - {id: save, component: test.sql, mode: write, needs: [one], config: {sql: "SELECT 2 AS x"}}
  - {id: again, component: test.sql, mode: read, needs: [save], config: {sql: "SELECT 3 AS x"}}
"#,
    );
    let engine = writer_engine();
    let (plan, problems) = engine.prepare(&p, &ConnectionMode::Assume);
    let plan = plan.unwrap_or_else(|| panic!("{problems}"));
    let executor = InProcess {
        engine: &engine,
        exec: &exec,
        base_dir: dir.path(),
        jobs: 1,
    };
    // `save` reports no table, as a writer does.
    struct NoTableForSave<'a, 'b>(&'b InProcess<'a>);
    impl StepExecutor for NoTableForSave<'_, '_> {
        async fn execute_step(
            &self,
            step: &PreparedStep,
            outputs: &HashMap<String, InputTable>,
            cancel: &CancellationToken,
        ) -> StepReport {
            let mut report = self.0.execute_step(step, outputs, cancel).await;
            if step.step.id == "save"
                && let StepStatus::Ok { table, .. } = &mut report.status
            {
                *table = None;
            }
            report
        }
    }
    let outcome = run_with(
        &plan,
        &exec,
        &NoObserver,
        HashMap::new(),
        &NoTableForSave(&executor),
    )
    .await;
    assert!(outcome.ok(), "{:?}", outcome.failed_step());
}

/// A plan with SQL steps gets DuckDB's parser (which checks their queries) opening ahead of
/// its run, and the opening, once dropped, has ended; a plan without any leaves it closed.
/// (Each test runs in its own process under nextest, the project's test runner: nothing else
/// here opens the parser.)
#[test]
fn a_plan_with_sql_steps_opens_the_query_parser_ahead_of_its_run() {
    let reads_only = "  - {id: one, component: test.sql, mode: read, config: {sql: x}}\n";
    assert!(
        prepared(&pipeline(reads_only))
            .prepare_sql_steps()
            .is_none()
    );
    assert!(!duckdb_parser::is_open(), "no SQL step, no parser");

    let with_sql = format!(
        "{reads_only}  - {{id: two, component: test.sql, mode: transform, needs: [one], config: {{sql: SELECT 1}}}}\n"
    );
    let opening = prepared(&pipeline(&with_sql)).prepare_sql_steps();
    assert!(opening.is_some());
    drop(opening);
    assert!(
        duckdb_parser::is_open(),
        "the opening has ended when dropped"
    );
}

#[tokio::test]
async fn runs_in_plan_order_and_stops_at_the_first_failure() {
    let (dir, exec) = scratch_run();
    let p = pipeline(
        r#"
  - {id: one, component: test.sql, mode: read, config: {sql: "SELECT 1 AS x UNION ALL SELECT 2"}}
  - {id: two, component: test.sql, mode: transform, needs: [one], config: {sql: "SELECT x * 10 AS y FROM one"}}
  - {id: three, component: test.sql, mode: transform, needs: [two], config: {sql: "SELECT 1", fail: true}}
  - {id: four, component: test.sql, mode: transform, needs: [three], config: {sql: "SELECT 1"}}
"#,
    );
    let outcome = engine()
        .run(&prepared(&p), &exec, dir.path(), &NoObserver, 1)
        .await;
    assert!(!outcome.ok());
    assert_eq!(outcome.steps_completed(), 2);
    assert_eq!(outcome.steps.len(), 3, "step four never starts");
    let failed = outcome.failed_step().unwrap();
    assert_eq!(failed.step_id, "three");
    match &failed.status {
        StepStatus::Failed { error_class, error } => {
            assert_eq!(*error_class, ErrorClass::Data);
            assert_eq!(error, "bad row on line 3");
        }
        other => panic!("unexpected {other:?}"),
    }
    let conn = exec.connection().unwrap();
    let sum: i64 = conn
        .query_row("SELECT sum(y) FROM two", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, 30);
    let events = std::fs::read_to_string(exec.session_dir().join("events.jsonl")).unwrap();
    let names: Vec<String> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| {
            e["event"].as_str().unwrap().starts_with("step_")
                || e["event"].as_str().unwrap().starts_with("run_")
        })
        .map(|e| {
            format!(
                "{}:{}",
                e["event"].as_str().unwrap(),
                e["step_id"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "run_start:",
            "step_start:one",
            "step_complete:one",
            "step_start:two",
            "step_complete:two",
            "step_start:three",
            "step_failed:three",
            "run_error:three",
        ]
    );
}

/// Records the steps it is asked to run; fails the one named `fail_at`.
struct Scripted {
    asked: std::sync::Mutex<Vec<(String, Vec<String>)>>,
    fail_at: &'static str,
}

impl StepExecutor for Scripted {
    async fn execute_step(
        &self,
        step: &PreparedStep,
        outputs: &HashMap<String, InputTable>,
        _cancel: &CancellationToken,
    ) -> StepReport {
        let mut seen: Vec<String> = outputs.keys().cloned().collect();
        seen.sort();
        self.asked
            .lock()
            .unwrap()
            .push((step.step.id.clone(), seen));
        let status = if step.step.id == self.fail_at {
            StepStatus::Failed {
                error_class: ErrorClass::Remote,
                error: "worker gone".into(),
            }
        } else {
            StepStatus::Ok {
                rows: 1,
                table: Some(step.step.id.clone()),
                view: false,
            }
        };
        StepReport {
            step_id: step.step.id.clone(),
            component: step.step.component.clone(),
            mode: step.step.mode,
            status,
            duration_ms: 0,
            state: None,
        }
    }
}

#[tokio::test]
async fn the_step_loop_drives_any_executor_with_the_same_failure_policy() {
    let (_dir, exec) = scratch_run();
    let p = pipeline(
        r#"
  - {id: one, component: test.sql, mode: read, config: {sql: "SELECT 1"}}
  - {id: two, component: test.sql, mode: transform, needs: [one], config: {sql: "SELECT 1"}}
  - {id: three, component: test.sql, mode: transform, needs: [two], config: {sql: "SELECT 1"}}
"#,
    );
    let executor = Scripted {
        asked: std::sync::Mutex::new(Vec::new()),
        fail_at: "two",
    };
    let outcome = run_with(&prepared(&p), &exec, &NoObserver, HashMap::new(), &executor).await;
    assert_eq!(
        *executor.asked.lock().unwrap(),
        [
            ("one".to_owned(), vec![]),
            ("two".to_owned(), vec!["one".to_owned()])
        ],
        "inputs come from earlier results; nothing runs after the failure"
    );
    assert!(!outcome.ok() && !outcome.cancelled);
    assert_eq!(outcome.failed_step().unwrap().step_id, "two");
    let events = std::fs::read_to_string(exec.session_dir().join("events.jsonl")).unwrap();
    assert!(events.contains("\"event\":\"run_error\"") && events.contains("worker gone"));
}

fn connections(text: &str) -> pipeline::connections::Connections {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osiris_connections.yaml");
    std::fs::write(&path, text).unwrap();
    pipeline::connections::Connections::load(&path).unwrap()
}

const CONNECTIONS: &str = "connections:\n  test:\n    main:\n      host: db.internal\n      port: ${PORT:-5432}\n      password: ${PW}\n      label: from-connection\n      extra_token: tok-98765\n";

fn prepare_with(steps: &str, env: &[(&str, &str)]) -> (Option<PreparedPlan>, Vec<String>) {
    let conns = connections(CONNECTIONS);
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mode = ConnectionMode::Resolve {
        connections: &conns,
        env: &lookup,
    };
    let (plan, problems) = engine().prepare(&pipeline(steps), &mode);
    (plan, problems.0.iter().map(ToString::to_string).collect())
}

#[test]
fn connection_fields_merge_into_the_driver_config_with_types() {
    let (plan, problems) = prepare_with(
        "  - {id: a, component: test.sql, mode: read, config: {connection: '@test.main', sql: SELECT 1, label: mine}}\n",
        &[("PW", "pw-secret-123")],
    );
    assert!(problems.is_empty(), "{problems:?}");
    let plan = plan.unwrap();
    let step = &plan.steps[0];
    assert_eq!(step.connection.as_ref().unwrap().to_string(), "@test.main");
    assert_eq!(step.config["host"], "db.internal");
    assert_eq!(
        step.config["port"], 5432,
        "the `PORT:-5432` placeholder became an integer"
    );
    assert_eq!(
        step.config["label"], "mine",
        "allowed override keeps the step's value"
    );
    assert!(!step.config.contains_key("connection"));
    assert!(
        !step.config.contains_key("extra_token"),
        "only x-connection-fields merge"
    );
    assert_eq!(step.masked_config()["password"], "***");
    assert!(plan.secrets.contains(&"pw-secret-123".to_owned()));
    assert!(
        plan.secrets.contains(&"tok-98765".to_owned()),
        "secret-like connection fields are scrubbed too"
    );
    assert!(!format!("{step:?}").contains("pw-secret-123"));
}

#[test]
fn override_policy_is_enforced() {
    let (plan, problems) = prepare_with(
        "  - {id: a, component: test.sql, mode: read, config: {connection: '@test.main', sql: x, host: other, port: 1}}\n",
        &[("PW", "p")],
    );
    assert!(plan.is_none());
    assert_eq!(
        problems,
        [
            "error: step 'a', key `config.host`: `host` is provided by connection @test.main and cannot be overridden by the step; remove it from the step or use another connection",
            "warning: step 'a', key `config.port`: `port` is provided by connection @test.main and is overridden by the step's value",
        ]
    );
}

#[test]
fn connection_problems_name_step_key_and_what_exists() {
    let (_, problems) = prepare_with(
        "  - {id: a, component: test.sql, mode: read, config: {connection: '@test.nope', sql: x}}\n  - {id: b, component: test.sql, mode: read, config: {connection: '@mysql.main', sql: x}}\n  - {id: c, component: test.sql, mode: read, config: {connection: 'test.main', sql: x}}\n  - {id: d, component: test.sql, mode: read, config: {connection: '@test.main', sql: x}}\n",
        &[],
    );
    assert_eq!(
        problems,
        [
            "error: step 'a', key `config.connection`: no connection `nope` in family `test`; aliases: main",
            "error: step 'b', key `config.connection`: @mysql.main is a `mysql` connection, but `test.sql` takes `test` connections",
            "error: step 'c', key `config.connection`: \"test.main\" is not a connection reference; write \"@family.alias\", e.g. \"@mysql.main\"",
            "error: step 'd', key `config.connection`: environment variable PW is not set (used by field `password` of connection @test.main); set it or use ${PW:-default}",
        ]
    );
}

#[test]
fn inline_secrets_are_rejected_with_their_key() {
    let (plan, problems) = prepare_with(
        "  - {id: a, component: test.sql, mode: read, config: {sql: x, password: hunter2}}\n",
        &[],
    );
    assert!(plan.is_none());
    assert_eq!(
        problems,
        [
            "error: step 'a', key `config.password`: inline secret: `password` must not be written in the pipeline; put it in osiris_connections.yaml (as ${ENV_VAR}) and reference the connection with `connection: \"@family.alias\"`"
        ]
    );
}

#[test]
fn assume_mode_counts_connection_fields_as_present() {
    let engine = engine_with_spec(&SPEC.replace("required: [sql]", "required: [sql, host]"));
    let with_connection = pipeline(
        "  - {id: a, component: test.sql, mode: read, config: {connection: '@test.main', sql: x}}\n",
    );
    assert!(!engine.validate(&with_connection).has_errors());
    let without = pipeline("  - {id: a, component: test.sql, mode: read, config: {sql: x}}\n");
    assert_eq!(
        errors(&engine.validate(&without)),
        ["error: step 'a', key `config.host`: missing required key `host`"]
    );
}

#[tokio::test]
async fn doctor_categorises_with_the_familys_driver() {
    let conns = connections(
        "connections:\n  test:\n    good: {host: db.internal, password: right-pw}\n    badpw: {host: db.internal, password: nope}\n    slow: {host: slow.internal}\n    down: {host: gone.internal}\n  other:\n    x: {host: h}\n",
    );
    let engine = engine();
    let mut categories = Vec::new();
    for (family, alias) in [
        ("test", "good"),
        ("test", "badpw"),
        ("test", "slow"),
        ("test", "down"),
        ("other", "x"),
    ] {
        let resolved = conns.resolve(family, Some(alias), &|_| None).unwrap();
        let result = engine.doctor(&resolved).await;
        categories.push(format!("{alias}:{}", result.category));
        if result.category != "skipped" {
            assert!(result.latency_ms.is_some());
        }
        assert!(!result.message.contains("right-pw"));
    }
    assert_eq!(
        categories,
        [
            "good:ok",
            "badpw:auth",
            "slow:timeout",
            "down:network",
            "x:skipped"
        ]
    );
}

#[test]
fn validation_messages_never_quote_a_secret() {
    let engine = engine_with_spec(&SPEC.replace(
        "password: {type: string}",
        "password: {type: string, minLength: 40}",
    ));
    let conns =
        connections("connections:\n  test:\n    main: {host: h, password: short-secret-value}\n");
    let env = |_: &str| None;
    let mode = ConnectionMode::Resolve {
        connections: &conns,
        env: &env,
    };
    let (_, problems) = engine.prepare(&pipeline("  - {id: a, component: test.sql, mode: read, config: {connection: '@test.main', sql: x}}\n"), &mode);
    let text = problems.to_string();
    assert!(text.contains("config.password"), "{text}");
    assert!(!text.contains("short-secret-value"), "{text}");
}

#[tokio::test]
async fn cancellation_stops_a_running_step() {
    let (dir, exec) = scratch_run();
    let p = pipeline(
        "  - {id: slow, component: test.sql, mode: read, config: {sql: x, hang: true}}\n  - {id: after, component: test.sql, mode: read, config: {sql: SELECT 1}}\n",
    );
    let cancel = exec.cancellation().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let outcome = engine()
        .run(&prepared(&p), &exec, dir.path(), &NoObserver, 1)
        .await;
    assert!(outcome.cancelled);
    assert_eq!(outcome.steps.len(), 1);
    assert!(matches!(
        outcome.steps[0].status,
        StepStatus::Failed {
            error_class: ErrorClass::Cancelled,
            ..
        }
    ));
}

/// Counts its runs through the incremental state.
struct Counter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoConfig {}

#[async_trait]
impl Driver for Counter {
    const NAME: &'static str = "test.counter";
    type Connection = driver_api::NoConnection;
    type Config = NoConfig;

    async fn run(
        &self,
        ctx: &StepContext,
        _connection: driver_api::NoConnection,
        _config: NoConfig,
        _inputs: StepInputs,
    ) -> driver_api::Result<StepOutput> {
        let n = ctx.state().and_then(|s| s["runs"].as_u64()).unwrap_or(0) + 1;
        let conn = ctx.connection()?;
        let rows = replace_table_as(&conn, ctx.output_table(), &format!("SELECT {n} AS runs"))?;
        Ok(StepOutput::table(ctx.output_table().clone(), rows)
            .with_state(serde_json::json!({"runs": n})))
    }
}

#[tokio::test]
async fn state_goes_to_the_driver_and_is_saved_only_after_a_successful_run() {
    let mut drivers = DriverRegistry::new();
    drivers.register(Counter).register(SqlStep);
    let mut specs = SpecRegistry::default();
    specs.insert(ComponentSpec::from_yaml("test", SPEC).unwrap());
    specs.insert(
            ComponentSpec::from_yaml(
                "counter",
                "name: test.counter\nversion: 1.0.0\nmodes: [extract]\ncapabilities: {discover: false, adHocAnalytics: false, inMemoryMove: false, streaming: false, bulkOperations: false, transactions: false, partitioning: false, customTransforms: false}\nconfigSchema: {type: object, additionalProperties: false, properties: {}}\nx-runtime: {driver: test.counter}\n",
            )
            .unwrap(),
        );
    let engine = Engine::new(drivers, specs);
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(&dir.path().join("state"), "t");
    let run = |fail: bool, session: &'static str| {
        let p = pipeline(&format!(
            "  - {{id: count, component: test.counter, mode: read}}\n  - {{id: after, component: test.sql, mode: transform, needs: [count], config: {{sql: SELECT 1, fail: {fail}}}}}\n"
        ));
        let (plan, problems) = engine.prepare(&p, &ConnectionMode::Assume);
        let mut plan = plan.unwrap_or_else(|| panic!("{problems}"));
        store.load_into(&mut plan).unwrap();
        let exec = Arc::new(ExecutionContext::new(session, dir.path().join(session)));
        let base = dir.path().to_owned();
        let engine = &engine;
        let store = &store;
        async move {
            let outcome = engine.run(&plan, &exec, &base, &NoObserver, 1).await;
            (store.save_run(&exec, &outcome).unwrap(), outcome)
        }
    };
    let (saved, outcome) = run(false, "s1").await;
    assert_eq!(saved, ["count"]);
    assert_eq!(outcome.steps[0].state, Some(serde_json::json!({"runs": 1})));
    let (saved, outcome) = run(true, "s2").await;
    assert!(saved.is_empty(), "a failed later step keeps the old state");
    assert_eq!(outcome.steps[0].state, Some(serde_json::json!({"runs": 2})));
    let (_, outcome) = run(false, "s3").await;
    assert_eq!(
        outcome.steps[0].state,
        Some(serde_json::json!({"runs": 2})),
        "the failed run's state was never handed back"
    );
}

/// `(event, step_id)` of the step and run events in `events.jsonl`, in order.
fn step_events(exec: &ExecutionContext) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(exec.session_dir().join("events.jsonl")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|e| {
            let name = e["event"].as_str().unwrap();
            name.starts_with("step_") || name.starts_with("run_")
        })
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["step_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn position(events: &[(String, String)], event: &str, step: &str) -> usize {
    events
        .iter()
        .position(|(e, s)| e == event && s == step)
        .unwrap_or_else(|| panic!("no {event} of {step} in {events:?}"))
}

fn table_exists(exec: &ExecutionContext, table: &str) -> bool {
    let conn = exec.connection().unwrap();
    conn.query_row(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        == 1
}

/// Two slow independent steps and one that needs both.
const DIAMOND: &str = r#"
  - {id: left, component: test.sql, mode: read, config: {sql: "SELECT range AS x FROM range(3)", sleep_ms: 300}}
  - {id: right, component: test.sql, mode: read, config: {sql: "SELECT range * 10 AS y FROM range(2)", sleep_ms: 300}}
  - {id: both, component: test.sql, mode: transform, needs: [left, right], config: {sql: "SELECT x, y FROM \"left\", \"right\" ORDER BY x, y"}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_steps_overlap_with_two_jobs_and_not_with_one() {
    let dir = tempfile::tempdir().unwrap();
    for jobs in [1, 2] {
        let exec = Arc::new(ExecutionContext::new(
            "s",
            dir.path().join(format!("jobs{jobs}")),
        ));
        let started = std::time::Instant::now();
        let outcome = engine()
            .run(
                &prepared(&pipeline(DIAMOND)),
                &exec,
                dir.path(),
                &NoObserver,
                jobs,
            )
            .await;
        let elapsed = started.elapsed();
        assert!(outcome.ok(), "{:?}", outcome.failed_step());
        let events = step_events(&exec);
        let right_started = position(&events, "step_start", "right");
        let left_completed = position(&events, "step_complete", "left");
        if jobs == 2 {
            assert!(
                right_started < left_completed,
                "both slow steps run at once: {events:?}"
            );
            // Run one after the other, the run would take at least the sum of its steps.
            let sum: u64 = outcome.steps.iter().map(|s| s.duration_ms).sum();
            assert!(
                outcome.duration_ms < sum,
                "two 300 ms steps side by side: run {} ms, steps {sum} ms",
                outcome.duration_ms
            );
        } else {
            assert!(
                left_completed < right_started,
                "one job runs one step at a time: {events:?}"
            );
            assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
        }
        // The step needing both starts only after both finished, whatever the jobs.
        let both_started = position(&events, "step_start", "both");
        assert!(both_started > position(&events, "step_complete", "right"));
        assert!(both_started > left_completed);
        let run_start = std::fs::read_to_string(exec.session_dir().join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|e| e["event"] == "run_start")
            .unwrap();
        assert_eq!(run_start["jobs"], jobs);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_runs_give_the_same_tables_and_reports_as_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for jobs in [1, 4] {
        let exec = Arc::new(ExecutionContext::new(
            "s",
            dir.path().join(format!("jobs{jobs}")),
        ));
        let outcome = engine()
            .run(
                &prepared(&pipeline(DIAMOND)),
                &exec,
                dir.path(),
                &NoObserver,
                jobs,
            )
            .await;
        let reports: Vec<String> = outcome
            .steps
            .iter()
            .map(|s| format!("{}:{:?}", s.step_id, s.status))
            .collect();
        let conn = exec.connection().unwrap();
        let mut stmt = conn
            .prepare("SELECT x::VARCHAR || '/' || y::VARCHAR FROM \"both\" ORDER BY ALL")
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        seen.push((reports, rows, outcome.ok(), outcome.cancelled));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(
        seen[0].0[0], "left:Ok { rows: 3, table: Some(\"left\"), view: false }",
        "reports come in plan order"
    );
    assert_eq!(seen[0].1.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_cancels_its_running_sibling_which_leaves_no_table() {
    let (dir, exec) = scratch_run();
    // `busy` is first in plan order and holds its table in an open transaction when `bad`
    // fails; `after` needs both and never starts.
    let p = pipeline(
        r#"
  - {id: busy, component: test.sql, mode: read, config: {sql: "SELECT 1 AS x", hang: true, partial: true}}
  - {id: bad, component: test.sql, mode: read, config: {sql: "SELECT 1", sleep_ms: 100, fail: true}}
  - {id: after, component: test.sql, mode: transform, needs: [busy, bad], config: {sql: "SELECT 1"}}
"#,
    );
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        engine().run(&prepared(&p), &exec, dir.path(), &NoObserver, 2),
    )
    .await
    .expect("the sibling was cancelled, not waited for");
    assert!(!outcome.ok());
    assert!(!outcome.cancelled, "a failed run, not a cancelled one");
    let failed = outcome.failed_step().unwrap();
    assert_eq!(
        failed.step_id, "bad",
        "the failing step, not its cancelled sibling"
    );
    let ids: Vec<&str> = outcome.steps.iter().map(|s| s.step_id.as_str()).collect();
    assert_eq!(ids, ["busy", "bad"], "plan order; `after` never started");
    match &outcome.steps[0].status {
        StepStatus::Failed { error_class, error } => {
            assert_eq!(*error_class, ErrorClass::Cancelled);
            assert_eq!(error, "cancelled because step 'bad' failed");
        }
        other => panic!("unexpected {other:?}"),
    }
    let status = outcome.status("s", "t", String::new(), None);
    assert_eq!(
        (
            status.status,
            status.exit_code,
            status.failed_step.as_deref()
        ),
        ("failed", exit::RUN_FAILED, Some("bad")),
        "the same verdict as one job would give"
    );
    assert!(
        !table_exists(&exec, "busy"),
        "the cancelled sibling left no table"
    );
    let events = step_events(&exec);
    assert_eq!(
        events.last().unwrap(),
        &("run_error".to_owned(), "bad".to_owned())
    );
    assert!(!events.iter().any(|(_, s)| s == "after"), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_run_stops_every_parallel_step() {
    let (dir, exec) = scratch_run();
    let p = pipeline(
        r#"
  - {id: one, component: test.sql, mode: read, config: {sql: "SELECT 1 AS x", hang: true, partial: true}}
  - {id: two, component: test.sql, mode: read, config: {sql: "SELECT 2 AS x", hang: true, partial: true}}
  - {id: three, component: test.sql, mode: read, config: {sql: "SELECT 3 AS x"}}
"#,
    );
    let cancel = exec.cancellation().clone();
    let watched = Arc::clone(&exec);
    tokio::spawn(async move {
        // Cancel once both hanging steps have started (jobs = 2 keeps `three` waiting).
        let events = watched.session_dir().join("events.jsonl");
        while std::fs::read_to_string(&events)
            .unwrap_or_default()
            .matches("\"event\":\"step_start\"")
            .count()
            < 2
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
    });
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        engine().run(&prepared(&p), &exec, dir.path(), &NoObserver, 2),
    )
    .await
    .expect("cancellation stops the steps");
    assert!(outcome.cancelled);
    let ids: Vec<&str> = outcome.steps.iter().map(|s| s.step_id.as_str()).collect();
    assert_eq!(ids, ["one", "two"], "nothing starts after the cancel");
    for step in &outcome.steps {
        assert!(
            matches!(
                step.status,
                StepStatus::Failed {
                    error_class: ErrorClass::Cancelled,
                    ..
                }
            ),
            "{step:?}"
        );
    }
    assert_eq!(
        outcome.status("s", "t", String::new(), None).exit_code,
        exit::SIGINT
    );
    assert!(!table_exists(&exec, "one") && !table_exists(&exec, "two"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_metrics_of_parallel_steps_are_whole_lines_tagged_with_their_step() {
    let (dir, exec) = scratch_run();
    let steps: String = (0..8)
        .map(|i| {
            format!(
                "  - {{id: s{i}, component: test.sql, mode: read, config: {{sql: \"SELECT range AS x FROM range({i})\", sleep_ms: 500}}}}\n"
            )
        })
        .collect();
    let outcome = engine()
        .run(
            &prepared(&pipeline(&steps)),
            &exec,
            dir.path(),
            &NoObserver,
            8,
        )
        .await;
    assert!(outcome.ok(), "{:?}", outcome.failed_step());
    let events = std::fs::read_to_string(exec.session_dir().join("events.jsonl")).unwrap();
    let metrics = std::fs::read_to_string(exec.session_dir().join("metrics.jsonl")).unwrap();
    for i in 0..8 {
        let id = format!("s{i}");
        let of_step: Vec<Value> = events
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("every line is one JSON object"))
            .filter(|e| e["step_id"] == id.as_str())
            .collect();
        let names: Vec<&str> = of_step
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(names.first(), Some(&"step_start"), "{id}: {names:?}");
        assert_eq!(names.last(), Some(&"step_complete"), "{id}: {names:?}");
        assert_eq!(
            of_step.last().unwrap()["rows"],
            i,
            "{id}: its own row count"
        );
        let rows: Vec<Value> = metrics
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("every line is one JSON object"))
            .filter(|m| m["step_id"] == id.as_str() && m["metric"] == "rows_read")
            .collect();
        assert_eq!(rows.len(), 1, "{id}");
        assert_eq!(rows[0]["value"], i, "{id}");
    }
    // Every step started before the first one finished: they did run side by side.
    let order = step_events(&exec);
    let first_complete = order
        .iter()
        .position(|(e, _)| e == "step_complete")
        .unwrap();
    let starts_before = order[..first_complete]
        .iter()
        .filter(|(e, _)| e == "step_start")
        .count();
    assert_eq!(starts_before, 8, "{order:?}");
}
