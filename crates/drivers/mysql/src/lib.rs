//! MySQL / MariaDB in and out of the run database.
pub mod conn;
pub mod extractor;
pub mod types;
pub mod writer;
pub use extractor::MysqlExtractor;
pub use writer::MysqlWriter;
