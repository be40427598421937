//! The Supabase example pipelines end to end: the real `osiris` binary against a real
//! PostgREST 12 and the real PostgreSQL (CSV -> Supabase upsert, Supabase -> CSV).

use crate::common::{Project, repo_root};

#[path = "../../crates/drivers/supabase/tests/common/mod.rs"]
pub(crate) mod harness;

fn example_project(pg: &harness::PostgRest) -> Project {
    let project = Project::new();
    let example = repo_root().join("examples/supabase");
    for file in [
        "csv_to_supabase.yaml",
        "supabase_to_csv.yaml",
        "data/customers.csv",
    ] {
        project.write(file, std::fs::read(example.join(file)).unwrap());
    }
    connect_example(&project, pg);
    project
}

/// The examples' `@supabase.main` connection, pointed at the test PostgREST (no gateway, so
/// `rest_url`), its values in the project's `.env`.
pub(crate) fn connect_example(project: &Project, pg: &harness::PostgRest) {
    project.write(
        "osiris_connections.yaml",
        "connections:\n  supabase:\n    main:\n      rest_url: ${SUPABASE_REST_URL}\n      service_role_key: ${SUPABASE_SERVICE_ROLE_KEY}\n      pg_dsn: ${SUPABASE_DB_URL}\n",
    );
    project.write(
        ".env",
        format!(
            "SUPABASE_REST_URL={}\nSUPABASE_SERVICE_ROLE_KEY={}\nSUPABASE_DB_URL={}\n",
            pg.rest_url(),
            pg.service_key(),
            pg.dsn()
        ),
    );
}

async fn pg_rows(pg: &harness::PostgRest, sql: &str) -> Vec<String> {
    pg.sql()
        .await
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_to_supabase_upsert_then_supabase_to_csv() {
    let pg = harness::PostgRest::start(None).await;
    let project = example_project(&pg);

    let ran = project.osiris(&["run", "csv_to_supabase.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let rows = pg_rows(
        &pg,
        "SELECT concat_ws('|', id, name, email, balance, signed_up_at, active) FROM customers ORDER BY id",
    )
    .await;
    assert_eq!(
        rows,
        [
            "1|Acme Corp|billing@acme.example|1520.50|2024-03-01 09:15:00|t",
            "2|Globex, Inc.|ap@globex.example|75.00|2024-03-02 11:02:13|t",
            "3|Initech|310.10|2024-03-03 08:00:00|f",
            "4|Umbrella|finance@umbrella.example|0.99|2024-03-04 17:45:30|t",
        ]
    );
    let types = pg_rows(
        &pg,
        "SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute
         WHERE attrelid = 'customers'::regclass AND attnum > 0",
    )
    .await;
    assert_eq!(
        types,
        ["bigint,text,text,numeric(12,2),timestamp without time zone,boolean"]
    );

    // A second run with a changed row updates it instead of adding a duplicate.
    project.write(
        "data/customers.csv",
        "id,name,email,balance,signed_up_at,active\n3,Initech,it@initech.example,0.00,2024-03-03 08:00:00,true\n5,Hooli,,12.34,2024-03-05 10:00:00,true\n",
    );
    let ran = project.osiris(&["run", "csv_to_supabase.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let rows = pg_rows(
        &pg,
        "SELECT concat_ws('|', id, email, balance, active) FROM customers ORDER BY id",
    )
    .await;
    assert_eq!(
        rows,
        [
            "1|billing@acme.example|1520.50|t",
            "2|ap@globex.example|75.00|t",
            "3|it@initech.example|0.00|t",
            "4|finance@umbrella.example|0.99|t",
            "5|12.34|t",
        ]
    );

    let ran = project.osiris(&["run", "supabase_to_csv.yaml"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        String::from_utf8(project.read("output/customers.csv")).unwrap(),
        "id,name,email,balance,signed_up_at,active\n\
         1,Acme Corp,billing@acme.example,1520.50,2024-03-01 09:15:00,true\n\
         2,\"Globex, Inc.\",ap@globex.example,75.00,2024-03-02 11:02:13,true\n\
         3,Initech,it@initech.example,0.00,2024-03-03 08:00:00,true\n\
         4,Umbrella,finance@umbrella.example,0.99,2024-03-04 17:45:30,true\n\
         5,Hooli,,12.34,2024-03-05 10:00:00,true\n"
    );

    // The service key never reaches a file of the project or the output.
    let key = pg.service_key();
    for (path, bytes) in project.files(".osiris_sessions") {
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "the service key leaked into {path}"
        );
    }
}
