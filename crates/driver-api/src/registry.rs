//! The object-safe driver twin and the registry that stores drivers by component name.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::connection::{parse_connection, split_config};
use crate::{Driver, Result, StepContext, StepInputs, StepOutput};

/// [`Driver`] with its config erased to JSON, so drivers of different config types can live in
/// one registry. Implemented for every `Driver` by a blanket impl; never implement it by hand.
#[async_trait]
pub trait DynDriver: Send + Sync {
    /// The component name.
    fn name(&self) -> &'static str;

    /// Checks that `config` (step config with the connection's fields merged in)
    /// deserializes into the driver's connection and config types.
    fn check_config(&self, config: &Value) -> Result<()>;

    /// Checks a connection, given its fields (deserialized into the driver's connection type
    /// first: an unknown or ill-typed field is a config error naming it); see
    /// [`Driver::doctor`].
    async fn doctor_json(&self, connection: &serde_json::Map<String, Value>) -> Result<()>;

    /// Lists tables, given the connection's fields; see [`Driver::discover`].
    async fn discover_json(
        &self,
        connection: &serde_json::Map<String, Value>,
    ) -> Result<Vec<crate::DiscoveredTable>>;

    /// Splits `config` into the driver's connection and config, and runs the step.
    async fn run_json(
        &self,
        ctx: &StepContext,
        config: Value,
        inputs: StepInputs,
    ) -> Result<StepOutput>;
}

#[async_trait]
impl<D: Driver> DynDriver for D {
    fn name(&self) -> &'static str {
        D::NAME
    }

    fn check_config(&self, config: &Value) -> Result<()> {
        split_config::<D::Connection, D::Config>(config.clone()).map(drop)
    }

    async fn doctor_json(&self, connection: &serde_json::Map<String, Value>) -> Result<()> {
        self.doctor(&parse_connection::<D::Connection>(connection)?)
            .await
    }

    async fn discover_json(
        &self,
        connection: &serde_json::Map<String, Value>,
    ) -> Result<Vec<crate::DiscoveredTable>> {
        self.discover(&parse_connection::<D::Connection>(connection)?)
            .await
    }

    async fn run_json(
        &self,
        ctx: &StepContext,
        config: Value,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        let (connection, config) = split_config::<D::Connection, D::Config>(config)?;
        self.run(ctx, connection, config, inputs).await
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
