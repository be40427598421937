//! OML pipeline files: `pipeline::parse_lenient` (what `osiris run`/`validate` call), then
//! what the CLI does with its result: check it against the built-in component specs
//! (`Engine::prepare` without connections; the CSV and DuckDB drivers are registered, so steps
//! of those components are prepared in full, typed config check included), locate each
//! problem, and for a valid pipeline plan, serialize and compile it.
//!
//! Invariant besides "no panic": a pipeline `parse` accepts always has an execution plan.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use driver_api::DriverRegistry;
use engine::{ConnectionMode, Engine};
use libfuzzer_sys::fuzz_target;
use pipeline::ParamInputs;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let specs = component_spec::SpecRegistry::builtin().expect("built-in specs load");
        let mut drivers = DriverRegistry::new();
        drivers
            .register(driver_duckdb::DuckDbProcessor)
            .register(driver_csv::CsvExtractor)
            .register(driver_csv::CsvWriter);
        Engine::new(drivers, specs)
    })
}

fn inputs() -> ParamInputs {
    ParamInputs {
        profile: Some("dev".into()),
        cli: vec![("limit".into(), "5".into()), ("name".into(), "x".into())],
        env: vec![("OSIRIS_PARAM_TABLE".into(), "orders".into())],
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (lenient, problems) = pipeline::parse_lenient(text, &ParamInputs::default());
    let _ = problems.to_string();
    if let Some(pipeline) = &lenient {
        let (_, more) = engine().prepare(pipeline, &ConnectionMode::Assume);
        let _ = more.locate(Some(pipeline)).to_string();
    }
    let _ = problems.locate(lenient.as_ref());

    if let Ok((pipeline, _)) = pipeline::parse(text) {
        let plan = pipeline
            .plan()
            .expect("a pipeline parse accepts has a plan");
        let _ = plan.to_yaml();
        let _ = pipeline::compile::compile(&pipeline, &plan, Path::new("/fuzz"), "sha256:0");
    }

    // With parameters from every source (profile, --param, environment).
    let (with_params, problems) = pipeline::parse_lenient(text, &inputs());
    if let Some(pipeline) = &with_params {
        let (_, more) = engine().prepare(pipeline, &ConnectionMode::Assume);
        let _ = more.locate(Some(pipeline));
    }
    let _ = problems.locate(with_params.as_ref()).to_string();
});
