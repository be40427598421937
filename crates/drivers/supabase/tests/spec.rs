//! The configs of both drivers match their spec.yaml.

#[test]
fn writer_config_matches_its_spec() {
    driver_api::testing::assert_spec_matches::<driver_supabase::SupabaseWriter>();
}

#[test]
fn extractor_config_matches_its_spec() {
    driver_api::testing::assert_spec_matches::<driver_supabase::SupabaseExtractor>();
}
