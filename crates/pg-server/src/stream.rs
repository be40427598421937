//! Query results streamed as DuckDB produces them: the query runs on its own blocking thread
//! over a clone of the client's connection (same database, same attached sessions) and hands
//! encoded rows through a bounded channel, so a result never sits whole in memory and a
//! portal suspended after Execute's max-rows (JDBC fetchSize, named cursors) holds only the
//! channel's rows. The client's own connection stays free for other statements meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use duckdb::types::Value;
use futures::StreamExt;
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyEncoder, DataRowEncoder, FieldInfo};
use pgwire::error::{ErrorInfo, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use tokio::sync::{mpsc, oneshot};

use crate::backend::{QUERY_FAILED, columns_of, error, set_origins};
use crate::handler::{FieldSink, encode, fields, user_error};

/// Rows buffered between DuckDB and the socket.
const BUFFERED_ROWS: usize = 1024;

/// Interrupts a DuckDB query when dropped while armed: pgwire drops the query's future on a
/// CancelRequest.
pub struct InterruptOnDrop(pub Option<Arc<duckdb::InterruptHandle>>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.interrupt();
        }
    }
}

/// Encodes result rows into protocol messages (data rows, COPY lines).
pub trait RowEncoder: FieldSink + Send + 'static {
    /// One encoded row.
    type Message: Send + 'static;
    /// Takes the row encoded so far.
    fn finish(&mut self) -> Self::Message;
}

impl RowEncoder for DataRowEncoder {
    type Message = DataRow;
    fn finish(&mut self) -> DataRow {
        self.take_row()
    }
}

impl RowEncoder for CopyEncoder {
    type Message = CopyData;
    fn finish(&mut self) -> CopyData {
        self.take_copy()
    }
}

/// A query to start.
pub struct Query {
    /// DuckDB SQL.
    pub sql: String,
    /// Values of `$1..`.
    pub params: Vec<Value>,
    /// Wire format of the result columns.
    pub format: Format,
    /// statement_timeout.
    pub timeout: Option<Duration>,
    /// Table columns the result columns are read from (see `Backend::origins`).
    pub origins: Vec<Option<(i32, i16)>>,
}

/// A started query: its columns and the stream of its encoded rows.
pub struct Started<M> {
    /// Result columns.
    pub schema: Arc<Vec<FieldInfo>>,
    /// Encoded rows, as DuckDB produces them.
    pub rows: futures::stream::BoxStream<'static, PgWireResult<M>>,
}

/// Starts `sql` on `conn` and waits for its first rows (or its end, or its error); the rows
/// then stream. `timeout` (statement_timeout) interrupts the query; so does dropping the
/// returned future before the first rows (CancelRequest).
pub async fn start<E: RowEncoder>(
    conn: duckdb::Connection,
    query: Query,
    make: fn(Arc<Vec<FieldInfo>>) -> E,
) -> PgWireResult<Started<E::Message>> {
    let timeout = query.timeout;
    let interrupt = conn.interrupt_handle();
    let timed_out = Arc::new(AtomicBool::new(false));
    let (first_tx, first_rx) = oneshot::channel();
    let (rows_tx, mut rows_rx) = mpsc::channel(BUFFERED_ROWS);
    let (done_tx, done_rx) = oneshot::channel::<()>();
    if let Some(limit) = timeout {
        let interrupt = Arc::clone(&interrupt);
        let timed_out = Arc::clone(&timed_out);
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(limit) => {
                    timed_out.store(true, Ordering::SeqCst);
                    interrupt.interrupt();
                }
                _ = done_rx => {}
            }
        });
    }
    let producer_timed_out = Arc::clone(&timed_out);
    tokio::task::spawn_blocking(move || {
        let output = Output {
            first: Some(first_tx),
            rows: &rows_tx,
            make,
        };
        produce(&conn, query, output, &producer_timed_out);
        drop(done_tx);
    });
    let mut guard = InterruptOnDrop(Some(interrupt));
    let first = first_rx.await;
    guard.0 = None;
    let schema = match first {
        Ok(Ok(schema)) => schema,
        Ok(Err(info)) => return Err(user_error(info)),
        Err(_) => return Err(user_error(error("XX000", "the query thread ended early"))),
    };
    let rows = futures::stream::poll_fn(move |cx| rows_rx.poll_recv(cx)).boxed();
    Ok(Started { schema, rows })
}

/// Where [`produce`] sends the columns, then the rows.
struct Output<'a, E: RowEncoder> {
    first: Option<First>,
    rows: &'a mpsc::Sender<PgWireResult<E::Message>>,
    make: fn(Arc<Vec<FieldInfo>>) -> E,
}

impl<E: RowEncoder> Output<'_, E> {
    fn error(&mut self, info: Box<ErrorInfo>) {
        match self.first.take() {
            Some(first) => {
                let _ = first.send(Err(info));
            }
            None => {
                let _ = self.rows.blocking_send(Err(user_error(info)));
            }
        }
    }
}

type First = oneshot::Sender<Result<Arc<Vec<FieldInfo>>, Box<ErrorInfo>>>;

/// Runs the query and sends its schema, then its rows; stops when the receiver is gone.
fn produce<E: RowEncoder>(
    conn: &duckdb::Connection,
    query: Query,
    mut out: Output<'_, E>,
    timed_out: &AtomicBool,
) {
    let Query {
        sql,
        mut params,
        format,
        origins,
        ..
    } = query;
    let fail = |e: duckdb::Error| {
        if timed_out.load(Ordering::SeqCst) {
            error("57014", "canceling statement due to statement timeout")
        } else if e.to_string().contains("INTERRUPT") {
            error("57014", "canceling statement due to user request")
        } else {
            error(QUERY_FAILED, e.to_string())
        }
    };
    let mut stmt = match conn.prepare(&sql) {
        Ok(stmt) => stmt,
        Err(e) => return out.error(fail(e)),
    };
    params.resize(stmt.parameter_count(), Value::Null);
    // Executes in DuckDB's streaming mode; the rows are then read chunk by chunk below.
    if let Err(e) = stmt
        .stream_arrow(duckdb::params_from_iter(params))
        .map(drop)
    {
        return out.error(fail(e));
    }
    let mut columns = columns_of(&stmt.schema());
    set_origins(&mut columns, &origins);
    let schema = Arc::new(fields(&columns, &format));
    let mut encoder = (out.make)(Arc::clone(&schema));
    let mut rows = stmt.raw_query();
    loop {
        match rows.next() {
            Ok(Some(row)) => {
                if let Some(first) = out.first.take()
                    && first.send(Ok(Arc::clone(&schema))).is_err()
                {
                    return;
                }
                for (i, column) in columns.iter().enumerate() {
                    let value = match row.get::<_, Value>(i) {
                        Ok(v) => v,
                        Err(e) => return out.error(fail(e)),
                    };
                    if let Err(e) = encode(&mut encoder, &column.ty, value) {
                        let _ = out.rows.blocking_send(Err(e));
                        return;
                    }
                }
                if out.rows.blocking_send(Ok(encoder.finish())).is_err() {
                    return;
                }
            }
            Ok(None) => {
                if let Some(first) = out.first.take() {
                    let _ = first.send(Ok(schema));
                }
                return;
            }
            Err(e) => return out.error(fail(e)),
        }
    }
}
