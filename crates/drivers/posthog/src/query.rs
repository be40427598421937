//! The HogQL of each page. Every query orders on a unique key and continues after the last row
//! of the previous page ("seek" pagination), so pages never overlap or skip rows however many
//! there are, and no query gets slower with depth as OFFSET would.

use jiff::Timestamp;

use crate::config::DataType;

/// Where a page starts: after the row with this sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seek {
    /// A time-ordered key: (timestamp, id).
    Time(Timestamp, String),
    /// A text key: (person_id, distinct_id).
    Text(String, String),
}

/// What one run reads.
#[derive(Debug, Clone)]
pub struct Window {
    /// Rows at or after this time (events, sessions: their timestamp; persons: created_at).
    pub since: Option<Timestamp>,
    /// Rows before this time (events and sessions).
    pub until: Option<Timestamp>,
    /// Only these event names.
    pub event_types: Option<Vec<String>>,
}

/// The (timestamp column, id column) a data type is ordered on.
pub fn sort_key(data_type: DataType) -> (&'static str, &'static str) {
    match data_type {
        DataType::Events => ("timestamp", "uuid"),
        DataType::Persons => ("created_at", "id"),
        DataType::Sessions => ("$start_timestamp", "session_id"),
        DataType::PersonDistinctIds => ("person_id", "distinct_id"),
    }
}

/// The HogQL of one page.
pub fn page_query(
    data_type: DataType,
    window: &Window,
    after: Option<&Seek>,
    page_size: u32,
) -> String {
    let (first, second) = sort_key(data_type);
    let (first_q, second_q) = (ident(first), ident(second));
    let (select, from) = match data_type {
        DataType::Events => (
            "uuid, event, timestamp, distinct_id, person_id, properties",
            "events",
        ),
        DataType::Persons => ("id, created_at, is_identified, properties", "persons"),
        DataType::Sessions => ("*", "sessions"),
        DataType::PersonDistinctIds => ("distinct_id, person_id", "person_distinct_ids"),
    };
    let mut filters = Vec::new();
    if data_type != DataType::PersonDistinctIds {
        if let Some(since) = window.since {
            filters.push(format!("{first_q} >= {}", datetime(since)));
        }
        if let Some(until) = window.until {
            filters.push(format!("{first_q} < {}", datetime(until)));
        }
    }
    if let Some(events) = &window.event_types {
        let names: Vec<String> = events.iter().map(|e| string(e)).collect();
        filters.push(format!("event IN ({})", names.join(", ")));
    }
    if let Some(after) = after {
        let (a, b) = match after {
            Seek::Time(ts, id) => (datetime(*ts), id_literal(data_type, id)),
            Seek::Text(p, d) => (string(p), string(d)),
        };
        filters.push(format!(
            "({first_q} > {a} OR ({first_q} = {a} AND {second_q} > {b}))"
        ));
    }
    let mut query = format!("SELECT {select} FROM {from}");
    if !filters.is_empty() {
        query.push_str(" WHERE ");
        query.push_str(&filters.join(" AND "));
    }
    query.push_str(&format!(
        " ORDER BY {first_q} ASC, {second_q} ASC LIMIT {page_size}"
    ));
    query
}

/// A HogQL identifier: bare when plain, else in backticks (`$start_timestamp`).
fn ident(name: &str) -> String {
    if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name.to_owned()
    } else {
        format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
    }
}

/// A HogQL string literal (backslash escapes, as ClickHouse).
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn id_literal(data_type: DataType, id: &str) -> String {
    match data_type {
        DataType::Events => format!("toUUID({})", string(id)),
        _ => string(id),
    }
}

/// A UTC instant with microseconds, explicit about its zone (HogQL would otherwise read a bare
/// timestamp in the project's time zone).
fn datetime(ts: Timestamp) -> String {
    format!(
        "toDateTime64({}, 6, 'UTC')",
        string(&ts.strftime("%Y-%m-%d %H:%M:%S%.6f").to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_page_filters_window_names_and_seeks_after_the_last_row() {
        let window = Window {
            since: Some("2024-01-01T00:00:00Z".parse().unwrap()),
            until: Some("2024-01-02T00:00:00.5Z".parse().unwrap()),
            event_types: Some(vec!["$pageview".into(), "it's".into()]),
        };
        let after = Seek::Time("2024-01-01T10:00:00.000123Z".parse().unwrap(), "u-1".into());
        assert_eq!(
            page_query(DataType::Events, &window, Some(&after), 500),
            "SELECT uuid, event, timestamp, distinct_id, person_id, properties FROM events \
             WHERE timestamp >= toDateTime64('2024-01-01 00:00:00.000000', 6, 'UTC') \
             AND timestamp < toDateTime64('2024-01-02 00:00:00.500000', 6, 'UTC') \
             AND event IN ('$pageview', 'it\\'s') \
             AND (timestamp > toDateTime64('2024-01-01 10:00:00.000123', 6, 'UTC') \
             OR (timestamp = toDateTime64('2024-01-01 10:00:00.000123', 6, 'UTC') AND uuid > toUUID('u-1'))) \
             ORDER BY timestamp ASC, uuid ASC LIMIT 500"
        );
    }

    #[test]
    fn sessions_quote_the_dollar_column_and_distinct_ids_have_no_window() {
        let window = Window {
            since: Some("2024-01-01T00:00:00Z".parse().unwrap()),
            until: None,
            event_types: None,
        };
        assert_eq!(
            page_query(DataType::Sessions, &window, None, 10),
            "SELECT * FROM sessions WHERE `$start_timestamp` >= toDateTime64('2024-01-01 00:00:00.000000', 6, 'UTC') \
             ORDER BY `$start_timestamp` ASC, session_id ASC LIMIT 10"
        );
        let after = Seek::Text("p1".into(), "d'1".into());
        assert_eq!(
            page_query(DataType::PersonDistinctIds, &window, Some(&after), 10),
            "SELECT distinct_id, person_id FROM person_distinct_ids \
             WHERE (person_id > 'p1' OR (person_id = 'p1' AND distinct_id > 'd\\'1')) \
             ORDER BY person_id ASC, distinct_id ASC LIMIT 10"
        );
    }
}
