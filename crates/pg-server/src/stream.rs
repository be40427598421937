//! Query results streamed as DuckDB produces them: the query runs on its own blocking thread
//! over a clone of the client's connection (same database, same attached sessions) and hands
//! encoded rows through a bounded channel, so a result never sits whole in memory and a
//! portal suspended after Execute's max-rows (JDBC fetchSize, named cursors) holds only the
//! channel's rows. The client's own connection stays free for other statements meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use duckdb::types::Value;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldInfo, QueryResponse};
use pgwire::error::{ErrorInfo, PgWireResult};
use pgwire::messages::data::DataRow;
use tokio::sync::{mpsc, oneshot};

use crate::backend::{QUERY_FAILED, columns_of, error};
use crate::handler::{encode, fields, user_error};

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

/// Starts `sql` on `conn` and waits for its first rows (or its end, or its error); the
/// response then streams the rest. `timeout` (statement_timeout) interrupts the query.
pub async fn query(
    conn: duckdb::Connection,
    sql: String,
    params: Vec<Value>,
    format: Format,
    timeout: Option<Duration>,
) -> PgWireResult<QueryResponse> {
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
        produce(
            &conn,
            &sql,
            params,
            &format,
            first_tx,
            &rows_tx,
            &producer_timed_out,
        );
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
    let rows = futures::stream::poll_fn(move |cx| rows_rx.poll_recv(cx));
    Ok(QueryResponse::new(schema, rows))
}

type First = oneshot::Sender<Result<Arc<Vec<FieldInfo>>, Box<ErrorInfo>>>;

/// Runs the query and sends its schema, then its rows; stops when the receiver is gone.
fn produce(
    conn: &duckdb::Connection,
    sql: &str,
    mut params: Vec<Value>,
    format: &Format,
    first: First,
    rows_tx: &mpsc::Sender<PgWireResult<DataRow>>,
    timed_out: &AtomicBool,
) {
    let fail = |e: duckdb::Error| {
        if timed_out.load(Ordering::SeqCst) {
            error("57014", "canceling statement due to statement timeout")
        } else if matches!(&e, duckdb::Error::DuckDBFailure(_, Some(m)) if m.contains("INTERRUPT"))
        {
            error("57014", "canceling statement due to user request")
        } else {
            error(QUERY_FAILED, e.to_string())
        }
    };
    let mut first = Some(first);
    let send_error = |first: &mut Option<First>, info: Box<ErrorInfo>| match first.take() {
        Some(first) => {
            let _ = first.send(Err(info));
        }
        None => {
            let _ = rows_tx.blocking_send(Err(user_error(info)));
        }
    };
    let mut stmt = match conn.prepare(sql) {
        Ok(stmt) => stmt,
        Err(e) => return send_error(&mut first, fail(e)),
    };
    params.resize(stmt.parameter_count(), Value::Null);
    // Executes in DuckDB's streaming mode; the rows are then read chunk by chunk below.
    if let Err(e) = stmt
        .stream_arrow(duckdb::params_from_iter(params))
        .map(drop)
    {
        return send_error(&mut first, fail(e));
    }
    let columns = columns_of(&stmt.schema());
    let schema = Arc::new(fields(&columns, format));
    let mut encoder = DataRowEncoder::new(Arc::clone(&schema));
    let mut rows = stmt.raw_query();
    loop {
        match rows.next() {
            Ok(Some(row)) => {
                if let Some(first) = first.take()
                    && first.send(Ok(Arc::clone(&schema))).is_err()
                {
                    return;
                }
                for (i, column) in columns.iter().enumerate() {
                    let value = match row.get::<_, Value>(i) {
                        Ok(v) => v,
                        Err(e) => return send_error(&mut first, fail(e)),
                    };
                    if let Err(e) = encode(&mut encoder, &column.ty, value) {
                        let _ = rows_tx.blocking_send(Err(e));
                        return;
                    }
                }
                if rows_tx.blocking_send(Ok(encoder.take_row())).is_err() {
                    return;
                }
            }
            Ok(None) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Ok(schema));
                }
                return;
            }
            Err(e) => return send_error(&mut first, fail(e)),
        }
    }
}
