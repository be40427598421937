//! The contract between the engine and the drivers, and the data path every driver shares.
//!
//! A driver implements [`Driver`] with a typed `Connection` (one struct per connection family)
//! and a typed `Config` (the step's own fields); the registry stores it as a [`DynDriver`]
//! through one blanket impl, which splits the engine's config map between the two. Steps
//! exchange data only through tables of the run database: extractors write their rows with
//! [`TableWriter`] (Arrow batches over a bounded channel, appended on a blocking thread,
//! committed atomically), writers read a table with [`TableReader`] or hand it to DuckDB
//! directly, processors use [`replace_table_as`].
#![warn(missing_docs)]

mod connection;
mod context;
pub mod csv_errors;
mod error;
mod ident;
pub mod incremental;
pub mod ranges;
mod registry;
mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

pub use connection::{NoConnection, split_config, struct_fields};
pub use context::{InputTable, StepContext, StepInputs, StepOutput};
pub use duckdb_parser::Opening as QueryChecksOpening;
pub use error::{DriverError, ErrorClass, Result};
pub use execution_context::SecretString;
pub use ident::{TableName, quote_identifier, quote_literal};
pub use registry::{DriverRegistry, DynDriver};
pub use table::{
    BlockingSink, DEFAULT_CHANNEL_CAPACITY, JSON_EXTENSION_NAME, SchemaEvolution, TableReader,
    TableWriter, UUID_EXTENSION_NAME, check_key_columns, duckdb_type_for, is_uuid, json_field,
    prepare_query_checks, replace_table_as, table_row_count, uuid_field,
};

/// A component's implementation.
///
/// `NAME` equals the component name and the `x-runtime.driver` of its `spec.yaml`.
/// `Connection` holds the fields a connection of the component's family provides (the spec's
/// `x-connection-fields`, which may also be set in the step as their override policy allows):
/// one `#[serde(deny_unknown_fields)]` struct per family, shared by the family's drivers, or
/// [`NoConnection`]. `Config` holds the step's other fields. The engine's config (step config
/// with the connection merged in) is split by the connection type's field names and each part
/// deserialized once. Both should deny unknown fields and document every field; a test per
/// driver keeps them equal to the spec's `configSchema` and `x-connection-fields`.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The component name, e.g. `filesystem.csv_extractor`.
    const NAME: &'static str;
    /// The typed connection of the component's family.
    type Connection: DeserializeOwned + Send + Sync;
    /// The typed step configuration, without the connection's fields.
    type Config: DeserializeOwned + Send;

    /// Runs one step: reads `inputs`, writes the step table (extractors, processors) or the
    /// destination (writers), and reports what it produced. Relative paths of the connection
    /// resolve against the pipeline's directory ([`StepContext::resolve_path`]).
    async fn run(
        &self,
        ctx: &StepContext,
        connection: Self::Connection,
        config: Self::Config,
        inputs: StepInputs,
    ) -> Result<StepOutput>;

    /// Checks that a connection works (reachable, credentials accepted). `Ok` means healthy;
    /// an error's class tells what is wrong (`auth`, `connection`, `timeout`, ...). Messages
    /// must not contain hosts' credentials. Relative paths resolve against the current
    /// directory (there is no pipeline). Default: unsupported.
    async fn doctor(&self, _connection: &Self::Connection) -> Result<()> {
        Err(DriverError::Unsupported {
            operation: "doctor".into(),
        })
    }

    /// Lists what a connection offers to read: tables and views with their columns, types,
    /// primary keys and row estimates, sorted by name. Default: unsupported.
    async fn discover(&self, _connection: &Self::Connection) -> Result<Vec<DiscoveredTable>> {
        Err(DriverError::Unsupported {
            operation: "discover".into(),
        })
    }
}

/// A table or view found by [`Driver::discover`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiscoveredTable {
    /// Table name (schema-qualified names keep the schema out; see `schema`).
    pub name: String,
    /// The schema or database holding it, when the source has several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// `table` or `view`, when the source says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The source's row estimate, when it keeps one.
    pub estimated_rows: Option<u64>,
    /// Primary key columns in key order (empty when none or unknown).
    pub primary_key: Vec<String>,
    /// Columns in table order.
    pub columns: Vec<DiscoveredColumn>,
}

/// A column found by [`Driver::discover`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiscoveredColumn {
    /// Column name.
    pub name: String,
    /// The source's type, as the source spells it (e.g. `decimal(12,2) unsigned`, `numeric`).
    pub source_type: String,
    /// Whether it accepts NULL, when known.
    pub nullable: Option<bool>,
}
