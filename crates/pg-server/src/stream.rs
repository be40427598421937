//! Query results streamed as DuckDB produces them (ADR 0038): the query runs on its own
//! blocking thread over a clone of the client's connection (same database, same attached
//! sessions), encodes each DuckDB chunk into wire messages ([`crate::encode`]) and hands them
//! through a bounded channel, one batch per chunk, so a result never sits whole in memory and
//! a portal suspended after Execute's max-rows (JDBC fetchSize, named cursors) holds only the
//! channel's batches. The client's own connection stays free for other statements meanwhile.
//!
//! Every started query has a [`Stop`]: a CancelRequest, statement_timeout or the end of the
//! stream sets it and interrupts DuckDB. The producer looks at it between chunks, the stream
//! before every row, so a query is stopped whether DuckDB is still computing, rows are
//! flowing, or the portal waits for the next Execute; the stream then ends with SQLSTATE
//! 57014 and the connection stays usable.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use duckdb::types::Value;
use futures::Stream;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::error::{ErrorInfo, PgWireResult};
use pgwire::messages::startup::SecretKey;
use tokio::sync::{mpsc, oneshot};

use crate::backend::{QUERY_FAILED, columns_of, error, set_origins};
use crate::encode::{Layout, RowWriter, WireRow, has_fast_path};
use crate::handler::{fields, user_error};

/// Batches (DuckDB chunks of up to 2048 rows) buffered between DuckDB and the socket.
const BUFFERED_BATCHES: usize = 4;
/// Rows per batch on the row-by-row path.
const SLOW_BATCH_ROWS: usize = 1024;

const RUNNING: u8 = 0;
const CANCELLED: u8 = 1;
const TIMED_OUT: u8 = 2;
/// Nobody reads the rows any more (portal closed, connection gone).
const DROPPED: u8 = 3;

/// Stops one running query; the first reason wins.
pub struct Stop {
    reason: AtomicU8,
    /// The query's connection, while the producer holds it: duckdb-rs disconnects before it
    /// clears its interrupt handle, so interrupting a connection being dropped would touch
    /// freed memory. The producer takes it out (under this lock) before dropping the connection.
    interrupt: Mutex<Option<Arc<duckdb::InterruptHandle>>>,
}

impl Stop {
    fn new(interrupt: Arc<duckdb::InterruptHandle>) -> Self {
        Self {
            reason: AtomicU8::new(RUNNING),
            interrupt: Mutex::new(Some(interrupt)),
        }
    }

    fn stop(&self, reason: u8) {
        if self
            .reason
            .compare_exchange(RUNNING, reason, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            && let Some(handle) = &*self.interrupt.lock().unwrap_or_else(|p| p.into_inner())
        {
            handle.interrupt();
        }
    }

    /// The producer is done with its connection: nothing to interrupt any more.
    fn release(&self) {
        self.interrupt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    fn stopped(&self) -> bool {
        self.reason.load(Ordering::Relaxed) != RUNNING
    }

    /// The error the client gets, once stopped by a cancel or a timeout.
    fn error(&self) -> Option<Box<ErrorInfo>> {
        match self.reason.load(Ordering::Relaxed) {
            CANCELLED => Some(error("57014", "canceling statement due to user request")),
            TIMED_OUT => Some(error(
                "57014",
                "canceling statement due to statement timeout",
            )),
            _ => None,
        }
    }
}

/// The queries of one connection that are still producing or holding rows.
#[derive(Default)]
pub struct Running(Mutex<Vec<Weak<Stop>>>);

impl Running {
    fn add(&self, stop: &Arc<Stop>) {
        let mut stops = self.0.lock().unwrap_or_else(|p| p.into_inner());
        stops.retain(|s| s.strong_count() > 0);
        stops.push(Arc::downgrade(stop));
    }

    /// Stops them all (a CancelRequest): the one sending rows, and portals or cursors
    /// waiting for their next fetch.
    pub fn cancel(&self) {
        let stops = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for stop in stops.iter().filter_map(Weak::upgrade) {
            stop.stop(CANCELLED);
        }
    }
}

/// The server's connections by the (pid, secret key) a CancelRequest names.
#[derive(Default)]
pub struct Cancels(Mutex<HashMap<(i32, Bytes), Weak<Running>>>);

impl Cancels {
    /// Makes a connection's queries cancellable by its key.
    pub fn register(&self, pid: i32, secret: &SecretKey, running: &Arc<Running>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // As bytes: a CancelRequest's key is read without knowing the protocol version.
        map.insert((pid, secret.to_bytes()), Arc::downgrade(running));
    }

    /// Forgets a closed connection.
    pub fn unregister(&self, pid: i32, secret: &SecretKey) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(pid, secret.to_bytes()));
    }

    /// A CancelRequest: stops the queries of the connection with that key.
    pub fn cancel(&self, pid: i32, secret: &SecretKey) {
        let running = {
            let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&(pid, secret.to_bytes())).and_then(Weak::upgrade)
        };
        if let Some(running) = running {
            running.cancel();
        }
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
    /// How the rows are framed.
    pub layout: Layout,
    /// statement_timeout.
    pub timeout: Option<Duration>,
    /// Table columns the result columns are read from (see `Backend::origins`).
    pub origins: Vec<Option<(i32, i16)>>,
    /// A cursor's: the wire format is told by its first FETCH; until then the query waits
    /// after its columns are known (`format` is only the format they are described with).
    pub deferred: Option<oneshot::Receiver<Format>>,
}

/// A started query: its columns and the stream of its encoded rows.
pub struct Started<M> {
    /// Result columns.
    pub schema: Arc<Vec<FieldInfo>>,
    /// Encoded rows, as DuckDB produces them.
    pub rows: RowStream<M>,
}

/// Stops the query when dropped while armed: pgwire drops the query's future on a
/// CancelRequest that arrives before the first rows.
struct StopOnDrop(Option<Arc<Stop>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop.stop(CANCELLED);
        }
    }
}

type Batch<M> = PgWireResult<Vec<M>>;

/// Starts `sql` on `conn` and waits for its first rows (or its end, or its error); the rows
/// then stream. `running` is the connection's list a CancelRequest stops.
pub async fn start<M: WireRow>(
    conn: duckdb::Connection,
    query: Query,
    running: &Running,
) -> PgWireResult<Started<M>> {
    let stop = Arc::new(Stop::new(conn.interrupt_handle()));
    running.add(&stop);
    let (first_tx, first_rx) = oneshot::channel();
    let (rows_tx, rows_rx) = mpsc::channel(BUFFERED_BATCHES);
    let (done_tx, done_rx) = oneshot::channel::<()>();
    if let Some(limit) = query.timeout {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(limit) => stop.stop(TIMED_OUT),
                _ = done_rx => {}
            }
        });
    }
    let producer_stop = Arc::clone(&stop);
    tokio::task::spawn_blocking(move || {
        let mut output = Output {
            first: Some(first_tx),
            rows: &rows_tx,
        };
        produce::<M>(&conn, query, &mut output, &producer_stop);
        producer_stop.release();
        drop(conn);
        drop(done_tx);
    });
    let mut guard = StopOnDrop(Some(Arc::clone(&stop)));
    let first = first_rx.await;
    guard.0 = None;
    let schema = match first {
        Ok(Ok(schema)) => schema,
        Ok(Err(info)) => return Err(user_error(info)),
        Err(_) => return Err(user_error(error("XX000", "the query thread ended early"))),
    };
    Ok(Started {
        schema,
        rows: RowStream {
            rx: rows_rx,
            current: Vec::new().into_iter(),
            stop,
            done: false,
        },
    })
}

/// The rows of a started query; ends with 57014 once the query is stopped.
pub struct RowStream<M> {
    rx: mpsc::Receiver<Batch<M>>,
    current: std::vec::IntoIter<M>,
    stop: Arc<Stop>,
    done: bool,
}

// No field is pinned: the stream only moves rows out of a Vec.
impl<M> Unpin for RowStream<M> {}

impl<M> Stream for RowStream<M> {
    type Item = PgWireResult<M>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(info) = this.stop.error() {
                this.done = true;
                return Poll::Ready(Some(Err(user_error(info))));
            }
            if let Some(row) = this.current.next() {
                return Poll::Ready(Some(Ok(row)));
            }
            match this.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(batch))) => this.current = batch.into_iter(),
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => this.done = true,
            }
        }
    }
}

impl<M> Drop for RowStream<M> {
    fn drop(&mut self) {
        // A query nobody reads any more must not keep computing.
        self.stop.stop(DROPPED);
    }
}

/// Where [`produce`] sends the columns, then the rows.
struct Output<'a, M> {
    first: Option<First>,
    rows: &'a mpsc::Sender<Batch<M>>,
}

impl<M> Output<'_, M> {
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

    /// Ends a stopped query with its error (none when nobody reads it any more).
    fn stopped(&mut self, stop: &Stop) {
        if let Some(info) = stop.error() {
            self.error(info);
        }
    }

    /// Sends a batch (the columns first); `false` when nobody listens any more.
    fn send(&mut self, schema: &Arc<Vec<FieldInfo>>, batch: Vec<M>) -> bool {
        if let Some(first) = self.first.take()
            && first.send(Ok(Arc::clone(schema))).is_err()
        {
            return false;
        }
        batch.is_empty() || self.rows.blocking_send(Ok(batch)).is_ok()
    }
}

type First = oneshot::Sender<Result<Arc<Vec<FieldInfo>>, Box<ErrorInfo>>>;

/// Runs the query and sends its schema, then its rows; stops when stopped or when the
/// receiver is gone.
fn produce<M: WireRow>(
    conn: &duckdb::Connection,
    query: Query,
    out: &mut Output<'_, M>,
    stop: &Stop,
) {
    let Query {
        sql,
        mut params,
        format,
        layout,
        origins,
        deferred,
        ..
    } = query;
    let prepared = conn.prepare(&sql);
    if let Ok(stmt) = &prepared {
        params.resize(stmt.parameter_count(), Value::Null);
    }
    // The stop's error when this server stopped the query. Else DuckDB's, which may be an
    // interruption nobody asked for (ADR 0045): the query is then read again for its own error.
    let fail = |e: duckdb::Error| match stop.error() {
        Some(info) => info,
        None => {
            let e = execution_context::unmask_interrupt(conn, &sql, &params, e);
            stop.error()
                .unwrap_or_else(|| error(QUERY_FAILED, e.to_string()))
        }
    };
    let mut stmt = match prepared {
        Ok(stmt) => stmt,
        Err(e) => return out.error(fail(e)),
    };
    // Executes in DuckDB's streaming mode; the rows are then read chunk by chunk below.
    if let Err(e) = stmt
        .stream_arrow(duckdb::params_from_iter(&params))
        .map(drop)
    {
        return out.error(fail(e));
    }
    let arrow_schema = stmt.schema();
    let mut columns = columns_of(&stmt);
    set_origins(&mut columns, &origins);
    let mut schema = Arc::new(fields(&columns, &format));
    if let Some(format) = deferred {
        if let Some(first) = out.first.take()
            && first.send(Ok(Arc::clone(&schema))).is_err()
        {
            return;
        }
        match format.blocking_recv() {
            Ok(format) => schema = Arc::new(fields(&columns, &format)),
            // Closed without a FETCH.
            Err(_) => return,
        }
    }
    let mut writer = RowWriter::<M>::new(&schema, layout);
    let fast = arrow_schema
        .fields()
        .iter()
        .zip(&columns)
        .all(|(f, c)| has_fast_path(f.data_type(), &c.ty));
    if fast {
        loop {
            if stop.stopped() {
                return out.stopped(stop);
            }
            match stmt.step() {
                Ok(Some(chunk)) => {
                    if let Err(e) = writer.chunk(chunk.columns()) {
                        let _ = out.rows.blocking_send(Err(e));
                        return;
                    }
                    if !out.send(&schema, writer.take_rows()) {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => return out.error(fail(e)),
            }
        }
    } else {
        let types: Vec<Type> = columns.iter().map(|c| c.ty.clone()).collect();
        let mut rows = stmt.raw_query();
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    let mut values = Vec::with_capacity(types.len());
                    for i in 0..types.len() {
                        match row.get::<_, Value>(i) {
                            Ok(v) => values.push(v),
                            Err(e) => return out.error(fail(e)),
                        }
                    }
                    if let Err(e) = writer.value_row(values) {
                        let _ = out.rows.blocking_send(Err(e));
                        return;
                    }
                    if writer.pending() >= SLOW_BATCH_ROWS {
                        if stop.stopped() {
                            return out.stopped(stop);
                        }
                        if !out.send(&schema, writer.take_rows()) {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return out.error(fail(e)),
            }
        }
    }
    writer.finish();
    out.send(&schema, writer.take_rows());
}
