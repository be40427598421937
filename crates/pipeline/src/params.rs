//! Pipeline parameters: `${params.NAME}` placeholders anywhere in the document's strings.
//!
//! Precedence, lowest first: the `params` defaults of the pipeline, the environment
//! (`OSIRIS_PARAM_<NAME>`, name lower-cased), the active profile's `profiles.<p>.params`, and
//! `--param NAME=VALUE`. A string that is exactly one placeholder takes the parameter's value
//! with its type (`limit: ${params.n}` stays a number); a placeholder inside a longer string is
//! replaced by the value's text, except in fields that hold SQL, where values become SQL
//! literals ([`crate::sql`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::Problem;

/// Environment variable prefix of parameters.
pub const ENV_PREFIX: &str = "OSIRIS_PARAM_";

/// Where parameter values come from, besides the pipeline's own defaults.
#[derive(Debug, Clone, Default)]
pub struct ParamInputs {
    /// The active profile (`--profile`), if any.
    pub profile: Option<String>,
    /// `--param NAME=VALUE` pairs, in command-line order.
    pub cli: Vec<(String, String)>,
    /// The environment (only `OSIRIS_PARAM_*` entries are used).
    pub env: Vec<(String, String)>,
}

impl ParamInputs {
    /// Inputs with the current process environment.
    pub fn from_process(profile: Option<String>, cli: Vec<(String, String)>) -> Self {
        Self {
            profile,
            cli,
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with(ENV_PREFIX))
                .collect(),
        }
    }
}

/// Resolves parameters and substitutes them in `doc` (except in `params` and `profiles`).
/// Returns the effective parameters; problems are pushed to `problems`.
pub(crate) fn apply(
    doc: &mut Map<String, Value>,
    inputs: &ParamInputs,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Value> {
    let mut params: BTreeMap<String, Value> = BTreeMap::new();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let mut required: BTreeSet<String> = BTreeSet::new();
    match doc.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(defaults)) => {
            for (name, spec) in defaults {
                declared.insert(name.clone());
                match spec {
                    Value::Object(o) if o.contains_key("default") => {
                        params.insert(name.clone(), o["default"].clone());
                    }
                    Value::Object(_) | Value::Null => {
                        required.insert(name.clone());
                    }
                    value => {
                        params.insert(name.clone(), value.clone());
                    }
                }
            }
        }
        Some(_) => problems.push(Problem::error(
            Some("params"),
            "must be a mapping of parameter names to defaults",
        )),
    }

    for (key, value) in &inputs.env {
        if let Some(name) = key.strip_prefix(ENV_PREFIX)
            && !name.is_empty()
        {
            params.insert(name.to_lowercase(), Value::String(value.clone()));
        }
    }

    if let Some(profile) = &inputs.profile {
        let profiles = doc.get("profiles").and_then(Value::as_object);
        match profiles.and_then(|p| p.get(profile)) {
            Some(Value::Object(p)) => match p.get("params") {
                None | Some(Value::Null) => {}
                Some(Value::Object(values)) => {
                    for (name, value) in values {
                        params.insert(name.clone(), value.clone());
                    }
                }
                Some(_) => problems.push(Problem::error(
                    Some(&format!("profiles.{profile}.params")),
                    "must be a mapping of parameter values",
                )),
            },
            Some(_) => problems.push(Problem::error(
                Some(&format!("profiles.{profile}")),
                "must be a mapping with `params`",
            )),
            None => {
                let known: Vec<&str> = profiles
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                problems.push(Problem::error(
                    Some("profiles"),
                    if known.is_empty() {
                        format!(
                            "profile `{profile}` is selected but the pipeline has no `profiles`"
                        )
                    } else {
                        format!("no profile `{profile}`; profiles: {}", known.join(", "))
                    },
                ));
            }
        }
    }

    for (name, value) in &inputs.cli {
        if !declared.contains(name) {
            problems.push(
                Problem::error(
                    Some("params"),
                    format!("--param {name} is not declared under `params`"),
                )
                .warning(),
            );
        }
        params.insert(name.clone(), Value::String(value.clone()));
    }

    let mut unresolved = BTreeSet::new();
    for (key, value) in doc.iter_mut() {
        match key.as_str() {
            "params" | "profiles" => {}
            "steps" => match value {
                Value::Array(steps) => {
                    for (index, step) in steps.iter_mut().enumerate() {
                        substitute_step(step, index, &params, &mut unresolved, problems);
                    }
                }
                other => substitute(other, &params, &mut unresolved),
            },
            _ => substitute(value, &params, &mut unresolved),
        }
    }
    for name in &required {
        if !params.contains_key(name) && !unresolved.contains(name) {
            // Declared without a default and never used: not an error, but say so.
            problems.push(
                Problem::error(
                    Some(&format!("params.{name}")),
                    "has no default and no value, and is not used",
                )
                .warning(),
            );
        }
    }
    if !unresolved.is_empty() {
        let names: Vec<&str> = unresolved.iter().map(String::as_str).collect();
        problems.push(Problem::error(
            Some("params"),
            format!(
                "unresolved parameter{} {}: give {} a default under `params`, or pass --param NAME=VALUE, OSIRIS_PARAM_<NAME> or a profile",
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                if names.len() == 1 { "it" } else { "them" },
            ),
        ));
    }
    params
}

/// Substitutes in one step; fields that hold SQL get SQL literals ([`crate::sql`]).
fn substitute_step(
    step: &mut Value,
    index: usize,
    params: &BTreeMap<String, Value>,
    unresolved: &mut BTreeSet<String>,
    problems: &mut Vec<Problem>,
) {
    let Value::Object(step) = step else {
        return substitute(step, params, unresolved);
    };
    for (key, value) in step.iter_mut() {
        if key != "config" && key != "with" {
            substitute(value, params, unresolved);
        }
    }
    let component = ["component", "uses"]
        .iter()
        .find_map(|k| step.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    let id = step.get("id").and_then(Value::as_str).map(str::to_owned);
    for key in ["config", "with"] {
        let Some(Value::Object(config)) = step.get_mut(key) else {
            if let Some(other) = step.get_mut(key) {
                substitute(other, params, unresolved);
            }
            continue;
        };
        for (field, value) in config.iter_mut() {
            let (Some(dialect), Value::String(text)) =
                (crate::sql::sql_field(&component, field), &*value)
            else {
                substitute(value, params, unresolved);
                continue;
            };
            // Every placeholder in SQL is a value, a field that is only a placeholder too: SQL
            // text never comes from a parameter (`--param` may come from anywhere).
            if !text.contains(OPEN) {
                substitute(value, params, unresolved);
                continue;
            }
            let mut missing = Vec::new();
            match crate::sql::substitute(
                text,
                dialect,
                &|name| params.get(name).cloned(),
                &mut missing,
            ) {
                Ok(sql) => *value = Value::String(sql),
                Err(why) => {
                    let path = format!("config.{field}");
                    problems.push(match &id {
                        Some(id) => Problem::step_error(id, Some(&path), why),
                        None => Problem::error(Some(&format!("steps[{index}].{path}")), why),
                    });
                }
            }
            unresolved.extend(missing);
        }
    }
}

fn substitute(
    value: &mut Value,
    params: &BTreeMap<String, Value>,
    unresolved: &mut BTreeSet<String>,
) {
    match value {
        Value::String(s) => {
            if let Some(new) = substitute_str(s, params, unresolved) {
                *value = new;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| substitute(v, params, unresolved)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| substitute(v, params, unresolved)),
        _ => {}
    }
}

const OPEN: &str = "${params.";

/// `Some(new value)` when `text` holds placeholders.
fn substitute_str(
    text: &str,
    params: &BTreeMap<String, Value>,
    unresolved: &mut BTreeSet<String>,
) -> Option<Value> {
    if !text.contains(OPEN) {
        return None;
    }
    // Exactly one placeholder: keep the value's type.
    if let Some(name) = text
        .strip_prefix(OPEN)
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| is_name(name))
    {
        return Some(match params.get(name) {
            Some(value) => value.clone(),
            None => {
                unresolved.insert(name.to_owned());
                Value::String(text.to_owned())
            }
        });
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        match after.find('}') {
            Some(end) if is_name(&after[..end]) => {
                let name = &after[..end];
                match params.get(name) {
                    Some(value) => out.push_str(&as_text(value)),
                    None => {
                        unresolved.insert(name.to_owned());
                        out.push_str(&rest[start..start + OPEN.len() + end + 1]);
                    }
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(OPEN);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Some(Value::String(out))
}

pub(crate) fn is_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
