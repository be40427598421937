//! Comparing two kept sessions step by step: for each step table, the row counts on each side
//! and the rows only in one side (`EXCEPT ALL`, so duplicates count), with a sample of them;
//! tables whose columns differ are reported as such. Both databases are attached read-only to
//! an in-memory DuckDB, so neither session is changed.

use duckdb::arrow::array::RecordBatch;

use crate::{Error, Result, Session, Table, tables};

/// How two sessions compare.
#[derive(Debug)]
pub struct Diff {
    /// One entry per step table of either session, by name.
    pub steps: Vec<StepDiff>,
    /// Whether every compared table holds the same rows in both sessions.
    pub identical: bool,
}

/// How one step's tables compare.
#[derive(Debug)]
pub struct StepDiff {
    /// The step id (its table's name).
    pub step_id: String,
    /// Rows in the first session's table, if it has one.
    pub rows_a: Option<u64>,
    /// Rows in the second session's table, if it has one.
    pub rows_b: Option<u64>,
    /// What differs.
    pub comparison: Comparison,
}

/// What differs between one step's two tables.
#[derive(Debug)]
pub enum Comparison {
    /// Same columns: the rows only in each side, with up to `sample` of them each.
    Rows {
        /// Rows of a not in b.
        only_in_a: u64,
        /// Rows of b not in a.
        only_in_b: u64,
        /// Some of them (none when both counts are 0).
        sample_only_in_a: Vec<RecordBatch>,
        /// Some of them.
        sample_only_in_b: Vec<RecordBatch>,
    },
    /// The columns differ: each side's `name type, ...`.
    Columns {
        /// The first session's columns.
        a: String,
        /// The second session's columns.
        b: String,
    },
    /// Only one session has the table.
    Missing,
}

/// Compares sessions `a` and `b` (only the table of step `only`, if given), sampling up to
/// `sample` rows per side of each differing table.
pub fn diff(a: &Session, b: &Session, only: Option<&str>, sample: usize) -> Result<Diff> {
    let (tables_a, tables_b) = (tables(a)?, tables(b)?);
    let mut names: Vec<String> = tables_a
        .iter()
        .chain(&tables_b)
        .map(|t| t.name.clone())
        .collect();
    names.sort();
    names.dedup();
    if let Some(step) = only {
        if !names.iter().any(|n| n == step) {
            return Err(Error::NoTable(step.to_owned()));
        }
        names.retain(|n| n == step);
    }
    let db = |session: &Session| {
        let id = session.id.clone();
        move |source| Error::Database { id, source }
    };
    let conn = duckdb::Connection::open_in_memory().map_err(db(a))?;
    for (alias, session) in [("a", a), ("b", b)] {
        if session.database_path().exists() {
            let path =
                execution_context::quote_literal(&session.database_path().display().to_string());
            conn.execute_batch(&format!("ATTACH {path} AS {alias} (READ_ONLY)"))
                .map_err(db(session))?;
        }
    }
    let mut steps = Vec::new();
    let mut identical = true;
    for name in names {
        let ta = tables_a.iter().find(|t| t.name == name);
        let tb = tables_b.iter().find(|t| t.name == name);
        let quoted = execution_context::quote_identifier(&name);
        let except = |x: &str, y: &str| {
            format!("SELECT * FROM {x}.{quoted} EXCEPT ALL SELECT * FROM {y}.{quoted}")
        };
        let comparison = match (ta, tb) {
            (Some(ta), Some(tb)) if ta.columns == tb.columns => {
                let count = |x: &str, y: &str| -> Result<u64> {
                    let sql = format!("SELECT count(*) FROM ({})", except(x, y));
                    let n = conn
                        .query_row(&sql, [], |r| r.get::<_, i64>(0))
                        .map_err(db(a))?;
                    Ok(u64::try_from(n).unwrap_or(0))
                };
                let rows = |x: &str, y: &str| -> Result<Vec<RecordBatch>> {
                    let sql = format!("SELECT * FROM ({}) LIMIT {sample}", except(x, y));
                    let mut stmt = conn.prepare(&sql).map_err(db(a))?;
                    Ok(stmt.query_arrow([]).map_err(db(a))?.collect())
                };
                let (only_in_a, only_in_b) = (count("a", "b")?, count("b", "a")?);
                let differ = only_in_a + only_in_b > 0;
                identical &= !differ;
                Comparison::Rows {
                    only_in_a,
                    only_in_b,
                    sample_only_in_a: if differ { rows("a", "b")? } else { Vec::new() },
                    sample_only_in_b: if differ { rows("b", "a")? } else { Vec::new() },
                }
            }
            (Some(ta), Some(tb)) => {
                identical = false;
                Comparison::Columns {
                    a: columns(ta),
                    b: columns(tb),
                }
            }
            _ => {
                identical = false;
                Comparison::Missing
            }
        };
        steps.push(StepDiff {
            step_id: name,
            rows_a: ta.map(|t| t.rows),
            rows_b: tb.map(|t| t.rows),
            comparison,
        });
    }
    Ok(Diff { steps, identical })
}

fn columns(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|(n, ty)| format!("{n} {ty}"))
        .collect::<Vec<_>>()
        .join(", ")
}
