//! PostgreSQL `uuid` from its text, in both wire formats. DuckDB's default Arrow export sends a
//! `UUID` column as its canonical text; the server describes the column as `uuid` (so drivers
//! give their uuid type: asyncpg's `UUID`, pgJDBC's `java.util.UUID`) and writes the 16 bytes
//! when a client asks for binary.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql, to_sql_checked};

/// A uuid as text (`a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`).
#[derive(Debug)]
pub struct Uuid(pub String);

/// The 16 bytes of a uuid's text: 32 hex digits, dashes anywhere between them.
pub fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let mut bytes = [0u8; 16];
    let mut digits = text.bytes().filter(|&b| b != b'-');
    for byte in &mut bytes {
        let high = (digits.next()? as char).to_digit(16)?;
        let low = (digits.next()? as char).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    digits.next().is_none().then_some(bytes)
}

/// Writes the binary form of `text`, or says why it is not a uuid.
pub fn uuid_binary(text: &str, out: &mut BytesMut) -> Result<(), Box<dyn Error + Sync + Send>> {
    let bytes = uuid_bytes(text).ok_or_else(|| format!("`{text}` is not a uuid"))?;
    out.put_slice(&bytes);
    Ok(())
}

impl ToSql for Uuid {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        uuid_binary(&self.0, out)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }

    to_sql_checked!();
}

impl ToSqlText for Uuid {
    fn to_sql_text(
        &self,
        _: &Type,
        out: &mut BytesMut,
        _: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_becomes_its_sixteen_bytes() {
        let bytes = uuid_bytes("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        assert_eq!(
            bytes,
            [
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11
            ]
        );
        assert_eq!(uuid_bytes("A0EEBC999C0B4EF8BB6D6BB9BD380A11"), Some(bytes));
        for bad in [
            "",
            "a0eebc99",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1100",
        ] {
            assert_eq!(uuid_bytes(bad), None, "{bad}");
        }
    }
}
