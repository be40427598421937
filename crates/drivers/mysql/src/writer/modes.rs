//! The write modes over one connection: append and upsert in one transaction, replace through
//! a staging table and one `RENAME TABLE`, and the checks of the destination each needs.

use driver_api::{DriverError, Result, StepContext, TableName};
use execution_context::object;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde_json::Value;

use super::ddl::{create_table_sql, ddl_event};
use super::load::{Loader, Method, choose_method, select_sql};
use super::{Config, Mode, WriteColumn, fail};
use crate::conn::quote_mysql_identifier;

/// Writes the step table `input` into `config.table` of `database` as `config.mode` says,
/// creating the table first when it is missing and `create_table` is set.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write(
    ctx: &StepContext,
    conn: &mut Conn,
    database: &str,
    config: &Config,
    keys: &[String],
    input: &TableName,
    columns: &mut [WriteColumn],
    method: Option<Method>,
) -> Result<u64> {
    let table = &config.table;
    let dest: Vec<(String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await
        .map_err(fail("cannot read the destination's columns"))?;
    let ddl = if dest.is_empty() {
        if !config.create_table {
            return Err(DriverError::config(
                "table",
                format!(
                    "table {table:?} does not exist in database {database:?}; create it or set create_table: true"
                ),
            ));
        }
        Some(create_table_sql(columns, keys)?)
    } else {
        let missing: Vec<&str> = columns
            .iter()
            .filter(|c| !dest.iter().any(|(d, _)| d.eq_ignore_ascii_case(&c.name)))
            .map(|c| c.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(DriverError::data(format!(
                "table {table:?} has no column {}; its columns are: {}",
                missing.join(", "),
                dest.iter()
                    .map(|(d, _)| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        None
    };
    for column in columns.iter_mut() {
        let dest_type = dest
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(&column.name))
            .map(|(_, t)| t.as_str());
        column.wrap = if column.duck_type == "BLOB" {
            Some("UNHEX(?)")
        } else if dest_type == Some("bit") {
            Some("CAST(? AS UNSIGNED)")
        } else {
            None
        };
    }
    if config.mode == Mode::Upsert && ddl.is_none() {
        check_unique_key(conn, table, keys).await?;
    }
    if config.mode == Mode::Replace && ddl.is_none() {
        check_no_foreign_keys(conn, table).await?;
    }

    let method = match method {
        Some(m) => m,
        None => choose_method(conn).await?,
    };
    ctx.event(
        "write.method",
        object([
            ("method", Value::String(method.name().into())),
            ("reason", Value::String(method.reason().into())),
        ]),
    );
    let mut writer = Loader {
        ctx,
        columns,
        batch_size: config.batch_size.max(1),
        select: select_sql(input, columns),
        method,
    };

    if let Some(body) = &ddl {
        let file = ctx.artifacts_dir().join("ddl_plan.sql");
        let statement = format!("CREATE TABLE {} {body}", quote_mysql_identifier(table));
        std::fs::write(&file, format!("{statement};\n"))
            .map_err(|e| DriverError::io(format!("cannot write {}", file.display()), e))?;
    }

    match config.mode {
        Mode::Replace => replace(ctx, conn, &mut writer, table, ddl.as_deref()).await,
        Mode::Append | Mode::Upsert => {
            if let Some(body) = &ddl {
                let statement = format!("CREATE TABLE {} {body}", quote_mysql_identifier(table));
                conn.query_drop(&statement)
                    .await
                    .map_err(fail("cannot create the destination table"))?;
                ddl_event(ctx, table);
            }
            conn.query_drop("START TRANSACTION")
                .await
                .map_err(fail("cannot start a transaction"))?;
            let result = async {
                if config.truncate_before {
                    conn.query_drop(format!("DELETE FROM {}", quote_mysql_identifier(table)))
                        .await
                        .map_err(fail("cannot delete the destination's rows"))?;
                }
                let rows = if config.mode == Mode::Upsert {
                    writer.upsert(conn, table, keys).await?
                } else {
                    writer.load(conn, table, None).await?
                };
                conn.query_drop("COMMIT")
                    .await
                    .map_err(fail("cannot commit"))?;
                Ok(rows)
            }
            .await;
            if result.is_err() {
                let _ = conn.query_drop("ROLLBACK").await;
            }
            result
        }
    }
}

async fn replace(
    ctx: &StepContext,
    conn: &mut Conn,
    writer: &mut Loader<'_>,
    table: &str,
    ddl: Option<&str>,
) -> Result<u64> {
    let staging = format!("{table}__osiris_staging");
    let old = format!("{table}__osiris_old");
    let (q_table, q_staging, q_old) = (
        quote_mysql_identifier(table),
        quote_mysql_identifier(&staging),
        quote_mysql_identifier(&old),
    );
    conn.query_drop(format!("DROP TABLE IF EXISTS {q_staging}, {q_old}"))
        .await
        .map_err(fail("cannot drop a leftover staging table"))?;
    match ddl {
        Some(body) => {
            conn.query_drop(format!("CREATE TABLE {q_staging} {body}"))
                .await
        }
        None => {
            conn.query_drop(format!("CREATE TABLE {q_staging} LIKE {q_table}"))
                .await
        }
    }
    .map_err(fail("cannot create the staging table"))?;
    let result = async {
        let rows = writer.load(conn, &staging, None).await?;
        match ddl {
            Some(_) => {
                conn.query_drop(format!("RENAME TABLE {q_staging} TO {q_table}"))
                    .await
            }
            None => {
                conn.query_drop(format!(
                    "RENAME TABLE {q_table} TO {q_old}, {q_staging} TO {q_table}"
                ))
                .await
            }
        }
        .map_err(fail("cannot swap the staging table in"))?;
        Ok(rows)
    }
    .await;
    match result {
        Ok(rows) => {
            if ddl.is_some() {
                ddl_event(ctx, table);
            } else {
                conn.query_drop(format!("DROP TABLE IF EXISTS {q_old}"))
                    .await
                    .map_err(fail("cannot drop the replaced table"))?;
            }
            Ok(rows)
        }
        Err(e) => {
            let _ = conn
                .query_drop(format!("DROP TABLE IF EXISTS {q_staging}"))
                .await;
            Err(e)
        }
    }
}

async fn check_unique_key(conn: &mut Conn, table: &str, keys: &[String]) -> Result<()> {
    let rows: Vec<(String, String)> = conn
        .exec(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
             ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (table,),
        )
        .await
        .map_err(fail("cannot read the destination's indexes"))?;
    let mut indexes: Vec<(String, Vec<String>)> = Vec::new();
    for (index, column) in rows {
        match indexes.iter_mut().find(|(i, _)| *i == index) {
            Some((_, cols)) => cols.push(column.to_lowercase()),
            None => indexes.push((index, vec![column.to_lowercase()])),
        }
    }
    let mut wanted: Vec<String> = keys.iter().map(|k| k.to_lowercase()).collect();
    wanted.sort();
    let matches = indexes.iter().any(|(_, cols)| {
        let mut cols = cols.clone();
        cols.sort();
        cols == wanted
    });
    if !matches {
        return Err(DriverError::config(
            "primary_key",
            format!(
                "table {table:?} has no PRIMARY KEY or UNIQUE index on exactly ({}); upsert would insert duplicates. Its unique keys: {}",
                keys.join(", "),
                if indexes.is_empty() {
                    "none".to_owned()
                } else {
                    indexes
                        .iter()
                        .map(|(i, c)| format!("{i} ({})", c.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ),
        ));
    }
    Ok(())
}

async fn check_no_foreign_keys(conn: &mut Conn, table: &str) -> Result<()> {
    let count: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE (CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?) \
             OR (UNIQUE_CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = ?)",
            (table, table),
        )
        .await
        .map_err(fail("cannot read the destination's foreign keys"))?;
    if count.unwrap_or(0) > 0 {
        return Err(DriverError::config(
            "mode",
            format!(
                "table {table:?} has a foreign key or is referenced by one; replace swaps tables and would lose it. Use mode append with truncate_before: true"
            ),
        ));
    }
    Ok(())
}
