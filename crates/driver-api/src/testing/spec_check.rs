//! Keeps a component's `spec.yaml` and its driver's `Config` struct in step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;

/// The field names serde's derive gives `T`, read from its `deserialize_struct` call.
fn struct_fields<T: DeserializeOwned>() -> Vec<&'static str> {
    struct Capture(Vec<&'static str>);
    impl<'de> Deserializer<'de> for &mut Capture {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields.to_vec();
            Err(de::Error::custom("captured"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut capture = Capture(Vec::new());
    let _ = T::deserialize(&mut capture);
    assert!(!capture.0.is_empty(), "the config type is not a struct");
    capture.0
}

fn deserialize<T: DeserializeOwned>(config: &Value, what: &str) {
    if let Err(error) = serde_json::from_value::<T>(config.clone()) {
        panic!("{what} does not deserialize into the Config struct: {error}\n{config:#}");
    }
}

/// Asserts that `components/<component>/spec.yaml` describes exactly the fields of `T` (besides
/// `connection`, which the engine consumes before a driver sees the config), that each has a
/// description, and that every example and every default deserializes into `T` (examples with
/// their `connection` reference removed). Every driver crate calls this from a test.
pub fn assert_spec_matches<T: DeserializeOwned>(component: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../components")
        .join(component)
        .join("spec.yaml");
    assert_spec_file_matches::<T>(component, &path);
}

/// [`assert_spec_matches`] for a spec outside `components/` (a driver that is not built in).
pub fn assert_spec_file_matches<T: DeserializeOwned>(component: &str, path: &Path) {
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
    let in_struct: BTreeSet<&str> = struct_fields::<T>().into_iter().collect();
    assert_eq!(
        in_spec, in_struct,
        "configSchema properties vs Config fields"
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
        deserialize::<T>(
            &without_connection(&example["config"]),
            &format!("example {}", example["title"]),
        );
    }
    let base = &without_connection(&examples[0]["config"]);
    for (name, property) in properties.iter().filter(|(k, _)| *k != "connection") {
        if let Some(default) = property.get("default") {
            let mut config = base.clone();
            config[name] = default.clone();
            deserialize::<T>(&config, &format!("the default of {name}"));
        }
    }
}
