//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch project directory with fixture files copied in.
pub struct Project {
    pub dir: tempfile::TempDir,
}

/// What a run of the binary produced.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Everything printed, for assertions on messages.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Project {
    pub fn new() -> Self {
        let base = repo_root().join("testing_env/tmp");
        std::fs::create_dir_all(&base).unwrap();
        Self {
            dir: tempfile::tempdir_in(base).unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn read(&self, relative: &str) -> Vec<u8> {
        std::fs::read(self.path().join(relative))
            .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
    }

    /// This project's own temporary directory, given to every `osiris` it starts as `TMPDIR`:
    /// workers keep their sessions under it (`osiris-worker-sessions`), so fixed session ids
    /// of one test never meet those of another test or an earlier run on the same machine.
    pub fn tmp_dir(&self) -> PathBuf {
        let dir = self.path().join(".tmp");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Runs `osiris <args>` with this project as working directory.
    pub fn osiris(&self, args: &[&str]) -> Ran {
        self.osiris_env(args, &[])
    }

    /// Runs `osiris <args>` with extra environment variables. Variables that would change
    /// where osiris looks for things are cleared first.
    pub fn osiris_env(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut command = Command::new(env!("CARGO_BIN_EXE_osiris"));
        command.args(args).current_dir(self.path());
        for var in [
            "OSIRIS_SESSIONS_DIR",
            "OSIRIS_HOME",
            "OSIRIS_CONNECTIONS",
            "OSIRIS_PROFILE",
            "OSIRIS_MEMORY_LIMIT",
        ] {
            command.env_remove(var);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("OSIRIS_PARAM_") {
                command.env_remove(key);
            }
        }
        command.env("TMPDIR", self.tmp_dir());
        command.envs(env.iter().copied());
        Ran::from(command.output().expect("the osiris binary runs"))
    }

    /// Every file below this project, as `(relative path, bytes)`.
    pub fn files(&self, under: &str) -> Vec<(String, Vec<u8>)> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap().display().to_string();
                    out.push((rel, std::fs::read(&path).unwrap()));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.path().join(under), self.path(), &mut out);
        out.sort();
        out
    }

    /// The session directories created so far.
    pub fn sessions(&self) -> Vec<PathBuf> {
        let root = self.path().join(".osiris_sessions");
        let Ok(entries) = std::fs::read_dir(root) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        dirs.sort();
        dirs
    }

    /// The only session directory.
    pub fn session(&self) -> PathBuf {
        let sessions = self.sessions();
        assert_eq!(
            sessions.len(),
            1,
            "expected one session, found {sessions:?}"
        );
        sessions.into_iter().next().unwrap()
    }
}

/// A project holding a copy of `examples/orders` (pipeline and data).
pub fn example_project() -> Project {
    let project = Project::new();
    let example = repo_root().join("examples/orders");
    project.write(
        "pipeline.yaml",
        std::fs::read(example.join("pipeline.yaml")).unwrap(),
    );
    project.write(
        "data/orders.csv",
        std::fs::read(example.join("data/orders.csv")).unwrap(),
    );
    project
}

/// [`example_project`] with the extractor's step kept as a table (`materialize: table`): for
/// tests of the rows a step reports, or of replays after the input changed (a view's step reads
/// no row and depends on its file, ADR 0036).
pub fn example_project_with_tables() -> Project {
    let project = example_project();
    let pipeline = String::from_utf8(project.read("pipeline.yaml")).unwrap();
    assert!(pipeline.contains("      path: data/orders.csv\n"));
    project.write(
        "pipeline.yaml",
        pipeline.replace(
            "      path: data/orders.csv\n",
            "      path: data/orders.csv\n      materialize: table\n",
        ),
    );
    project
}

/// Opens a session's run database read-only.
pub fn open_db(session: &Path) -> duckdb::Connection {
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .unwrap();
    duckdb::Connection::open_with_flags(session.join("pipeline_data.duckdb"), config).unwrap()
}

/// Table names in a session's run database, sorted.
pub fn tables(session: &Path) -> Vec<String> {
    let conn = open_db(session);
    let mut stmt = conn
        .prepare("SELECT table_name FROM information_schema.tables ORDER BY 1")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Rows of a query as text (NULL as "NULL"), columns joined by `|`.
pub fn rows(session: &Path, sql: &str) -> Vec<String> {
    let conn = open_db(session);
    // Every column as DuckDB's own text form, so assertions read like query results.
    let mut stmt = conn
        .prepare(&format!("SELECT COLUMNS(*)::VARCHAR FROM ({sql})"))
        .unwrap();
    let mut out = Vec::new();
    let mut result = stmt.query([]).unwrap();
    while let Some(row) = result.next().unwrap() {
        let n = row.as_ref().column_count();
        let cells: Vec<String> = (0..n)
            .map(|i| {
                row.get::<_, Option<String>>(i)
                    .unwrap()
                    .unwrap_or_else(|| "NULL".into())
            })
            .collect();
        out.push(cells.join("|"));
    }
    out
}

/// Parses a JSONL file.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A pipeline whose second step, `heavy`, runs for minutes unless interrupted.
const LONG: &str = r#"
oml_version: "0.1.0"
name: long
steps:
  - {id: quick, component: duckdb.processor, mode: transform, config: {query: "SELECT 1 AS x"}}
  - id: heavy
    component: duckdb.processor
    mode: transform
    needs: [quick]
    config: {query: "SELECT sum(a.range * b.range) AS s FROM range(400000) a, range(400000) b"}
"#;

/// Starts the long pipeline as session `session` (output piped) and waits until its heavy step
/// is running.
pub fn start_long(project: &Project, session: &str) -> std::process::Child {
    use std::time::{Duration, Instant};
    project.write("long.yaml", LONG);
    let child = Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(["run", "long.yaml", "--session-id", session])
        .current_dir(project.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let events = project
        .path()
        .join(".osiris_sessions")
        .join(session)
        .join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&events).is_ok_and(|t| t.contains("\"step_id\":\"heavy\"")) {
        assert!(Instant::now() < deadline, "the heavy step never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A scratch MariaDB database on 127.0.0.1:3306 (root, no password) with a unique name,
/// dropped at the end; SQL runs through the real `mariadb` client.
pub struct ScratchMariaDb(pub String);

impl ScratchMariaDb {
    /// Creates `<prefix>_<pid>_<n>_<nanos>`: unique across tests and concurrent runs.
    pub fn new(prefix: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        mariadb_sql(None, &format!("CREATE DATABASE `{name}`"));
        Self(name)
    }

    /// Runs SQL in this database; returns the client's tab-separated output.
    pub fn query(&self, sql: &str) -> String {
        mariadb_sql(Some(&self.0), sql)
    }
}

impl Drop for ScratchMariaDb {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["--protocol=tcp", "-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.0))
            .output();
    }
}

/// Runs SQL with the real `mariadb` client (in `database` if given), which must succeed;
/// returns its tab-separated output.
pub fn mariadb_sql(database: Option<&str>, sql: &str) -> String {
    let mut command = Command::new("mariadb");
    command.args([
        "--protocol=tcp",
        "-h",
        "127.0.0.1",
        "-P",
        "3306",
        "-u",
        "root",
        "-N",
        "-B",
        "-e",
        sql,
    ]);
    if let Some(db) = database {
        command.arg(db);
    }
    let output = command
        .output()
        .expect("the mariadb client runs (testing_env/setup.sh)");
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The `status.json` of a session directory.
pub fn status(session: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(session.join("status.json")).unwrap()).unwrap()
}

/// Sends `sig` (`-TERM`, `-INT`, `-KILL`, ...) to `pid` with the real `kill`.
pub fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}
