//! `osiris validate`.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use crate::EXIT_INPUT;
use crate::load::{Connect, LoadError, PipelineArgs, engine, load};
use crate::output::print_problems;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,

    /// Do not resolve connections (check the pipeline as `compile` does, without the
    /// connections file or its environment variables).
    #[arg(long)]
    no_connections: bool,
}

pub fn execute(args: ValidateArgs, json: bool) -> anyhow::Result<ExitCode> {
    let engine = engine()?;
    let file = args.pipeline.pipeline.display().to_string();
    let connect = if args.no_connections {
        Connect::Assume
    } else {
        Connect::Resolve
    };
    let (valid, problems, steps) = match load(&args.pipeline, &engine, connect) {
        Ok(loaded) => (true, loaded.warnings, loaded.prepared.plan.steps.len()),
        Err(LoadError::Unreadable(message)) => {
            if json {
                println!(
                    "{}",
                    json!({"valid": false, "file": file, "errors": [{"message": message}], "warnings": []})
                );
            } else {
                eprintln!("error: {message}");
            }
            return Ok(ExitCode::from(EXIT_INPUT));
        }
        Err(LoadError::Invalid(problems)) => (false, problems, 0),
    };
    if json {
        let errors: Vec<_> = problems.errors().collect();
        let warnings: Vec<_> = problems.warnings().collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "valid": valid,
                "file": file,
                "steps": steps,
                "errors": errors,
                "warnings": warnings,
            }))?
        );
    } else {
        print_problems(&file, &problems);
        if valid {
            println!("{file}: valid ({steps} steps)");
        } else {
            let n = problems.errors().count();
            eprintln!(
                "{file}: invalid ({n} error{})",
                if n == 1 { "" } else { "s" }
            );
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INPUT)
    })
}
