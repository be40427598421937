//! PostgreSQL `uuid` from its text, in both wire formats. DuckDB's default Arrow export sends a
//! `UUID` column as its canonical text; the server describes the column as `uuid` (so drivers
//! give their uuid type: asyncpg's `UUID`, pgJDBC's `java.util.UUID`) and writes the 16 bytes
//! when a client asks for binary.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use postgres_types::{IsNull, ToSql, to_sql_checked};

/// A uuid as text (`a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`).
#[derive(Debug)]
pub struct Uuid(pub String);

/// Writes the binary form of `text`, or says why it is not a uuid.
pub fn uuid_binary(text: &str, out: &mut BytesMut) -> Result<(), Box<dyn Error + Sync + Send>> {
    let bytes =
        execution_context::uuid::parse(text).ok_or_else(|| format!("`{text}` is not a uuid"))?;
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

text_as_is!(Uuid);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_is_written_as_its_sixteen_bytes_or_refused() {
        let mut out = BytesMut::new();
        uuid_binary("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", &mut out).unwrap();
        assert_eq!(
            out.as_ref(),
            [
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11
            ]
        );
        let error = uuid_binary("a0eebc99", &mut out).unwrap_err();
        assert!(error.to_string().contains("is not a uuid"), "{error}");
    }
}
