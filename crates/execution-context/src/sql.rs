//! How names and strings are embedded in DuckDB SQL, and the settings every DuckDB connection of
//! osiris starts from: the one place for both, below every crate that talks to DuckDB.

/// Quotes an identifier for DuckDB: `"` around it, inner `"` doubled. Any name is then safe,
/// including hyphens, dots, spaces, keywords and unicode.
pub fn quote_identifier(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string literal for DuckDB: `'` around it, inner `'` doubled.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The configuration every DuckDB connection starts from. Extension auto-install is off: without
/// internet a query needing an uninstalled extension must fail at once instead of hanging on a
/// download.
pub fn base_config() -> duckdb::Result<duckdb::Config> {
    duckdb::Config::default().with("autoinstall_known_extensions", "false")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_double_their_quotes() {
        assert_eq!(quote_identifier("read-orders"), "\"read-orders\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
