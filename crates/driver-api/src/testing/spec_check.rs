//! Keeps a component's `spec.yaml` and its driver's `Connection` and `Config` structs in step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Driver, struct_fields};

/// Deserializes a step config (without `connection`) as the registry does: the connection
/// type's fields into it, the rest into the config type.
fn deserialize_split<D: Driver>(config: &Value, what: &str) {
    if let Err(error) = crate::split_config::<D::Connection, D::Config>(config.clone()) {
        panic!(
            "{what} does not deserialize into the Connection and Config structs: {error}\n{config:#}"
        );
    }
}

/// Asserts that `components/<D::NAME>/spec.yaml` describes exactly the fields of
/// `D::Connection` and `D::Config` (besides `connection`, which the engine consumes before a
/// driver sees the config), that its `x-connection-fields` name exactly the fields of
/// `D::Connection`, that each property has a description, and that every example and every
/// default deserializes (examples with their `connection` reference removed). Every driver
/// crate calls this from a test.
pub fn assert_spec_matches<D: Driver>() {
    let component = D::NAME;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../components")
        .join(component)
        .join("spec.yaml");
    assert_spec_file_matches::<D>(&path);
}

/// [`assert_spec_matches`] for a spec outside `components/` (a driver that is not built in).
pub fn assert_spec_file_matches<D: Driver>(path: &Path) {
    let component = D::NAME;
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let spec: Value = serde_yaml::from_str(&text).expect("spec.yaml parses");
    assert_eq!(spec["name"], component);
    assert_eq!(spec["x-runtime"]["driver"], component);

    let schema = &spec["configSchema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    let properties = schema["properties"].as_object().expect("properties");
    let in_spec: BTreeSet<&str> = properties
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "connection")
        .collect();
    let in_connection: BTreeSet<&str> = struct_fields::<D::Connection>().iter().copied().collect();
    let in_config: BTreeSet<&str> = struct_fields::<D::Config>().iter().copied().collect();
    assert!(!in_config.is_empty(), "the config type is not a struct");
    assert!(
        in_connection.is_disjoint(&in_config),
        "fields in both Connection and Config: {:?}",
        in_connection.intersection(&in_config).collect::<Vec<_>>()
    );
    let in_struct: BTreeSet<&str> = in_connection.union(&in_config).copied().collect();
    assert_eq!(
        in_spec, in_struct,
        "configSchema properties vs Connection + Config fields"
    );
    let declared: BTreeSet<&str> = spec["x-connection-fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            f.as_str()
                .or_else(|| f["name"].as_str())
                .expect("a field name")
        })
        .collect();
    assert_eq!(
        declared, in_connection,
        "x-connection-fields vs Connection fields"
    );
    for (name, property) in properties {
        assert!(
            property["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "property {name} has no description"
        );
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        assert!(
            in_struct.contains(required.as_str().unwrap()),
            "required {required} is not a field"
        );
    }

    let examples = spec["examples"].as_array().expect("examples");
    assert!(!examples.is_empty(), "the spec has examples");
    let without_connection = |config: &Value| {
        let mut config = config.clone();
        if let Some(map) = config.as_object_mut() {
            map.remove("connection");
        }
        config
    };
    for example in examples {
        deserialize_split::<D>(
            &without_connection(&example["config"]),
            &format!("example {}", example["title"]),
        );
    }
    let base = &without_connection(&examples[0]["config"]);
    for (name, property) in properties.iter().filter(|(k, _)| *k != "connection") {
        if let Some(default) = property.get("default") {
            let mut config = base.clone();
            config[name] = default.clone();
            deserialize_split::<D>(&config, &format!("the default of {name}"));
        }
    }
}
