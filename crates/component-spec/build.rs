//! Embeds every `components/<name>/spec.yaml` of the workspace into the library, so the
//! `osiris` binary knows its components wherever it runs.
//!
//! Each spec is also embedded as JSON, converted here by the same `serde_yaml` the library
//! uses: parsing ~110 KB of YAML cost every command ~3 ms before it could start its work, the
//! same document as JSON a tenth of that. A spec that is not valid YAML gets no JSON, so the
//! library reports its YAML error as before.
//!
//! The generated file holds the specs' text itself, not paths to them: cargo gives a workspace
//! crate the same cache entry in every checkout sharing a build directory (CI's fresh clone, a
//! worktree), and an `include_str!` of an absolute path would read another checkout's file, or
//! fail once that checkout is gone. For the same reason the paths come from the environment
//! cargo gives this run, and `rerun-if-changed` paths are relative to the package.

use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("../../components");
    println!("cargo:rerun-if-changed=../../components");
    let mut entries = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(&root) {
        for dir in dirs.flatten() {
            let spec = dir.path().join("spec.yaml");
            if spec.is_file() {
                let name = dir.file_name().to_string_lossy().into_owned();
                println!("cargo:rerun-if-changed=../../components/{name}/spec.yaml");
                let text = std::fs::read_to_string(&spec).expect("spec.yaml is readable UTF-8");
                entries.push((name, text));
            }
        }
    }
    entries.sort();
    let mut code = String::from(
        "/// `(directory name, spec.yaml text)` of every built-in component.\npub static BUILTIN_SPECS: &[(&str, &str)] = &[\n",
    );
    let mut json = String::from(
        "/// The same specs as JSON text, in the same order; empty for a spec that is not YAML.\npub static BUILTIN_SPECS_JSON: &[&str] = &[\n",
    );
    for (name, text) in entries {
        // `{:?}` of a string is a Rust string literal of the same text.
        code.push_str(&format!("    ({name:?}, {text:?}),\n"));
        let as_json = serde_yaml::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|value| serde_json::to_string(&value).ok())
            .unwrap_or_default();
        json.push_str(&format!("    {as_json:?},\n"));
    }
    code.push_str("];\n");
    json.push_str("];\n");
    code.push_str(&json);
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_specs.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
