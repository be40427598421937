//! Embeds every `components/<name>/spec.yaml` of the workspace into the library, so the
//! `osiris` binary knows its components wherever it runs.
//!
//! Paths come from the environment cargo gives this run (not from `env!` at the script's own
//! compile time), and the `rerun-if-changed` paths are relative to the package: cargo gives a
//! workspace crate the same cache entry in every checkout sharing a build directory, and
//! absolute paths would make another checkout embed (and watch) this one's specs.

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
                let canonical = spec.canonicalize().expect("spec path resolves");
                entries.push((name, canonical));
            }
        }
    }
    entries.sort();
    let mut code = String::from(
        "/// `(directory name, spec.yaml text)` of every built-in component.\npub static BUILTIN_SPECS: &[(&str, &str)] = &[\n",
    );
    for (name, path) in entries {
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_specs.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
