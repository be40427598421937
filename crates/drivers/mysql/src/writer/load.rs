//! How rows reach the server: DuckDB formats every value as MySQL text in the `SELECT` that
//! streams the step table out ([`text_expression`]); the rows go as `LOAD DATA LOCAL INFILE`
//! fed from tab-separated chunks, or as multi-row `INSERT`s when the server refuses it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use bytes::Bytes;
use driver_api::{DriverError, Result, StepContext, TableName, TableReader, quote_identifier};
use execution_context::object;
use futures::StreamExt;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::{WriteColumn, fail};
use crate::conn::{classify, quote_mysql_identifier, quote_mysql_literal};

/// How rows reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// `LOAD DATA LOCAL INFILE` from a stream of generated chunks.
    LoadData,
    /// Multi-row INSERTs, and why.
    Insert(&'static str),
}

impl Method {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::LoadData => "load_data_local_infile",
            Self::Insert(_) => "insert",
        }
    }

    pub(super) fn reason(self) -> &'static str {
        match self {
            Self::LoadData => "the server accepts LOAD DATA LOCAL INFILE",
            Self::Insert(reason) => reason,
        }
    }
}

const REFUSED_LOCAL_INFILE: &[u16] = &[1148, 3948, 4166];

/// LOAD DATA when the server has `local_infile` on, else INSERT batches.
pub(super) async fn choose_method(conn: &mut Conn) -> Result<Method> {
    let enabled: Option<i64> = conn
        .query_first("SELECT @@GLOBAL.local_infile")
        .await
        .map_err(fail("cannot read local_infile"))?;
    Ok(if enabled == Some(1) {
        Method::LoadData
    } else {
        Method::Insert("the server has local_infile disabled")
    })
}

/// Streams the step table to the server.
pub(super) struct Loader<'a> {
    pub(super) ctx: &'a StepContext,
    pub(super) columns: &'a [WriteColumn],
    pub(super) batch_size: usize,
    pub(super) select: String,
    pub(super) method: Method,
}

impl Loader<'_> {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote_mysql_identifier(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Loads every row into `target`; with `on_duplicate` (INSERT path only) as an upsert.
    pub(super) async fn load(
        &mut self,
        conn: &mut Conn,
        target: &str,
        on_duplicate: Option<&str>,
    ) -> Result<u64> {
        if self.method == Method::LoadData {
            match self.load_data(conn, target).await {
                Err(Refused) => {
                    self.method = Method::Insert("the server refused LOAD DATA LOCAL INFILE");
                    self.ctx.event(
                        "write.method",
                        object([
                            ("method", Value::String(self.method.name().into())),
                            ("reason", Value::String(self.method.reason().into())),
                        ]),
                    );
                }
                Ok(result) => return result,
            }
        }
        self.insert(conn, target, on_duplicate).await
    }

    pub(super) async fn upsert(
        &mut self,
        conn: &mut Conn,
        table: &str,
        keys: &[String],
    ) -> Result<u64> {
        let updates: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !keys.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
            .map(|c| {
                let q = quote_mysql_identifier(&c.name);
                format!("{q} = VALUES({q})")
            })
            .collect();
        let on_duplicate = if updates.is_empty() {
            let k = quote_mysql_identifier(&keys[0]);
            format!("{k} = {k}")
        } else {
            updates.join(", ")
        };
        if self.method == Method::LoadData {
            let temp = format!("{table}__osiris_upsert");
            let q_temp = quote_mysql_identifier(&temp);
            conn.query_drop(format!(
                "CREATE TEMPORARY TABLE {q_temp} LIKE {}",
                quote_mysql_identifier(table)
            ))
            .await
            .map_err(fail("cannot create the temporary upsert table"))?;
            // When the server refuses LOCAL INFILE, `load` fills the temporary table with
            // INSERTs instead; the upsert from it is the same.
            let loaded = self.load(conn, &temp, None).await;
            let result = match loaded {
                Ok(rows) => {
                    let cols = self.column_list();
                    conn.query_drop(format!(
                        "INSERT INTO {} ({cols}) SELECT {cols} FROM {q_temp} ON DUPLICATE KEY UPDATE {on_duplicate}",
                        quote_mysql_identifier(table)
                    ))
                    .await
                    .map_err(fail("the upsert failed"))?;
                    check_warnings(conn, table).await?;
                    Ok(rows)
                }
                Err(e) => Err(e),
            };
            let _ = conn
                .query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {q_temp}"))
                .await;
            return result;
        }
        self.insert(conn, table, Some(&on_duplicate)).await
    }

    /// `LOAD DATA LOCAL INFILE` from a stream; `Err(Refused)` when the server refuses it
    /// before any row was read.
    async fn load_data(&self, conn: &mut Conn, target: &str) -> Result<Result<u64>, Refused> {
        let duck = match self.ctx.connection() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let rows = Arc::new(AtomicU64::new(0));
        let producer = tokio::spawn(produce(
            duck,
            self.select.clone(),
            go_rx,
            tx,
            Arc::clone(&rows),
        ));
        conn.set_infile_handler(async move {
            let _ = go_tx.send(());
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Ok::<_, mysql_async::Error>(stream.boxed())
        });
        let mut targets = Vec::new();
        let mut sets = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            let q = quote_mysql_identifier(&c.name);
            if c.wrap.is_some() {
                targets.push(format!("@v{i}"));
                sets.push(format!("{q} = {}", c.wrapped(&format!("@v{i}"))));
            } else {
                targets.push(q);
            }
        }
        let sql = format!(
            "LOAD DATA LOCAL INFILE 'osiris-step-table' INTO TABLE {} CHARACTER SET utf8mb4 \
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({}){}",
            quote_mysql_identifier(target),
            targets.join(", "),
            if sets.is_empty() {
                String::new()
            } else {
                format!(" SET {}", sets.join(", "))
            }
        );
        let result = conn.query_drop(sql).await;
        producer.abort();
        let _ = producer.await;
        match result {
            Err(mysql_async::Error::Server(e)) if REFUSED_LOCAL_INFILE.contains(&e.code) => {
                Err(Refused)
            }
            Err(e) => Ok(Err(classify(e, "LOAD DATA LOCAL INFILE failed"))),
            Ok(()) => Ok(check_warnings(conn, target)
                .await
                .map(|()| rows.load(Ordering::Relaxed))),
        }
    }

    /// Multi-row INSERTs of `batch_size` rows, split further to stay under max_allowed_packet.
    async fn insert(
        &self,
        conn: &mut Conn,
        target: &str,
        on_duplicate: Option<&str>,
    ) -> Result<u64> {
        let max_packet: Option<u64> = conn
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(fail("cannot read max_allowed_packet"))?;
        let limit = (max_packet.unwrap_or(4 << 20) as usize)
            .saturating_sub(64 << 10)
            .max(64 << 10);
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote_mysql_identifier(target),
            self.column_list()
        );
        let tail = on_duplicate
            .map(|u| format!(" ON DUPLICATE KEY UPDATE {u}"))
            .unwrap_or_default();
        let mut reader = TableReader::query(self.ctx.connection()?, self.select.clone()).await?;
        let mut sql = String::with_capacity(1 << 20);
        let mut in_statement = 0usize;
        let mut rows = 0u64;
        let mut row = String::new();
        while let Some(batch) = reader.next_batch().await {
            let batch = text_columns(&batch?)?;
            for r in 0..batch.num_rows() {
                row.clear();
                row.push('(');
                for (i, column) in self.columns.iter().enumerate() {
                    if i > 0 {
                        row.push_str(", ");
                    }
                    let array = batch.column(i).as_string::<i32>();
                    if array.is_null(r) {
                        row.push_str("NULL");
                    } else {
                        row.push_str(&column.wrapped(&quote_mysql_literal(array.value(r))));
                    }
                }
                row.push(')');
                if in_statement > 0
                    && (in_statement >= self.batch_size
                        || sql.len() + row.len() + tail.len() + 2 > limit)
                {
                    sql.push_str(&tail);
                    execute_insert(conn, &sql, target).await?;
                    sql.clear();
                    in_statement = 0;
                }
                if in_statement == 0 {
                    sql.push_str(&head);
                } else {
                    sql.push_str(", ");
                }
                sql.push_str(&row);
                in_statement += 1;
                rows += 1;
            }
        }
        if in_statement > 0 {
            sql.push_str(&tail);
            execute_insert(conn, &sql, target).await?;
        }
        Ok(rows)
    }
}

struct Refused;

async fn execute_insert(conn: &mut Conn, sql: &str, target: &str) -> Result<()> {
    conn.query_drop(sql).await.map_err(fail("INSERT failed"))?;
    check_warnings(conn, target).await
}

/// Fails when the last statement produced warnings, showing the first ones.
async fn check_warnings(conn: &mut Conn, target: &str) -> Result<()> {
    if conn.get_warnings() == 0 {
        return Ok(());
    }
    let warnings: Vec<(String, u32, String)> = conn
        .query("SHOW WARNINGS LIMIT 5")
        .await
        .map_err(fail("cannot read the server's warnings"))?;
    // Deprecation notes (e.g. VALUES() in ON DUPLICATE KEY UPDATE on MySQL 8) are not data
    // problems.
    let serious: Vec<String> = warnings
        .iter()
        .filter(|(level, code, _)| level != "Note" && *code != 1287)
        .map(|(level, code, message)| format!("{level} {code}: {message}"))
        .collect();
    if serious.is_empty() {
        return Ok(());
    }
    Err(DriverError::data(format!(
        "the server reported {} warning(s) writing {target:?}, so nothing was kept; first: {}",
        conn.get_warnings().max(serious.len() as u16),
        serious.join("; ")
    )))
}

/// Reads the step table as text and sends it as tab-separated chunks once `go` fires.
async fn produce(
    duck: duckdb::Connection,
    select: String,
    go: oneshot::Receiver<()>,
    tx: mpsc::Sender<io::Result<Bytes>>,
    rows: Arc<AtomicU64>,
) {
    if go.await.is_err() {
        return;
    }
    let mut reader = match TableReader::query(duck, select).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
            return;
        }
    };
    let mut buffer = Vec::with_capacity(1 << 20);
    while let Some(batch) = reader.next_batch().await {
        let encoded = batch.and_then(|b| {
            let b = text_columns(&b)?;
            encode_tsv(&b, &mut buffer);
            Ok(b.num_rows())
        });
        match encoded {
            Ok(n) => {
                rows.fetch_add(n as u64, Ordering::Relaxed);
                if buffer.len() >= 256 << 10 {
                    let chunk =
                        Bytes::from(std::mem::replace(&mut buffer, Vec::with_capacity(1 << 20)));
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                return;
            }
        }
    }
    if !buffer.is_empty() {
        let _ = tx.send(Ok(Bytes::from(buffer))).await;
    }
}

/// The batch with every column as Utf8 (DuckDB may hand out string views).
fn text_columns(batch: &RecordBatch) -> Result<RecordBatch> {
    if batch
        .columns()
        .iter()
        .all(|c| c.data_type() == &DataType::Utf8)
    {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow::compute::cast(c, &DataType::Utf8))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DriverError::internal(format!("cannot read a batch as text: {e}")))?;
    let fields: Vec<arrow::datatypes::Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| arrow::datatypes::Field::new(f.name(), DataType::Utf8, true))
        .collect();
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .map_err(|e| DriverError::internal(format!("cannot read a batch as text: {e}")))
}

/// Appends the rows of an all-Utf8 batch as LOAD DATA's default format: tab-separated,
/// newline-terminated, backslash escapes, `\N` for NULL.
fn encode_tsv(batch: &RecordBatch, out: &mut Vec<u8>) {
    let columns: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| c.as_string::<i32>())
        .collect();
    for r in 0..batch.num_rows() {
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            if column.is_null(r) {
                out.extend_from_slice(b"\\N");
                continue;
            }
            let value = column.value(r).as_bytes();
            if !value
                .iter()
                .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r' | 0))
            {
                out.extend_from_slice(value);
                continue;
            }
            for &b in value {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0 => out.extend_from_slice(b"\\0"),
                    b => out.push(b),
                }
            }
        }
        out.push(b'\n');
    }
}

/// The `SELECT` streaming the step table with every column formatted as MySQL text.
pub(super) fn select_sql(table: &TableName, columns: &[WriteColumn]) -> String {
    let exprs: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{} AS {}",
                text_expression(&quote_identifier(&c.name), &c.duck_type),
                quote_identifier(&c.name)
            )
        })
        .collect();
    format!("SELECT {} FROM {table}", exprs.join(", "))
}

/// A DuckDB expression giving column `col` (of DuckDB type `duck_type`) as the text MySQL
/// parses back into the same value.
fn text_expression(col: &str, duck_type: &str) -> String {
    let us = format!("CAST(round(epoch({col}) * 1000000) AS BIGINT)");
    match duck_type {
        "BOOLEAN" => format!("CAST(CAST({col} AS TINYINT) AS VARCHAR)"),
        "TIMESTAMP" | "TIMESTAMP_NS" | "TIMESTAMP_MS" | "TIMESTAMP_S" => {
            format!("strftime(CAST({col} AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%f')")
        }
        "TIMESTAMP WITH TIME ZONE" => {
            format!("strftime(timezone('UTC', {col}), '%Y-%m-%d %H:%M:%S.%f')")
        }
        "TIME WITH TIME ZONE" => format!("CAST(CAST({col} AS TIME) AS VARCHAR)"),
        "INTERVAL" => format!(
            "CASE WHEN {col} IS NULL THEN NULL ELSE printf('%s%d:%02d:%02d.%06d', \
             CASE WHEN {us} < 0 THEN '-' ELSE '' END, abs({us}) // 3600000000, \
             abs({us}) // 60000000 % 60, abs({us}) // 1000000 % 60, abs({us}) % 1000000) END"
        ),
        "BLOB" => format!("hex({col})"),
        t if t.ends_with(']')
            || t.starts_with("STRUCT")
            || t.starts_with("MAP")
            || t.starts_with("UNION") =>
        {
            format!("CAST(to_json({col}) AS VARCHAR)")
        }
        _ => format!("CAST({col} AS VARCHAR)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_escapes_separators_and_marks_null() {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("a", DataType::Utf8, true),
            arrow::datatypes::Field::new("b", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow::array::StringArray::from(vec![Some("x\ty\\z"), None])),
                Arc::new(arrow::array::StringArray::from(vec![
                    Some("line\nbreak"),
                    Some(""),
                ])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        encode_tsv(&batch, &mut out);
        assert_eq!(out, b"x\\ty\\\\z\tline\\nbreak\n\\N\t\n");
    }
}
