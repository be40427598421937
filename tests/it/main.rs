//! End-to-end tests: the real `osiris` binary on fixture pipelines, checked through its exit
//! code, its output files (byte for byte) and the step tables left in `pipeline_data.duckdb`.

mod bad_input;
mod cli_json;
mod common;
mod compat;
mod compile;
mod components;
mod connections;
mod files;
mod graphql;
mod hostile;
mod hostile_sql;
mod incremental;
mod layering;
mod lazy_sources;
mod mysql;
mod orchestration;
mod osiris_compat;
mod parallel;
mod pg_clients;
mod postgres;
mod posthog;
mod remote;
mod run;
mod sessions;
mod supabase;
