//! Problems found in a pipeline: what, where (step, key, line), how bad.

use std::fmt;

use serde::Serialize;

use crate::Pipeline;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The pipeline cannot run.
    Error,
    /// The pipeline runs, but something is probably not what the author meant.
    Warning,
}

/// One problem found in a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The step the problem is in, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The key the problem is about, as a path (`needs`, `config.delimiter`, `oml_version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// JSON pointer of the key in the pipeline document (`/steps/2/config/delimiter`), set by
    /// [`Problems::locate`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// An error about a top-level key.
    pub fn error(key: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            step: None,
            key: key.map(str::to_owned),
            pointer: None,
            message: message.into(),
        }
    }

    /// An error about a key of a step.
    pub fn step_error(step: &str, key: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            step: Some(step.to_owned()),
            key: key.map(str::to_owned),
            pointer: None,
            message: message.into(),
        }
    }

    /// Turns this problem into a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}")?;
        match (&self.step, &self.key) {
            (Some(step), Some(key)) => write!(f, ": step '{step}', key `{key}`")?,
            (Some(step), None) => write!(f, ": step '{step}'")?,
            (None, Some(key)) => write!(f, ": key `{key}`")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.message)
    }
}

/// A list of problems; the error type of parsing and validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Problem::is_error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter().filter(|p| p.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter().filter(|p| !p.is_error())
    }

    /// Adds a problem.
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    /// Fills in each problem's JSON pointer into the pipeline document, using the steps'
    /// positions in the file.
    pub fn locate(mut self, pipeline: Option<&Pipeline>) -> Self {
        for problem in &mut self.0 {
            if problem.pointer.is_some() {
                continue;
            }
            let base = match (&problem.step, pipeline) {
                (Some(step), Some(p)) => match p.steps.iter().find(|s| &s.id == step) {
                    Some(s) => format!("/steps/{}", s.index),
                    None => continue,
                },
                (Some(_), None) => continue,
                (None, _) => String::new(),
            };
            let key = problem.key.as_deref().map(key_pointer).unwrap_or_default();
            problem.pointer = Some(if base.is_empty() && key.is_empty() {
                "/".into()
            } else {
                format!("{base}{key}")
            });
        }
        self
    }
}

/// `config.columns[2]` -> `/config/columns/2` (RFC 6901 escaping of `~` and `/`).
fn key_pointer(key: &str) -> String {
    let mut out = String::new();
    for part in key.split('.') {
        let (name, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        out.push('/');
        out.push_str(&name.replace('~', "~0").replace('/', "~1"));
        for index in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(index);
        }
    }
    out
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
