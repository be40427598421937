//! The dependency rules of ARCHITECTURE.md, checked on `cargo metadata`: dependencies point
//! down only, and drivers never depend on the engine, an adapter or another driver.

use std::collections::BTreeMap;

fn workspace_dependencies() -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(crate::common::repo_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let members: Vec<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null()) // normal dependencies only
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|n| members.contains(n))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn dependencies_point_down_only() {
    let deps = workspace_dependencies();
    let allowed = |package: &str| -> Option<&[&str]> {
        Some(match package {
            "execution-context" | "yaml-input" | "duckdb-parser" => &[],
            // Both read user YAML through yaml-input's size and depth limits.
            "component-spec" | "pipeline" => &["yaml-input"],
            "sessions" => &["execution-context"],
            // Serves kept sessions to SQL clients: beside the adapters, below the CLI.
            "pg-server" => &["sessions", "execution-context"],
            "driver-api" => &["execution-context", "duckdb-parser"],
            "engine" => &[
                "driver-api",
                "component-spec",
                "pipeline",
                "execution-context",
            ],
            // The one HTTP layer of the HTTP drivers: a library beside driver-api, no driver.
            "http-support" => &["driver-api", "execution-context"],
            // The one PostgreSQL connection layer (supabase, postgres): the same kind of library.
            "pg-support" => &["driver-api", "execution-context"],
            p if p.starts_with("driver-") => &[
                "driver-api",
                "execution-context",
                "http-support",
                "pg-support",
            ],
            p if p.starts_with("adapter-") => &[
                "engine",
                "sessions",
                "driver-api",
                "component-spec",
                "pipeline",
                "execution-context",
            ],
            // The binary: adapters, the registry of built-in drivers, and the libraries below;
            // never a driver itself (a driver reaches it only through drivers-builtin).
            "osiris-cli" => &[
                "adapter-local",
                "adapter-remote",
                "drivers-builtin",
                "engine",
                "pg-server",
                "sessions",
                "driver-api",
                "component-spec",
                "pipeline",
                "yaml-input",
                "execution-context",
            ],
            // Benchmarks drive whatever they measure.
            "osiris-bench" => return None,
            _ => &[],
        })
    };
    // The registry of built-in drivers depends on the driver API and on drivers only: a new
    // driver crate needs no rule here (docs/adding-a-driver.md).
    let allowed_dep = |package: &str, dep: &str| -> bool {
        match package {
            "drivers-builtin" => dep == "driver-api" || dep.starts_with("driver-"),
            _ => allowed(package).is_none_or(|allowed| allowed.contains(&dep)),
        }
    };
    assert!(
        ["engine", "driver-csv", "drivers-builtin", "osiris-cli"]
            .iter()
            .all(|p| deps.contains_key(*p)),
        "{deps:?}"
    );
    for (package, package_deps) in &deps {
        for dep in package_deps {
            assert!(
                allowed_dep(package, dep),
                "{package} must not depend on {dep} (allowed: {:?})",
                allowed(package)
            );
        }
    }
}
