//! `osiris compile`: a deterministic, secret-free compiled form of a pipeline.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::load::{Connect, PipelineArgs, engine, load};
use crate::outcome::Outcome;
use crate::output::print_problems;

#[derive(Debug, Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,

    /// Output directory (default: build/pipelines/[<profile>/]<name>/<hash7>-<hash>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn execute(args: CompileArgs, json: bool) -> anyhow::Result<Outcome> {
    let engine = engine()?;
    let file = args.pipeline.pipeline.display().to_string();
    let loaded = match load(&args.pipeline, &engine, Connect::Assume) {
        Ok(loaded) => loaded,
        Err(error) => return Ok(error.outcome(&file, "not compiled: the pipeline is invalid")),
    };
    if loaded.from_manifest {
        let message = format!("{file} is already a compiled manifest");
        return Ok(Outcome::input(message).in_file(&file));
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
    let manifest = match compiled.write(&out) {
        Ok(manifest) => manifest,
        Err(e) => {
            return Ok(Outcome::input(format!(
                "cannot write {}: {e}",
                out.display()
            )));
        }
    };
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
    Ok(Outcome::ok())
}
