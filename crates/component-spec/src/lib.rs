//! Component specs: the `components/<name>/spec.yaml` files that describe each component's
//! modes, capabilities, config schema, secrets and examples (format of the Python original,
//! `component-spec/v1.0.0`). The specs of this workspace are embedded at build time.
#![warn(missing_docs)]

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_specs.rs"));
}

/// Errors loading specs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A spec file is not valid YAML or misses required fields.
    #[error("component spec {file}: {message}")]
    Invalid {
        /// The spec file (or built-in name).
        file: String,
        /// What is wrong, with line and column where known.
        message: String,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One component's spec. Unknown top-level keys are kept out of the typed view; the full
/// document stays available as [`ComponentSpec::raw`].
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
    /// JSON Schema of the step config.
    pub config_schema: Value,
    /// JSON pointers of secret config fields.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Example configs.
    #[serde(default)]
    pub examples: Vec<Example>,
    /// `x-runtime`: which driver runs this component.
    #[serde(default, rename = "x-runtime")]
    pub runtime: Option<Runtime>,
    /// The whole spec document.
    #[serde(skip)]
    pub raw: Value,
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
    /// Parses a spec from YAML text; `file` names it in errors.
    pub fn from_yaml(file: &str, text: &str) -> Result<Self> {
        let invalid = |message: String| Error::Invalid {
            file: file.to_owned(),
            message,
        };
        let raw: Value = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut spec: ComponentSpec = serde_path_to_error::deserialize(raw.clone())
            .map_err(|e| invalid(format!("field `{}`: {}", e.path(), e.inner())))?;
        if spec.modes.is_empty() {
            return Err(invalid("`modes` must not be empty".into()));
        }
        if spec
            .config_schema
            .get("properties")
            .and_then(Value::as_object)
            .is_none()
        {
            return Err(invalid(
                "`configSchema.properties` must be an object".into(),
            ));
        }
        spec.raw = raw;
        Ok(spec)
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
        for (dir, text) in builtin::BUILTIN_SPECS {
            let spec = ComponentSpec::from_yaml(&format!("components/{dir}/spec.yaml"), text)?;
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
capabilities: {discover: false}
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
