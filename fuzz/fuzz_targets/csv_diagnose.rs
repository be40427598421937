//! CSV diagnosis (`crates/drivers/csv/src/diagnose.rs`): what the CSV extractor runs on a
//! user's file before DuckDB reads it (`probe`) and after DuckDB rejects it (`scan`,
//! `explain`). The module is private to `driver-csv`, so this target compiles its source file
//! directly (with a stand-in for the one type it borrows from `options`), and writes each input
//! to a scratch file, as the module reads files.
//!
//! Input: byte 0 picks the dialect (delimiter, comment prefix, header, codec), byte 1 the
//! number of lines to skip (bits 0-2) and `max_line_size` (bits 3-5: 0 is the default, 2 MB,
//! the others a few bytes so that over-long lines are common); the rest is the file. The file's
//! text also serves as a DuckDB error message for `explain`/`essential`, which parse DuckDB's
//! messages (they echo the user's line).
//!
//! Invariants besides "no panic", checked against the file's bytes after decompression (read
//! with `Dialect::with_bytes`) split into physical lines at LF, CRLF or a lone CR, as the
//! module counts them:
//! - `scan`: a ragged record, a quote error or an over-long record starts on a line that exists,
//!   is not empty and comes after the skipped lines; a ragged record's field count differs from
//!   the expected one; a quote error's line holds a quote; an over-long line is reported with
//!   its size, which is over the limit and runs from the start of its line to a line end (a
//!   record may span lines); a file too short is reported with at most the skipped lines.
//! - `probe`: an over-long skipped line is a skipped line over the limit; content starts on a
//!   non-empty line after the reported blank lines; an empty file holds only a byte order mark
//!   and line breaks; a file too short is reported with at most the skipped lines.
#![no_main]

use std::io::Read;
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
        Bzip2,
        Xz,
        Zip,
    }
}

#[allow(dead_code)]
#[path = "../../crates/drivers/csv/src/diagnose.rs"]
mod diagnose;

use diagnose::{Dialect, Scan, Start};
use options::Codec;

/// `max_line_size` by bits 3-5 of byte 1.
const LIMITS: [u64; 8] = [2_000_000, 1, 2, 3, 5, 8, 16, 64];

/// Decompressed files larger than this are scanned but not checked against their lines.
const MAX_CHECKED: u64 = 16 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("osiris-fuzz-diagnose-{}.csv", std::process::id()))
    })
}

/// The file's physical lines: `starts[i]` and `ends[i]` are the byte offsets of line i + 1's
/// first byte and of its line break (or the end of the file).
struct Lines<'a> {
    bytes: &'a [u8],
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let (mut starts, mut ends) = (vec![0], Vec::new());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\r' | b'\n' => {
                    ends.push(i);
                    i += 1 + usize::from(bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n'));
                    starts.push(i);
                }
                _ => i += 1,
            }
        }
        ends.push(bytes.len());
        Self {
            bytes,
            starts,
            ends,
        }
    }

    fn count(&self) -> u64 {
        self.starts.len() as u64
    }

    /// Line `n` (1-based), without its line break.
    fn line(&self, n: u64) -> &'a [u8] {
        assert!(
            (1..=self.count()).contains(&n),
            "line {n} of a file of {} lines",
            self.count()
        );
        let i = (n - 1) as usize;
        &self.bytes[self.starts[i]..self.ends[i]]
    }
}

fuzz_target!(|data: &[u8]| {
    let [control, sizes, file @ ..] = data else {
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
        skip_lines: u64::from(sizes & 0b111),
        header,
        max_line_size: LIMITS[usize::from((sizes >> 3) & 0b111)],
    };
    let skip = dialect.skip_lines;
    let limit = dialect.max_line_size;

    // The bytes the module reads, when the decompression succeeds and they are not too many.
    let content = dialect
        .with_bytes(|reader| {
            let mut bytes = Vec::new();
            reader.take(MAX_CHECKED + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        })
        .ok()
        .filter(|bytes| bytes.len() as u64 <= MAX_CHECKED);
    let lines = content.as_deref().map(Lines::new);

    let start = diagnose::probe(&dialect);
    if let Some(lines) = &lines {
        match start {
            Start::Empty => {
                let rest = lines.bytes.strip_prefix(BOM).unwrap_or(lines.bytes);
                assert!(
                    rest.iter().all(|b| matches!(b, b'\r' | b'\n')),
                    "probe: empty, but the file has content"
                );
            }
            Start::TooShort { lines: n } => {
                // `too_short` says the file has n lines while more are skipped: as in `scan`.
                assert!(n <= skip, "probe: too short with {n} lines, {skip} skipped");
                assert!(n <= lines.count(), "probe: too short with {n} lines");
            }
            Start::LineTooLong { line } => {
                assert!(line <= skip, "probe: line {line} over the limit is not skipped");
                let length = lines.line(line).len() as u64;
                assert!(length > limit, "probe: line {line} has {length} bytes");
            }
            Start::Content { blank_lines } => {
                assert!(blank_lines <= 10_000, "probe: {blank_lines} blank lines");
                if blank_lines < 10_000 {
                    for n in skip + 1..=skip + blank_lines {
                        let line = lines.line(n);
                        assert!(
                            line.is_empty() || (n == 1 && line == BOM),
                            "probe: line {n} is not blank"
                        );
                    }
                    assert!(
                        !lines.line(skip + blank_lines + 1).is_empty(),
                        "probe: content on an empty line"
                    );
                }
            }
        }
    }

    let scanned = diagnose::scan(&dialect);
    if let (Ok(found), Some(lines)) = (&scanned, &lines) {
        let starts_record = |line: u64| {
            assert!(line > skip, "scan: line {line} is a skipped line");
            assert!(!lines.line(line).is_empty(), "scan: line {line} is empty");
        };
        match *found {
            Scan::Ragged {
                line,
                expected,
                found,
            } => {
                starts_record(line);
                assert_ne!(expected, found, "scan: ragged record on line {line}");
            }
            Scan::Quote { line } => {
                starts_record(line);
                assert!(
                    lines.line(line).contains(&b'"'),
                    "scan: quote error on line {line}, which has no quote"
                );
            }
            Scan::LineTooLong { line, size } => {
                assert!(size > limit, "scan: line {line} of {size} bytes is not too long");
                let first = lines.line(line).len() as u64;
                assert!(size >= first, "scan: line {line} has {first} bytes, reported {size}");
                let end = lines.starts[(line - 1) as usize] as u64 + size;
                assert!(
                    lines.ends.binary_search(&(end as usize)).is_ok(),
                    "scan: {size} bytes from the start of line {line} end within a line"
                );
            }
            Scan::TooShort { lines: n } => {
                assert!(n <= skip, "scan: too short with {n} lines, {skip} skipped");
                assert!(n <= lines.count(), "scan: too short with {n} lines");
            }
            Scan::Consistent { .. } => {}
        }
    }
    if let Start::TooShort { lines } | Start::LineTooLong { line: lines } = start {
        let _ = diagnose::too_short(&dialect, lines).to_string();
    }

    let message = String::from_utf8_lossy(file).into_owned();
    let _ = diagnose::essential(&message);
    let error = duckdb::Error::DuckDBFailure(duckdb::ffi::Error::new(1), Some(message));
    let _ = diagnose::is_csv_error(&error);
    let _ = diagnose::explain(error, &dialect).to_string();
});
