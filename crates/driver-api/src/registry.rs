//! The object-safe driver twin and the registry that stores drivers by component name.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::{Driver, DriverError, Result, StepContext, StepInputs, StepOutput};

/// [`Driver`] with its config erased to JSON, so drivers of different config types can live in
/// one registry. Implemented for every `Driver` by a blanket impl; never implement it by hand.
#[async_trait]
pub trait DynDriver: Send + Sync {
    /// The component name.
    fn name(&self) -> &'static str;

    /// Checks that `config` deserializes into the driver's config type.
    fn check_config(&self, config: &Value) -> Result<()>;

    /// Checks a connection; see [`Driver::doctor`].
    async fn doctor_json(&self, connection: &serde_json::Map<String, Value>) -> Result<()>;

    /// Lists tables; see [`Driver::discover`].
    async fn discover_json(
        &self,
        connection: &serde_json::Map<String, Value>,
    ) -> Result<Vec<crate::DiscoveredTable>>;

    /// Deserializes `config` and runs the step.
    async fn run_json(
        &self,
        ctx: &StepContext,
        config: Value,
        inputs: StepInputs,
    ) -> Result<StepOutput>;
}

fn parse_config<C: serde::de::DeserializeOwned>(config: Value) -> Result<C> {
    serde_path_to_error::deserialize(config).map_err(|error| {
        let path = error.path().to_string();
        DriverError::Config {
            key: (path != ".").then_some(path),
            message: error.into_inner().to_string(),
        }
    })
}

#[async_trait]
impl<D: Driver> DynDriver for D {
    fn name(&self) -> &'static str {
        D::NAME
    }

    fn check_config(&self, config: &Value) -> Result<()> {
        parse_config::<D::Config>(config.clone()).map(drop)
    }

    async fn doctor_json(&self, connection: &serde_json::Map<String, Value>) -> Result<()> {
        self.doctor(connection).await
    }

    async fn discover_json(
        &self,
        connection: &serde_json::Map<String, Value>,
    ) -> Result<Vec<crate::DiscoveredTable>> {
        self.discover(connection).await
    }

    async fn run_json(
        &self,
        ctx: &StepContext,
        config: Value,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        let config = parse_config::<D::Config>(config)?;
        self.run(ctx, config, inputs).await
    }
}

/// Drivers by component name. A value passed to the engine, never a global.
#[derive(Clone, Default)]
pub struct DriverRegistry {
    drivers: BTreeMap<&'static str, Arc<dyn DynDriver>>,
}

impl std::fmt::Debug for DriverRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.drivers.keys()).finish()
    }
}

impl DriverRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `driver` under its `NAME`, replacing an earlier one of the same name.
    pub fn register<D: Driver>(&mut self, driver: D) -> &mut Self {
        self.drivers.insert(D::NAME, Arc::new(driver));
        self
    }

    /// The driver of `component`.
    pub fn get(&self, component: &str) -> Option<&Arc<dyn DynDriver>> {
        self.drivers.get(component)
    }

    /// Registered component names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.drivers.keys().copied()
    }
}
