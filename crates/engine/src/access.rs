//! What a run's SQL may reach on the machine: the paths its own steps name, nothing else.

use std::path::{Component, Path, PathBuf};

use execution_context::FileAccess;
use pipeline::StepMode;
use serde_json::Value;

use crate::PreparedPlan;

/// The file access of a run of `prepared` whose relative paths resolve against `base_dir` (the
/// pipeline's directory), for [`ExecutionContext::restrict_file_access`]
/// (execution_context::ExecutionContext::restrict_file_access):
/// - the pipeline's directory and each `base_dir` a step's config or connection gives;
/// - a reading step's `path`: that file, or for a glob the directory before its first
///   wildcard;
/// - a writing step's `path`: its directory (writers write a temporary file beside the
///   output and rename it).
///
/// A query can then read what the pipeline's own file steps read, and write nowhere else.
pub fn file_access(prepared: &PreparedPlan, base_dir: &Path) -> FileAccess {
    let mut access = FileAccess::none();
    access.allow_directory(base_dir);
    for step in &prepared.steps {
        if let Some(dir) = step.config.get("base_dir").and_then(Value::as_str) {
            access.allow_directory(base_dir.join(dir));
        }
        for path in step_paths(&step.config, base_dir) {
            match (step.step.mode, glob_root(&path)) {
                (_, Some(dir)) => access.allow_directory(dir),
                (StepMode::Read, None) => access.allow_file(&path),
                (_, None) => match path.parent() {
                    Some(parent) => access.allow_directory(parent),
                    None => access.allow_file(&path),
                },
            }
        }
    }
    access
}

/// The output files of the plan's writing steps (`path`, resolved as [`file_access`] does), so
/// that temporary files a killed run left beside them can be removed.
pub fn output_paths(prepared: &PreparedPlan, base_dir: &Path) -> Vec<PathBuf> {
    prepared
        .steps
        .iter()
        .filter(|step| step.step.mode == StepMode::Write)
        .flat_map(|step| step_paths(&step.config, base_dir))
        .collect()
}

/// A step's `path`s (one, or a list of them for the file extractors), resolved against its
/// `base_dir` (itself resolved against the pipeline's directory) as the filesystem drivers
/// resolve them.
fn step_paths(config: &serde_json::Map<String, Value>, base_dir: &Path) -> Vec<PathBuf> {
    let base = config
        .get("base_dir")
        .and_then(Value::as_str)
        .map(|dir| base_dir.join(dir));
    let root = base.as_deref().unwrap_or(base_dir);
    let paths: Vec<&str> = match config.get("path") {
        Some(Value::String(path)) => vec![path.as_str()],
        Some(Value::Array(paths)) => paths.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    paths.into_iter().map(|path| root.join(path)).collect()
}

/// For a path with a wildcard (`*`, `?`, `[`, `{`), the directory before the first component
/// holding one.
fn glob_root(path: &Path) -> Option<PathBuf> {
    let mut root = PathBuf::new();
    for part in path.components() {
        if let Component::Normal(name) = part
            && name.to_string_lossy().contains(['*', '?', '[', '{'])
        {
            return Some(root);
        }
        root.push(part);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_allow_the_directory_before_the_wildcard() {
        assert_eq!(
            glob_root(Path::new("/data/in/2024-*/part*.csv")),
            Some(PathBuf::from("/data/in"))
        );
        assert_eq!(glob_root(Path::new("/data/in/a.csv")), None);
    }
}
