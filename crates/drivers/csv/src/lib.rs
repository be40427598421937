//! The `filesystem` family: CSV, Parquet and JSON files in and out of the run database, with
//! DuckDB doing the work. One crate, because the family shares one connection
//! ([`FilesystemConnection`]) and the path, temporary-file and error handling (ADR 0030).
//!
//! - [`CsvExtractor`] (`filesystem.csv_extractor`) turns one CSV file into the step's table with
//!   one `CREATE TABLE ... AS SELECT ... FROM read_csv(...)`: DuckDB's parallel reader parses,
//!   infers types and loads in one pass; no row passes through Rust.
//! - [`CsvWriter`] (`filesystem.csv_writer`) writes an upstream table to a CSV file with one
//!   `COPY (SELECT ...) TO` into a temporary file that replaces the target only on success.
//!
//! Rust only steps in where DuckDB cannot: explaining a malformed file precisely (which line,
//! how many fields), decoding UTF-16 input and writing encodings other than UTF-8.
//!
//! - [`ParquetExtractor`] / [`ParquetWriter`] (`filesystem.parquet_*`) and [`JsonExtractor`] /
//!   [`JsonWriter`] (`filesystem.json_*`) load with `read_parquet` / `read_json` (one file, a
//!   glob, or a list into one table) and write with `COPY ... TO` (compression, row groups,
//!   partitioned directories), through the same temporary-file-then-rename as the CSV writer.
#![warn(missing_docs)]

mod diagnose;
mod encoding;
pub mod extractor;
mod files;
pub mod json;
mod options;
pub mod parquet;
pub mod writer;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use extractor::CsvExtractor;
pub use files::{InputPaths, Materialize};
pub use json::{JsonExtractor, JsonWriter};
pub use options::{Codec, CsvChar, Encoding, QuoteChar};
pub use parquet::{ParquetExtractor, ParquetWriter};
pub use writer::CsvWriter;

/// A `@filesystem` connection (the spec's `x-connection-fields`), shared by every driver of
/// the family.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemConnection {
    /// Directory relative `path`s resolve against instead of the pipeline file's directory. A
    /// relative `base_dir` resolves against the pipeline file's directory.
    #[serde(default)]
    pub base_dir: Option<String>,
}

impl FilesystemConnection {
    /// Where a step's `path` is: absolute as written, else under `base_dir`, else under the
    /// pipeline file's directory.
    pub fn resolve(&self, ctx: &driver_api::StepContext, path: impl AsRef<Path>) -> PathBuf {
        ctx.resolve_path_in(self.base_dir.as_deref(), path)
    }
}
