//! `osiris compile`: a deterministic, secret-free compiled form of a pipeline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use crate::EXIT_INPUT;
use crate::load::{Connect, LoadError, PipelineArgs, engine, load};
use crate::output::{input_error, print_problems};

#[derive(Debug, Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,

    /// Output directory (default: build/pipelines/[<profile>/]<name>/<hash7>-<hash>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn execute(args: CompileArgs, json: bool) -> anyhow::Result<ExitCode> {
    let engine = engine()?;
    let file = args.pipeline.pipeline.display().to_string();
    let loaded = match load(&args.pipeline, &engine, Connect::Assume) {
        Ok(loaded) => loaded,
        Err(LoadError::Unreadable(message)) => return Ok(input_error(json, &message)),
        Err(LoadError::Invalid(problems)) => {
            if json {
                let errors: Vec<_> = problems.errors().collect();
                println!(
                    "{}",
                    json!({"status": "error", "message": "invalid pipeline", "errors": errors})
                );
            } else {
                print_problems(&file, &problems);
                eprintln!("{file}: not compiled: the pipeline is invalid");
            }
            return Ok(ExitCode::from(EXIT_INPUT));
        }
    };
    if loaded.from_manifest {
        let message = format!("{file} is already a compiled manifest");
        return Ok(input_error(json, &message));
    }
    if !json {
        print_problems(&file, &loaded.warnings);
    }
    let compiled = pipeline::compile::compile(
        &loaded.pipeline,
        &loaded.prepared.plan,
        &loaded.base_dir,
        &engine.registry_fingerprint(),
    );
    let out = args.out.unwrap_or_else(|| {
        let mut dir = PathBuf::from("build/pipelines");
        if let Some(profile) = &loaded.pipeline.profile {
            dir.push(profile);
        }
        dir.join(&compiled.slug).join(format!(
            "{}-{}",
            compiled.manifest_short(),
            compiled.manifest_hash
        ))
    });
    let manifest = compiled
        .write(&out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "status": "ok",
                "manifest_path": manifest.display().to_string(),
                "manifest_hash": compiled.manifest_hash,
                "manifest_short": compiled.manifest_short(),
                "pipeline_slug": compiled.slug,
                "profile": loaded.pipeline.profile,
                "steps": compiled.configs.len(),
            }))?
        );
    } else {
        println!(
            "Compiled {} ({} steps) -> {}",
            compiled.slug,
            compiled.configs.len(),
            manifest.display()
        );
        println!("Run it with: osiris run {}", manifest.display());
    }
    Ok(ExitCode::SUCCESS)
}
