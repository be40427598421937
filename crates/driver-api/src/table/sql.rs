//! Statements on step tables: create one from a query, count its rows, check its keys.

use crate::{DriverError, Result, StepContext, TableName, quote_identifier};

/// Runs `work` inside one transaction: commit on success, roll back on error.
pub(crate) fn in_transaction<T>(
    conn: &duckdb::Connection,
    context: &str,
    work: impl FnOnce(&duckdb::Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(|e| DriverError::duckdb(context, e))?;
    match work(conn) {
        Ok(value) => {
            conn.execute_batch("COMMIT")
                .map_err(|e| DriverError::duckdb(context, e))?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(error)
        }
    }
}

/// Gets the query check of [`replace_table_as`] (DuckDB's parser, opened once per process)
/// ready on another thread: a run whose plan has SQL steps calls this as it starts, so that
/// its first SQL step does not wait for the parser to open. Keep the returned opening until
/// the process may exit: dropping it waits for the open to end.
pub fn prepare_query_checks() -> duckdb_parser::Opening {
    duckdb_parser::open_in_background()
}

/// Creates (or replaces) `table` as the result of `query`, atomically: an earlier table of the
/// same name stays untouched if the query fails. Returns the new table's row count.
///
/// `query` must be exactly one query, as DuckDB's own parser sees it ([`duckdb_parser`]): a
/// text with several statements or a statement of another kind (`COPY`, `ATTACH`, `DROP`, ...)
/// is refused before anything runs, as a config error on the key `query`. DuckDB's messages
/// about the query give line numbers of the query itself.
pub fn replace_table_as(conn: &duckdb::Connection, table: &TableName, query: &str) -> Result<u64> {
    let create = duckdb_parser::checked_create_table_as(&table.quoted(), query)
        .map_err(|error| DriverError::config("query", error.to_string()))?;
    let context = format!("cannot create table {table}");
    in_transaction(conn, &context, |conn| {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {table}"))
            .map_err(|source| DriverError::duckdb(context.clone(), source))?;
        // One statement (checked above), so `execute` runs exactly it.
        conn.execute(&create, [])
            .map_err(|source| DriverError::DuckDb {
                context: context.clone(),
                source: query_relative_lines(source),
            })?;
        table_row_count(conn, table)
    })
}

/// DuckDB numbers the lines of the `CREATE TABLE ... AS` text, whose first line is ours: make
/// `LINE n:` in its message count lines of the query.
fn query_relative_lines(error: duckdb::Error) -> duckdb::Error {
    match error {
        duckdb::Error::DuckDBFailure(code, Some(message)) => {
            duckdb::Error::DuckDBFailure(code, Some(shift_line_numbers(&message, 1)))
        }
        other => other,
    }
}

/// Rewrites every `LINE <n>:` of a DuckDB message to `LINE <n - by>:`.
pub fn shift_line_numbers(message: &str, by: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("LINE ") {
        out.push_str(&rest[..at + 5]);
        rest = &rest[at + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) if rest[digits..].starts_with(':') => {
                out.push_str(&n.saturating_sub(by).max(1).to_string());
                rest = &rest[digits..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

/// Checks that `keys` identify the rows of a step table, as writers that upsert or replace by
/// key need: no NULL in any key column and no key value twice. The error (class `data`) says
/// how many rows break which rule.
pub async fn check_key_columns(
    ctx: &StepContext,
    table: &TableName,
    keys: &[String],
) -> Result<()> {
    let quoted: Vec<String> = keys.iter().map(|k| quote_identifier(k)).collect();
    let any_null = quoted
        .iter()
        .map(|k| format!("{k} IS NULL"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!(
        "SELECT (SELECT count(*) FROM {table} WHERE {any_null}), \
         (SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY {k} HAVING count(*) > 1))",
        k = quoted.join(", ")
    );
    let context = format!("cannot check the primary_key values of {table}");
    let (nulls, dups): (i64, i64) = ctx
        .run_blocking(move |conn, _| {
            conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| DriverError::duckdb(context, e))
        })
        .await?;
    let names = keys.join(", ");
    if nulls > 0 {
        return Err(DriverError::data(format!(
            "{nulls} rows of {table} have NULL in a primary_key column ({names}); every key column needs a value"
        )));
    }
    if dups > 0 {
        return Err(DriverError::data(format!(
            "{dups} primary_key values ({names}) appear more than once in {table}; writing by key needs one row per key"
        )));
    }
    Ok(())
}

/// Number of rows of `table`.
pub fn table_row_count(conn: &duckdb::Connection, table: &TableName) -> Result<u64> {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
    .map_err(|e| DriverError::duckdb(format!("cannot count rows of {table}"), e))
}
