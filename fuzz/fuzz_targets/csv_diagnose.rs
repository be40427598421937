//! CSV diagnosis (`crates/drivers/csv/src/diagnose.rs`): what the CSV extractor runs on a
//! user's file before DuckDB reads it (`probe`) and after DuckDB rejects it (`rescan`,
//! `find_quote_error`, `explain`). The module is private to `driver-csv`, so this target
//! compiles its source file directly (with a stand-in for the one type it borrows from
//! `options`), and writes each input to a scratch file, as the module reads files.
//!
//! Input: byte 0 picks the dialect (delimiter, comment prefix, header, codec), byte 1 the
//! number of lines to skip; the rest is the file. The file's text also serves as a DuckDB
//! error message for `explain`/`essential`, which parse DuckDB's messages (they echo the
//! user's line).
//!
//! Invariants besides "no panic": a ragged record is reported after the skipped lines and
//! with a field count different from the expected one; a quote error's line exists in the file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
mod options {
    /// Stand-in for `driver_csv::options::Codec`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Codec {
        None,
        Gzip,
        Zstd,
    }
}

#[allow(dead_code)]
#[path = "../../crates/drivers/csv/src/diagnose.rs"]
mod diagnose;

use diagnose::{Dialect, Scan, Start};
use options::Codec;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("osiris-fuzz-diagnose-{}.csv", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let [control, skip, file @ ..] = data else {
        return;
    };
    let delimiter = [b',', b';', b'\t', b'|'][usize::from(control & 0b11)];
    let comment = [None, Some(b'#'), Some(b';'), Some(b',')][usize::from((control >> 2) & 0b11)];
    let header = control & 0b1_0000 != 0;
    let codec = match control >> 5 {
        0 => Codec::Gzip,
        1 => Codec::Zstd,
        _ => Codec::None,
    };
    std::fs::write(scratch(), file).expect("write the scratch file");
    let dialect = Dialect {
        path: scratch().clone(),
        shown: PathBuf::from("data/input.csv"),
        codec,
        encoding: "utf-8",
        delimiter,
        comment,
        skip_lines: u64::from(skip % 8),
        header,
    };
    let newlines = file.iter().filter(|&&b| b == b'\n').count() as u64;

    match diagnose::probe(&dialect) {
        Start::Empty | Start::Content { .. } => {}
        Start::TooShort { lines } => {
            assert!(lines <= dialect.skip_lines + 10_000, "{lines} lines")
        }
    }
    if let Ok(Scan::Ragged {
        line,
        expected,
        found,
    }) = diagnose::rescan(&dialect)
    {
        assert_ne!(expected, found);
        assert!(line > dialect.skip_lines, "line {line} is a skipped line");
        if codec == Codec::None {
            assert!(line <= newlines + 1, "line {line} of {newlines} newlines");
        }
    }
    if let Ok(Some(line)) = diagnose::find_quote_error(&dialect) {
        assert!(line > dialect.skip_lines, "line {line} is a skipped line");
        if codec == Codec::None {
            assert!(line <= newlines + 1, "line {line} of {newlines} newlines");
        }
    }
    let _ = diagnose::too_short(&dialect, newlines).to_string();

    let message = String::from_utf8_lossy(file).into_owned();
    let _ = diagnose::essential(&message);
    let error = duckdb::Error::DuckDBFailure(duckdb::ffi::Error::new(1), Some(message));
    let _ = diagnose::explain(error, &dialect).to_string();
});
