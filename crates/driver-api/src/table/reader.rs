//! [`TableReader`]: a table or query out of the run database as Arrow batches.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::*;
use crate::{DriverError, Result, TableName};

/// Streams the result of a query (by default a whole table) as Arrow batches.
pub struct TableReader {
    rx: mpsc::Receiver<Result<RecordBatch>>,
    schema: SchemaRef,
    handle: JoinHandle<()>,
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl TableReader {
    /// Streams every row of `table`, in its column order.
    pub async fn table(conn: duckdb::Connection, table: &TableName) -> Result<Self> {
        Self::query(conn, format!("SELECT * FROM {table}")).await
    }

    /// Streams the result of `sql`: DuckDB produces the rows while they are consumed, so memory
    /// stays bounded by the channel whatever the result's size.
    pub async fn query(conn: duckdb::Connection, sql: String) -> Result<Self> {
        let (tx, rx) = mpsc::channel(DEFAULT_CHANNEL_CAPACITY);
        let (schema_tx, schema_rx) = tokio::sync::oneshot::channel();
        let handle = tokio::task::spawn_blocking(move || {
            let fail =
                |e: duckdb::Error| DriverError::duckdb("cannot read from the run database", e);
            let mut stmt = match conn.prepare(&sql).map_err(fail) {
                Ok(stmt) => stmt,
                Err(e) => {
                    let _ = schema_tx.send(Err(e));
                    return;
                }
            };
            // DuckDB's streaming mode: chunks are produced as they are read, so a writer
            // slower than the scan (a remote database) holds a few batches, not the whole
            // result. A later chunk can still fail (a CSV view's value that does not convert):
            // it arrives as an error, never as a panic of the iterator.
            if let Err(e) = stmt.stream_arrow([]).map(drop).map_err(fail) {
                let _ = schema_tx.send(Err(e));
                return;
            }
            let _ = schema_tx.send(Ok(stmt.schema()));
            let error = loop {
                match stmt.step() {
                    Ok(Some(chunk)) => {
                        if tx.blocking_send(Ok(RecordBatch::from(&chunk))).is_err() {
                            return; // the consumer stopped reading
                        }
                    }
                    Ok(None) => return,
                    Err(e) => break e,
                }
            };
            drop(stmt);
            // Nobody interrupts this connection: an interruption hides the query's own error.
            let error = execution_context::unmask_interrupt(&conn, &sql, &[], error);
            let _ = tx.blocking_send(Err(fail(error)));
        });
        let schema = schema_rx
            .await
            .map_err(|_| DriverError::internal("table reader thread ended early"))??;
        Ok(Self { rx, schema, handle })
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The next batch, or `None` at the end.
    pub async fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        self.rx.recv().await
    }

    /// Reads everything (tests and small tables only).
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next_batch().await {
            batches.push(batch?);
        }
        let _ = self.handle.await;
        Ok(batches)
    }
}
