//! `osiris validate`.

use clap::Args;
use serde_json::json;

use crate::load::{Connect, PipelineArgs, engine, load};
use crate::outcome::Outcome;
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

pub fn execute(args: ValidateArgs, json: bool) -> anyhow::Result<Outcome> {
    let engine = engine()?;
    let file = args.pipeline.pipeline.display().to_string();
    let connect = if args.no_connections {
        Connect::Assume
    } else {
        Connect::Resolve
    };
    let (problems, steps) = match load(&args.pipeline, &engine, connect) {
        Ok(loaded) => (loaded.warnings, loaded.prepared.plan.steps.len()),
        Err(error) => return Ok(error.outcome(&file, "invalid")),
    };
    if json {
        let warnings: Vec<_> = problems.warnings().collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "ok": true,
                "valid": true,
                "file": file,
                "steps": steps,
                "errors": [],
                "warnings": warnings,
            }))?
        );
    } else {
        print_problems(&file, &problems);
        println!("{file}: valid ({steps} steps)");
    }
    Ok(Outcome::ok())
}
