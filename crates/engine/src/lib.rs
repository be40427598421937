//! The engine: validates a pipeline against the component specs and drivers ([`Engine::prepare`]),
//! then runs a plan step by step against an [`ExecutionContext`](execution_context::ExecutionContext)
//! (the step loop, [`run_with`]). Every [`Adapter`] (local, remote) runs plans through this
//! crate, so there is one implementation of step execution, events, failure policy and
//! reporting ([`RunOutcome`], [`Status`], the [`exit`] codes). Connections are checked by
//! [`Engine::doctor`] and [`Engine::discover`].
//!
//! Failure policy: the first failed step stops the run; later steps do not start.
#![warn(missing_docs)]

mod access;
mod adapter;
mod prepare;
mod probe;
mod report;
mod state;
mod step_loop;

pub use access::{file_access, output_paths};
pub use adapter::{Adapter, AdapterError, Ended, RunReport};
/// The attribute an [`Adapter`] implementation carries: `#[engine::async_trait(?Send)]`.
pub use async_trait::async_trait;
pub use prepare::{CONNECTION_KEY, ConnectionMode, PreparedPlan, PreparedStep};
pub use probe::DoctorResult;
pub use report::{RunOutcome, Status, StepReport, StepStatus, exit};
pub use state::{STATE_DIR, StateError, StateStore};
pub use step_loop::{InProcess, NoObserver, RunObserver, StepExecutor, input_tables, run_with};

use std::time::Duration;

use component_spec::SpecRegistry;
use driver_api::DriverRegistry;
use pipeline::{Pipeline, Problems, StepMode};

/// The components this build knows (specs) and can run (drivers).
#[derive(Debug, Clone)]
pub struct Engine {
    drivers: DriverRegistry,
    specs: SpecRegistry,
}

impl Engine {
    /// An engine over the given drivers and specs.
    pub fn new(drivers: DriverRegistry, specs: SpecRegistry) -> Self {
        Self { drivers, specs }
    }

    /// The component specs.
    pub fn specs(&self) -> &SpecRegistry {
        &self.specs
    }

    /// The drivers.
    pub fn drivers(&self) -> &DriverRegistry {
        &self.drivers
    }

    /// Identifies the components this build knows and can run: `sha256:` of the sorted
    /// `name@version` lines (with `+driver` for runnable ones). Compiled manifests record it.
    pub fn registry_fingerprint(&self) -> String {
        let lines: Vec<serde_json::Value> = self
            .specs
            .iter()
            .map(|s| {
                let driver = if self.is_runnable(&s.name) {
                    "+driver"
                } else {
                    ""
                };
                format!("{}@{}{driver}", s.name, s.version).into()
            })
            .collect();
        pipeline::compile::fingerprint(&serde_json::Value::Array(lines))
    }

    /// The mode a step of `component` runs in when the pipeline gives none: the only one of
    /// extract, transform and write its spec lists. `None` for unknown components and those
    /// with several.
    pub fn default_mode(&self, component: &str) -> Option<StepMode> {
        let spec = self.specs.get(component)?;
        let mut modes = spec
            .modes
            .iter()
            .filter(|m| matches!(m.as_str(), "extract" | "transform" | "write"))
            .filter_map(|m| StepMode::parse(m));
        let first = modes.next()?;
        modes.next().is_none().then_some(first)
    }

    /// Whether this build has a driver for `component`.
    pub fn is_runnable(&self, component: &str) -> bool {
        self.drivers.get(component).is_some()
    }

    /// Checks every step against its component without resolving connections (fields a
    /// connection provides count as present). See [`Engine::prepare`] for the full pass.
    pub fn validate(&self, pipeline: &Pipeline) -> Problems {
        self.prepare(pipeline, &ConnectionMode::Assume).1
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
