//! `osiris connections list|doctor|discover`.

use std::path::PathBuf;

use clap::Subcommand;
use execution_context::{MASK, is_secret_key};
use pipeline::connections::{ConnectionRef, Connections, variables};
use serde_json::{Map, Value, json};

use crate::load::engine;
use crate::outcome::Outcome;

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// List connections with secrets masked and which environment variables are set.
    List {
        /// The connections file (default: search $OSIRIS_HOME, the current dir, its parent).
        #[arg(long, env = "OSIRIS_CONNECTIONS", value_name = "FILE")]
        connections: Option<PathBuf>,
    },
    /// Check that connections work: ok / auth / permission / network / timeout / unknown, with latency.
    Doctor {
        /// One connection to check, `@family.alias` (default: all).
        connection: Option<String>,
        /// The connections file.
        #[arg(long, env = "OSIRIS_CONNECTIONS", value_name = "FILE")]
        connections: Option<PathBuf>,
    },
    /// List the tables a connection offers: columns with their source types, primary keys and
    /// row estimates.
    Discover {
        /// The connection, `@family.alias`.
        connection: String,
        /// The connections file.
        #[arg(long, env = "OSIRIS_CONNECTIONS", value_name = "FILE")]
        connections: Option<PathBuf>,
    },
}

/// The connections file; one that cannot be read or parsed is wrong input.
fn discover(explicit: Option<&std::path::Path>) -> Result<Connections, Outcome> {
    let cwd = std::env::current_dir()
        .map_err(|e| Outcome::input(format!("cannot read the current directory: {e}")))?;
    let home = std::env::var_os("OSIRIS_HOME").map(PathBuf::from);
    Connections::discover(explicit, home.as_deref(), &cwd)
        .map_err(|e| Outcome::input(e.to_string()))
}

pub fn execute(command: ConnectionsCommand, json: bool) -> anyhow::Result<Outcome> {
    let (file, command) = match command {
        ConnectionsCommand::List { connections } => (connections, Subject::List),
        ConnectionsCommand::Doctor {
            connection,
            connections,
        } => (connections, Subject::Doctor(connection)),
        ConnectionsCommand::Discover {
            connection,
            connections,
        } => (connections, Subject::Discover(connection)),
    };
    let connections = match discover(file.as_deref()) {
        Ok(connections) => connections,
        Err(outcome) => return Ok(outcome),
    };
    match command {
        Subject::List => list(&connections, json),
        Subject::Doctor(only) => doctor(&connections, only.as_deref(), json),
        Subject::Discover(reference) => discover_tables(&connections, &reference, json),
    }
}

/// What a `connections` command looks at, once its connections file is read.
enum Subject {
    List,
    Doctor(Option<String>),
    Discover(String),
}

/// A redactor holding a resolved connection's secrets, registered as a run registers them
/// (values of secret fields and of the spec's secret fields, URL credentials, Basic
/// `user:password` pairs, with their encoded forms), for anything a driver or a server echoes:
/// a 401 body may quote the `Authorization` header it got.
fn connection_redactor(
    engine: &engine::Engine,
    resolved: &pipeline::connections::ResolvedConnection,
) -> execution_context::Redactor {
    let family = resolved.reference.family.as_str();
    let spec_secrets: Vec<String> = engine
        .specs()
        .iter()
        .filter(|s| s.family() == family)
        .flat_map(|s| s.secret_fields())
        .collect();
    let redactor = execution_context::Redactor::default();
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    for (k, v) in &resolved.fields {
        if is_secret_key(k) || spec_secrets.iter().any(|f| f == k) {
            let mut found = Vec::new();
            strings(v, &mut found);
            found.iter().for_each(|s| redactor.add_secret(s));
        }
    }
    redactor.add_config_fields(&resolved.fields);
    redactor
}

fn discover_tables(
    connections: &Connections,
    reference: &str,
    json: bool,
) -> anyhow::Result<Outcome> {
    let engine = engine()?;
    let parsed = match ConnectionRef::parse(reference) {
        Ok(r) => r,
        Err(e) => return Ok(Outcome::input(e.to_string())),
    };
    let env = |name: &str| std::env::var(name).ok();
    let resolved = match connections.resolve(&parsed.family, Some(&parsed.alias), &env) {
        Ok(resolved) => resolved,
        Err(e) => return Ok(Outcome::input(e.to_string())),
    };
    let redactor = connection_redactor(&engine, &resolved);
    let runtime = tokio::runtime::Runtime::new()?;
    let (component, tables) = match runtime.block_on(engine.discover(&resolved)) {
        Ok(Some(found)) => found,
        Ok(None) => {
            let message = format!(
                "no driver in this build can discover `{}` connections",
                parsed.family
            );
            return Ok(Outcome::input(message));
        }
        Err(error) => {
            let message = redactor.redact(&error.to_string()).into_owned();
            return Ok(Outcome::failed(
                error.class(),
                format!("{reference}: {message}"),
            ));
        }
    };
    if json {
        let out = json!({"connection": reference, "component": component, "tables": tables});
        println!("{}", redactor.redact(&serde_json::to_string_pretty(&out)?));
        return Ok(Outcome::ok());
    }
    let mut text = format!(
        "{reference} ({component}): {} table{}\n",
        tables.len(),
        if tables.len() == 1 { "" } else { "s" }
    );
    for table in &tables {
        let mut facts = vec![table.kind.unwrap_or("table").to_owned()];
        if let Some(rows) = table.estimated_rows {
            facts.push(format!("~{} rows", crate::output::thousands(rows)));
        }
        if !table.primary_key.is_empty() {
            facts.push(format!("primary key ({})", table.primary_key.join(", ")));
        }
        text.push_str(&format!("  {}  {}\n", table.name, facts.join(" · ")));
        let width = table
            .columns
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0);
        for column in &table.columns {
            let null = match column.nullable {
                Some(false) => "  not null",
                _ => "",
            };
            text.push_str(&format!(
                "      {:<width$}  {}{null}\n",
                column.name, column.source_type
            ));
        }
    }
    print!("{}", redactor.redact(&text));
    Ok(Outcome::ok())
}

/// A field as shown: `${VAR}` references as written, secret literals masked.
fn shown(key: &str, value: &Value, secret_fields: &[String]) -> Value {
    let secret = is_secret_key(key) || secret_fields.iter().any(|f| f == key);
    match value {
        Value::String(s) if secret && variables(value).is_empty() && !s.is_empty() => MASK.into(),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if secret || is_secret_key(k) {
                            shown_secret(v)
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn shown_secret(value: &Value) -> Value {
    if variables(value).is_empty() {
        MASK.into()
    } else {
        value.clone()
    }
}

fn list(connections: &Connections, json: bool) -> anyhow::Result<Outcome> {
    let engine = engine()?;
    let mut rows = Vec::new();
    for (family, aliases) in connections.families() {
        let secret_fields: Vec<String> = engine
            .specs()
            .iter()
            .filter(|s| s.family() == family)
            .flat_map(|s| s.secret_fields())
            .collect();
        let default = connections.default_alias(family);
        for (alias, fields) in aliases {
            let mut env = Map::new();
            for name in variables(&Value::Object(fields.clone())) {
                env.insert(name.clone(), std::env::var_os(&name).is_some().into());
            }
            let shown_fields: Map<String, Value> = fields
                .iter()
                .filter(|(k, _)| k.as_str() != "default")
                .map(|(k, v)| (k.clone(), shown(k, v, &secret_fields)))
                .collect();
            rows.push(json!({
                "connection": format!("@{family}.{alias}"),
                "family": family,
                "alias": alias,
                "default": default == Some(alias.as_str()),
                "fields": shown_fields,
                "env": env,
            }));
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "file": connections.path().map(|p| p.display().to_string()),
                "connections": rows,
            }))?
        );
        return Ok(Outcome::ok());
    }
    match connections.path() {
        None => println!("No osiris_connections.yaml found."),
        Some(path) => println!("Connections in {}:", path.display()),
    }
    for row in &rows {
        println!(
            "\n  {}{}",
            row["connection"].as_str().unwrap_or_default(),
            if row["default"] == true {
                "  (default)"
            } else {
                ""
            }
        );
        for (key, value) in row["fields"].as_object().into_iter().flatten() {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("    {key}: {text}");
        }
        for (var, set) in row["env"].as_object().into_iter().flatten() {
            println!(
                "    ${{{var}}}: {}",
                if set == true { "set" } else { "NOT SET" }
            );
        }
    }
    Ok(Outcome::ok())
}

fn doctor(connections: &Connections, only: Option<&str>, json: bool) -> anyhow::Result<Outcome> {
    let engine = engine()?;
    let targets: Vec<(String, String)> = match only {
        Some(reference) => match ConnectionRef::parse(reference) {
            Ok(r) => vec![(r.family, r.alias)],
            Err(e) => return Ok(Outcome::input(e.to_string())),
        },
        None => connections
            .families()
            .iter()
            .flat_map(|(f, aliases)| aliases.keys().map(move |a| (f.clone(), a.clone())))
            .collect(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let env = |name: &str| std::env::var(name).ok();
    let mut results = Vec::new();
    let mut all_ok = true;
    for (family, alias) in targets {
        let reference = format!("@{family}.{alias}");
        let result = match connections.resolve(&family, Some(&alias), &env) {
            Err(error) => {
                // Unresolved: no values known, but a URL with credentials is still masked.
                let message = execution_context::Redactor::default()
                    .redact(&error.to_string())
                    .into_owned();
                json!({"connection": reference, "category": "config", "message": message})
            }
            Ok(resolved) => {
                let r = runtime.block_on(engine.doctor(&resolved));
                let mut value = serde_json::to_value(&r)?;
                value["connection"] = reference.clone().into();
                // Scrub anything a driver or server echoes back, in text and --json alike.
                let redactor = connection_redactor(&engine, &resolved);
                serde_json::from_str(&redactor.redact(&value.to_string()))?
            }
        };
        let category = result["category"].as_str().unwrap_or("unknown").to_owned();
        if category != "ok" && category != "skipped" {
            all_ok = false;
        }
        results.push(result);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        if results.is_empty() {
            println!("No connections to check.");
        }
        for r in &results {
            let latency = r["latency_ms"]
                .as_u64()
                .map(|ms| format!(" {ms}ms"))
                .unwrap_or_default();
            println!(
                "  {:<8} {}{latency}  {}",
                r["category"].as_str().unwrap_or_default(),
                r["connection"].as_str().unwrap_or_default(),
                r["message"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(Outcome::ok_if(all_ok))
}
