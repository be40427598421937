//! docs/adding-a-driver.md shows this crate, file for file: the walk-through stays true.

use std::path::Path;

/// Each code block of the walk-through that names a file (```` ```rust file=src/lib.rs ````)
/// is that file of this crate, to the byte.
#[test]
fn the_walk_through_shows_this_crate() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc_path = crate_dir.join("../../../docs/adding-a-driver.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let mut shown = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(file) = line.strip_prefix("```").and_then(|info| {
            info.split_whitespace()
                .find_map(|w| w.strip_prefix("file="))
        }) else {
            continue;
        };
        let mut block = String::new();
        for line in lines.by_ref().take_while(|l| *l != "```") {
            block.push_str(line);
            block.push('\n');
        }
        shown.push(file.to_owned());
        let actual = std::fs::read_to_string(crate_dir.join(file))
            .unwrap_or_else(|e| panic!("{file}, shown in the walk-through: {e}"));
        assert_eq!(
            block, actual,
            "docs/adding-a-driver.md shows {file} differently"
        );
    }
    for file in ["Cargo.toml", "spec.yaml", "src/lib.rs", "tests/driver.rs"] {
        assert!(
            shown.iter().any(|f| f == file),
            "the walk-through does not show {file}: {shown:?}"
        );
    }
}
