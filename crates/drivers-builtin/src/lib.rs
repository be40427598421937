//! The drivers compiled into this build, one feature-gated line each. The registry is a value
//! handed to the engine; there is no global registration.
#![warn(missing_docs)]

use driver_api::DriverRegistry;

/// A registry holding every driver enabled in this build.
pub fn builtin_registry() -> DriverRegistry {
    #[allow(unused_mut)] // no driver feature enabled: nothing is registered
    let mut registry = DriverRegistry::new();
    #[cfg(feature = "duckdb")]
    registry.register(driver_duckdb::DuckDbProcessor);
    #[cfg(feature = "csv")]
    registry
        .register(driver_csv::CsvExtractor)
        .register(driver_csv::CsvWriter);
    #[cfg(feature = "posthog")]
    registry.register(driver_posthog::PostHogExtractor);
    #[cfg(feature = "graphql")]
    registry.register(driver_graphql::GraphqlExtractor);
    #[cfg(feature = "mysql")]
    registry
        .register(driver_mysql::MysqlExtractor)
        .register(driver_mysql::MysqlWriter);
    #[cfg(feature = "supabase")]
    registry
        .register(driver_supabase::SupabaseExtractor)
        .register(driver_supabase::SupabaseWriter);
    registry
}
