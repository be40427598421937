//! [`BlockingSink`]: a blocking thread fed through a bounded channel, the one lifecycle behind
//! [`TableWriter`](super::TableWriter) and the loaders built on it (send, finish, abort).

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{DriverError, Result};

/// Messages go over a bounded channel to `work`, which runs on a blocking thread and returns a
/// row count. A producer faster than the thread waits in [`send`](Self::send) instead of
/// buffering. When the thread stops early (it failed), the next `send` returns its error.
pub struct BlockingSink<M> {
    tx: mpsc::Sender<M>,
    handle: JoinHandle<Result<u64>>,
    /// What the thread is, for internal errors ("table writer").
    what: &'static str,
}

impl<M> std::fmt::Debug for BlockingSink<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingSink")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl<M: Send + 'static> BlockingSink<M> {
    /// Starts `work` on a blocking thread of the current Tokio runtime, reading from a channel
    /// of `capacity` messages (at least one).
    pub fn spawn(
        what: &'static str,
        capacity: usize,
        work: impl FnOnce(mpsc::Receiver<M>) -> Result<u64> + Send + 'static,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let handle = tokio::task::spawn_blocking(move || work(rx));
        Self { tx, handle, what }
    }

    /// Sends one message, waiting while the channel is full. When the thread has already
    /// stopped, returns the error it stopped with.
    pub async fn send(&mut self, message: M) -> Result<()> {
        if self.tx.send(message).await.is_err() {
            return Err(self.stopped_error().await);
        }
        Ok(())
    }

    /// Sends `last` (the message that tells `work` to complete), closes the channel and
    /// returns what `work` returned.
    pub async fn finish(self, last: M) -> Result<u64> {
        // When the thread already stopped, the join below reports why.
        let _ = self.tx.send(last).await;
        drop(self.tx);
        join(self.handle, self.what).await
    }

    /// Closes the channel without the completing message (`work` sees the channel end and
    /// undoes what it did) and waits for the thread.
    pub async fn abort(self) {
        drop(self.tx);
        let _ = join(self.handle, self.what).await;
    }

    async fn stopped_error(&mut self) -> DriverError {
        let handle = std::mem::replace(&mut self.handle, tokio::spawn(async { Ok(0) }));
        match join(handle, self.what).await {
            Err(error) => error,
            Ok(_) => DriverError::internal(format!("{} stopped before its input ended", self.what)),
        }
    }
}

async fn join(handle: JoinHandle<Result<u64>>, what: &str) -> Result<u64> {
    handle
        .await
        .map_err(|e| DriverError::internal(format!("{what} thread failed: {e}")))?
}
