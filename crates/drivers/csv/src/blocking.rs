//! Runs a step's DuckDB work on a blocking thread, interrupting the running query when the step
//! is cancelled.

use driver_api::{DriverError, Result, StepContext};
use tokio_util::sync::CancellationToken;

/// Runs `work` with a fresh connection to the run database on a blocking thread.
///
/// `work` gets the step's cancellation token to check between statements; a statement already
/// running is interrupted through DuckDB. A failure after cancellation is reported as
/// [`DriverError::Cancelled`]; work that finished despite a late cancellation keeps its result,
/// since what it produced is complete.
pub(crate) async fn run_blocking<T, F>(ctx: &StepContext, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&duckdb::Connection, &CancellationToken) -> Result<T> + Send + 'static,
{
    ctx.check_cancelled()?;
    let conn = ctx.connection()?;
    let interrupt = conn.interrupt_handle();
    let cancel = ctx.cancellation().clone();
    let token = cancel.clone();
    let mut task = tokio::task::spawn_blocking(move || work(&conn, &token));
    let joined = tokio::select! {
        joined = &mut task => joined,
        () = cancel.cancelled() => {
            interrupt.interrupt();
            // Wait for the thread: its transaction must roll back before the step ends.
            task.await
        }
    };
    match joined {
        Ok(Err(_)) if cancel.is_cancelled() => Err(DriverError::Cancelled),
        Ok(result) => result,
        Err(join) => Err(DriverError::internal(format!(
            "the DuckDB worker thread failed: {join}"
        ))),
    }
}
