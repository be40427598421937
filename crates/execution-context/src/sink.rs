//! Append-only JSON-lines files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Error, Result};

/// One JSONL file, opened on first append. Each line goes out in a single `write` so that
/// concurrent writers (steps on several threads) never interleave within a line.
pub(crate) struct JsonlSink {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl JsonlSink {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: Mutex::new(None),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn append(&self, line: &str) -> Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|source| self.io_error("cannot open", source))?;
            *guard = Some(file);
        }
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        guard
            .as_mut()
            .expect("file was just opened")
            .write_all(buf.as_bytes())
            .map_err(|source| self.io_error("cannot append to", source))
    }

    fn io_error(&self, action: &'static str, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}
