//! DuckDB's own parser, without running anything: how many statements a text holds, and whether
//! a text is one query that can define a table.
//!
//! duckdb-rs cannot tell this safely: `Connection::prepare` *executes* every statement of a text
//! but the last, so `SELECT 1; DROP TABLE t` drops the table while "preparing". Here the text is
//! split by `duckdb_extract_statements` on a private in-memory database, which parses and does
//! not bind or execute. The verdict is therefore DuckDB's own, for the DuckDB version linked.
#![warn(missing_docs)]

mod ffi;

/// Why a text is not exactly one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// The text holds no statement (empty, only comments or `;`).
    Empty,
    /// DuckDB's parser rejects the text; the message is DuckDB's, positions relative to the text.
    Syntax(String),
    /// The text holds this many statements; a query is exactly one.
    Several(usize),
    /// The one statement is not a query (`COPY`, `ATTACH`, `INSTALL`, `DROP`, `SET`, ...).
    NotAQuery,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("the query is empty"),
            Self::Syntax(message) => f.write_str(message),
            Self::Several(n) => write!(
                f,
                "the query holds {n} statements; it must be exactly one SELECT (its result becomes the step's table)"
            ),
            Self::NotAQuery => f.write_str(
                "the statement is not a query; only a SELECT (or VALUES, FROM ..., WITH ...) can define the step's table",
            ),
        }
    }
}

impl std::error::Error for QueryError {}

/// Opens the process's parser on another thread, so that the first check does not wait for
/// it: a run that will check queries calls this when it starts. Opening a DuckDB database
/// takes about 8 ms alone, and made the first SQL step of a run 20-30 ms slower while the run
/// database was busy beside it. Dropping the returned [`Opening`] waits for the open to end:
/// keep it until the process may exit, so that no thread is inside DuckDB while it exits.
#[must_use = "dropping the opening waits for it"]
pub fn open_in_background() -> Opening {
    Opening(Some(std::thread::spawn(ffi::open_parser)))
}

/// The parser being opened by [`open_in_background`]; dropping it waits for the open to end.
#[derive(Debug)]
pub struct Opening(Option<std::thread::JoinHandle<()>>);

impl Drop for Opening {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            // The open reports nothing; a panic in it would only mean the first check opens
            // the parser again and reports why.
            let _ = thread.join();
        }
    }
}

/// Whether the process's parser is open (the first check, or [`open_in_background`], opens it).
pub fn is_open() -> bool {
    ffi::parser_is_open()
}

/// How many statements DuckDB's parser finds in `sql` (0 for a text of only comments and `;`).
/// Nothing is bound or executed. A parse error comes back as DuckDB's message.
pub fn count_statements(sql: &str) -> Result<usize, String> {
    ffi::count_statements(sql)
}

/// The text that creates `table` (already quoted) from `query`: the query on its own lines, so a
/// trailing `--` comment cannot swallow anything after it.
pub fn create_table_as(table: &str, query: &str) -> String {
    format!("CREATE TABLE {table} AS\n{query}\n")
}

/// Checks that `query` is exactly one statement and that it is a query: DuckDB must parse
/// `CREATE TABLE <table> AS <query>` as one statement, which its grammar allows only for a
/// SELECT-like statement. Returns the `CREATE TABLE ... AS` text to run.
///
/// Line numbers in DuckDB's messages for the returned text are one more than in `query`.
pub fn checked_create_table_as(table: &str, query: &str) -> Result<String, QueryError> {
    match count_statements(query) {
        Ok(0) => return Err(QueryError::Empty),
        Ok(1) => {}
        Ok(n) => return Err(QueryError::Several(n)),
        Err(message) => return Err(QueryError::Syntax(message)),
    }
    let create = create_table_as(table, query);
    match count_statements(&create) {
        Ok(1) => Ok(create),
        // The query parses on its own but not as the body of CREATE TABLE ... AS: it is a
        // statement of another kind. (A count other than one cannot happen for a text that was
        // one statement, but is refused the same way.)
        Ok(_) | Err(_) => Err(QueryError::NotAQuery),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_statements_without_running_them() {
        assert_eq!(count_statements("SELECT 1"), Ok(1));
        assert_eq!(count_statements("SELECT 1;"), Ok(1));
        assert_eq!(count_statements("SELECT 1; DROP TABLE t"), Ok(2));
        assert_eq!(count_statements("SELECT ';' AS x -- ; DROP"), Ok(1));
        assert_eq!(count_statements("  ;  "), Ok(0));
        assert_eq!(count_statements("-- only a comment"), Ok(0));
        let err = count_statements("SELEC 1").unwrap_err();
        assert!(err.contains("syntax error"), "{err}");
    }

    #[test]
    fn one_query_becomes_create_table_as() {
        let sql = checked_create_table_as("\"t\"", "SELECT 1 AS x -- trailing comment").unwrap();
        assert_eq!(
            sql,
            "CREATE TABLE \"t\" AS\nSELECT 1 AS x -- trailing comment\n"
        );
        for query in [
            "FROM range(3)",
            "VALUES (1), (2)",
            "WITH a AS (SELECT 1 AS x) SELECT * FROM a",
            "(SELECT 1) UNION ALL (SELECT 2);",
            "SELECT 'it''s; fine' AS s",
        ] {
            checked_create_table_as("\"t\"", query).unwrap_or_else(|e| panic!("{query}: {e}"));
        }
    }

    #[test]
    fn several_statements_and_other_statements_are_refused() {
        assert_eq!(
            checked_create_table_as("t", "SELECT 1; DROP TABLE src"),
            Err(QueryError::Several(2))
        );
        assert_eq!(
            checked_create_table_as("t", "SELECT 1; COMMIT; SELECT error('x')"),
            Err(QueryError::Several(3))
        );
        // Text meant to break out of a wrapper is refused on its own.
        assert!(matches!(
            checked_create_table_as("t", "SELECT 1) ; DROP TABLE src; SELECT (1"),
            Err(QueryError::Syntax(_))
        ));
        for query in [
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "ATTACH '/tmp/other.duckdb' AS o",
            "INSTALL httpfs",
            "LOAD httpfs",
            "DROP TABLE src",
            "SET enable_external_access = true",
            "PRAGMA version",
            "CALL pragma_version()",
            "CREATE TABLE x AS SELECT 1",
            "INSERT INTO src VALUES (1)",
            "DELETE FROM src",
            "DETACH main",
        ] {
            assert_eq!(
                checked_create_table_as("t", query),
                Err(QueryError::NotAQuery),
                "{query}"
            );
        }
        assert_eq!(checked_create_table_as("t", " ; "), Err(QueryError::Empty));
        assert!(matches!(
            checked_create_table_as("t", "SELECT FROM WHERE"),
            Err(QueryError::Syntax(_))
        ));
    }
}
