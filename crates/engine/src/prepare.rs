//! The one validation pass shared by `osiris validate`, `compile` and `run`: every step is
//! checked against its component spec and driver, its connection is resolved and merged into
//! its config, and the secrets it will carry are collected for scrubbing.

use std::collections::BTreeSet;

use component_spec::{ComponentSpec, OverridePolicy};
use driver_api::DriverError;
use execution_context::is_secret_key;
use pipeline::connections::{ConnectionRef, Connections, ResolvedConnection};
use pipeline::{Pipeline, Plan, Problem, Problems, Step, StepMode, did_you_mean};
use serde_json::{Map, Value};

use crate::Engine;

/// The config key that names a step's connection.
pub const CONNECTION_KEY: &str = "connection";

/// How connections are treated while preparing.
pub enum ConnectionMode<'a> {
    /// Resolve `@family.alias` references (and family defaults) from `connections`, with
    /// `${VAR}` read through `env`. Used by `validate` and `run`.
    Resolve {
        /// The connections file.
        connections: &'a Connections,
        /// Environment lookup.
        env: &'a dyn Fn(&str) -> Option<String>,
    },
    /// Do not resolve: fields a connection would provide count as present. Used by `compile`,
    /// whose output must not depend on (or contain) connection values.
    Assume,
}

/// A step ready to run: its driver config is the step config merged with its connection.
#[derive(Clone)]
pub struct PreparedStep {
    /// The step as written (its config holds at most a connection reference).
    pub step: Step,
    /// The config the driver receives: connection fields merged in, types coerced, without
    /// the `connection` key. Holds secrets: it lives in memory only.
    pub config: Map<String, Value>,
    /// The connection used, if any.
    pub connection: Option<ConnectionRef>,
    /// Config keys whose values are secret (masked in `cleaned_config.json`).
    pub secret_keys: BTreeSet<String>,
    /// Incremental state stored by the step's previous successful run, handed to the driver
    /// ([`StateStore::load_into`](crate::StateStore::load_into) fills it; `None` after
    /// `prepare`).
    pub state: Option<Value>,
    /// Where the step's multi-line config values (a SQL `query`) are in the pipeline file, so
    /// that an error inside one names the file's line. Filled by whoever read the file.
    pub source: Option<pipeline::SourceLines>,
}

impl std::fmt::Debug for PreparedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedStep")
            .field("step", &self.step.id)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field(
                "connection",
                &self.connection.as_ref().map(ToString::to_string),
            )
            .finish()
    }
}

impl PreparedStep {
    /// The driver config with secret values replaced by `***`, for artifacts.
    pub fn masked_config(&self) -> Map<String, Value> {
        self.config
            .iter()
            .map(|(key, value)| {
                let value = if self.secret_keys.contains(key) {
                    mask(value)
                } else {
                    value.clone()
                };
                (key.clone(), value)
            })
            .collect()
    }
}

fn mask(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.keys()
                .map(|k| (k.clone(), Value::String(execution_context::MASK.into())))
                .collect(),
        ),
        Value::Null => Value::Null,
        _ => Value::String(execution_context::MASK.into()),
    }
}

/// A plan whose steps passed every check, with their driver configs.
#[derive(Debug, Clone)]
pub struct PreparedPlan {
    /// The plan (steps in execution order), as written to `manifest.yaml`: no secrets.
    pub plan: Plan,
    /// One prepared step per plan step, same order.
    pub steps: Vec<PreparedStep>,
    /// Every secret value the run carries (to register with the redactor).
    pub secrets: Vec<String>,
}

impl PreparedPlan {
    /// When the plan has SQL steps (mode `transform`), starts opening what checks their
    /// queries (DuckDB's parser, once per process) on another thread. A caller about to run
    /// the plan calls this as early as it can: the CLI right after loading, so that the opening
    /// overlaps the single-threaded rest of its start. Opened later, beside the run's first
    /// steps, it made a 1M-row CSV -> GROUP BY -> CSV run 24 ms slower (372 against 348 ms,
    /// medians of 10). Keep the returned opening until the process may exit: dropping it
    /// waits for the open to end.
    pub fn prepare_sql_steps(&self) -> Option<driver_api::QueryChecksOpening> {
        self.steps
            .iter()
            .any(|s| s.step.mode == StepMode::Transform)
            .then(driver_api::prepare_query_checks)
    }
}

impl Engine {
    /// Checks `pipeline` and prepares it for running. Returns every problem found; the plan
    /// is `Some` only when there is no error.
    pub fn prepare(
        &self,
        pipeline: &Pipeline,
        mode: &ConnectionMode<'_>,
    ) -> (Option<PreparedPlan>, Problems) {
        let mut problems = Problems::default();
        let mut prepared = Vec::with_capacity(pipeline.steps.len());
        let mut secrets = Vec::new();
        for step in &pipeline.steps {
            if pipeline.incomplete.contains(&step.id) {
                continue;
            }
            if let Some(p) = self.prepare_step(pipeline, step, mode, &mut problems, &mut secrets) {
                prepared.push(p);
            }
        }
        // Incomplete steps (no readable component or mode) were reported when the pipeline was
        // read, into the caller's problems, not these: without this check the plan below would
        // look for a prepared step that was never made.
        if problems.has_errors() || !pipeline.incomplete.is_empty() {
            return (None, problems);
        }
        let plan = match pipeline.plan() {
            Ok(plan) => plan,
            Err(problem) => {
                problems.push(problem);
                return (None, problems);
            }
        };
        let mut steps = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            match prepared.iter().find(|p| p.step.id == step.id) {
                Some(p) => steps.push(p.clone()),
                None => {
                    problems.push(Problem::step_error(
                        &step.id,
                        None,
                        "the step could not be checked; fix the problems above",
                    ));
                    return (None, problems);
                }
            }
        }
        secrets.sort();
        secrets.dedup();
        (
            Some(PreparedPlan {
                plan,
                steps,
                secrets,
            }),
            problems,
        )
    }

    fn prepare_step(
        &self,
        pipeline: &Pipeline,
        step: &Step,
        mode: &ConnectionMode<'_>,
        problems: &mut Problems,
        secrets: &mut Vec<String>,
    ) -> Option<PreparedStep> {
        let id = step.id.as_str();
        let errors_before = problems.errors().count();
        let Some(spec) = self.specs.get(&step.component) else {
            let known = self.specs.names();
            let hint = did_you_mean(&step.component, known.iter().copied())
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            problems.push(Problem::step_error(
                id,
                Some("component"),
                format!(
                    "unknown component `{}`; {hint}known components: {}",
                    step.component,
                    known.join(", ")
                ),
            ));
            return None;
        };
        let Some(driver) = self.drivers.get(&step.component) else {
            problems.push(Problem::step_error(
                id,
                Some("component"),
                format!(
                    "component `{}` is described but not runnable: this build has no driver for it (runnable: {})",
                    step.component,
                    self.drivers.names().collect::<Vec<_>>().join(", ")
                ),
            ));
            return None;
        };
        if !spec.supports_mode(step.mode.component_mode()) {
            problems.push(Problem::step_error(
                id,
                Some("mode"),
                format!(
                    "component `{}` cannot run in mode `{}` (its modes: {})",
                    step.component,
                    step.mode.as_str(),
                    spec.modes.join(", ")
                ),
            ));
        }

        check_table_inputs(pipeline, step, problems);

        // Unknown keys, with the nearest valid one.
        let properties = spec.property_names();
        let mut unknown = false;
        for key in step.config.keys() {
            if !properties.contains(&key.as_str()) {
                unknown = true;
                let hint = did_you_mean(key, properties.iter().copied())
                    .map(|n| format!("did you mean `{n}`?"))
                    .unwrap_or_else(|| format!("valid keys: {}", properties.join(", ")));
                problems.push(Problem::step_error(
                    id,
                    Some(&format!("config.{key}")),
                    format!("unknown key `{key}` for `{}`; {hint}", step.component),
                ));
            }
        }

        let secret_keys = secret_keys(spec, &step.config);
        check_inline_secrets(step, &secret_keys, problems);

        // Connection: resolve and merge.
        let (connection, resolved, connection_failed) =
            self.connection_of(step, spec, mode, problems);
        let mut config = step.config.clone();
        config.remove(CONNECTION_KEY);
        if let Some(resolved) = &resolved {
            merge_connection(step, spec, resolved, &mut config, problems);
            // Fields of the connection the step does not use are scrubbed too.
            for (key, value) in &resolved.fields {
                if secret_keys.contains(key) || is_secret_key(key) {
                    collect_strings(value, secrets);
                }
            }
        }
        spec.coerce(&mut config);

        // Types, ranges, enums, required keys and constraints, on the merged config.
        let assume_present: BTreeSet<String> = if connection_failed
            || matches!(mode, ConnectionMode::Assume) && connection.is_some()
        {
            spec.connection_fields()
                .into_iter()
                .map(|f| f.name)
                .collect()
        } else {
            BTreeSet::new()
        };
        let mut with_ref = config.clone();
        if let Some(reference) = step.config.get(CONNECTION_KEY) {
            with_ref.insert(CONNECTION_KEY.into(), reference.clone());
        }
        // Messages may quote values (`12345 is not of type "string"`): scrub this step's secrets.
        let scrub = execution_context::Redactor::default();
        let mut step_secrets = Vec::new();
        for key in &secret_keys {
            if let Some(value) = config.get(key) {
                collect_strings(value, &mut step_secrets);
                if let Value::Number(n) = value {
                    step_secrets.push(n.to_string());
                }
            }
        }
        step_secrets.iter().for_each(|s| scrub.add_secret(s));
        let config_problems = spec.validate_config(&with_ref, &assume_present);
        let schema_ok = config_problems.is_empty();
        for problem in config_problems {
            let key = pointer_to_key(&problem.pointer);
            let message = scrub.redact(&problem.message).into_owned();
            problems.push(Problem::step_error(id, Some(&key), message));
        }
        if schema_ok
            && !unknown
            && resolved.is_some() == connection.is_some()
            && let Err(error) = driver.check_config(&Value::Object(config.clone()))
        {
            let (key, message) = match error {
                DriverError::Config { key, message } => (key, message),
                other => (None, other.to_string()),
            };
            let key = key.map_or_else(|| "config".to_owned(), |k| format!("config.{k}"));
            problems.push(Problem::step_error(id, Some(&key), message));
        }

        secrets.extend(step_secrets);
        if problems.errors().count() > errors_before {
            return None;
        }
        Some(PreparedStep {
            step: step.clone(),
            config,
            connection,
            secret_keys,
            state: None,
            source: None,
        })
    }

    fn connection_of(
        &self,
        step: &Step,
        spec: &ComponentSpec,
        mode: &ConnectionMode<'_>,
        problems: &mut Problems,
    ) -> (Option<ConnectionRef>, Option<ResolvedConnection>, bool) {
        let id = step.id.as_str();
        let key = format!("config.{CONNECTION_KEY}");
        let reference = match step.config.get(CONNECTION_KEY) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match ConnectionRef::parse(s) {
                Ok(r) => Some(r),
                Err(e) => {
                    problems.push(Problem::step_error(id, Some(&key), e.to_string()));
                    return (None, None, true);
                }
            },
            Some(_) => return (None, None, true), // the schema check reports the type
        };
        if let Some(r) = &reference
            && r.family != spec.family()
        {
            problems.push(Problem::step_error(
                id,
                Some(&key),
                format!(
                    "{r} is a `{}` connection, but `{}` takes `{}` connections",
                    r.family,
                    step.component,
                    spec.family()
                ),
            ));
            return (reference, None, true);
        }
        let ConnectionMode::Resolve { connections, env } = mode else {
            return (reference, None, false);
        };
        // Without a reference, a component that takes connections uses its family's default
        // connection when the connections file defines one.
        let alias = match &reference {
            Some(r) => Some(r.alias.as_str()),
            None if !spec.connection_fields().is_empty()
                && connections.default_alias(spec.family()).is_some() =>
            {
                None
            }
            None => return (None, None, false),
        };
        match connections.resolve(spec.family(), alias, *env) {
            Ok(resolved) => (Some(resolved.reference.clone()), Some(resolved), false),
            Err(error) => {
                problems.push(Problem::step_error(id, Some(&key), error.to_string()));
                (reference, None, true)
            }
        }
    }
}

/// Steps named in `inputs` must produce a table, and a write step writes exactly one table:
/// the one its `inputs` name, or else the one table-producing step among its `needs` (the
/// others, such as an earlier writer, only order the run).
fn check_table_inputs(pipeline: &Pipeline, step: &Step, problems: &mut Problems) {
    let produces_table = |id: &str| {
        pipeline
            .steps
            .iter()
            .find(|s| s.id == id)
            .is_some_and(|s| s.mode != StepMode::Write)
    };
    // Unknown upstream steps were reported when the pipeline was parsed.
    if step
        .needs
        .iter()
        .any(|need| !pipeline.steps.iter().any(|s| &s.id == need))
    {
        return;
    }
    for input in &step.inputs {
        if !produces_table(input) {
            problems.push(Problem::step_error(
                &step.id,
                Some("inputs"),
                format!("step '{input}' writes to a destination and has no table to read"),
            ));
        }
    }
    if step.mode != StepMode::Write || !step.inputs.is_empty() {
        if step.mode == StepMode::Write && step.inputs.len() > 1 {
            problems.push(Problem::step_error(
                &step.id,
                Some("inputs"),
                format!(
                    "a write step writes one table but `inputs` names {} steps ({}); join them in a duckdb.processor step first",
                    step.inputs.len(),
                    step.inputs.join(", ")
                ),
            ));
        }
        return;
    }
    let tables: Vec<&str> = step
        .needs
        .iter()
        .map(String::as_str)
        .filter(|n| produces_table(n))
        .collect();
    match tables.as_slice() {
        [_] => {}
        [] => problems.push(Problem::step_error(
            &step.id,
            Some("needs"),
            "a write step needs the step whose table it writes: add `needs: [<step id>]` or `inputs: {df: \"${<step id>.df}\"}`",
        )),
        many => problems.push(Problem::step_error(
            &step.id,
            Some("needs"),
            format!(
                "a write step writes one table but needs {} steps that produce one ({}); name the one to write with `inputs: {{df: \"${{<step id>.df}}\"}}`, or join them in a duckdb.processor step first",
                many.len(),
                many.join(", ")
            ),
        )),
    }
}

fn merge_connection(
    step: &Step,
    spec: &ComponentSpec,
    resolved: &ResolvedConnection,
    config: &mut Map<String, Value>,
    problems: &mut Problems,
) {
    let fields = spec.connection_fields();
    warn_misspelled_connection_keys(step, &fields, resolved, problems);
    for field in fields {
        let Some(value) = resolved.fields.get(&field.name) else {
            continue;
        };
        if step.config.contains_key(&field.name) {
            let message = format!(
                "`{}` is provided by connection {} and {}",
                field.name,
                resolved.reference,
                match field.policy {
                    OverridePolicy::Forbidden =>
                        "cannot be overridden by the step; remove it from the step or use another connection",
                    OverridePolicy::Warning => "is overridden by the step's value",
                    OverridePolicy::Allowed => "is overridden by the step's value",
                }
            );
            match field.policy {
                OverridePolicy::Allowed => {}
                OverridePolicy::Warning => problems.push(
                    Problem::step_error(&step.id, Some(&format!("config.{}", field.name)), message)
                        .warning(),
                ),
                OverridePolicy::Forbidden => problems.push(Problem::step_error(
                    &step.id,
                    Some(&format!("config.{}", field.name)),
                    message,
                )),
            }
            continue;
        }
        config.insert(field.name.clone(), value.clone());
    }
}

/// A connection may carry keys its components do not read (`description`, Python Osiris'
/// `alias` or `pool_size`): they pass through, as in Osiris. A key one typo away from a field
/// the component does read (`passwrd`, `hots`) is almost certainly that field, silently
/// missing: warn, naming both.
fn warn_misspelled_connection_keys(
    step: &Step,
    fields: &[component_spec::ConnectionField],
    resolved: &ResolvedConnection,
    problems: &mut Problems,
) {
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    for key in resolved.fields.keys() {
        if names.contains(&key.as_str()) {
            continue;
        }
        if let Some(meant) = did_you_mean(key, names.iter().copied()) {
            problems.push(
                Problem::step_error(
                    &step.id,
                    Some("config.connection"),
                    format!(
                        "connection {} has `{key}`, which {} does not read; did you mean `{meant}`?",
                        resolved.reference, step.component
                    ),
                )
                .warning(),
            );
        }
    }
}

/// The config keys of a step that hold secrets: the spec's secret fields plus conventional
/// secret names.
fn secret_keys(spec: &ComponentSpec, config: &Map<String, Value>) -> BTreeSet<String> {
    let mut keys = spec.secret_fields();
    keys.extend(config.keys().filter(|k| is_secret_key(k)).cloned());
    for field in spec.property_names() {
        if is_secret_key(field) {
            keys.insert(field.to_owned());
        }
    }
    keys.remove(CONNECTION_KEY);
    keys
}

/// Secrets belong in the connections file: a literal secret in the pipeline ends up in version
/// control, manifests and logs.
fn check_inline_secrets(step: &Step, secret_keys: &BTreeSet<String>, problems: &mut Problems) {
    for key in secret_keys {
        let inline: Vec<String> = match step.config.get(key) {
            Some(Value::String(s)) if !s.is_empty() => vec![format!("config.{key}")],
            // Maps like `headers`: only entries whose names are secret-like (Authorization,
            // X-API-Key, ...) are secrets; `Accept: application/json` is not.
            Some(Value::Object(map)) => map
                .iter()
                .filter(|(k, v)| is_secret_key(k) && v.as_str().is_some_and(|s| !s.is_empty()))
                .map(|(k, _)| format!("config.{key}.{k}"))
                .collect(),
            _ => Vec::new(),
        };
        for path in inline {
            problems.push(Problem::step_error(
                &step.id,
                Some(&path),
                format!(
                    "inline secret: `{}` must not be written in the pipeline; put it in osiris_connections.yaml (as ${{ENV_VAR}}) and reference the connection with `connection: \"@family.alias\"`",
                    path.trim_start_matches("config.")
                ),
            ));
        }
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// `/columns/2` -> `config.columns[2]`; `` -> `config`.
fn pointer_to_key(pointer: &str) -> String {
    let mut key = String::from("config");
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            key.push_str(&format!("[{part}]"));
        } else {
            key.push('.');
            key.push_str(&part);
        }
    }
    key
}
