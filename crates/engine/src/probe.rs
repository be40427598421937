//! Checking connections without running a pipeline: `doctor` (can we connect?) and
//! `discover` (what tables are there?), each with the first runnable driver of the
//! connection's family that implements it.

use std::time::Instant;

use component_spec::ComponentSpec;
use driver_api::{DriverError, DynDriver, ErrorClass};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Engine, millis};

/// The outcome of checking one connection.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorResult {
    /// `ok`, `auth`, `network`, `timeout`, `unknown`, or `skipped` (no driver can check it).
    pub category: &'static str,
    /// Time the check took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// What was found (never containing secrets).
    pub message: String,
}

impl Engine {
    /// Checks a resolved connection with the first runnable driver of its family that
    /// implements `doctor`.
    pub async fn doctor(
        &self,
        connection: &pipeline::connections::ResolvedConnection,
    ) -> DoctorResult {
        let started = Instant::now();
        let family = connection.reference.family.as_str();
        for (spec, driver, fields) in self.family_drivers(connection) {
            let result = driver.doctor_json(&fields).await;
            let latency_ms = millis(started.elapsed());
            return match result {
                Err(DriverError::Unsupported { .. }) => continue,
                Ok(()) => DoctorResult {
                    category: "ok",
                    latency_ms: Some(latency_ms),
                    message: format!("{} can connect", spec.name),
                },
                Err(error) => DoctorResult {
                    category: match error.class() {
                        ErrorClass::Auth => "auth",
                        ErrorClass::Permission => "permission",
                        ErrorClass::Connection => "network",
                        ErrorClass::Timeout => "timeout",
                        _ => "unknown",
                    },
                    latency_ms: Some(latency_ms),
                    message: error.to_string(),
                },
            };
        }
        DoctorResult {
            category: "skipped",
            latency_ms: None,
            message: format!("no driver in this build can check `{family}` connections"),
        }
    }

    /// Lists the tables a resolved connection offers, with the first runnable driver of its
    /// family that implements `discover`. `Ok(None)`: no driver here can discover `family`.
    pub async fn discover(
        &self,
        connection: &pipeline::connections::ResolvedConnection,
    ) -> Result<Option<(String, Vec<driver_api::DiscoveredTable>)>, DriverError> {
        for (spec, driver, fields) in self.family_drivers(connection) {
            match driver.discover_json(&fields).await {
                Err(DriverError::Unsupported { .. }) => continue,
                Ok(tables) => return Ok(Some((spec.name.clone(), tables))),
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// The runnable components of a connection's family with their drivers, each given the
    /// connection fields its spec declares (coerced to their types).
    fn family_drivers<'a>(
        &'a self,
        connection: &'a pipeline::connections::ResolvedConnection,
    ) -> impl Iterator<Item = (&'a ComponentSpec, &'a dyn DynDriver, Map<String, Value>)> + 'a {
        let family = connection.reference.family.as_str();
        self.specs
            .iter()
            .filter(move |s| s.family() == family)
            .filter_map(move |spec| {
                let driver = self.drivers.get(&spec.name)?.as_ref();
                let mut fields: Map<String, Value> = spec
                    .connection_fields()
                    .into_iter()
                    .filter_map(|f| connection.fields.get(&f.name).map(|v| (f.name, v.clone())))
                    .collect();
                spec.coerce(&mut fields);
                Some((spec, driver, fields))
            })
    }
}
