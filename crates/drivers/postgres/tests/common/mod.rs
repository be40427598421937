//! Helpers for the tests against the real PostgreSQL on 127.0.0.1:5432 (user postgres, trust):
//! each test gets its own database, dropped at the end (also when the test fails).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use driver_api::testing::TestRun;
use pg_support::tokio_postgres::{Client, NoTls};
use serde_json::{Value as Json, json};

pub const HOST: &str = "127.0.0.1";
pub const PORT: u16 = 5432;
pub const USER: &str = "postgres";

/// A scratch database and a run directory.
pub struct Db {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub run: TestRun,
}

async fn client(db: &str) -> Client {
    let (client, connection) = pg_support::tokio_postgres::connect(
        &format!("host={HOST} port={PORT} user={USER} dbname={db}"),
        NoTls,
    )
    .await
    .expect("PostgreSQL runs on 127.0.0.1:5432 with trust auth (testing_env/setup.sh)");
    tokio::spawn(connection);
    client
}

impl Db {
    pub async fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "osiris_t_{tag}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_micros()
        );
        client("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        let base =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../testing_env/tmp");
        std::fs::create_dir_all(&base).unwrap();
        let dir = tempfile::tempdir_in(base).unwrap();
        let run = TestRun::new(dir.path());
        Self { name, dir, run }
    }

    pub async fn client(&self) -> Client {
        client(&self.name).await
    }

    /// Runs statements in the database.
    pub async fn exec(&self, sql: &str) {
        self.client()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// The first column of every row, as text (NULL as None).
    pub async fn strings(&self, sql: &str) -> Vec<Option<String>> {
        let rows = self
            .client()
            .await
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        rows.into_iter()
            .filter_map(|m| match m {
                pg_support::tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some(r.get(0).map(str::to_owned))
                }
                _ => None,
            })
            .collect()
    }

    /// A step config pointing at this database, with `extra` merged in.
    pub fn config(&self, extra: Json) -> Json {
        let mut config = json!({"host": HOST, "port": PORT, "database": self.name, "user": USER, "sslmode": "disable"});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        config
    }

    /// Column `name -> DuckDB type` of a run table, in order.
    pub fn duck_types(&self, table: &str) -> Vec<(String, String)> {
        let conn = self.run.connection();
        let mut stmt = conn
            .prepare("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position")
            .unwrap();
        stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = client("postgres")
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}
