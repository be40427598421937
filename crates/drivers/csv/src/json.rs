//! `filesystem.json_extractor` and `filesystem.json_writer`: JSON Lines and JSON array files in
//! and out of the run database through DuckDB's own reader (`read_json`) and writer
//! (`COPY ... TO (FORMAT json)`). Nested objects read as STRUCT columns, or with `flatten` as
//! one column per leaf field named `parent.child` (as the GraphQL extractor names them);
//! arrays read as LIST columns.

use std::num::NonZeroU64;

use async_trait::async_trait;
use driver_api::{Driver, Result, StepContext, StepInputs, StepOutput, quote_literal};
use serde::Deserialize;

use crate::FilesystemConnection;
use crate::files::{InputPaths, Materialize, Projection, WriteTarget, extract, write, yes};
use crate::options::Codec;

/// The `filesystem.json_extractor` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonExtractor;

/// How the records are laid out in a file being read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFormat {
    /// Detected from the file: a top-level array, or one value per line.
    #[default]
    Auto,
    /// JSON Lines: one object per line.
    Lines,
    /// One top-level array of objects.
    Array,
}

/// Configuration of a `filesystem.json_extractor` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractorConfig {
    /// One file, a glob pattern, or a list of files and patterns; all become one table, their
    /// fields matched by name.
    pub path: InputPaths,
    /// `auto` (default), `lines` (JSON Lines) or `array`.
    #[serde(default)]
    pub format: ReadFormat,
    /// Nested objects become one column per leaf field, `parent.child`; default false (a
    /// STRUCT column).
    #[serde(default)]
    pub flatten: bool,
    /// Columns to keep, in this order (flattened names with `flatten`). Default: all.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Read at most this many records. Default: all.
    #[serde(default)]
    pub limit: Option<NonZeroU64>,
    /// `view` (default): the step is a view over the file(s), read only when a later step
    /// reads it, and then only the columns and rows it needs. `table`: every row is read into
    /// the step's table now (ADR 0036).
    #[serde(default)]
    pub materialize: Materialize,
}

#[async_trait]
impl Driver for JsonExtractor {
    const NAME: &'static str = "filesystem.json_extractor";
    type Connection = FilesystemConnection;
    type Config = ExtractorConfig;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: FilesystemConnection,
        config: ExtractorConfig,
        _inputs: StepInputs,
    ) -> Result<StepOutput> {
        let format = match config.format {
            ReadFormat::Auto => "auto",
            ReadFormat::Lines => "newline_delimited",
            ReadFormat::Array => "array",
        };
        let projection = Projection {
            columns: config.columns,
            limit: config.limit,
            flatten: config.flatten,
        };
        extract(
            ctx,
            &connection,
            config.path,
            "JSON",
            move |list| {
                format!(
                    "read_json({list}, format = {}, records = true, union_by_name = true)",
                    quote_literal(format)
                )
            },
            projection,
            config.materialize,
        )
        .await
    }
}

/// The `filesystem.json_writer` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonWriter;

/// How the written file lays out the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteFormat {
    /// JSON Lines: one object per line (the default).
    #[default]
    Lines,
    /// One top-level array of objects.
    Array,
}

/// Compression of the written file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonCompression {
    /// From the extension: `.gz` gzip, `.zst` zstd, anything else none (the default).
    #[default]
    Infer,
    /// No compression.
    None,
    /// Gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}

/// Configuration of a `filesystem.json_writer` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterConfig {
    /// The output file, or with `partition_by` the output directory.
    pub path: String,
    /// `lines` (JSON Lines, default) or `array`.
    #[serde(default)]
    pub format: WriteFormat,
    /// `infer` (default, from the extension), `none`, `gzip` or `zstd`.
    #[serde(default)]
    pub compression: JsonCompression,
    /// Columns to partition by: `path` becomes a directory of `column=value/` directories.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Create missing parent directories. Default true.
    #[serde(default = "yes")]
    pub create_dirs: bool,
}

#[async_trait]
impl Driver for JsonWriter {
    const NAME: &'static str = "filesystem.json_writer";
    type Connection = FilesystemConnection;
    type Config = WriterConfig;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: FilesystemConnection,
        config: WriterConfig,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        let target = WriteTarget {
            path: config.path,
            create_dirs: config.create_dirs,
            partition_by: config.partition_by,
        };
        write(ctx, &connection, target, inputs, |path| {
            let codec = match config.compression {
                // `.gz` or `.zst`; anything else is written plain.
                JsonCompression::Infer => Codec::from_extension(path),
                JsonCompression::None => Codec::None,
                JsonCompression::Gzip => Codec::Gzip,
                JsonCompression::Zstd => Codec::Zstd,
            };
            format!(
                "FORMAT json, ARRAY {}, COMPRESSION {}",
                config.format == WriteFormat::Array,
                quote_literal(codec.duckdb_name())
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests;
