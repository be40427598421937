//! OML v0.1.0 pipelines: parsing, structural validation and the execution plan.
//!
//! Parsing collects every problem of a document at once (each naming its step and key), so a
//! pipeline author fixes them in one round. Component-level checks (does the component exist,
//! is its config valid) need the registries and live in the engine.
#![warn(missing_docs)]

pub mod compile;
pub mod connections;
mod params;
mod position;
pub mod sql;

pub use params::{ENV_PREFIX as PARAM_ENV_PREFIX, ParamInputs};
pub use position::{ScalarStyle, SourceLines, ValuePosition, config_value_position};
mod dag;
mod model;
mod parse;
mod problems;

pub use dag::execution_order;
pub use model::{Pipeline, Plan, Step, StepMode};
pub use parse::{
    DefaultMode, ParseOptions, did_you_mean, kind_mode, parse, parse_document, parse_lenient,
    parse_with,
};
pub use problems::{Problem, Problems, Severity};

/// The OML version this runtime implements.
pub const OML_VERSION: &str = "0.1.0";

#[cfg(test)]
mod tests;
