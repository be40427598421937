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
        .env("PROJECT", served.project.path())
        .output()
        .unwrap();
    checked("python client", &out)
}

/// Compiles and runs a Java class against pgJDBC; its arguments are the JDBC URL and the
/// password.
fn java(served: &Served, class: &str, source: &str) -> String {
    let jar = PathBuf::from(
        std::env::var("OSIRIS_PG_JDBC_JAR").unwrap_or("/usr/share/java/postgresql.jar".into()),
    );
    assert!(
        jar.exists(),
        "{} is missing: run testing_env/setup.sh",
        jar.display()
    );
    let source = served.project.write(&format!("java/{class}.java"), source);
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
        .args(["-cp", &classpath, class])
        .arg(format!(
            "jdbc:postgresql://127.0.0.1:{}/osiris",
            served.port
        ))
        .arg(PASSWORD)
        .output()
        .expect("java is installed");
    checked("pgJDBC client", &out)
}

/// Seconds printed after `label` in a client's output.
fn seconds_after(out: &str, label: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().last())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no `{label} ... <seconds>` in {out}"))
}

/// A query whose rows flow for minutes: 200M rows of (bigint, text).
const ENDLESS_ROWS: &str = "SELECT i, 'row-' || i AS label FROM range(200000000) t(i)";

#[test]
fn cancel_and_statement_timeout_stop_rows_already_streaming() {
    let served = Served::start();
    let out = python(
        &served,
        &format!(
            r#"
import asyncio, os, time, psycopg, asyncpg
QUERY = "{ENDLESS_ROWS}"
conn = psycopg.connect(os.environ["PG_URL"], autocommit=True)
cur = conn.cursor()
seen = 0
try:
    # Rows arrive one by one; once 100000 are in, cancel.
    for row in cur.stream(QUERY):
        seen += 1
        if seen == 100000:
            cancelled_at = time.monotonic()
            conn.cancel_safe()
    print("psycopg not cancelled")
except psycopg.errors.QueryCanceled:
    print("psycopg cancelled streaming", seen >= 100000, time.monotonic() - cancelled_at)
cur.execute("SELECT 1")
print("psycopg after cancel", cur.fetchone()[0])
cur.execute("SET statement_timeout = '1s'")
seen = 0
started = time.monotonic()
try:
    for row in cur.stream(QUERY):
        seen += 1
    print("psycopg no timeout")
except psycopg.errors.QueryCanceled as e:
    print("psycopg timed out streaming", seen > 0, "statement timeout" in str(e), time.monotonic() - started)
cur.execute("SET statement_timeout = 0")
cur.execute("SELECT 2")
print("psycopg after timeout", cur.fetchone()[0])

async def main():
    conn = await asyncpg.connect(os.environ["PG_URL"])
    try:
        async with conn.transaction():
            cursor = await conn.cursor(QUERY)
            first = await cursor.fetch(1000)
            started = time.monotonic()
            # One Execute for many rows: asyncpg cancels it after the timeout.
            await cursor.fetch(100000000, timeout=1.0)
        print("asyncpg not cancelled")
    except asyncio.TimeoutError:
        print("asyncpg cancelled streaming", len(first) == 1000, time.monotonic() - started - 1.0)
    print("asyncpg after cancel", await conn.fetchval("SELECT 1"))
    await conn.execute("SET statement_timeout = '1s'")
    started = time.monotonic()
    try:
        await conn.fetch(QUERY)
        print("asyncpg no timeout")
    except asyncpg.exceptions.QueryCanceledError:
        print("asyncpg timed out streaming", time.monotonic() - started)
    await conn.execute("RESET statement_timeout")
    print("asyncpg after timeout", await conn.fetchval("SELECT 2"))
    await conn.close()
asyncio.run(main())
"#
        ),
    );
    assert!(out.contains("psycopg cancelled streaming True"), "{out}");
    assert!(out.contains("psycopg after cancel 1"), "{out}");
    assert!(
        out.contains("psycopg timed out streaming True True"),
        "{out}"
    );
    assert!(out.contains("psycopg after timeout 2"), "{out}");
    assert!(out.contains("asyncpg cancelled streaming True"), "{out}");
    assert!(out.contains("asyncpg after cancel 1"), "{out}");
    assert!(out.contains("asyncpg after timeout 2"), "{out}");
    // Stopped within a second of the cancel (or of the timeout); a little slack for the rows
    // already in flight and a loaded machine.
    assert!(
        seconds_after(&out, "psycopg cancelled streaming") < 1.5,
        "{out}"
    );
    assert!(
        seconds_after(&out, "psycopg timed out streaming") < 2.5,
        "{out}"
    );
    assert!(
        seconds_after(&out, "asyncpg cancelled streaming") < 1.5,
        "{out}"
    );
    assert!(
        seconds_after(&out, "asyncpg timed out streaming") < 2.5,
        "{out}"
    );

    let out = java(
        &served,
        "Cancel",
        &r#"
import java.sql.*;

public class Cancel {
    public static void main(String[] args) throws Exception {
        final String query = "QUERY";
        try (Connection c = DriverManager.getConnection(args[0], "osiris", args[1])) {
            try (Statement s = c.createStatement()) {
                final long[] at = {0};
                Thread canceller = new Thread(() -> {
                    try { Thread.sleep(1500); at[0] = System.nanoTime(); s.cancel(); }
                    catch (Exception e) { throw new RuntimeException(e); }
                });
                canceller.start();
                try { s.executeQuery(query); System.out.println("jdbc cancel none"); }
                catch (SQLException e) {
                    System.out.println("jdbc cancel " + e.getSQLState() + " " + (System.nanoTime() - at[0]) / 1e9);
                }
                canceller.join();
            }
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT 1")) {
                r.next(); System.out.println("jdbc after cancel " + r.getInt(1));
            }
            try (Statement s = c.createStatement()) {
                s.setQueryTimeout(1);
                long t0 = System.nanoTime();
                try { s.executeQuery(query); System.out.println("jdbc timeout none"); }
                catch (SQLException e) {
                    System.out.println("jdbc timeout " + e.getSQLState() + " " + (System.nanoTime() - t0) / 1e9);
                }
            }
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT 2")) {
                r.next(); System.out.println("jdbc after timeout " + r.getInt(1));
            }
        }
    }
}
"#
        .replace("QUERY", ENDLESS_ROWS),
    );
    assert!(out.contains("jdbc cancel 57014"), "{out}");
    assert!(out.contains("jdbc after cancel 1"), "{out}");
    assert!(out.contains("jdbc timeout 57014"), "{out}");
    assert!(out.contains("jdbc after timeout 2"), "{out}");
    assert!(seconds_after(&out, "jdbc cancel 57014") < 1.5, "{out}");
    assert!(seconds_after(&out, "jdbc timeout 57014") < 2.5, "{out}");
}

#[test]
fn binary_fetch_regclass_names_set_config_calls_and_views() {
    let served = Served::start();
    let out = python(
        &served,
        r#"
import datetime, decimal, os, duckdb, psycopg
# A step kept as a view (file extractors may leave views): listed and readable like a table.
db = duckdb.connect(os.path.join(os.environ["PROJECT"], ".osiris_sessions", "pg1", "pipeline_data.duckdb"))
db.execute('CREATE VIEW big_orders AS SELECT id, amount FROM "read-orders" WHERE amount > 100')
db.close()
with psycopg.connect(os.environ["PG_URL"]) as conn:
    cur = conn.cursor()
    cur.execute("SELECT relkind FROM pg_catalog.pg_class WHERE relname = 'big_orders'")
    print("view relkind", cur.fetchone()[0])
    cur.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'big_orders'")
    print("view type", cur.fetchone()[0])
    cur.execute("SELECT count(*) FROM pg1.big_orders")
    print("view rows", cur.fetchone()[0] > 0)
    with conn.cursor(name="binary_cursor", binary=True) as named:
        named.execute('SELECT id, amount, ordered_at, customer FROM pg1."read-orders" ORDER BY id')
        rows = named.fetchmany(2)
        formats = [named.pgresult.fformat(i) for i in range(4)]
        print("binary fetch", formats, rows[1][0], type(rows[0][1]).__name__,
              type(rows[0][2]).__name__, rows[0][3], len(named.fetchall()))
    conn.rollback()
    cur.execute("SELECT c.oid::regclass, c.oid::pg_catalog.regclass::text, c.oid = 'pg1.\"read-orders\"'::regclass "
                "FROM pg_catalog.pg_class c WHERE c.relname = 'read-orders'")
    print("regclass", "|".join(str(v) for v in cur.fetchone()))
    cur.execute("SELECT 1 AS one, set_config('search_path', 'pg1', false) AS path")
    print("set_config", cur.fetchone()[1])
    cur.execute("SHOW search_path")
    print("search_path", cur.fetchone()[0])
    cur.execute("SELECT c.oid::regclass FROM pg_catalog.pg_class c WHERE c.relname = 'read-orders'")
    print("visible regclass", cur.fetchone()[0])
"#,
    );
    assert!(out.contains("view relkind v"), "{out}");
    assert!(out.contains("view type VIEW"), "{out}");
    assert!(out.contains("view rows True"), "{out}");
    assert!(
        out.contains("binary fetch [1, 1, 1, 1] 2 Decimal datetime Acme Corp 8"),
        "{out}"
    );
    assert!(
        out.contains("regclass pg1.\"read-orders\"|pg1.\"read-orders\"|True"),
        "{out}"
    );
    assert!(out.contains("set_config pg1"), "{out}");
    assert!(out.contains("search_path pg1"), "{out}");
    assert!(out.contains("visible regclass \"read-orders\""), "{out}");
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
    # A DuckDB UUID is described as uuid: asyncpg reads it in binary as its own uuid type,
    # and sends one back as a parameter.
    u = await conn.fetchval("SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID")
    print("uuid", type(u).__name__, u)
    rows = await conn.fetch("SELECT $1::UUID AS u UNION ALL SELECT NULL", u)
    print("uuid param", [str(r["u"]) for r in rows])
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
        out.contains("uuid UUID a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        "{out}"
    );
    assert!(
        out.contains("uuid param ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'None']"),
        "{out}"
    );
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
    let out = java(
        &served,
        "Client",
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
            try (Statement s = c.createStatement();
                 ResultSet r = s.executeQuery("SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID AS u")) {
                r.next();
                Object u = r.getObject(1);
                System.out.println("uuid " + u.getClass().getName() + " " + u + " " + r.getMetaData().getColumnTypeName(1));
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
    assert!(
        out.contains("uuid java.util.UUID a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 uuid"),
        "{out}"
    );
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
