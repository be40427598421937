//! The PostgreSQL examples end to end against PostgreSQL on 127.0.0.1:5432: PostgreSQL ->
//! DuckDB SQL -> CSV, and CSV -> PostgreSQL upsert, through `osiris run` and the
//! `@postgres.shop` connection; doctor and discover through `osiris connections`.

use std::process::Command;

use crate::common::{Project, repo_root};

/// A scratch PostgreSQL database, dropped at the end.
pub(crate) struct ScratchPg(pub(crate) String);

impl ScratchPg {
    pub(crate) fn new() -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "osiris_it_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        Self(name)
    }

    pub(crate) fn query(&self, sql: &str) -> String {
        psql(&self.0, sql)
    }
}

impl Drop for ScratchPg {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.0
            ))
            .output();
    }
}

/// Runs SQL with the real `psql` client, which must succeed; returns its unaligned output.
pub(crate) fn psql(database: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            database,
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("the psql client runs (testing_env/setup.sh)");
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn postgres_project() -> Project {
    let project = Project::new();
    let example = repo_root().join("examples/postgres");
    for file in [
        "osiris_connections.yaml",
        "postgres_to_csv.yaml",
        "csv_to_postgres_upsert.yaml",
        "data/customers.csv",
    ] {
        project.write(file, std::fs::read(example.join(file)).unwrap());
    }
    project
}

#[test]
fn postgres_to_duckdb_sql_to_csv_and_csv_upsert_into_postgres() {
    let db = ScratchPg::new();
    let shop = std::fs::read_to_string(repo_root().join("examples/postgres/shop.sql")).unwrap();
    db.query(&shop);
    let project = postgres_project();
    let env = [("PGDATABASE", db.0.as_str())];

    let ran = project.osiris_env(&["run", "postgres_to_csv.yaml"], &env);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        String::from_utf8(project.read("output/revenue_by_country.csv")).unwrap(),
        "country,orders,revenue\nCZ,2,140.49\nSK,1,80.00\n"
    );

    let ran = project.osiris_env(&["run", "csv_to_postgres_upsert.yaml"], &env);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        db.query("SELECT id, name, country FROM customers ORDER BY id"),
        "1|Anna Nováková|CZ\n2|Jan Kováč|CZ\n3|Eva Černá|CZ\n4|Ola Nordmann|NO\n"
    );
}

#[test]
fn connections_doctor_and_discover_postgres_without_leaking_the_password() {
    let db = ScratchPg::new();
    db.query("CREATE TABLE items (id bigint PRIMARY KEY, label varchar(20))");
    let project = postgres_project();
    let env = [("PGDATABASE", db.0.as_str())];
    let ok = project.osiris_env(&["connections", "doctor", "@postgres.shop", "--json"], &env);
    assert_eq!(ok.code, 0, "{}", ok.all());
    let report: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(report[0]["category"], "ok", "{report}");

    let found = project.osiris_env(
        &["connections", "discover", "@postgres.shop", "--json"],
        &env,
    );
    assert_eq!(found.code, 0, "{}", found.all());
    let report: serde_json::Value = serde_json::from_str(&found.stdout).unwrap();
    assert_eq!(report["component"], "postgres.extractor");
    let tables = report["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 1, "{report}");
    assert_eq!(tables[0]["name"], "items");
    assert_eq!(tables[0]["primary_key"], serde_json::json!(["id"]));
    assert_eq!(
        tables[0]["columns"][1]["source_type"],
        "character varying(20)"
    );

    // A database that does not exist: an error without the password, user or host.
    let secret = "Pg-Doctor-Pass-2718";
    let bad = project.osiris_env(
        &["connections", "doctor", "@postgres.shop", "--json"],
        &[
            ("PGDATABASE", "osiris_no_such_database"),
            ("PGPASSWORD", secret),
            ("PGUSER", "osiris_doctor_user"),
        ],
    );
    assert_ne!(bad.code, 0, "{}", bad.all());
    for leaked in [secret, "osiris_doctor_user", "127.0.0.1"] {
        assert!(!bad.all().contains(leaked), "{leaked} in {}", bad.all());
    }
}
