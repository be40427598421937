//! How a command ends. Every command returns one [`Outcome`]; [`Outcome::exit`] turns it into
//! the process exit code (from the one table, [`engine::exit`]) and, for an error, prints it:
//! `error: <message>` on stderr, or with `--json` one object of one shape on stdout, whatever
//! the command (docs/cli-json.md).

use std::process::ExitCode;

use driver_api::ErrorClass;
use engine::exit;
use pipeline::Problems;
use serde_json::json;

use crate::output::print_problems;

/// How a command ended.
#[derive(Debug)]
#[must_use]
pub enum Outcome {
    /// The command did its work and printed its report; the process exits with this code:
    /// 0, or 1 for a run that failed, sessions that differ or a connection that failed its
    /// check, or a signal's code for a cancelled run.
    Done(i32),
    /// The command could not do its work.
    Error(Box<Failure>),
}

/// Whose fault an error is, which decides its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input (pipeline, config, flags, ids) or the environment (files, sessions dir) is
    /// wrong; nothing ran (exit 2).
    Input,
    /// The world failed (a worker that died, a connection that does not answer): exit 1, like a
    /// failed step.
    Failed,
    /// A bug in osiris (exit 70): never to be mistaken for wrong input.
    Internal,
    /// A replay refused because a file an earlier session's view reads changed (exit 3).
    SourceChanged,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Failed => "failed",
            Self::Internal => "internal",
            Self::SourceChanged => "source_changed",
        }
    }

    fn exit_code(self) -> i32 {
        match self {
            Self::Input => exit::INPUT,
            Self::Failed => exit::RUN_FAILED,
            Self::Internal => exit::INTERNAL,
            Self::SourceChanged => exit::SOURCE_CHANGED,
        }
    }
}

/// An error a command ends with.
#[derive(Debug)]
pub struct Failure {
    kind: Kind,
    class: ErrorClass,
    message: String,
    file: Option<String>,
    problems: Problems,
}

impl Outcome {
    /// Success (exit 0).
    pub fn ok() -> Self {
        Self::Done(exit::OK)
    }

    /// Success (`true`, exit 0), or a finished command whose answer is "no" (exit 1).
    pub fn ok_if(ok: bool) -> Self {
        Self::Done(if ok { exit::OK } else { exit::RUN_FAILED })
    }

    /// Wrong input or environment (exit 2), class `config`.
    pub fn input(message: impl Into<String>) -> Self {
        Self::error(Kind::Input, ErrorClass::Config, message.into())
    }

    /// A pipeline (or spec) with problems (exit 2): `problems` are listed one by one, `message`
    /// sums them up ("not run: the pipeline is invalid").
    pub fn invalid(file: &str, problems: Problems, message: impl Into<String>) -> Self {
        Self::input(message).in_file(file).with_problems(problems)
    }

    /// The world failed with this error class (exit 1).
    pub fn failed(class: ErrorClass, message: impl Into<String>) -> Self {
        Self::error(Kind::Failed, class, message.into())
    }

    /// A replay refused: a file an earlier session's view reads changed (exit 3).
    pub fn source_changed(message: impl Into<String>) -> Self {
        Self::error(Kind::SourceChanged, ErrorClass::Data, message.into())
    }

    /// A bug (exit 70).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::error(Kind::Internal, ErrorClass::Internal, message.into())
    }

    /// An adapter's error, classified by the adapter (its message already redacted).
    pub fn adapter(error: &engine::AdapterError, message: String) -> Self {
        let kind = match error.exit_code() {
            exit::INPUT => Kind::Input,
            exit::INTERNAL => Kind::Internal,
            _ => Kind::Failed,
        };
        Self::error(kind, error.class(), message)
    }

    fn error(kind: Kind, class: ErrorClass, message: String) -> Self {
        Self::Error(Box::new(Failure {
            kind,
            class,
            message,
            file: None,
            problems: Problems::default(),
        }))
    }

    /// Names the file the error is about.
    pub fn in_file(mut self, file: &str) -> Self {
        if let Self::Error(failure) = &mut self {
            failure.file = Some(file.to_owned());
        }
        self
    }

    /// Adds the problems (errors and warnings) found.
    pub fn with_problems(mut self, problems: Problems) -> Self {
        if let Self::Error(failure) = &mut self {
            failure.problems.0.extend(problems.0);
        }
        self
    }

    /// The exit code.
    pub fn code(&self) -> i32 {
        match self {
            Self::Done(code) => *code,
            Self::Error(failure) => failure.kind.exit_code(),
        }
    }

    /// Prints an error (stderr, or the JSON error on stdout with `json`) and gives the process
    /// exit code.
    pub fn exit(self, json: bool) -> ExitCode {
        let code = self.code();
        if let Self::Error(failure) = &self {
            if json {
                say(&failure.to_json().to_string());
            } else {
                failure.print();
            }
        }
        ExitCode::from(u8::try_from(code).unwrap_or(1))
    }
}

impl Failure {
    /// The one JSON shape of every error (docs/cli-json.md).
    fn to_json(&self) -> serde_json::Value {
        let errors: Vec<_> = self.problems.errors().collect();
        let warnings: Vec<_> = self.problems.warnings().collect();
        json!({
            "ok": false,
            "status": "error",
            "exit_code": self.kind.exit_code(),
            "kind": self.kind.as_str(),
            "error_class": self.class.as_str(),
            "message": self.message,
            "file": self.file,
            "errors": errors,
            "warnings": warnings,
        })
    }

    /// Text form: the problems one per line (`<file>: error: ...`), then the message.
    fn print(&self) {
        use std::io::Write as _;
        if !self.problems.0.is_empty() {
            print_problems(self.file.as_deref().unwrap_or("-"), &self.problems);
        }
        let line = match (self.kind, &self.file) {
            (Kind::Input, Some(file)) if !self.problems.0.is_empty() => {
                format!("{file}: {}", self.message)
            }
            (Kind::Input | Kind::SourceChanged, _) => format!("error: {}", self.message),
            (Kind::Failed, _) => format!("error ({}): {}", self.class.as_str(), self.message),
            (Kind::Internal, _) => format!(
                "internal error (a bug in osiris, please report it): {}",
                self.message
            ),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// `println!` that ignores a closed stdout.
fn say(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_error_has_its_exit_code_and_class() {
        let cases = [
            (Outcome::input("bad flag"), 2, "input", "config"),
            (
                Outcome::failed(ErrorClass::Remote, "worker died"),
                1,
                "failed",
                "remote",
            ),
            (Outcome::internal("oops"), 70, "internal", "internal"),
        ];
        for (outcome, code, kind, class) in cases {
            assert_eq!(outcome.code(), code);
            let Outcome::Error(failure) = outcome else {
                panic!("an error")
            };
            let value = failure.to_json();
            assert_eq!(value["exit_code"], code);
            assert_eq!(value["kind"], kind);
            assert_eq!(value["error_class"], class);
        }
        assert_eq!(Outcome::ok().code(), 0);
        assert_eq!(Outcome::ok_if(false).code(), 1);
    }
}
