//! Text encodings DuckDB cannot handle itself, streamed through Rust: transcoding the UTF-8
//! file `COPY ... TO` wrote into latin-1, ASCII or UTF-16, and decoding UTF-16 input files into
//! UTF-8 before DuckDB reads them (DuckDB 1.5's UTF-16 reader rejects characters beyond U+FFFF
//! and reads big-endian files as empty).

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use tokio_util::sync::CancellationToken;

/// An encoding the writer produces by transcoding DuckDB's UTF-8 output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// ISO-8859-1: U+0000..U+00FF, one byte each.
    Latin1,
    /// U+0000..U+007F.
    Ascii,
    /// A byte order mark, then UTF-16 little-endian code units (Python's `utf-16` codec).
    Utf16,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Latin1 => "latin-1",
            Self::Ascii => "ascii",
            Self::Utf16 => "utf-16",
        }
    }
}

/// Why transcoding failed.
#[derive(Debug)]
pub(crate) enum TranscodeError {
    /// A character the target encoding has no byte sequence for.
    Unencodable {
        /// 1-based line of the output file.
        line: u64,
        /// The character.
        ch: char,
        /// The target encoding's name.
        encoding: &'static str,
    },
    /// DuckDB's output was not UTF-8 (cannot happen unless a BLOB holds raw bytes).
    InvalidUtf8 {
        /// 1-based line of the output file.
        line: u64,
    },
    /// Reading or writing failed.
    Io(io::Error),
    /// The step was cancelled.
    Cancelled,
}

impl From<io::Error> for TranscodeError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

const BUFFER: usize = 1 << 20;

/// Transcodes the UTF-8 file `input` into `output` (created or truncated).
pub(crate) fn transcode_file(
    input: &Path,
    output: &Path,
    target: Target,
    cancel: &CancellationToken,
) -> Result<(), TranscodeError> {
    let reader = BufReader::with_capacity(BUFFER, File::open(input)?);
    let mut writer = BufWriter::with_capacity(BUFFER, File::create(output)?);
    transcode(reader, &mut writer, target, cancel)?;
    writer.flush()?;
    Ok(())
}

fn transcode(
    mut reader: impl BufRead,
    writer: &mut impl Write,
    target: Target,
    cancel: &CancellationToken,
) -> Result<(), TranscodeError> {
    if target == Target::Utf16 {
        writer.write_all(&[0xFF, 0xFE])?;
    }
    let mut line = Vec::new();
    let mut encoded = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if number.is_multiple_of(65_536) && cancel.is_cancelled() {
            return Err(TranscodeError::Cancelled);
        }
        if line.is_ascii() && target != Target::Utf16 {
            // ASCII is the same bytes in latin-1 and ASCII: the common case costs one copy.
            writer.write_all(&line)?;
            continue;
        }
        let text =
            std::str::from_utf8(&line).map_err(|_| TranscodeError::InvalidUtf8 { line: number })?;
        encoded.clear();
        for ch in text.chars() {
            match target {
                Target::Latin1 | Target::Ascii => {
                    let limit = if target == Target::Latin1 { 0xFF } else { 0x7F };
                    let code = u32::from(ch);
                    if code > limit {
                        return Err(TranscodeError::Unencodable {
                            line: number,
                            ch,
                            encoding: target.name(),
                        });
                    }
                    encoded.push(code as u8);
                }
                Target::Utf16 => {
                    let mut units = [0u16; 2];
                    for unit in ch.encode_utf16(&mut units) {
                        encoded.extend_from_slice(&unit.to_le_bytes());
                    }
                }
            }
        }
        writer.write_all(&encoded)?;
    }
}

/// A UTF-16 sequence that is not valid (an unpaired surrogate or an odd trailing byte).
#[derive(Debug)]
pub(crate) struct InvalidUtf16 {
    /// 1-based line of the decoded text.
    pub line: u64,
}

impl std::fmt::Display for InvalidUtf16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid UTF-16 on line {}", self.line)
    }
}

impl std::error::Error for InvalidUtf16 {}

/// Decodes UTF-16 (little-endian, or whatever its byte order mark says) into UTF-8. Invalid
/// sequences fail the read with an [`InvalidUtf16`] error (kind `InvalidData`).
pub(crate) struct Utf16Decoder<R> {
    inner: R,
    big_endian: Option<bool>,
    pending: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    raw: Vec<u8>,
    line: u64,
}

impl<R: Read> Utf16Decoder<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            big_endian: None,
            pending: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            raw: vec![0; 64 * 1024],
            line: 1,
        }
    }

    /// Decodes the next block into `out`; false at the end of the input.
    fn refill(&mut self) -> io::Result<bool> {
        self.out.clear();
        self.out_pos = 0;
        loop {
            let n = self.inner.read(&mut self.raw)?;
            if n == 0 {
                if !self.pending.is_empty() {
                    return Err(self.invalid());
                }
                return Ok(false);
            }
            self.pending.extend_from_slice(&self.raw[..n]);
            if self.big_endian.is_none() {
                if self.pending.len() < 2 {
                    continue;
                }
                match self.pending[..2] {
                    [0xFF, 0xFE] => {
                        self.big_endian = Some(false);
                        self.pending.drain(..2);
                    }
                    [0xFE, 0xFF] => {
                        self.big_endian = Some(true);
                        self.pending.drain(..2);
                    }
                    _ => self.big_endian = Some(false),
                }
            }
            let big_endian = self.big_endian == Some(true);
            let mut whole = self.pending.len() / 2 * 2;
            // Keep a trailing high surrogate for the next block, where its partner is.
            if whole >= 2 {
                let last = [self.pending[whole - 2], self.pending[whole - 1]];
                let unit = if big_endian {
                    u16::from_be_bytes(last)
                } else {
                    u16::from_le_bytes(last)
                };
                if (0xD800..0xDC00).contains(&unit) {
                    whole -= 2;
                }
            }
            let units = self.pending[..whole].chunks_exact(2).map(|pair| {
                if big_endian {
                    u16::from_be_bytes([pair[0], pair[1]])
                } else {
                    u16::from_le_bytes([pair[0], pair[1]])
                }
            });
            for ch in char::decode_utf16(units) {
                let Ok(ch) = ch else {
                    return Err(self.invalid());
                };
                if ch == '\n' {
                    self.line += 1;
                }
                let mut buf = [0u8; 4];
                self.out
                    .extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            self.pending.drain(..whole);
            if !self.out.is_empty() {
                return Ok(true);
            }
        }
    }
}

impl<R> Utf16Decoder<R> {
    fn invalid(&self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, InvalidUtf16 { line: self.line })
    }
}

/// Decodes the UTF-16 text `input` into the UTF-8 file `output`.
pub(crate) fn decode_utf16_file(input: impl Read, output: &Path) -> io::Result<()> {
    let mut reader = Utf16Decoder::new(input);
    let mut writer = BufWriter::with_capacity(BUFFER, File::create(output)?);
    io::copy(&mut reader, &mut writer)?;
    writer.flush()
}

impl<R: Read> Read for Utf16Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_pos == self.out.len() && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(text: &str, target: Target) -> Result<Vec<u8>, TranscodeError> {
        let mut out = Vec::new();
        transcode(text.as_bytes(), &mut out, target, &CancellationToken::new())?;
        Ok(out)
    }

    #[test]
    fn latin1_maps_each_character_to_one_byte() {
        assert_eq!(
            encode("a,é\nÿ,\u{80}\n", Target::Latin1).unwrap(),
            b"a,\xE9\n\xFF,\x80\n"
        );
    }

    #[test]
    fn unencodable_characters_name_their_line() {
        match encode("a\nb\nc€\n", Target::Latin1) {
            Err(TranscodeError::Unencodable { line, ch, .. }) => {
                assert_eq!((line, ch), (3, '€'));
            }
            other => panic!("expected an unencodable error, got {other:?}"),
        }
        assert!(matches!(
            encode("é", Target::Ascii),
            Err(TranscodeError::Unencodable {
                line: 1,
                ch: 'é',
                ..
            })
        ));
    }

    #[test]
    fn utf16_has_a_bom_and_little_endian_units_including_surrogates() {
        assert_eq!(
            encode("a😀\n", Target::Utf16).unwrap(),
            [0xFF, 0xFE, b'a', 0, 0x3D, 0xD8, 0x00, 0xDE, b'\n', 0]
        );
    }

    #[test]
    fn utf16_decoder_follows_the_bom_and_splits_anywhere() {
        let text = "héllo 😀,x\n".repeat(10_000);
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        for bytes in [le, be] {
            let mut decoded = String::new();
            Utf16Decoder::new(io::Cursor::new(bytes))
                .read_to_string(&mut decoded)
                .unwrap();
            assert_eq!(decoded, text);
        }
    }

    #[test]
    fn utf16_decoder_rejects_unpaired_surrogates_with_their_line() {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend("a\nb\n".encode_utf16().flat_map(u16::to_le_bytes));
        bytes.extend(0xDC00u16.to_le_bytes());
        let error = Utf16Decoder::new(io::Cursor::new(bytes))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        let invalid = error
            .get_ref()
            .unwrap()
            .downcast_ref::<InvalidUtf16>()
            .unwrap();
        assert_eq!(invalid.line, 3);
    }
}
