//! Helpers for the tests against the real MariaDB on 127.0.0.1:3306 (root, no password): each
//! test gets its own database, dropped at the end (also when the test fails).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use driver_api::testing::TestRun;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};
use serde_json::{Value as Json, json};

pub const HOST: &str = "127.0.0.1";
pub const PORT: u16 = 3306;

/// A scratch database and a run directory.
pub struct Db {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub run: TestRun,
}

fn opts(db: Option<&str>) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname(HOST)
        .tcp_port(PORT)
        .prefer_socket(false)
        .user(Some("root"))
        .db_name(db)
        .init(vec!["SET time_zone = '+00:00'"])
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
        let mut conn = Conn::new(opts(None))
            .await
            .expect("MariaDB runs on 127.0.0.1:3306 (testing_env/setup.sh starts it)");
        conn.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .await
            .unwrap();
        let _ = conn.disconnect().await;
        let base =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../testing_env/tmp");
        std::fs::create_dir_all(&base).unwrap();
        let dir = tempfile::tempdir_in(base).unwrap();
        let run = TestRun::new(dir.path());
        Self { name, dir, run }
    }

    pub async fn conn(&self) -> Conn {
        Conn::new(opts(Some(&self.name))).await.unwrap()
    }

    /// Runs statements in the database.
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.conn().await;
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.disconnect().await;
    }

    /// Every row of a query, values as the text protocol gives them.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Value>> {
        let mut conn = self.conn().await;
        let rows: Vec<Row> = conn
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.disconnect().await;
        rows.into_iter().map(Row::unwrap).collect()
    }

    /// The first column of every row as text (NULL as None).
    pub async fn strings(&self, sql: &str) -> Vec<Option<String>> {
        self.rows(sql)
            .await
            .into_iter()
            .map(|r| match &r[0] {
                Value::NULL => None,
                Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                other => Some(format!("{other:?}")),
            })
            .collect()
    }

    /// A step config pointing at this database, with `extra` merged in.
    pub fn config(&self, extra: Json) -> Json {
        let mut config = json!({"host": HOST, "port": PORT, "database": self.name, "user": "root"});
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
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = Conn::new(opts(None)).await {
                    let _ = conn
                        .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                        .await;
                    let _ = conn.disconnect().await;
                }
            });
        })
        .join();
    }
}
