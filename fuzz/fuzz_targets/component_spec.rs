//! Component specs (`components/<name>/spec.yaml`, also `osiris components lint`):
//! `ComponentSpec::from_yaml` (schema check, typed view, `configSchema` compilation), then
//! what the runtime derives from a spec: lint, connection fields, secret pointers, properties,
//! and validation and coercion of each of the spec's own examples.
#![no_main]

use std::collections::BTreeSet;

use component_spec::ComponentSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = ComponentSpec::from_yaml("fuzz/spec.yaml", text) else {
        return;
    };
    let _ = spec.lint();
    let _ = spec.family();
    let _ = spec.connection_fields();
    let _ = spec.secret_pointers();
    let _ = spec.secret_fields();
    let _ = spec.property_names();
    let _ = spec.required();
    let _ = spec.properties();
    let assume: BTreeSet<String> = spec
        .connection_fields()
        .into_iter()
        .map(|f| f.name)
        .collect();
    for example in &spec.examples {
        if let serde_json::Value::Object(config) = &example.config {
            let mut config = config.clone();
            spec.coerce(&mut config);
            let _ = spec.validate_config(&config, &BTreeSet::new());
            let _ = spec.validate_config(&config, &assume);
            // Every field as a string, as `${VAR}` substitution leaves them.
            let mut strings = config.clone();
            for value in strings.values_mut() {
                *value = serde_json::Value::String(value.to_string());
            }
            spec.coerce(&mut strings);
            let _ = spec.validate_config(&strings, &BTreeSet::new());
        }
    }
});
