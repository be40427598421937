//! Table names of the run database. Quoting itself lives in `execution-context`, below every
//! crate that writes SQL.

pub use execution_context::{quote_identifier, quote_literal};

use crate::{DriverError, Result};

/// The name of a table in the run database. A step's table is named exactly like its step id.
///
/// `Display` always emits the quoted form, so a `TableName` can be formatted into SQL safely;
/// [`as_str`](Self::as_str) gives the raw name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TableName(String);

impl TableName {
    /// Validates a table name: non-empty, at most 255 bytes, no NUL or control characters.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(DriverError::internal(format!(
                "{name:?} is not a valid table name (1 to 255 bytes, no control characters)"
            )));
        }
        Ok(Self(name))
    }

    /// The raw, unquoted name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quoted form, ready for SQL.
    pub fn quoted(&self) -> String {
        quote_identifier(&self.0)
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.quoted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted_and_escaped() {
        assert_eq!(quote_identifier("orders"), "\"orders\"");
        assert_eq!(quote_identifier("read-orders"), "\"read-orders\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(TableName::new("select").unwrap().to_string(), "\"select\"");
    }

    #[test]
    fn literals_double_single_quotes() {
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn table_names_reject_empty_and_control_characters() {
        assert!(TableName::new("").is_err());
        assert!(TableName::new("a\nb").is_err());
        assert!(TableName::new("x".repeat(256)).is_err());
        assert_eq!(TableName::new("ok.name-1").unwrap().as_str(), "ok.name-1");
    }
}
