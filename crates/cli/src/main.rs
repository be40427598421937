//! `osiris`: run, validate and inspect OML pipelines.
//!
//! Exit codes: 0 success, 1 a step failed, 2 the input (pipeline, config, flags) or the
//! environment (sessions dir, session id) is unusable and nothing ran, 130 / 143 / 129 the run
//! was interrupted by SIGINT / SIGTERM / SIGHUP.

mod compile;
mod components;
mod connections;
mod load;
mod output;
mod run;
mod serve;
mod sessions;
mod validate;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code when the pipeline, its config or the command line is wrong.
pub const EXIT_INPUT: u8 = 2;

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
        Exit codes: 0 ok, 1 a step failed, 2 invalid pipeline or flags, 130 interrupted \
        (143 SIGTERM, 129 SIGHUP)."
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
    let cli = Cli::parse();
    // Inspection commands die quietly when their reader goes away (`osiris components show x |
    // head`), as Unix tools do. A run keeps SIGPIPE ignored and tolerates a closed stdout: the
    // pipeline must finish and record its status whoever stopped watching.
    if !matches!(
        cli.command,
        Command::Run(_) | Command::Serve(_) | Command::Worker(_)
    ) {
        sigpipe::reset();
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::execute(*args, cli.json),
        Command::Validate(args) => validate::execute(args, cli.json),
        Command::Compile(args) => compile::execute(args, cli.json),
        Command::Connections(command) => connections::execute(command, cli.json),
        Command::Sessions(args) => sessions::execute(args, cli.json),
        Command::Serve(args) => serve::execute(args),
        Command::Components(command) => components::execute(command, cli.json),
        Command::Worker(args) => worker::execute(args, cli.json),
    }
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
