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
        let Some((_, path)) = step_path(&step.config, base_dir) else {
            continue;
        };
        match (step.step.mode, glob_root(&path)) {
            (_, Some(dir)) => access.allow_directory(dir),
            (StepMode::Read, None) => access.allow_file(&path),
            (_, None) => match path.parent() {
                Some(parent) => access.allow_directory(parent),
                None => access.allow_file(&path),
            },
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
        .filter_map(|step| Some(step_path(&step.config, base_dir)?.1))
        .collect()
}

/// A step's `base_dir` (resolved against the pipeline's directory) and `path` (resolved against
/// that base), as the filesystem drivers resolve them.
fn step_path(
    config: &serde_json::Map<String, Value>,
    base_dir: &Path,
) -> Option<(Option<PathBuf>, PathBuf)> {
    let base = config
        .get("base_dir")
        .and_then(Value::as_str)
        .map(|dir| base_dir.join(dir));
    let path = config.get("path").and_then(Value::as_str)?;
    let root = base.as_deref().unwrap_or(base_dir);
    Some((base.clone(), root.join(path)))
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
