//! The Python Osiris project's own pipelines, byte for byte (`tests/fixtures/osiris-compat/`,
//! sources in its README), through the real binary:
//!
//! - `osiris_compat::validate::<file>`: `osiris validate` on every corpus file ends with exit 0,
//!   1 or 2, never a panic (101) or a signal;
//! - `osiris_compat::run::<file>`: every file the Python runner can run runs here unchanged and
//!   leaves the output the Python runner leaves, checked value by value against MariaDB seed
//!   data and CSV files written for these tests (`seed/`). Expected values are derived by hand
//!   from the seed and each pipeline's SQL. CSV files are compared after putting their columns
//!   in the Python writer's order (sorted by name), the one deliberate difference in them.
//!
//! Each run test has its own MariaDB database and, when it writes to Supabase, its own
//! PostgreSQL database behind its own PostgREST.

use std::path::{Path, PathBuf};

use crate::common::{Project, Ran, ScratchMariaDb, fixtures};

// The Supabase tests' PostgREST harness (one PostgreSQL database + PostgREST process per test).
use crate::supabase::harness;

fn corpus_dir() -> PathBuf {
    fixtures().join("osiris-compat")
}

/// Every corpus file, with whether the Python runner can run it (the fixture README says why).
const CORPUS: &[(&str, bool)] = &[
    ("mysql_duckdb_supabase_demo.yaml", true),
    ("mysql_duckdb_supabase_append.yaml", true),
    ("mysql_duckdb_supabase_debug.yaml", false),
    ("mysql_to_local_csv_all_tables.yaml", true),
    ("mysql_to_supabase_all_tables.yaml", true),
    ("pipeline_format_mysql_to_csv.yaml", false),
    ("pipeline_format_consolidate_data.yaml", true),
    ("filesystem_connections_process_exports.yaml", true),
    ("filesystem_connections_io_separation.yaml", false),
    ("concepts_mysql_to_supabase.yaml", true),
    ("sql_safety_extract_movies.yaml", true),
    ("sql_safety_load_movies.yaml", false),
    ("x_connection_fields_extract_customers.yaml", false),
    ("duckdb_e2b_readiness_mysql_transform_supabase.yaml", false),
    ("oml_validation_calculate_success.yaml", false),
    ("capabilities_example_failures.yaml", false),
    ("m1c_thin_slice_supabase_to_mysql.yaml", false),
    ("m2_planning_daily_customer_sync.yaml", false),
    ("adr0019_mysql_to_csv_export.yaml", false),
    ("e2b_dataflow_smoke.yaml", true),
    ("mcp_validation_parity_valid.yaml", true),
    ("mcp_validation_parity_duplicate_ids.yaml", false),
    ("mcp_claude_desktop_validate.yaml", true),
    ("mcp_tools_oml_valid.yaml", false),
    ("compiler_primary_key_preserved.yaml", false),
    ("filesystem_contract_generate.yaml", false),
    ("oml_schema_guard_valid.yaml", false),
    ("mcp_guide_sample.yaml", true),
];

// Issue 12 asks for at least 20 pipelines.
const _: () = assert!(CORPUS.len() >= 20);

/// Environment for the connections file when no service is needed (validate).
const OFFLINE_ENV: &[(&str, &str)] = &[
    ("MYSQL_DATABASE", "osiris_compat_validate"),
    ("MYSQL_PASSWORD", ""),
    ("SUPABASE_REST_URL", "http://127.0.0.1:9"),
    (
        "SUPABASE_SERVICE_ROLE_KEY",
        "compat-validate-key-0123456789abcdef",
    ),
    (
        "SUPABASE_DB_URL",
        "postgresql://postgres@127.0.0.1:9/none?sslmode=disable",
    ),
];

/// A scratch project holding one corpus pipeline (at its root, which is also the working
/// directory, so that paths relative to the pipeline and to the current directory agree), the
/// corpus connections file and the seed CSV files.
fn compat_project(file: &str) -> Project {
    let project = Project::new();
    let dir = corpus_dir();
    project.write(
        file,
        std::fs::read(dir.join("pipelines").join(file)).unwrap(),
    );
    project.write(
        "osiris_connections.yaml",
        std::fs::read(dir.join("osiris_connections.yaml")).unwrap(),
    );
    for name in ["customers.csv", "orders.csv"] {
        project.write(
            &format!("data/exports/{name}"),
            std::fs::read(dir.join("seed/data/exports").join(name)).unwrap(),
        );
    }
    project
}

#[test]
fn osiris_compat_corpus_matches_its_readme_and_table() {
    let dir = corpus_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir.join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CORPUS.iter().map(|(f, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every corpus file has an entry in CORPUS");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for (file, runnable) in CORPUS {
        let line = readme
            .lines()
            .find(|l| l.contains(&format!("`{file}`")))
            .unwrap_or_else(|| panic!("the fixture README names no source for {file}"));
        let says_runnable = line.contains("| run |");
        assert_eq!(
            says_runnable, *runnable,
            "README and CORPUS disagree on {file}: {line}"
        );
    }
}

/// `osiris validate` ends with 0, 1 or 2: a verdict, never a crash.
fn validate_exits_cleanly(file: &str) {
    let project = compat_project(file);
    let ran = project.osiris_env(&["validate", file], OFFLINE_ENV);
    assert!(
        matches!(ran.code, 0..=2),
        "osiris validate {file} exited {} (101 = panic, -1 = signal):\n{}",
        ran.code,
        ran.all()
    );
}

macro_rules! corpus_tests {
    ($kind:ident: $($name:ident => $file:literal),* $(,)?) => {
        mod $kind {
            $(
                #[test]
                fn $name() {
                    super::validate_exits_cleanly($file);
                }
            )*
        }
    };
}

corpus_tests! { validate:
    mysql_duckdb_supabase_demo => "mysql_duckdb_supabase_demo.yaml",
    mysql_duckdb_supabase_append => "mysql_duckdb_supabase_append.yaml",
    mysql_duckdb_supabase_debug => "mysql_duckdb_supabase_debug.yaml",
    mysql_to_local_csv_all_tables => "mysql_to_local_csv_all_tables.yaml",
    mysql_to_supabase_all_tables => "mysql_to_supabase_all_tables.yaml",
    pipeline_format_mysql_to_csv => "pipeline_format_mysql_to_csv.yaml",
    pipeline_format_consolidate_data => "pipeline_format_consolidate_data.yaml",
    filesystem_connections_process_exports => "filesystem_connections_process_exports.yaml",
    filesystem_connections_io_separation => "filesystem_connections_io_separation.yaml",
    concepts_mysql_to_supabase => "concepts_mysql_to_supabase.yaml",
    sql_safety_extract_movies => "sql_safety_extract_movies.yaml",
    sql_safety_load_movies => "sql_safety_load_movies.yaml",
    x_connection_fields_extract_customers => "x_connection_fields_extract_customers.yaml",
    duckdb_e2b_readiness_mysql_transform_supabase => "duckdb_e2b_readiness_mysql_transform_supabase.yaml",
    oml_validation_calculate_success => "oml_validation_calculate_success.yaml",
    capabilities_example_failures => "capabilities_example_failures.yaml",
    m1c_thin_slice_supabase_to_mysql => "m1c_thin_slice_supabase_to_mysql.yaml",
    m2_planning_daily_customer_sync => "m2_planning_daily_customer_sync.yaml",
    adr0019_mysql_to_csv_export => "adr0019_mysql_to_csv_export.yaml",
    e2b_dataflow_smoke => "e2b_dataflow_smoke.yaml",
    mcp_validation_parity_valid => "mcp_validation_parity_valid.yaml",
    mcp_validation_parity_duplicate_ids => "mcp_validation_parity_duplicate_ids.yaml",
    mcp_claude_desktop_validate => "mcp_claude_desktop_validate.yaml",
    mcp_tools_oml_valid => "mcp_tools_oml_valid.yaml",
    compiler_primary_key_preserved => "compiler_primary_key_preserved.yaml",
    filesystem_contract_generate => "filesystem_contract_generate.yaml",
    oml_schema_guard_valid => "oml_schema_guard_valid.yaml",
    mcp_guide_sample => "mcp_guide_sample.yaml",
}

// ---------------------------------------------------------------------------------------------
// Services

/// The scratch MariaDB database of one corpus run, seeded with `seed/mysql.sql`.
fn seeded_mariadb() -> ScratchMariaDb {
    let db = ScratchMariaDb::new("osiris_compat");
    let seed = std::fs::read_to_string(corpus_dir().join("seed/mysql.sql")).unwrap();
    db.query(&seed);
    db
}

/// One corpus file set up to run: project, MariaDB database, optional PostgREST.
struct Compat {
    file: &'static str,
    project: Project,
    db: ScratchMariaDb,
    env: Vec<(String, String)>,
}

impl Compat {
    fn new(file: &'static str, pg: Option<&harness::PostgRest>) -> Self {
        let db = seeded_mariadb();
        let mut env: Vec<(String, String)> = OFFLINE_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut set = |key: &str, value: String| {
            env.retain(|(k, _)| k != key);
            env.push((key.to_owned(), value));
        };
        set("MYSQL_DATABASE", db.0.clone());
        if let Some(pg) = pg {
            set("SUPABASE_REST_URL", pg.rest_url());
            set("SUPABASE_SERVICE_ROLE_KEY", pg.service_key());
            set("SUPABASE_DB_URL", pg.dsn());
        }
        Self {
            file,
            project: compat_project(file),
            db,
            env,
        }
    }

    /// `osiris run <file>`, whatever its outcome.
    fn try_run(&self) -> Ran {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.project.osiris_env(&["run", self.file], &env)
    }

    /// `osiris run <file>`, which must succeed.
    fn run(&self) -> Ran {
        let ran = self.try_run();
        assert_eq!(
            ran.code,
            0,
            "osiris run {} (unchanged Osiris pipeline) failed:\n{}",
            self.file,
            ran.all()
        );
        ran
    }

    fn session(&self) -> PathBuf {
        self.project.session()
    }

    /// A CSV file the run wrote, compared with what the Python writer writes.
    fn assert_csv(&self, relative: &str, python_csv: &str) {
        let text = String::from_utf8(self.project.read(relative)).unwrap();
        assert_csv_like_python(&text, python_csv, relative);
    }
}

/// Parses CSV as Python's csv module writes it (minimal quoting, `""` escapes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Compares a CSV file with the Python writer's output for the same table: same columns (the
/// Python writer sorts them by name; osiris-rs keeps the table's order unless `sort_columns`),
/// same rows in the same order, same text in every field.
fn assert_csv_like_python(actual: &str, python: &str, what: &str) {
    let actual_rows = parse_csv(actual);
    let expected = parse_csv(python);
    assert!(!actual_rows.is_empty(), "{what} is empty");
    let header = &actual_rows[0];
    let mut sorted_header = header.clone();
    sorted_header.sort();
    assert_eq!(
        sorted_header, expected[0],
        "{what}: columns differ from the Python output\n{actual}"
    );
    let order: Vec<usize> = expected[0]
        .iter()
        .map(|name| header.iter().position(|h| h == name).unwrap())
        .collect();
    let reordered: Vec<Vec<String>> = actual_rows
        .iter()
        .map(|row| order.iter().map(|&i| row[i].clone()).collect())
        .collect();
    assert_eq!(
        reordered, expected,
        "{what}: rows differ from the Python output\nactual file:\n{actual}"
    );
    assert!(
        !actual.contains('\r'),
        "{what}: Python writes LF line endings"
    );
}

async fn pg_rows(pg: &harness::PostgRest, sql: &str) -> Vec<String> {
    pg.sql()
        .await
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

/// A Postgres number as plain text whatever type `create_if_missing` chose for it
/// (integer, bigint, numeric, double precision): `trim_scale(x::numeric)`.
fn num(column: &str) -> String {
    format!("trim_scale({column}::numeric)")
}

// ---------------------------------------------------------------------------------------------
// Expected outputs, derived by hand from seed/mysql.sql and the pipelines' SQL.

/// `compute-director-stats` of the three mysql_duckdb_supabase examples: movies with a budget
/// and a box office joined to their director (movie 7 has no box office, movie 8 no director
/// row), one row per director. Nolan: movies 1-3, runtime (148+150+180)/3 = 159.3, budget
/// 460M/3 = 153333333, box office 2177.7M/3 = 725900000, ROI (5.23+1.8265+9.756)/3 = 5.60;
/// Gerwig: movies 4-5, ROI (7.9+9.9434)/2 = 8.92; Bong: movie 6, ROI 262.1/11.4 = 22.99.
const DIRECTOR_STATS: [&str; 3] = [
    "1|Christopher Nolan|British|3|2|159.3|2010|2023|153333333|725900000|2177700000|5.6",
    "2|Greta Gerwig|American|2|2|104|2017|2023|77500000|760400000|1520800000|8.92",
    "3|Bong Joon-ho|South Korean|1|1|132|2019|2019|11400000|262100000|262100000|22.99",
];

fn director_stats_sql(table: &str) -> String {
    format!(
        "SELECT concat_ws('|', {}, director_name, director_nationality, {}, {}, {}, {}, {}, {}, {}, {}, {}) FROM {table} ORDER BY director_id",
        num("director_id"),
        num("movie_count"),
        num("unique_genres"),
        num("avg_runtime_minutes"),
        num("first_movie_year"),
        num("latest_movie_year"),
        num("avg_budget_usd"),
        num("avg_box_office_usd"),
        num("total_box_office_usd"),
        num("avg_roi_ratio"),
    )
}

/// `users` as the Python writers leave it (all columns, by id).
const USERS: [&str; 3] = [
    "1|Alice|alice@example.com|1",
    "2|Bob|bob@example.com|0",
    "3|Carol|carol@example.com|1",
];

fn users_sql(table: &str) -> String {
    format!(
        "SELECT concat_ws('|', {}, name, email, {}) FROM {table} ORDER BY id",
        num("id"),
        num("active")
    )
}

/// `SELECT * FROM users` as the Python csv_writer writes it (columns sorted by name).
const USERS_CSV: &str = "active,email,id,name\n\
1,alice@example.com,1,Alice\n\
0,bob@example.com,2,Bob\n\
1,carol@example.com,3,Carol\n";

// ---------------------------------------------------------------------------------------------
// Run tests: one per runnable corpus file.

mod run {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn mysql_duckdb_supabase_demo() {
        let pg = harness::PostgRest::start(None).await;
        let compat = Compat::new("mysql_duckdb_supabase_demo.yaml", Some(&pg));
        compat.run();
        assert_eq!(
            pg_rows(&pg, &director_stats_sql("director_stats_replace")).await,
            DIRECTOR_STATS
        );
        // The run keeps the processor's result under its step id.
        let session = compat.session();
        assert_eq!(
            crate::common::rows(
                &session,
                "SELECT director_id, movie_count FROM \"compute-director-stats\""
            ),
            ["1|3", "2|2", "3|1"]
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn mysql_duckdb_supabase_append() {
        let pg = harness::PostgRest::start(None).await;
        let compat = Compat::new("mysql_duckdb_supabase_append.yaml", Some(&pg));
        compat.run();
        assert_eq!(
            pg_rows(&pg, &director_stats_sql("director_stats_append")).await,
            DIRECTOR_STATS
        );
        // Append into the table the first run created with `PRIMARY KEY (director_id)`, as
        // Python's writer creates it: the same rows again are duplicate keys. Python's insert
        // fails there too; here the step fails naming the key, and the table keeps one copy.
        let again = compat.try_run();
        assert_eq!(again.code, 1, "{}", again.all());
        assert!(again.stderr.contains("duplicate key"), "{}", again.stderr);
        assert_eq!(
            pg_rows(
                &pg,
                "SELECT concat_ws('|', director_id, count(*)) FROM director_stats_append GROUP BY director_id ORDER BY director_id"
            )
            .await,
            ["1|1", "2|1", "3|1"]
        );
    }

    #[test]
    fn mysql_to_local_csv_all_tables() {
        let compat = Compat::new("mysql_to_local_csv_all_tables.yaml", None);
        compat.run();
        compat.assert_csv(
            "output/actors.csv",
            "actor_id,birth_year,name\n1,1976,Cillian Murphy\n2,1990,Margot Robbie\n3,1967,Song Kang-ho\n",
        );
        compat.assert_csv(
            "output/directors.csv",
            "director_id,name,nationality\n\
             1,Christopher Nolan,British\n\
             2,Greta Gerwig,American\n\
             3,Bong Joon-ho,South Korean\n\
             4,Ava DuVernay,American\n",
        );
        compat.assert_csv(
            "output/movie_actors.csv",
            "actor_id,movie_id,role\n\
             1,1,Robert Fischer\n\
             1,3,J. Robert Oppenheimer\n\
             2,5,Barbie\n\
             3,6,Kim Ki-taek\n",
        );
        compat.assert_csv(
            "output/movies.csv",
            "box_office_usd,budget_usd,director_id,genre,movie_id,release_year,runtime_minutes,title\n\
             836800000.00,160000000.00,1,Sci-Fi,1,2010,148,Inception\n\
             365300000.00,200000000.00,1,Sci-Fi,2,2020,150,Tenet\n\
             975600000.00,100000000.00,1,Drama,3,2023,180,Oppenheimer\n\
             79000000.00,10000000.00,2,Drama,4,2017,94,Lady Bird\n\
             1441800000.00,145000000.00,2,Comedy,5,2023,114,Barbie\n\
             262100000.00,11400000.00,3,Thriller,6,2019,132,Parasite\n\
             ,50000000.00,3,Adventure,7,2017,120,Okja\n\
             ,,9,Drama,8,2021,100,Orphan Reel\n",
        );
        compat.assert_csv(
            "output/reviews.csv",
            "movie_id,rating,review_id,review_text,reviewed_at\n\
             3,9.5,1,Stunning.,2023-07-21 18:30:00\n\
             5,8.0,2,\"Pink, \"\"smart\"\", fun\",2023-07-22 10:00:00\n\
             6,,3,,2019-10-01 09:15:00\n",
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn mysql_to_supabase_all_tables() {
        let pg = harness::PostgRest::start(None).await;
        let compat = Compat::new("mysql_to_supabase_all_tables.yaml", Some(&pg));
        compat.run();
        assert_eq!(
            pg_rows(
                &pg,
                &format!(
                    "SELECT concat_ws('|', {}, name, {}) FROM actors ORDER BY actor_id",
                    num("actor_id"),
                    num("birth_year")
                )
            )
            .await,
            [
                "1|Cillian Murphy|1976",
                "2|Margot Robbie|1990",
                "3|Song Kang-ho|1967"
            ]
        );
        assert_eq!(
            pg_rows(
                &pg,
                &format!(
                    "SELECT concat_ws('|', {}, name, nationality) FROM directors ORDER BY director_id",
                    num("director_id")
                )
            )
            .await,
            [
                "1|Christopher Nolan|British",
                "2|Greta Gerwig|American",
                "3|Bong Joon-ho|South Korean",
                "4|Ava DuVernay|American"
            ]
        );
        assert_eq!(
            pg_rows(
                &pg,
                &format!(
                    "SELECT concat_ws('|', {}, {}, role) FROM movie_actors ORDER BY movie_id, actor_id",
                    num("movie_id"),
                    num("actor_id")
                )
            )
            .await,
            [
                "1|1|Robert Fischer",
                "3|1|J. Robert Oppenheimer",
                "5|2|Barbie",
                "6|3|Kim Ki-taek"
            ]
        );
        assert_eq!(
            pg_rows(
                &pg,
                &format!(
                    "SELECT concat_ws('|', {}, title, {}, {}, genre, {}, coalesce({}::text, 'NULL'), coalesce({}::text, 'NULL')) FROM movies ORDER BY movie_id",
                    num("movie_id"),
                    num("release_year"),
                    num("director_id"),
                    num("runtime_minutes"),
                    num("budget_usd"),
                    num("box_office_usd")
                )
            )
            .await,
            [
                "1|Inception|2010|1|Sci-Fi|148|160000000|836800000",
                "2|Tenet|2020|1|Sci-Fi|150|200000000|365300000",
                "3|Oppenheimer|2023|1|Drama|180|100000000|975600000",
                "4|Lady Bird|2017|2|Drama|94|10000000|79000000",
                "5|Barbie|2023|2|Comedy|114|145000000|1441800000",
                "6|Parasite|2019|3|Thriller|132|11400000|262100000",
                "7|Okja|2017|3|Adventure|120|50000000|NULL",
                "8|Orphan Reel|2021|9|Drama|100|NULL|NULL"
            ]
        );
        assert_eq!(
            pg_rows(
                &pg,
                &format!(
                    "SELECT concat_ws('|', {}, {}, coalesce({}::text, 'NULL'), coalesce(review_text, 'NULL'), to_char(reviewed_at::timestamp, 'YYYY-MM-DD HH24:MI:SS')) FROM reviews ORDER BY review_id",
                    num("review_id"),
                    num("movie_id"),
                    num("rating")
                )
            )
            .await,
            [
                "1|3|9.5|Stunning.|2023-07-21 18:30:00",
                "2|5|8|Pink, \"smart\", fun|2023-07-22 10:00:00",
                "3|6|NULL|NULL|2019-10-01 09:15:00"
            ]
        );
    }

    /// Documented intent (and the `inputs` wiring the issue adds): each writer writes the
    /// extractor its `inputs` names, although no step has `needs`. Python's runner ignored
    /// `inputs` and chained the steps in file order, so `write_customers` got extract_orders.
    #[tokio::test(flavor = "multi_thread")]
    async fn pipeline_format_consolidate_data() {
        let pg = harness::PostgRest::start(None).await;
        let compat = Compat::new("pipeline_format_consolidate_data.yaml", Some(&pg));
        compat.run();
        assert_eq!(
            pg_rows(
                &pg,
                &format!(
                    "SELECT concat_ws('|', {}, name, email, country) FROM customers ORDER BY id",
                    num("id")
                )
            )
            .await,
            [
                "1|Acme Corp|billing@acme.example|CZ",
                "2|Globex|ap@globex.example|DE",
                "3|Initech|it@initech.example|US"
            ]
        );
        assert_eq!(
            pg_rows(
                &pg,
                &format!(
                    "SELECT concat_ws('|', {}, {}, {}, to_char(created_at::timestamp, 'YYYY-MM-DD HH24:MI:SS')) FROM orders ORDER BY id",
                    num("id"),
                    num("customer_id"),
                    num("total_amount")
                )
            )
            .await,
            [
                "2|1|80|2024-01-01 00:00:00",
                "3|2|15.25|2024-02-14 12:00:00",
                "4|3|999.99|2024-03-01 08:30:00",
                "5|1|42|2025-01-05 17:45:00"
            ]
        );
    }

    /// The connection's `base_dir` places the files (as the guide documents; Python's runner
    /// dropped it and read from the current directory), `parse_dates` types `created_at`.
    #[test]
    fn filesystem_connections_process_exports() {
        let compat = Compat::new("filesystem_connections_process_exports.yaml", None);
        compat.run();
        let session = compat.session();
        assert_eq!(
            crate::common::rows(
                &session,
                "SELECT typeof(created_at) FROM \"extract-customers\" LIMIT 1"
            ),
            ["TIMESTAMP"]
        );
        assert_eq!(
            crate::common::rows(
                &session,
                "SELECT id, name, email, created_at FROM \"extract-customers\" ORDER BY id"
            ),
            [
                "1|Acme Corp|billing@acme.example|2024-01-15 10:30:00",
                "2|Globex, Inc.|ap@globex.example|2024-02-01 08:00:00",
                "3|Initech|NULL|2024-02-29 23:59:59"
            ]
        );
        assert_eq!(
            crate::common::rows(
                &session,
                "SELECT order_id, customer_id, amount, status FROM \"extract-orders\" ORDER BY order_id"
            ),
            ["100|1|19.99|paid", "101|2|250.0|refunded", "102|1|5.5|paid"]
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concepts_mysql_to_supabase() {
        let pg = harness::PostgRest::start(None).await;
        let compat = Compat::new("concepts_mysql_to_supabase.yaml", Some(&pg));
        compat.run();
        assert_eq!(pg_rows(&pg, &users_sql("users")).await, USERS);
    }

    #[test]
    fn sql_safety_extract_movies() {
        let compat = Compat::new("sql_safety_extract_movies.yaml", None);
        compat.run();
        assert_eq!(
            crate::common::rows(
                &compat.session(),
                "SELECT movie_id, title, release_year FROM get_movies ORDER BY movie_id"
            ),
            [
                "2|Tenet|2020",
                "3|Oppenheimer|2023",
                "5|Barbie|2023",
                "8|Orphan Reel|2021"
            ]
        );
        assert_eq!(
            crate::common::rows(&compat.session(), "SELECT count(*) FROM get_movies"),
            ["4"]
        );
    }

    /// No `mode` on any step, `FROM input_df`: the 8 movies counted per year, newest first.
    #[test]
    fn e2b_dataflow_smoke() {
        let compat = Compat::new("e2b_dataflow_smoke.yaml", None);
        compat.run();
        compat.assert_csv(
            "output/year_stats.csv",
            "movie_count,release_year\n2,2023\n1,2021\n1,2020\n1,2019\n2,2017\n1,2010\n",
        );
    }

    /// Writes the absolute path `/tmp/output.csv`, as the pipeline says.
    #[test]
    fn mcp_validation_parity_valid() {
        let _ = std::fs::remove_file("/tmp/output.csv");
        let compat = Compat::new("mcp_validation_parity_valid.yaml", None);
        compat.run();
        let text = std::fs::read_to_string(Path::new("/tmp/output.csv")).unwrap();
        assert_csv_like_python(&text, USERS_CSV, "/tmp/output.csv");
        let _ = std::fs::remove_file("/tmp/output.csv");
    }

    /// Two steps without `needs` (implicit chain): users from @mysql.db1 into @supabase.target.
    #[tokio::test(flavor = "multi_thread")]
    async fn mcp_claude_desktop_validate() {
        let pg = harness::PostgRest::start(None).await;
        let compat = Compat::new("mcp_claude_desktop_validate.yaml", Some(&pg));
        compat.run();
        assert_eq!(pg_rows(&pg, &users_sql("users")).await, USERS);
    }

    /// The sample pipeline the MCP server hands to LLMs: active users to CSV via `input_df`.
    #[test]
    fn mcp_guide_sample() {
        let compat = Compat::new("mcp_guide_sample.yaml", None);
        compat.run();
        compat.assert_csv(
            "output/users.csv",
            "active,email,id,name\n1,alice@example.com,1,Alice\n1,carol@example.com,3,Carol\n",
        );
        // The seed database is untouched by a read-only pipeline.
        assert_eq!(compat.db.query("SELECT count(*) FROM users"), "3\n");
    }
}
