//! Session fixtures and a server on a free loopback port.

use std::net::SocketAddr;
use std::path::Path;

use pg_server::{SecretString, ServerConfig};
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "s3cret-pw";
/// Oldest first; `orders` has 3, 4 and 5 rows.
pub const IDS: [&str; 3] = [
    "2026-11-21T00-00-01Z_01JOLD",
    "2026-11-21T00-00-02Z_01JMID",
    "2026-11-21T00-00-03Z_01JNEW",
];

fn make_session(root: &Path, n: usize) {
    add_session(root, IDS[n], n + 1, n + 3);
}

/// A finished session `id` started at second `second` whose `orders` has `rows` rows.
pub fn add_session(root: &Path, id: &str, second: usize, rows: usize) {
    let n = second - 1;
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let status = serde_json::json!({
        "status": "ok", "pipeline": "p", "started_at": format!("2026-11-21T00:00:0{}+00:00", n + 1),
        "duration_ms": 5, "steps_total": 1, "steps_completed": 1
    });
    std::fs::write(dir.join("status.json"), status.to_string()).unwrap();
    let conn = duckdb::Connection::open(dir.join("pipeline_data.duckdb")).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE orders AS SELECT i::BIGINT AS id, 'name-' || i AS name, i * 1.5::DOUBLE AS amount, \
         i % 2 = 0 AS paid, TIMESTAMP '2026-11-20 10:00:00' + INTERVAL (i) HOUR AS created_at \
         FROM range(1, {}) t(i)",
        rows + 1
    ))
    .unwrap();
}

pub struct Running {
    pub addr: SocketAddr,
    /// The sessions directory.
    pub root: std::path::PathBuf,
    _root: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Three finished sessions and a server over them seeing `attach_recent` of them attached.
pub async fn start(attach_recent: usize) -> Running {
    let root = tempfile::tempdir().unwrap();
    for n in 0..IDS.len() {
        make_session(root.path(), n);
    }
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        root.path().to_owned(),
        SecretString::new(PASSWORD),
    );
    config.attach_recent = attach_recent;
    let server = pg_server::bind(config).await.unwrap();
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));
    Running {
        addr,
        root: root.path().to_owned(),
        _root: root,
        shutdown,
    }
}

/// A tokio-postgres client of `server`, logged in with `password`.
pub async fn connect(server: &Running, password: &str) -> Result<Client, tokio_postgres::Error> {
    let config = format!(
        "host=127.0.0.1 port={} user=osiris password={password} dbname=osiris",
        server.addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}
