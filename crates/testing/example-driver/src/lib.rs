//! `sequence.extractor`: the integers `start`, `start + 1`, ... as a one-column step table.
//! The driver of docs/adding-a-driver.md, kept equal to it by a test.
#![warn(missing_docs)]

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use async_trait::async_trait;
use driver_api::{Driver, NoConnection, Result, StepContext, StepInputs, StepOutput, TableWriter};
use serde::Deserialize;

/// Rows per Arrow batch handed to the table writer.
const BATCH_ROWS: u64 = 65_536;

/// The step's `config`, as the spec's `configSchema` describes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How many rows to produce.
    pub count: u64,
    /// The first value. Default 0.
    #[serde(default)]
    pub start: i64,
}

/// The `sequence.extractor` component.
#[derive(Debug, Default)]
pub struct SequenceExtractor;

#[async_trait]
impl Driver for SequenceExtractor {
    const NAME: &'static str = "sequence.extractor";
    type Connection = NoConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        _connection: NoConnection,
        config: Config,
        _inputs: StepInputs,
    ) -> Result<StepOutput> {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let mut writer = TableWriter::for_step(ctx, Arc::clone(&schema))?;
        let mut done = 0;
        while done < config.count {
            if let Err(error) = ctx.check_cancelled() {
                writer.abort().await;
                return Err(error);
            }
            let rows = BATCH_ROWS.min(config.count - done);
            let first = config.start.saturating_add_unsigned(done);
            let values =
                Int64Array::from_iter_values((0..rows).map(|i| first.saturating_add_unsigned(i)));
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(values)])
                .map_err(|e| driver_api::DriverError::internal(e.to_string()))?;
            writer.send(batch).await?;
            done += rows;
        }
        let rows = writer.finish().await?;
        Ok(StepOutput::table(ctx.output_table().clone(), rows))
    }
}
