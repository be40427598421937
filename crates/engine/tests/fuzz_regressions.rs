//! Inputs the fuzzer found (scripts/fuzz.sh, target `oml_parse`); each is kept verbatim in
//! fuzz/regressions/.

use driver_api::DriverRegistry;
use engine::{ConnectionMode, Engine};
use pipeline::ParamInputs;

fn engine() -> Engine {
    Engine::new(
        DriverRegistry::new(),
        component_spec::SpecRegistry::builtin().unwrap(),
    )
}

/// fuzz/regressions/oml_parse/incomplete_step.yaml: a step without `component` is left out
/// of preparation, and when no other step had a problem `prepare` used to panic ("every valid
/// step was prepared") planning the whole pipeline, so `osiris run`/`validate` crashed instead
/// of reporting the missing component.
#[test]
fn fuzz_regression_prepare_reports_a_step_without_component_instead_of_panicking() {
    let text = include_str!("../../../fuzz/regressions/oml_parse/incomplete_step.yaml");
    let (pipeline, problems) = pipeline::parse_lenient(text, &ParamInputs::default());
    let pipeline = pipeline.expect("a mapping with steps");
    assert!(
        problems
            .errors()
            .any(|p| p.message.contains("missing; name the component")),
        "{problems}"
    );

    let (plan, more) = engine().prepare(&pipeline, &ConnectionMode::Assume);
    assert!(plan.is_none(), "an incomplete pipeline has no plan");
    assert!(
        !more.has_errors(),
        "the parse reported the problem already: {more}"
    );
}
