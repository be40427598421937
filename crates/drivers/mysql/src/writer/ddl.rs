//! `create_table`: the MySQL column types for the step table's DuckDB types, the
//! `CREATE TABLE` body, and the `table.ddl_executed` event.

use driver_api::{DriverError, Result, StepContext};
use execution_context::object;
use serde_json::Value;

use super::WriteColumn;
use crate::conn::quote_mysql_identifier;

/// The `table.ddl_executed` event, once the table exists.
pub(super) fn ddl_event(ctx: &StepContext, table: &str) {
    ctx.event(
        "table.ddl_executed",
        object([
            ("table", Value::String(table.to_owned())),
            ("ddl_plan", Value::String("ddl_plan.sql".into())),
        ]),
    );
}

/// The MySQL column type `create_table` uses for a DuckDB type.
fn mysql_type_for(duck_type: &str, is_key: bool) -> Option<String> {
    let t = match duck_type {
        "BOOLEAN" => "TINYINT(1)",
        "TINYINT" => "TINYINT",
        "SMALLINT" => "SMALLINT",
        "INTEGER" => "INT",
        "BIGINT" => "BIGINT",
        "UTINYINT" => "TINYINT UNSIGNED",
        "USMALLINT" => "SMALLINT UNSIGNED",
        "UINTEGER" => "INT UNSIGNED",
        "UBIGINT" => "BIGINT UNSIGNED",
        "HUGEINT" => "DECIMAL(39,0)",
        "UHUGEINT" => "DECIMAL(39,0) UNSIGNED",
        "FLOAT" => "FLOAT",
        "DOUBLE" => "DOUBLE",
        "DATE" => "DATE",
        "TIME" | "TIME WITH TIME ZONE" | "INTERVAL" => "TIME(6)",
        "TIMESTAMP"
        | "TIMESTAMP_NS"
        | "TIMESTAMP_MS"
        | "TIMESTAMP_S"
        | "TIMESTAMP WITH TIME ZONE" => "DATETIME(6)",
        "VARCHAR" if is_key => "VARCHAR(255)",
        "VARCHAR" => "LONGTEXT",
        "BLOB" if is_key => "VARBINARY(255)",
        "BLOB" => "LONGBLOB",
        "UUID" => "CHAR(36)",
        "JSON" => "JSON",
        t if t.starts_with("DECIMAL(") => return Some(t.to_owned()),
        t if t.starts_with("ENUM(") => {
            return Some(if is_key { "VARCHAR(255)" } else { "LONGTEXT" }.to_owned());
        }
        t if t.ends_with(']') || t.starts_with("STRUCT") || t.starts_with("MAP") => "JSON",
        _ => return None,
    };
    Some(t.to_owned())
}

/// The column list of `CREATE TABLE <name> (...)` for the step table's columns.
pub(super) fn create_table_sql(columns: &[WriteColumn], keys: &[String]) -> Result<String> {
    let mut defs = Vec::with_capacity(columns.len() + 1);
    for c in columns {
        let is_key = keys.iter().any(|k| k.eq_ignore_ascii_case(&c.name));
        let ty = mysql_type_for(&c.duck_type, is_key).ok_or_else(|| {
            DriverError::data(format!(
                "column {:?} has DuckDB type {} which create_table cannot map to MySQL; cast it in a duckdb.processor step",
                c.name, c.duck_type
            ))
        })?;
        defs.push(format!(
            "{} {ty}{}",
            quote_mysql_identifier(&c.name),
            if is_key { " NOT NULL" } else { "" }
        ));
    }
    if !keys.is_empty() {
        defs.push(format!(
            "PRIMARY KEY ({})",
            keys.iter()
                .map(|k| quote_mysql_identifier(k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(format!(
        "({}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        defs.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_table_maps_duckdb_types() {
        let cols: Vec<WriteColumn> = [
            ("id", "VARCHAR"),
            ("n", "UBIGINT"),
            ("d", "DECIMAL(12,2)"),
            ("l", "INTEGER[]"),
        ]
        .iter()
        .map(|(n, t)| WriteColumn {
            name: (*n).into(),
            duck_type: (*t).into(),
            wrap: None,
        })
        .collect();
        assert_eq!(
            create_table_sql(&cols, &["id".into()]).unwrap(),
            "(`id` VARCHAR(255) NOT NULL, `n` BIGINT UNSIGNED, `d` DECIMAL(12,2), `l` JSON, PRIMARY KEY (`id`)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        );
        let bad = [WriteColumn {
            name: "u".into(),
            duck_type: "BIT".into(),
            wrap: None,
        }];
        assert!(
            create_table_sql(&bad, &[])
                .unwrap_err()
                .to_string()
                .contains("BIT")
        );
    }
}
