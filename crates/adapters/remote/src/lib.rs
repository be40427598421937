//! Remote execution: `osiris run --target remote` runs a plan's steps in an `osiris worker`
//! process (a child, `ssh host osiris worker --stdio`, `kubectl exec -i ...`, or a worker
//! listening on TCP) over a versioned, line-delimited JSON protocol (`docs/protocol.md`).
//!
//! [`RemoteAdapter`] is the `remote` target of the adapter contract ([`engine::Adapter`], ADR
//! 0027). The host keeps the engine's one step loop ([`engine::run_with`]) and its failure policy;
//! each step runs on the worker through the engine's own [`engine::Engine::run_step`] against
//! the worker's session directory. Secrets travel in memory only. When the run ends, the host
//! pulls `pipeline_data.duckdb` and `artifacts/` back into its session directory.
#![warn(missing_docs)]

mod host;
pub mod protocol;
pub mod worker;

pub use host::{RemoteAdapter, RemoteOptions, WorkerSpec};
