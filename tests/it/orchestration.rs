//! Running under orchestrators (issue 18, docs/orchestration.md): the Dagster integration
//! (`integrations/dagster`, its pytest suite on real Dagster, this binary and MariaDB), the
//! Kubernetes manifests against the API schema, and the container image's file list (the
//! binary runs in a chroot holding only what `deploy/kubernetes/rootfs.sh` copies).
//!
//! The Python side runs in the venv `testing_env/setup.sh` installs from
//! `testing_env/requirements-dagster.txt`; a missing venv fails these tests, never skips them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Project, ScratchMariaDb, repo_root};

/// The Python of the Dagster venv; panics with what to run when it is missing.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("OSIRIS_DAGSTER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("osiris-rs/venv-dagster")
        });
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no Dagster venv at {}: run `bash testing_env/setup.sh` (the README's test command does)",
        venv.display()
    );
    python
}

fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn dagster_assets_materialize_replay_fail_and_run_in_parallel_on_real_dagster() {
    let python = venv_python();
    let project = Project::new();
    let db = ScratchMariaDb::new("osiris_dagster");
    db.query(&std::fs::read_to_string(repo_root().join("examples/mysql/shop.sql")).unwrap());

    // Installable with pip from the repository path: install a copy (the build writes into its
    // source tree) and test the installed package, not the source directory.
    let source = project.path().join("src");
    copy_dir(&repo_root().join("integrations/dagster"), &source);
    let site = project.path().join("site");
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--target",
        ])
        .arg(&site)
        .arg(&source)
        .output()
        .unwrap();
    assert!(installed.status.success(), "{}", output_text(&installed));
    assert!(site.join("dagster_osiris/__init__.py").is_file());

    let ran = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--basetemp",
        ])
        .arg(project.path().join("pytest"))
        .arg(source.join("tests"))
        .current_dir(project.path())
        .env("PYTHONPATH", &site)
        .env("OSIRIS_BIN", env!("CARGO_BIN_EXE_osiris"))
        .env("OSIRIS_REPO", repo_root())
        .env("MYSQL_DATABASE", &db.0)
        .env("TMPDIR", project.tmp_dir())
        .env_remove("OSIRIS_SESSIONS_DIR")
        .env_remove("OSIRIS_CONNECTIONS")
        .env_remove("OSIRIS_HOME")
        .output()
        .unwrap();
    let text = output_text(&ran);
    assert!(ran.status.success(), "pytest failed:\n{text}");
    let summary = text
        .lines()
        .rev()
        .find(|l| l.contains(" passed"))
        .unwrap_or("");
    assert!(
        summary.contains("6 passed") && !summary.contains("skipped") && !summary.contains("error"),
        "{text}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" || name == "build" || name.to_string_lossy().ends_with(".egg-info")
        {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(name));
        } else {
            std::fs::copy(entry.path(), to.join(name)).unwrap();
        }
    }
}

#[test]
fn kubernetes_manifests_validate_against_the_api_schema_and_a_typo_does_not() {
    let python = venv_python();
    let validate = repo_root().join("deploy/kubernetes/validate.py");
    let ok = Command::new(&python).arg(&validate).output().unwrap();
    let text = output_text(&ok);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("5 files, 0 problems"), "{text}");

    // The check itself catches a misspelt field and a value of the wrong type.
    let project = Project::new();
    let job = std::fs::read_to_string(repo_root().join("deploy/kubernetes/job.yaml")).unwrap();
    let bad = job.replace("backoffLimit: 2", "backofLimit: 2").replace(
        "terminationGracePeriodSeconds: 60",
        "terminationGracePeriodSeconds: soon",
    );
    let file = project.write("job.yaml", bad);
    let refused = Command::new(&python)
        .arg(&validate)
        .arg(&file)
        .output()
        .unwrap();
    let text = output_text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Job osiris-run: spec.backofLimit: Extra inputs are not permitted"),
        "{text}"
    );
    assert!(
        text.contains("spec.template.spec.terminationGracePeriodSeconds"),
        "{text}"
    );

    // The Job keeps secrets off the command line: the password comes from the Secret as an
    // environment variable, and the manifests hold no literal value of it outside the Secret.
    assert!(job.contains("secretKeyRef:"), "{job}");
    assert!(!job.contains("change-me"), "{job}");
}

/// `chroot DIR` as root, `unshare -r chroot DIR` otherwise.
fn chroot(root: &Path) -> Command {
    let uid = Command::new("id").arg("-u").output().unwrap();
    let mut command = if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        Command::new("chroot")
    } else {
        let mut c = Command::new("unshare");
        c.args(["-r", "chroot"]);
        c
    };
    command.arg(root);
    // Only what the image sets (deploy/kubernetes/Dockerfile); PATH finds chroot/unshare.
    command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LD_LIBRARY_PATH", "/usr/local/lib")
        .env("HOME", "/work")
        .env("TMPDIR", "/tmp");
    command
}

#[test]
fn the_image_file_list_runs_osiris_in_an_empty_root() {
    let project = Project::new();
    let root = project.path().join("rootfs");
    let duckdb = std::env::var("DUCKDB_LIB_DIR")
        .expect("DUCKDB_LIB_DIR is set by scripts/dev-env.sh (the README's test command)");
    let built = Command::new("sh")
        .arg(repo_root().join("deploy/kubernetes/rootfs.sh"))
        .arg(env!("CARGO_BIN_EXE_osiris"))
        .arg(&root)
        .env("DUCKDB_LIB_DIR", &duckdb)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", output_text(&built));
    // Nothing of the host: no shell, no ld.so.cache, no DuckDB cache directory.
    assert!(!root.join("bin/sh").exists() && !root.join("etc/ld.so.cache").exists());
    assert!(!root.join(duckdb.trim_start_matches('/')).exists());

    let version = chroot(&root)
        .args(["/usr/local/bin/osiris", "--version"])
        .output()
        .unwrap();
    assert!(version.status.success(), "{}", output_text(&version));
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("osiris "),
        "{}",
        output_text(&version)
    );

    // A tiny pipeline (CSV -> DuckDB SQL -> CSV) gives the same file as on the host.
    let example = repo_root().join("examples/orders");
    for (from, to) in [
        ("pipeline.yaml", "pipeline.yaml"),
        ("data/orders.csv", "data/orders.csv"),
    ] {
        let target = root.join("work").join(to);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(example.join(from), target).unwrap();
    }
    let ran = chroot(&root)
        .args([
            "/usr/local/bin/osiris",
            "run",
            "/work/pipeline.yaml",
            "--json",
            "--sessions-dir",
            "/work/sessions",
        ])
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", output_text(&ran));
    let report: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(report["steps_completed"], 3, "{report}");

    let host = crate::common::example_project();
    let on_host = host.osiris(&["run", "pipeline.yaml"]);
    assert_eq!(on_host.code, 0, "{}", on_host.all());
    assert_eq!(
        std::fs::read(root.join("work/output/revenue_by_customer.csv")).unwrap(),
        host.read("output/revenue_by_customer.csv")
    );
}
