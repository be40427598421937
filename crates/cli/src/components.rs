//! `osiris components list|show`.

use clap::Subcommand;
use pipeline::{Problem, Problems};
use serde_json::json;

use crate::load::engine;
use crate::outcome::Outcome;

#[derive(Debug, Subcommand)]
pub enum ComponentsCommand {
    /// List every component with its modes and whether this build can run it.
    List,
    /// Show a component's config fields, defaults, secrets and an example.
    Show {
        /// Component name, e.g. `filesystem.csv_extractor`.
        name: String,
    },
    /// Check a spec against the spec schema and its own consistency rules (examples valid,
    /// secret and connection fields declared, constraints on real fields).
    Validate {
        /// A built-in component name, or the path of a spec.yaml (or its directory).
        target: String,
    },
}

pub fn execute(command: ComponentsCommand, json: bool) -> anyhow::Result<Outcome> {
    let engine = engine()?;
    match command {
        ComponentsCommand::List => {
            let rows: Vec<_> = engine
                .specs()
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "version": s.version,
                        "title": s.title,
                        "modes": s.modes,
                        "runnable": engine.is_runnable(&s.name),
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let width = engine
                    .specs()
                    .iter()
                    .map(|s| s.name.len())
                    .max()
                    .unwrap_or(10);
                println!(
                    "{:<width$}  {:<22}  {:<9}  TITLE",
                    "COMPONENT", "MODES", "RUNNABLE"
                );
                for s in engine.specs().iter() {
                    println!(
                        "{:<width$}  {:<22}  {:<9}  {}",
                        s.name,
                        s.modes.join(","),
                        if engine.is_runnable(&s.name) {
                            "yes"
                        } else {
                            "no"
                        },
                        s.title.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(Outcome::ok())
        }
        ComponentsCommand::Validate { target } => {
            let path = std::path::Path::new(&target);
            let problems = if path.exists() {
                match component_spec::lint_file(path) {
                    Ok(problems) => problems,
                    Err(error) => vec![error.to_string()],
                }
            } else if let Some(spec) = engine.specs().get(&target) {
                spec.lint()
            } else {
                let message = format!("`{target}` is neither a spec file nor a known component");
                return Ok(Outcome::input(message));
            };
            if !problems.is_empty() {
                let n = problems.len();
                let message = format!("{n} problem{}", if n == 1 { "" } else { "s" });
                let problems = Problems(
                    problems
                        .into_iter()
                        .map(|p| Problem::error(None, p))
                        .collect(),
                );
                return Ok(Outcome::invalid(&target, problems, message));
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"ok": true, "valid": true, "target": target, "problems": []})
                    )?
                );
            } else {
                println!("{target}: valid");
            }
            Ok(Outcome::ok())
        }
        ComponentsCommand::Show { name } => {
            let Some(spec) = engine.specs().get(&name) else {
                let known = engine.specs().names();
                let hint = pipeline::did_you_mean(&name, known.iter().copied())
                    .map(|n| format!(" Did you mean `{n}`?"))
                    .unwrap_or_default();
                let message = format!(
                    "unknown component `{name}`.{hint} Known: {}",
                    known.join(", ")
                );
                return Ok(Outcome::input(message));
            };
            if json {
                let mut doc = spec.raw.clone();
                doc["runnable"] = engine.is_runnable(&spec.name).into();
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(Outcome::ok());
            }
            println!("{} {}", spec.name, spec.version);
            if let Some(title) = &spec.title {
                println!("{title}");
            }
            if let Some(description) = &spec.description {
                println!("\n{}", description.trim());
            }
            println!("\nModes: {}", spec.modes.join(", "));
            println!(
                "Runnable: {}",
                if engine.is_runnable(&spec.name) {
                    "yes"
                } else {
                    "no (no driver in this build)"
                }
            );
            println!("\nConfig:");
            for p in spec.properties() {
                let mut line = format!("  {}: {}", p.name, p.type_name);
                if p.required {
                    line.push_str(" (required)");
                }
                if let Some(default) = &p.default {
                    line.push_str(&format!(" = {default}"));
                }
                if let Some(allowed) = &p.allowed {
                    let values: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
                    line.push_str(&format!(" one of {}", values.join(", ")));
                }
                println!("{line}");
                if let Some(d) = &p.description {
                    println!("      {}", d.trim());
                }
            }
            println!(
                "\nSecrets: {}",
                if spec.secrets.is_empty() {
                    "none".to_owned()
                } else {
                    spec.secrets.join(", ")
                }
            );
            if let Some(example) = spec.examples.first() {
                println!(
                    "\nExample{}:",
                    example
                        .title
                        .as_ref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default()
                );
                let yaml = serde_yaml::to_string(&json!({"config": example.config}))?;
                for line in yaml.lines() {
                    println!("  {line}");
                }
            }
            Ok(Outcome::ok())
        }
    }
}
