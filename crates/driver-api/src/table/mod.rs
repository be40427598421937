//! The shared data path between drivers and the run database.
//!
//! [`TableWriter`]: Arrow batches go over a bounded channel to one blocking thread that appends
//! them with DuckDB's Appender inside one transaction. The step's table appears only at commit;
//! on any failure or abort the transaction rolls back, so no partial table is ever visible and
//! a table from an earlier attempt of the same step stays as it was. Batches are matched to the
//! table by column name, never by position; how a column whose type changes between batches is
//! handled is the writer's [`SchemaEvolution`]. A `Utf8` field carrying the Arrow extension name
//! [`JSON_EXTENSION_NAME`] becomes a DuckDB `JSON` column, a 16-byte `FixedSizeBinary` field
//! carrying [`UUID_EXTENSION_NAME`] a `UUID` column.
//!
//! [`TableReader`]: streams a table (or any query) out as Arrow batches from a blocking thread.

mod reader;
mod sink;
mod sql;
mod types;
mod writer;

pub use reader::TableReader;
pub use sink::BlockingSink;
pub use sql::{check_key_columns, prepare_query_checks, replace_table_as, table_row_count};
pub use types::{duckdb_type_for, is_uuid, json_field, uuid_field};
pub use writer::{SchemaEvolution, TableWriter};

/// Batches in flight between a producer and the DuckDB writer thread. Bounds memory: a
/// producer faster than DuckDB waits instead of buffering the whole source.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 8;

/// Arrow extension name (canonical `arrow.uuid`) that marks a 16-byte `FixedSizeBinary` field
/// holding UUIDs: the writer stores it as a DuckDB `UUID` column.
pub const UUID_EXTENSION_NAME: &str = "arrow.uuid";

/// Arrow extension name (canonical `arrow.json`) that marks a `Utf8` field holding JSON text: the
/// writer stores it as a DuckDB `JSON` column.
pub const JSON_EXTENSION_NAME: &str = "arrow.json";

#[cfg(test)]
mod tests;
