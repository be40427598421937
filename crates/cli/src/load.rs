//! Loading a pipeline file and the engine: shared by `run` and `validate`, so both apply the
//! same checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use engine::Engine;
use pipeline::{Pipeline, Plan, Problems};

/// The engine of this build: built-in specs and drivers.
pub fn engine() -> anyhow::Result<Arc<Engine>> {
    let specs = component_spec::SpecRegistry::builtin().context("loading component specs")?;
    Ok(Arc::new(Engine::new(
        drivers_builtin::builtin_registry(),
        specs,
    )))
}

/// A pipeline that passed every check, with its warnings.
pub struct Loaded {
    pub plan: Plan,
    pub warnings: Problems,
    pub base_dir: PathBuf,
}

/// Why a pipeline cannot run.
pub enum LoadError {
    /// The file cannot be read.
    Unreadable(String),
    /// The pipeline has problems (errors and warnings, all of them).
    Invalid(Problems),
}

/// Reads, parses and validates `path` against `engine`.
pub fn load(path: &Path, engine: &Engine) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        LoadError::Unreadable(format!("cannot read pipeline {}: {e}", path.display()))
    })?;
    let (pipeline, mut problems) = pipeline::parse_lenient(&text);
    let Some(pipeline) = pipeline else {
        return Err(LoadError::Invalid(problems));
    };
    problems.0.extend(engine.validate(&pipeline).0);
    if problems.has_errors() {
        return Err(LoadError::Invalid(problems));
    }
    let plan = plan_of(&pipeline).map_err(LoadError::Invalid)?;
    let base_dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_owned();
    let base_dir = std::path::absolute(&base_dir).unwrap_or(base_dir);
    Ok(Loaded {
        plan,
        warnings: problems,
        base_dir,
    })
}

fn plan_of(pipeline: &Pipeline) -> Result<Plan, Problems> {
    pipeline.plan().map_err(|p| Problems(vec![p]))
}
