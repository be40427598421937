//! DuckDB's CSV reader errors, read for people: the file, the line and the one sentence that
//! matters, without the echo of the line, the "Possible fixes" (which name DuckDB's own
//! `read_csv` options) and the dump of reader settings. Shared by `filesystem.csv_extractor`
//! (errors while it reads) and the engine, for any step that fails reading a CSV view later
//! ([`explain_view_read`]).

use crate::{DriverError, TableName};

/// Whether DuckDB's message is its CSV reader's error about a row of a file.
fn is_csv_read_error(message: &str) -> bool {
    message.contains("CSV Error on Line")
}

/// The line number of DuckDB's `CSV Error on Line: N`.
pub fn csv_error_line(message: &str) -> Option<u64> {
    let rest = &message[message.find("CSV Error on Line: ")? + "CSV Error on Line: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The file of the settings dump (`  file = <path>`).
fn csv_error_file(message: &str) -> Option<&str> {
    message
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("file = "))
        .map(str::trim_end)
        .filter(|f| !f.is_empty())
}

/// The informative part of a DuckDB error: its known message lines, or else its first line;
/// without the line-number prefix, the echo of the line (which may itself span lines), the
/// "Possible fixes" and the dump of reader settings.
pub fn essential(message: &str) -> String {
    const KNOWN: [&str; 6] = [
        "Expected Number of Columns",
        "Value with unterminated quote",
        "Invalid unicode",
        "Error when converting column",
        "Maximum line size",
        "It was not possible",
    ];
    let known: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| KNOWN.iter().any(|k| l.starts_with(k)))
        .collect();
    if !known.is_empty() {
        return known.join("; ");
    }
    let mut first = message.lines().next().unwrap_or_default().trim();
    for prefix in [
        "Invalid Input Error: ",
        "Conversion Error: ",
        "Binder Error: ",
        "Catalog Error: ",
        "IO Error: ",
    ] {
        first = first.strip_prefix(prefix).unwrap_or(first);
    }
    if first.starts_with("CSV Error on Line") {
        // The message follows the echo of the offending line.
        if let Some(next) = message
            .lines()
            .skip(1)
            .map(str::trim)
            .take_while(|l| !l.starts_with("Possible"))
            .find(|l| !l.is_empty() && !l.starts_with("Original Line:"))
        {
            return next.to_owned();
        }
    }
    first.to_owned()
}

/// `text` with its first letter in lower case (a DuckDB sentence inside ours).
pub fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The context and DuckDB message of `error` when it is DuckDB's CSV reader failing on a row
/// (what [`explain_view_read`] explains); `None` for any other error.
pub fn csv_read_failure(error: &DriverError) -> Option<(String, String)> {
    let DriverError::DuckDb { context, source } = error else {
        return None;
    };
    let message = source.to_string();
    is_csv_read_error(&message).then(|| (context.clone(), message))
}

/// A step that failed on a row of a CSV file which one of its inputs keeps as a view
/// (`filesystem.csv_extractor`'s default, ADR 0036): the file is only read now, and DuckDB's
/// message names its own `read_csv` options. From the failure's `context` and DuckDB
/// `message` ([`csv_read_failure`]), a data error that says which file and line, the one
/// sentence that matters, and which input step's keys fix it. `inputs` are the step's inputs
/// as (step id, table).
pub fn explain_view_read(
    conn: &duckdb::Connection,
    context: &str,
    message: &str,
    inputs: &[(String, TableName)],
) -> DriverError {
    let file = csv_error_file(message);
    let reader = file.and_then(|file| {
        inputs
            .iter()
            .find(|(_, table)| view_reads(conn, table, file))
            .map(|(step, _)| step.as_str())
    });
    let at = match (file, csv_error_line(message)) {
        (Some(file), Some(line)) => format!("{file} line {line}"),
        (Some(file), None) => file.to_owned(),
        (None, _) => "a CSV file".to_owned(),
    };
    let through = reader
        .map(|step| format!(" (read now through step '{step}', a view over the file)"))
        .unwrap_or_default();
    let what = lowercase_first(essential(message).trim_end_matches('.'));
    let hint = match reader {
        Some(step) if message.contains("Error when converting column") => format!(
            "; set the column's type with `dtype` in step '{step}' (its type was detected from the first rows), or `materialize: table` there to check the whole file when it is extracted"
        ),
        _ => String::new(),
    };
    DriverError::data(format!("{context}: reading {at}{through}: {what}{hint}"))
}

/// Whether `table` is a view whose definition reads `file`.
fn view_reads(conn: &duckdb::Connection, table: &TableName, file: &str) -> bool {
    conn.query_row(
        "SELECT sql FROM duckdb_views() WHERE view_name = ? AND NOT internal",
        [table.as_str()],
        |row| row.get::<_, String>(0),
    )
    .is_ok_and(|sql| sql.contains(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essential_keeps_the_message_and_drops_the_settings_dump() {
        let message = "Invalid Input Error: CSV Error on Line: 30002\nOriginal Line: 1,2,3\nExpected Number of Columns: 2 Found: 3\nPossible fixes:\n* Enable null padding\n\n  file = bad2.csv\n  delimiter = , (Set By User)";
        assert_eq!(essential(message), "Expected Number of Columns: 2 Found: 3");
        assert_eq!(csv_error_line(message), Some(30002));
        assert_eq!(csv_error_file(message), Some("bad2.csv"));
        assert!(is_csv_read_error(message));
        let multi_line_echo = "Invalid Input Error: CSV Error on Line: 7\nOriginal Line: 1,\"x\n2,3\n\nValue with unterminated quote found.\n\nPossible fixes:";
        assert_eq!(
            essential(multi_line_echo),
            "Value with unterminated quote found."
        );
        assert_eq!(csv_error_file(multi_line_echo), None);
        assert_eq!(lowercase_first("Error when"), "error when");
    }
}
