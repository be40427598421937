//! `osiris serve --pg` driven by real PostgreSQL clients (psql, psycopg 3, asyncpg, SQLAlchemy
//! with pandas, pgJDBC, node-postgres), installed by `testing_env/setup.sh`. A missing client
//! fails the test; none is mocked.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use crate::common::{Project, example_project};

const PASSWORD: &str = "pg-clients-pw-4412";

/// A project with one finished session `pg1` (the orders example) served on a free port.
struct Served {
    project: Project,
    server: Child,
    port: u16,
}

impl Served {
    fn start() -> Self {
        let project = example_project();
        let ran = project.osiris(&["run", "pipeline.yaml", "--session-id", "pg1"]);
        assert_eq!(ran.code, 0, "{}", ran.all());
        let (server, first) = spawn_serve(&project, PASSWORD);
        let port = first
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Self {
            project,
            server,
            port,
        }
    }

    fn url(&self) -> String {
        format!(
            "postgresql://osiris:{PASSWORD}@127.0.0.1:{}/osiris",
            self.port
        )
    }

    fn psql(&self, args: &[&str]) -> String {
        let out = Command::new("psql")
            .arg(format!(
                "postgresql://osiris@127.0.0.1:{}/osiris",
                self.port
            ))
            .args(["-X", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("psql (postgresql-client) is installed by testing_env/setup.sh");
        checked("psql", &out)
    }
}

/// Starts `osiris serve --pg 127.0.0.1:0` in `project` with `password`; the server and the
/// line it printed first (which names the address).
pub fn spawn_serve(project: &Project, password: &str) -> (Child, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(["serve", "--pg", "127.0.0.1:0"])
        .current_dir(project.path())
        .env("OSIRIS_PG_PASSWORD", password)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (server, first)
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn checked(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn cache_dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(
        || {
            let home = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
            home.join("osiris-rs").join(default)
        },
        PathBuf::from,
    )
}

/// Runs a Python script with the clients' venv.
fn python(served: &Served, script: &str) -> String {
    let venv = cache_dir("OSIRIS_PG_CLIENTS_VENV", "venv");
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run testing_env/setup.sh",
        python.display()
    );
    let file = served.project.write("client.py", script);
    let out = Command::new(python)
        .arg(file)
        .env("PG_URL", served.url())
        .env("PG_PORT", served.port.to_string())
        .env("PG_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    checked("python client", &out)
}

#[test]
fn psql_describes_sessions_like_postgres() {
    let served = Served::start();
    let list = served.psql(&["-c", r"\l"]);
    assert!(list.contains("osiris") && list.contains("UTF8"), "{list}");
    let schemas = served.psql(&["-c", r"\dn"]);
    assert!(schemas.contains("pg1"), "{schemas}");
    let tables = served.psql(&["-c", r"\dt pg1.*"]);
    assert!(
        tables.contains("read-orders") && tables.contains("revenue_by_customer"),
        "{tables}"
    );
    let described = served.psql(&["-c", r#"\d pg1."read-orders""#]);
    assert!(
        described.contains("numeric(12,2)") && described.contains("customer"),
        "{described}"
    );
    let plus = served.psql(&["-c", r#"\d+ pg1."read-orders""#]);
    assert!(
        plus.contains("amount") && plus.contains("Storage"),
        "{plus}"
    );
    let expanded = served.psql(&["-c", r"\x", "-c", "SELECT 1 AS one, 'two' AS two"]);
    assert!(expanded.contains("one | 1"), "{expanded}");
    // search_path makes a session's tables reachable unqualified.
    let count = served.psql(&[
        "-A",
        "-t",
        "-c",
        "SET search_path = pg1",
        "-c",
        r#"SELECT count(*) FROM "read-orders""#,
    ]);
    assert_eq!(count.lines().collect::<Vec<_>>(), ["SET", "10"], "{count}");
    let identity = served.psql(&[
        "-A",
        "-t",
        "-c",
        "SELECT current_database(), current_user, current_schema(), version() LIKE 'PostgreSQL 16.0 (osiris % DuckDB %'",
    ]);
    assert_eq!(identity.trim(), "osiris|osiris|public|t");
    let session = served.psql(&[
        "-A",
        "-t",
        "-c",
        "show transaction isolation level",
        "-c",
        "SHOW server_version_num",
        "-c",
        "BEGIN",
        "-c",
        "SAVEPOINT a",
        "-c",
        "RELEASE a",
        "-c",
        "COMMIT",
    ]);
    assert!(
        session.contains("read committed") && session.contains("160000"),
        "{session}"
    );
    let cursor = served.psql(&[
        "-A",
        "-t",
        "-c",
        "BEGIN",
        "-c",
        r#"DECLARE c CURSOR FOR SELECT id FROM pg1."read-orders" ORDER BY id"#,
        "-c",
        "FETCH 2 FROM c",
        "-c",
        "FETCH ALL FROM c",
        "-c",
        "CLOSE c",
        "-c",
        "COMMIT",
    ]);
    let fetched: Vec<&str> = cursor
        .lines()
        .filter(|l| l.parse::<u32>().is_ok())
        .collect();
    assert_eq!(
        fetched,
        ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
        "{cursor}"
    );
    let exported = served.project.path().join("orders.csv");
    served.psql(&[
        "-c",
        &format!(
            r#"\copy (SELECT id, amount FROM pg1."read-orders" ORDER BY id) TO '{}' CSV HEADER"#,
            exported.display()
        ),
    ]);
    let csv = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(
        csv.lines().take(2).collect::<Vec<_>>(),
        ["id,amount", "1,120.50"],
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 11, "{csv}");
    let write = Command::new("psql")
        .arg(format!(
            "postgresql://osiris@127.0.0.1:{}/osiris",
            served.port
        ))
        .args(["-X", "-c", "CREATE TABLE t (a int)"])
        .env("PGPASSWORD", PASSWORD)
        .env("PG_COLOR", "never")
        .env("PGOPTIONS", "")
        .output()
        .unwrap();
    assert!(!write.status.success());
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("read-only"),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );
}

#[test]
fn psycopg_sends_typed_parameters() {
    let served = Served::start();
    let out = python(
        &served,
        r#"
import datetime, decimal, os, psycopg
with psycopg.connect(os.environ["PG_URL"]) as conn:
    cur = conn.cursor()
    cur.execute('SELECT count(*) FROM pg1."read-orders" WHERE id > %s AND amount > %s AND ordered_at > %s',
                (2, decimal.Decimal("10.5"), datetime.datetime(2024, 1, 1)))
    print("count", cur.fetchone()[0])
    cur.execute("SELECT %s", (5,))
    print("select", cur.fetchone()[0])
    cur.execute('SELECT amount FROM pg1."read-orders" WHERE id = %s', (1,))
    value = cur.fetchone()[0]
    print("amount", type(value).__name__, value)
    cur.execute("SELECT current_setting('application_name')")
    conn.rollback()
    print("version", conn.info.server_version)
    with conn.cursor(name="orders_cursor") as named:
        named.itersize = 4
        named.execute('SELECT id FROM pg1."read-orders" WHERE id > %s ORDER BY id', (1,))
        first = named.fetchmany(3)
        print("named", [r[0] for r in first], len(named.fetchall()))
    conn.rollback()
    with cur.copy('COPY (SELECT id, customer FROM pg1."read-orders" ORDER BY id) TO STDOUT') as copy:
        rows = list(copy.rows())
    print("copy text", len(rows), rows[0])
    with cur.copy('COPY (SELECT id, customer FROM pg1."read-orders" ORDER BY id LIMIT 2) '
                  'TO STDOUT (FORMAT csv, HEADER)') as copy:
        data = b"".join(bytes(b) for b in copy)
    print("copy csv", data.decode().splitlines())
    with cur.copy('COPY (SELECT id FROM pg1."read-orders" ORDER BY id) TO STDOUT (FORMAT binary)') as copy:
        copy.set_types(["int8"])
        print("copy binary", [r[0] for r in copy.rows()][:3])
    conn.rollback()
    import threading, time
    def cancel_soon():
        time.sleep(0.5)
        conn.cancel_safe()
    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    started = time.monotonic()
    try:
        cur.execute("SELECT sum(hash(i)) FROM range(20000000000) t(i)")
        print("not cancelled")
    except psycopg.errors.QueryCanceled:
        print("cancelled", time.monotonic() - started < 5)
    canceller.join()
    conn.rollback()
    cur.execute("SELECT 1")
    print("after cancel", cur.fetchone()[0])
    import uuid
    from datetime import date, time as dtime, timedelta, timezone
    from psycopg.types.json import Json, Jsonb
    values = (date(2024, 1, 2), dtime(3, 4, 5, 500000), datetime.datetime(2024, 1, 2, 3, 4, 5),
              datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
              uuid.UUID("12345678-1234-5678-1234-567812345678"), b"\x01\xff", Jsonb({"a": 1}),
              Json([1]), True, 1.5, 7, 2**40, decimal.Decimal("-12.340"), timedelta(days=1, seconds=5),
              "text")
    for mark in ("t", "b"):
        marks = ", ".join(f"%{mark}::varchar" for _ in values)
        cur.execute(f"SELECT {marks}", values)
        print("params", mark, "|".join(cur.fetchone()))
"#,
    );
    assert!(out.contains("named [2, 3, 4] 6"), "{out}");
    assert!(out.contains("copy text 10 ('1', 'Acme Corp')"), "{out}");
    assert!(
        out.contains("copy csv ['id,customer', '1,Acme Corp', '2,\"Globex, Inc.\"']"),
        "{out}"
    );
    assert!(out.contains("copy binary [1, 2, 3]"), "{out}");
    assert!(out.contains("cancelled True"), "{out}");
    assert!(out.contains("after cancel 1"), "{out}");
    assert!(out.contains("count "), "{out}");
    assert!(out.contains("select 5"), "{out}");
    assert!(out.contains("amount Decimal 120.50"), "{out}");
    assert!(out.contains("version 160000"), "{out}");
    // Every common type in both encodings reaches DuckDB with its value.
    assert!(
        out.contains(
            "params b 2024-01-02|03:04:05.500000|2024-01-02 03:04:05.000000|\
             2024-01-02 03:04:05.000000+00|12345678-1234-5678-1234-567812345678|\\x01\\xFF|\
             {\"a\": 1}|[1]|true|1.5|7|1099511627776|-12.340|1 day 00:00:05|text"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "params t 2024-01-02|03:04:05.500000|2024-01-02 03:04:05|2024-01-02 03:04:05+00:00|\
             12345678-1234-5678-1234-567812345678|\\x01\\xFF|{\"a\": 1}|[1]|true|1.5|7|\
             1099511627776|-12.340|1 day 0:00:05|text"
        ),
        "{out}"
    );
}

#[test]
fn asyncpg_describes_parameters_by_the_columns_they_meet() {
    let served = Served::start();
    let out = python(
        &served,
        r#"
import asyncio, datetime, decimal, os, asyncpg
async def main():
    conn = await asyncpg.connect(os.environ["PG_URL"])
    n = await conn.fetchval('SELECT count(*) FROM pg1."read-orders" WHERE id >= $1', 3)
    print("int", n)
    n = await conn.fetchval('SELECT count(*) FROM pg1."read-orders" WHERE amount > $1', decimal.Decimal("100"))
    print("decimal", n)
    n = await conn.fetchval('SELECT count(*) FROM pg1."read-orders" WHERE ordered_at < $1',
                            datetime.datetime(2030, 1, 1))
    print("datetime", n)
    async with conn.transaction():
        ids = [r["id"] async for r in conn.cursor(
            'SELECT id FROM pg1."read-orders" WHERE id > $1 ORDER BY id', 2, prefetch=3)]
    print("cursor", ids)
    try:
        await conn.fetchval("SELECT sum(hash(i)) FROM range(20000000000) t(i)", timeout=0.5)
        print("not cancelled")
    except asyncio.TimeoutError:
        print("cancelled")
    print("after cancel", await conn.fetchval("SELECT 1"))
    await conn.close()
asyncio.run(main())
"#,
    );
    assert!(out.contains("int 8"), "{out}");
    assert!(out.contains("datetime 10"), "{out}");
    assert!(out.contains("decimal "), "{out}");
    assert!(out.contains("cursor [3, 4, 5, 6, 7, 8, 9, 10]"), "{out}");
    assert!(
        out.contains("cancelled") && !out.contains("not cancelled"),
        "{out}"
    );
    assert!(out.contains("after cancel 1"), "{out}");
}

#[test]
fn sqlalchemy_inspects_sessions_and_pandas_reads_them() {
    let served = Served::start();
    let out = python(
        &served,
        r#"
import os, sqlalchemy, pandas
url = os.environ["PG_URL"].replace("postgresql://", "postgresql+psycopg://")
engine = sqlalchemy.create_engine(url)
inspector = sqlalchemy.inspect(engine)
print("schemas", sorted(inspector.get_schema_names()))
print("tables", sorted(inspector.get_table_names(schema="pg1")))
for c in inspector.get_columns("read-orders", schema="pg1"):
    print("column", c["name"], c["type"])
print("pk", inspector.get_pk_constraint("read-orders", schema="pg1")["constrained_columns"])
with engine.connect() as conn:
    df = pandas.read_sql('SELECT * FROM pg1."read-orders" ORDER BY id', conn)
    print("rows", len(df), list(df.columns))
    table = pandas.read_sql_table("revenue_by_customer", conn, schema="pg1")
    print("table", len(table))
    chunks = [len(c) for c in pandas.read_sql('SELECT * FROM pg1."read-orders"', conn, chunksize=4)]
    print("chunks", chunks)
"#,
    );
    assert!(out.contains("'pg1'"), "{out}");
    assert!(
        out.contains("tables ['read-orders', 'revenue_by_customer']"),
        "{out}"
    );
    assert!(out.contains("column amount NUMERIC(12, 2)"), "{out}");
    assert!(out.contains("column ordered_at TIMESTAMP"), "{out}");
    assert!(out.contains("rows 10"), "{out}");
    assert!(out.contains("chunks [4, 4, 2]"), "{out}");
}

#[test]
fn node_postgres_queries_with_parameters() {
    let served = Served::start();
    let node_dir = cache_dir("OSIRIS_PG_CLIENTS_NODE", "node");
    assert!(
        node_dir.join("node_modules/pg").exists(),
        "{} has no node-postgres: run testing_env/setup.sh",
        node_dir.display()
    );
    let script = served.project.write(
        "client.js",
        r#"
const { Client } = require("pg");
(async () => {
  const client = new Client({ connectionString: process.env.PG_URL });
  await client.connect();
  const r = await client.query('SELECT count(*)::int AS n FROM pg1."read-orders" WHERE id > $1', [5]);
  console.log("n", r.rows[0].n);
  const s = await client.query("SELECT nspname FROM pg_catalog.pg_namespace ORDER BY 1");
  console.log("schemas", s.rows.map((x) => x.nspname).join(","));
  await client.end();
})().catch((e) => { console.error(e); process.exit(1); });
"#,
    );
    let out = Command::new("node")
        .arg(script)
        .env("NODE_PATH", node_dir.join("node_modules"))
        .env("PG_URL", served.url())
        .output()
        .expect("node is installed");
    let out = checked("node-postgres", &out);
    assert!(out.contains("n 5"), "{out}");
    assert!(out.contains("pg1") && out.contains("pg_catalog"), "{out}");
}

#[test]
fn jdbc_reads_metadata_and_binds_typed_parameters() {
    let served = Served::start();
    let jar = PathBuf::from(
        std::env::var("OSIRIS_PG_JDBC_JAR").unwrap_or("/usr/share/java/postgresql.jar".into()),
    );
    assert!(
        jar.exists(),
        "{} is missing: run testing_env/setup.sh",
        jar.display()
    );
    let source = served.project.write(
        "java/Client.java",
        r#"
import java.math.BigDecimal;
import java.sql.*;

public class Client {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], "osiris", args[1])) {
            DatabaseMetaData md = c.getMetaData();
            try (ResultSet r = md.getCatalogs()) { while (r.next()) System.out.println("catalog " + r.getString(1)); }
            try (ResultSet r = md.getSchemas()) { while (r.next()) System.out.println("schema " + r.getString("TABLE_SCHEM")); }
            try (ResultSet r = md.getTables(null, "pg1", "%", new String[] {"TABLE"})) {
                while (r.next()) System.out.println("table " + r.getString("TABLE_NAME"));
            }
            try (ResultSet r = md.getColumns(null, "pg1", "read-orders", "%")) {
                while (r.next()) System.out.println("column " + r.getString("COLUMN_NAME") + " " + r.getString("TYPE_NAME") + " " + r.getInt("DATA_TYPE"));
            }
            try (ResultSet r = md.getPrimaryKeys(null, "pg1", "read-orders")) {
                int n = 0; while (r.next()) n++; System.out.println("pks " + n);
            }
            try (ResultSet r = md.getTypeInfo()) {
                int n = 0; while (r.next()) n++; System.out.println("types " + (n > 10));
            }
            try (PreparedStatement p = c.prepareStatement(
                    "SELECT count(*) FROM pg1.\"read-orders\" WHERE id > ? AND amount > ? AND ordered_at > ? AND customer <> ? AND ordered_at > ?")) {
                p.setInt(1, 1);
                p.setBigDecimal(2, new BigDecimal("10.00"));
                p.setTimestamp(3, Timestamp.valueOf("2024-01-01 00:00:00"));
                p.setString(4, "nobody");
                p.setDate(5, Date.valueOf("2024-01-01"));
                try (ResultSet r = p.executeQuery()) { r.next(); System.out.println("count " + r.getLong(1)); }
            }
            try (Statement s = c.createStatement();
                 ResultSet r = s.executeQuery("SELECT customer, amount FROM pg1.\"read-orders\"")) {
                ResultSetMetaData m = r.getMetaData();
                String schema = ((org.postgresql.PGResultSetMetaData) m).getBaseSchemaName(2);
                System.out.println("origin " + schema + "." + m.getTableName(2) + "."
                    + m.getColumnName(2) + " " + m.getPrecision(2) + "," + m.getScale(2));
            }
            final String longQuery = "SELECT sum(hash(i)) FROM range(20000000000) t(i)";
            try (Statement s = c.createStatement()) {
                s.setQueryTimeout(1);
                long t0 = System.currentTimeMillis();
                try { s.executeQuery(longQuery); System.out.println("timeout none"); }
                catch (SQLException e) { System.out.println("timeout " + e.getSQLState() + " " + (System.currentTimeMillis() - t0 < 5000)); }
            }
            try (Statement s = c.createStatement()) {
                Thread canceller = new Thread(() -> {
                    try { Thread.sleep(500); s.cancel(); } catch (Exception e) { throw new RuntimeException(e); }
                });
                canceller.start();
                try { s.executeQuery(longQuery); System.out.println("cancel none"); }
                catch (SQLException e) { System.out.println("cancel " + e.getSQLState()); }
                canceller.join();
            }
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.setFetchSize(3);
                try (ResultSet r = s.executeQuery("SELECT id FROM pg1.\"read-orders\" ORDER BY id")) {
                    int n = 0; while (r.next()) n++; System.out.println("fetched " + n);
                }
            }
            c.commit();
        }
    }
}
"#,
    );
    let classes = served.project.path().join("java");
    let javac = Command::new("javac")
        .arg("-cp")
        .arg(&jar)
        .arg("-d")
        .arg(&classes)
        .arg(&source)
        .output()
        .expect("javac (a JDK) is installed");
    checked("javac", &javac);
    let classpath = format!("{}:{}", classes.display(), jar.display());
    let out = Command::new("java")
        .args(["-cp", &classpath, "Client"])
        .arg(format!(
            "jdbc:postgresql://127.0.0.1:{}/osiris",
            served.port
        ))
        .arg(PASSWORD)
        .output()
        .expect("java is installed");
    let out = checked("pgJDBC client", &out);
    assert!(out.contains("catalog osiris"), "{out}");
    assert!(out.contains("schema pg1"), "{out}");
    assert!(
        out.contains("table read-orders") && out.contains("table revenue_by_customer"),
        "{out}"
    );
    assert!(out.contains("column amount numeric 2"), "{out}");
    assert!(out.contains("column ordered_at timestamp 93"), "{out}");
    assert!(out.contains("pks 0"), "{out}");
    assert!(out.contains("types true"), "{out}");
    assert!(out.contains("count "), "{out}");
    assert!(out.contains("fetched 10"), "{out}");
    assert!(out.contains("origin pg1.read-orders.amount 12,2"), "{out}");
    assert!(out.contains("timeout 57014 true"), "{out}");
    assert!(out.contains("cancel 57014"), "{out}");
}
