//! Component specs: the `components/<name>/spec.yaml` files that describe each component's
//! modes, capabilities, config schema, secrets and examples (format of the Python original,
//! `component-spec/v1.0.0`, defined by `components/spec.schema.json`). The specs of this
//! workspace are embedded at build time.
//!
//! Loading a spec validates it against the spec schema and compiles its `configSchema` once;
//! [`ComponentSpec::validate_config`] then checks step configs against that schema and the
//! spec's cross-field `constraints`, and [`ComponentSpec::lint`] / [`lint_file`] check a spec's
//! internal consistency (`osiris components validate`).
#![warn(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use jsonschema::Validator;
use serde::Deserialize;
use serde_json::Value;

mod config;
mod lint;
mod schema;

pub use config::ConfigProblem;
pub use lint::lint_file;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_specs.rs"));
}

/// Errors loading specs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A spec document is not valid YAML, does not follow the spec schema, or its
    /// `configSchema` is not a valid JSON Schema.
    #[error("component spec {file}: {message}")]
    Invalid {
        /// The spec file (or built-in name).
        file: String,
        /// Every problem, as `<JSON pointer>: <what is wrong>`, separated by `; `.
        message: String,
    },
    /// A spec file could not be read.
    #[error("cannot read component spec {file}: {source}")]
    Read {
        /// The spec file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One component's spec, validated against the spec schema. Blocks without a typed view here
/// (`redaction`, `llmHints`, `loggingPolicy`, ...) stay available in [`ComponentSpec::raw`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Component name, e.g. `filesystem.csv_extractor`.
    pub name: String,
    /// Spec version (semver).
    pub version: String,
    /// Short human title.
    #[serde(default)]
    pub title: Option<String>,
    /// Longer description.
    #[serde(default)]
    pub description: Option<String>,
    /// Component modes: extract, write, transform, discover, ...
    pub modes: Vec<String>,
    /// Capability flags.
    #[serde(default)]
    pub capabilities: BTreeMap<String, bool>,
    /// JSON Schema of the step config. Compiled once when the spec is loaded: changing it
    /// afterwards does not change [`ComponentSpec::validate_config`].
    pub config_schema: Value,
    /// JSON pointers of secret config fields.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// `x-secret`: further pointers masked like `secrets` (credentials from a connection).
    #[serde(default, rename = "x-secret")]
    pub x_secret: Vec<String>,
    /// Example configs.
    #[serde(default)]
    pub examples: Vec<Example>,
    /// `x-runtime`: which driver runs this component.
    #[serde(default, rename = "x-runtime")]
    pub runtime: Option<Runtime>,
    /// The whole spec document.
    #[serde(skip)]
    pub raw: Value,
    /// `x-connection-fields`, either form.
    #[serde(default, rename = "x-connection-fields")]
    connection_field_decls: Vec<ConnectionFieldDecl>,
    /// Cross-field rules on the step config.
    #[serde(default)]
    constraints: config::Constraints,
    /// The compiled `configSchema` (or why it does not compile), built once.
    #[serde(skip)]
    validator: OnceLock<Result<Validator, Vec<String>>>,
}

/// How a step may treat a config field its connection provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverridePolicy {
    /// The step may set the field; its value wins silently.
    Allowed,
    /// The step may set the field; its value wins and validation warns.
    Warning,
    /// Setting the field in the step is a validation error.
    Forbidden,
}

impl OverridePolicy {
    /// The spec spelling: `allowed`, `warning` or `forbidden`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Warning => "warning",
            Self::Forbidden => "forbidden",
        }
    }
}

/// A config field that a `connection` provides (`x-connection-fields`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionField {
    /// The config field (a configSchema property).
    pub name: String,
    /// Whether the step may set it itself.
    pub policy: OverridePolicy,
}

/// An `x-connection-fields` entry as written: a name, or `{name, override}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ConnectionFieldDecl {
    Name(String),
    WithPolicy {
        name: String,
        #[serde(rename = "override")]
        policy: OverridePolicy,
    },
}

/// A spec example.
#[derive(Debug, Clone, Deserialize)]
pub struct Example {
    /// What the example shows.
    #[serde(default)]
    pub title: Option<String>,
    /// A complete, valid step config.
    pub config: Value,
    /// Extra notes.
    #[serde(default)]
    pub notes: Option<String>,
}

/// The `x-runtime` block.
#[derive(Debug, Clone, Deserialize)]
pub struct Runtime {
    /// The registry key of the driver (equal to the component name).
    pub driver: String,
}

/// A config property of a component, as described by its `configSchema`.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// Property name.
    pub name: String,
    /// JSON type(s), e.g. `string` or `boolean | integer`.
    pub type_name: String,
    /// Whether the property is required.
    pub required: bool,
    /// Default value, if any.
    pub default: Option<Value>,
    /// Description.
    pub description: Option<String>,
    /// Allowed values, if restricted.
    pub allowed: Option<Vec<Value>>,
}

impl ComponentSpec {
    /// Parses a spec from YAML text and validates it against `components/spec.schema.json`;
    /// `file` names it in errors. Also compiles its `configSchema`, which must be a valid
    /// JSON Schema (draft 2020-12).
    ///
    /// The error lists every problem with the JSON pointer of the offending field, e.g.
    /// `/capabilities/streaming: "yes" is not of type "boolean"`.
    pub fn from_yaml(file: &str, text: &str) -> Result<Self> {
        Self::load(text).map_err(|problems| Error::Invalid {
            file: file.to_owned(),
            message: problems.join("; "),
        })
    }

    /// A spec this binary ships ([`SpecRegistry::builtin`]): parsed without the meta-schema
    /// check, its `configSchema` compiled on first use. Every command loads all of them, and
    /// the checks cost more than the rest of a small run's start; the test
    /// `builtin_specs_pass_every_check_of_from_yaml` holds them to [`from_yaml`](Self::from_yaml).
    ///
    /// `json` is the same document converted at build time (empty when it is not YAML).
    fn builtin(file: &str, text: &str, json: &str) -> Result<Self> {
        let invalid = |message: String| Error::Invalid {
            file: file.to_owned(),
            message,
        };
        let raw: Value = match serde_json::from_str(json) {
            Ok(raw) => raw,
            Err(_) => {
                serde_yaml::from_str(text).map_err(|e| invalid(format!("not valid YAML: {e}")))?
            }
        };
        let mut spec: ComponentSpec = serde_path_to_error::deserialize(&raw)
            .map_err(|e| invalid(format!("field `{}`: {}", e.path(), e.inner())))?;
        spec.raw = raw;
        Ok(spec)
    }

    /// [`ComponentSpec::from_yaml`] without the file name: the problems, one per entry.
    pub(crate) fn load(text: &str) -> Result<Self, Vec<String>> {
        yaml_input::check_depth(text).map_err(|e| vec![e.to_string()])?;
        let raw: Value =
            serde_yaml::from_str(text).map_err(|e| vec![format!("not valid YAML: {e}")])?;
        let mut found = Vec::new();
        for error in schema::spec_validator().iter_errors(&raw) {
            schema::describe(&error, &|_| false, &mut found);
        }
        if !found.is_empty() {
            return Err(found.into_iter().map(schema::Found::into_line).collect());
        }
        // The schema admits only what the typed view reads, so this fails only if the two
        // disagree.
        let mut spec: ComponentSpec = serde_path_to_error::deserialize(&raw)
            .map_err(|e| vec![format!("field `{}`: {}", e.path(), e.inner())])?;
        let validator = schema::compile(&spec.config_schema).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| {
                    format!(
                        "/configSchema{}: not a valid JSON Schema: {}",
                        p.pointer, p.message
                    )
                })
                .collect::<Vec<_>>()
        })?;
        spec.validator = OnceLock::from(Ok(validator));
        spec.raw = raw;
        Ok(spec)
    }

    /// The compiled `configSchema`, or why it does not compile (each as `pointer: message`).
    pub(crate) fn validator(&self) -> Result<&Validator, &[String]> {
        self.validator
            .get_or_init(|| {
                schema::compile(&self.config_schema).map_err(|problems| {
                    problems.into_iter().map(schema::Found::into_line).collect()
                })
            })
            .as_ref()
            .map_err(Vec::as_slice)
    }

    /// The fields a `connection` provides, with their override policy (plain names in the
    /// spec mean [`OverridePolicy::Allowed`]), in spec order.
    pub fn connection_fields(&self) -> Vec<ConnectionField> {
        self.connection_field_decls
            .iter()
            .map(|decl| match decl {
                ConnectionFieldDecl::Name(name) => ConnectionField {
                    name: name.clone(),
                    policy: OverridePolicy::Allowed,
                },
                ConnectionFieldDecl::WithPolicy { name, policy } => ConnectionField {
                    name: name.clone(),
                    policy: *policy,
                },
            })
            .collect()
    }

    /// Every pointer of `secrets` and `x-secret`, in spec order, without repeats.
    pub fn secret_pointers(&self) -> Vec<String> {
        let mut pointers: Vec<String> = Vec::new();
        for pointer in self.secrets.iter().chain(&self.x_secret) {
            if !pointers.contains(pointer) {
                pointers.push(pointer.clone());
            }
        }
        pointers
    }

    /// The top-level config fields that hold secrets: the first segment of every `secrets`
    /// and `x-secret` pointer (`/headers/Authorization` -> `headers`).
    pub fn secret_fields(&self) -> BTreeSet<String> {
        self.secrets
            .iter()
            .chain(&self.x_secret)
            .filter_map(|p| schema::pointer_head(p))
            .collect()
    }

    /// The family (connection family) of the component: the part before the first dot.
    pub fn family(&self) -> &str {
        self.name.split('.').next().unwrap_or(&self.name)
    }

    /// Whether the component supports `mode` (a component mode: extract, write, transform).
    pub fn supports_mode(&self, mode: &str) -> bool {
        self.modes.iter().any(|m| m == mode)
    }

    /// Names of the config properties, in spec order.
    pub fn property_names(&self) -> Vec<&str> {
        self.config_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Names of the required config properties.
    pub fn required(&self) -> Vec<&str> {
        self.config_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The config properties with their types, defaults and descriptions.
    pub fn properties(&self) -> Vec<Property> {
        let required = self.required();
        let Some(props) = self
            .config_schema
            .get("properties")
            .and_then(Value::as_object)
        else {
            return Vec::new();
        };
        props
            .iter()
            .map(|(name, schema)| Property {
                name: name.clone(),
                type_name: type_name(schema),
                required: required.contains(&name.as_str()),
                default: schema.get("default").cloned(),
                description: schema
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                allowed: schema.get("enum").and_then(Value::as_array).cloned(),
            })
            .collect()
    }
}

fn type_name(schema: &Value) -> String {
    if let Some(t) = schema.get("type") {
        return match t {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | "),
            _ => "any".into(),
        };
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            return options
                .iter()
                .map(type_name)
                .collect::<Vec<_>>()
                .join(" | ");
        }
    }
    "any".into()
}

/// All known component specs, by name.
#[derive(Debug, Clone, Default)]
pub struct SpecRegistry {
    specs: BTreeMap<String, ComponentSpec>,
}

impl SpecRegistry {
    /// The specs embedded from this workspace's `components/` directory.
    pub fn builtin() -> Result<Self> {
        let mut registry = Self::default();
        for ((dir, text), json) in builtin::BUILTIN_SPECS
            .iter()
            .zip(builtin::BUILTIN_SPECS_JSON)
        {
            let spec = ComponentSpec::builtin(&format!("components/{dir}/spec.yaml"), text, json)?;
            if spec.name != *dir {
                return Err(Error::Invalid {
                    file: format!("components/{dir}/spec.yaml"),
                    message: format!("`name` is {:?} but the directory is {dir:?}", spec.name),
                });
            }
            registry.insert(spec);
        }
        Ok(registry)
    }

    /// Adds or replaces a spec.
    pub fn insert(&mut self, spec: ComponentSpec) {
        self.specs.insert(spec.name.clone(), spec);
    }

    /// The spec of `name`.
    pub fn get(&self, name: &str) -> Option<&ComponentSpec> {
        self.specs.get(name)
    }

    /// All specs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &ComponentSpec> {
        self.specs.values()
    }

    /// All component names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.specs.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name: demo.extractor
version: 1.0.0
modes: [extract]
capabilities:
  discover: false
  adHocAnalytics: false
  inMemoryMove: false
  streaming: true
  bulkOperations: false
  transactions: false
  partitioning: false
  customTransforms: false
configSchema:
  type: object
  additionalProperties: false
  properties:
    path: {type: string, description: Where}
    header: {type: [boolean, integer], default: true}
    mode: {type: string, enum: [a, b]}
  required: [path]
x-runtime: {driver: demo.extractor}
"#;

    #[test]
    fn parses_properties_required_and_types() {
        let spec = ComponentSpec::from_yaml("demo", SPEC).unwrap();
        assert_eq!(spec.family(), "demo");
        assert_eq!(spec.property_names(), ["path", "header", "mode"]);
        assert_eq!(spec.required(), ["path"]);
        let props = spec.properties();
        assert_eq!(props[1].type_name, "boolean | integer");
        assert_eq!(props[1].default, Some(Value::Bool(true)));
        assert!(props[0].required);
        assert_eq!(props[2].allowed.as_ref().unwrap().len(), 2);
        assert!(spec.supports_mode("extract") && !spec.supports_mode("write"));
    }

    #[test]
    fn invalid_spec_names_file_and_field() {
        let err =
            ComponentSpec::from_yaml("components/x/spec.yaml", "name: x\nversion: \"1.0.0\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("component spec components/x/spec.yaml"),
            "{err}"
        );
        assert!(err.contains("modes"), "{err}");
    }

    #[test]
    fn schema_violations_are_listed_with_their_json_paths() {
        let text = SPEC
            .replace("streaming: true", "streaming: \"yes\"")
            .replace("modes: [extract]", "modes: [extract, fly]")
            .replace("version: 1.0.0", "version: 1.0.0\ncolour: red");
        let err = ComponentSpec::from_yaml("components/x/spec.yaml", &text).unwrap_err();
        let Error::Invalid { file, message } = &err else {
            panic!("{err}");
        };
        assert_eq!(file, "components/x/spec.yaml");
        assert_eq!(
            message,
            "/modes/1: \"fly\" is not one of \"extract\", \"write\", \"load\", \"transform\", \"discover\", \"analyze\", \"stream\"; \
             /capabilities/streaming: \"yes\" is not of type \"boolean\"; \
             /colour: unknown key `colour`"
        );
        assert!(
            err.to_string().starts_with(
                "component spec components/x/spec.yaml: /modes/1: \"fly\" is not one of"
            ),
            "{err}"
        );
    }

    #[test]
    fn connection_fields_accept_both_forms() {
        let plain = format!("{SPEC}x-connection-fields: [path, mode]\n");
        let spec = ComponentSpec::from_yaml("demo", &plain).unwrap();
        assert_eq!(
            spec.connection_fields(),
            [
                ConnectionField {
                    name: "path".into(),
                    policy: OverridePolicy::Allowed
                },
                ConnectionField {
                    name: "mode".into(),
                    policy: OverridePolicy::Allowed
                },
            ]
        );
        let registry = SpecRegistry::builtin().unwrap();
        let fields = registry.get("mysql.writer").unwrap().connection_fields();
        assert_eq!(fields.len(), 8);
        assert_eq!(fields[0].name, "host");
        assert_eq!(fields[0].policy, OverridePolicy::Forbidden);
        assert_eq!(fields[4].name, "database");
        assert_eq!(fields[4].policy, OverridePolicy::Warning);
        assert_eq!(fields[5].name, "connect_timeout");
        assert_eq!(fields[5].policy, OverridePolicy::Allowed);
        // One connection struct per family: its components declare the same fields.
        for spec in registry.iter() {
            for other in registry.iter().filter(|o| o.family() == spec.family()) {
                assert_eq!(
                    spec.connection_fields(),
                    other.connection_fields(),
                    "{} vs {}",
                    spec.name,
                    other.name
                );
            }
        }
        assert!(
            registry
                .get("duckdb.processor")
                .unwrap()
                .connection_fields()
                .is_empty()
        );
    }

    #[test]
    fn builtin_specs_pass_every_check_of_from_yaml() {
        let registry = SpecRegistry::builtin().unwrap();
        assert_eq!(registry.iter().count(), builtin::BUILTIN_SPECS.len());
        // Every spec was converted to JSON at build time (the fast path), and the registry's
        // document equals the YAML's below.
        assert_eq!(
            builtin::BUILTIN_SPECS_JSON.len(),
            builtin::BUILTIN_SPECS.len()
        );
        assert!(
            builtin::BUILTIN_SPECS_JSON
                .iter()
                .all(|json| !json.is_empty())
        );
        for (dir, text) in builtin::BUILTIN_SPECS {
            let checked = ComponentSpec::from_yaml(dir, text).unwrap();
            let loaded = registry.get(dir).unwrap();
            assert_eq!(loaded.raw, checked.raw, "{dir}");
            assert!(loaded.validator().is_ok(), "{dir}: configSchema compiles");
        }
    }

    #[test]
    fn secrets_join_secrets_and_x_secret() {
        let registry = SpecRegistry::builtin().unwrap();
        let supabase = registry.get("supabase.writer").unwrap();
        assert_eq!(
            supabase.secret_pointers(),
            ["/key", "/service_role_key", "/anon_key", "/pg_dsn"]
        );
        assert_eq!(
            supabase.secret_fields().into_iter().collect::<Vec<_>>(),
            ["anon_key", "key", "pg_dsn", "service_role_key"]
        );
        let nested = format!("{SPEC}secrets: [/path/inner, /path]\nx-secret: [/path, /mo~1de]\n");
        let spec = ComponentSpec::from_yaml("demo", &nested).unwrap();
        assert_eq!(spec.secret_pointers(), ["/path/inner", "/path", "/mo~1de"]);
        assert_eq!(
            spec.secret_fields().into_iter().collect::<Vec<_>>(),
            ["mo/de", "path"]
        );
    }

    #[test]
    fn specs_can_be_shared_between_threads() {
        fn shared<T: Send + Sync + Clone>() {}
        shared::<ComponentSpec>();
        shared::<SpecRegistry>();
    }

    #[test]
    fn builtin_specs_load_and_match_their_directories() {
        let registry = SpecRegistry::builtin().unwrap();
        for spec in registry.iter() {
            assert_eq!(
                spec.runtime.as_ref().map(|r| r.driver.as_str()),
                Some(spec.name.as_str()),
                "x-runtime.driver of {} must equal its name",
                spec.name
            );
        }
    }
}
