//! `osiris sessions`: browse, query, compare and clean up the runs kept in the sessions dir.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Context;
use arrow::array::RecordBatch;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use sessions::{Comparison, SESSIONS_DIR, Session, State};

use crate::outcome::Outcome;
use crate::output::{duration, thousands};

#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// Directory that holds the session directories.
    #[arg(long, env = "OSIRIS_SESSIONS_DIR", default_value = SESSIONS_DIR, global = true)]
    sessions_dir: PathBuf,

    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// List sessions, newest first: id, pipeline, status, start, duration, size, step tables.
    List {
        /// Only sessions of this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// Only sessions started within this age: 30m, 24h, 7d, 2w.
        #[arg(long, value_parser = parse_age)]
        since: Option<std::time::Duration>,
    },
    /// Show a session's steps with their tables, row counts, column names and types.
    Show {
        /// Session id (or a unique part of it).
        id: String,
    },
    /// Run a read-only SQL query on a session; its step tables are addressed by step id.
    Query {
        /// Session id (or a unique part of it).
        id: String,
        /// The query, e.g. `SELECT * FROM "read-orders" LIMIT 10`.
        sql: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// The most rows the table format shows (0: all); it stops reading there, as a result
        /// of millions of rows is not for reading in a terminal. CSV and JSON print every row.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        max_rows: usize,
    },
    /// Compare two sessions step by step: row counts and the rows only in one side. Exits 0
    /// when the compared tables are identical, 1 when they differ.
    Diff {
        /// The first session.
        a: String,
        /// The second session.
        b: String,
        /// Compare only this step's table.
        #[arg(long)]
        step: Option<String>,
        /// Rows shown per side for each differing step.
        #[arg(long, default_value_t = 5)]
        rows: usize,
    },
    /// Remove a session (never one that is still running).
    Rm {
        /// Session id (or a unique part of it).
        id: String,
    },
    /// Remove old sessions; running ones are never removed.
    Gc {
        /// Remove sessions started longer ago than this: 30m, 24h, 7d, 2w.
        #[arg(long, value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
        /// Always keep this many newest sessions.
        #[arg(long, default_value_t = 0)]
        keep_last: usize,
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    sessions::parse_age(text)
        .ok_or_else(|| format!("{text:?} is not an age like 30m, 24h, 7d or 2w"))
}

/// The time `age` ago; an age reaching before the earliest time is wrong input.
fn cutoff(age: std::time::Duration) -> Result<jiff::Timestamp, Outcome> {
    jiff::SignedDuration::try_from(age)
        .ok()
        .and_then(|span| jiff::Timestamp::now().checked_sub(span).ok())
        .ok_or_else(|| Outcome::input(format!("the age {age:?} reaches too far back")))
}

pub fn execute(args: SessionsArgs, json: bool) -> anyhow::Result<Outcome> {
    let root = args.sessions_dir;
    let find = |id: &str| sessions::find(&root, id);
    let input = |e: sessions::Error| Ok(Outcome::input(e.to_string()));
    match args.command {
        SessionsCommand::List { pipeline, since } => {
            let since = match since.map(cutoff).transpose() {
                Ok(since) => since,
                Err(outcome) => return Ok(outcome),
            };
            let listed: Vec<Session> = sessions::list(&root)
                .into_iter()
                .filter(|s| {
                    pipeline
                        .as_ref()
                        .is_none_or(|p| s.pipeline.as_ref() == Some(p))
                })
                .filter(|s| since.is_none_or(|c| s.started().is_some_and(|t| t >= c)))
                .collect();
            list(&listed, json)
        }
        SessionsCommand::Show { id } => match find(&id) {
            Ok(session) => show(&session, json),
            Err(e) => input(e),
        },
        SessionsCommand::Query {
            id,
            sql,
            format,
            max_rows,
        } => match find(&id) {
            Ok(session) => query(
                &session,
                &sql,
                if json { Format::Json } else { format },
                max_rows,
            ),
            Err(e) => input(e),
        },
        SessionsCommand::Diff { a, b, step, rows } => match (find(&a), find(&b)) {
            (Ok(a), Ok(b)) => {
                // A view over a changed file compares the file as it is now.
                warn_changed_sources(&a);
                warn_changed_sources(&b);
                match sessions::diff(&a, &b, step.as_deref(), rows) {
                    Ok(diff) => print_diff(&a, &b, &diff, json),
                    Err(e) => input(e),
                }
            }
            (Err(e), _) | (_, Err(e)) => input(e),
        },
        SessionsCommand::Rm { id } => {
            match find(&id).and_then(|s| sessions::remove(&s).map(|()| s)) {
                Ok(session) => {
                    if json {
                        println!("{}", json!({"removed": [session.id]}));
                    } else {
                        println!("removed {}", session.id);
                    }
                    Ok(Outcome::ok())
                }
                Err(e) => input(e),
            }
        }
        SessionsCommand::Gc {
            older_than,
            keep_last,
            dry_run,
        } => {
            let all = sessions::list(&root);
            let cutoff = match older_than.map(cutoff).transpose() {
                Ok(cutoff) => cutoff,
                Err(outcome) => return Ok(outcome),
            };
            let doomed = sessions::gc_candidates(&all, cutoff, keep_last);
            let mut removed = Vec::new();
            let mut freed = 0;
            for session in &doomed {
                if !dry_run && let Err(e) = sessions::remove(session) {
                    return input(e);
                }
                freed += session.size_bytes;
                removed.push(session.id.clone());
            }
            let kept = all.len() - removed.len();
            // Leftovers of killed runs: staging tables in the databases kept, and the session
            // directories of killed workers on this machine.
            let mut staging = Vec::new();
            for session in all
                .iter()
                .filter(|s| s.state != State::Running && !removed.contains(&s.id))
            {
                let found = if dry_run {
                    sessions::tables(session).map(|t| {
                        t.into_iter()
                            .map(|t| t.name)
                            .filter(|n| sessions::STAGING_PREFIXES.iter().any(|p| n.starts_with(p)))
                            .collect()
                    })
                } else {
                    sessions::drop_staging_tables(session)
                };
                match found {
                    Ok(names) => {
                        staging.extend(names.into_iter().map(|n| format!("{}:{n}", session.id)))
                    }
                    Err(error) => eprintln!("warning: {error}"),
                }
            }
            let worker_root = std::env::var_os("OSIRIS_WORKER_SESSIONS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(adapter_remote::worker::default_sessions_root);
            let mut worker_dirs = Vec::new();
            for dir in sessions::crashed_worker_dirs(&worker_root, cutoff) {
                if !dry_run && let Err(error) = sessions::remove(&dir) {
                    eprintln!("warning: {error}");
                    continue;
                }
                freed += dir.size_bytes;
                worker_dirs.push(dir.dir.display().to_string());
            }
            if json {
                println!(
                    "{}",
                    json!({"removed": removed, "dry_run": dry_run, "freed_bytes": freed, "kept": kept, "staging_tables_dropped": staging, "worker_dirs_removed": worker_dirs})
                );
            } else {
                for id in &removed {
                    println!("{} {id}", if dry_run { "would remove" } else { "removed" });
                }
                for table in &staging {
                    println!(
                        "{} staging table {table}",
                        if dry_run { "would drop" } else { "dropped" }
                    );
                }
                for dir in &worker_dirs {
                    println!(
                        "{} dead worker's directory {dir}",
                        if dry_run { "would remove" } else { "removed" }
                    );
                }
                println!(
                    "{} {} session{}, {} freed; {kept} kept",
                    if dry_run { "Would remove" } else { "Removed" },
                    removed.len(),
                    if removed.len() == 1 { "" } else { "s" },
                    size(freed)
                );
            }
            Ok(Outcome::ok())
        }
    }
}

fn size(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

fn table_names(session: &Session) -> Vec<String> {
    sessions::table_names(session).unwrap_or_default()
}

/// Prints (stderr) a warning for each source view of `session` whose file changed since the
/// run: queries through it read the file as it is now (ADR 0036).
fn warn_changed_sources(session: &Session) {
    for (view, files) in sessions::changed_sources(session).unwrap_or_default() {
        for (path, state) in files {
            eprintln!(
                "warning: step '{view}' is a view over {}, which is {state} since the run; queries through it read the file as it is now",
                path.display()
            );
        }
    }
}

/// The JSON of a step kept as a view over files: its definition and each file's state.
fn source_json(source: &sessions::ViewSource) -> serde_json::Value {
    json!({
        "definition": source.definition,
        "files": source.files.iter().map(|(path, state)| json!({
            "path": path.display().to_string(),
            "state": state.word(),
            "detail": state.to_string(),
        })).collect::<Vec<_>>(),
        "matches": source.matches(),
    })
}

fn list(listed: &[Session], json: bool) -> anyhow::Result<Outcome> {
    if json {
        let rows: Vec<_> = listed
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "pipeline": s.pipeline,
                    "status": s.state.as_str(),
                    "started_at": s.started_at,
                    "duration_ms": s.duration_ms,
                    "size_bytes": s.size_bytes,
                    "steps_total": s.steps_total,
                    "steps_completed": s.steps_completed,
                    "failed_step": s.failed_step,
                    "tables": table_names(s),
                    "dir": s.dir.display().to_string(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Outcome::ok());
    }
    if listed.is_empty() {
        println!("No sessions.");
        return Ok(Outcome::ok());
    }
    let width = listed
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(10)
        .max(10);
    println!(
        "{:<width$}  {:<18} {:<9} {:<20} {:>9} {:>10}  TABLES",
        "SESSION", "PIPELINE", "STATUS", "STARTED (UTC)", "DURATION", "SIZE"
    );
    for s in listed {
        let tables = if s.state == State::Running {
            "(running)".to_owned()
        } else {
            table_names(s).join(", ")
        };
        println!(
            "{:<width$}  {:<18} {:<9} {:<20} {:>9} {:>10}  {tables}",
            s.id,
            s.pipeline.as_deref().unwrap_or("-"),
            s.state.as_str(),
            s.started_at
                .as_deref()
                .map(|t| t.get(..19).unwrap_or(t).replace('T', " "))
                .unwrap_or_else(|| "-".into()),
            s.duration_ms.map(duration).unwrap_or_else(|| "-".into()),
            size(s.size_bytes),
        );
    }
    Ok(Outcome::ok())
}

/// Step ids in plan order, from the session's manifest.
fn manifest_steps(session: &Session) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(session.dir.join("manifest.yaml")) else {
        return Vec::new();
    };
    let Ok(doc) = serde_yaml::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    doc["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s["id"].as_str()?.to_owned(),
                s["component"].as_str().unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

fn show(session: &Session, json: bool) -> anyhow::Result<Outcome> {
    let tables = match sessions::tables(session) {
        Ok(t) => t,
        Err(e) => return Ok(Outcome::input(e.to_string())),
    };
    let steps = manifest_steps(session);
    if json {
        let steps: Vec<_> = steps
            .iter()
            .map(|(id, component)| {
                let table = tables.iter().find(|t| &t.name == id);
                json!({
                    "step_id": id,
                    "component": component,
                    "table": table.map(|t| t.name.clone()),
                    "rows": table.map(|t| t.rows),
                    "materialize": table.map(|t| if t.source.is_some() { "view" } else { "table" }),
                    "source": table.and_then(|t| t.source.as_ref()).map(source_json),
                    "columns": table.map(|t| t.columns.iter().map(|(n, ty)| json!({"name": n, "type": ty})).collect::<Vec<_>>()),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "id": session.id,
                "pipeline": session.pipeline,
                "status": session.state.as_str(),
                "started_at": session.started_at,
                "duration_ms": session.duration_ms,
                "failed_step": session.failed_step,
                "database": session.database_path().display().to_string(),
                "steps": steps,
            }))?
        );
        return Ok(Outcome::ok());
    }
    println!(
        "Session {}  pipeline {}  status {}",
        session.id,
        session.pipeline.as_deref().unwrap_or("-"),
        session.state.as_str()
    );
    println!("Database: {}", session.database_path().display());
    for (id, component) in &steps {
        match tables.iter().find(|t| &t.name == id) {
            Some(t) => {
                match &t.source {
                    None => println!("\n  {id} ({component}): {} rows", thousands(t.rows)),
                    Some(source) if source.matches() => println!(
                        "\n  {id} ({component}): {} rows (a view over its file, which is unchanged)",
                        thousands(t.rows)
                    ),
                    Some(_) => println!(
                        "\n  {id} ({component}): a view over a file that changed since the run; its rows are not in the session"
                    ),
                }
                if let Some(source) = &t.source {
                    for (path, state) in &source.files {
                        println!("    file {}: {state}", path.display());
                    }
                }
                for (name, ty) in &t.columns {
                    println!("    {name}  {ty}");
                }
            }
            None if session.failed_step.as_deref() == Some(id) => {
                println!("\n  {id} ({component}): failed, no table")
            }
            None => println!("\n  {id} ({component}): no table"),
        }
    }
    Ok(Outcome::ok())
}

/// Arrow's JSON writer prints decimals as floats (`1200.00` -> `1200.0`); render them as exact
/// strings instead.
fn exact_decimals(batches: &[RecordBatch]) -> anyhow::Result<Vec<RecordBatch>> {
    use arrow::datatypes::{DataType, Field, Schema};
    batches
        .iter()
        .map(|batch| {
            let schema = batch.schema();
            if !schema.fields().iter().any(|f| {
                matches!(
                    f.data_type(),
                    DataType::Decimal128(..) | DataType::Decimal256(..)
                )
            }) {
                return Ok(batch.clone());
            }
            let mut fields = Vec::new();
            let mut columns = Vec::new();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                if matches!(
                    field.data_type(),
                    DataType::Decimal128(..) | DataType::Decimal256(..)
                ) {
                    fields.push(Field::new(field.name(), DataType::Utf8, true));
                    columns.push(arrow::compute::cast(column, &DataType::Utf8)?);
                } else {
                    fields.push(field.as_ref().clone());
                    columns.push(std::sync::Arc::clone(column));
                }
            }
            Ok(RecordBatch::try_new(
                std::sync::Arc::new(Schema::new(fields)),
                columns,
            )?)
        })
        .collect()
}

/// DuckDB hands TIMESTAMPTZ to Arrow with the zone name `UTC`, which Arrow cannot format
/// without its time-zone database ("only offset based timezones supported"). The values are
/// UTC instants: relabel such columns `+00:00`, which every formatter understands.
fn utc_offsets(batches: Vec<RecordBatch>) -> anyhow::Result<Vec<RecordBatch>> {
    use arrow::datatypes::{DataType, Field, Schema};
    let offset_based = |tz: &str| tz.starts_with(['+', '-']);
    batches
        .into_iter()
        .map(|batch| {
            let schema = batch.schema();
            if !schema.fields().iter().any(
                |f| matches!(f.data_type(), DataType::Timestamp(_, Some(tz)) if !offset_based(tz)),
            ) {
                return Ok(batch);
            }
            let mut fields = Vec::new();
            let mut columns = Vec::new();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                match field.data_type() {
                    DataType::Timestamp(unit, Some(tz)) if !offset_based(tz) => {
                        let utc = DataType::Timestamp(*unit, Some("+00:00".into()));
                        let data = column
                            .to_data()
                            .into_builder()
                            .data_type(utc.clone())
                            .build()?;
                        fields.push(Field::new(field.name(), utc, field.is_nullable()));
                        columns.push(arrow::array::make_array(data));
                    }
                    _ => {
                        fields.push(field.as_ref().clone());
                        columns.push(std::sync::Arc::clone(column));
                    }
                }
            }
            Ok(RecordBatch::try_new(
                std::sync::Arc::new(Schema::new(fields)),
                columns,
            )?)
        })
        .collect()
}

/// Rows as a JSON array of objects, decimals as exact strings.
fn json_rows(batches: &[RecordBatch]) -> anyhow::Result<serde_json::Value> {
    let batches = exact_decimals(&utc_offsets(batches.to_vec())?)?;
    let mut buf = Vec::new();
    {
        let mut writer = arrow::json::ArrayWriter::new(&mut buf);
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        writer.write_batches(&refs).context("writing JSON")?;
        writer.finish().context("writing JSON")?;
    }
    // The writer writes nothing at all for zero rows.
    Ok(if buf.is_empty() {
        json!([])
    } else {
        serde_json::from_slice(&buf)?
    })
}

/// `sql`'s result, batch by batch in DuckDB's streaming mode: `each` sees every batch as DuckDB
/// produces it (until it says to stop), so a CSV or JSON export of a large table holds a few
/// chunks, not the result.
/// `Ok(Err(message))` when the query fails, also after some batches were seen (a CSV view's
/// value that does not convert).
fn stream_query(
    session: &Session,
    sql: &str,
    mut each: impl FnMut(RecordBatch) -> anyhow::Result<ControlFlow<()>>,
) -> anyhow::Result<Result<(), String>> {
    let conn = match sessions::open_read_only(session) {
        Ok(conn) => conn,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut stmt = match conn.prepare(sql) {
        Ok(stmt) => stmt,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if let Err(e) = stmt.stream_arrow([]) {
        return Ok(Err(e.to_string()));
    }
    loop {
        match stmt.step() {
            Ok(Some(chunk)) => {
                for batch in utc_offsets(vec![RecordBatch::from(&chunk)])? {
                    if each(batch)?.is_break() {
                        return Ok(Ok(()));
                    }
                }
            }
            Ok(None) => return Ok(Ok(())),
            Err(e) => {
                drop(stmt);
                // Nobody interrupts this connection: an interruption hides the query's error.
                return Ok(Err(
                    execution_context::unmask_interrupt(&conn, sql, &[], e).to_string()
                ));
            }
        }
    }
}

fn query(session: &Session, sql: &str, format: Format, max_rows: usize) -> anyhow::Result<Outcome> {
    warn_changed_sources(session);
    let stdout = std::io::stdout();
    let streamed = match format {
        Format::Table => {
            // Column widths need every row shown: the table format is for results a person
            // reads, so it stops at the first row past `max_rows`.
            let limit = if max_rows == 0 { usize::MAX } else { max_rows };
            let mut batches = Vec::new();
            let mut rows = 0usize;
            let mut more = false;
            let done = stream_query(session, sql, |batch| {
                let take = batch.num_rows().min(limit - rows);
                more = take < batch.num_rows();
                rows += take;
                batches.push(batch.slice(0, take));
                Ok(if more {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            })?;
            if done.is_ok() {
                println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
                if more {
                    println!(
                        "(the first {} rows; --max-rows 0 shows all, --format csv or json prints them as data)",
                        thousands(rows as u64)
                    );
                }
            }
            done
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(stdout.lock());
            stream_query(session, sql, |batch| {
                writer.write(&batch).context("writing CSV")?;
                Ok(ControlFlow::Continue(()))
            })?
        }
        Format::Json => {
            // The same text as one JSON array of the whole result, written row by row.
            // A failed query leaves the array open: no consumer mistakes a part for the whole.
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut opened = false;
            let done = stream_query(session, sql, |batch| {
                if let serde_json::Value::Array(rows) = json_rows(&[batch])? {
                    for row in rows {
                        out.write_all(if std::mem::replace(&mut opened, true) {
                            b","
                        } else {
                            b"["
                        })?;
                        serde_json::to_writer(&mut out, &row)?;
                    }
                }
                Ok(ControlFlow::Continue(()))
            })?;
            if done.is_ok() {
                out.write_all(if opened { b"]\n" } else { b"[]\n" })?;
            }
            out.flush()?;
            done
        }
    };
    Ok(match streamed {
        Ok(()) => Outcome::ok(),
        Err(message) => Outcome::input(message),
    })
}

/// Prints a comparison of sessions `a` and `b` ([`sessions::diff`]): exit 0 when identical,
/// 1 when they differ.
fn print_diff(
    a: &Session,
    b: &Session,
    diff: &sessions::Diff,
    json: bool,
) -> anyhow::Result<Outcome> {
    let identical = diff.identical;
    let names: Vec<&str> = diff.steps.iter().map(|s| s.step_id.as_str()).collect();
    let mut results = Vec::new();
    for step in &diff.steps {
        let mut entry = json!({
            "step_id": step.step_id,
            "rows_a": step.rows_a,
            "rows_b": step.rows_b,
        });
        match &step.comparison {
            Comparison::Rows {
                only_in_a,
                only_in_b,
                sample_only_in_a,
                sample_only_in_b,
            } => {
                entry["only_in_a"] = (*only_in_a).into();
                entry["only_in_b"] = (*only_in_b).into();
                if only_in_a + only_in_b > 0 {
                    entry["sample_only_in_a"] = json_rows(sample_only_in_a)?;
                    entry["sample_only_in_b"] = json_rows(sample_only_in_b)?;
                }
            }
            Comparison::Columns { a, b } => {
                entry["columns_differ"] = json!({"a": a, "b": b});
            }
            Comparison::Missing => {}
        }
        results.push(entry);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"a": a.id, "b": b.id, "identical": identical, "steps": results})
            )?
        );
    } else {
        println!("a: {}\nb: {}\n", a.id, b.id);
        let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
        println!(
            "{:<width$}  {:>10} {:>10} {:>10} {:>10}",
            "STEP", "ROWS A", "ROWS B", "ONLY IN A", "ONLY IN B"
        );
        let num = |v: &serde_json::Value| v.as_u64().map(thousands).unwrap_or_else(|| "-".into());
        for r in &results {
            println!(
                "{:<width$}  {:>10} {:>10} {:>10} {:>10}",
                r["step_id"].as_str().unwrap_or(""),
                num(&r["rows_a"]),
                num(&r["rows_b"]),
                num(&r["only_in_a"]),
                num(&r["only_in_b"]),
            );
        }
        for r in &results {
            if let Some(cols) = r.get("columns_differ") {
                println!(
                    "\n{}: columns differ\n  a: {}\n  b: {}",
                    r["step_id"].as_str().unwrap_or(""),
                    cols["a"].as_str().unwrap_or(""),
                    cols["b"].as_str().unwrap_or("")
                );
            }
            for (key, label) in [
                ("sample_only_in_a", "only in a"),
                ("sample_only_in_b", "only in b"),
            ] {
                if let Some(rows) = r
                    .get(key)
                    .and_then(|v| v.as_array())
                    .filter(|v| !v.is_empty())
                {
                    println!("\n{} ({label}):", r["step_id"].as_str().unwrap_or(""));
                    for row in rows {
                        println!("  {row}");
                    }
                }
            }
        }
        println!(
            "\n{}",
            if identical {
                "Identical."
            } else {
                "Different."
            }
        );
    }
    Ok(Outcome::ok_if(identical))
}
