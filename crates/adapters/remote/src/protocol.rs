//! The wire protocol between a host (`osiris run --target remote`) and a worker
//! (`osiris worker`): one JSON object per line (UTF-8, `\n`-terminated), every object tagged
//! with `"type"`. Documented message by message in `docs/protocol.md`.

use std::collections::BTreeMap;

use engine::StepReport;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// Version of this protocol. Host and worker must speak the same one.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest accepted message (one line), in bytes. Longer lines are discarded and answered with
/// an `error` (`oversized`); file chunks are far smaller.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Raw bytes per `file_chunk` (base64 makes the line about 4/3 of this).
pub const CHUNK_BYTES: usize = 512 * 1024;

/// Messages from the host to the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HostMessage {
    /// First message on a TCP connection: the shared token (`--token-file`).
    Auth {
        /// The token.
        token: String,
    },
    /// The plan to run, with resolved step configs (secrets in memory only).
    Prepare(Box<Prepare>),
    /// Run one step of the prepared plan.
    ExecStep {
        /// The step id.
        step_id: String,
        /// Tables of earlier steps the step reads.
        #[serde(default)]
        inputs: Vec<InputRef>,
    },
    /// Cancel the running step (if any).
    Cancel {
        /// Why: `user` (Ctrl-C on the host) or `timeout` (--step-timeout).
        reason: String,
    },
    /// Liveness check; answered by `pong` with the same nonce.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// The run is over: close the run database. Answered by `cleaned`.
    Cleanup,
    /// Send the run database and artifacts back (`file_begin`/`file_chunk`/`file_end`, then
    /// `pull_done`).
    Pull,
    /// End the session; answered by `bye`.
    Shutdown {
        /// Remove the worker's session directory (after a successful pull).
        #[serde(default)]
        remove_session: bool,
    },
}

/// The `prepare` message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prepare {
    /// Session id (the host's; the worker uses it for its own session directory).
    pub session_id: String,
    /// Directory relative paths resolve against, as on the host.
    pub base_dir: String,
    /// The plan, steps in execution order (as in `manifest.yaml`).
    pub plan: pipeline::Plan,
    /// One resolved config per plan step, same order.
    pub steps: Vec<StepConfig>,
    /// Secret values to scrub from everything the worker writes or sends.
    pub secrets: Vec<String>,
    /// Digest of the component specs the plan uses ([`specs_digest`]).
    pub specs_digest: String,
}

/// A step's resolved driver config.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// The step id.
    pub step_id: String,
    /// Driver config with connection fields merged in (may hold secrets).
    pub config: Map<String, Value>,
    /// The connection used (`@family.alias`), if any.
    #[serde(default)]
    pub connection: Option<String>,
    /// Config keys holding secrets (masked in `cleaned_config.json`).
    #[serde(default)]
    pub secret_keys: Vec<String>,
    /// The incremental state stored by earlier runs for this step (ADR 0017), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// Where the step's multi-line values are in the host's pipeline file (error positions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<pipeline::SourceLines>,
}

impl std::fmt::Debug for StepConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepConfig")
            .field("step_id", &self.step_id)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A table of an earlier step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputRef {
    /// The earlier step.
    pub step_id: String,
    /// Its table in the run database.
    pub table: String,
    /// Its row count.
    pub rows: u64,
}

/// Messages from the worker to the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// First message of the worker.
    Hello {
        /// Protocol version ([`PROTOCOL_VERSION`]).
        protocol: u32,
        /// The worker's `osiris` version.
        worker_version: String,
        /// The worker's component registry fingerprint.
        registry_fingerprint: String,
        /// How often the worker sends `heartbeat`.
        heartbeat_ms: u64,
        /// The worker's process id.
        pid: u32,
    },
    /// `prepare` succeeded.
    Prepared {
        /// Session id.
        session_id: String,
        /// The worker's session directory.
        session_dir: String,
    },
    /// One line of the worker's `events.jsonl` (secrets scrubbed).
    Event {
        /// The record.
        record: Map<String, Value>,
    },
    /// One line of the worker's `metrics.jsonl` (secrets scrubbed).
    Metric {
        /// The record.
        record: Map<String, Value>,
    },
    /// Sent every `heartbeat_ms` while the worker is alive.
    Heartbeat {
        /// The step running, if any.
        #[serde(default)]
        step_id: Option<String>,
    },
    /// The result of `exec_step`.
    StepResult(StepReport),
    /// Answer to `cleanup`.
    Cleaned {
        /// Files `pull` would send, path -> size in bytes.
        files: BTreeMap<String, u64>,
    },
    /// A pulled file starts.
    FileBegin {
        /// Path relative to the session directory.
        path: String,
        /// Size in bytes.
        size: u64,
    },
    /// A piece of the current pulled file.
    FileChunk {
        /// Path relative to the session directory.
        path: String,
        /// The bytes, base64 (standard alphabet, padded).
        data: String,
    },
    /// The current pulled file is complete.
    FileEnd {
        /// Path relative to the session directory.
        path: String,
        /// `sha256:<hex>` of the file.
        sha256: String,
    },
    /// Every file was sent.
    PullDone {
        /// Number of files.
        files: u64,
        /// Total bytes.
        bytes: u64,
    },
    /// Answer to `ping`.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// A request could not be handled (the worker keeps running unless the code says otherwise).
    Error {
        /// `malformed`, `oversized`, `unexpected`, `busy`, `unauthorized`, `specs_mismatch`,
        /// `prepare_failed`, `io`.
        code: String,
        /// What went wrong.
        message: String,
    },
    /// Answer to `shutdown`; the worker closes the stream.
    Bye,
}

/// What reading one line gave.
#[derive(Debug)]
pub enum Line {
    /// A complete line (without its `\n`).
    Text(Vec<u8>),
    /// A line longer than the limit was discarded; its length so far.
    Oversized(usize),
    /// End of stream.
    Eof,
}

/// Reads one line of at most `max` bytes. A longer line is consumed and discarded, so the
/// stream stays in sync for the next message.
pub async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    max: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut discarded = 0usize;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if discarded > 0 {
                Line::Oversized(discarded)
            } else if line.is_empty() {
                Line::Eof
            } else {
                Line::Text(line)
            });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if discarded > 0 || line.len() + chunk.len() > max {
            discarded += line.len() + chunk.len();
            line = Vec::new();
        } else {
            line.extend_from_slice(chunk);
        }
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(if discarded > 0 {
                Line::Oversized(discarded)
            } else {
                Line::Text(line)
            });
        }
    }
}

/// Writes one message as a line and flushes.
pub async fn write_message(
    writer: &mut (impl AsyncWrite + Unpin),
    message: &impl Serialize,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).expect("protocol messages serialize");
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.flush().await
}

/// The `sha256:<hex>` form a [`WorkerMessage::FileEnd`] carries, so that the worker computing
/// it and the host checking it format the digest the same way.
pub fn file_digest(hasher: sha2::Sha256) -> String {
    use sha2::Digest;
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// `sha256:` digest of the specs of the components a plan uses, so that host and worker agree
/// on every schema and default, not only on names and versions.
pub fn specs_digest(specs: &component_spec::SpecRegistry, plan: &pipeline::Plan) -> String {
    let mut names: Vec<&str> = plan.steps.iter().map(|s| s.component.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let specs: Vec<Value> = names
        .iter()
        .map(|name| specs.get(name).map_or(Value::Null, |spec| spec.raw.clone()))
        .collect();
    pipeline::compile::fingerprint(&Value::Array(specs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_discarded_and_the_stream_stays_in_sync() {
        let data = format!("{}\n{{\"a\":1}}\nshort\nlast", "x".repeat(100));
        let mut reader = tokio::io::BufReader::with_capacity(8, data.as_bytes());
        assert!(matches!(
            read_line(&mut reader, 20).await.unwrap(),
            Line::Oversized(100)
        ));
        match read_line(&mut reader, 20).await.unwrap() {
            Line::Text(t) => assert_eq!(t, b"{\"a\":1}"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(read_line(&mut reader, 20).await.unwrap(), Line::Text(t) if t == b"short")
        );
        assert!(matches!(read_line(&mut reader, 20).await.unwrap(), Line::Text(t) if t == b"last"));
        assert!(matches!(
            read_line(&mut reader, 20).await.unwrap(),
            Line::Eof
        ));
    }

    #[test]
    fn step_results_round_trip() {
        let text = r#"{"type":"step_result","step_id":"a","component":"duckdb.processor","mode":"transform","status":"failed","error_class":"duckdb","error":"boom","duration_ms":3}"#;
        let message: WorkerMessage = serde_json::from_str(text).unwrap();
        let WorkerMessage::StepResult(report) = &message else {
            panic!("{message:?}")
        };
        assert_eq!(report.step_id, "a");
        assert!(matches!(
            report.status,
            engine::StepStatus::Failed {
                error_class: driver_api::ErrorClass::Duckdb,
                ..
            }
        ));
        let back: Value = serde_json::to_value(&message).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn unknown_fields_and_types_are_rejected() {
        assert!(serde_json::from_str::<HostMessage>(r#"{"type":"ping","nonce":1,"x":2}"#).is_err());
        assert!(serde_json::from_str::<HostMessage>(r#"{"type":"rm_rf"}"#).is_err());
        assert!(serde_json::from_str::<HostMessage>(r#"{"type":"cleanup"}"#).is_ok());
    }
}
