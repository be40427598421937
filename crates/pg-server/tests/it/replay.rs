//! Replays the catalog queries that DBeaver, DataGrip, Metabase, pgcli, Grafana, SQLAlchemy and
//! psql send (`tests/fixtures/client-queries.sql`) through the extended query protocol: each
//! must run and answer with the columns its client reads.

use crate::common::{IDS, PASSWORD, connect, start};

struct Fixture {
    client: String,
    columns: Option<Vec<String>>,
    min_rows: usize,
    sql: String,
}

fn fixtures() -> Vec<Fixture> {
    let text = include_str!("../fixtures/client-queries.sql");
    let mut out = Vec::new();
    let (mut client, mut columns, mut min_rows, mut sql) = (None, None, 0, String::new());
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("-- client: ") {
            client = Some(name.to_owned());
        } else if let Some(cols) = line.strip_prefix("-- columns: ") {
            columns = (cols != "*").then(|| cols.split(", ").map(str::to_owned).collect());
        } else if let Some(rows) = line.strip_prefix("-- rows: >=") {
            min_rows = rows.parse().unwrap();
        } else if line == ";" {
            out.push(Fixture {
                client: client
                    .take()
                    .expect("a `-- client:` line before each query"),
                columns: columns.take(),
                min_rows,
                sql: std::mem::take(&mut sql).replace("$SESSION", IDS[2]),
            });
            min_rows = 0;
        } else if client.is_some() && !line.starts_with("--") {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn client_catalog_queries_answer_with_the_expected_shape() {
    let server = start(10).await;
    let client = connect(&server, PASSWORD).await.unwrap();
    let fixtures = fixtures();
    assert!(fixtures.len() >= 30, "{} fixtures", fixtures.len());
    let mut failures = Vec::new();
    for f in &fixtures {
        if f.columns.is_none() && f.min_rows == 0 {
            if let Err(e) = client.batch_execute(&f.sql).await {
                failures.push(format!("{}: {e:?}\n{}", f.client, f.sql));
            }
            continue;
        }
        let stmt = match client.prepare(&f.sql).await {
            Ok(stmt) => stmt,
            Err(e) => {
                failures.push(format!("{}: prepare: {e:?}\n{}", f.client, f.sql));
                continue;
            }
        };
        let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
        if let Some(expected) = &f.columns {
            let missing: Vec<&String> = expected
                .iter()
                .filter(|e| !names.contains(&e.as_str()))
                .collect();
            if !missing.is_empty() {
                failures.push(format!("{}: columns {names:?} lack {missing:?}", f.client));
            }
        }
        match client.query(&stmt, &[]).await {
            Ok(rows) if rows.len() >= f.min_rows => {}
            Ok(rows) => failures.push(format!(
                "{}: {} rows, expected at least {}",
                f.client,
                rows.len(),
                f.min_rows
            )),
            Err(e) => failures.push(format!("{}: {e:?}\n{}", f.client, f.sql)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
