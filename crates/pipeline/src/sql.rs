//! `${params.NAME}` inside SQL: values become SQL literals, never SQL text.
//!
//! Osiris pastes parameter values into queries as text, so `--param "x=1'; COPY ... TO ..."`
//! runs whatever the value says. Here a placeholder in a SQL field (see [`SQL_FIELDS`]) is
//! replaced according to where it stands in the statement:
//!
//! - outside quotes: a literal: a plain number stays a number (`2000`, `(-1)`), `null` is
//!   `NULL`, anything else a quoted string (`'it''s'`);
//! - inside a quoted string or quoted identifier: the value with the quote doubled (and, where
//!   the dialect reads backslash escapes, the backslash doubled);
//! - inside a comment: a literal with line breaks and `*/` defused;
//! - inside a dollar-quoted string (`$$...$$`): the value as is, refused if it holds `$`.

use serde_json::Value;

/// The SQL dialect of a field: how its strings are quoted and escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// DuckDB: `'...'` strings without backslash escapes (except `E'...'`), `"..."`
    /// identifiers, `$tag$...$tag$` strings.
    DuckDb,
    /// MySQL / MariaDB: `'...'` and `"..."` strings with backslash escapes, `` `...` ``
    /// identifiers, `#` comments.
    MySql,
}

/// The config fields that hold SQL, by component: the one list of them. A parameter in any
/// other field is substituted as text.
pub const SQL_FIELDS: &[(&str, &str, Dialect)] = &[
    ("duckdb.processor", "query", Dialect::DuckDb),
    ("mysql.extractor", "query", Dialect::MySql),
    ("mysql.extractor", "where", Dialect::MySql),
];

/// The dialect of `component`'s config field `key`, if it holds SQL.
pub fn sql_field(component: &str, key: &str) -> Option<Dialect> {
    SQL_FIELDS
        .iter()
        .find(|(c, k, _)| *c == component && *k == key)
        .map(|(_, _, d)| *d)
}

/// Where a position in a statement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Code,
    /// In a quoted string or identifier closed by `quote`; `backslash`: `\` escapes.
    Quoted {
        quote: char,
        backslash: bool,
    },
    LineComment,
    BlockComment,
    /// In `$tag$...$tag$`; holds the closing delimiter.
    Dollar(String),
}

/// Replaces `${params.NAME}` placeholders in the SQL `text`. `value_of` gives a parameter's
/// value (`None`: unresolved; the placeholder is kept and its name pushed to `unresolved`).
/// `Err` names a placeholder that cannot be quoted where it stands.
pub(crate) fn substitute(
    text: &str,
    dialect: Dialect,
    value_of: &dyn Fn(&str) -> Option<Value>,
    unresolved: &mut Vec<String>,
) -> Result<String, String> {
    const OPEN: &str = "${params.";
    let mut out = String::with_capacity(text.len());
    let mut state = State::Code;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix(OPEN)
            && let Some(end) = after.find('}')
            && crate::params::is_name(&after[..end])
        {
            let name = &after[..end];
            let placeholder = &rest[..OPEN.len() + end + 1];
            rest = &after[end + 1..];
            match value_of(name) {
                None => {
                    unresolved.push(name.to_owned());
                    out.push_str(placeholder);
                }
                Some(value) => emit(&mut out, &state, dialect, &value)
                    .map_err(|why| format!("{placeholder}: {why}"))?,
            }
            continue;
        }
        let next = rest[c.len_utf8()..].chars().next();
        let mut len = c.len_utf8();
        state = match state {
            State::Code => match (c, next) {
                ('\'', _) => State::Quoted {
                    quote: '\'',
                    backslash: dialect == Dialect::MySql || escape_prefix(&out),
                },
                ('"', _) => State::Quoted {
                    quote: '"',
                    backslash: dialect == Dialect::MySql,
                },
                ('`', _) if dialect == Dialect::MySql => State::Quoted {
                    quote: '`',
                    backslash: false,
                },
                ('-', Some('-')) => {
                    len = 2;
                    State::LineComment
                }
                ('#', _) if dialect == Dialect::MySql => State::LineComment,
                ('/', Some('*')) => {
                    len = 2;
                    State::BlockComment
                }
                ('$', _) if dialect == Dialect::DuckDb => match dollar_tag(rest) {
                    Some(tag) => {
                        len = tag.len();
                        State::Dollar(tag.to_owned())
                    }
                    None => State::Code,
                },
                _ => State::Code,
            },
            State::Quoted { quote, backslash } => {
                if backslash && c == '\\' {
                    len += next.map_or(0, char::len_utf8);
                    State::Quoted { quote, backslash }
                } else if c == quote && next == Some(quote) {
                    len = 2;
                    State::Quoted { quote, backslash }
                } else if c == quote {
                    State::Code
                } else {
                    State::Quoted { quote, backslash }
                }
            }
            State::LineComment if c == '\n' => State::Code,
            State::BlockComment if c == '*' && next == Some('/') => {
                len = 2;
                State::Code
            }
            State::Dollar(tag) => {
                if rest.starts_with(&tag) {
                    len = tag.len();
                    State::Code
                } else {
                    State::Dollar(tag)
                }
            }
            other => other,
        };
        out.push_str(&rest[..len]);
        rest = &rest[len..];
    }
    Ok(out)
}

/// `E'...'` (DuckDB, as PostgreSQL) reads backslash escapes: `out` ends with a lone `E`.
fn escape_prefix(out: &str) -> bool {
    let mut chars = out.chars().rev();
    matches!(chars.next(), Some('E' | 'e'))
        && !chars
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// `$tag$` (tag: letters, digits, `_`, not starting with a digit) at the start of `text`.
fn dollar_tag(text: &str) -> Option<&str> {
    let body = &text[1..];
    let tag_len = body
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(body.len(), |(i, _)| i);
    let tag = &body[..tag_len];
    if tag.starts_with(|c: char| c.is_ascii_digit()) || !body[tag_len..].starts_with('$') {
        return None;
    }
    Some(&text[..tag_len + 2])
}

fn emit(out: &mut String, state: &State, dialect: Dialect, value: &Value) -> Result<(), String> {
    match state {
        State::Code => {
            // `E` + `'x'` would make an escape string, `-` + `-1` a comment, `'a'` + `'b'`
            // one string.
            if out.chars().next_back().is_some_and(|c| {
                c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '\'' | '"' | '`')
            }) {
                out.push(' ');
            }
            out.push_str(&literal(value, dialect));
        }
        State::Quoted { quote, backslash } => {
            for c in text_of(value).chars() {
                if c == *quote || (*backslash && c == '\\') {
                    out.push(c);
                }
                out.push(c);
            }
        }
        State::LineComment | State::BlockComment => {
            let text = literal(value, dialect)
                .replace(['\n', '\r'], " ")
                .replace("*/", "* /");
            out.push_str(&text);
        }
        State::Dollar(tag) => {
            let text = text_of(value);
            if text.contains('$') {
                return Err(format!(
                    "the value holds `$` and cannot be placed inside the dollar-quoted string {tag}...{tag}; use a '...' string instead"
                ));
            }
            out.push_str(&text);
        }
    }
    Ok(())
}

/// The value as a SQL literal.
fn literal(value: &Value, dialect: Dialect) -> String {
    let text = match value {
        Value::Null => return "NULL".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if is_plain_number(&text) {
        return if text.starts_with('-') {
            format!("({text})")
        } else {
            text
        };
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' || (dialect == Dialect::MySql && c == '\\') {
            quoted.push(c);
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// `12`, `-3`, `4.5`: digits with an optional sign and fraction, no leading zeros (`007` is a
/// code, not a number).
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && (int == "0" || !int.starts_with('0')) && frac.is_none_or(all_digits)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sql(text: &str, dialect: Dialect, x: Value) -> Result<String, String> {
        let mut unresolved = Vec::new();
        let result = substitute(
            text,
            dialect,
            &|name| (name == "x").then(|| x.clone()),
            &mut unresolved,
        );
        assert!(unresolved.is_empty(), "{unresolved:?}");
        result
    }

    const INJECTION: &str = "1'; COPY (SELECT 1) TO '/tmp/y'; --";

    #[test]
    fn an_injection_attempt_stays_a_string_value() {
        assert_eq!(
            sql(
                "SELECT * FROM t WHERE a = ${params.x}",
                Dialect::DuckDb,
                json!(INJECTION)
            )
            .unwrap(),
            "SELECT * FROM t WHERE a = '1''; COPY (SELECT 1) TO ''/tmp/y''; --'"
        );
        assert_eq!(
            sql(
                "SELECT * FROM t WHERE a = '${params.x}'",
                Dialect::DuckDb,
                json!(INJECTION)
            )
            .unwrap(),
            "SELECT * FROM t WHERE a = '1''; COPY (SELECT 1) TO ''/tmp/y''; --'"
        );
        // MySQL reads backslash escapes: `\'` must not close the string.
        assert_eq!(
            sql(
                "WHERE a = '${params.x}'",
                Dialect::MySql,
                json!("\\'; DROP TABLE t; --")
            )
            .unwrap(),
            "WHERE a = '\\\\''; DROP TABLE t; --'"
        );
        assert_eq!(
            sql(
                "WHERE a = ${params.x}",
                Dialect::MySql,
                json!("\\' OR 1=1 #")
            )
            .unwrap(),
            "WHERE a = '\\\\'' OR 1=1 #'"
        );
    }

    #[test]
    fn numbers_stay_numbers_outside_quotes() {
        let d = Dialect::DuckDb;
        assert_eq!(sql("LIMIT ${params.x}", d, json!(10)).unwrap(), "LIMIT 10");
        assert_eq!(
            sql("LIMIT ${params.x}", d, json!("10")).unwrap(),
            "LIMIT 10"
        );
        assert_eq!(
            sql("y >= ${params.x}", d, json!("2.5")).unwrap(),
            "y >= 2.5"
        );
        assert_eq!(sql("y -${params.x}", d, json!(-1)).unwrap(), "y - (-1)");
        assert_eq!(
            sql("c = ${params.x}", d, json!("007")).unwrap(),
            "c = '007'"
        );
        assert_eq!(sql("c = ${params.x}", d, json!(null)).unwrap(), "c = NULL");
        assert_eq!(
            sql("c = ${params.x}", d, json!(true)).unwrap(),
            "c = 'true'"
        );
        assert_eq!(
            sql("c = E${params.x}", d, json!("\\'")).unwrap(),
            "c = E '\\'''"
        );
        assert_eq!(sql("c = '${params.x}'", d, json!(10)).unwrap(), "c = '10'");
    }

    #[test]
    fn quoted_identifiers_comments_and_escape_strings_are_respected() {
        let d = Dialect::DuckDb;
        assert_eq!(
            sql("FROM \"${params.x}\"", d, json!("a\"b")).unwrap(),
            "FROM \"a\"\"b\""
        );
        assert_eq!(
            sql("FROM `${params.x}`", Dialect::MySql, json!("a`b")).unwrap(),
            "FROM `a``b`"
        );
        assert_eq!(
            sql("SELECT 1 -- ${params.x}\n", d, json!("x\nDROP TABLE t")).unwrap(),
            "SELECT 1 -- 'x DROP TABLE t'\n"
        );
        assert_eq!(
            sql("SELECT /* ${params.x} */ 1", d, json!("*/ DROP")).unwrap(),
            "SELECT /* '* / DROP' */ 1"
        );
        assert_eq!(
            sql("SELECT E'${params.x}'", d, json!("\\'; DROP")).unwrap(),
            "SELECT E'\\\\''; DROP'"
        );
        // Quotes already in the statement are followed: the placeholder after a closed
        // string, and one after an escaped quote, are outside and inside respectively.
        assert_eq!(
            sql("SELECT 'it''s', ${params.x}", d, json!("a")).unwrap(),
            "SELECT 'it''s', 'a'"
        );
        assert_eq!(
            sql("SELECT 'a\\' ${params.x}'", Dialect::MySql, json!("b'")).unwrap(),
            "SELECT 'a\\' b'''"
        );
        assert_eq!(
            sql("SELECT $$${params.x}$$", d, json!("b'c")).unwrap(),
            "SELECT $$b'c$$"
        );
        assert!(
            sql("SELECT $t$${params.x}$t$", d, json!("$t$; DROP"))
                .unwrap_err()
                .contains("dollar-quoted")
        );
    }

    #[test]
    fn fields_holding_sql_are_listed_once() {
        assert_eq!(
            sql_field("duckdb.processor", "query"),
            Some(Dialect::DuckDb)
        );
        assert_eq!(sql_field("mysql.extractor", "where"), Some(Dialect::MySql));
        assert_eq!(sql_field("graphql.extractor", "query"), None);
    }
}
