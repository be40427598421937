//! What SQL running on the run database may reach outside it.
//!
//! A run database opened for a run has DuckDB's external access off: no `COPY ... TO`, `ATTACH`,
//! `read_text` or extension install reaches the machine, except inside the directories and
//! files a run legitimately uses (the pipeline's directory, each `@filesystem` connection's
//! `base_dir`, the paths its filesystem steps name, the session directory itself). DuckDB keeps
//! these settings for the life of the database instance, and refuses to widen them once
//! external access is off, so they are applied once, right after the file is opened.

use std::path::{Path, PathBuf};

use crate::sql::quote_literal;

/// Directories and files SQL on the run database may read and write; nothing else outside the
/// database is reachable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAccess {
    directories: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl FileAccess {
    /// No access outside the database (and the session directory, which is always allowed).
    pub fn none() -> Self {
        Self::default()
    }

    /// Allows everything under `dir` (made absolute).
    pub fn allow_directory(&mut self, dir: impl AsRef<Path>) {
        let dir = absolute(dir.as_ref());
        if !self.directories.contains(&dir) {
            self.directories.push(dir);
        }
    }

    /// Allows the one file `path` (made absolute).
    pub fn allow_file(&mut self, path: impl AsRef<Path>) {
        let path = absolute(path.as_ref());
        if !self.files.contains(&path) {
            self.files.push(path);
        }
    }

    /// The allowed directories.
    pub fn directories(&self) -> &[PathBuf] {
        &self.directories
    }

    /// The allowed single files.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Locks a freshly opened database down to this access (DuckDB refuses to widen it later).
    pub fn lock_down(&self, conn: &duckdb::Connection) -> duckdb::Result<()> {
        conn.execute_batch(&self.lockdown_sql())
    }

    /// The statements that lock a freshly opened database down to this access.
    fn lockdown_sql(&self) -> String {
        let list = |paths: &[PathBuf], dir: bool| {
            paths
                .iter()
                .map(|p| {
                    let mut text = p.display().to_string();
                    if dir && !text.ends_with('/') {
                        text.push('/');
                    }
                    quote_literal(&text)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "SET allowed_directories = [{}]; SET allowed_paths = [{}]; \
             SET enable_external_access = false; SET allow_community_extensions = false;",
            list(&self.directories, true),
            list(&self.files, false)
        )
    }
}

/// `path` as an absolute path with `.` and `..` resolved lexically (DuckDB compares prefixes
/// of the text a query gives).
fn absolute(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
