//! UUIDs between their 16 bytes and their text, for the code that moves them itself (the
//! PostgreSQL extractor's bytes, incremental keys, `serve --pg`'s wire formats): one copy for
//! every crate.

/// The canonical text of a UUID: lower-case hex digits in groups of 8-4-4-4-12.
pub fn text(bytes: &[u8; 16]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    out
}

/// [`text`] as a `String`.
pub fn string(bytes: &[u8; 16]) -> String {
    text(bytes).iter().map(|&b| char::from(b)).collect()
}

/// The 16 bytes of a UUID's text: 32 hex digits in either case, with dashes and braces
/// anywhere between them (`a0eebc99-9c0b-...`, `{A0EEBC99...}`, bare hex).
pub fn parse(text: &str) -> Option<[u8; 16]> {
    let mut digits = text.chars().filter(|c| !matches!(c, '-' | '{' | '}'));
    let mut bytes = [0u8; 16];
    for byte in &mut bytes {
        let high = digits.next()?.to_digit(16)?;
        let low = digits.next()?.to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    digits.next().is_none().then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_go_between_bytes_and_canonical_text() {
        let b: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        assert_eq!(&text(&b), b"00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(string(&b), "00112233-4455-6677-8899-aabbccddeeff");
        for written in [
            "00112233-4455-6677-8899-aabbccddeeff",
            "00112233445566778899AABBCCDDEEFF",
            "{00112233-4455-6677-8899-aabbccddeeff}",
        ] {
            assert_eq!(parse(written), Some(b), "{written}");
        }
        for bad in [
            "",
            "00112233",
            "00112233-4455-6677-8899-aabbccddeefg",
            "00112233-4455-6677-8899-aabbccddeeff00",
            "00112233 4455 6677 8899 aabbccddeeff",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
