//! Turns DuckDB's CSV errors into short messages that name the file, the line and the fix.
//!
//! DuckDB's messages end with a long dump of sniffer settings; we keep only their first lines.
//! A row with the wrong number of fields inside the sniffer's sample gives only "could not
//! detect the CSV dialect", a row later gives a line number that counts records rather than
//! physical lines when quoted values span lines, and a line over `max_line_size` is reported as
//! line 1; so on such errors [`scan`] re-reads the file (streaming, same delimiter, comment and
//! skipped lines) and finds the first physical problem: a record whose field count differs
//! from the header's, a quoted value that is not closed, or a line longer than the limit.
//!
//! Every read of the input here is bounded: the scan keeps a few counters whatever the file
//! holds (no line is ever buffered), and [`probe`] stops at the first byte of content or at a
//! skipped line longer than `max_line_size`. A line ends at LF, CRLF or a lone CR.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use driver_api::DriverError;
use driver_api::csv_errors::{csv_error_line, essential, lowercase_first};

use crate::options::Codec;

/// How the extractor asked DuckDB to read a file: what the re-scan needs to read it the same way.
#[derive(Debug, Clone)]
pub(crate) struct Dialect {
    /// The file DuckDB reads.
    pub path: PathBuf,
    /// The file as the user named it, for messages (`path` may be a decoded copy).
    pub shown: PathBuf,
    /// Its compression.
    pub codec: Codec,
    /// The encoding name as configured (for messages).
    pub encoding: &'static str,
    /// Field delimiter.
    pub delimiter: u8,
    /// Line comment prefix.
    pub comment: Option<u8>,
    /// Physical lines skipped before the header (or the first row).
    pub skip_lines: u64,
    /// Whether the first record read is a header.
    pub header: bool,
    /// The longest line (record) accepted, in bytes: DuckDB's `max_line_size`.
    pub max_line_size: u64,
}

impl Dialect {
    /// The file's bytes after decompression.
    pub(crate) fn open_bytes(&self) -> io::Result<Box<dyn Read>> {
        let file = File::open(&self.path)?;
        Ok(match self.codec {
            Codec::None => Box::new(file),
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
            Codec::Zstd => Box::new(
                ruzstd::decoding::StreamingDecoder::new(BufReader::new(file))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
            ),
            Codec::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(file))),
            Codec::Xz => Box::new(lzma_rust2::XzReader::new(BufReader::new(file), true)),
            Codec::Zip => {
                return Err(io::Error::other(
                    "a zip archive is read through with_bytes, not open_bytes",
                ));
            }
        })
    }

    /// Calls `read` with the file's bytes after decompression; for a zip archive, the bytes of
    /// its one file (an archive with more or fewer files is refused, as pandas does).
    pub(crate) fn with_bytes<T>(
        &self,
        read: impl FnOnce(&mut dyn Read) -> io::Result<T>,
    ) -> io::Result<T> {
        if self.codec != Codec::Zip {
            return read(&mut *self.open_bytes()?);
        }
        let mut archive = zip::ZipArchive::new(BufReader::new(File::open(&self.path)?))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let files: Vec<usize> = (0..archive.len())
            .filter(|&i| archive.by_index_raw(i).is_ok_and(|f| f.is_file()))
            .collect();
        let [index] = files[..] else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the zip archive holds {} files; it must hold exactly one CSV file",
                    files.len()
                ),
            ));
        };
        let mut entry = archive
            .by_index(index)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        read(&mut entry)
    }

    fn display(&self) -> String {
        self.shown.display().to_string()
    }
}

/// What the re-scan found: the first problem in the file, in file order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The first record whose field count differs from the first record's.
    Ragged {
        /// 1-based physical line where the record starts.
        line: u64,
        /// Fields in the header (or first row).
        expected: usize,
        /// Fields in this record.
        found: usize,
    },
    /// A quoted value that is never closed, or whose closing quote is followed by more text
    /// (DuckDB reports both as "unterminated quote").
    Quote {
        /// 1-based physical line where the value starts.
        line: u64,
    },
    /// A line (or a record spanning lines) longer than `max_line_size`.
    LineTooLong {
        /// 1-based physical line where it starts.
        line: u64,
        /// Its length in bytes, without the line break.
        size: u64,
    },
    /// The file ends within the lines skipped before the header.
    TooShort {
        /// Physical lines in the file.
        lines: u64,
    },
    /// Every record has the same number of fields.
    Consistent {
        /// Records end with more than one kind of line break (LF, CRLF, CR).
        mixed_line_breaks: bool,
    },
}

/// Counts physical lines, ending at LF, CRLF or a lone CR, and the length of the current one.
#[derive(Debug)]
struct Lines {
    /// 1-based number of the line the next byte belongs to.
    number: u64,
    /// Bytes of the current line so far.
    length: u64,
    after_cr: bool,
}

impl Lines {
    fn new() -> Self {
        Self {
            number: 1,
            length: 0,
            after_cr: false,
        }
    }

    /// Feeds one byte; returns whether it ends a line (the LF of a CRLF does not: the CR did).
    fn feed(&mut self, b: u8) -> bool {
        let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
        match b {
            b'\n' if after_cr => false,
            b'\n' | b'\r' => {
                self.number += 1;
                self.length = 0;
                true
            }
            _ => {
                self.length += 1;
                false
            }
        }
    }
}

/// Reads the file once, streaming, and returns its first problem (see [`Scan`]). The encodings
/// DuckDB reads directly (UTF-8, latin-1) are ASCII-compatible, so bytes suffice.
pub(crate) fn scan(dialect: &Dialect) -> io::Result<Scan> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        RecordStart,
        FieldStart,
        Unquoted,
        Quoted,
        QuoteSeen,
        Comment,
    }
    let mut reader = BufReader::with_capacity(1 << 20, dialect.open_bytes()?);
    let limit = dialect.max_line_size;
    let mut lines = Lines::new();
    // The line (or record) over the limit, and its size so far: read to its end for the size.
    let mut too_long: Option<(u64, u64)> = None;
    let mut state = State::RecordStart;
    let mut record_line = 0;
    let mut record_length = 0u64;
    let mut fields = 0usize;
    let mut opened = 0;
    let mut expected: Option<usize> = None;
    // Line breaks that ended records: LF, and CR (alone or in CRLF).
    let mut breaks = [false; 2];
    let mut previous = 0u8;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        for &b in buf {
            let line = lines.number;
            let ends_line = lines.feed(b);
            if let Some((start, size)) = &mut too_long {
                if ends_line {
                    return Ok(Scan::LineTooLong {
                        line: *start,
                        size: *size,
                    });
                }
                *size += 1;
                previous = b;
                continue;
            }
            if line <= dialect.skip_lines {
                if lines.length > limit {
                    too_long = Some((line, lines.length));
                }
                previous = b;
                continue;
            }
            let terminator = ends_line || (b == b'\n' && previous == b'\r');
            let mut end_record = false;
            state = match state {
                State::RecordStart if terminator => State::RecordStart,
                State::RecordStart if Some(b) == dialect.comment => State::Comment,
                State::Comment if ends_line => State::RecordStart,
                State::Comment => State::Comment,
                State::RecordStart | State::FieldStart => {
                    if state == State::RecordStart {
                        record_line = line;
                        record_length = 0;
                        fields = 1;
                    }
                    match b {
                        b'"' => {
                            opened = line;
                            State::Quoted
                        }
                        b'\n' | b'\r' => {
                            end_record = true;
                            State::RecordStart
                        }
                        _ if b == dialect.delimiter => {
                            fields += 1;
                            State::FieldStart
                        }
                        _ => State::Unquoted,
                    }
                }
                State::Unquoted => match b {
                    b'\n' | b'\r' => {
                        end_record = true;
                        State::RecordStart
                    }
                    _ if b == dialect.delimiter => {
                        fields += 1;
                        State::FieldStart
                    }
                    _ => State::Unquoted,
                },
                State::Quoted if b == b'"' => State::QuoteSeen,
                State::Quoted => State::Quoted,
                State::QuoteSeen => match b {
                    b'"' => State::Quoted,
                    b'\n' | b'\r' => {
                        end_record = true;
                        State::RecordStart
                    }
                    _ if b == dialect.delimiter => {
                        fields += 1;
                        State::FieldStart
                    }
                    _ => return Ok(Scan::Quote { line: opened }),
                },
            };
            if end_record {
                breaks[if b == b'\n' { 0 } else { 1 }] = true;
                if let Some(problem) = check_record(&mut expected, fields, record_line) {
                    return Ok(problem);
                }
            } else if matches!(state, State::Comment) {
                if lines.length > limit {
                    too_long = Some((line, lines.length));
                }
            } else if state != State::RecordStart {
                record_length += 1;
                if record_length > limit {
                    too_long = Some((record_line, record_length));
                }
            }
            previous = b;
        }
        let consumed = buf.len();
        reader.consume(consumed);
    }
    if let Some((line, size)) = too_long {
        return Ok(Scan::LineTooLong { line, size });
    }
    match state {
        State::Quoted => return Ok(Scan::Quote { line: opened }),
        State::FieldStart | State::Unquoted | State::QuoteSeen => {
            if let Some(problem) = check_record(&mut expected, fields, record_line) {
                return Ok(problem);
            }
        }
        State::RecordStart | State::Comment => {}
    }
    if expected.is_none() && dialect.skip_lines > 0 {
        let lines_read = lines.number - 1 + u64::from(lines.length > 0);
        return Ok(Scan::TooShort {
            lines: lines_read.min(dialect.skip_lines),
        });
    }
    Ok(Scan::Consistent {
        mixed_line_breaks: breaks.iter().filter(|b| **b).count() > 1,
    })
}

fn check_record(expected: &mut Option<usize>, found: usize, line: u64) -> Option<Scan> {
    match *expected {
        None => {
            *expected = Some(found);
            None
        }
        Some(expected) if expected != found => Some(Scan::Ragged {
            line,
            expected,
            found,
        }),
        Some(_) => None,
    }
}

/// How the file starts, looked at before DuckDB reads it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// No content at all: zero bytes, or only a byte order mark and blank lines.
    Empty,
    /// The file ends within the lines to skip before the header.
    TooShort {
        /// Physical lines in the file.
        lines: u64,
    },
    /// A line skipped before the header is longer than `max_line_size`.
    LineTooLong {
        /// 1-based physical line.
        line: u64,
    },
    /// Content follows the skipped lines, after this many blank lines.
    Content {
        /// Blank lines between the skipped lines and the header (or first row).
        blank_lines: u64,
    },
}

/// At most this many leading blank lines are counted; DuckDB handles any beyond.
const MAX_LEADING_BLANK_LINES: u64 = 10_000;

/// Reads the start of the file: skips `skip_lines` lines, then counts blank lines, and stops
/// at the first byte of content. DuckDB would take a leading blank line for the header (pandas
/// skips them). An unreadable file counts as content: DuckDB then reports what is wrong.
pub(crate) fn probe(dialect: &Dialect) -> Start {
    let Ok(reader) = dialect.open_bytes() else {
        return Start::Content { blank_lines: 0 };
    };
    let unreadable = Start::Content { blank_lines: 0 };
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut lines = Lines::new();
    const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
    let mut bom_matched = Some(0);
    // Whether the skipped lines held anything but line breaks.
    let mut skipped_content = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(_) => return unreadable,
        };
        if buf.is_empty() {
            break;
        }
        for &b in buf {
            if let Some(matched) = bom_matched {
                if matched < BOM.len() && b == BOM[matched] {
                    bom_matched = Some(matched + 1);
                    continue;
                }
                bom_matched = None;
                if matched > 0 && matched < BOM.len() {
                    // Not a byte order mark after all: those bytes were content.
                    if dialect.skip_lines == 0 {
                        return Start::Content { blank_lines: 0 };
                    }
                    skipped_content = true;
                }
            }
            let line = lines.number;
            let ends_line = lines.feed(b);
            if line <= dialect.skip_lines {
                skipped_content |= !ends_line && b != b'\n';
                if lines.length > dialect.max_line_size {
                    return Start::LineTooLong { line };
                }
            } else if ends_line || b == b'\n' {
                if lines.number - 1 - dialect.skip_lines >= MAX_LEADING_BLANK_LINES {
                    return Start::Content {
                        blank_lines: MAX_LEADING_BLANK_LINES,
                    };
                }
            } else {
                return Start::Content {
                    blank_lines: line - 1 - dialect.skip_lines,
                };
            }
        }
        let consumed = buf.len();
        reader.consume(consumed);
    }
    // The end of the file. One or two bytes of a byte order mark that never completed are
    // content on the first line, not a mark.
    let partial_bom = matches!(bom_matched, Some(1 | 2));
    if partial_bom {
        if dialect.skip_lines == 0 {
            return Start::Content { blank_lines: 0 };
        }
        skipped_content = true;
    }
    if skipped_content {
        // No content after the skipped lines. Count the lines the file has, up to the lines to
        // skip (blank lines after them are not what made it too short), as `scan` does.
        let physical = (lines.number - 1 + u64::from(lines.length > 0)).max(u64::from(partial_bom));
        Start::TooShort {
            lines: physical.min(dialect.skip_lines),
        }
    } else {
        Start::Empty
    }
}

/// Whether DuckDB's error is about the CSV file's layout (as opposed to types or I/O).
pub(crate) fn is_csv_error(error: &duckdb::Error) -> bool {
    let message = error.to_string();
    message.contains("CSV Error")
        || message.contains("Error when sniffing file")
        || message.contains("Expected Number of Columns")
        || message.contains("state machine reached an invalid state")
}

/// Explains a DuckDB error raised while reading the file of `dialect`.
pub(crate) fn explain(error: duckdb::Error, dialect: &Dialect) -> DriverError {
    let message = error.to_string();
    let path = dialect.display();
    let line = csv_error_line(&message);
    let at = |line: Option<u64>| match line {
        Some(n) => format!("{path} line {n}"),
        None => path.clone(),
    };
    if message.contains("Invalid unicode") || message.contains("byte sequence mismatch") {
        return DriverError::data(format!(
            "{}: the bytes are not valid {}; set `encoding` to the file's encoding (utf-8, utf-16 or latin-1)",
            at(line),
            dialect.encoding
        ));
    }
    if let Some(conversion) = message
        .lines()
        .find(|l| l.starts_with("Error when converting column"))
    {
        let hint = if message.contains("auto-detected") {
            "DuckDB detected the column's type from the first rows; set its type with `dtype`, e.g. VARCHAR"
        } else {
            "the type was set by `dtype` or `parse_dates`"
        };
        return DriverError::data(format!(
            "{}: {} ({hint})",
            at(line),
            lowercase_first(conversion.trim_end_matches('.'))
        ));
    }
    if message.contains("Type with name") {
        return DriverError::config("dtype", essential(&message));
    }
    let quote_problem = |line: u64| {
        DriverError::data(format!(
            "{path} line {line}: a quoted value is not closed properly: its closing quote is missing or followed by more text (a quote inside a quoted value is written twice: \"\")"
        ))
    };
    let too_long = |line: Option<u64>, size: Option<u64>| {
        DriverError::data(format!(
            "{}: {} longer than `max_line_size` ({} bytes); if the file is right, raise `max_line_size`",
            at(line),
            match size {
                Some(size) => format!("the line has {size} bytes,"),
                None => "a line is".into(),
            },
            dialect.max_line_size
        ))
    };
    let scanned = |dialect: &Dialect| {
        scan(dialect).inspect_err(|error| {
            tracing::debug!(%error, path = %path, "re-scan of a malformed CSV file failed");
        })
    };
    if message.contains("Maximum line size") {
        return match scanned(dialect) {
            Ok(Scan::LineTooLong { line, size }) => too_long(Some(line), Some(size)),
            // DuckDB's own line number counts from the start of its buffer, not the file.
            _ => too_long(None, None),
        };
    }
    if message.contains("unterminated quote") {
        return match scanned(dialect) {
            Ok(Scan::Quote { line }) => quote_problem(line),
            _ => DriverError::data(format!("{}: {}", at(line), essential(&message))),
        };
    }
    if message.contains("Expected Number of Columns")
        || message.contains("Error when sniffing file")
    {
        match scanned(dialect) {
            Ok(Scan::Ragged {
                line,
                expected,
                found,
            }) => {
                let like = if dialect.header {
                    "as in the header"
                } else {
                    "as in the first row"
                };
                return DriverError::data(format!(
                    "{path} line {line}: expected {expected} fields ({like}), found {found}"
                ));
            }
            Ok(Scan::TooShort { lines }) => return too_short(dialect, lines),
            Ok(Scan::Quote { line }) => return quote_problem(line),
            Ok(Scan::LineTooLong { line, size }) => return too_long(Some(line), Some(size)),
            Ok(Scan::Consistent { .. }) | Err(_) => {}
        }
        if line.is_none() {
            return DriverError::data(format!(
                "{path}: DuckDB finds no consistent CSV layout in the first rows with delimiter {:?}, quote '\"' and {}; check `delimiter`, `skip_rows`, `header` and `encoding`",
                char::from(dialect.delimiter),
                match dialect.comment {
                    Some(c) => format!("comment prefix {:?}", char::from(c)),
                    None => "no comment prefix".into(),
                },
            ));
        }
    }
    if message.contains("CSV Error") || message.contains("CSV File") {
        return DriverError::data(format!("{}: {}", at(line), essential(&message)));
    }
    if message.starts_with("IO Error") {
        return DriverError::Io {
            message: format!("{path}: {}", essential(&message)),
            source: None,
        };
    }
    DriverError::duckdb(format!("cannot read {path}"), error)
}

/// The file ends before the header (or first row): `skip_rows` or `header` is too large.
pub(crate) fn too_short(dialect: &Dialect, lines: u64) -> DriverError {
    DriverError::data(format!(
        "{} has {lines} lines, but {} lines are skipped before the {} (`skip_rows` and `header`)",
        dialect.display(),
        dialect.skip_lines,
        if dialect.header {
            "header"
        } else {
            "first row"
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialect(dir: &std::path::Path, name: &str, content: &[u8]) -> Dialect {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        Dialect {
            shown: path.clone(),
            path,
            codec: Codec::None,
            encoding: "utf-8",
            delimiter: b',',
            comment: None,
            skip_lines: 0,
            header: true,
            max_line_size: 2_000_000,
        }
    }

    #[test]
    fn rescan_counts_physical_lines_across_quoted_newlines_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let d = dialect(dir.path(), "a.csv", b"a,b\n1,\"x\ny\"\n\n2,3\n4,5,6\n");
        assert_eq!(
            scan(&d).unwrap(),
            Scan::Ragged {
                line: 6,
                expected: 2,
                found: 3
            }
        );
    }

    #[test]
    fn rescan_honours_skipped_lines_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = dialect(dir.path(), "a.csv", b"junk,junk,junk\na;b\n#x\n1;2\n3\n");
        d.delimiter = b';';
        d.comment = Some(b'#');
        d.skip_lines = 1;
        assert_eq!(
            scan(&d).unwrap(),
            Scan::Ragged {
                line: 5,
                expected: 2,
                found: 1
            }
        );
        d.skip_lines = 9;
        assert_eq!(scan(&d).unwrap(), Scan::TooShort { lines: 5 });
    }

    #[test]
    fn probe_finds_empty_files_and_leading_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(&dialect(dir.path(), "a", b"")), Start::Empty);
        assert_eq!(
            probe(&dialect(dir.path(), "b", b"\xEF\xBB\xBF\n\r\n")),
            Start::Empty
        );
        assert_eq!(
            probe(&dialect(dir.path(), "c", b"\n\r\na,b\n")),
            Start::Content { blank_lines: 2 }
        );
        let mut d = dialect(dir.path(), "d", b"title\n\na,b\n1,2\n");
        d.skip_lines = 1;
        assert_eq!(probe(&d), Start::Content { blank_lines: 1 });
        d.skip_lines = 5;
        assert_eq!(probe(&d), Start::TooShort { lines: 4 });
    }

    #[test]
    fn quote_errors_name_the_line_where_the_value_starts() {
        let dir = tempfile::tempdir().unwrap();
        let unclosed = dialect(dir.path(), "u", b"a,b\n1,\"ok\"\"\"\n2,\"x\n3,4\n");
        assert_eq!(scan(&unclosed).unwrap(), Scan::Quote { line: 3 });
        let trailing = dialect(dir.path(), "t", b"a,b\n\"x\ny\",1\n2,\"z\"w\n");
        assert_eq!(scan(&trailing).unwrap(), Scan::Quote { line: 4 });
        let fine = dialect(dir.path(), "f", b"a,b\r\n\"x\",\r\n1,ab\"c\n");
        assert_eq!(
            scan(&fine).unwrap(),
            Scan::Consistent {
                mixed_line_breaks: true
            }
        );
    }

    #[test]
    fn scan_counts_lone_cr_as_a_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let d = dialect(dir.path(), "cr", b"a,b\r1,2\r3\r");
        assert_eq!(
            scan(&d).unwrap(),
            Scan::Ragged {
                line: 3,
                expected: 2,
                found: 1
            }
        );
        let crlf = dialect(dir.path(), "crlf", b"a,b\r\n1,2\r\n");
        assert_eq!(
            scan(&crlf).unwrap(),
            Scan::Consistent {
                mixed_line_breaks: false
            }
        );
    }

    #[test]
    fn scan_finds_the_line_over_max_line_size_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = b"a\n1\n2\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 100));
        content.extend(b"\n3\n");
        let mut d = dialect(dir.path(), "long", &content);
        d.max_line_size = 50;
        assert_eq!(scan(&d).unwrap(), Scan::LineTooLong { line: 4, size: 100 });
        // Without any line break the whole file is one line: bounded memory, exact size.
        let mut d = dialect(dir.path(), "flat", &[b'z'; 5000]);
        d.max_line_size = 50;
        assert_eq!(
            scan(&d).unwrap(),
            Scan::LineTooLong {
                line: 1,
                size: 5000
            }
        );
    }

    #[test]
    fn probe_stops_at_content_and_bounds_skipped_lines() {
        let dir = tempfile::tempdir().unwrap();
        // A first line with no end: the probe reads only its first byte.
        let d = dialect(dir.path(), "flat", &[b'z'; 100_000]);
        assert_eq!(probe(&d), Start::Content { blank_lines: 0 });
        let mut d = dialect(dir.path(), "skip", &[b'z'; 100_000]);
        d.skip_lines = 1;
        d.max_line_size = 1000;
        assert_eq!(probe(&d), Start::LineTooLong { line: 1 });
        let mut d = dialect(dir.path(), "cr", b"title\r\ra,b\r1,2\r");
        d.skip_lines = 1;
        assert_eq!(probe(&d), Start::Content { blank_lines: 1 });
    }

    #[test]
    fn fuzz_regression_probe_counts_only_the_skipped_lines_of_a_short_file() {
        // fuzz/regressions/csv_diagnose/probe_too_short_counts_blank_lines: "has 3 lines, but
        // 1 lines are skipped" was reported for a file whose skipped line is all it holds.
        let dir = tempfile::tempdir().unwrap();
        let mut d = dialect(dir.path(), "short", b"title\n\n\n");
        d.skip_lines = 1;
        assert_eq!(probe(&d), Start::TooShort { lines: 1 });
        let mut d = dialect(dir.path(), "shorter", b"title\n");
        d.skip_lines = 3;
        assert_eq!(probe(&d), Start::TooShort { lines: 1 });
    }

    #[test]
    fn fuzz_regression_a_partial_byte_order_mark_is_content() {
        // fuzz/regressions/csv_diagnose/probe_partial_bom_is_empty: one or two bytes of a BOM
        // at the end of the file were held back and the file reported as empty.
        let dir = tempfile::tempdir().unwrap();
        for bytes in [&b"\xEF"[..], b"\xEF\xBB"] {
            let d = dialect(dir.path(), "bom", bytes);
            assert_eq!(probe(&d), Start::Content { blank_lines: 0 });
            let mut d = dialect(dir.path(), "bom-skip", bytes);
            d.skip_lines = 2;
            assert_eq!(probe(&d), Start::TooShort { lines: 1 });
        }
        // A whole mark and nothing else is an empty file.
        let d = dialect(dir.path(), "bom-only", b"\xEF\xBB\xBF");
        assert_eq!(probe(&d), Start::Empty);
    }
}
