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

/// How a file is compressed. Both drivers read and write gzip and zstd natively through DuckDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Plain text.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

impl Codec {
    /// The codec a file name implies, as DuckDB (and pandas) infer it: `.gz` and `.zst`.
    pub fn from_extension(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("gz") => Self::Gzip,
            Some(ext) if ext.eq_ignore_ascii_case("zst") => Self::Zstd,
            _ => Self::None,
        }
    }

    /// The value of DuckDB's `compression` option.
    pub fn duckdb_name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
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
    }

    #[test]
    fn glob_characters_are_rejected() {
        assert!(reject_glob_characters(Path::new("/d/x[1].csv")).is_err());
        assert!(reject_glob_characters(Path::new("/d/*.csv")).is_err());
        assert!(reject_glob_characters(Path::new("/d/plain name.csv")).is_ok());
    }
}
