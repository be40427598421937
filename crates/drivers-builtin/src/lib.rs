//! The drivers compiled into this build, one registration line each (and one dependency line
//! each in Cargo.toml). The registry is a value handed to the engine; there is no global
//! registration.
#![warn(missing_docs)]

use driver_api::DriverRegistry;

/// A registry holding every built-in driver.
pub fn builtin_registry() -> DriverRegistry {
    let mut registry = DriverRegistry::new();
    registry.register(driver_duckdb::DuckDbProcessor);
    registry.register(driver_csv::CsvExtractor);
    registry.register(driver_csv::CsvWriter);
    registry.register(driver_csv::ParquetExtractor);
    registry.register(driver_csv::ParquetWriter);
    registry.register(driver_csv::JsonExtractor);
    registry.register(driver_csv::JsonWriter);
    registry.register(driver_posthog::PostHogExtractor);
    registry.register(driver_graphql::GraphqlExtractor);
    registry.register(driver_mysql::MysqlExtractor);
    registry.register(driver_mysql::MysqlWriter);
    registry.register(driver_postgres::PostgresExtractor);
    registry.register(driver_postgres::PostgresWriter);
    registry.register(driver_supabase::SupabaseExtractor);
    registry.register(driver_supabase::SupabaseWriter);
    registry
}
