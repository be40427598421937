//! OML v0.1.0 pipelines: parsing, structural validation and the execution plan.
//!
//! Parsing collects every problem of a document at once (each naming its step and key), so a
//! pipeline author fixes them in one round. Component-level checks (does the component exist,
//! is its config valid) need the registries and live in the engine.
#![warn(missing_docs)]

pub mod compile;
pub mod connections;
mod params;
mod position;
pub mod sql;

pub use params::{ENV_PREFIX as PARAM_ENV_PREFIX, ParamInputs};
pub use position::{ScalarStyle, SourceLines, ValuePosition, config_value_position};

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The OML version this runtime implements.
pub const OML_VERSION: &str = "0.1.0";

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

/// What a step does, as written in OML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepMode {
    /// Extract data into the step table (component mode `extract`).
    Read,
    /// Write the table of an upstream step to a destination (component mode `write`).
    Write,
    /// Compute a new table from upstream tables (component mode `transform`).
    Transform,
}

impl StepMode {
    /// The OML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Transform => "transform",
        }
    }

    /// The component mode this OML mode maps to (`read` -> `extract`).
    pub fn component_mode(self) -> &'static str {
        match self {
            Self::Read => "extract",
            Self::Write => "write",
            Self::Transform => "transform",
        }
    }

    /// Parses an OML mode; the component mode `extract` is accepted for `read`, as Osiris
    /// does.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" | "extract" => Some(Self::Read),
            "write" => Some(Self::Write),
            "transform" => Some(Self::Transform),
            _ => None,
        }
    }
}

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique id; also the name of the step's table in the run database.
    pub id: String,
    /// Component name, e.g. `filesystem.csv_extractor`.
    pub component: String,
    /// What the step does.
    pub mode: StepMode,
    /// Position of the step in the pipeline file (for JSON pointers in messages).
    #[serde(skip)]
    pub index: usize,
    /// Upstream steps that must finish first: those listed in `needs`, those referenced in
    /// `inputs`, or (with neither) the nearest earlier step that produces a table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Upstream steps whose tables this step reads, when its `inputs` name them
    /// (`df: "${extract.df}"`). Empty: every step in `needs` that produced a table (a step
    /// that produced none, such as a writer, only orders the run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// The component's configuration.
    #[serde(default)]
    pub config: Map<String, Value>,
}

/// A parsed pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// `oml_version` as written.
    pub oml_version: String,
    /// Pipeline name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Optional free-form metadata, copied into the manifest.
    pub metadata: Option<Value>,
    /// Steps in file order.
    pub steps: Vec<Step>,
    /// Effective parameters after defaults, environment, profile and command line.
    pub params: BTreeMap<String, Value>,
    /// The active profile, if any.
    pub profile: Option<String>,
    /// Ids of steps whose `component` or `mode` could not be read (already reported);
    /// component-level checks skip them rather than report follow-up errors.
    pub incomplete: std::collections::BTreeSet<String>,
}

/// The execution plan: the pipeline's steps in a valid order. Written as `manifest.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Pipeline name.
    pub name: String,
    /// OML version of the source.
    pub oml_version: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Optional metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Steps in execution order: every step comes after the steps it needs.
    pub steps: Vec<Step>,
}

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

/// What a step wrote about its upstream steps, before wiring.
struct Wiring {
    /// Whether the step has a `needs` key (`needs: []` turns the implicit chain off).
    needs_given: bool,
    /// The step's `inputs`, as written.
    inputs: Option<Value>,
}

/// Turns `inputs` references into dependencies and table inputs, and gives a step that reads
/// a table but names no upstream step the nearest earlier step that produces one (the
/// implicit chain of Osiris' compiler).
fn wire(
    steps: &mut [Step],
    wiring: &[Wiring],
    incomplete: &std::collections::BTreeSet<String>,
    problems: &mut Problems,
) {
    let ids: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
    for i in 0..steps.len() {
        let (earlier, rest) = steps.split_at_mut(i);
        let step = &mut rest[0];
        let wiring = &wiring[i];
        if let Some(inputs) = &wiring.inputs {
            for (key, reference) in input_references(inputs, &ids, &step.id, problems) {
                if reference == step.id {
                    problems.push(Problem::step_error(
                        &step.id,
                        Some(&key),
                        "a step cannot read its own table",
                    ));
                } else if !ids.contains(&reference) {
                    let hint = did_you_mean(&reference, ids.iter().map(String::as_str))
                        .map(|s| format!("; did you mean '{s}'?"))
                        .unwrap_or_else(|| format!("; steps are: {}", ids.join(", ")));
                    problems.push(Problem::step_error(
                        &step.id,
                        Some(&key),
                        format!("unknown step '{reference}'{hint}"),
                    ));
                } else {
                    if !step.needs.contains(&reference) {
                        step.needs.push(reference.clone());
                    }
                    if !step.inputs.contains(&reference) {
                        step.inputs.push(reference);
                    }
                }
            }
        }
        let reads_table = matches!(step.mode, StepMode::Transform | StepMode::Write);
        if wiring.needs_given
            || wiring.inputs.is_some()
            || !reads_table
            || incomplete.contains(&step.id)
        {
            continue;
        }
        if let Some(source) = earlier.iter().rev().find(|s| {
            matches!(s.mode, StepMode::Read | StepMode::Transform) && !incomplete.contains(&s.id)
        }) {
            problems.push(
                Problem::step_error(
                    &step.id,
                    Some("needs"),
                    format!(
                        "no `needs`: step '{}' reads the table of step '{}', the nearest earlier step that produces one (as Osiris chains steps); write `needs: [{}]` to say so, or `needs: []` for no input",
                        step.id, source.id, source.id
                    ),
                )
                .warning(),
            );
            step.needs.push(source.id.clone());
        }
    }
}

/// The steps an `inputs` value refers to, each with the key it is written under:
/// `{df: "${extract.df}"}` (Osiris' form), or a list of step ids or references.
fn input_references(
    inputs: &Value,
    ids: &[String],
    step: &str,
    problems: &mut Problems,
) -> Vec<(String, String)> {
    let entries: Vec<(String, &Value)> = match inputs {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (format!("inputs.{k}"), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("inputs[{i}]"), v))
            .collect(),
        Value::String(_) => vec![("inputs".to_owned(), inputs)],
        other => {
            problems.push(Problem::step_error(
                step,
                Some("inputs"),
                format!(
                    "must map names to step outputs like `df: \"${{extract.df}}\"`, found {}",
                    kind(other)
                ),
            ));
            return Vec::new();
        }
    };
    let mut references = Vec::new();
    for (key, value) in entries {
        let Some(text) = value.as_str() else {
            problems.push(Problem::step_error(
                step,
                Some(&key),
                format!(
                    "must name a step's output like \"${{extract.df}}\", found {}",
                    kind(value)
                ),
            ));
            continue;
        };
        let mut found = false;
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let inner = after[..end].trim();
            // `${extract.df}` names step `extract`; ids may hold dots themselves.
            let target = if ids.iter().any(|id| id == inner) {
                inner
            } else {
                inner.rsplit_once('.').map_or(inner, |(id, _)| id)
            };
            references.push((key.clone(), target.to_owned()));
            found = true;
            rest = &after[end + 1..];
        }
        if !found {
            if ids.iter().any(|id| id == text) {
                references.push((key, text.to_owned()));
            } else {
                problems.push(
                    Problem::step_error(
                        step,
                        Some(&key),
                        format!(
                            "{text:?} names no step output; write `\"${{<step id>.df}}\"` (ignored)"
                        ),
                    )
                    .warning(),
                );
            }
        }
    }
    references
}

fn check_needs(steps: &[Step], problems: &mut Problems) {
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    for step in steps {
        let mut seen = Vec::new();
        for need in &step.needs {
            if need == &step.id {
                problems.push(Problem::step_error(
                    &step.id,
                    Some("needs"),
                    "a step cannot need itself",
                ));
            } else if !ids.contains(&need.as_str()) {
                let hint = did_you_mean(need, ids.iter().copied())
                    .map(|s| format!("; did you mean '{s}'?"))
                    .unwrap_or_else(|| format!("; steps are: {}", ids.join(", ")));
                problems.push(Problem::step_error(
                    &step.id,
                    Some("needs"),
                    format!("unknown step '{need}'{hint}"),
                ));
            } else if seen.contains(&need) {
                problems.push(
                    Problem::step_error(
                        &step.id,
                        Some("needs"),
                        format!("'{need}' is listed twice"),
                    )
                    .warning(),
                );
            }
            seen.push(need);
        }
    }
    if !problems.has_errors()
        && let Err(cycle) = execution_order(steps)
    {
        problems.push(cycle);
    }
}

/// Orders steps so that every step comes after the steps it needs; among independent steps
/// the file order is kept. A cycle is an error naming the steps in it.
pub fn execution_order(steps: &[Step]) -> Result<Vec<usize>, Problem> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut indegree = vec![0usize; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for need in &step.needs {
            if let Some(&j) = index.get(need.as_str())
                && j != i
                && !dependents[j].contains(&i)
            {
                indegree[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    // Kahn's algorithm, always taking the earliest ready step in file order.
    let mut ready: std::collections::BTreeSet<usize> =
        (0..steps.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() == steps.len() {
        return Ok(order);
    }
    let remaining: Vec<usize> = (0..steps.len()).filter(|i| indegree[*i] > 0).collect();
    let cycle = find_cycle(steps, &index, &remaining);
    let first = &steps[cycle[0]].id;
    let path: Vec<&str> = cycle
        .iter()
        .chain(std::iter::once(&cycle[0]))
        .map(|&i| steps[i].id.as_str())
        .collect();
    Err(Problem::step_error(
        first,
        Some("needs"),
        format!("`needs` form a cycle: {}", path.join(" -> ")),
    ))
}

/// Walks `needs` edges among the steps left after Kahn's algorithm until a step repeats.
fn find_cycle(steps: &[Step], index: &HashMap<&str, usize>, remaining: &[usize]) -> Vec<usize> {
    let mut path = vec![remaining[0]];
    loop {
        let current = *path.last().expect("path is never empty");
        let next = steps[current]
            .needs
            .iter()
            .filter_map(|n| index.get(n.as_str()).copied())
            .find(|j| remaining.contains(j))
            .expect("every step left in a cycle needs another step left");
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path.split_off(pos);
            // Report in data-flow order: upstream first.
            cycle.reverse();
            return cycle;
        }
        path.push(next);
    }
}

impl Pipeline {
    /// The execution plan: steps in dependency order.
    pub fn plan(&self) -> Result<Plan, Problem> {
        let order = execution_order(&self.steps)?;
        Ok(Plan {
            name: self.name.clone(),
            oml_version: self.oml_version.clone(),
            description: self.description.clone(),
            metadata: self.metadata.clone(),
            steps: order.into_iter().map(|i| self.steps[i].clone()).collect(),
        })
    }
}

impl Plan {
    /// The plan as YAML (the session's `manifest.yaml`).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a plan always serializes")
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

fn kind(value: &Value) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok((_, warnings)) => panic!("expected errors, got a pipeline (warnings: {warnings})"),
            Err(problems) => problems.errors().map(ToString::to_string).collect(),
        }
    }

    const GOOD: &str = r#"
oml_version: "0.1.0"
name: orders
steps:
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [agg]
    config: {path: out.csv}
  - id: read-orders
    component: filesystem.csv_extractor
    mode: read
    config: {path: orders.csv}
  - id: agg
    component: duckdb.processor
    mode: transform
    needs: [read-orders]
    config: {query: "SELECT 1"}
"#;

    #[test]
    fn parses_and_orders_steps_by_needs() {
        let (pipeline, warnings) = parse(GOOD).unwrap();
        assert!(!warnings.has_errors());
        assert_eq!(pipeline.name, "orders");
        let plan = pipeline.plan().unwrap();
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["read-orders", "agg", "write"]);
        assert_eq!(plan.steps[0].mode.component_mode(), "extract");
    }

    #[test]
    fn independent_steps_keep_file_order() {
        let text = r#"
oml_version: "0.1.0"
name: p
steps:
  - {id: b, component: c.x, mode: read}
  - {id: a, component: c.x, mode: read}
  - {id: j, component: c.y, mode: transform, needs: [a, b]}
"#;
        let plan = parse(text).unwrap().0.plan().unwrap();
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "j"]);
    }

    #[test]
    fn malformed_yaml_reports_line_and_column() {
        let errs = errors("oml_version: \"0.1.0\"\nname: x\nsteps:\n  - id: a\n   component: b\n");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains("malformed YAML at line 5 column"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn duplicate_step_ids_are_named() {
        let errs = errors(
            "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: a, component: c.x, mode: read}\n  - {id: a, component: c.x, mode: read}\n",
        );
        assert_eq!(
            errs,
            ["error: step 'a', key `id`: duplicate step id: steps[0] and steps[1] are both 'a'"]
        );
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let errs = errors(
            r#"
oml_version: "0.1.0"
name: x
steps:
  - {id: a, component: c.x, mode: transform, needs: [c]}
  - {id: b, component: c.x, mode: transform, needs: [a]}
  - {id: c, component: c.x, mode: transform, needs: [b]}
"#,
        );
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains("`needs` form a cycle: ")
                && ["a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"]
                    .iter()
                    .any(|p| errs[0].contains(p)),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn unknown_needs_suggests_the_nearest_step() {
        let errs = errors(
            "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: extract_orders, component: c.x, mode: read}\n  - {id: b, component: c.x, mode: write, needs: [extract_order]}\n",
        );
        assert_eq!(
            errs,
            [
                "error: step 'b', key `needs`: unknown step 'extract_order'; did you mean 'extract_orders'?"
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errs = errors(
            r#"
oml_version: 0.1
name: ""
tasks: []
steps:
  - {id: "bad id", component: c.x, mode: load}
  - {component: c.x, mode: read}
  - {id: ok, component: c.x, mode: read, needz: [x]}
"#,
        );
        let joined = errs.join("\n");
        for expected in [
            "key `oml_version`: must be a string",
            "key `name`: must not be empty",
            "key `tasks`: `tasks` is not part of OML",
            "step 'bad id', key `id`: 'bad id' contains ' '",
            "step 'bad id', key `mode`: \"load\" is not a mode",
            "key `steps[1].id`: missing",
            "step 'ok', key `needz`: unknown key `needz`; did you mean `needs`?",
        ] {
            assert!(
                joined.contains(expected),
                "missing {expected:?} in:\n{joined}"
            );
        }
    }

    #[test]
    fn legacy_keys_and_unknown_top_level_keys_are_warnings() {
        let (pipeline, warnings) = parse(
            "oml_version: \"0.1.0\"\nname: x\nowner: me\nsteps:\n  - {id: a, uses: c.x, mode: read, with: {k: 1}}\n",
        )
        .unwrap();
        assert_eq!(pipeline.steps[0].component, "c.x");
        assert_eq!(pipeline.steps[0].config["k"], 1);
        let w: Vec<String> = warnings.warnings().map(ToString::to_string).collect();
        assert_eq!(
            w,
            [
                "warning: key `owner`: unknown key `owner`; known keys: oml_version, name, steps, description, metadata, schedule, params, profiles"
            ]
        );
    }

    #[test]
    fn ids_differing_only_in_case_collide() {
        let errs = errors(
            "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: Orders, component: c.x, mode: read}\n  - {id: orders, component: c.x, mode: read}\n",
        );
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("differ only in case"), "{}", errs[0]);
    }

    const WITH_PARAMS: &str = r#"
oml_version: "0.1.0"
name: movies
params:
  min_year: 2000
  region: {default: eu}
  table: {}
profiles:
  prod: {params: {region: us}}
steps:
  - id: extract
    component: c.x
    mode: read
    config:
      query: "SELECT * FROM ${params.table} WHERE year >= ${params.min_year}"
      limit: ${params.min_year}
      region: ${params.region}
"#;

    fn with(
        profile: Option<&str>,
        cli: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Result<Pipeline, Vec<String>> {
        let inputs = ParamInputs {
            profile: profile.map(str::to_owned),
            cli: cli
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        parse_with(WITH_PARAMS, &inputs)
            .map(|(p, _)| p)
            .map_err(|problems| problems.errors().map(ToString::to_string).collect())
    }

    #[test]
    fn params_follow_precedence_and_keep_types_of_whole_placeholders() {
        let p = with(None, &[("table", "movies")], &[]).unwrap();
        let config = &p.steps[0].config;
        assert_eq!(config["query"], "SELECT * FROM movies WHERE year >= 2000");
        assert_eq!(
            config["limit"], 2000,
            "a whole placeholder keeps the number type"
        );
        assert_eq!(config["region"], "eu");
        // env beats defaults, profile beats env, --param beats profile
        let p = with(None, &[("table", "t")], &[("OSIRIS_PARAM_REGION", "ap")]).unwrap();
        assert_eq!(p.steps[0].config["region"], "ap");
        let p = with(
            Some("prod"),
            &[("table", "t")],
            &[("OSIRIS_PARAM_REGION", "ap")],
        )
        .unwrap();
        assert_eq!(p.steps[0].config["region"], "us");
        let p = with(Some("prod"), &[("table", "t"), ("region", "sa")], &[]).unwrap();
        assert_eq!(p.steps[0].config["region"], "sa");
        assert_eq!(p.params["region"], "sa");
        assert_eq!(p.profile.as_deref(), Some("prod"));
    }

    #[test]
    fn unresolved_params_are_listed() {
        assert_eq!(
            with(None, &[], &[]).unwrap_err(),
            [
                "error: key `params`: unresolved parameter table: give it a default under `params`, or pass --param NAME=VALUE, OSIRIS_PARAM_<NAME> or a profile"
            ]
        );
    }

    #[test]
    fn unknown_profile_lists_the_profiles() {
        assert_eq!(
            with(Some("staging"), &[("table", "t")], &[]).unwrap_err(),
            ["error: key `profiles`: no profile `staging`; profiles: prod"]
        );
    }

    #[test]
    fn problems_carry_json_pointers_into_the_document() {
        let text = "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: a, component: c.x, mode: read}\n  - {id: b, component: c.x, mode: write, needs: [zz]}\n";
        let (pipeline, problems) = parse_lenient(text, &ParamInputs::default());
        let mut problems = problems;
        problems.push(Problem::step_error("a", Some("config.columns[2]"), "x"));
        problems.push(Problem::error(Some("params"), "y"));
        let located = problems.locate(pipeline.as_ref());
        let pointers: Vec<&str> = located
            .0
            .iter()
            .map(|p| p.pointer.as_deref().unwrap())
            .collect();
        assert_eq!(
            pointers,
            ["/steps/1/needs", "/steps/0/config/columns/2", "/params"]
        );
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        let keys = ["path", "delimiter", "header", "encoding"];
        assert_eq!(did_you_mean("delimitr", keys), Some("delimiter"));
        assert_eq!(did_you_mean("Header", keys), Some("header"));
        assert_eq!(did_you_mean("completely_else", keys), None);
    }

    fn parse_named(text: &str, stem: Option<&str>) -> (Option<Pipeline>, Problems) {
        parse_document(
            text,
            &ParseOptions {
                file_stem: stem.map(str::to_owned),
                ..ParseOptions::default()
            },
        )
    }

    fn messages(problems: &Problems) -> Vec<String> {
        problems.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_step_without_mode_takes_it_from_its_component() {
        let text = r#"
oml_version: "0.1.0"
name: p
steps:
  - {id: a, component: mysql.extractor}
  - {id: b, component: duckdb.processor, needs: [a]}
  - {id: c, component: filesystem.csv_writer, needs: [b]}
  - {id: d, component: filesystem.csv_extractor, mode: extract}
  - {id: e, component: custom.thing, needs: [d]}
"#;
        let options_default = |c: &str| (c == "custom.thing").then_some(StepMode::Transform);
        let (pipeline, problems) = parse_document(
            text,
            &ParseOptions {
                default_mode: Some(&options_default),
                ..ParseOptions::default()
            },
        );
        assert!(!problems.has_errors(), "{problems}");
        let modes: Vec<StepMode> = pipeline.unwrap().steps.iter().map(|s| s.mode).collect();
        use StepMode::*;
        assert_eq!(modes, [Read, Transform, Write, Read, Transform]);
        // Without a spec that tells, a component of no known kind needs a mode.
        let (_, problems) = parse_lenient(text, &ParamInputs::default());
        assert_eq!(
            problems
                .errors()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "error: step 'e', key `mode`: missing, and component `custom.thing` does not tell: use read, write or transform"
            ]
        );
    }

    #[test]
    fn a_write_mode_in_the_step_mode_says_where_it_belongs() {
        let errs = errors(
            "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: a, component: c.extractor}\n  - {id: w, component: mysql.writer, mode: replace, needs: [a]}\n",
        );
        assert_eq!(
            errs,
            [
                "error: step 'w', key `mode`: \"replace\" is a write mode of the destination and belongs in `config` (`write_mode` or `mode`, see the component); the step's `mode` is read, write or transform"
            ]
        );
    }

    #[test]
    fn a_pipeline_without_name_is_named_after_its_file() {
        let text = "oml_version: \"0.1.0\"\nsteps:\n  - {id: a, component: c.extractor}\n";
        let (pipeline, problems) = parse_named(text, Some("daily_sync"));
        assert_eq!(pipeline.unwrap().name, "daily_sync");
        assert_eq!(
            messages(&problems),
            ["warning: key `name`: missing; the pipeline is named \"daily_sync\" after its file"]
        );
        let (_, problems) = parse_named(text, None);
        assert!(problems.has_errors(), "{problems}");
    }

    #[test]
    fn params_and_profiles_raise_no_warning_when_applied() {
        let (_, problems) = parse_lenient(
            WITH_PARAMS,
            &ParamInputs {
                profile: Some("prod".into()),
                cli: vec![("table".into(), "t".into())],
                env: Vec::new(),
            },
        );
        assert!(problems.0.is_empty(), "{problems}");
    }

    const OSIRIS_WIRING: &str = r#"
oml_version: "0.1.0"
name: p
steps:
  - {id: extract-a, component: c.extractor}
  - {id: extract-b, component: c.extractor}
  - id: write-a
    component: c.writer
    inputs: {df: "${extract-a.df}"}
  - {id: agg, component: c.processor}
  - {id: write-agg, component: c.writer}
  - {id: read-back, component: c.extractor, needs: [write-agg]}
  - {id: gen, component: c.processor, needs: []}
"#;

    #[test]
    fn inputs_references_and_the_implicit_chain_wire_steps_as_osiris_does() {
        let (pipeline, problems) = parse_named(OSIRIS_WIRING, None);
        let pipeline = pipeline.unwrap();
        let wiring: Vec<(&str, Vec<&str>, Vec<&str>)> = pipeline
            .steps
            .iter()
            .map(|s| {
                (
                    s.id.as_str(),
                    s.needs.iter().map(String::as_str).collect(),
                    s.inputs.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            wiring,
            [
                ("extract-a", vec![], vec![]),
                ("extract-b", vec![], vec![]),
                ("write-a", vec!["extract-a"], vec!["extract-a"]),
                ("agg", vec!["extract-b"], vec![]),
                ("write-agg", vec!["agg"], vec![]),
                ("read-back", vec!["write-agg"], vec![]),
                ("gen", vec![], vec![]),
            ]
        );
        assert_eq!(
            messages(&problems),
            [
                "warning: step 'agg', key `needs`: no `needs`: step 'agg' reads the table of step 'extract-b', the nearest earlier step that produces one (as Osiris chains steps); write `needs: [extract-b]` to say so, or `needs: []` for no input",
                "warning: step 'write-agg', key `needs`: no `needs`: step 'write-agg' reads the table of step 'agg', the nearest earlier step that produces one (as Osiris chains steps); write `needs: [agg]` to say so, or `needs: []` for no input",
            ]
        );
    }

    #[test]
    fn inputs_naming_unknown_steps_are_errors() {
        let errs = errors(
            "oml_version: \"0.1.0\"\nname: x\nsteps:\n  - {id: extract, component: c.extractor}\n  - {id: w, component: c.writer, inputs: {df: \"${extrat.df}\"}}\n  - {id: v, component: c.writer, inputs: {df: \"${v.df}\"}}\n",
        );
        assert_eq!(
            errs,
            [
                "error: step 'w', key `inputs.df`: unknown step 'extrat'; did you mean 'extract'?",
                "error: step 'v', key `inputs.df`: a step cannot read its own table",
            ]
        );
    }

    #[test]
    fn params_in_sql_fields_become_literals_and_elsewhere_text() {
        let text = r#"
oml_version: "0.1.0"
name: p
params: {x: "0", n: 5}
steps:
  - id: q
    component: duckdb.processor
    mode: transform
    config:
      query: "SELECT ${params.n} AS n, '${params.x}' AS quoted, ${params.x} AS bare"
  - id: m
    component: mysql.extractor
    config:
      connection: "@mysql.${params.x}"
      table: t
      where: "name = ${params.x}"
"#;
        let inputs = ParamInputs {
            cli: vec![("x".into(), "1'; COPY (SELECT 1) TO '/tmp/y'; --".into())],
            ..ParamInputs::default()
        };
        let (pipeline, _) = parse_with(text, &inputs).unwrap();
        assert_eq!(
            pipeline.steps[0].config["query"],
            "SELECT 5 AS n, '1''; COPY (SELECT 1) TO ''/tmp/y''; --' AS quoted, '1''; COPY (SELECT 1) TO ''/tmp/y''; --' AS bare"
        );
        assert_eq!(
            pipeline.steps[1].config["where"],
            "name = '1''; COPY (SELECT 1) TO ''/tmp/y''; --'"
        );
        // A whole-field placeholder is a value too: SQL text never comes from a parameter.
        let whole = text.replace(
            "query: \"SELECT ${params.n}",
            "query: \"${params.q}\"\n      x: \"SELECT ${params.n}",
        );
        let (pipeline_whole, _) = parse_with(
            &whole.replace(
                "params: {x: \"0\", n: 5}",
                "params: {x: \"0\", n: 5, q: SELECT 1}",
            ),
            &inputs,
        )
        .unwrap();
        assert_eq!(pipeline_whole.steps[0].config["query"], "'SELECT 1'");
        // Not SQL: the value as text.
        assert_eq!(
            pipeline.steps[1].config["connection"],
            "@mysql.1'; COPY (SELECT 1) TO '/tmp/y'; --"
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let text = format!(
            "oml_version: \"0.1.0\"\nname: x\nsteps: {}",
            "[".repeat(1_000_000)
        );
        let started = std::time::Instant::now();
        let errs = errors(&text);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(
            errs,
            [
                "error: line 3: nesting is deeper than 64 levels; such a document is refused unparsed"
            ]
        );
    }

    #[test]
    fn plan_round_trips_through_yaml() {
        let mut plan = parse(GOOD).unwrap().0.plan().unwrap();
        let back: Plan = serde_yaml::from_str(&plan.to_yaml()).unwrap();
        // The source position is not part of the manifest.
        plan.steps.iter_mut().for_each(|s| s.index = 0);
        assert_eq!(back, plan);
    }
}
