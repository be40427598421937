//! What the file drivers share: input paths (one file, a glob, or a list), the checks on a
//! plain input file, loading a DuckDB reader into the step table (projection, `limit`,
//! flattening nested structs), and writing a table with `COPY ... TO` into a temporary file or
//! directory that replaces the target only on success.

use std::collections::HashSet;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use driver_api::{
    DriverError, Result, StepContext, StepInputs, StepOutput, TableName, quote_identifier,
    quote_literal, replace_table_as,
};
use execution_context::object;
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::FilesystemConnection;
use crate::options::elapsed_ms;

/// A step's `path` for a reading step: one file or glob pattern, or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InputPaths {
    /// One file, or a glob pattern (`*`, `?`, `[...]`, `**`).
    One(String),
    /// Several files or patterns, read into one table.
    Many(Vec<String>),
}

/// The resolved input paths of a reading step.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    paths: Vec<PathBuf>,
}

impl Inputs {
    /// Resolves every path as the CSV driver does (absolute, else under `base_dir`, else under
    /// the pipeline's directory).
    pub(crate) fn resolve(
        ctx: &StepContext,
        connection: &FilesystemConnection,
        paths: InputPaths,
    ) -> Result<Self> {
        let raw = match paths {
            InputPaths::One(path) => vec![path],
            InputPaths::Many(paths) => paths,
        };
        if raw.is_empty() {
            return Err(DriverError::config("path", "must name at least one file"));
        }
        if raw.iter().any(String::is_empty) {
            return Err(DriverError::config("path", "must not be empty"));
        }
        Ok(Self {
            paths: raw.iter().map(|p| connection.resolve(ctx, p)).collect(),
        })
    }

    /// Checks each path that is not a glob pattern is a regular file; returns their total
    /// size in bytes (a pattern's files are DuckDB's to find).
    pub(crate) fn check(&self, kind: &str) -> Result<u64> {
        let mut bytes = 0u64;
        for path in self.paths.iter().filter(|p| !is_glob(p)) {
            bytes = bytes.saturating_add(input_file_size(path, kind)?);
        }
        Ok(bytes)
    }

    /// The paths as a DuckDB list literal, for a reader's first argument.
    pub(crate) fn sql_list(&self) -> String {
        let items: Vec<String> = self
            .paths
            .iter()
            .map(|p| quote_literal(&p.to_string_lossy()))
            .collect();
        format!("[{}]", items.join(", "))
    }

    /// Every file the paths name now, absolute, in order: a glob pattern expanded by DuckDB's
    /// own `glob()` (as its readers expand it), sorted; a pattern matching nothing is an error
    /// on `path`.
    pub(crate) fn expand(&self, conn: &duckdb::Connection, shown: &str) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for path in &self.paths {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            if !is_glob(&path) {
                files.push(path);
                continue;
            }
            let mut stmt = conn
                .prepare("SELECT file FROM glob(?) ORDER BY file")
                .map_err(|e| read_error(shown, e))?;
            let matched = stmt
                .query_map([path.to_string_lossy()], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| read_error(shown, e))?;
            if matched.is_empty() {
                return Err(DriverError::config(
                    "path",
                    format!("no file matches {shown}"),
                ));
            }
            files.extend(matched.into_iter().map(PathBuf::from));
        }
        Ok(files)
    }

    /// The paths as shown in messages and events.
    pub(crate) fn shown(&self) -> String {
        let items: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        items.join(", ")
    }
}

/// Whether DuckDB would expand `path` as a glob pattern.
fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

/// The size of the input file `path`, after checking it is a regular file: a directory is a
/// config error, and so is a device, FIFO or socket (it may never end: refused before any
/// read). `kind` names the expected file (`CSV`, `Parquet`, ...).
pub(crate) fn input_file_size(path: &Path, kind: &str) -> Result<u64> {
    let metadata = std::fs::metadata(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            DriverError::io(
                format!("input file {} does not exist", path.display()),
                error,
            )
        } else {
            DriverError::io(format!("cannot read input file {}", path.display()), error)
        }
    })?;
    if metadata.is_dir() {
        return Err(DriverError::config(
            "path",
            format!(
                "{} is a directory; give the path of one {kind} file",
                path.display()
            ),
        ));
    }
    if !metadata.is_file() {
        return Err(DriverError::config(
            "path",
            format!(
                "{} is not a regular file (a device, pipe or socket); give the path of a {kind} file",
                path.display()
            ),
        ));
    }
    Ok(metadata.len())
}

/// How a file extractor keeps its step in the run database (`materialize`, ADR 0036).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Materialize {
    /// A VIEW over the file(s): nothing is read until a later step (or a query on the kept
    /// session) reads it, and then only the columns and rows it needs. The default.
    #[default]
    View,
    /// A table holding every row, read and checked while the step runs.
    Table,
}

impl Materialize {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Table => "table",
        }
    }
}

/// Tells (event `extraction.materialized`) that a step asked for a view is kept as a table, and
/// why: a view cannot give the same rows there.
pub(crate) fn fell_back_to_table(ctx: &StepContext, reason: &str) {
    ctx.event(
        "extraction.materialized",
        object([
            ("requested", Value::String("view".into())),
            ("materialize", Value::String("table".into())),
            ("reason", Value::String(reason.into())),
        ]),
    );
}

/// Fingerprints each file a view will read (size, mtime, content hash): the record the view
/// carries, which kept sessions and replays check the disk against. Gives up once `stop` says
/// so (that error is never shown: the caller has a better one).
fn fingerprint(
    format: &str,
    paths: &[PathBuf],
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<execution_context::sources::SourceRecord> {
    let files = paths
        .iter()
        .map(|path| {
            execution_context::sources::FileFingerprint::of_unless(path, stop).map_err(|e| {
                DriverError::io(format!("cannot read input file {}", path.display()), e)
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(execution_context::sources::SourceRecord {
        format: format.to_owned(),
        files,
    })
}

/// Runs `bind` (which binds a view's query: DuckDB sniffs the CSV or reads the files' schemas)
/// while the files are fingerprinted on another thread: both only read, and on two cores
/// together they take about as long as the longer of the two instead of their sum. When
/// `bind` fails or the step is cancelled, the fingerprint stops at its next 1 MiB block
/// instead of reading the rest of a large file first.
pub(crate) fn bind_while_fingerprinting<T>(
    format: &str,
    paths: &[PathBuf],
    cancel: &CancellationToken,
    bind: impl FnOnce() -> Result<T>,
) -> Result<(T, execution_context::sources::SourceRecord)> {
    let failed = AtomicBool::new(false);
    let stop = || failed.load(Ordering::Relaxed) || cancel.is_cancelled();
    std::thread::scope(|scope| {
        let hashing = scope.spawn(|| fingerprint(format, paths, &stop));
        let bound = bind();
        if bound.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        let record = hashing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let bound = bound?;
        if cancel.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        Ok((bound, record?))
    })
}

/// Drops `table` when it is a view (the step's object from an earlier attempt), so that
/// `DROP TABLE IF EXISTS` and `CREATE TABLE` find no view of that name.
pub(crate) fn drop_view(conn: &duckdb::Connection, table: &TableName) -> Result<()> {
    let is_view: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' \
             AND database_name = current_database() AND view_name = ?",
            [table.as_str()],
            |r| r.get(0),
        )
        .map_err(|e| DriverError::duckdb(format!("cannot read the catalog for {table}"), e))?;
    if is_view {
        conn.execute_batch(&format!("DROP VIEW {table}"))
            .map_err(|e| DriverError::duckdb(format!("cannot drop view {table}"), e))?;
    }
    Ok(())
}

/// Creates (or replaces) `table` as a VIEW defined by `query` (one SELECT over absolute file
/// paths), carrying `record` in its comment, in one transaction: a failure leaves no view.
/// DuckDB binds the query now, so a missing file, an unreadable header or a `columns` entry
/// the file lacks fails here, in this step; the rows are read only by whoever reads the view.
pub(crate) fn replace_view_as(
    conn: &duckdb::Connection,
    table: &TableName,
    query: &str,
    record: &execution_context::sources::SourceRecord,
) -> Result<()> {
    let context = format!("cannot create view {table}");
    let fail = |e| DriverError::duckdb(context.clone(), e);
    conn.execute_batch("BEGIN TRANSACTION").map_err(fail)?;
    let result = (|| {
        drop_view(conn, table)?;
        conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE VIEW {table} AS {query}; COMMENT ON VIEW {table} IS {}",
            quote_literal(&record.to_comment())
        ))
        .map_err(fail)?;
        conn.execute_batch("COMMIT").map_err(fail)
    })();
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// What of the read rows becomes the step table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Projection {
    /// Columns to keep, in this order (after flattening, by their flattened names).
    pub columns: Option<Vec<String>>,
    /// The first rows only.
    pub limit: Option<NonZeroU64>,
    /// Nested STRUCT columns become one column per leaf field, named `parent.child`.
    pub flatten: bool,
}

impl Projection {
    /// Checks `columns` (see [`check_columns`]).
    pub(crate) fn check(&self) -> Result<()> {
        check_columns(self.columns.as_deref())
    }
}

/// Checks a step's `columns`: not empty, no name twice.
pub(crate) fn check_columns(columns: Option<&[String]>) -> Result<()> {
    if let Some(columns) = columns {
        if columns.is_empty() {
            return Err(DriverError::config(
                "columns",
                "must name at least one column (leave it out to keep all columns)",
            ));
        }
        let mut seen = HashSet::new();
        if let Some(twice) = columns.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(DriverError::config(
                "columns",
                format!("column {twice:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// A column of the loaded table: its name, the expression reading it, and its DuckDB type.
struct ReadColumn {
    name: String,
    expr: String,
    type_name: String,
}

/// Creates `table` from the table function call `reader` (e.g. `read_parquet([...])`) in one
/// `CREATE TABLE ... AS SELECT`: a failed read leaves no table. `shown` names the input in
/// messages. Returns the row count.
pub(crate) fn load(
    conn: &duckdb::Connection,
    table: &TableName,
    reader: &str,
    shown: &str,
    projection: &Projection,
    cancel: &CancellationToken,
) -> Result<u64> {
    let query = select(conn, reader, shown, projection)?;
    if cancel.is_cancelled() {
        return Err(DriverError::Cancelled);
    }
    replace_table_as(conn, table, &query).map_err(|error| match error {
        DriverError::DuckDb { source, .. } => read_error(shown, source),
        other => other,
    })
}

/// The query reading `reader` into the step: the projection's columns (flattened when asked)
/// and its `limit`.
fn select(
    conn: &duckdb::Connection,
    reader: &str,
    shown: &str,
    projection: &Projection,
) -> Result<String> {
    let read_error = |e| read_error(shown, e);
    let mut columns: Vec<ReadColumn> = describe(conn, &format!("SELECT * FROM {reader}"))
        .map_err(read_error)?
        .into_iter()
        .map(|(name, type_name)| ReadColumn {
            expr: quote_identifier(&name),
            name,
            type_name,
        })
        .collect();
    if projection.flatten {
        columns = flatten(conn, reader, columns).map_err(read_error)?;
        let mut seen = HashSet::new();
        if let Some(twice) = columns.iter().find(|c| !seen.insert(c.name.as_str())) {
            return Err(DriverError::data(format!(
                "{shown}: two fields give the column {:?} (a key containing a dot collides with a flattened nested key); set flatten: false",
                twice.name
            )));
        }
    }
    let selected: Vec<&ReadColumn> = match &projection.columns {
        None => columns.iter().collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                columns.iter().find(|c| &c.name == name).ok_or_else(|| {
                    let all: Vec<String> =
                        columns.iter().map(|c| format!("{:?}", c.name)).collect();
                    DriverError::config(
                        "columns",
                        format!(
                            "{shown} has no column {name:?}; its columns are {}",
                            all.join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<_>>()?,
    };
    let select: Vec<String> = selected
        .iter()
        .map(|c| format!("{} AS {}", c.expr, quote_identifier(&c.name)))
        .collect();
    let mut query = format!("SELECT {} FROM {reader}", select.join(", "));
    if let Some(limit) = projection.limit {
        query.push_str(&format!(" LIMIT {limit}"));
    }
    Ok(query)
}

/// Replaces every STRUCT column by its fields, recursively, named `parent.child` as the
/// GraphQL extractor names flattened objects. Lists (also of structs) stay LIST columns.
fn flatten(
    conn: &duckdb::Connection,
    reader: &str,
    columns: Vec<ReadColumn>,
) -> std::result::Result<Vec<ReadColumn>, duckdb::Error> {
    let mut out = Vec::new();
    for column in columns {
        if !column.type_name.starts_with("STRUCT(") {
            out.push(column);
            continue;
        }
        // `unnest` of a struct gives its fields as columns: their names and types.
        let fields = describe(
            conn,
            &format!("SELECT unnest({}) FROM {reader}", column.expr),
        )?;
        let children = fields
            .into_iter()
            .map(|(field, type_name)| ReadColumn {
                name: format!("{}.{field}", column.name),
                expr: format!("struct_extract({}, {})", column.expr, quote_literal(&field)),
                type_name,
            })
            .collect();
        out.extend(flatten(conn, reader, children)?);
    }
    Ok(out)
}

/// The column names and types of `query`.
fn describe(
    conn: &duckdb::Connection,
    query: &str,
) -> std::result::Result<Vec<(String, String)>, duckdb::Error> {
    let mut stmt = conn.prepare(&format!("DESCRIBE {query}"))?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// A reader's failure: a pattern matching no file, or a path the run's file access refuses, is
/// about `path`; a file DuckDB cannot open an I/O error; anything else (a malformed file, values of clashing types) is the data's
/// fault. DuckDB's message names the file.
fn read_error(shown: &str, error: duckdb::Error) -> DriverError {
    let message = error.to_string();
    let first = message.lines().next().unwrap_or_default();
    if message.contains("No files found that match the pattern") {
        DriverError::config("path", format!("no file matches {shown}"))
    } else if first.starts_with("Permission Error: ") {
        // The run's file access (ADR 0023) refused the path.
        DriverError::config("path", format!("cannot read {shown}: {first}"))
    } else if let Some(io) = first.strip_prefix("IO Error: ") {
        DriverError::Io {
            message: format!("cannot read {shown}: {io}"),
            source: None,
        }
    } else {
        DriverError::data(format!("cannot read {shown}: {first}"))
    }
}

/// Where a writing step writes: one file, or a directory of files when the output is
/// partitioned.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    /// The target file or directory.
    pub path: PathBuf,
    /// Create missing parent directories.
    pub create_dirs: bool,
    /// Columns to partition by (`PARTITION_BY`): the target is a directory.
    pub partition_by: Vec<String>,
}

impl Output {
    /// Resolves the step's `path`, checks that it names a file or directory.
    pub(crate) fn resolve(
        ctx: &StepContext,
        connection: &FilesystemConnection,
        path: &str,
        create_dirs: bool,
        partition_by: Vec<String>,
    ) -> Result<Self> {
        if path.is_empty() {
            return Err(DriverError::config("path", "must not be empty"));
        }
        let path = connection.resolve(ctx, path);
        if path.file_name().is_none() {
            return Err(DriverError::config(
                "path",
                format!("{} does not name a file", path.display()),
            ));
        }
        if is_glob(&path) {
            return Err(DriverError::config(
                "path",
                format!(
                    "{} contains *, ? or [; an output path names one file or directory",
                    path.display()
                ),
            ));
        }
        let mut seen = HashSet::new();
        if let Some(twice) = partition_by.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(DriverError::config(
                "partition_by",
                format!("column {twice:?} is listed twice"),
            ));
        }
        Ok(Self {
            path,
            create_dirs,
            partition_by,
        })
    }

    /// Writes `table` with `COPY (SELECT * FROM table) TO <temp> (<options>, PARTITION_BY
    /// ...)` and renames the result over the target; returns the rows written and the bytes
    /// of the output.
    pub(crate) fn write(
        &self,
        conn: &duckdb::Connection,
        table: &TableName,
        options: &str,
        cancel: &CancellationToken,
    ) -> Result<(u64, u64)> {
        let partitioned = !self.partition_by.is_empty();
        if !partitioned && self.path.is_dir() {
            return Err(DriverError::config(
                "path",
                format!(
                    "{} is a directory; give a file name (or set partition_by to write a directory)",
                    self.path.display()
                ),
            ));
        }
        if partitioned && self.path.is_file() {
            return Err(DriverError::config(
                "path",
                format!(
                    "{} is a file; a partitioned output is a directory",
                    self.path.display()
                ),
            ));
        }
        let mut options = options.to_owned();
        if partitioned {
            let names = table_column_names(conn, table)?;
            for column in &self.partition_by {
                if !names.contains(column) {
                    return Err(DriverError::config(
                        "partition_by",
                        format!(
                            "table {table} has no column {column:?}; its columns are {}",
                            names
                                .iter()
                                .map(|n| format!("{n:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            let columns: Vec<String> = self
                .partition_by
                .iter()
                .map(|c| quote_identifier(c))
                .collect();
            options.push_str(&format!(", PARTITION_BY ({})", columns.join(", ")));
        }
        let dir = prepare_directory(&self.path, self.create_dirs)?;
        let temp = TempFile::new(&dir, &self.path);
        let sql = format!(
            "COPY (SELECT * FROM {table}) TO {target} ({options})",
            target = quote_literal(&temp.path.to_string_lossy())
        );
        let rows = conn
            .execute(&sql, [])
            .map_err(|e| copy_error(&self.path, e))? as u64;
        if cancel.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        let bytes = size_of(&temp.path);
        let replaced = if partitioned {
            temp.replace_directory(&dir, &self.path)
        } else {
            temp.persist(&self.path)
        };
        replaced.map_err(|e| write_error(format!("cannot replace {}", self.path.display()), e))?;
        Ok((rows, bytes))
    }
}

/// The column names of `table`.
fn table_column_names(conn: &duckdb::Connection, table: &TableName) -> Result<Vec<String>> {
    let err = |e| DriverError::duckdb(format!("cannot read the columns of table {table}"), e);
    let mut stmt = conn.prepare(&format!("DESCRIBE {table}")).map_err(err)?;
    let names = stmt
        .query_map([], |row| row.get(0))
        .map_err(err)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(err)?;
    Ok(names)
}

/// The bytes of a file, or of every file under a directory.
fn size_of(path: &Path) -> u64 {
    let Ok(metadata) = std::fs::metadata(path) else {
        return 0;
    };
    if !metadata.is_dir() {
        return metadata.len();
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| size_of(&e.path()))
                .fold(0u64, u64::saturating_add)
        })
        .unwrap_or_default()
}

/// The directory of the output `path`, created if missing and allowed.
pub(crate) fn prepare_directory(path: &Path, create_dirs: bool) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        if dir.exists() {
            return Err(DriverError::Io {
                message: format!("{} is not a directory", dir.display()),
                source: None,
            });
        }
        if !create_dirs {
            return Err(DriverError::Io {
                message: format!(
                    "output directory {} does not exist (create_dirs is false)",
                    dir.display()
                ),
                source: None,
            });
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| write_error(format!("cannot create directory {}", dir.display()), e))?;
    }
    Ok(dir)
}

/// Classifies a failed `COPY`: DuckDB reports a file it cannot create as an I/O error, which
/// is about the configured path (a directory the user may not write to), not the database.
pub(crate) fn copy_error(path: &Path, error: duckdb::Error) -> DriverError {
    let message = error.to_string();
    let path = path.display();
    if !message.starts_with("IO Error") {
        return DriverError::duckdb(format!("cannot write {path}"), error);
    }
    let first = message.lines().next().unwrap_or_default();
    if message.contains("Permission denied") || message.contains("Operation not permitted") {
        DriverError::config(
            "path",
            format!(
                "cannot write {path}: permission denied in its directory; choose a path this user may write to"
            ),
        )
    } else {
        DriverError::Io {
            message: format!(
                "cannot write {path}: {}",
                first.trim_start_matches("IO Error: ")
            ),
            source: None,
        }
    }
}

/// An I/O error on the output side: a refused permission is about the configured `path`.
pub(crate) fn write_error(message: String, error: std::io::Error) -> DriverError {
    if error.kind() == std::io::ErrorKind::PermissionDenied {
        DriverError::config("path", format!("{message}: {error}"))
    } else {
        DriverError::io(message, error)
    }
}

/// A temporary file (or directory) next to the target, removed on drop unless renamed over
/// the target.
pub(crate) struct TempFile {
    pub(crate) path: PathBuf,
    keep: bool,
}

impl TempFile {
    /// `.<target name>.<pid>-<n>.osiris-tmp` in `dir`.
    pub(crate) fn new(dir: &Path, target: &Path) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unique = format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            path: dir.join(format!(".{name}.{unique}.osiris-tmp")),
            keep: false,
        }
    }

    /// Renames the file over `target`.
    pub(crate) fn persist(mut self, target: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.keep = true;
        Ok(())
    }

    /// Puts the directory in the place of `target`: an existing target directory is moved
    /// aside first (and removed once the new one is in place, or moved back if that fails).
    fn replace_directory(mut self, dir: &Path, target: &Path) -> std::io::Result<()> {
        let old = target.exists().then(|| TempFile::new(dir, target));
        if let Some(old) = &old {
            std::fs::rename(target, &old.path)?;
        }
        if let Err(error) = std::fs::rename(&self.path, target) {
            if let Some(mut old) = old
                && std::fs::rename(&old.path, target).is_ok()
            {
                old.keep = true;
            }
            return Err(error);
        }
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            // Absent when COPY failed before creating it.
            if self.path.is_dir() {
                let _ = std::fs::remove_dir_all(&self.path);
            } else {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Runs a reading step: resolves and checks the inputs, loads `reader(inputs)` into the step
/// table. Shared by the Parquet and JSON extractors.
pub(crate) async fn extract(
    ctx: &StepContext,
    connection: &FilesystemConnection,
    paths: InputPaths,
    kind: &'static str,
    reader: impl FnOnce(&str) -> String + Send + 'static,
    projection: Projection,
    materialize: Materialize,
) -> Result<StepOutput> {
    projection.check()?;
    let inputs = Inputs::resolve(ctx, connection, paths)?;
    let shown = inputs.shown();
    let path = shown.clone();
    reported_extract(ctx, shown, move |conn, cancel, table| {
        let bytes = inputs.check(kind)?;
        match materialize {
            Materialize::Table => {
                drop_view(conn, table)?;
                let reader = reader(&inputs.sql_list());
                let rows = load(conn, table, &reader, &path, &projection, cancel)?;
                Ok((Some(rows), bytes))
            }
            Materialize::View => {
                // The view reads exactly the files matched now (a glob expanded here): a file
                // added later does not join a kept run's view unseen.
                let files = inputs.expand(conn, &path)?;
                let list: Vec<String> = files
                    .iter()
                    .map(|p| quote_literal(&p.to_string_lossy()))
                    .collect();
                let reader = reader(&format!("[{}]", list.join(", ")));
                let (query, record) =
                    bind_while_fingerprinting(&kind.to_ascii_lowercase(), &files, cancel, || {
                        select(conn, &reader, &path, &projection)
                    })?;
                let bytes = bytes.max(record.files.iter().map(|f| f.size).sum());
                replace_view_as(conn, table, &query, &record).map_err(|error| match error {
                    DriverError::DuckDb { source, .. } => read_error(&path, source),
                    other => other,
                })?;
                Ok((None, bytes))
            }
        }
    })
    .await
}

/// Runs `work` (which creates the step's table or view and returns its rows, unknown for a
/// view, and the bytes of input) on the run database, with the `extraction.start` /
/// `extraction.complete` events and the `bytes_processed` metric of every file extractor;
/// `shown` names the input. A view's step reports no rows ([`StepOutput::view`]: none were
/// read) and `rows: null` in its event.
pub(crate) async fn reported_extract<F>(
    ctx: &StepContext,
    shown: String,
    work: F,
) -> Result<StepOutput>
where
    F: FnOnce(&duckdb::Connection, &CancellationToken, &TableName) -> Result<(Option<u64>, u64)>
        + Send
        + 'static,
{
    ctx.event(
        "extraction.start",
        object([("path", Value::String(shown.clone()))]),
    );
    let started = Instant::now();
    let table = ctx.output_table().clone();
    let target = table.clone();
    let (rows, bytes) = ctx
        .run_blocking(move |conn, cancel| work(conn, cancel, &target))
        .await?;
    // rows_read is the engine's metric (from the step output), written once per step.
    ctx.metric("bytes_processed", bytes);
    ctx.event(
        "extraction.complete",
        object([
            ("path", Value::String(shown)),
            ("rows", rows.into()),
            (
                "materialize",
                Value::String(if rows.is_some() { "table" } else { "view" }.into()),
            ),
            ("duration_ms", elapsed_ms(started).into()),
        ]),
    );
    Ok(match rows {
        Some(rows) => StepOutput::table(table, rows),
        None => StepOutput::view(table),
    })
}

pub(crate) fn yes() -> bool {
    true
}

/// The `config` fields every file writer shares.
pub(crate) struct WriteTarget {
    /// The step's `path`.
    pub path: String,
    /// The step's `create_dirs`.
    pub create_dirs: bool,
    /// The step's `partition_by`.
    pub partition_by: Vec<String>,
}

/// Runs a writing step: writes the single upstream table with `COPY ... TO (options)` through
/// [`Output::write`]. Shared by the Parquet and JSON writers; `options` gets the resolved
/// output path (to infer a codec from).
pub(crate) async fn write(
    ctx: &StepContext,
    connection: &FilesystemConnection,
    target: WriteTarget,
    inputs: StepInputs,
    options: impl FnOnce(&Path) -> String,
) -> Result<StepOutput> {
    let output = Output::resolve(
        ctx,
        connection,
        &target.path,
        target.create_dirs,
        target.partition_by,
    )?;
    let options = options(&output.path);
    let path = output.path.clone();
    reported_write(ctx, &path, inputs, move |conn, cancel, input| {
        output.write(conn, input, &options, cancel)
    })
    .await
}

/// Runs `work` (which writes the single upstream table and returns the rows and bytes
/// written) on the run database, with the `write.start` / `write.complete` events and the
/// `rows_written` / `bytes_processed` metrics of every file writer.
pub(crate) async fn reported_write<F>(
    ctx: &StepContext,
    path: &Path,
    inputs: StepInputs,
    work: F,
) -> Result<StepOutput>
where
    F: FnOnce(&duckdb::Connection, &CancellationToken, &TableName) -> Result<(u64, u64)>
        + Send
        + 'static,
{
    let input = inputs.single()?.table.clone();
    let path = path.display().to_string();
    ctx.event(
        "write.start",
        object([
            ("path", Value::String(path.clone())),
            ("table", Value::String(input.as_str().to_owned())),
        ]),
    );
    let started = Instant::now();
    let (rows, bytes) = ctx
        .run_blocking(move |conn, cancel| work(conn, cancel, &input))
        .await?;
    ctx.metric("rows_written", rows);
    ctx.metric("bytes_processed", bytes);
    ctx.event(
        "write.complete",
        object([
            ("path", Value::String(path)),
            ("rows", rows.into()),
            ("duration_ms", elapsed_ms(started).into()),
        ]),
    );
    Ok(StepOutput::written(rows))
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;

    #[test]
    fn a_failed_bind_or_a_cancel_wins_over_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "a\n1\n").unwrap();
        let paths = [path.clone()];
        let cancel = CancellationToken::new();
        let (bound, record) = bind_while_fingerprinting("csv", &paths, &cancel, || Ok(7)).unwrap();
        assert_eq!(bound, 7);
        assert_eq!(record.files[0].size, 4);
        let err = bind_while_fingerprinting("csv", &paths, &cancel, || -> Result<()> {
            Err(DriverError::data("bad header"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("bad header"), "{err}");
        cancel.cancel();
        let err = bind_while_fingerprinting("csv", &paths, &cancel, || Ok(())).unwrap_err();
        assert!(matches!(err, DriverError::Cancelled), "{err}");
    }
}
