//! Turns DuckDB's CSV errors into short messages that name the file, the line and the fix.
//!
//! DuckDB's messages end with a long dump of sniffer settings; we keep only their first lines.
//! A row with the wrong number of fields inside the sniffer's sample gives only "could not
//! detect the CSV dialect", and a row later gives a line number that counts records rather
//! than physical lines when quoted values span lines; so for field-count errors we re-scan the
//! file with the `csv` crate (streaming, same delimiter, comment and skipped lines) to find the
//! first record whose field count differs from the header's; a scan of the quoting finds the
//! line where an unclosed quoted value starts.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use driver_api::DriverError;

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
        })
    }

    fn display(&self) -> String {
        self.shown.display().to_string()
    }
}

/// What the re-scan found.
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
    /// The file ends within the lines skipped before the header.
    TooShort {
        /// Physical lines in the file.
        lines: u64,
    },
    /// Every record has the same number of fields.
    Consistent,
}

/// Re-reads the file as CSV and finds the first record with a different field count. The
/// encodings DuckDB reads directly (UTF-8, latin-1) are ASCII-compatible, so bytes suffice.
pub(crate) fn rescan(dialect: &Dialect) -> io::Result<Scan> {
    let mut reader = BufReader::with_capacity(1 << 20, dialect.open_bytes()?);
    let mut skipped = 0u64;
    let mut line = Vec::new();
    while skipped < dialect.skip_lines {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(Scan::TooShort { lines: skipped });
        }
        skipped += 1;
    }
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(dialect.delimiter)
        .quote(b'"')
        .double_quote(true)
        .comment(dialect.comment)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut expected = None;
    while csv.read_byte_record(&mut record).map_err(csv_io)? {
        let found = record.len();
        // DuckDB skips blank lines; the csv crate reports them as one empty field.
        if found == 1 && record[0].is_empty() && expected.is_some_and(|e| e > 1) {
            continue;
        }
        let Some(expected) = expected else {
            expected = Some(found);
            continue;
        };
        if found != expected {
            let line = record.position().map_or(0, |p| p.line());
            return Ok(Scan::Ragged {
                line: skipped + line,
                expected,
                found,
            });
        }
    }
    Ok(if expected.is_none() && dialect.skip_lines > 0 {
        Scan::TooShort { lines: skipped }
    } else {
        Scan::Consistent
    })
}

fn csv_io(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
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
    /// Content follows the skipped lines, after this many blank lines.
    Content {
        /// Blank lines between the skipped lines and the header (or first row).
        blank_lines: u64,
    },
}

/// At most this many leading blank lines are counted; DuckDB handles any beyond.
const MAX_LEADING_BLANK_LINES: u64 = 10_000;

/// Reads the start of the file: skips `skip_lines` lines, then counts blank lines. DuckDB
/// would take a leading blank line for the header (pandas skips them). An unreadable file
/// counts as content: DuckDB then reports what is wrong with it.
pub(crate) fn probe(dialect: &Dialect) -> Start {
    let Ok(reader) = dialect.open_bytes() else {
        return Start::Content { blank_lines: 0 };
    };
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line = Vec::new();
    let mut number = 0u64;
    // Some(blank) per line, None at the end; a read error ends the probe.
    let mut next_line = |line: &mut Vec<u8>| -> io::Result<Option<bool>> {
        line.clear();
        if reader.read_until(b'\n', line)? == 0 {
            return Ok(None);
        }
        let mut text: &[u8] = line;
        if number == 0 {
            text = text.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(text);
        }
        number += 1;
        Ok(Some(text.iter().all(|b| matches!(b, b'\r' | b'\n'))))
    };
    let unreadable = Start::Content { blank_lines: 0 };
    let mut all_blank = true;
    for lines in 0..dialect.skip_lines {
        match next_line(&mut line) {
            Err(_) => return unreadable,
            Ok(None) if all_blank => return Start::Empty,
            Ok(None) => return Start::TooShort { lines },
            Ok(Some(blank)) => all_blank &= blank,
        }
    }
    let mut blank_lines = 0;
    while blank_lines < MAX_LEADING_BLANK_LINES {
        match next_line(&mut line) {
            Err(_) => return unreadable,
            Ok(None) if all_blank => return Start::Empty,
            Ok(None) => {
                return Start::TooShort {
                    lines: dialect.skip_lines + blank_lines,
                };
            }
            Ok(Some(true)) => blank_lines += 1,
            Ok(Some(false)) => break,
        }
    }
    Start::Content { blank_lines }
}

/// Finds a quoted value that is never closed, or whose closing quote is followed by more text
/// (DuckDB reports both as "unterminated quote"); returns the physical line where the value
/// starts.
pub(crate) fn find_quote_error(dialect: &Dialect) -> io::Result<Option<u64>> {
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
    let mut line = Vec::new();
    for _ in 0..dialect.skip_lines {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
    }
    let mut number = dialect.skip_lines + 1;
    let mut opened = 0;
    let mut state = State::RecordStart;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((state == State::Quoted).then_some(opened));
        }
        for &b in buf {
            if b == b'\n' {
                number += 1;
            }
            state = match state {
                State::RecordStart if Some(b) == dialect.comment => State::Comment,
                State::Comment if b == b'\n' => State::RecordStart,
                State::Comment => State::Comment,
                State::RecordStart | State::FieldStart => match b {
                    b'"' => {
                        opened = number;
                        State::Quoted
                    }
                    b'\n' => State::RecordStart,
                    b'\r' => state,
                    _ if b == dialect.delimiter => State::FieldStart,
                    _ => State::Unquoted,
                },
                State::Unquoted => match b {
                    b'\n' => State::RecordStart,
                    _ if b == dialect.delimiter => State::FieldStart,
                    _ => State::Unquoted,
                },
                State::Quoted if b == b'"' => State::QuoteSeen,
                State::Quoted => State::Quoted,
                State::QuoteSeen => match b {
                    b'"' => State::Quoted,
                    b'\n' => State::RecordStart,
                    b'\r' => State::Unquoted,
                    _ if b == dialect.delimiter => State::FieldStart,
                    _ => return Ok(Some(opened)),
                },
            };
        }
        let consumed = buf.len();
        reader.consume(consumed);
    }
}

/// Explains a DuckDB error raised while reading the file of `dialect`.
pub(crate) fn explain(error: duckdb::Error, dialect: &Dialect) -> DriverError {
    let message = error.to_string();
    let path = dialect.display();
    let line = duckdb_line(&message);
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
    if message.contains("unterminated quote") {
        return match find_quote_error(dialect) {
            Ok(Some(line)) => quote_problem(line),
            _ => DriverError::data(format!("{}: {}", at(line), essential(&message))),
        };
    }
    if message.contains("Expected Number of Columns")
        || message.contains("Error when sniffing file")
    {
        match rescan(dialect) {
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
            Ok(Scan::Consistent) => {
                if let Ok(Some(line)) = find_quote_error(dialect) {
                    return quote_problem(line);
                }
            }
            Err(error) => {
                tracing::debug!(%error, path = %path, "re-scan of a malformed CSV file failed");
            }
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

/// The line number in DuckDB's "CSV Error on Line: N".
fn duckdb_line(message: &str) -> Option<u64> {
    let rest = &message[message.find("CSV Error on Line: ")? + "CSV Error on Line: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The informative part of a DuckDB error: its known message lines, or else its first line;
/// without the line-number prefix, the echo of the line (which may itself span lines), the
/// "Possible fixes" and the dump of reader settings.
pub(crate) fn essential(message: &str) -> String {
    const KNOWN: [&str; 6] = [
        "Expected Number of Columns",
        "Value with unterminated quote",
        "Invalid unicode",
        "Error when converting column",
        "Maximum line size",
        "It was not possible",
    ];
    let known: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| KNOWN.iter().any(|k| l.starts_with(k)))
        .collect();
    if !known.is_empty() {
        return known.join("; ");
    }
    let mut first = message.lines().next().unwrap_or_default().trim();
    for prefix in [
        "Invalid Input Error: ",
        "Conversion Error: ",
        "Binder Error: ",
        "Catalog Error: ",
        "IO Error: ",
    ] {
        first = first.strip_prefix(prefix).unwrap_or(first);
    }
    if first.starts_with("CSV Error on Line") {
        // The message follows the echo of the offending line.
        if let Some(next) = message
            .lines()
            .skip(1)
            .map(str::trim)
            .take_while(|l| !l.starts_with("Possible"))
            .find(|l| !l.is_empty() && !l.starts_with("Original Line:"))
        {
            return next.to_owned();
        }
    }
    first.to_owned()
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
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
        }
    }

    #[test]
    fn rescan_counts_physical_lines_across_quoted_newlines_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let d = dialect(dir.path(), "a.csv", b"a,b\n1,\"x\ny\"\n\n2,3\n4,5,6\n");
        assert_eq!(
            rescan(&d).unwrap(),
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
            rescan(&d).unwrap(),
            Scan::Ragged {
                line: 5,
                expected: 2,
                found: 1
            }
        );
        d.skip_lines = 9;
        assert_eq!(rescan(&d).unwrap(), Scan::TooShort { lines: 5 });
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
        assert_eq!(find_quote_error(&unclosed).unwrap(), Some(3));
        let trailing = dialect(dir.path(), "t", b"a,b\n\"x\ny\",1\n2,\"z\"w\n");
        assert_eq!(find_quote_error(&trailing).unwrap(), Some(4));
        let fine = dialect(dir.path(), "f", b"a,b\r\n\"x\"\r\n1,ab\"c\n");
        assert_eq!(find_quote_error(&fine).unwrap(), None);
    }

    #[test]
    fn essential_keeps_the_message_and_drops_the_settings_dump() {
        let message = "Invalid Input Error: CSV Error on Line: 30002\nOriginal Line: 1,2,3\nExpected Number of Columns: 2 Found: 3\nPossible fixes:\n* Enable null padding\n\n  file = bad2.csv\n  delimiter = , (Set By User)";
        assert_eq!(essential(message), "Expected Number of Columns: 2 Found: 3");
        assert_eq!(duckdb_line(message), Some(30002));
        let multi_line_echo = "Invalid Input Error: CSV Error on Line: 7\nOriginal Line: 1,\"x\n2,3\n\nValue with unterminated quote found.\n\nPossible fixes:";
        assert_eq!(
            essential(multi_line_echo),
            "Value with unterminated quote found."
        );
    }
}
