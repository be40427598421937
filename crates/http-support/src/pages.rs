//! Pages of JSON records into the step table, overlapped with fetching.
//!
//! The driver's fetch loop hands each page's records to [`PageLoader::send`] and goes on to
//! request the next page. A blocking thread decodes the pages into Arrow batches
//! ([`records_to_batch`]) and feeds a [`TableWriter`] in
//! [`SchemaEvolution::Widen`] mode, whose own thread appends them to DuckDB. Both hand-offs are
//! bounded channels: memory stays at a few pages whatever the result size, and a slow database
//! slows fetching down instead of buffering.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use driver_api::{
    BlockingSink, DEFAULT_CHANNEL_CAPACITY, DriverError, Result, SchemaEvolution, StepContext,
    TableName, TableWriter,
};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{JsonOptions, JsonPath, VALUE_COLUMN, into_records, records_to_batch};

/// Pages waiting to be decoded.
const PAGE_CHANNEL_CAPACITY: usize = 4;

/// What a [`PageLoader`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Rows in the step table.
    pub rows: u64,
    /// Pages received (empty pages included).
    pub pages: u64,
}

impl LoadSummary {
    /// Writes the `pages_fetched` metric of the step (the engine writes `rows_read`).
    pub fn report(&self, ctx: &StepContext) {
        ctx.metric("pages_fetched", self.pages);
    }
}

enum Message {
    Page(Vec<Value>),
    Body(bytes::Bytes, Arc<JsonPath>),
    Finish,
}

/// Loads pages of JSON records into the step's table, atomically (see the module docs). The
/// table appears at [`finish`](Self::finish); after an error, [`abort`](Self::abort) (or
/// dropping the loader) leaves no table. With no records at all the table has the single
/// VARCHAR column `value` and no rows.
pub struct PageLoader {
    sink: BlockingSink<Message>,
    pages: u64,
}

impl std::fmt::Debug for PageLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageLoader")
            .field("pages", &self.pages)
            .finish_non_exhaustive()
    }
}

impl PageLoader {
    /// Starts a loader for the step's output table.
    pub fn for_step(ctx: &StepContext, options: JsonOptions) -> Result<Self> {
        Ok(Self::start(
            ctx.connection()?,
            ctx.output_table().clone(),
            options,
        ))
    }

    /// Starts a loader that (re)creates `table` on `conn`.
    pub fn start(conn: duckdb::Connection, table: TableName, options: JsonOptions) -> Self {
        let runtime = tokio::runtime::Handle::current();
        let sink = BlockingSink::spawn("page loader", PAGE_CHANNEL_CAPACITY, move |rx| {
            load(&runtime, conn, table, options, rx)
        });
        Self { sink, pages: 0 }
    }

    /// Hands over one page of records (an empty page counts as a page). Waits while the
    /// decoder is a few pages behind. When decoding or writing already failed, returns that
    /// error.
    pub async fn send(&mut self, records: Vec<Value>) -> Result<()> {
        self.pages += 1;
        self.sink.send(Message::Page(records)).await
    }

    /// Hands over one whole response body whose records are at `records_at`: parsing it, taking
    /// the records out ([`into_records`]) and decoding happen on the loader's thread, so the
    /// fetch loop only has to [`pick`](crate::pick) what it needs for the next request. A body
    /// that is not JSON or lacks the path fails the loader (reported by this or a later call).
    pub async fn send_body(
        &mut self,
        body: bytes::Bytes,
        records_at: &Arc<JsonPath>,
    ) -> Result<()> {
        self.pages += 1;
        self.sink
            .send(Message::Body(body, Arc::clone(records_at)))
            .await
    }

    /// Pages sent so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Commits the table once every page is written.
    pub async fn finish(self) -> Result<LoadSummary> {
        let pages = self.pages;
        let rows = self.sink.finish(Message::Finish).await?;
        Ok(LoadSummary { rows, pages })
    }

    /// Abandons the table: nothing of it stays visible.
    pub async fn abort(self) {
        self.sink.abort().await;
    }
}

fn load(
    runtime: &tokio::runtime::Handle,
    conn: duckdb::Connection,
    table: TableName,
    options: JsonOptions,
    mut rx: mpsc::Receiver<Message>,
) -> Result<u64> {
    let mut conn = Some(conn);
    let mut writer: Option<TableWriter> = None;
    let start = |conn: duckdb::Connection, schema| {
        let _guard = runtime.enter();
        TableWriter::start_with(
            conn,
            table.clone(),
            schema,
            DEFAULT_CHANNEL_CAPACITY,
            SchemaEvolution::Widen,
        )
    };
    let outcome = (|| -> Result<()> {
        loop {
            match rx.blocking_recv() {
                Some(message @ (Message::Page(_) | Message::Body(..))) => {
                    let records = match message {
                        Message::Body(body, records_at) => {
                            let mut doc: Value =
                                serde_json::from_slice(&body).map_err(|e| DriverError::Remote {
                                    message: format!("the response is not valid JSON: {e}"),
                                })?;
                            into_records(records_at.take(&mut doc)?)
                        }
                        Message::Page(records) => records,
                        Message::Finish => Vec::new(),
                    };
                    let Some(batch) = records_to_batch(records, options)? else {
                        continue;
                    };
                    if writer.is_none() {
                        let conn = conn.take().ok_or_else(|| {
                            DriverError::internal("page loader lost its connection")
                        })?;
                        writer = Some(start(conn, batch.schema()));
                    }
                    if let Some(writer) = writer.as_mut() {
                        runtime.block_on(writer.send(batch))?;
                    }
                }
                Some(Message::Finish) => return Ok(()),
                None => return Err(DriverError::Cancelled),
            }
        }
    })();
    match (outcome, writer, conn) {
        (Ok(()), Some(writer), _) => runtime.block_on(writer.finish()),
        (Ok(()), None, Some(conn)) => {
            // No records at all: an empty table that still has a column.
            let schema = Arc::new(Schema::new(vec![Field::new(
                VALUE_COLUMN,
                DataType::Utf8,
                true,
            )]));
            runtime.block_on(start(conn, schema).finish())
        }
        (Ok(()), None, None) => Err(DriverError::internal("page loader lost its connection")),
        (Err(error), writer, _) => {
            if let Some(writer) = writer {
                runtime.block_on(writer.abort());
            }
            Err(error)
        }
    }
}
