//! Compiled pipelines: a deterministic `manifest.yaml` plus one `cfg/<step id>.json` per step,
//! with fingerprints, so that the same input always compiles to byte-identical files and a run
//! can start from the compiled form.
//!
//! Layout of a compiled directory:
//!
//! ```text
//! manifest.yaml        canonical YAML (keys sorted): pipeline {id, version, fingerprints},
//!                      steps [{id, component, mode, needs, cfg_path, cfg_fp}], meta {...}
//! cfg/<step id>.json   canonical compact JSON (keys sorted): {id, component, mode, needs, config}
//! ```
//!
//! Configs hold connection references (`@mysql.main`), never connection values: secrets are
//! resolved when the run starts. No timestamp is written, so compiling twice gives the same bytes.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{Pipeline, Plan, Problem, Problems, Step, StepMode};

/// Identifies the compiler in manifests.
pub const COMPILER: &str = concat!("osiris-rs/", env!("CARGO_PKG_VERSION"));
/// File name of a compiled manifest.
pub const MANIFEST_FILE: &str = "manifest.yaml";
/// Length of the short manifest hash used in directory names.
pub const SHORT_HASH_LEN: usize = 7;

/// What compiling produced, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// Pipeline slug (its name).
    pub slug: String,
    /// SHA-256 hex of the canonical manifest (without its own hash fields).
    pub manifest_hash: String,
    /// `manifest.yaml` text.
    pub manifest: String,
    /// `(relative path, contents)` of each step config file.
    pub configs: Vec<(String, String)>,
}

impl Compiled {
    /// The first characters of the manifest hash.
    pub fn manifest_short(&self) -> &str {
        &self.manifest_hash[..SHORT_HASH_LEN]
    }

    /// Writes the files under `dir` (created if missing). Returns the manifest path.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir.join("cfg"))?;
        for (path, text) in &self.configs {
            std::fs::write(dir.join(path), text)?;
        }
        let manifest = dir.join(MANIFEST_FILE);
        std::fs::write(&manifest, &self.manifest)?;
        Ok(manifest)
    }
}

/// `sha256:<hex>` of a value's canonical JSON.
pub fn fingerprint(value: &Value) -> String {
    format!("sha256:{}", sha256_hex(canonical_json(value).as_bytes()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keys sorted recursively, compact separators.
pub fn canonical_json(value: &Value) -> String {
    serde_json::to_string(&sorted(value)).expect("JSON always serializes")
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn step_cfg(step: &Step) -> Value {
    let mut cfg = json!({
        "id": step.id,
        "component": step.component,
        "mode": step.mode.as_str(),
        "needs": step.needs,
        "config": Value::Object(step.config.clone()),
    });
    // Only when named, so that pipelines without `inputs` compile to the same bytes as before.
    if !step.inputs.is_empty() {
        cfg["inputs"] = json!(step.inputs);
    }
    cfg
}

/// Compiles a validated plan. `source_dir` is where relative paths in configs resolve (the
/// pipeline file's directory); `registry_fp` identifies the components the plan was checked
/// against.
pub fn compile(pipeline: &Pipeline, plan: &Plan, source_dir: &Path, registry_fp: &str) -> Compiled {
    let oml = json!({
        "oml_version": pipeline.oml_version,
        "name": pipeline.name,
        "description": pipeline.description,
        "metadata": pipeline.metadata,
        "steps": pipeline.steps.iter().map(step_cfg).collect::<Vec<_>>(),
    });
    let params = Value::Object(
        pipeline
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );

    let mut configs = Vec::with_capacity(plan.steps.len());
    let mut steps = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let cfg = step_cfg(step);
        let path = format!("cfg/{}.json", step.id);
        steps.push(json!({
            "id": step.id,
            "component": step.component,
            "driver": step.component,
            "mode": step.mode.as_str(),
            "needs": step.needs,
            "cfg_path": path,
            "cfg_fp": fingerprint(&cfg),
        }));
        configs.push((path, canonical_json(&cfg) + "\n"));
    }

    let mut manifest = json!({
        "pipeline": {
            "id": pipeline.name,
            "version": pipeline.oml_version,
            "fingerprints": {
                "oml_fp": fingerprint(&oml),
                "params_fp": fingerprint(&params),
                "registry_fp": registry_fp,
                "compiler_fp": fingerprint(&Value::String(COMPILER.into())),
                "profile": pipeline.profile,
            },
        },
        "name": pipeline.name,
        "steps": steps,
        "meta": {
            "oml_version": pipeline.oml_version,
            "profile": pipeline.profile,
            "compiler": COMPILER,
            "source_dir": source_dir.display().to_string(),
        },
    });
    if let Some(description) = &pipeline.description {
        manifest["description"] = description.clone().into();
    }
    if let Some(metadata) = &pipeline.metadata {
        manifest["metadata"] = metadata.clone();
    }
    let manifest_hash = sha256_hex(canonical_json(&manifest).as_bytes());
    manifest["pipeline"]["fingerprints"]["manifest_fp"] = format!("sha256:{manifest_hash}").into();
    manifest["meta"]["manifest_hash"] = manifest_hash.clone().into();
    manifest["meta"]["manifest_short"] = manifest_hash[..SHORT_HASH_LEN].into();

    let yaml = serde_yaml::to_string(&sorted(&manifest)).expect("manifest serializes");
    Compiled {
        slug: pipeline.name.clone(),
        manifest_hash,
        manifest: yaml,
        configs,
    }
}

/// Whether a parsed YAML document is a compiled manifest (has `pipeline`, `steps` and `meta`)
/// rather than an OML pipeline.
pub fn is_manifest(doc: &Value) -> bool {
    ["pipeline", "steps", "meta"]
        .iter()
        .all(|k| doc.get(*k).is_some())
}

/// A compiled pipeline loaded back.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    /// The pipeline, steps in the manifest's (execution) order.
    pub pipeline: Pipeline,
    /// Where relative paths resolve (recorded at compile time).
    pub source_dir: PathBuf,
    /// The manifest hash.
    pub manifest_hash: String,
}

/// Loads `manifest.yaml` and its cfg files, verifying the fingerprints so that a hand-edited
/// or partly copied compile is refused instead of run.
pub fn load_manifest(path: &Path) -> Result<LoadedManifest, Problems> {
    let fail = |message: String| Problems(vec![Problem::error(None, message)]);
    let text = yaml_input::read_file(path).map_err(|e| fail(e.to_string()))?;
    let doc: Value = serde_yaml::from_str::<serde_yaml::Value>(&text)
        .map_err(|e| e.to_string())
        .and_then(|y| serde_json::to_value(y).map_err(|e| e.to_string()))
        .map_err(|e| fail(format!("{}: malformed manifest: {e}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let field = |v: &Value, key: &str| -> Result<String, Problems> {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| fail(format!("{}: `{key}` is missing", path.display())))
    };
    let meta = doc.get("meta").cloned().unwrap_or_default();
    let recorded = field(&meta, "manifest_hash")?;
    let mut unhashed = doc.clone();
    if let Some(m) = unhashed.get_mut("meta").and_then(Value::as_object_mut) {
        m.remove("manifest_hash");
        m.remove("manifest_short");
    }
    if let Some(f) = unhashed
        .pointer_mut("/pipeline/fingerprints")
        .and_then(Value::as_object_mut)
    {
        f.remove("manifest_fp");
    }
    if sha256_hex(canonical_json(&unhashed).as_bytes()) != recorded {
        return Err(fail(format!(
            "{} was changed after it was compiled (its hash does not match); compile the pipeline again",
            path.display()
        )));
    }

    let mut steps = Vec::new();
    for (index, entry) in doc["steps"].as_array().into_iter().flatten().enumerate() {
        let cfg_path = field(entry, "cfg_path")?;
        let cfg_text = std::fs::read_to_string(dir.join(&cfg_path)).map_err(|e| {
            fail(format!(
                "cannot read {}: {e}",
                dir.join(&cfg_path).display()
            ))
        })?;
        let cfg: Value = serde_json::from_str(&cfg_text)
            .map_err(|e| fail(format!("{}: {e}", dir.join(&cfg_path).display())))?;
        if Some(fingerprint(&cfg).as_str()) != entry.get("cfg_fp").and_then(Value::as_str) {
            return Err(fail(format!(
                "{} was changed after it was compiled (its fingerprint does not match); compile the pipeline again",
                dir.join(&cfg_path).display()
            )));
        }
        let mode = match cfg["mode"].as_str() {
            Some("read") => StepMode::Read,
            Some("write") => StepMode::Write,
            Some("transform") => StepMode::Transform,
            other => return Err(fail(format!("{cfg_path}: unknown mode {other:?}"))),
        };
        steps.push(Step {
            index,
            id: field(&cfg, "id")?,
            component: field(&cfg, "component")?,
            mode,
            needs: strings(&cfg["needs"]),
            inputs: strings(&cfg["inputs"]),
            config: cfg["config"].as_object().cloned().unwrap_or_else(Map::new),
        });
    }
    let pipeline = Pipeline {
        oml_version: field(&meta, "oml_version")?,
        name: field(&doc, "name")?,
        description: doc
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        metadata: doc.get("metadata").cloned(),
        steps,
        params: Default::default(),
        profile: meta
            .get("profile")
            .and_then(Value::as_str)
            .map(str::to_owned),
        incomplete: Default::default(),
    };
    Ok(LoadedManifest {
        pipeline,
        source_dir: PathBuf::from(field(&meta, "source_dir")?),
        manifest_hash: recorded,
    })
}

fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|n| {
            n.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParamInputs, parse_with};

    const OML: &str = r#"
oml_version: "0.1.0"
name: movies
params: {min_year: 2000}
steps:
  - id: load
    component: c.writer
    mode: write
    needs: [extract]
    config: {table: movies, connection: "@db.main"}
  - id: extract
    component: c.reader
    mode: read
    config: {query: "SELECT * FROM m WHERE y >= ${params.min_year}", zeta: 1, alpha: 2}
"#;

    fn compiled(params: &[(&str, &str)]) -> Compiled {
        let inputs = ParamInputs {
            cli: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ParamInputs::default()
        };
        let (pipeline, _) = parse_with(OML, &inputs).unwrap();
        let plan = pipeline.plan().unwrap();
        compile(&pipeline, &plan, Path::new("/src"), "sha256:reg")
    }

    #[test]
    fn compiling_twice_gives_identical_bytes() {
        assert_eq!(compiled(&[]), compiled(&[]));
        let c = compiled(&[]);
        assert_eq!(c.manifest_hash.len(), 64);
        assert!(
            c.manifest
                .contains(&format!("manifest_short: {}", c.manifest_short()))
        );
    }

    #[test]
    fn configs_are_canonical_and_params_change_fingerprints() {
        let c = compiled(&[]);
        assert_eq!(c.configs[0].0, "cfg/extract.json");
        assert_eq!(
            c.configs[0].1,
            "{\"component\":\"c.reader\",\"config\":{\"alpha\":2,\"query\":\"SELECT * FROM m WHERE y >= 2000\",\"zeta\":1},\"id\":\"extract\",\"mode\":\"read\",\"needs\":[]}\n"
        );
        let other = compiled(&[("min_year", "1990")]);
        assert_ne!(c.manifest_hash, other.manifest_hash);
    }

    #[test]
    fn manifest_keys_are_sorted() {
        let c = compiled(&[]);
        let top: Vec<&str> = c
            .manifest
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
            .collect();
        let mut sorted_top = top.clone();
        sorted_top.sort();
        assert_eq!(top, sorted_top);
    }

    #[test]
    fn manifest_loads_back_and_refuses_edits() {
        let dir = tempfile::tempdir().unwrap();
        let c = compiled(&[]);
        let path = c.write(dir.path()).unwrap();
        let loaded = load_manifest(&path).unwrap();
        let ids: Vec<&str> = loaded
            .pipeline
            .steps
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, ["extract", "load"]);
        assert_eq!(loaded.pipeline.steps[1].config["connection"], "@db.main");
        assert_eq!(loaded.source_dir, Path::new("/src"));
        assert!(is_manifest(&serde_yaml::from_str(&c.manifest).unwrap()));

        std::fs::write(
            dir.path().join("cfg/extract.json"),
            c.configs[0].1.replace("2000", "1"),
        )
        .unwrap();
        let err = load_manifest(&path).unwrap_err().to_string();
        assert!(
            err.contains("cfg/extract.json was changed after it was compiled"),
            "{err}"
        );
        std::fs::write(&path, c.manifest.replace("name: movies", "name: films")).unwrap();
        let err = load_manifest(&path).unwrap_err().to_string();
        assert!(
            err.contains("manifest.yaml was changed after it was compiled"),
            "{err}"
        );
    }
}
