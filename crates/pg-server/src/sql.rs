//! Just enough SQL lexing to split a simple query into statements, tell queries from writes,
//! and spot the statements answered here rather than by DuckDB.

pub use execution_context::{quote_identifier, quote_literal};

/// What to do with one statement.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// A query DuckDB answers.
    Query,
    /// `SELECT osiris_attach('<id>')`, with the id (`None`: the id is parameter `$1`).
    Attach(Option<String>),
    /// A statement accepted and ignored, answered with this command tag.
    NoOp(&'static str),
    /// Anything that could write.
    Write,
}

/// Splits on `;` outside quotes and comments; drops empty statements.
pub fn split(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                out.push(&sql[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&sql[start.min(sql.len())..]);
    out.into_iter()
        .filter(|s| !strip_comments(s).trim().is_empty())
        .collect()
}

/// The statement with leading whitespace and comments removed.
fn strip_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return s;
        }
    }
}

fn first_word(s: &str) -> String {
    strip_comments(s)
        .trim_start_matches('(')
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Classifies one statement.
pub fn classify(statement: &str) -> Kind {
    if let Some(id) = attach_call(statement) {
        return Kind::Attach(id);
    }
    match first_word(statement).as_str() {
        "SELECT" | "WITH" | "VALUES" | "SHOW" | "DESCRIBE" | "EXPLAIN" | "TABLE" | "FROM"
        | "SUMMARIZE" => Kind::Query,
        "BEGIN" | "START" => Kind::NoOp("BEGIN"),
        "COMMIT" | "END" => Kind::NoOp("COMMIT"),
        "ROLLBACK" | "ABORT" => Kind::NoOp("ROLLBACK"),
        // Client settings (extra_float_digits, application_name, ...): nothing here depends on
        // them, and a read-only server lets no one change DuckDB's own settings.
        "SET" | "RESET" => Kind::NoOp("SET"),
        "DISCARD" => Kind::NoOp("DISCARD ALL"),
        "DEALLOCATE" => Kind::NoOp("DEALLOCATE"),
        _ => Kind::Write,
    }
}

/// `SELECT osiris_attach('<id>')` (or `($1)`): `Some(Some(id))`, `Some(None)` for `$1`.
fn attach_call(statement: &str) -> Option<Option<String>> {
    let s = strip_comments(statement);
    let rest = strip_keyword(s, "select")?.trim_start();
    let rest = strip_keyword(rest, "osiris_attach")?.trim_start();
    let rest = rest.strip_prefix('(')?.trim_start();
    let (id, rest) = if let Some(r) = rest.strip_prefix("$1") {
        (None, r)
    } else {
        let (lit, r) = string_literal(rest)?;
        (Some(lit), r)
    };
    let rest = rest.trim_start().strip_prefix(')')?.trim();
    // Optionally `AS name`; anything else means a bigger query we do not intercept.
    let ok = rest.is_empty()
        || strip_keyword(rest, "as").is_some_and(|a| {
            !a.trim().is_empty() && a.trim().chars().all(|c| c.is_alphanumeric() || c == '_')
        });
    ok.then_some(id)
}

fn strip_keyword<'a>(s: &'a str, keyword: &str) -> Option<&'a str> {
    let head = s.get(..keyword.len())?;
    let rest = &s[keyword.len()..];
    (head.eq_ignore_ascii_case(keyword)
        && !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    .then_some(rest)
}

fn string_literal(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('\'')?.char_indices().peekable();
    let mut out = String::new();
    let body = &s[1..];
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                chars.next();
                out.push('\'');
            } else {
                return Some((out, &body[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Catalog queries clients send that DuckDB cannot answer as PostgreSQL would; rewritten into
/// DuckDB SQL over the attached sessions.
pub fn rewrite_catalog(statement: &str) -> Option<String> {
    let s = strip_comments(statement);
    let lower = s.to_ascii_lowercase();
    let compact: String = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    if compact == "select version()" || compact == "select pg_catalog.version()" {
        return Some(format!(
            "SELECT 'PostgreSQL 16.0 (osiris {}, DuckDB ' || library_version || ')' AS version \
             FROM pragma_version()",
            env!("CARGO_PKG_VERSION")
        ));
    }
    // psql `\l`: one database.
    if lower.contains("from pg_catalog.pg_database d") {
        return Some(
            "SELECT 'osiris' AS \"Name\", 'osiris' AS \"Owner\", 'UTF8' AS \"Encoding\", \
             'C' AS \"Collate\", 'C' AS \"Ctype\", NULL::VARCHAR AS \"ICU Locale\", \
             'libc' AS \"Locale Provider\", NULL::VARCHAR AS \"Access privileges\""
                .to_owned(),
        );
    }
    // psql `\dn`: session schemas are DuckDB databases, not schemas.
    if lower.contains("from pg_catalog.pg_namespace n")
        && lower.contains("nspowner")
        && !lower.contains("pg_class")
    {
        return Some(format!(
            "SELECT database_name AS \"Name\", 'osiris' AS \"Owner\" FROM duckdb_databases() \
             WHERE NOT internal AND database_name NOT IN ('memory', 'temp') {} ORDER BY 1",
            pattern_filter(s, "n.nspname", "database_name")
        ));
    }
    // psql `\dt` / `\d`-style listings of relations.
    if lower.contains("from pg_catalog.pg_class c") && lower.contains("as \"schema\"") {
        return Some(format!(
            "SELECT database_name AS \"Schema\", table_name AS \"Name\", 'table' AS \"Type\", \
             'osiris' AS \"Owner\" FROM duckdb_tables() WHERE database_name NOT IN ('system', \
             'temp') {} {} ORDER BY 1, 2",
            pattern_filter(s, "n.nspname", "database_name"),
            pattern_filter(s, "c.relname", "table_name")
        ));
    }
    describe_table(s, &lower)
}

/// psql `\d <table>`: find the table, its flags, its columns; the footers (indexes, policies,
/// inheritance, ...) read catalogs DuckDB lacks and come back empty.
fn describe_table(s: &str, lower: &str) -> Option<String> {
    if lower.contains("select c.oid,")
        && lower.contains("from pg_catalog.pg_class c")
        && lower.contains("c.relname")
    {
        return Some(format!(
            "SELECT table_oid AS oid, database_name AS nspname, table_name AS relname \
             FROM duckdb_tables() WHERE database_name NOT IN ('system', 'temp') {} {} \
             ORDER BY 2, 3",
            pattern_filter(s, "n.nspname", "database_name"),
            pattern_filter(s, "c.relname", "table_name")
        ));
    }
    if lower.contains("c.relchecks") && lower.contains("from pg_catalog.pg_class c") {
        return Some(
            "SELECT 0 AS relchecks, 'r' AS relkind, false AS relhasindex, false AS relhasrules, \
             false AS relhastriggers, false AS relrowsecurity, false AS relforcerowsecurity, \
             false AS relhasoids, false AS relispartition, '' AS reloptions, 0 AS reltablespace, \
             '' AS reloftype, 'p' AS relpersistence, 'd' AS relreplident, 'duckdb' AS amname"
                .to_owned(),
        );
    }
    if lower.contains("from pg_catalog.pg_attribute a") {
        let oid = lower.split_once("a.attrelid = '")?.1.split_once('\'')?.0;
        let oid: u64 = oid.parse().ok()?;
        return Some(format!(
            "SELECT column_name AS attname, data_type AS format_type, column_default AS attdef, \
             NOT is_nullable AS attnotnull, NULL::VARCHAR AS attcollation, '' AS attidentity, \
             '' AS attgenerated FROM duckdb_columns() WHERE table_oid = {oid} \
             ORDER BY column_index"
        ));
    }
    const ABSENT: [&str; 9] = [
        "pg_catalog.pg_policy",
        "pg_catalog.pg_statistic_ext",
        "pg_catalog.pg_publication",
        "pg_catalog.pg_inherits",
        "pg_catalog.pg_trigger",
        "pg_catalog.pg_constraint",
        "pg_catalog.pg_index ",
        "pg_catalog.pg_rewrite",
        "pg_catalog.pg_partitioned_table",
    ];
    ABSENT
        .iter()
        .any(|t| lower.contains(t))
        .then(|| "SELECT NULL::VARCHAR AS none LIMIT 0".to_owned())
}

/// psql writes name patterns as `<column> OPERATOR(pg_catalog.~) '<regex>'`; the same regex as a
/// DuckDB condition on `target`.
fn pattern_filter(statement: &str, column: &str, target: &str) -> String {
    let Some(at) = statement.find(&format!("{column} OPERATOR(pg_catalog.~) ")) else {
        return String::new();
    };
    let rest = &statement[at + column.len() + "OPERATOR(pg_catalog.~) ".len() + 1..];
    match string_literal(rest.trim_start()) {
        Some((regex, _)) => format!("AND regexp_full_match({target}, {})", quote_literal(&regex)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_semicolons_inside_quotes_and_comments() {
        assert_eq!(
            split("select ';' ; -- a;b\n select \"x;\" ;;"),
            vec!["select ';' ", " -- a;b\n select \"x;\" "]
        );
    }

    #[test]
    fn writes_are_told_from_queries() {
        assert_eq!(classify("  /* c */ select 1"), Kind::Query);
        assert_eq!(classify("(select 1)"), Kind::Query);
        assert_eq!(
            classify("with a as (select 1) select * from a"),
            Kind::Query
        );
        assert_eq!(classify("insert into t values (1)"), Kind::Write);
        assert_eq!(classify("create table t (a int)"), Kind::Write);
        assert_eq!(classify("attach 'x.db'"), Kind::Write);
        assert_eq!(classify("copy t to 'x'"), Kind::Write);
        assert_eq!(classify("set extra_float_digits = 3"), Kind::NoOp("SET"));
    }

    #[test]
    fn attach_calls_are_recognized() {
        assert_eq!(
            classify("SELECT osiris_attach('a''b')"),
            Kind::Attach(Some("a'b".into()))
        );
        assert_eq!(
            classify("select osiris_attach( $1 ) as x"),
            Kind::Attach(None)
        );
        assert_eq!(
            classify("select osiris_attach('a'), 1"),
            Kind::Query,
            "a bigger query is left to DuckDB"
        );
    }

    #[test]
    fn psql_patterns_become_regex_filters() {
        let q = "SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.~) '^(s1)$' COLLATE pg_catalog.default AND nspowner";
        assert!(
            rewrite_catalog(q)
                .unwrap()
                .contains("regexp_full_match(database_name, '^(s1)$')")
        );
    }
}
