//! PostgreSQL in and out of the run database, over the native protocol (`tokio-postgres`,
//! binary COPY both ways), for PostgreSQL and what speaks it (Supabase's direct connection,
//! Neon, RDS, Timescale).
//!
//! - [`PostgresExtractor`] (`postgres.extractor`): a query's result or a table's rows into
//!   the step table, by `COPY (...) TO STDOUT (FORMAT binary)` in a read-only, repeatable-read
//!   transaction, decoded straight into Arrow builders ([`types`]) in batches.
//! - [`PostgresWriter`] (`postgres.writer`): an upstream table into a PostgreSQL table by
//!   `COPY ... FROM STDIN (FORMAT binary)` into a temporary staging table, then one
//!   transaction (append, upsert by `INSERT ... ON CONFLICT`, replace by TRUNCATE + INSERT), so
//!   a failure leaves the destination as it was. See [`writer`] and ADR 0031.
//!
//! Connections, TLS and error classes come from `pg-support`, shared with the Supabase driver.
//!
//! # Type mapping (extract)
//!
//! | PostgreSQL                         | Arrow                       | DuckDB        |
//! |------------------------------------|-----------------------------|---------------|
//! | boolean                            | Boolean                     | BOOLEAN       |
//! | smallint / integer / bigint        | Int16 / Int32 / Int64       | SMALLINT / INTEGER / BIGINT |
//! | oid                                | Int64                       | BIGINT        |
//! | real / double precision            | Float32 / Float64           | FLOAT / DOUBLE |
//! | numeric(p,s), p <= 38              | Decimal128(p,s)             | DECIMAL(p,s)  |
//! | numeric, numeric(p,s) p > 38       | Utf8 (exact text)           | VARCHAR       |
//! | text, varchar, char(n), name, enum | Utf8                        | VARCHAR       |
//! | json, jsonb                        | Utf8 + `arrow.json`         | JSON          |
//! | bytea                              | Binary                      | BLOB          |
//! | date                               | Date32                      | DATE          |
//! | time                               | Time64(us)                  | TIME          |
//! | timestamp                          | Timestamp(us)               | TIMESTAMP     |
//! | timestamptz                        | Timestamp(us, UTC)          | TIMESTAMPTZ   |
//! | interval                           | Interval(MonthDayNano)      | INTERVAL      |
//! | uuid                               | FixedSizeBinary(16) + `arrow.uuid` | UUID    |
//! | one-dimensional arrays of the above | List                       | T[]           |
//! | anything else (inet, money, ...)   | Utf8 (the type's text)      | VARCHAR       |
#![warn(missing_docs)]

pub mod conn;
pub mod extractor;
pub mod types;
pub mod writer;

pub use conn::PostgresConnection;
pub use extractor::PostgresExtractor;
pub use writer::PostgresWriter;
