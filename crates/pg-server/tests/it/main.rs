//! The server against real clients (tokio-postgres, psql) over real session directories.

mod common;
mod limits;
mod psql;
mod replay;
mod tokio_postgres_client;
