use super::*;

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok((_, warnings)) => panic!("expected errors, got a pipeline (warnings: {warnings})"),
        Err(problems) => problems.errors().map(ToString::to_string).collect(),
    }
}

const GOOD: &str = r#"
oml_version: "0.1.0"
name: orders
steps:
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [agg]
    config: {path: out.csv}
  - id: read-orders
    component: filesystem.csv_extractor
    mode: read
    config: {path: orders.csv}
  - id: agg
    component: duckdb.processor
    mode: transform
    needs: [read-orders]
    config: {query: "SELECT 1"}
"#;

#[test]
fn parses_and_orders_steps_by_needs() {
    let (pipeline, warnings) = parse(GOOD).unwrap();
    assert!(!warnings.has_errors());
    assert_eq!(pipeline.name, "orders");
    let plan = pipeline.plan().unwrap();
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["read-orders", "agg", "write"]);
    assert_eq!(plan.steps[0].mode.component_mode(), "extract");
}

#[test]
fn independent_steps_keep_file_order() {
    let text = r#"
oml_version: "0.1.0"
name: p
steps:
  - {id: b, component: c.x, mode: read}
  - {id: a, component: c.x, mode: read}
  - {id: j, component: c.y, mode: transform, needs: [a, b]}
"#;
    let plan = parse(text).unwrap().0.plan().unwrap();
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["b", "a", "j"]);
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    let errs = errors("oml_version: \"0.1.0\"\nname: x\nsteps:\n  - id: a\n   component: b\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("malformed YAML at line 5 column"),
        "{}",
        errs[0]
    );
}

#[test]
fn duplicate_step_ids_are_named() {
    let errs = errors(
        "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: a, component: c.x, mode: read}\n  - {id: a, component: c.x, mode: read}\n",
    );
    assert_eq!(
        errs,
        ["error: step 'a', key `id`: duplicate step id: steps[0] and steps[1] are both 'a'"]
    );
}

#[test]
fn cycles_are_reported_with_their_path() {
    let errs = errors(
        r#"
oml_version: "0.1.0"
name: x
steps:
  - {id: a, component: c.x, mode: transform, needs: [c]}
  - {id: b, component: c.x, mode: transform, needs: [a]}
  - {id: c, component: c.x, mode: transform, needs: [b]}
"#,
    );
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("`needs` form a cycle: ")
            && ["a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"]
                .iter()
                .any(|p| errs[0].contains(p)),
        "{}",
        errs[0]
    );
}

#[test]
fn unknown_needs_suggests_the_nearest_step() {
    let errs = errors(
        "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: extract_orders, component: c.x, mode: read}\n  - {id: b, component: c.x, mode: write, needs: [extract_order]}\n",
    );
    assert_eq!(
        errs,
        [
            "error: step 'b', key `needs`: unknown step 'extract_order'; did you mean 'extract_orders'?"
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let errs = errors(
        r#"
oml_version: 0.1
name: ""
tasks: []
steps:
  - {id: "bad id", component: c.x, mode: load}
  - {component: c.x, mode: read}
  - {id: ok, component: c.x, mode: read, needz: [x]}
"#,
    );
    let joined = errs.join("\n");
    for expected in [
        "key `oml_version`: must be a string",
        "key `name`: must not be empty",
        "key `tasks`: `tasks` is not part of OML",
        "step 'bad id', key `id`: 'bad id' contains ' '",
        "step 'bad id', key `mode`: \"load\" is not a mode",
        "key `steps[1].id`: missing",
        "step 'ok', key `needz`: unknown key `needz`; did you mean `needs`?",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in:\n{joined}"
        );
    }
}

#[test]
fn legacy_keys_and_unknown_top_level_keys_are_warnings() {
    let (pipeline, warnings) = parse(
            "oml_version: \"0.1.0\"\nname: x\nowner: me\nsteps:\n  - {id: a, uses: c.x, mode: read, with: {k: 1}}\n",
        )
        .unwrap();
    assert_eq!(pipeline.steps[0].component, "c.x");
    assert_eq!(pipeline.steps[0].config["k"], 1);
    let w: Vec<String> = warnings.warnings().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [
            "warning: key `owner`: unknown key `owner`; known keys: oml_version, name, steps, description, metadata, schedule, params, profiles"
        ]
    );
}

#[test]
fn ids_differing_only_in_case_collide() {
    let errs = errors(
        "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: Orders, component: c.x, mode: read}\n  - {id: orders, component: c.x, mode: read}\n",
    );
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("differ only in case"), "{}", errs[0]);
}

const WITH_PARAMS: &str = r#"
oml_version: "0.1.0"
name: movies
params:
  min_year: 2000
  region: {default: eu}
  table: {}
profiles:
  prod: {params: {region: us}}
steps:
  - id: extract
    component: c.x
    mode: read
    config:
      query: "SELECT * FROM ${params.table} WHERE year >= ${params.min_year}"
      limit: ${params.min_year}
      region: ${params.region}
"#;

fn with(
    profile: Option<&str>,
    cli: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Result<Pipeline, Vec<String>> {
    let inputs = ParamInputs {
        profile: profile.map(str::to_owned),
        cli: cli
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    parse_with(WITH_PARAMS, &inputs)
        .map(|(p, _)| p)
        .map_err(|problems| problems.errors().map(ToString::to_string).collect())
}

#[test]
fn params_follow_precedence_and_keep_types_of_whole_placeholders() {
    let p = with(None, &[("table", "movies")], &[]).unwrap();
    let config = &p.steps[0].config;
    assert_eq!(config["query"], "SELECT * FROM movies WHERE year >= 2000");
    assert_eq!(
        config["limit"], 2000,
        "a whole placeholder keeps the number type"
    );
    assert_eq!(config["region"], "eu");
    // env beats defaults, profile beats env, --param beats profile
    let p = with(None, &[("table", "t")], &[("OSIRIS_PARAM_REGION", "ap")]).unwrap();
    assert_eq!(p.steps[0].config["region"], "ap");
    let p = with(
        Some("prod"),
        &[("table", "t")],
        &[("OSIRIS_PARAM_REGION", "ap")],
    )
    .unwrap();
    assert_eq!(p.steps[0].config["region"], "us");
    let p = with(Some("prod"), &[("table", "t"), ("region", "sa")], &[]).unwrap();
    assert_eq!(p.steps[0].config["region"], "sa");
    assert_eq!(p.params["region"], "sa");
    assert_eq!(p.profile.as_deref(), Some("prod"));
}

#[test]
fn unresolved_params_are_listed() {
    assert_eq!(
        with(None, &[], &[]).unwrap_err(),
        [
            "error: key `params`: unresolved parameter table: give it a default under `params`, or pass --param NAME=VALUE, OSIRIS_PARAM_<NAME> or a profile"
        ]
    );
}

#[test]
fn unknown_profile_lists_the_profiles() {
    assert_eq!(
        with(Some("staging"), &[("table", "t")], &[]).unwrap_err(),
        ["error: key `profiles`: no profile `staging`; profiles: prod"]
    );
}

#[test]
fn problems_carry_json_pointers_into_the_document() {
    let text = "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: a, component: c.x, mode: read}\n  - {id: b, component: c.x, mode: write, needs: [zz]}\n";
    let (pipeline, problems) = parse_lenient(text, &ParamInputs::default());
    let mut problems = problems;
    problems.push(Problem::step_error("a", Some("config.columns[2]"), "x"));
    problems.push(Problem::error(Some("params"), "y"));
    let located = problems.locate(pipeline.as_ref());
    let pointers: Vec<&str> = located
        .0
        .iter()
        .map(|p| p.pointer.as_deref().unwrap())
        .collect();
    assert_eq!(
        pointers,
        ["/steps/1/needs", "/steps/0/config/columns/2", "/params"]
    );
}

#[test]
fn did_you_mean_finds_typos_only() {
    let keys = ["path", "delimiter", "header", "encoding"];
    assert_eq!(did_you_mean("delimitr", keys), Some("delimiter"));
    assert_eq!(did_you_mean("Header", keys), Some("header"));
    assert_eq!(did_you_mean("completely_else", keys), None);
}

fn parse_named(text: &str, stem: Option<&str>) -> (Option<Pipeline>, Problems) {
    parse_document(
        text,
        &ParseOptions {
            file_stem: stem.map(str::to_owned),
            ..ParseOptions::default()
        },
    )
}

fn messages(problems: &Problems) -> Vec<String> {
    problems.0.iter().map(ToString::to_string).collect()
}

#[test]
fn a_step_without_mode_takes_it_from_its_component() {
    let text = r#"
oml_version: "0.1.0"
name: p
steps:
  - {id: a, component: mysql.extractor}
  - {id: b, component: duckdb.processor, needs: [a]}
  - {id: c, component: filesystem.csv_writer, needs: [b]}
  - {id: d, component: filesystem.csv_extractor, mode: extract}
  - {id: e, component: custom.thing, needs: [d]}
"#;
    let options_default = |c: &str| (c == "custom.thing").then_some(StepMode::Transform);
    let (pipeline, problems) = parse_document(
        text,
        &ParseOptions {
            default_mode: Some(&options_default),
            ..ParseOptions::default()
        },
    );
    assert!(!problems.has_errors(), "{problems}");
    let modes: Vec<StepMode> = pipeline.unwrap().steps.iter().map(|s| s.mode).collect();
    use StepMode::*;
    assert_eq!(modes, [Read, Transform, Write, Read, Transform]);
    // Without a spec that tells, a component of no known kind needs a mode.
    let (_, problems) = parse_lenient(text, &ParamInputs::default());
    assert_eq!(
        problems
            .errors()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "error: step 'e', key `mode`: missing, and component `custom.thing` does not tell: use read, write or transform"
        ]
    );
}

#[test]
fn a_write_mode_in_the_step_mode_says_where_it_belongs() {
    let errs = errors(
        "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: a, component: c.extractor}\n  - {id: w, component: mysql.writer, mode: replace, needs: [a]}\n",
    );
    assert_eq!(
        errs,
        [
            "error: step 'w', key `mode`: \"replace\" is a write mode of the destination and belongs in `config` (`write_mode` or `mode`, see the component); the step's `mode` is read, write or transform"
        ]
    );
}

#[test]
fn a_pipeline_without_name_is_named_after_its_file() {
    let text = "oml_version: \"0.1.0\"\nsteps:\n  - {id: a, component: c.extractor}\n";
    let (pipeline, problems) = parse_named(text, Some("daily_sync"));
    assert_eq!(pipeline.unwrap().name, "daily_sync");
    assert_eq!(
        messages(&problems),
        ["warning: key `name`: missing; the pipeline is named \"daily_sync\" after its file"]
    );
    let (_, problems) = parse_named(text, None);
    assert!(problems.has_errors(), "{problems}");
}

#[test]
fn params_and_profiles_raise_no_warning_when_applied() {
    let (_, problems) = parse_lenient(
        WITH_PARAMS,
        &ParamInputs {
            profile: Some("prod".into()),
            cli: vec![("table".into(), "t".into())],
            env: Vec::new(),
        },
    );
    assert!(problems.0.is_empty(), "{problems}");
}

const OSIRIS_WIRING: &str = r#"
oml_version: "0.1.0"
name: p
steps:
  - {id: extract-a, component: c.extractor}
  - {id: extract-b, component: c.extractor}
  - id: write-a
    component: c.writer
    inputs: {df: "${extract-a.df}"}
  - {id: agg, component: c.processor}
  - {id: write-agg, component: c.writer}
  - {id: read-back, component: c.extractor, needs: [write-agg]}
  - {id: gen, component: c.processor, needs: []}
"#;

#[test]
fn inputs_references_and_the_implicit_chain_wire_steps_as_osiris_does() {
    let (pipeline, problems) = parse_named(OSIRIS_WIRING, None);
    let pipeline = pipeline.unwrap();
    let wiring: Vec<(&str, Vec<&str>, Vec<&str>)> = pipeline
        .steps
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                s.needs.iter().map(String::as_str).collect(),
                s.inputs.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        wiring,
        [
            ("extract-a", vec![], vec![]),
            ("extract-b", vec![], vec![]),
            ("write-a", vec!["extract-a"], vec!["extract-a"]),
            ("agg", vec!["extract-b"], vec![]),
            ("write-agg", vec!["agg"], vec![]),
            ("read-back", vec!["write-agg"], vec![]),
            ("gen", vec![], vec![]),
        ]
    );
    assert_eq!(
        messages(&problems),
        [
            "warning: step 'agg', key `needs`: no `needs`: step 'agg' reads the table of step 'extract-b', the nearest earlier step that produces one (as Osiris chains steps); write `needs: [extract-b]` to say so, or `needs: []` for no input",
            "warning: step 'write-agg', key `needs`: no `needs`: step 'write-agg' reads the table of step 'agg', the nearest earlier step that produces one (as Osiris chains steps); write `needs: [agg]` to say so, or `needs: []` for no input",
        ]
    );
}

#[test]
fn inputs_naming_unknown_steps_are_errors() {
    let errs = errors(
        "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: extract, component: c.extractor}\n  - {id: w, component: c.writer, inputs: {df: \"${extrat.df}\"}}\n  - {id: v, component: c.writer, inputs: {df: \"${v.df}\"}}\n",
    );
    assert_eq!(
        errs,
        [
            "error: step 'w', key `inputs.df`: unknown step 'extrat'; did you mean 'extract'?",
            "error: step 'v', key `inputs.df`: a step cannot read its own table",
        ]
    );
}

#[test]
fn params_in_sql_fields_become_literals_and_elsewhere_text() {
    let text = r#"
oml_version: "0.1.0"
name: p
params: {x: "0", n: 5}
steps:
  - id: q
    component: duckdb.processor
    mode: transform
    config:
      query: "SELECT ${params.n} AS n, '${params.x}' AS quoted, ${params.x} AS bare"
  - id: m
    component: mysql.extractor
    config:
      connection: "@mysql.${params.x}"
      table: t
      where: "name = ${params.x}"
"#;
    let inputs = ParamInputs {
        cli: vec![("x".into(), "1'; COPY (SELECT 1) TO '/tmp/y'; --".into())],
        ..ParamInputs::default()
    };
    let (pipeline, _) = parse_with(text, &inputs).unwrap();
    assert_eq!(
        pipeline.steps[0].config["query"],
        "SELECT 5 AS n, '1''; COPY (SELECT 1) TO ''/tmp/y''; --' AS quoted, '1''; COPY (SELECT 1) TO ''/tmp/y''; --' AS bare"
    );
    assert_eq!(
        pipeline.steps[1].config["where"],
        "name = '1''; COPY (SELECT 1) TO ''/tmp/y''; --'"
    );
    // A whole-field placeholder is a value too: SQL text never comes from a parameter.
    let whole = text.replace(
        "query: \"SELECT ${params.n}",
        "query: \"${params.q}\"\n      x: \"SELECT ${params.n}",
    );
    let (pipeline_whole, _) = parse_with(
        &whole.replace(
            "params: {x: \"0\", n: 5}",
            "params: {x: \"0\", n: 5, q: SELECT 1}",
        ),
        &inputs,
    )
    .unwrap();
    assert_eq!(pipeline_whole.steps[0].config["query"], "'SELECT 1'");
    // Not SQL: the value as text.
    assert_eq!(
        pipeline.steps[1].config["connection"],
        "@mysql.1'; COPY (SELECT 1) TO '/tmp/y'; --"
    );
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let text = format!(
        "oml_version: \"0.1.0\"\nname: x\nsteps: {}",
        "[".repeat(1_000_000)
    );
    let started = std::time::Instant::now();
    let errs = errors(&text);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(
        errs,
        ["error: line 3: nesting is deeper than 64 levels; such a document is refused unparsed"]
    );
}

#[test]
fn plan_round_trips_through_yaml() {
    let mut plan = parse(GOOD).unwrap().0.plan().unwrap();
    let back: Plan = serde_yaml::from_str(&plan.to_yaml()).unwrap();
    // The source position is not part of the manifest.
    plan.steps.iter_mut().for_each(|s| s.index = 0);
    assert_eq!(back, plan);
}
