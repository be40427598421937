//! CSV files in and out of the run database, with DuckDB doing the work.
//!
//! - [`CsvExtractor`] (`filesystem.csv_extractor`) turns one CSV file into the step's table with
//!   one `CREATE TABLE ... AS SELECT ... FROM read_csv(...)`: DuckDB's parallel reader parses,
//!   infers types and loads in one pass; no row passes through Rust.
//! - [`CsvWriter`] (`filesystem.csv_writer`) writes an upstream table to a CSV file with one
//!   `COPY (SELECT ...) TO` into a temporary file that replaces the target only on success.
//!
//! Rust only steps in where DuckDB cannot: explaining a malformed file precisely (which line,
//! how many fields), decoding UTF-16 input and writing encodings other than UTF-8.
#![warn(missing_docs)]

mod diagnose;
mod encoding;
pub mod extractor;
mod options;
pub mod writer;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use extractor::CsvExtractor;
pub use options::{Codec, CsvChar, Encoding, QuoteChar};
pub use writer::CsvWriter;

/// A `@filesystem` connection (the spec's `x-connection-fields`), shared by the CSV extractor
/// and writer.
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
