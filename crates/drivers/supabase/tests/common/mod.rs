//! A real PostgREST 12 over the real PostgreSQL on 127.0.0.1:5432, per test: its own database
//! (dropped at the end), its own PostgREST process on a free port, Supabase-like roles (created
//! by testing_env/setup.sh) and JWTs signed here with the test secret (HS256).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const SECRET: &str = "osiris-test-jwt-secret-at-least-32-characters-long";

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn postgrest_binary() -> PathBuf {
    let path = std::env::var_os("OSIRIS_POSTGREST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache")
                });
            cache.join("osiris-rs/postgrest-12.0.2/postgrest")
        });
    assert!(
        path.exists(),
        "PostgREST is missing at {}: run testing_env/setup.sh",
        path.display()
    );
    path
}

pub struct PostgRest {
    pub db: String,
    pub port: u16,
    pub max_rows: Option<u32>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn admin_sql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs (PostgreSQL client; testing_env/setup.sh installs it)");
    assert!(
        out.status.success(),
        "psql failed ({sql}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PostgRest {
    /// A fresh database with Supabase-like grants and a PostgREST serving its `public` and
    /// `sales` schemas.
    pub async fn start(max_rows: Option<u32>) -> Self {
        let db = format!(
            "osiris_sb_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        admin_sql(&format!("CREATE DATABASE {db}"));
        let client = Self::connect_db(&db).await;
        client
            .batch_execute(
                "CREATE SCHEMA sales;
                 GRANT USAGE ON SCHEMA public, sales TO anon, authenticated, service_role;
                 ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
                 ALTER DEFAULT PRIVILEGES IN SCHEMA sales GRANT ALL ON TABLES TO anon, authenticated, service_role;",
            )
            .await
            .expect("grants");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut me = Self {
            db,
            port: free_port(),
            max_rows,
            child: None,
            dir,
        };
        me.spawn().await;
        me
    }

    async fn connect_db(db: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port=5432 user=postgres dbname={db}"),
            tokio_postgres::NoTls,
        )
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (run testing_env/setup.sh)");
        tokio::spawn(conn);
        client
    }

    /// A direct connection to the test database, as postgres.
    pub async fn sql(&self) -> tokio_postgres::Client {
        Self::connect_db(&self.db).await
    }

    pub fn dsn(&self) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:5432/{}?sslmode=disable",
            self.db
        )
    }

    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn service_key(&self) -> String {
        jwt("service_role", SECRET)
    }

    pub fn anon_key(&self) -> String {
        jwt("anon", SECRET)
    }

    async fn spawn(&mut self) {
        let config = self.dir.path().join("postgrest.conf");
        let mut text = format!(
            "db-uri = \"postgres://authenticator@127.0.0.1:5432/{}\"\n\
             db-schemas = \"public,sales\"\n\
             db-anon-role = \"anon\"\n\
             jwt-secret = \"{SECRET}\"\n\
             server-host = \"127.0.0.1\"\n\
             server-port = {}\n\
             db-pool = 4\n\
             log-level = \"crit\"\n",
            self.db, self.port
        );
        if let Some(max) = self.max_rows {
            text.push_str(&format!("db-max-rows = {max}\n"));
        }
        std::fs::write(&config, text).expect("write config");
        let child = Command::new(postgrest_binary())
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("PostgREST starts");
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// The status of a bodyless request, None when nothing answers.
    async fn status(&self, method: &str, path: &str, profile: &str) -> Option<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nAccept-Profile: {profile}\r\nConnection: close\r\n\r\n",
            self.service_key()
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        std::str::from_utf8(buf.get(9..12)?).ok()?.parse().ok()
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status("GET", "/", "public").await != Some(200) {
            assert!(
                Instant::now() < deadline,
                "PostgREST did not become ready on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs DDL as postgres, then reloads PostgREST's schema cache and waits until it serves
    /// the given tables (`schema.table`).
    pub async fn exec(&self, sql: &str, tables: &[&str]) {
        let client = self.sql().await;
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        client
            .batch_execute("NOTIFY pgrst, 'reload schema'")
            .await
            .expect("notify");
        let deadline = Instant::now() + Duration::from_secs(20);
        for table in tables {
            let (schema, name) = table.split_once('.').unwrap_or(("public", table));
            while self.status("OPTIONS", &format!("/{name}"), schema).await != Some(200) {
                assert!(
                    Instant::now() < deadline,
                    "PostgREST does not serve {table}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    /// Starts PostgREST again after `stop`.
    pub async fn start_again(&mut self) {
        self.spawn().await;
    }
}

impl Drop for PostgRest {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-q",
                "-c",
            ])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn b64url(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// An HS256 JWT with claim `role`, signed with `secret`.
pub fn jwt(role: &str, secret: &str) -> String {
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url(format!(r#"{{"role":"{role}","iss":"osiris-tests"}}"#).as_bytes());
    let signing = format!("{header}.{payload}");
    let sig = b64url(&hmac_sha256(secret.as_bytes(), signing.as_bytes()));
    format!("{signing}.{sig}")
}

#[test]
fn hmac_matches_rfc4231_case_2() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
