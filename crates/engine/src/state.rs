//! The incremental state store: one JSON file per pipeline and step,
//! `<state dir>/<pipeline name>/<step id>.json`, holding what a step returned as
//! [`StepOutput::state`](driver_api::StepOutput) (an extractor's cursor). The next run of the
//! same step reads it back through [`StepContext::state`](driver_api::StepContext::state).
//!
//! States are saved only when the whole run succeeded (ADR 0017): an extractor's table is
//! only an intermediate result, and a later step that failed to write it out must not leave
//! the cursor past rows that never reached the destination. Files are replaced atomically
//! (temporary file in the same directory, fsync, rename), so a crash leaves the old or the
//! new state, never half of one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use execution_context::{ExecutionContext, object};

use crate::{PreparedPlan, RunOutcome};

/// Default state directory, relative to the pipeline file's directory.
pub const STATE_DIR: &str = ".osiris/state";

/// Version of the state file format.
const FORMAT: u64 = 1;

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The file or its directory could not be read or written.
    #[error("cannot {action} state file {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file exists but is not a state file of this step.
    #[error(
        "state file {} is unusable: {message}; fix or delete it, or run with --full-refresh",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The states of one pipeline's steps.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// The store of pipeline `pipeline` (its `name`) under the state directory `root`.
    pub fn new(root: &Path, pipeline: &str) -> Self {
        Self {
            dir: root.join(file_stem(pipeline)),
        }
    }

    /// The directory holding this pipeline's state files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of step `step_id`.
    pub fn path(&self, step_id: &str) -> PathBuf {
        self.dir.join(format!("{}.json", file_stem(step_id)))
    }

    /// The stored state of `step_id`, if any. A state saved by another component (the step was
    /// changed to another component since) is not handed over: `Ok(None)`.
    pub fn load(&self, step_id: &str, component: &str) -> Result<Option<Value>, StateError> {
        let path = self.path(step_id);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let invalid = |message: String| StateError::Invalid {
            path: path.clone(),
            message,
        };
        let file: Value =
            serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let Some(file) = file.as_object() else {
            return Err(invalid("not a JSON object".into()));
        };
        match file.get("format").and_then(Value::as_u64) {
            Some(FORMAT) => {}
            other => {
                return Err(invalid(format!(
                    "unknown format {}, expected {FORMAT}",
                    other.map_or_else(|| "(missing)".to_owned(), |v| v.to_string())
                )));
            }
        }
        if file.get("component").and_then(Value::as_str) != Some(component) {
            tracing::warn!(step_id, path = %path.display(), "state belongs to another component; ignored");
            return Ok(None);
        }
        Ok(file.get("state").filter(|s| !s.is_null()).cloned())
    }

    /// Replaces the stored state of `step_id` atomically.
    pub fn save(
        &self,
        step_id: &str,
        component: &str,
        session_id: &str,
        state: &Value,
    ) -> Result<PathBuf, StateError> {
        let path = self.path(step_id);
        let io = |action: &'static str| {
            let path = path.clone();
            move |source| StateError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&self.dir).map_err(io("create the directory of"))?;
        let mut file = Map::new();
        file.insert("format".into(), FORMAT.into());
        file.insert("step_id".into(), step_id.into());
        file.insert("component".into(), component.into());
        file.insert("session_id".into(), session_id.into());
        file.insert("saved_at".into(), execution_context::now_iso().into());
        file.insert("state".into(), state.clone());
        let text = serde_json::to_string_pretty(&file).expect("JSON always serializes") + "\n";
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io("write"))?;
        temp.write_all(text.as_bytes()).map_err(io("write"))?;
        temp.as_file().sync_all().map_err(io("write"))?;
        temp.persist(&path).map_err(|e| StateError::Io {
            action: "replace",
            path: path.clone(),
            source: e.error,
        })?;
        // The rename is durable once the directory entry is.
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(path)
    }

    /// Hands every step of `prepared` its stored state. Returns the ids of steps that got one.
    pub fn load_into(&self, prepared: &mut PreparedPlan) -> Result<Vec<String>, StateError> {
        let mut loaded = Vec::new();
        for step in &mut prepared.steps {
            step.state = self.load(&step.step.id, &step.step.component)?;
            if step.state.is_some() {
                loaded.push(step.step.id.clone());
            }
        }
        Ok(loaded)
    }

    /// Saves the states the steps of a run returned, if and only if the whole run succeeded.
    /// Returns the ids of the steps whose state was saved (empty for a failed run).
    pub fn commit(
        &self,
        outcome: &RunOutcome,
        session_id: &str,
    ) -> Result<Vec<String>, StateError> {
        if !outcome.ok() {
            return Ok(Vec::new());
        }
        let mut saved = Vec::new();
        for report in &outcome.steps {
            if let Some(state) = &report.state {
                self.save(&report.step_id, &report.component, session_id, state)?;
                saved.push(report.step_id.clone());
            }
        }
        Ok(saved)
    }
}

impl StateStore {
    /// After a run: saves the states its steps returned when the run succeeded (events
    /// `state_saved`), or records that they were discarded (`state_discarded`). Called by
    /// whoever ran the plan (`osiris run`), after the adapter finished, for local and remote
    /// runs alike. Returns the ids of the steps whose state was saved.
    pub fn save_run(
        &self,
        exec: &ExecutionContext,
        outcome: &RunOutcome,
    ) -> Result<Vec<String>, StateError> {
        let pending: Vec<String> = outcome
            .steps
            .iter()
            .filter(|s| s.state.is_some())
            .map(|s| s.step_id.clone())
            .collect();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        if !outcome.ok() {
            exec.event(
                "state_discarded",
                object([
                    ("steps", pending.into()),
                    ("reason", "the run did not succeed".into()),
                ]),
            );
            return Ok(Vec::new());
        }
        match self.commit(outcome, exec.session_id()) {
            Ok(saved) => {
                for step_id in &saved {
                    exec.event(
                        "state_saved",
                        object([
                            ("step_id", step_id.as_str().into()),
                            ("path", self.path(step_id).display().to_string().into()),
                        ]),
                    );
                }
                Ok(saved)
            }
            Err(error) => {
                exec.event(
                    "state_save_failed",
                    object([("error", error.to_string().into())]),
                );
                Err(error)
            }
        }
    }
}

/// A file name for a pipeline name or step id: letters, digits, `_` and `-` stay, every other
/// byte becomes `%XX`, so distinct ids get distinct files and none escapes the directory.
fn file_stem(name: &str) -> String {
    let mut stem = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            stem.push(char::from(byte));
        } else {
            stem.push_str(&format!("%{byte:02X}"));
        }
    }
    if stem.is_empty() {
        stem.push_str("%00");
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StepReport, StepStatus};
    use pipeline::StepMode;

    fn report(id: &str, ok: bool, state: Option<Value>) -> StepReport {
        StepReport {
            step_id: id.into(),
            component: "test.sql".into(),
            mode: StepMode::Read,
            status: if ok {
                StepStatus::Ok {
                    rows: 1,
                    table: Some(id.into()),
                    view: false,
                }
            } else {
                StepStatus::Failed {
                    error_class: driver_api::ErrorClass::Data,
                    error: "x".into(),
                }
            },
            duration_ms: 1,
            state,
        }
    }

    fn outcome(steps: Vec<StepReport>, total: usize) -> RunOutcome {
        RunOutcome {
            steps,
            steps_total: total,
            cancelled: false,
            duration_ms: 1,
        }
    }

    #[test]
    fn saves_only_when_the_whole_run_succeeded() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path(), "my pipeline");
        let cursor = serde_json::json!({"last": 7});
        let failed_later = outcome(
            vec![
                report("extract", true, Some(cursor.clone())),
                report("write", false, None),
            ],
            2,
        );
        assert!(store.commit(&failed_later, "s1").unwrap().is_empty());
        assert_eq!(store.load("extract", "test.sql").unwrap(), None);

        let ok = outcome(
            vec![
                report("extract", true, Some(cursor.clone())),
                report("write", true, None),
            ],
            2,
        );
        assert_eq!(store.commit(&ok, "s2").unwrap(), ["extract"]);
        assert_eq!(store.load("extract", "test.sql").unwrap(), Some(cursor));
        assert_eq!(store.load("write", "test.sql").unwrap(), None);
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(store.path("extract")).unwrap()).unwrap();
        assert_eq!(file["session_id"], "s2");
        assert_eq!(
            store.path("extract"),
            dir.path().join("my%20pipeline").join("extract.json")
        );
        let leftovers: Vec<_> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["extract.json"], "no temporary file remains");
    }

    #[test]
    fn step_ids_cannot_escape_the_directory_and_stay_distinct() {
        let store = StateStore::new(Path::new("/s"), "../p");
        assert_eq!(
            store.path("../x"),
            Path::new("/s/%2E%2E%2Fp/%2E%2E%2Fx.json")
        );
        assert_ne!(store.path("a.b"), store.path("a_b"));
    }

    #[test]
    fn another_components_state_is_not_handed_over_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path(), "p");
        store
            .save("a", "posthog.extractor", "s", &serde_json::json!({"x": 1}))
            .unwrap();
        assert_eq!(store.load("a", "other.extractor").unwrap(), None);
        std::fs::write(store.path("a"), "{not json").unwrap();
        let error = store
            .load("a", "posthog.extractor")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not JSON"), "{error}");
        assert!(error.contains("--full-refresh"), "{error}");
    }
}
