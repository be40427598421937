//! The MySQL examples end to end against MariaDB on 127.0.0.1:3306: MySQL -> DuckDB SQL ->
//! CSV, and CSV -> MySQL upsert, through `osiris run` and the `@mysql.shop` connection.

use std::process::Command;

use crate::common::{Project, repo_root};

/// A scratch database, dropped at the end.
struct Database(String);

impl Database {
    fn new() -> Self {
        let name = format!(
            "osiris_it_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let db = Self(name);
        db.sql(None, &format!("CREATE DATABASE `{}`", db.0));
        db
    }

    /// Runs SQL with the real `mariadb` client; returns its tab-separated output.
    fn sql(&self, database: Option<&str>, sql: &str) -> String {
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

    fn query(&self, sql: &str) -> String {
        self.sql(Some(&self.0), sql)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["--protocol=tcp", "-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.0))
            .output();
    }
}

fn mysql_project() -> Project {
    let project = Project::new();
    let example = repo_root().join("examples/mysql");
    for file in [
        "osiris_connections.yaml",
        "mysql_to_csv.yaml",
        "csv_to_mysql_upsert.yaml",
        "data/customers.csv",
    ] {
        project.write(file, std::fs::read(example.join(file)).unwrap());
    }
    project
}

#[test]
fn mysql_to_duckdb_sql_to_csv_and_csv_upsert_into_mysql() {
    let db = Database::new();
    let shop = std::fs::read_to_string(repo_root().join("examples/mysql/shop.sql")).unwrap();
    db.query(&shop);
    let project = mysql_project();
    let env = [("MYSQL_DATABASE", db.0.as_str())];

    let ran = project.osiris_env(&["run", "mysql_to_csv.yaml"], &env);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        String::from_utf8(project.read("output/revenue_by_country.csv")).unwrap(),
        "country,orders,revenue\nCZ,2,140.49\nSK,1,80.00\n"
    );

    let ran = project.osiris_env(&["run", "csv_to_mysql_upsert.yaml"], &env);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        db.query("SELECT id, name, country FROM customers ORDER BY id"),
        "1\tAnna Nováková\tCZ\n2\tJan Kováč\tCZ\n3\tEva Černá\tCZ\n4\tOla Nordmann\tNO\n"
    );
    // The load path the writer chose is visible in the run's events.
    let upsert_session = project.sessions().pop().unwrap();
    let events = crate::common::jsonl(&upsert_session.join("events.jsonl"));
    let method = events
        .iter()
        .find(|e| e["event"] == "write.method")
        .unwrap_or_else(|| panic!("no write.method event in {events:#?}"));
    assert_eq!(method["method"], "load_data_local_infile", "{method}");
}

#[test]
fn connections_doctor_checks_mysql_without_leaking_the_password() {
    let db = Database::new();
    let project = mysql_project();
    let ok = project.osiris_env(
        &["connections", "doctor", "@mysql.shop", "--json"],
        &[("MYSQL_DATABASE", db.0.as_str())],
    );
    assert_eq!(ok.code, 0, "{}", ok.all());
    let report: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(report[0]["category"], "ok", "{report}");

    let secret = "Doctor-Wrong-Pass-31337";
    let bad = project.osiris_env(
        &["connections", "doctor", "@mysql.shop", "--json"],
        &[
            ("MYSQL_DATABASE", db.0.as_str()),
            ("MYSQL_PASSWORD", secret),
        ],
    );
    assert_ne!(bad.code, 0);
    let report: serde_json::Value = serde_json::from_str(&bad.stdout).unwrap();
    assert_eq!(report[0]["category"], "auth", "{report}");
    for leaked in [secret, "root", "127.0.0.1"] {
        assert!(!bad.all().contains(leaked), "{leaked} in {}", bad.all());
    }
}
