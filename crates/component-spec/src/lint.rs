//! Consistency checks of a spec beyond its schema (`osiris components validate`): the checks
//! of the former `testing_env/check_specs.py`.

use std::collections::BTreeSet;
use std::path::Path;

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value};

use crate::schema::{self, join_pointer, pointer_head, show};
use crate::{ComponentSpec, Error, Result};

impl ComponentSpec {
    /// Problems of this spec that its schema cannot express, each as `pointer: message` with a
    /// JSON pointer into the spec document. Empty when the spec is consistent:
    ///
    /// - `x-runtime.driver` equals `name`;
    /// - `configSchema` is a valid JSON Schema and closed (`additionalProperties: false`), every
    ///   property has a description and a type, every `default` fits its property, every
    ///   `required` name is a property;
    /// - every `x-connection-fields` name, the first segment of every `secrets`, `x-secret`,
    ///   `redaction.extras` and `loggingPolicy.sensitivePaths` pointer, every
    ///   `llmHints.inputAliases` key and every field a constraint names is a property; a
    ///   connection-providing spec has a `connection` property; constraint values fit their field;
    /// - every example has only known keys and passes [`ComponentSpec::validate_config`] (with
    ///   its connection's fields counted as present when it has a `connection`).
    pub fn lint(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut problem = |pointer: String, message: String| {
            problems.push(format!("{pointer}: {message}"));
        };

        match self.runtime.as_ref().map(|r| r.driver.as_str()) {
            Some(driver) if driver == self.name => {}
            Some(driver) => problem(
                "/x-runtime/driver".into(),
                format!("is {driver:?}, must equal name {:?}", self.name),
            ),
            None => problem(
                "/x-runtime".into(),
                format!("missing; `driver` must equal name {:?}", self.name),
            ),
        }

        let meta = schema::meta_problems(&self.config_schema);
        if !meta.is_empty() {
            for found in meta {
                problem(
                    format!("/configSchema{}", found.pointer),
                    format!("not a valid JSON Schema: {}", found.message),
                );
            }
            return problems;
        }
        let empty = Map::new();
        let props = self.config_properties().unwrap_or(&empty);

        if self.config_schema.get("additionalProperties") != Some(&Value::Bool(false)) {
            problem(
                "/configSchema/additionalProperties".into(),
                "must be false (unknown keys are errors)".into(),
            );
        }
        for name in self.required() {
            if !props.contains_key(name) {
                problem(
                    "/configSchema/required".into(),
                    format!("`{name}` is not a property"),
                );
            }
        }
        for (name, prop) in props {
            let at = join_pointer("/configSchema/properties", name);
            if prop
                .get("description")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                problem(at.clone(), "has no description".into());
            }
            if !["type", "oneOf", "anyOf", "const", "enum"]
                .iter()
                .any(|k| prop.get(*k).is_some())
            {
                problem(at.clone(), "has no type".into());
            }
            if let Some(default) = prop.get("default") {
                for why in self.misfits(name, default) {
                    problem(
                        format!("{at}/default"),
                        format!("does not fit the property: {why}"),
                    );
                }
            }
        }

        let connection_fields = self.connection_fields();
        for (i, field) in connection_fields.iter().enumerate() {
            if !props.contains_key(&field.name) {
                problem(
                    format!("/x-connection-fields/{i}"),
                    format!("`{}` is not a configSchema property", field.name),
                );
            }
        }
        if !connection_fields.is_empty() && !props.contains_key("connection") {
            problem(
                "/x-connection-fields".into(),
                "declared, but configSchema has no `connection` property".into(),
            );
        }
        let pointer_lists = [
            ("/secrets", self.raw.get("secrets")),
            ("/x-secret", self.raw.get("x-secret")),
            ("/redaction/extras", self.raw.pointer("/redaction/extras")),
            (
                "/loggingPolicy/sensitivePaths",
                self.raw.pointer("/loggingPolicy/sensitivePaths"),
            ),
        ];
        for (at, list) in pointer_lists {
            let pointers = list.and_then(Value::as_array).map(Vec::as_slice);
            for (i, pointer) in pointers.unwrap_or_default().iter().enumerate() {
                let Some(head) = pointer.as_str().and_then(pointer_head) else {
                    continue; // the spec schema reports malformed pointers
                };
                if !props.contains_key(&head) {
                    problem(
                        format!("{at}/{i}"),
                        format!("{}: `{head}` is not a configSchema property", show(pointer)),
                    );
                }
            }
        }
        if let Some(aliases) = self
            .raw
            .pointer("/llmHints/inputAliases")
            .and_then(Value::as_object)
        {
            for name in aliases.keys() {
                if !props.contains_key(name) {
                    problem(
                        join_pointer("/llmHints/inputAliases", name),
                        "is not a configSchema property".into(),
                    );
                }
            }
        }

        for (i, rule) in self.constraints.required.iter().enumerate() {
            let at = format!("/constraints/required/{i}");
            for (field, expected) in &rule.when {
                let here = join_pointer(&format!("{at}/when"), field);
                if !props.contains_key(field) {
                    problem(here, "is not a configSchema property".into());
                } else if !expected.is_null() && !expected.is_object() {
                    for why in self.misfits(field, expected) {
                        problem(
                            here.clone(),
                            format!("{} can never match: {why}", show(expected)),
                        );
                    }
                }
            }
            for (field, rule) in &rule.must {
                let here = join_pointer(&format!("{at}/must"), field);
                if !props.contains_key(field) {
                    problem(here, "is not a configSchema property".into());
                    continue;
                }
                for value in rule.one_of.iter().flatten() {
                    for why in self.misfits(field, value) {
                        problem(
                            format!("{here}/enum"),
                            format!("{} does not fit the field: {why}", show(value)),
                        );
                    }
                }
            }
        }

        let provided_by_connection: BTreeSet<String> =
            connection_fields.into_iter().map(|f| f.name).collect();
        for (i, example) in self.examples.iter().enumerate() {
            let at = format!("/examples/{i}/config");
            let Some(config) = example.config.as_object() else {
                continue; // the spec schema requires an object
            };
            for key in config.keys() {
                if !props.contains_key(key) {
                    problem(join_pointer(&at, key), format!("unknown key `{key}`"));
                }
            }
            let assumed = if config.contains_key("connection") {
                provided_by_connection.clone()
            } else {
                BTreeSet::new()
            };
            for p in self.validate_config(config, &assumed) {
                problem(format!("{at}{}", p.pointer), p.message);
            }
        }
        problems
    }

    /// Why `value` does not fit the property `field` (empty when it fits). Validated in place
    /// with the whole configSchema, so `$ref`s inside the property resolve.
    fn misfits(&self, field: &str, value: &Value) -> Vec<String> {
        let Ok(validator) = self.validator() else {
            return Vec::new(); // reported by the meta-validation
        };
        let mut instance = Map::new();
        instance.insert(field.to_owned(), value.clone());
        let instance = Value::Object(instance);
        let own = join_pointer("", field);
        let elsewhere = |e: &ValidationError<'_>| {
            let path = e.instance_path().as_str();
            path != own && !path.starts_with(&format!("{own}/"))
                || matches!(e.kind(), ValidationErrorKind::Required { .. })
                    && e.instance_path().is_empty()
        };
        let mut found = Vec::new();
        for error in validator.iter_errors(&instance) {
            schema::describe(&error, &elsewhere, &mut found);
        }
        found
            .into_iter()
            .map(|f| match f.pointer.strip_prefix(&own) {
                Some("") | None => f.message,
                Some(rest) => format!("{rest}: {}", f.message),
            })
            .collect()
    }
}

/// Loads the spec at `path` (a `spec.yaml`, or a directory holding one) and returns all its
/// problems, each as `<file>: <pointer>: <message>`: schema violations, a `name` that is not the
/// directory's name, and everything [`ComponentSpec::lint`] finds. Empty = valid.
///
/// Fails only when the file cannot be read.
pub fn lint_file(path: &Path) -> Result<Vec<String>> {
    let file = if path.is_dir() {
        path.join("spec.yaml")
    } else {
        path.to_owned()
    };
    let shown = file.display().to_string();
    let text = match yaml_input::read_file(&file) {
        Ok(text) => text,
        Err(yaml_input::Error::Read { source, .. }) => {
            return Err(Error::Read {
                file: shown,
                source,
            });
        }
        // Too large or too deep: a problem of the file, which the message names.
        Err(refused) => return Ok(vec![refused.to_string()]),
    };
    let problems = match ComponentSpec::load(&text) {
        Err(problems) => problems,
        Ok(spec) => {
            let mut problems = Vec::new();
            let directory = std::fs::canonicalize(&file)
                .ok()
                .and_then(|f| Some(f.parent()?.file_name()?.to_string_lossy().into_owned()));
            if let Some(directory) = directory
                && spec.name != directory
            {
                problems.push(format!(
                    "/name: is {:?} but the directory is {directory:?}",
                    spec.name
                ));
            }
            problems.extend(spec.lint());
            problems
        }
    };
    Ok(problems
        .into_iter()
        .map(|p| format!("{shown}: {p}"))
        .collect())
}

/// A spec document with every field the spec schema requires, for tests.
#[cfg(test)]
pub(crate) fn minimal_spec(name: &str, config_schema: Value) -> Value {
    serde_json::json!({
        "name": name, "version": "1.0.0", "modes": ["extract"],
        "capabilities": {"discover": false, "adHocAnalytics": false, "inMemoryMove": false,
            "streaming": false, "bulkOperations": false, "transactions": false,
            "partitioning": false, "customTransforms": false},
        "configSchema": config_schema,
        "x-runtime": {"driver": name}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SpecRegistry;
    use serde_json::json;

    fn spec(doc: &Value) -> ComponentSpec {
        ComponentSpec::from_yaml("test", &serde_json::to_string(doc).unwrap()).unwrap()
    }

    #[test]
    fn every_builtin_spec_is_consistent() {
        let registry = SpecRegistry::builtin().unwrap();
        assert_eq!(registry.names().len(), 15);
        for spec in registry.iter() {
            assert_eq!(spec.lint(), Vec::<String>::new(), "{}", spec.name);
        }
    }

    #[test]
    fn every_builtin_spec_file_is_consistent() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../components");
        for (dir, _) in crate::builtin::BUILTIN_SPECS {
            assert_eq!(lint_file(&root.join(dir)).unwrap(), Vec::<String>::new());
        }
    }

    #[test]
    fn lint_reports_what_the_schema_cannot() {
        let mut doc = minimal_spec(
            "demo.writer",
            json!({
                "type": "object",
                "properties": {
                    "mode": {"type": "string", "enum": ["a", "b"], "default": "c",
                             "description": "Mode."},
                    "pk": {"type": "array", "items": {"type": "string"}},
                    "token": {"type": "string", "description": "Secret."}
                },
                "required": ["mode", "table"]
            }),
        );
        doc["x-runtime"]["driver"] = json!("demo.other");
        doc["secrets"] = json!(["/token", "/password/inner"]);
        doc["x-connection-fields"] = json!(["token", "host"]);
        doc["llmHints"] = json!({"inputAliases": {"tbl": ["t"]}});
        doc["constraints"] = json!({"required": [
            {"when": {"mode": "upsert"}, "must": {"pk": {"present": true}}, "error": "pk!"},
            {"when": {"mode": "a"}, "must": {"pk": {"present": true}, "key": {"enum": [1]}},
             "error": "x"},
            {"when": {}, "must": {"mode": {"enum": [5]}}, "error": "y"}
        ]});
        doc["examples"] = json!([
            {"title": "t", "config": {"mode": "a", "pk": ["id"], "tabel": "x"}},
            {"title": "u", "config": {"mode": "d"}}
        ]);
        assert_eq!(
            spec(&doc).lint(),
            [
                "/x-runtime/driver: is \"demo.other\", must equal name \"demo.writer\"",
                "/configSchema/additionalProperties: must be false (unknown keys are errors)",
                "/configSchema/required: `table` is not a property",
                "/configSchema/properties/mode/default: does not fit the property: \"c\" is not one of \"a\", \"b\"",
                "/configSchema/properties/pk: has no description",
                "/x-connection-fields/1: `host` is not a configSchema property",
                "/x-connection-fields: declared, but configSchema has no `connection` property",
                "/secrets/1: \"/password/inner\": `password` is not a configSchema property",
                "/llmHints/inputAliases/tbl: is not a configSchema property",
                "/constraints/required/0/when/mode: \"upsert\" can never match: \"upsert\" is not one of \"a\", \"b\"",
                "/constraints/required/1/must/key: is not a configSchema property",
                "/constraints/required/2/must/mode/enum: 5 does not fit the field: 5 is not of type \"string\"",
                "/constraints/required/2/must/mode/enum: 5 does not fit the field: 5 is not one of \"a\", \"b\"",
                "/examples/0/config/tabel: unknown key `tabel`",
                "/examples/0/config/table: missing required key `table`",
                "/examples/0/config/mode: y",
                "/examples/1/config/table: missing required key `table`",
                "/examples/1/config/mode: \"d\" is not one of \"a\", \"b\"",
                "/examples/1/config/mode: y",
            ]
        );
    }

    #[test]
    fn examples_with_a_connection_count_its_fields_as_present() {
        let mut doc = minimal_spec(
            "demo.extractor",
            json!({
                "type": "object", "additionalProperties": false,
                "properties": {
                    "connection": {"type": "string", "description": "Connection."},
                    "host": {"type": "string", "description": "Host."}
                },
                "required": ["host"]
            }),
        );
        doc["x-connection-fields"] = json!([{"name": "host", "override": "forbidden"}]);
        doc["examples"] = json!([
            {"title": "over a connection", "config": {"connection": "@demo.main"}},
            {"title": "without", "config": {}}
        ]);
        assert_eq!(
            spec(&doc).lint(),
            ["/examples/1/config/host: missing required key `host`"]
        );
    }

    #[test]
    fn invalid_config_schema_is_reported_by_the_meta_schema() {
        let mut doc = minimal_spec(
            "demo.extractor",
            json!({"type": "object", "additionalProperties": false,
                   "properties": {"a": {"type": "strnig", "description": "A."}}}),
        );
        let err = ComponentSpec::from_yaml("demo.yaml", &doc.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("component spec demo.yaml: /configSchema/properties/a/type: not a valid JSON Schema: "),
            "{err}"
        );
        doc["configSchema"]["properties"]["a"]["type"] = json!("string");
        assert_eq!(spec(&doc).lint(), Vec::<String>::new());
    }

    #[test]
    fn lint_file_checks_the_directory_name_and_prefixes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let spec_dir = dir.path().join("demo.extractor");
        std::fs::create_dir(&spec_dir).unwrap();
        let doc = minimal_spec(
            "demo.reader",
            json!({"type": "object", "additionalProperties": false, "properties": {}}),
        );
        let file = spec_dir.join("spec.yaml");
        std::fs::write(&file, doc.to_string()).unwrap();
        let shown = file.display();
        assert_eq!(
            lint_file(&spec_dir).unwrap(),
            [format!(
                "{shown}: /name: is \"demo.reader\" but the directory is \"demo.extractor\""
            )]
        );

        std::fs::write(&file, "name: [").unwrap();
        let problems = lint_file(&file).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with(&format!("{shown}: not valid YAML: ")),
            "{problems:?}"
        );

        let missing = lint_file(&dir.path().join("nothing/spec.yaml")).unwrap_err();
        assert!(matches!(missing, Error::Read { .. }), "{missing}");
    }
}
