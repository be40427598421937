//! `filesystem.parquet_extractor` and `filesystem.parquet_writer`: Parquet files in and out of
//! the run database through DuckDB's own reader (`read_parquet`) and writer (`COPY ... TO`);
//! no row passes through Rust. Types are Parquet's logical types as DuckDB maps them: DECIMAL
//! stays DECIMAL(p,s), a UTC-adjusted timestamp is TIMESTAMP WITH TIME ZONE, lists and structs
//! stay LIST and STRUCT.

use std::num::NonZeroU64;

use async_trait::async_trait;
use driver_api::{Driver, Result, StepContext, StepInputs, StepOutput, quote_literal};
use serde::Deserialize;

use crate::FilesystemConnection;
use crate::files::{InputPaths, Materialize, Projection, WriteTarget, extract, write, yes};

/// The `filesystem.parquet_extractor` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParquetExtractor;

/// Configuration of a `filesystem.parquet_extractor` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractorConfig {
    /// One file, a glob pattern, or a list of files and patterns; all become one table, their
    /// columns matched by name (a column missing in a file is NULL there).
    pub path: InputPaths,
    /// Columns to keep, in this order. Default: all.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Read at most this many rows. Default: all.
    #[serde(default)]
    pub limit: Option<NonZeroU64>,
    /// `view` (default): the step is a view over the file(s), read only when a later step
    /// reads it, and then only the columns and rows it needs. `table`: every row is read into
    /// the step's table now (ADR 0036).
    #[serde(default)]
    pub materialize: Materialize,
}

#[async_trait]
impl Driver for ParquetExtractor {
    const NAME: &'static str = "filesystem.parquet_extractor";
    type Connection = FilesystemConnection;
    type Config = ExtractorConfig;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: FilesystemConnection,
        config: ExtractorConfig,
        _inputs: StepInputs,
    ) -> Result<StepOutput> {
        let projection = Projection {
            columns: config.columns,
            limit: config.limit,
            flatten: false,
        };
        extract(
            ctx,
            &connection,
            config.path,
            "Parquet",
            |list| format!("read_parquet({list}, union_by_name = true)"),
            projection,
            config.materialize,
        )
        .await
    }
}

/// The `filesystem.parquet_writer` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParquetWriter;

/// Parquet compression codecs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParquetCompression {
    /// Snappy (the default, as in DuckDB, pyarrow and Spark).
    #[default]
    Snappy,
    /// Zstandard.
    Zstd,
    /// Gzip.
    Gzip,
    /// No compression.
    None,
}

impl ParquetCompression {
    fn duckdb_name(self) -> &'static str {
        match self {
            Self::Snappy => "snappy",
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
            Self::None => "uncompressed",
        }
    }
}

/// Configuration of a `filesystem.parquet_writer` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterConfig {
    /// The output file, or with `partition_by` the output directory.
    pub path: String,
    /// Compression codec. Default snappy.
    #[serde(default)]
    pub compression: ParquetCompression,
    /// Rows per row group. Default DuckDB's (122,880).
    #[serde(default)]
    pub row_group_size: Option<NonZeroU64>,
    /// Columns to partition by: `path` becomes a directory of `column=value/` directories
    /// (Hive partitioning).
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Create missing parent directories. Default true.
    #[serde(default = "yes")]
    pub create_dirs: bool,
}

#[async_trait]
impl Driver for ParquetWriter {
    const NAME: &'static str = "filesystem.parquet_writer";
    type Connection = FilesystemConnection;
    type Config = WriterConfig;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: FilesystemConnection,
        config: WriterConfig,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        let mut options = format!(
            "FORMAT parquet, COMPRESSION {}",
            quote_literal(config.compression.duckdb_name())
        );
        if let Some(size) = config.row_group_size {
            options.push_str(&format!(", ROW_GROUP_SIZE {size}"));
        }
        let target = WriteTarget {
            path: config.path,
            create_dirs: config.create_dirs,
            partition_by: config.partition_by,
        };
        write(ctx, &connection, target, inputs, |_| options).await
    }
}

#[cfg(test)]
mod tests;
