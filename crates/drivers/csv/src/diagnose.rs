//! Turns DuckDB's CSV errors into short messages that name the file, the line and the fix.
//!
//! DuckDB's messages end with a long dump of sniffer settings; we keep only their first lines.
//! A row with the wrong number of fields inside the sniffer's sample gives only "could not
//! detect the CSV dialect", and a row later gives a line number that counts records rather
//! than physical lines when quoted values span lines; so for field-count errors we re-scan the
//! file with the `csv` crate (streaming, same delimiter, comment and skipped lines) to find the
//! first record whose field count differs from the header's.

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
            Ok(Scan::TooShort { lines }) => {
                return DriverError::data(format!(
                    "{path} has {lines} lines, but {} lines are skipped before the {} (`skip_rows` and `header`)",
                    dialect.skip_lines,
                    if dialect.header {
                        "header"
                    } else {
                        "first row"
                    }
                ));
            }
            Ok(Scan::Consistent) => {}
            Err(error) => {
                tracing::debug!(%error, path = %path, "re-scan of a malformed CSV file failed");
            }
        }
        if line.is_none() {
            return DriverError::data(format!(
                "{path}: DuckDB cannot read the file as CSV with delimiter {:?}, quote '\"' and {}: {}",
                char::from(dialect.delimiter),
                match dialect.comment {
                    Some(c) => format!("comment prefix {:?}", char::from(c)),
                    None => "no comment prefix".into(),
                },
                essential(&message)
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

/// The line number in DuckDB's "CSV Error on Line: N".
fn duckdb_line(message: &str) -> Option<u64> {
    let rest = &message[message.find("CSV Error on Line: ")? + "CSV Error on Line: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The first, informative lines of a DuckDB error, without its line-number prefix, the echo of
/// the line, its "Possible fixes" and the dump of reader settings.
pub(crate) fn essential(message: &str) -> String {
    let mut kept = Vec::new();
    for line in message.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("Possible")
            || trimmed.starts_with("* ")
            || line.starts_with("  ")
            || (trimmed.is_empty() && !kept.is_empty())
        {
            break;
        }
        if trimmed.is_empty() || trimmed.starts_with("Original Line:") {
            continue;
        }
        let mut text = trimmed;
        for prefix in [
            "Invalid Input Error: ",
            "Conversion Error: ",
            "Binder Error: ",
            "Catalog Error: ",
            "IO Error: ",
        ] {
            text = text.strip_prefix(prefix).unwrap_or(text);
        }
        if let Some(rest) = text.strip_prefix("CSV Error on Line: ") {
            text = rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
            if text.is_empty() {
                continue;
            }
        }
        kept.push(text.to_owned());
    }
    if kept.is_empty() {
        message.lines().next().unwrap_or_default().to_owned()
    } else {
        kept.join("; ")
    }
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
    fn essential_keeps_the_message_and_drops_the_settings_dump() {
        let message = "Invalid Input Error: CSV Error on Line: 30002\nOriginal Line: 1,2,3\nExpected Number of Columns: 2 Found: 3\nPossible fixes:\n* Enable null padding\n\n  file = bad2.csv\n  delimiter = , (Set By User)";
        assert_eq!(essential(message), "Expected Number of Columns: 2 Found: 3");
        assert_eq!(duckdb_line(message), Some(30002));
    }
}
