//! JSON Schema plumbing: the embedded spec schema, compiling config schemas, and turning
//! `jsonschema` errors into short messages a pipeline author can act on.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

/// `components/spec.schema.json`, the format of every spec document.
const SPEC_SCHEMA: &str = include_str!("../../../components/spec.schema.json");

/// Values longer than this are cut in messages (a whole SQL query helps nobody).
const MAX_SHOWN: usize = 60;

/// The compiled spec schema.
pub(crate) fn spec_validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        // Embedded at build time and covered by a unit test, so failing here is a build defect.
        let schema: Value = serde_json::from_str(SPEC_SCHEMA).expect("spec.schema.json is JSON");
        jsonschema::draft202012::new(&schema).expect("spec.schema.json is a valid JSON Schema")
    })
}

/// Compiles a config schema (draft 2020-12, formats as annotations, like the Python original).
/// The error lists every reason the schema is not valid.
pub(crate) fn compile(schema: &Value) -> Result<Validator, Vec<Found>> {
    jsonschema::draft202012::new(schema).map_err(|compile_error| {
        let meta = meta_problems(schema);
        if meta.is_empty() {
            vec![Found {
                pointer: String::new(),
                message: compile_error.to_string(),
            }]
        } else {
            meta
        }
    })
}

/// Why `schema` is not a valid draft 2020-12 schema.
pub(crate) fn meta_problems(schema: &Value) -> Vec<Found> {
    let meta = jsonschema::draft202012::meta::validator();
    let mut found = Vec::new();
    for error in meta.iter_errors(schema) {
        describe(&error, &|_| false, &mut found);
    }
    found
}

/// One problem: where in the instance, and what is wrong.
#[derive(Debug)]
pub(crate) struct Found {
    /// JSON pointer into the validated document.
    pub pointer: String,
    /// What is wrong, without the pointer.
    pub message: String,
}

impl Found {
    /// `pointer: message`, or just the message for the document itself.
    pub(crate) fn into_line(self) -> String {
        if self.pointer.is_empty() {
            self.message
        } else {
            format!("{}: {}", self.pointer, self.message)
        }
    }
}

/// Appends the problems `error` stands for to `out`; errors for which `skip` is true (and
/// such errors inside oneOf/anyOf branches) are left out.
pub(crate) fn describe(
    error: &ValidationError<'_>,
    skip: &dyn Fn(&ValidationError<'_>) -> bool,
    out: &mut Vec<Found>,
) {
    if skip(error) {
        return;
    }
    let at = error.instance_path().as_str();
    let value = show(error.instance());
    let message = match error.kind() {
        ValidationErrorKind::Type { kind } => {
            let names: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![t.as_str()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect(),
            };
            format!("{value} is not of type {}", alternatives(&names))
        }
        ValidationErrorKind::Enum { options } => {
            let listed: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(show).collect())
                .unwrap_or_default();
            format!("{value} is not one of {}", listed.join(", "))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!(
                "{value} is not {}, the only allowed value",
                show(expected_value)
            )
        }
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            out.push(Found {
                pointer: join_pointer(at, &name),
                message: format!("missing required key `{name}`"),
            });
            return;
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for key in unexpected {
                out.push(Found {
                    pointer: join_pointer(at, key),
                    message: format!("unknown key `{key}`"),
                });
            }
            return;
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            describe_alternatives(error, context, skip, out);
            return;
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            format!("{value} matches more than one of the allowed forms (oneOf)")
        }
        ValidationErrorKind::MinLength { limit } => {
            format!(
                "{value} is shorter than {limit} character{}",
                plural(*limit)
            )
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("{value} is longer than {limit} character{}", plural(*limit))
        }
        ValidationErrorKind::MinItems { limit } => {
            format!("{value} has fewer than {limit} item{}", plural(*limit))
        }
        ValidationErrorKind::MaxItems { limit } => {
            format!("{value} has more than {limit} item{}", plural(*limit))
        }
        ValidationErrorKind::MinProperties { limit } => {
            format!("{value} has fewer than {limit} key{}", plural(*limit))
        }
        ValidationErrorKind::MaxProperties { limit } => {
            format!("{value} has more than {limit} key{}", plural(*limit))
        }
        ValidationErrorKind::UniqueItems => format!("{value} has duplicate items"),
        ValidationErrorKind::Pattern { pattern } => {
            format!("{value} does not match the pattern {pattern}")
        }
        ValidationErrorKind::Format { format } => format!("{value} is not a valid {format}"),
        ValidationErrorKind::FalseSchema => format!("{value} is not allowed here"),
        ValidationErrorKind::Not { .. } => format!("{value} is not allowed here"),
        ValidationErrorKind::Contains => {
            format!("{value} has no item of the required form")
        }
        ValidationErrorKind::PropertyNames { error } => format!("invalid key: {error}"),
        // The remaining messages of jsonschema (minimum, maximum, multipleOf, ...) only show
        // numbers, so they are short and clear already.
        _ => error.to_string(),
    };
    out.push(Found {
        pointer: at.to_owned(),
        message,
    });
}

/// A value that matches none of several forms (oneOf/anyOf). Forms that reject the value only
/// for its type are the ones the author did not mean; when exactly one form accepts the type,
/// its own problems are the useful ones.
fn describe_alternatives(
    error: &ValidationError<'_>,
    branches: &[Vec<ValidationError<'static>>],
    skip: &dyn Fn(&ValidationError<'_>) -> bool,
    out: &mut Vec<Found>,
) {
    let here = error.instance_path();
    let wrong_type_only = |branch: &Vec<ValidationError<'static>>| {
        !branch.is_empty()
            && branch.iter().all(|e| {
                matches!(e.kind(), ValidationErrorKind::Type { .. }) && e.instance_path() == here
            })
    };
    let meant: Vec<&Vec<ValidationError<'static>>> =
        branches.iter().filter(|b| !wrong_type_only(b)).collect();
    let value = show(error.instance());
    let before = out.len();
    match meant.as_slice() {
        [] => {
            let mut names: Vec<&str> = Vec::new();
            for e in branches.iter().flatten() {
                if let ValidationErrorKind::Type { kind } = e.kind() {
                    let kinds: Vec<&str> = match kind {
                        TypeKind::Single(t) => vec![t.as_str()],
                        TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect(),
                    };
                    for name in kinds {
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                }
            }
            out.push(Found {
                pointer: here.as_str().to_owned(),
                message: format!("{value} is not of type {}", alternatives(&names)),
            });
        }
        [branch] => {
            for e in branch.iter() {
                describe(e, skip, out);
            }
        }
        several => {
            let forms: Vec<String> = several
                .iter()
                .map(|branch| {
                    let mut found = Vec::new();
                    for e in branch.iter() {
                        describe(e, skip, &mut found);
                    }
                    found
                        .into_iter()
                        .map(Found::into_line)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .collect();
            out.push(Found {
                pointer: here.as_str().to_owned(),
                message: format!(
                    "{value} matches none of the allowed forms: {}",
                    forms.join("; or ")
                ),
            });
        }
    }
    if out.len() == before {
        // Every detail was skipped, but the value is still wrong.
        out.push(Found {
            pointer: here.as_str().to_owned(),
            message: format!("{value} matches none of the allowed forms"),
        });
    }
}

/// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
fn alternatives(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match quoted.split_last() {
        None => "any".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A value as JSON, cut to [`MAX_SHOWN`] characters.
pub(crate) fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= MAX_SHOWN {
        text
    } else {
        let cut: String = text.chars().take(MAX_SHOWN - 3).collect();
        format!("{cut}...")
    }
}

/// `base` + `/segment`, escaping `~` and `/` as JSON Pointer requires.
pub(crate) fn join_pointer(base: &str, segment: &str) -> String {
    format!("{base}/{}", segment.replace('~', "~0").replace('/', "~1"))
}

/// The first segment of a JSON pointer, unescaped (`/headers/X` -> `headers`).
pub(crate) fn pointer_head(pointer: &str) -> Option<String> {
    let head = pointer.strip_prefix('/')?.split('/').next()?;
    Some(head.replace("~1", "/").replace("~0", "~"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(schema: Value, instance: Value) -> Vec<String> {
        let validator = compile(&schema).unwrap();
        let mut found = Vec::new();
        for e in validator.iter_errors(&instance) {
            describe(&e, &|_| false, &mut found);
        }
        found.into_iter().map(Found::into_line).collect()
    }

    #[test]
    fn spec_schema_compiles() {
        assert!(spec_validator().is_valid(&json!({
            "name": "a.b", "version": "1.0.0", "modes": ["extract"],
            "capabilities": {"discover": false, "adHocAnalytics": false, "inMemoryMove": false,
                "streaming": false, "bulkOperations": false, "transactions": false,
                "partitioning": false, "customTransforms": false},
            "configSchema": {"type": "object", "properties": {}}
        })));
    }

    #[test]
    fn one_of_reports_the_form_whose_type_matches() {
        let schema = json!({"type": "object", "properties": {"pk": {"oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "items": {"type": "string"}, "minItems": 1}
        ]}}});
        assert_eq!(
            problems(schema.clone(), json!({"pk": []})),
            ["/pk: [] has fewer than 1 item"]
        );
        assert_eq!(
            problems(schema.clone(), json!({"pk": 5})),
            ["/pk: 5 is not of type \"string\" or \"array\""]
        );
        assert_eq!(
            problems(schema, json!({"pk": ["a", 3]})),
            ["/pk/1: 3 is not of type \"string\""]
        );
    }

    #[test]
    fn long_values_are_cut_and_pointers_escaped() {
        let long = "x".repeat(100);
        let found = problems(
            json!({"type": "object", "properties": {"a/b": {"type": "integer"}}}),
            json!({"a/b": long}),
        );
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("/a~1b: \"xxxx"), "{}", found[0]);
        assert!(
            found[0].contains("...") && found[0].len() < 110,
            "{}",
            found[0]
        );
        assert_eq!(pointer_head("/a~1b/c").as_deref(), Some("a/b"));
    }

    #[test]
    fn invalid_schema_lists_meta_problems() {
        let err = compile(&json!({"type": "strnig", "minimum": "x"})).unwrap_err();
        assert!(err.iter().any(|e| e.pointer == "/type"), "{err:?}");
        assert!(err.iter().any(|e| e.pointer == "/minimum"), "{err:?}");
    }
}
