//! DuckDB's worker threads while a run's only running step bulk-appends into its table
//! (ADR 0044).
//!
//! An appender's flush runs as a query on DuckDB's task scheduler. Its insert is one task, and
//! when a worker thread takes it, the calling thread spins until it is done (DuckDB issue
//! #22178): on two cores that spin takes CPU from the decoder feeding the append and from the
//! database server sending the rows. With `threads = 1` the caller runs the task itself. Since
//! `threads` is database-wide, a bulk append asks for it only while its step is the run's only
//! running step, and a step that starts meanwhile gets DuckDB's threads back before it runs.

use std::sync::{Arc, Mutex, MutexGuard};

/// The running steps of one run database, and the setting a lone bulk append replaced.
#[derive(Debug, Default)]
pub(crate) struct Parallelism {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    /// While a lone bulk append runs single-threaded: a connection to put `threads` back with,
    /// and the value to put back.
    serial: Option<(duckdb::Connection, i64)>,
}

impl Parallelism {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counts half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn step_started(self: &Arc<Self>) -> RunningStep {
        let mut state = self.lock();
        state.running += 1;
        restore(&mut state);
        RunningStep {
            parallelism: Arc::clone(self),
        }
    }

    pub(crate) fn serial_append(
        self: &Arc<Self>,
        conn: &duckdb::Connection,
    ) -> Option<SerialAppend> {
        let mut state = self.lock();
        if state.running != 1 || state.serial.is_some() {
            return None;
        }
        let threads: i64 = conn
            .query_row("SELECT current_setting('threads')::BIGINT", [], |r| {
                r.get(0)
            })
            .ok()?;
        if threads <= 1 {
            return None;
        }
        let restorer = conn.try_clone().ok()?;
        conn.execute_batch("SET threads = 1").ok()?;
        state.serial = Some((restorer, threads));
        Some(SerialAppend {
            parallelism: Arc::clone(self),
        })
    }
}

/// Puts back the threads a lone bulk append took, if one did.
fn restore(state: &mut State) {
    if let Some((conn, threads)) = state.serial.take()
        && let Err(error) = conn.execute_batch(&format!("SET threads = {threads}"))
    {
        tracing::warn!(%error, threads, "cannot give DuckDB its worker threads back");
    }
}

/// A step counted as running until this is dropped
/// ([`ExecutionContext::step_running`](crate::ExecutionContext::step_running)).
#[derive(Debug)]
pub struct RunningStep {
    parallelism: Arc<Parallelism>,
}

impl Drop for RunningStep {
    fn drop(&mut self) {
        let mut state = self.parallelism.lock();
        state.running = state.running.saturating_sub(1);
    }
}

/// DuckDB runs single-threaded until this is dropped, unless another step has started since
/// ([`ExecutionContext::serial_bulk_append`](crate::ExecutionContext::serial_bulk_append)).
#[derive(Debug)]
pub struct SerialAppend {
    parallelism: Arc<Parallelism>,
}

impl Drop for SerialAppend {
    fn drop(&mut self) {
        restore(&mut self.parallelism.lock());
    }
}
