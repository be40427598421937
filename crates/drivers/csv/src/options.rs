//! Config value types both CSV drivers share.

use std::path::Path;

use serde::{Deserialize, Deserializer, de};

/// One ASCII character used as CSV syntax (delimiter, comment prefix). DuckDB and the `csv`
/// crate both work on single bytes; the quote character and line breaks are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvChar(u8);

impl CsvChar {
    /// The comma.
    pub const COMMA: Self = Self(b',');

    /// The character as a byte.
    pub fn byte(self) -> u8 {
        self.0
    }

    /// The character as a one-character string.
    pub fn as_string(self) -> String {
        char::from(self.0).to_string()
    }
}

impl<'de> Deserialize<'de> for CsvChar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\r' | '\n' | '\0') => {
                Ok(Self(c as u8))
            }
            _ => Err(de::Error::custom(format!(
                "expected one ASCII character other than '\"' and line breaks, got {text:?}"
            ))),
        }
    }
}

/// The quote character of written CSV (`quotechar`): one ASCII character other than a line
/// break. Quotes inside quoted values are doubled, as pandas does by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteChar(u8);

impl QuoteChar {
    /// The double quote.
    pub const DOUBLE_QUOTE: Self = Self(b'"');

    /// The character as a one-character string.
    pub fn as_string(self) -> String {
        char::from(self.0).to_string()
    }

    /// The character as a byte.
    pub fn byte(self) -> u8 {
        self.0
    }
}

impl Default for QuoteChar {
    fn default() -> Self {
        Self::DOUBLE_QUOTE
    }
}

impl<'de> Deserialize<'de> for QuoteChar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii() && !matches!(c, '\r' | '\n' | '\0') => {
                Ok(Self(c as u8))
            }
            _ => Err(de::Error::custom(format!(
                "expected one ASCII character other than line breaks, got {text:?}"
            ))),
        }
    }
}

/// How a file is compressed. DuckDB reads and writes gzip and zstd natively; bz2, xz and zip
/// input is decompressed by the extractor in a stream into a plain scratch copy first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Plain text.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
    /// bzip2 (`.bz2`), read only.
    Bzip2,
    /// xz (`.xz`), read only.
    Xz,
    /// A zip archive holding one file (`.zip`), read only.
    Zip,
}

impl Codec {
    /// The codec DuckDB infers from a file name: `.gz` and `.zst` (what the writer produces).
    pub fn from_extension(path: &Path) -> Self {
        match Self::from_extension_any(path) {
            Self::Bzip2 | Self::Xz | Self::Zip => Self::None,
            native => native,
        }
    }

    /// The codec pandas infers from a file name when reading: also `.bz2`, `.xz` and `.zip`.
    pub fn from_extension_any(path: &Path) -> Self {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("gz") => Self::Gzip,
            Some("zst") => Self::Zstd,
            Some("bz2") => Self::Bzip2,
            Some("xz") => Self::Xz,
            Some("zip") => Self::Zip,
            _ => Self::None,
        }
    }

    /// Whether DuckDB reads this codec itself.
    pub fn duckdb_reads(self) -> bool {
        matches!(self, Self::None | Self::Gzip | Self::Zstd)
    }

    /// The codec's name in messages and config (`bz2`, `xz`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Bzip2 => "bz2",
            Self::Xz => "xz",
            Self::Zip => "zip",
        }
    }

    /// The value of DuckDB's `compression` option. Codecs DuckDB cannot read never reach it
    /// (their input is decompressed first); they would read as plain text.
    pub fn duckdb_name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::None | Self::Bzip2 | Self::Xz | Self::Zip => "none",
        }
    }
}

/// Rejects paths DuckDB would expand as a glob pattern: `read_csv('x[1].csv')` reads
/// `x1.csv`, and `*`/`?` can match several files.
pub fn reject_glob_characters(path: &Path) -> Result<(), String> {
    let text = path.to_string_lossy();
    if text.contains(['*', '?', '[']) {
        return Err(format!(
            "{} contains *, ? or [, which DuckDB expands as a glob pattern; rename the file or directory",
            path.display()
        ));
    }
    Ok(())
}

/// Milliseconds since `start`, for events.
pub fn elapsed_ms(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Text encoding of a CSV file, read (`filesystem.csv_extractor`) or written
/// (`filesystem.csv_writer`): the `encoding` field of both specs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum Encoding {
    /// UTF-8. Reading skips a byte order mark; writing writes none.
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-16. Reading: little-endian unless a byte order mark says big-endian. Writing: a byte
    /// order mark, then little-endian (Python's `utf-16` codec).
    #[serde(rename = "utf-16")]
    Utf16,
    /// ASCII. Read as UTF-8, its superset; writing any other character fails the step.
    #[serde(rename = "ascii")]
    Ascii,
    /// ISO-8859-1 (also spelled `iso-8859-1`). Writing a character beyond U+00FF fails the step.
    #[serde(rename = "latin-1", alias = "iso-8859-1")]
    Latin1,
}

impl Encoding {
    /// The spelling used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Utf16 => "utf-16",
            Self::Ascii => "ascii",
            Self::Latin1 => "latin-1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_char(json: &str) -> Result<CsvChar, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn csv_char_accepts_one_ascii_character_only() {
        assert_eq!(csv_char("\";\"").unwrap().byte(), b';');
        assert_eq!(csv_char("\"\\t\"").unwrap().byte(), b'\t');
        for bad in ["\"\"", "\";;\"", "\"\\\"\"", "\"\\n\"", "\"§\""] {
            assert!(csv_char(bad).is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn codec_is_inferred_from_the_extension() {
        assert_eq!(Codec::from_extension(Path::new("a.csv.gz")), Codec::Gzip);
        assert_eq!(Codec::from_extension(Path::new("a.CSV.ZST")), Codec::Zstd);
        assert_eq!(Codec::from_extension(Path::new("a.csv")), Codec::None);
        assert_eq!(Codec::from_extension(Path::new("a.csv.bz2")), Codec::None);
        assert_eq!(
            Codec::from_extension_any(Path::new("a.csv.bz2")),
            Codec::Bzip2
        );
        assert_eq!(Codec::from_extension_any(Path::new("a.XZ")), Codec::Xz);
        assert_eq!(Codec::from_extension_any(Path::new("a.zip")), Codec::Zip);
    }

    #[test]
    fn glob_characters_are_rejected() {
        assert!(reject_glob_characters(Path::new("/d/x[1].csv")).is_err());
        assert!(reject_glob_characters(Path::new("/d/*.csv")).is_err());
        assert!(reject_glob_characters(Path::new("/d/plain name.csv")).is_ok());
    }
}
