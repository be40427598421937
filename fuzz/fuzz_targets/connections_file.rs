//! `osiris_connections.yaml`: `Connections::load` (through a file, its only public entry), then
//! every alias resolved with `${VAR}` substitution, plus `ConnectionRef::parse` and
//! `substitute` on the raw text.
//!
//! Invariants besides "no panic": a reference `ConnectionRef::parse` accepts prints back as
//! written; text without `${` substitutes to itself.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pipeline::connections::{ConnectionRef, Connections, substitute, variables};

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "osiris-fuzz-connections-{}.yaml",
            std::process::id()
        ))
    })
}

/// Variables with an even-length name are set (to "" when the name starts with `E`).
fn env(name: &str) -> Option<String> {
    (name.len() % 2 == 0).then(|| {
        if name.starts_with('E') {
            String::new()
        } else {
            format!("value-of-{name}")
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = ConnectionRef::parse(text) {
        assert_eq!(reference.to_string(), text);
    }
    let substituted = substitute(text, &env);
    if !text.contains("${") {
        assert_eq!(substituted.as_deref(), Ok(text));
    }

    std::fs::write(scratch(), data).expect("write the scratch file");
    let Ok(connections) = Connections::load(scratch()) else {
        return;
    };
    for (family, aliases) in connections.families() {
        let _ = connections.default_alias(family);
        let _ = connections.resolve(family, None, &env);
        for (alias, fields) in aliases {
            for value in fields.values() {
                let _ = variables(value);
            }
            if let Ok(resolved) = connections.resolve(family, Some(alias), &env) {
                let _ = format!("{resolved:?}");
            }
        }
    }
    let _ = connections
        .resolve("mysql", None, &env)
        .map_err(|e| e.to_string());
});
