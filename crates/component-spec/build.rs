//! Embeds every `components/<name>/spec.yaml` of the workspace into the library, so the
//! `osiris` binary knows its components wherever it runs.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../components");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut entries = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(&root) {
        for dir in dirs.flatten() {
            let spec = dir.path().join("spec.yaml");
            if spec.is_file() {
                println!("cargo:rerun-if-changed={}", spec.display());
                let canonical = spec.canonicalize().expect("spec path resolves");
                entries.push((dir.file_name().to_string_lossy().into_owned(), canonical));
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
