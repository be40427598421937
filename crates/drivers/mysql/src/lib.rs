//! MySQL / MariaDB in and out of the run database, over `mysql_async` (binary protocol,
//! streamed rows, `LOAD DATA LOCAL INFILE` fed from a stream).
//!
//! - [`MysqlExtractor`] (`mysql.extractor`): a query's result or a table's rows into the step
//!   table. Rows are decoded from the binary protocol straight into Arrow column builders and
//!   sent in batches of `batch_size` to the shared [`driver_api::TableWriter`]; memory holds a
//!   few batches, whatever the result size. `partition_on` + `partitions` read integer ranges
//!   of a table on parallel connections into the same writer. [`extractor::discover`] lists
//!   tables, columns, keys and row estimates.
//! - [`MysqlWriter`] (`mysql.writer`): an upstream table into a MySQL table, by
//!   `LOAD DATA LOCAL INFILE` from generated tab-separated chunks (INSERT batches when the
//!   server refuses LOCAL INFILE); append and upsert in one transaction, replace through a
//!   staging table and one `RENAME TABLE`. See [`writer`] and ADR 0010.
//!
//! Every connection sets `time_zone = '+00:00'` (TIMESTAMP values are read and written in
//! UTC), `NAMES utf8mb4`, and backslash escapes on. Errors are classified (auth, connection,
//! timeout, remote, data, config) and never contain the user, host or password
//! ([`conn::classify`]).
//!
//! # Type mapping (extract)
//!
//! Chosen from the result set's column metadata, never from values, so an empty result has
//! the right column types too. Each row is tested against MariaDB 10.11 in
//! `tests/types.rs` (MySQL -> DuckDB column types, values, and back to MySQL).
//!
//! | MySQL / MariaDB                       | Arrow                   | DuckDB          | Notes |
//! |---------------------------------------|-------------------------|-----------------|-------|
//! | TINYINT / UNSIGNED                    | Int8 / UInt8            | TINYINT / UTINYINT | TINYINT(1) stays an integer |
//! | SMALLINT / UNSIGNED                   | Int16 / UInt16          | SMALLINT / USMALLINT | |
//! | MEDIUMINT, INT / UNSIGNED             | Int32 / UInt32          | INTEGER / UINTEGER | |
//! | BIGINT / UNSIGNED                     | Int64 / UInt64          | BIGINT / UBIGINT | 18446744073709551615 exact |
//! | DECIMAL(p,s), p <= 38                 | Decimal128(p,s)         | DECIMAL(p,s)    | exact, from the server's text |
//! | DECIMAL(p,s), p > 38                  | Utf8                    | VARCHAR         | the exact text |
//! | FLOAT / DOUBLE                        | Float32 / Float64       | FLOAT / DOUBLE  | |
//! | DATE                                  | Date32                  | DATE            | zero dates (0000-00-00, 2024-00-00) -> NULL |
//! | DATETIME(n)                           | Timestamp(us)           | TIMESTAMP       | as stored, microseconds kept |
//! | TIMESTAMP(n)                          | Timestamp(us)           | TIMESTAMP       | in UTC (session time zone) |
//! | TIME(n)                               | Duration(us)            | INTERVAL        | negative and > 24 h kept (-838:59:59) |
//! | YEAR                                  | Int16                   | SMALLINT        | |
//! | BIT(1)                                | Boolean                 | BOOLEAN         | |
//! | BIT(n), n > 1                         | UInt64                  | UBIGINT         | |
//! | CHAR, VARCHAR, *TEXT, ENUM, SET       | Utf8                    | VARCHAR         | utf8mb4; SET as `a,b` |
//! | JSON (MySQL type 245; MariaDB LONGTEXT with its `json_valid` CHECK) | Utf8 + `arrow.json` | JSON | the JSON text |
//! | BINARY, VARBINARY, *BLOB, GEOMETRY    | Binary                  | BLOB            | bytes as stored |
//!
//! MariaDB reports JSON columns as LONGTEXT; the extractor recognises them by the
//! `json_valid(<column>)` CHECK constraint MariaDB adds, looked up for the columns' origin
//! tables (a JSON value computed in a query stays VARCHAR).
//!
//! # Type mapping (write)
//!
//! DuckDB formats each value as the text MySQL parses back into the same value (see
//! [`writer`]): integers and DECIMAL exactly, FLOAT/DOUBLE in shortest round-trip form,
//! BOOLEAN as 1/0, TIMESTAMP as `YYYY-MM-DD HH:MM:SS.ffffff` (TIMESTAMPTZ in UTC), INTERVAL as
//! `[-]HHH:MM:SS.ffffff` (MySQL TIME), BLOB as hex unhexed by the server, LIST/STRUCT/MAP as
//! JSON. `create_table` maps DuckDB types to MySQL column types as described in the
//! component spec.
#![warn(missing_docs)]

pub mod conn;
pub mod extractor;
pub mod types;
pub mod writer;

pub use conn::MysqlConnection;
pub use extractor::MysqlExtractor;
pub use writer::MysqlWriter;
