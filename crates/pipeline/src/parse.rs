//! Reading an OML document into a [`Pipeline`], collecting every problem at once.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::dag::{Wiring, check_needs, wire};
use crate::{OML_VERSION, ParamInputs, Pipeline, Problem, Problems, Step, StepMode, params};

const KNOWN_TOP_LEVEL: &[&str] = &[
    "oml_version",
    "name",
    "steps",
    "description",
    "metadata",
    "schedule",
    "params",
    "profiles",
];
const FORBIDDEN_TOP_LEVEL: &[&str] = &["version", "connectors", "tasks", "outputs"];
const KNOWN_STEP_KEYS: &[&str] = &[
    "id",
    "component",
    "mode",
    "config",
    "needs",
    "inputs",
    "uses",
    "with",
    "description",
];

/// The mode of a component whose step gives none, if the caller knows it.
pub type DefaultMode<'a> = &'a dyn Fn(&str) -> Option<StepMode>;

/// What parsing needs besides the document text.
#[derive(Default)]
pub struct ParseOptions<'a> {
    /// Where `${params.NAME}` values come from, besides the pipeline's defaults.
    pub params: ParamInputs,
    /// The pipeline file's name without its extension: the pipeline's name when the document
    /// has no `name` (as Osiris names runs after the file).
    pub file_stem: Option<String>,
    /// The mode of a step that gives none, by component: its spec's only runnable mode. When
    /// absent or `None`, the component's kind decides (`*.extractor` reads, `*.processor`
    /// transforms, `*.writer` writes).
    pub default_mode: Option<DefaultMode<'a>>,
}

/// Parses and structurally validates an OML document. On success returns the pipeline with
/// any warnings; on failure every problem found, errors and warnings.
pub fn parse(text: &str) -> Result<(Pipeline, Problems), Problems> {
    parse_with(text, &ParamInputs::default())
}

/// Like [`parse`], resolving `${params.NAME}` from `inputs`.
pub fn parse_with(text: &str, inputs: &ParamInputs) -> Result<(Pipeline, Problems), Problems> {
    match parse_lenient(text, inputs) {
        (Some(pipeline), problems) if !problems.has_errors() => Ok((pipeline, problems)),
        (_, problems) => Err(problems),
    }
}

/// [`parse_document`] with only parameter inputs.
pub fn parse_lenient(text: &str, inputs: &ParamInputs) -> (Option<Pipeline>, Problems) {
    parse_document(
        text,
        &ParseOptions {
            params: inputs.clone(),
            ..ParseOptions::default()
        },
    )
}

/// Parses as much as possible: returns the pipeline read so far (steps that could not be read
/// are left out) together with every problem, so that callers can check the rest too and
/// report all problems in one round. The pipeline is `None` only when the document is not a
/// YAML mapping at all (or nests too deep to be parsed).
pub fn parse_document(text: &str, options: &ParseOptions<'_>) -> (Option<Pipeline>, Problems) {
    if let Err(error) = yaml_input::check_depth(text) {
        return (
            None,
            Problems(vec![Problem::error(None, error.to_string())]),
        );
    }
    let yaml: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(yaml) => yaml,
        Err(e) => {
            return (
                None,
                Problems(vec![Problem::error(None, yaml_error_message(&e))]),
            );
        }
    };
    let mut doc: Value = match serde_json::to_value(&yaml) {
        Ok(doc) => doc,
        Err(e) => {
            return (
                None,
                Problems(vec![Problem::error(
                    None,
                    format!("the pipeline is not a JSON-compatible YAML document: {e}"),
                )]),
            );
        }
    };
    let mut problems = Problems::default();
    let pipeline = read_document(&mut doc, options, &mut problems);
    (pipeline, problems)
}

fn yaml_error_message(error: &serde_yaml::Error) -> String {
    match error.location() {
        Some(loc) => {
            let message = error.to_string();
            // serde_yaml appends " at line X column Y"; say it once, up front.
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            format!(
                "malformed YAML at line {} column {}: {message}",
                loc.line(),
                loc.column()
            )
        }
        None => format!("malformed YAML: {error}"),
    }
}

fn read_document(
    doc: &mut Value,
    options: &ParseOptions<'_>,
    problems: &mut Problems,
) -> Option<Pipeline> {
    let inputs = &options.params;
    let Some(top) = doc.as_object_mut() else {
        problems.push(Problem::error(
            None,
            "a pipeline must be a YAML mapping with oml_version, name and steps",
        ));
        return None;
    };
    let params = params::apply(top, inputs, &mut problems.0);
    let top = &*top;

    for key in top.keys() {
        if FORBIDDEN_TOP_LEVEL.contains(&key.as_str()) {
            problems.push(Problem::error(
                Some(key),
                format!("`{key}` is not part of OML v{OML_VERSION}; describe the work as `steps`"),
            ));
        } else if !KNOWN_TOP_LEVEL.contains(&key.as_str()) {
            problems.push(
                Problem::error(Some(key), unknown_key_message(key, KNOWN_TOP_LEVEL)).warning(),
            );
        }
    }
    let oml_version = match top.get("oml_version") {
        None => {
            problems.push(Problem::error(
                Some("oml_version"),
                format!("missing; add `oml_version: \"{OML_VERSION}\"`"),
            ));
            String::new()
        }
        Some(Value::String(v)) => {
            if !v.starts_with("0.") {
                problems.push(Problem::error(
                    Some("oml_version"),
                    format!("version {v:?} is not supported; this runtime reads OML {OML_VERSION}"),
                ));
            } else if v != OML_VERSION {
                problems.push(
                    Problem::error(
                        Some("oml_version"),
                        format!("version {v:?} is read as OML {OML_VERSION}"),
                    )
                    .warning(),
                );
            }
            v.clone()
        }
        Some(other) => {
            problems.push(Problem::error(
                Some("oml_version"),
                format!(
                    "must be a string like \"{OML_VERSION}\" (quote it), found {}",
                    kind(other)
                ),
            ));
            String::new()
        }
    };

    let name = match top.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => {
            if !is_slug(n) {
                problems.push(
                    Problem::error(
                        Some("name"),
                        format!("{n:?} is not a slug (lower-case letters, digits and '-'); it is used in paths"),
                    )
                    .warning(),
                );
            }
            n.clone()
        }
        Some(Value::String(_)) => {
            problems.push(Problem::error(Some("name"), "must not be empty"));
            String::new()
        }
        None => match &options.file_stem {
            Some(stem) if !stem.is_empty() => {
                problems.push(
                    Problem::error(
                        Some("name"),
                        format!("missing; the pipeline is named {stem:?} after its file"),
                    )
                    .warning(),
                );
                stem.clone()
            }
            _ => {
                problems.push(Problem::error(Some("name"), "missing; name the pipeline"));
                String::new()
            }
        },
        Some(other) => {
            problems.push(Problem::error(
                Some("name"),
                format!("must be a string, found {}", kind(other)),
            ));
            String::new()
        }
    };

    let description = top
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let metadata = top.get("metadata").cloned();

    let mut incomplete = std::collections::BTreeSet::new();
    let steps = match top.get("steps") {
        None => {
            problems.push(Problem::error(
                Some("steps"),
                "missing; a pipeline needs at least one step",
            ));
            Vec::new()
        }
        Some(Value::Array(items)) if items.is_empty() => {
            problems.push(Problem::error(Some("steps"), "must list at least one step"));
            Vec::new()
        }
        Some(Value::Array(items)) => read_steps(items, options, problems, &mut incomplete),
        Some(other) => {
            problems.push(Problem::error(
                Some("steps"),
                format!("must be a list of steps, found {}", kind(other)),
            ));
            Vec::new()
        }
    };

    Some(Pipeline {
        oml_version,
        name,
        description,
        metadata,
        steps,
        params,
        profile: inputs.profile.clone(),
        incomplete,
    })
}

fn read_steps(
    items: &[Value],
    options: &ParseOptions<'_>,
    problems: &mut Problems,
    incomplete: &mut std::collections::BTreeSet<String>,
) -> Vec<Step> {
    let mut steps = Vec::with_capacity(items.len());
    let mut wiring = Vec::with_capacity(items.len());
    let mut first_index: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let position = format!("steps[{index}]");
        let Some(obj) = item.as_object() else {
            problems.push(Problem::error(
                Some(&position),
                format!(
                    "a step must be a mapping with id, component and mode, found {}",
                    kind(item)
                ),
            ));
            continue;
        };
        let id = match obj.get("id") {
            Some(Value::String(id)) => {
                if let Err(why) = check_step_id(id) {
                    problems.push(Problem::step_error(id, Some("id"), why));
                }
                id.clone()
            }
            Some(other) => {
                problems.push(Problem::error(
                    Some(&format!("{position}.id")),
                    format!("must be a string, found {}", kind(other)),
                ));
                continue;
            }
            None => {
                problems.push(Problem::error(
                    Some(&format!("{position}.id")),
                    "missing; every step needs a unique id (it names the step's table)",
                ));
                continue;
            }
        };
        if let Some(first) = first_index.get(&id) {
            problems.push(Problem::step_error(
                &id,
                Some("id"),
                format!("duplicate step id: steps[{first}] and steps[{index}] are both '{id}'"),
            ));
        } else {
            first_index.insert(id.clone(), index);
        }
        // DuckDB table names are case-insensitive: `Orders` and `orders` would be one table.
        if let Some(other) = steps
            .iter()
            .map(|s: &Step| s.id.as_str())
            .find(|other| *other != id && other.eq_ignore_ascii_case(&id))
        {
            problems.push(Problem::step_error(
                &id,
                Some("id"),
                format!("'{id}' and '{other}' differ only in case, but name the same table"),
            ));
        }

        for key in obj.keys() {
            if !KNOWN_STEP_KEYS.contains(&key.as_str()) {
                problems.push(Problem::step_error(
                    &id,
                    Some(key),
                    unknown_key_message(key, KNOWN_STEP_KEYS),
                ));
            }
        }
        let component = match (obj.get("component"), obj.get("uses")) {
            (Some(Value::String(c)), _) | (None, Some(Value::String(c))) => c.clone(),
            (Some(other), _) | (None, Some(other)) => {
                problems.push(Problem::step_error(
                    &id,
                    Some("component"),
                    format!(
                        "must be a string like `duckdb.processor`, found {}",
                        kind(other)
                    ),
                ));
                String::new()
            }
            (None, None) => {
                problems.push(Problem::step_error(
                    &id,
                    Some("component"),
                    "missing; name the component, e.g. `filesystem.csv_extractor`",
                ));
                String::new()
            }
        };

        let mode = match obj.get("mode") {
            Some(Value::String(m)) => StepMode::parse(m).or_else(|| {
                problems.push(Problem::step_error(&id, Some("mode"), not_a_mode(m)));
                None
            }),
            Some(other) => {
                problems.push(Problem::step_error(
                    &id,
                    Some("mode"),
                    format!("must be read, write or transform, found {}", kind(other)),
                ));
                None
            }
            // Osiris runs steps without `mode`: the component decides.
            None if component.is_empty() => None,
            None => options
                .default_mode
                .and_then(|mode_of| mode_of(&component))
                .or_else(|| kind_mode(&component))
                .or_else(|| {
                    problems.push(Problem::step_error(
                        &id,
                        Some("mode"),
                        format!(
                            "missing, and component `{component}` does not tell: use read, write or transform"
                        ),
                    ));
                    None
                }),
        };

        let config = match obj.get("config").or_else(|| obj.get("with")) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(c)) => c.clone(),
            Some(other) => {
                problems.push(Problem::step_error(
                    &id,
                    Some("config"),
                    format!("must be a mapping of settings, found {}", kind(other)),
                ));
                Map::new()
            }
        };

        wiring.push(Wiring {
            needs_given: obj.contains_key("needs"),
            inputs: obj.get("inputs").filter(|v| !v.is_null()).cloned(),
        });
        let needs = match obj.get("needs") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|n| match n {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        problems.push(Problem::step_error(
                            &id,
                            Some("needs"),
                            format!("entries must be step ids, found {}", kind(other)),
                        ));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                problems.push(Problem::step_error(
                    &id,
                    Some("needs"),
                    format!("must be a list of step ids, found {}", kind(other)),
                ));
                Vec::new()
            }
        };

        if mode.is_none() || component.is_empty() {
            incomplete.insert(id.clone());
        }
        steps.push(Step {
            index,
            id,
            component,
            mode: mode.unwrap_or(StepMode::Transform),
            needs,
            inputs: Vec::new(),
            config,
        });
    }

    wire(&mut steps, &wiring, incomplete, problems);
    check_needs(&steps, problems);
    steps
}

/// `mode: replace` on a writer is a write mode in the wrong place: say where it belongs.
fn not_a_mode(mode: &str) -> String {
    if matches!(
        mode,
        "append" | "replace" | "upsert" | "truncate" | "overwrite" | "merge"
    ) {
        format!(
            "{mode:?} is a write mode of the destination and belongs in `config` (`write_mode` or `mode`, see the component); the step's `mode` is read, write or transform"
        )
    } else {
        format!("{mode:?} is not a mode; use read, write or transform")
    }
}

/// The mode a component's kind implies: `mysql.extractor` reads, `duckdb.processor`
/// transforms, `filesystem.csv_writer` writes.
pub fn kind_mode(component: &str) -> Option<StepMode> {
    let kind = component.rsplit(['.', '_']).next()?;
    match kind {
        "extractor" | "reader" | "source" => Some(StepMode::Read),
        "processor" | "transformer" | "transform" => Some(StepMode::Transform),
        "writer" | "loader" | "sink" => Some(StepMode::Write),
        _ => None,
    }
}

/// Step ids name tables and artifact directories: letters, digits, `_`, `-` and `.`,
/// starting with a letter, digit or `_`; at most 128 characters.
fn check_step_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > 128 {
        return Err("is longer than 128 characters".into());
    }
    let mut chars = id.chars();
    let first = chars.next().expect("not empty");
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(format!(
            "'{id}' must start with a letter, a digit or '_' (it names a table and a directory)"
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "'{id}' contains {bad:?}; use letters, digits, '_', '-' and '.' (it names a table and a directory)"
        ));
    }
    Ok(())
}

fn is_slug(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn unknown_key_message(key: &str, known: &[&str]) -> String {
    match did_you_mean(key, known.iter().copied()) {
        Some(near) => format!("unknown key `{key}`; did you mean `{near}`?"),
        None => format!("unknown key `{key}`; known keys: {}", known.join(", ")),
    }
}

/// The candidate closest to `input`, if close enough to be a typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&input.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(distance, c)| *distance <= (c.len().max(input.len()) / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}
