//! Reading user-supplied YAML (pipelines, connections files, component specs) within limits.
//!
//! The YAML parser takes time quadratic in nesting depth (10 000 levels: 11 s; a 10 MB
//! `[[[[...` file never finishes), so input is refused before it reaches the parser when a
//! cheap linear scan finds nesting deeper than [`MAX_DEPTH`], or when the file is larger than
//! [`MAX_FILE_BYTES`]. Every reader of user YAML goes through [`read_file`] or [`check_depth`],
//! so the limits hold in one place.
//!
//! The scan follows YAML closely enough for its purpose, not exactly: it counts block
//! indentation levels, `- ` / `? ` indicators and flow brackets (`[`, `{`) outside quoted
//! scalars, block scalars (`|`, `>`) and comments. It may count a level less than the parser
//! sees (a sequence at its parent key's indentation), never many more, so legitimate files
//! (depth 10-20) are far from the limit.
#![warn(missing_docs)]

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest YAML input file read, in bytes (16 MiB). Pipelines and connection files are a few
/// kilobytes; anything near this is a mistake or an attack.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Deepest nesting accepted (mappings, sequences and flow collections inside each other).
/// Real pipelines and specs nest 10-20 levels.
pub const MAX_DEPTH: usize = 64;

/// Why YAML input was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file cannot be read (missing, a directory, no permission, not UTF-8).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than the limit.
    #[error(
        "{} is larger than {}, the limit for a YAML input file",
        path.display(),
        size_text(*limit)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The document nests deeper than the limit.
    #[error("{}", too_deep_message(path.as_deref(), *line, *limit))]
    TooDeep {
        /// The file, when known.
        path: Option<PathBuf>,
        /// Line (from 1) where the nesting passes the limit.
        line: usize,
        /// The limit.
        limit: usize,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn too_deep_message(path: Option<&Path>, line: usize, limit: usize) -> String {
    let place = match path {
        Some(path) => format!("{}: line {line}", path.display()),
        None => format!("line {line}"),
    };
    format!("{place}: nesting is deeper than {limit} levels; such a document is refused unparsed")
}

/// Reads a YAML file of at most [`MAX_FILE_BYTES`] whose nesting is at most [`MAX_DEPTH`].
pub fn read_file(path: &Path) -> Result<String> {
    read_file_within(path, MAX_FILE_BYTES, MAX_DEPTH)
}

fn read_file_within(path: &Path, max_bytes: u64, max_depth: usize) -> Result<String> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let too_large = || Error::TooLarge {
        path: path.to_owned(),
        limit: max_bytes,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    if file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() > max_bytes)
    {
        return Err(too_large());
    }
    // `take` bounds what is read from files whose size the metadata does not tell
    // (pipes, /dev/zero).
    let mut bytes = Vec::new();
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({e})"),
        ))
    })?;
    check_depth_within(&text, max_depth).map_err(|line| Error::TooDeep {
        path: Some(path.to_owned()),
        line,
        limit: max_depth,
    })?;
    Ok(text)
}

/// Refuses `text` when it nests deeper than [`MAX_DEPTH`]; the error names the line. Linear
/// in the length of `text`, and stops at the first line past the limit.
pub fn check_depth(text: &str) -> Result<()> {
    check_depth_within(text, MAX_DEPTH).map_err(|line| Error::TooDeep {
        path: None,
        line,
        limit: MAX_DEPTH,
    })
}

/// `Err(line)` when the nesting passes `limit` on that line.
fn check_depth_within(text: &str, limit: usize) -> Result<(), usize> {
    let mut scan = Scan::default();
    for (index, line) in text.split('\n').enumerate() {
        if scan.line(line.as_bytes()) > limit {
            return Err(index + 1);
        }
    }
    Ok(())
}

/// The scanner's state between lines.
#[derive(Default)]
struct Scan {
    /// Columns of the open block nodes, strictly increasing.
    block: Vec<usize>,
    /// Open flow collections (`[`, `{`).
    flow: usize,
    /// The quote of a quoted scalar that continues on the next line.
    quote: Option<u8>,
    /// Inside a block scalar: lines indented more than this column belong to it.
    block_scalar: Option<usize>,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r')
}

impl Scan {
    /// Scans one line; returns the deepest nesting seen on it (0 if the line is skipped).
    fn line(&mut self, line: &[u8]) -> usize {
        let len = line.len();
        let indent = line.iter().take_while(|&&c| c == b' ').count();
        let blank = line[indent..].iter().all(|&c| is_space(c));
        if let Some(owner) = self.block_scalar {
            if blank || indent > owner {
                return 0;
            }
            self.block_scalar = None;
        }
        let mut i = indent;
        let mut deepest = 0;
        // Where a block scalar's content must be indented past, if one starts on this line.
        let mut owner = indent;
        if self.quote.is_none() && self.flow == 0 {
            if blank || line[indent] == b'#' {
                return 0;
            }
            while self.block.last().is_some_and(|&top| top > indent) {
                self.block.pop();
            }
            if self.block.last() != Some(&indent) {
                self.block.push(indent);
            }
            owner = indent;
            // `- - - x`: each indicator opens a node.
            while i < len
                && matches!(line[i], b'-' | b'?')
                && (i + 1 == len || is_space(line[i + 1]))
            {
                owner = i;
                i += 1;
                while i < len && is_space(line[i]) {
                    i += 1;
                }
                if i < len && line[i] != b'#' {
                    self.block.push(i);
                }
            }
            deepest = self.block.len();
            if i > indent && i < len && !matches!(line[i], b'|' | b'>') {
                // `- key: |`: the scalar belongs to the mapping starting after the dash.
                owner = i;
            }
        }
        let mut at_start = true;
        while i < len {
            let c = line[i];
            if let Some(quote) = self.quote {
                if quote == b'"' && c == b'\\' {
                    i += 2;
                    continue;
                }
                if c == quote {
                    if quote == b'\'' && line.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    self.quote = None;
                    at_start = false;
                }
                i += 1;
                continue;
            }
            let next_is_space = i + 1 == len || is_space(line[i + 1]);
            match c {
                _ if is_space(c) => {}
                b'#' if i == 0 || is_space(line[i - 1]) => break,
                b'\'' | b'"' if at_start => self.quote = Some(c),
                b'[' | b'{' if at_start || self.flow > 0 => {
                    self.flow += 1;
                    deepest = deepest.max(self.block.len() + self.flow);
                    at_start = true;
                }
                b']' | b'}' if self.flow > 0 => {
                    self.flow -= 1;
                    at_start = false;
                }
                b',' if self.flow > 0 => at_start = true,
                b':' if self.flow > 0 || next_is_space => at_start = true,
                b'-' | b'?' if at_start && next_is_space => {}
                b'|' | b'>' if at_start && self.flow == 0 => {
                    let rest = &line[i + 1..];
                    let indicators = rest
                        .iter()
                        .take_while(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-'))
                        .count();
                    let tail = &rest[indicators..];
                    let tail_start = tail.iter().take_while(|&&c| is_space(c)).count();
                    if tail.len() == tail_start || (tail_start > 0 && tail[tail_start] == b'#') {
                        self.block_scalar = Some(owner);
                        break;
                    }
                    at_start = false;
                }
                _ => at_start = false,
            }
            i += 1;
        }
        deepest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn depth_error(text: &str) -> Option<usize> {
        check_depth_within(text, 8).err()
    }

    #[test]
    fn ten_megabytes_of_open_brackets_are_refused_at_once() {
        let text = "[".repeat(10 * 1024 * 1024);
        let started = Instant::now();
        let error = check_depth(&text).unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            error,
            "line 1: nesting is deeper than 64 levels; such a document is refused unparsed"
        );
    }

    #[test]
    fn deep_block_mappings_and_sequences_are_refused_with_their_line() {
        let mut mapping = String::new();
        for level in 0..20 {
            mapping.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        assert_eq!(depth_error(&mapping), Some(9));
        assert_eq!(depth_error("a: 1\nb:\n  - - - - - - - - - x\n"), Some(3));
        assert_eq!(depth_error("a: {b: [{c: [[[[[1]]]]]}]}\n"), Some(1));
        assert_eq!(depth_error("a: [\n [\n  [[[[[[[1]]]]]]]]]\n"), Some(3));
    }

    #[test]
    fn brackets_in_scalars_and_comments_do_not_count() {
        let brackets = "[{".repeat(50);
        let text = format!(
            r#"
oml_version: "0.1.0"
name: x  # {brackets}
steps:
  - id: a
    component: duckdb.processor
    config:
      query: |
        SELECT '{brackets}'
          {brackets}
      single: '{brackets} it''s'
      double: "{brackets} \" {brackets}"
      plain: a{brackets}
      folded: >-
        {brackets}
  - |
    {brackets}
  - key: |+2
      {brackets}
    other: '{brackets}
      {brackets}'
"#
        );
        assert_eq!(depth_error(&text), None, "{text}");
        assert_eq!(
            depth_error("a:\n  b: [1, [2, {c: 3}], \"]]]]\"]\n  d: 1\n"),
            None
        );
    }

    #[test]
    fn files_are_read_within_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, "a: [1]\n").unwrap();
        assert_eq!(read_file_within(&path, 7, 8).unwrap(), "a: [1]\n");
        let error = read_file_within(&path, 6, 8).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{} is larger than 6 bytes, the limit for a YAML input file",
                path.display()
            )
        );
        let error = read_file(Path::new("/dev/zero")).unwrap_err().to_string();
        assert_eq!(
            error,
            "/dev/zero is larger than 16 MiB, the limit for a YAML input file"
        );
        std::fs::write(&path, "a:\n  b: [[[[[[[[[1]]]]]]]]]\n").unwrap();
        let error = read_file_within(&path, 100, 8).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{}: line 2: nesting is deeper than 8 levels; such a document is refused unparsed",
                path.display()
            )
        );
        std::fs::write(&path, b"a: \xff\n").unwrap();
        assert!(
            read_file(&path)
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
    }
}
