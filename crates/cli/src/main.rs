//! `osiris`: run, validate and inspect OML pipelines.
//!
//! Every command ends in one [`Outcome`](outcome::Outcome), which gives the exit code (the
//! table is [`engine::exit`]): 0 success, 1 a step failed, 2 the input (pipeline, config,
//! flags) or the environment (sessions dir, session id) is unusable and nothing ran, 70 a bug
//! in osiris, 130 / 143 / 129 the run was interrupted by SIGINT / SIGTERM / SIGHUP. With
//! `--json` every error prints one JSON shape (docs/cli-json.md).

mod compile;
mod components;
mod connections;
mod load;
mod outcome;
mod output;
mod run;
mod serve;
mod sessions;
mod validate;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::outcome::Outcome;

#[derive(Debug, Parser)]
#[command(
    name = "osiris",
    version,
    about = "Run OML pipelines: extract, transform with DuckDB SQL, write.",
    long_about = "Run OML pipelines: extract, transform with DuckDB SQL, write.\n\n\
        Every run gets a session directory (.osiris_sessions/<session id>/) with \
        pipeline_data.duckdb holding one table per step, named after the step id. The file is \
        kept: query any intermediate result after the run with DuckDB.",
    after_help = "Examples:\n  \
        osiris validate examples/orders/pipeline.yaml\n  \
        osiris run examples/orders/pipeline.yaml --param min_amount=50\n  \
        osiris compile examples/orders/pipeline.yaml --out build/orders\n  \
        osiris run build/orders/manifest.yaml\n  \
        osiris connections list\n  \
        osiris components list\n  \
        osiris components show filesystem.csv_extractor\n\n\
        Exit codes: 0 ok, 1 a step failed, 2 invalid pipeline or flags, 70 a bug in osiris, \
        130 interrupted (143 SIGTERM, 129 SIGHUP)."
)]
struct Cli {
    /// Print machine-readable JSON on stdout instead of human output.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline and keep its session (tables, events, metrics, status).
    Run(Box<run::RunArgs>),
    /// Check a pipeline without running it; reports every problem at once.
    Validate(validate::ValidateArgs),
    /// Compile a pipeline into a deterministic manifest plus one config file per step.
    Compile(compile::CompileArgs),
    /// List connections (secrets masked) or check that they work.
    #[command(subcommand)]
    Connections(connections::ConnectionsCommand),
    /// Browse, query, compare and clean up kept runs.
    Sessions(sessions::SessionsArgs),
    /// Serve kept sessions to SQL clients over the PostgreSQL wire protocol (read-only).
    Serve(serve::ServeArgs),
    /// List or describe the components this build knows.
    #[command(subcommand)]
    Components(components::ComponentsCommand),
    /// Run steps for `osiris run --target remote` hosts (over stdio or TCP).
    Worker(worker::WorkerArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OSIRIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    load::load_dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    // Inspection commands die quietly when their reader goes away (`osiris components show x |
    // head`), as Unix tools do. A run keeps SIGPIPE ignored and tolerates a closed stdout: the
    // pipeline must finish and record its status whoever stopped watching.
    if !matches!(
        cli.command,
        Command::Run(_) | Command::Serve(_) | Command::Worker(_)
    ) {
        sigpipe::reset();
    }
    let json = cli.json;
    // An error no command expected, or a panic, is a bug: exit 70, never 1 or 2.
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli))) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => Outcome::internal(error_chain(&error)),
        Err(panic) => Outcome::internal(panic_message(panic.as_ref())),
    };
    outcome.exit(json)
}

/// A command line clap cannot parse: clap's own message and exit code 2, or with `--json`
/// anywhere on the line, the one JSON error shape. Help and version print as usual.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    if !json
        || matches!(
            error.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        )
    {
        error.exit();
    }
    // clap's message without its usage and help lines, on one line.
    let text = error.render().to_string();
    let message = text
        .lines()
        .take_while(|line| !line.starts_with("Usage:"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned();
    Outcome::input(message).exit(true)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".to_owned());
    format!("panic: {text}")
}

/// The error and its causes, `: `-separated like `{:#}`, leaving out a cause whose text the
/// message already contains (library errors often print their source themselves: `cannot
/// create X: Permission denied` must not end in a second `: Permission denied`).
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    debug_fault()?;
    match cli.command {
        Command::Run(args) => run::execute(*args, cli.json),
        Command::Validate(args) => validate::execute(args, cli.json),
        Command::Compile(args) => compile::execute(args, cli.json),
        Command::Connections(command) => connections::execute(command, cli.json),
        Command::Sessions(args) => sessions::execute(args, cli.json),
        Command::Serve(args) => serve::execute(args),
        Command::Components(command) => components::execute(command, cli.json),
        Command::Worker(args) => worker::execute(args),
    }
}

/// Debug builds only: `OSIRIS_DEBUG_FAULT=error|panic` makes every command fail as a bug would,
/// so the tests can check that an internal error exits 70 with the JSON error shape.
fn debug_fault() -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        match std::env::var("OSIRIS_DEBUG_FAULT").as_deref() {
            Ok("error") => anyhow::bail!("fault injected by OSIRIS_DEBUG_FAULT"),
            Ok("panic") => panic!("fault injected by OSIRIS_DEBUG_FAULT"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_that_prints_its_cause_does_not_print_it_twice() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let error = anyhow::Error::new(::sessions::Error::Io {
            action: "cannot create",
            path: "/x".into(),
            source: io,
        });
        assert_eq!(error_chain(&error), "cannot create /x: Permission denied");
        let layered = anyhow::anyhow!("outer").context("context");
        assert_eq!(error_chain(&layered), "context: outer");
    }
}
