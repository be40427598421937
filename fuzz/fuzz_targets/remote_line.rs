//! The remote protocol's line decoder: `protocol::read_line` over a stream delivered in
//! chunks of a fuzzed size, then each line decoded as a host message (what the worker does)
//! and as a worker message (what the host does).
//!
//! Input: byte 0 sets the line limit (1-256 bytes), byte 1 the reader's buffer size (1-64
//! bytes); the rest is the stream.
//!
//! Invariants besides "no panic": the lines read are exactly the stream split at `\n` (a
//! final line without `\n` included), each longer than the limit reported as `Oversized` with
//! its length; a decoded message serializes to JSON that decodes again to the same JSON.
#![no_main]

use adapter_remote::protocol::{HostMessage, Line, WorkerMessage, read_line};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

/// What `read_line` must return for `stream`, line by line.
fn expected(stream: &[u8], max: usize) -> Vec<Result<&[u8], usize>> {
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    // The empty piece after a final `\n` (or of an empty stream) is the end, not a line.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| if l.len() > max { Err(l.len()) } else { Ok(l) })
        .collect()
}

fn round_trips<T: serde::Serialize + serde::de::DeserializeOwned>(message: &T) {
    let json = serde_json::to_value(message).expect("a decoded message serializes");
    let again: T = serde_json::from_value(json.clone()).expect("a serialized message decodes");
    assert_eq!(serde_json::to_value(&again).expect("serializes"), json);
}

fuzz_target!(|data: &[u8]| {
    let [limit, capacity, stream @ ..] = data else {
        return;
    };
    let max = usize::from(*limit) + 1;
    let capacity = usize::from(capacity % 64) + 1;
    let mut reader = tokio::io::BufReader::with_capacity(capacity, stream);
    let mut got = Vec::new();
    runtime().block_on(async {
        loop {
            match read_line(&mut reader, max)
                .await
                .expect("reading a slice never fails")
            {
                Line::Eof => break,
                Line::Text(text) => got.push(Ok(text)),
                Line::Oversized(n) => got.push(Err(n)),
            }
            assert!(got.len() <= stream.len() + 1, "read_line does not advance");
        }
    });
    let want: Vec<Result<Vec<u8>, usize>> = expected(stream, max)
        .into_iter()
        .map(|l| l.map(<[u8]>::to_vec))
        .collect();
    assert_eq!(got, want);

    for text in got.iter().filter_map(|l| l.as_ref().ok()) {
        if let Ok(message) = serde_json::from_slice::<HostMessage>(text) {
            round_trips(&message);
        }
        if let Ok(message) = serde_json::from_slice::<WorkerMessage>(text) {
            round_trips(&message);
        }
        let _ = serde_json::from_slice::<Value>(text);
    }
});
