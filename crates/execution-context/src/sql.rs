//! How names and strings are embedded in DuckDB SQL, and the settings every DuckDB connection of
//! osiris starts from: the one place for both, below every crate that talks to DuckDB.

use std::sync::OnceLock;

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
/// download. The memory limit is this process's ([`set_memory_limit`], ADR 0040); bulk appends
/// write every row group as it fills (ADR 0042).
pub fn base_config() -> duckdb::Result<duckdb::Config> {
    let config = duckdb::Config::default()
        .with("autoinstall_known_extensions", "false")?
        // Bulk appends (step tables) compress and write each row group as soon as it is full
        // instead of buffering five: faster and smaller for every extract (ADR 0042).
        .with("write_buffer_row_group_count", "1")?;
    match MEMORY_LIMIT.get() {
        Some(limit) => config.with("memory_limit", &limit.0),
        None => Ok(config),
    }
}

/// The memory limit of every DuckDB database this process opens from now on (`--memory-limit`,
/// `OSIRIS_MEMORY_LIMIT`); the first call wins. Without one, DuckDB's own default applies.
pub fn set_memory_limit(limit: MemoryLimit) {
    let _ = MEMORY_LIMIT.set(limit);
}

static MEMORY_LIMIT: OnceLock<MemoryLimit> = OnceLock::new();

/// A size DuckDB's `memory_limit` accepts: a number and a unit, `512MB`, `2GiB`, `1.5 GB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit(String);

impl MemoryLimit {
    /// The limit as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for MemoryLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const UNITS: [&str; 8] = ["KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"];
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let unit = unit.trim();
        let positive = number.parse::<f64>().is_ok_and(|n| n > 0.0);
        if !positive || !UNITS.iter().any(|u| u.eq_ignore_ascii_case(unit)) {
            return Err(format!(
                "{text:?} is not a memory size: give a number and one of {} (e.g. 512MB, 2GiB)",
                UNITS.join(", ")
            ));
        }
        Ok(Self(format!("{number}{unit}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_are_a_positive_number_and_a_unit_duckdb_knows() {
        for (text, kept) in [("512MB", "512MB"), ("2 GiB", "2GiB"), ("1.5gb", "1.5gb")] {
            assert_eq!(text.parse::<MemoryLimit>().unwrap().as_str(), kept);
            let config = duckdb::Config::default()
                .with("memory_limit", kept)
                .unwrap();
            let conn = duckdb::Connection::open_in_memory_with_flags(config).unwrap();
            let set: String = conn
                .query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))
                .unwrap();
            assert!(set.ends_with("iB"), "{text}: {set}");
        }
        for bad in ["", "512", "80%", "0MB", "-1GB", "lots", "1 PB"] {
            let err = bad.parse::<MemoryLimit>().unwrap_err();
            assert!(err.contains("is not a memory size"), "{bad}: {err}");
        }
    }

    #[test]
    fn bulk_appends_flush_every_row_group() {
        let conn = duckdb::Connection::open_in_memory_with_flags(base_config().unwrap()).unwrap();
        let (count, autoinstall): (i64, bool) = conn
            .query_row(
                "SELECT current_setting('write_buffer_row_group_count'), \
                        current_setting('autoinstall_known_extensions')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((count, autoinstall), (1, false));
    }

    #[test]
    fn identifiers_and_literals_double_their_quotes() {
        assert_eq!(quote_identifier("read-orders"), "\"read-orders\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
