//! The MySQL examples end to end against MariaDB on 127.0.0.1:3306: MySQL -> DuckDB SQL ->
//! CSV, and CSV -> MySQL upsert, through `osiris run` and the `@mysql.shop` connection.

use crate::common::{Project, ScratchMariaDb, repo_root};

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
    let db = ScratchMariaDb::new("osiris_it");
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
    let db = ScratchMariaDb::new("osiris_it");
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

#[test]
fn connections_discover_lists_tables_columns_and_keys() {
    let db = ScratchMariaDb::new("osiris_it");
    db.query(
        "CREATE TABLE `odd name` (`a``b` INT NOT NULL, note VARCHAR(20), PRIMARY KEY (`a``b`));
         CREATE VIEW recent AS SELECT note FROM `odd name`",
    );
    let project = mysql_project();
    let env = [("MYSQL_DATABASE", db.0.as_str())];
    let found = project.osiris_env(&["connections", "discover", "@mysql.shop", "--json"], &env);
    assert_eq!(found.code, 0, "{}", found.all());
    let report: serde_json::Value = serde_json::from_str(&found.stdout).unwrap();
    assert_eq!(report["component"], "mysql.extractor");
    let tables = report["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2, "{report}");
    assert_eq!(tables[0]["name"], "odd name");
    assert_eq!(tables[0]["kind"], "table");
    assert_eq!(tables[0]["primary_key"], serde_json::json!(["a`b"]));
    assert_eq!(tables[0]["columns"][1]["source_type"], "varchar(20)");
    assert_eq!(tables[0]["columns"][0]["nullable"], false);
    assert_eq!(tables[1]["kind"], "view");

    let text = project.osiris_env(&["connections", "discover", "@mysql.shop"], &env);
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(
        text.stdout.contains("odd name  table")
            && text.stdout.contains("primary key (a`b)")
            && text.stdout.contains("varchar(20)"),
        "{}",
        text.stdout
    );

    let secret = "Discover-Wrong-Pass-4242";
    let bad = project.osiris_env(
        &["connections", "discover", "@mysql.shop"],
        &[
            ("MYSQL_DATABASE", db.0.as_str()),
            ("MYSQL_PASSWORD", secret),
        ],
    );
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(bad.stderr.contains("(auth)"), "{}", bad.stderr);
    assert!(!bad.all().contains(secret), "{}", bad.all());

    let none = project.osiris(&["connections", "discover", "@mysql.nope"]);
    assert_eq!(none.code, 2, "{}", none.all());
}

/// A connection's fields are typed, in `connections doctor` as in a run: a `connect_timeout`
/// that is not a number is an error naming it (it was silently 10 for doctor).
#[test]
fn a_connections_non_numeric_connect_timeout_is_an_error_naming_it() {
    let project = mysql_project();
    project.write(
        "osiris_connections.yaml",
        "connections:\n  mysql:\n    shop:\n      default: true\n      host: 127.0.0.1\n      database: shop\n      user: root\n      connect_timeout: soon\n",
    );
    let doctor = project.osiris(&["connections", "doctor", "@mysql.shop", "--json"]);
    assert_ne!(doctor.code, 0, "{}", doctor.all());
    let report: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    let message = report[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("config key `connect_timeout`: in the connection: invalid type"),
        "{report}"
    );
    let validate = project.osiris(&["validate", "mysql_to_csv.yaml"]);
    assert_ne!(validate.code, 0, "{}", validate.all());
    assert!(
        validate.all().contains("config.connect_timeout"),
        "{}",
        validate.all()
    );
}
