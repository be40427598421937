//! `graphql.extractor`: one GraphQL query, page by page, into the step table.
//!
//! Each page is one POST of `{"query", "variables"}` through the shared
//! [`HttpClient`](http_support::HttpClient) (timeouts, retries on network errors, 429 and 5xx,
//! secret headers scrubbed). The response is parsed once: a non-empty `errors` list fails the
//! step with the GraphQL messages, the page info (relay) is read from the same response, and the
//! records at `data_path` go to a [`PageLoader`](http_support::PageLoader) that decodes them
//! with arrow-json and appends them to DuckDB while the next page is being fetched. Columns that
//! appear or change type between pages are merged by name; the table appears atomically.
#![warn(missing_docs)]

mod config;
mod extract;

pub use config::{AuthType, Config, GraphqlConnection, PaginationStyle};
pub use extract::GraphqlExtractor;
