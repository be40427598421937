//! Loading a pipeline (OML or compiled manifest), its parameters and its connections, then the
//! engine's one validation pass. Shared by `run`, `validate` and `compile`, so all three apply
//! the same checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use engine::{ConnectionMode, Engine, PreparedPlan};
use pipeline::compile::{is_manifest, load_manifest};
use pipeline::connections::Connections;
use pipeline::{ParamInputs, ParseOptions, Pipeline, Problem, Problems};

use crate::outcome::Outcome;

/// The engine of this build: built-in specs and drivers.
pub fn engine() -> anyhow::Result<Arc<Engine>> {
    let specs = component_spec::SpecRegistry::builtin().context("loading component specs")?;
    Ok(Arc::new(Engine::new(
        drivers_builtin::builtin_registry(),
        specs,
    )))
}

/// How this process's DuckDB databases are set up (`osiris run`, `osiris worker`; ADR 0040).
#[derive(Debug, Args)]
pub struct DuckDbArgs {
    /// The most memory DuckDB may use for a run database's buffers and the intermediate
    /// results of its queries (e.g. 512MB, 2GiB): beyond it DuckDB spills to the session's
    /// directory, or fails a query that cannot spill. Default: DuckDB's own, 80% of the
    /// machine's memory (or of the container's limit); an empty value means the default too.
    /// A remote worker takes its own.
    #[arg(long, env = "OSIRIS_MEMORY_LIMIT", value_name = "SIZE")]
    memory_limit: Option<MemoryLimitArg>,
}

/// `--memory-limit`: a size, or nothing (`OSIRIS_MEMORY_LIMIT=` keeps DuckDB's default, as an
/// unset variable does).
#[derive(Debug, Clone)]
struct MemoryLimitArg(Option<execution_context::MemoryLimit>);

impl std::str::FromStr for MemoryLimitArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Ok(Self(None));
        }
        text.parse().map(|limit| Self(Some(limit)))
    }
}

impl DuckDbArgs {
    /// Applies the settings to every DuckDB database this process opens from now on.
    pub fn apply(&self) {
        if let Some(MemoryLimitArg(Some(limit))) = &self.memory_limit {
            execution_context::set_memory_limit(limit.clone());
        }
    }
}

/// Loads `.env` files into the environment without overriding variables already set:
/// `$OSIRIS_HOME/.env`, then `./.env`.
pub fn load_dotenv() {
    let mut files = Vec::new();
    if let Some(home) = std::env::var_os("OSIRIS_HOME") {
        files.push(PathBuf::from(home).join(".env"));
    }
    files.push(PathBuf::from(".env"));
    for file in files {
        if file.is_file()
            && let Err(error) = dotenvy::from_path(&file)
        {
            eprintln!("warning: cannot read {}: {error}", file.display());
        }
    }
}

/// Arguments shared by every command that reads a pipeline.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// The pipeline: an OML v0.1.0 YAML file, or a compiled manifest.yaml.
    pub pipeline: PathBuf,

    /// Set a parameter (`${params.NAME}`), overriding defaults, OSIRIS_PARAM_<NAME> and the
    /// profile. Repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,

    /// Use the parameters of `profiles.<PROFILE>` of the pipeline.
    #[arg(long, short = 'p', env = "OSIRIS_PROFILE")]
    pub profile: Option<String>,

    /// The connections file (default: the first osiris_connections.yaml in $OSIRIS_HOME, the
    /// current directory or its parent).
    #[arg(long, env = "OSIRIS_CONNECTIONS", value_name = "FILE")]
    pub connections: Option<PathBuf>,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// How connections are handled while loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// Resolve them (validate, run).
    Resolve,
    /// Do not: compile output must not depend on them.
    Assume,
}

/// A pipeline that passed every check.
pub struct Loaded {
    pub pipeline: Pipeline,
    pub prepared: PreparedPlan,
    pub warnings: Problems,
    pub base_dir: PathBuf,
    pub from_manifest: bool,
}

/// Why a pipeline cannot run.
pub enum LoadError {
    /// The file cannot be read.
    Unreadable(String),
    /// The pipeline has problems (errors and warnings, all of them).
    Invalid(Problems),
}

impl LoadError {
    /// The error a command ends with (exit 2): the problems, summed up as `<verdict> (<n>
    /// errors)`, e.g. "not run: the pipeline is invalid (2 errors)".
    pub fn outcome(self, file: &str, verdict: &str) -> Outcome {
        match self {
            Self::Unreadable(message) => Outcome::input(message).in_file(file),
            Self::Invalid(problems) => {
                let n = problems.errors().count();
                let message = format!("{verdict} ({n} error{})", if n == 1 { "" } else { "s" });
                Outcome::invalid(file, problems, message)
            }
        }
    }
}

/// Reads, parses and validates a pipeline.
pub fn load(args: &PipelineArgs, engine: &Engine, connect: Connect) -> Result<Loaded, LoadError> {
    let path = &args.pipeline;
    // Size and nesting limits before any YAML parser sees the text.
    let text = yaml_input::read_file(path).map_err(|e| match e {
        yaml_input::Error::Read { source, .. } => {
            LoadError::Unreadable(format!("cannot read pipeline {}: {source}", path.display()))
        }
        other => LoadError::Unreadable(other.to_string()),
    })?;
    let as_json: Option<serde_json::Value> = serde_yaml::from_str::<serde_yaml::Value>(&text)
        .ok()
        .and_then(|y| serde_json::to_value(y).ok());

    let (pipeline, mut problems, base_dir, from_manifest) = if as_json
        .as_ref()
        .is_some_and(is_manifest)
    {
        let loaded = load_manifest(path).map_err(LoadError::Invalid)?;
        let mut problems = Problems::default();
        if !args.params.is_empty() || args.profile.is_some() {
            problems.push(
                Problem::error(
                    Some("params"),
                    "--param and --profile have no effect on a compiled manifest; parameters were fixed at compile time",
                )
                .warning(),
            );
        }
        (Some(loaded.pipeline), problems, loaded.source_dir, true)
    } else {
        let default_mode = |component: &str| engine.default_mode(component);
        let options = ParseOptions {
            params: ParamInputs::from_process(args.profile.clone(), args.params.clone()),
            file_stem: path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned()),
            default_mode: Some(&default_mode),
        };
        let (pipeline, problems) = pipeline::parse_document(&text, &options);
        (pipeline, problems, pipeline_dir(path), false)
    };
    let Some(pipeline) = pipeline else {
        return Err(LoadError::Invalid(problems));
    };

    let connections = match connect {
        Connect::Assume => None,
        Connect::Resolve => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            let home = std::env::var_os("OSIRIS_HOME").map(PathBuf::from);
            match Connections::discover(args.connections.as_deref(), home.as_deref(), &cwd) {
                Ok(c) => {
                    for warning in c.warnings() {
                        problems.push(Problem::error(Some("connections"), warning).warning());
                    }
                    Some(c)
                }
                Err(e) => {
                    problems.push(Problem::error(Some("connections"), e.to_string()));
                    return Err(LoadError::Invalid(problems.locate(Some(&pipeline))));
                }
            }
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    let mode = match &connections {
        Some(connections) => ConnectionMode::Resolve {
            connections,
            env: &env,
        },
        None => ConnectionMode::Assume,
    };
    let (mut prepared, more) = engine.prepare(&pipeline, &mode);
    problems.0.extend(more.0);
    if let (Some(prepared), false) = (&mut prepared, from_manifest) {
        // Errors inside a multi-line SQL value then name the pipeline file's line.
        let file = path.display().to_string();
        for step in &mut prepared.steps {
            step.source = pipeline::SourceLines::locate(&file, &text, step.step.index, &["query"]);
        }
    }
    let problems = problems.locate(Some(&pipeline));
    match prepared {
        Some(prepared) if !problems.has_errors() => Ok(Loaded {
            pipeline,
            prepared,
            warnings: problems,
            base_dir,
            from_manifest,
        }),
        _ => Err(LoadError::Invalid(problems)),
    }
}

fn pipeline_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::path::absolute(&dir).unwrap_or(dir)
}
