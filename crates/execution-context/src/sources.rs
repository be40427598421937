//! Source views: a step whose object in the run database is a VIEW over files (a file
//! extractor with `materialize: view`, ADR 0036) rather than a table. What the view read is not
//! in the database, so the view carries a record of it: each file's absolute path, size,
//! modification time and a content hash (XXH3-64), as JSON in the view's comment. The file
//! drivers write it; kept sessions (`sessions show`/`query`) and `--from-step` replay compare
//! the files on disk with it.
//!
//! The record lives in the database (not in a file beside it) so that it travels with the
//! database wherever it goes and cannot disagree with the view it describes.

use std::fs::File;
use std::hash::Hasher as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Marks a view comment as a source record (and its layout's version).
const RECORD_KEY: &str = "osiris_source";
/// The record layout written by this version.
const RECORD_VERSION: u64 = 1;

/// What was read from one file when its view was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// Absolute path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when the file system has none).
    pub mtime_ns: u64,
    /// XXH3-64 of the whole content, as 16 hex digits.
    pub xxh3: String,
}

impl FileFingerprint {
    /// Reads `path` once (in 1 MiB blocks: memory stays bounded) and fingerprints it.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        Self::of_unless(path, || false)
    }

    /// [`of`](Self::of), giving up (an `Interrupted` error) as soon as `stop` says so (asked
    /// before each block): a fingerprint taken beside other work is not waited for once that
    /// work has failed or the run is cancelled.
    pub fn of_unless(path: &Path, stop: impl Fn() -> bool) -> std::io::Result<Self> {
        let mut file = File::open(path)?;
        let metadata = file.metadata()?;
        let mut hasher = twox_hash::XxHash3_64::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            if stop() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "fingerprint stopped",
                ));
            }
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.write(&buf[..n]);
        }
        Ok(Self {
            path: std::path::absolute(path)?,
            size: metadata.len(),
            mtime_ns: mtime_ns(&metadata),
            xxh3: format!("{:016x}", hasher.finish()),
        })
    }

    /// Compares the file on disk now with this fingerprint. The content is hashed again only
    /// when the size is the same (a different size is a change already).
    pub fn check(&self) -> FileState {
        let metadata = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileState::Missing,
            Err(e) => return FileState::Unreadable(e.to_string()),
        };
        if metadata.len() != self.size {
            return FileState::Changed(format!("size {} bytes, was {}", metadata.len(), self.size));
        }
        match Self::of(&self.path) {
            Ok(now) if now.xxh3 != self.xxh3 => {
                FileState::Changed("same size, different content".into())
            }
            // Same content: a newer mtime alone (a copy, `touch`) is no change of the data.
            Ok(_) => FileState::Unchanged,
            Err(e) => FileState::Unreadable(e.to_string()),
        }
    }
}

fn mtime_ns(metadata: &std::fs::Metadata) -> u64 {
    metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// How a file a view reads compares with its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum FileState {
    /// Same size and content.
    Unchanged,
    /// Different size or content (the detail says which).
    Changed(String),
    /// No file at the path (moved or removed).
    Missing,
    /// The file exists but cannot be read.
    Unreadable(String),
}

impl FileState {
    /// Whether the view still reads what the run read.
    pub fn matches(&self) -> bool {
        *self == Self::Unchanged
    }

    /// One word for listings: `unchanged`, `changed`, `missing`, `unreadable`.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Unchanged => "unchanged",
            Self::Changed(_) => "changed",
            Self::Missing => "missing",
            Self::Unreadable(_) => "unreadable",
        }
    }
}

impl std::fmt::Display for FileState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unchanged => f.write_str("unchanged"),
            Self::Changed(detail) => write!(f, "changed ({detail})"),
            Self::Missing => f.write_str("missing (moved or removed)"),
            Self::Unreadable(detail) => write!(f, "unreadable ({detail})"),
        }
    }
}

/// The record a source view carries in its comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The reader: `csv`, `parquet` or `json`.
    pub format: String,
    /// Every file the view reads (for a glob, the files it matched when the view was made).
    pub files: Vec<FileFingerprint>,
}

impl SourceRecord {
    /// The comment text (`COMMENT ON VIEW ... IS '<this>'`).
    pub fn to_comment(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert(RECORD_KEY.into(), RECORD_VERSION.into());
        }
        value.to_string()
    }

    /// The record in a view comment, if it is one.
    pub fn from_comment(comment: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(comment).ok()?;
        value.get(RECORD_KEY)?.as_u64()?;
        serde_json::from_value(value).ok()
    }

    /// Every file compared with the disk now.
    pub fn check(&self) -> Vec<(PathBuf, FileState)> {
        self.files
            .iter()
            .map(|f| (f.path.clone(), f.check()))
            .collect()
    }
}

/// A view over files in a run database.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    /// The view's name (= step id).
    pub name: String,
    /// Its definition, as DuckDB keeps it (`CREATE VIEW ... AS SELECT ... FROM read_csv(...)`).
    pub definition: String,
    /// What it read.
    pub record: SourceRecord,
}

/// The source views of the `main` schema of `conn`'s database (`catalog`: its name when it is
/// attached, `None` for the default one). Reads only the catalog: no view runs.
pub fn source_views(
    conn: &duckdb::Connection,
    catalog: Option<&str>,
) -> duckdb::Result<Vec<SourceView>> {
    let mut stmt = conn.prepare(
        "SELECT view_name, sql, comment FROM duckdb_views() \
         WHERE NOT internal AND schema_name = 'main' \
         AND database_name = coalesce(?, current_database()) ORDER BY view_name",
    )?;
    let rows = stmt.query_map([catalog], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (name, sql, comment) = row?;
        if let Some(record) = comment.as_deref().and_then(SourceRecord::from_comment) {
            out.push(SourceView {
                name,
                definition: sql.unwrap_or_default(),
                record,
            });
        }
    }
    Ok(out)
}

/// The files the source views of `conn`'s database read (`catalog` as for [`source_views`]),
/// each once: what a read-only reader of a kept run must be allowed to open.
pub fn source_files(
    conn: &duckdb::Connection,
    catalog: Option<&str>,
) -> duckdb::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = source_views(conn, catalog)?
        .into_iter()
        .flat_map(|v| v.record.files)
        .map(|f| f.path)
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Turns every source view of `conn`'s database into a table holding the rows the view reads
/// now, keeping the view's record as the table's comment. A remote worker does this before the
/// host pulls the database back: the files a view names are on the worker, so the pulled copy
/// must carry the rows themselves (ADR 0036). Each view is replaced in one transaction.
pub fn materialize_views(conn: &duckdb::Connection) -> duckdb::Result<usize> {
    let views = source_views(conn, None)?;
    for view in &views {
        let name = crate::quote_identifier(&view.name);
        let staging = crate::quote_identifier(&format!("__osiris_materialize_{}", view.name));
        conn.execute_batch(&format!(
            "BEGIN; \
             CREATE TABLE {staging} AS SELECT * FROM {name}; \
             DROP VIEW {name}; \
             ALTER TABLE {staging} RENAME TO {name}; \
             COMMENT ON TABLE {name} IS {comment}; \
             COMMIT;",
            comment = crate::quote_literal(&view.record.to_comment()),
        ))
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK");
        })?;
    }
    Ok(views.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_stops_at_the_next_block_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        std::fs::write(&path, vec![b'x'; 5 << 20]).unwrap();
        let asked = std::cell::Cell::new(0);
        let err = FileFingerprint::of_unless(&path, || {
            asked.set(asked.get() + 1);
            asked.get() > 2
        })
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted);
        assert_eq!(asked.get(), 3, "two 1 MiB blocks read, then stopped");
        let whole = FileFingerprint::of_unless(&path, || false).unwrap();
        assert_eq!(whole, FileFingerprint::of(&path).unwrap());
        assert_eq!(whole.size, 5 << 20);
    }

    #[test]
    fn a_fingerprint_notices_changed_content_size_and_removal_but_not_a_touch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let fp = FileFingerprint::of(&path).unwrap();
        assert!(fp.path.is_absolute());
        assert_eq!(fp.size, 8);
        assert_eq!(fp.xxh3.len(), 16);
        assert_eq!(fp.check(), FileState::Unchanged);
        // Rewritten with the same bytes (new mtime): the data did not change.
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        assert_eq!(fp.check(), FileState::Unchanged);
        std::fs::write(&path, "a,b\n1,3\n").unwrap();
        assert_eq!(
            fp.check(),
            FileState::Changed("same size, different content".into())
        );
        std::fs::write(&path, "a,b\n1,30\n").unwrap();
        assert!(matches!(fp.check(), FileState::Changed(d) if d.contains("size 9 bytes")));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(fp.check(), FileState::Missing);
    }

    #[test]
    fn records_round_trip_through_a_view_comment_and_other_comments_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let record = SourceRecord {
            format: "csv".into(),
            files: vec![FileFingerprint::of(&path).unwrap()],
        };
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let literal = record.to_comment().replace('\'', "''");
        conn.execute_batch(&format!(
            "CREATE VIEW v AS SELECT * FROM read_csv('{}'); COMMENT ON VIEW v IS '{literal}'; \
             CREATE VIEW other AS SELECT 1; COMMENT ON VIEW other IS 'not a record'; \
             CREATE VIEW plain AS SELECT 2;",
            path.display()
        ))
        .unwrap();
        let views = source_views(&conn, None).unwrap();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].name, "v");
        assert_eq!(views[0].record, record);
        assert!(
            views[0].definition.contains("read_csv"),
            "{}",
            views[0].definition
        );
    }

    #[test]
    fn materialized_views_hold_their_rows_after_the_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "a,b\n1,x\n2,y\n").unwrap();
        let record = SourceRecord {
            format: "csv".into(),
            files: vec![FileFingerprint::of(&path).unwrap()],
        };
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "CREATE VIEW \"read-in\" AS SELECT * FROM read_csv({}); \
             COMMENT ON VIEW \"read-in\" IS {}; CREATE VIEW plain AS SELECT 2 AS c;",
            crate::quote_literal(&path.display().to_string()),
            crate::quote_literal(&record.to_comment())
        ))
        .unwrap();
        assert_eq!(materialize_views(&conn).unwrap(), 1);
        std::fs::remove_file(&path).unwrap();
        let rows: Vec<(i64, String)> = conn
            .prepare("SELECT a, b FROM \"read-in\" ORDER BY a")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows, [(1, "x".to_owned()), (2, "y".to_owned())]);
        let kinds: Vec<(String, String)> = conn
            .prepare(
                "SELECT table_name, table_type FROM information_schema.tables ORDER BY table_name",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            kinds,
            [
                ("plain".to_owned(), "VIEW".to_owned()),
                ("read-in".to_owned(), "BASE TABLE".to_owned())
            ],
            "only source views become tables, nothing is left behind"
        );
        assert!(source_views(&conn, None).unwrap().is_empty());
    }
}
