//! Source views (`materialize: view`, the file extractors' default, ADR 0036) end to end: the
//! same rows as a table through a processor and a writer, `sessions show`/`query` telling
//! whether the file still matches, `--from-step` replay refusing a changed or missing file.

use crate::common::{Project, rows};

fn json(ran: &crate::common::Ran) -> serde_json::Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {}", ran.all()))
}

/// A CSV with quoted commas, doubled quotes and a quoted line break, and a pipeline reading it
/// (with `materialize` when given), aggregating 2 of its 4 columns and writing the result.
fn project(materialize: Option<&str>) -> Project {
    let project = Project::new();
    project.write(
        "data/orders.csv",
        "id,customer,amount,note\n\
         1,\"Acme, Inc.\",10.50,plain\n\
         2,Umbrella,7.25,\"say \"\"hi\"\"\"\n\
         3,\"Acme, Inc.\",1.00,\"two\nlines\"\n\
         4,Umbrella,,x\n",
    );
    let materialize = materialize
        .map(|m| format!(", materialize: {m}"))
        .unwrap_or_default();
    project.write(
        "pipeline.yaml",
        format!(
            "oml_version: \"0.1.0\"\nname: lazy\nsteps:\n\
             \x20 - {{id: orders, component: filesystem.csv_extractor, mode: read, config: {{path: data/orders.csv{materialize}}}}}\n\
             \x20 - {{id: totals, component: duckdb.processor, mode: transform, needs: [orders], config: {{query: \"SELECT customer, sum(amount) AS amount, count(*) AS n FROM orders GROUP BY customer ORDER BY customer\"}}}}\n\
             \x20 - {{id: out, component: filesystem.csv_writer, mode: write, needs: [totals], config: {{path: out/totals.csv}}}}\n"
        ),
    );
    project
}

fn run(project: &Project, session: &str) {
    let ran = project.osiris(&["run", "pipeline.yaml", "--session-id", session]);
    assert_eq!(ran.code, 0, "{}", ran.all());
}

fn session(project: &Project, id: &str) -> std::path::PathBuf {
    project.path().join(".osiris_sessions").join(id)
}

#[test]
fn a_view_is_the_default_and_gives_the_same_rows_and_output_as_a_table() {
    let lazy = project(None);
    run(&lazy, "v");
    let eager = project(Some("table"));
    run(&eager, "t");
    assert_eq!(
        lazy.read("out/totals.csv"),
        eager.read("out/totals.csv"),
        "the same output"
    );
    assert_eq!(
        String::from_utf8(lazy.read("out/totals.csv")).unwrap(),
        "customer,amount,n\n\"Acme, Inc.\",11.5,2\nUmbrella,7.25,2\n"
    );
    let kind = |p: &Project, id: &str| {
        rows(
            &session(p, id),
            "SELECT table_type FROM information_schema.tables WHERE table_name = 'orders'",
        )
    };
    assert_eq!(kind(&lazy, "v"), ["VIEW"], "view is the default");
    assert_eq!(kind(&eager, "t"), ["BASE TABLE"]);
    let all = "SELECT * FROM orders ORDER BY id";
    assert_eq!(
        rows(&session(&lazy, "v"), all),
        rows(&session(&eager, "t"), all)
    );
    let types = "SELECT column_name || ' ' || data_type FROM information_schema.columns \
                 WHERE table_name = 'orders' ORDER BY ordinal_position";
    assert_eq!(
        rows(&session(&lazy, "v"), types),
        rows(&session(&eager, "t"), types)
    );
    // The view reads the file by its absolute path: usable from anywhere after the run.
    let definition = rows(
        &session(&lazy, "v"),
        "SELECT sql FROM duckdb_views() WHERE view_name = 'orders'",
    );
    let absolute = std::fs::canonicalize(lazy.path().join("data/orders.csv")).unwrap();
    assert!(
        definition[0].contains(&*absolute.to_string_lossy()),
        "{definition:?}"
    );
}

#[test]
fn sessions_show_and_query_say_whether_the_file_still_matches() {
    let project = project(None);
    run(&project, "s1");
    let shown = json(&project.osiris(&["sessions", "show", "s1", "--json"]));
    let step = &shown["steps"][0];
    assert_eq!(step["materialize"], "view");
    assert_eq!(step["rows"], 4, "counted through the view");
    assert_eq!(step["source"]["matches"], true);
    assert_eq!(step["source"]["files"][0]["state"], "unchanged");
    assert!(
        step["source"]["definition"]
            .as_str()
            .unwrap()
            .contains("read_csv"),
        "{step}"
    );
    assert_eq!(shown["steps"][1]["materialize"], "table");
    let query = project.osiris(&[
        "sessions",
        "query",
        "s1",
        "SELECT count(*) AS n FROM orders",
        "--format",
        "csv",
    ]);
    assert_eq!(query.code, 0, "{}", query.all());
    assert_eq!(query.stdout, "n\n4\n");
    assert!(!query.stderr.contains("warning"), "{}", query.stderr);

    // Same size, other content.
    let text = String::from_utf8(project.read("data/orders.csv")).unwrap();
    project.write("data/orders.csv", text.replace("10.50", "99.50"));
    let shown = json(&project.osiris(&["sessions", "show", "s1", "--json"]));
    let source = &shown["steps"][0]["source"];
    assert_eq!(source["matches"], false);
    assert_eq!(source["files"][0]["state"], "changed");
    assert_eq!(shown["steps"][0]["rows"], 0, "not read: its rows are gone");
    let text = project.osiris(&["sessions", "show", "s1"]);
    assert!(
        text.stdout.contains("changed since the run"),
        "{}",
        text.stdout
    );
    let query = project.osiris(&["sessions", "query", "s1", "SELECT count(*) FROM orders"]);
    assert_eq!(query.code, 0, "{}", query.all());
    assert!(
        query
            .stderr
            .contains("warning: step 'orders' is a view over")
            && query.stderr.contains("changed"),
        "{}",
        query.stderr
    );

    // Moved away.
    std::fs::rename(
        project.path().join("data/orders.csv"),
        project.path().join("data/moved.csv"),
    )
    .unwrap();
    let shown = json(&project.osiris(&["sessions", "show", "s1", "--json"]));
    assert_eq!(shown["steps"][0]["source"]["files"][0]["state"], "missing");
    // The processor's table is still there, whatever happened to the file.
    assert_eq!(shown["steps"][1]["rows"], 2);
}

#[test]
fn replay_refuses_a_changed_or_missing_file_with_its_own_exit_code() {
    let project = project(None);
    run(&project, "first");
    // Unchanged: replaying the steps after the extractor reuses its view.
    let ok = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--from-step",
        "totals",
        "--session",
        "first",
        "--session-id",
        "again",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.all());

    let text = String::from_utf8(project.read("data/orders.csv")).unwrap();
    project.write("data/orders.csv", text.replace("4,Umbrella,,x\n", ""));
    let refused = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--from-step",
        "totals",
        "--session",
        "first",
        "--session-id",
        "refused",
    ]);
    assert_eq!(refused.code, 3, "{}", refused.all());
    assert!(
        refused.stderr.contains("step 'orders' reads")
            && refused.stderr.contains("orders.csv")
            && refused.stderr.contains("changed"),
        "{}",
        refused.stderr
    );
    assert!(
        !session(&project, "refused")
            .join("pipeline_data.duckdb")
            .exists(),
        "nothing ran"
    );
    let as_json = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--from-step",
        "totals",
        "--session",
        "first",
        "--json",
    ]);
    assert_eq!(as_json.code, 3);
    assert_eq!(json(&as_json)["kind"], "source_changed");

    // Replaying from the extractor reads the file again: allowed.
    let reread = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--from-step",
        "orders",
        "--session",
        "first",
    ]);
    assert_eq!(reread.code, 0, "{}", reread.all());

    std::fs::remove_file(project.path().join("data/orders.csv")).unwrap();
    let missing = project.osiris(&[
        "run",
        "pipeline.yaml",
        "--from-step",
        "totals",
        "--session",
        "first",
    ]);
    assert_eq!(missing.code, 3, "{}", missing.all());
    assert!(missing.stderr.contains("missing"), "{}", missing.stderr);
}

#[test]
fn a_parquet_glob_view_reads_exactly_the_files_it_matched() {
    let project = Project::new();
    std::fs::create_dir_all(project.path().join("data")).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    for (name, from) in [("a", 0), ("b", 10)] {
        let path = project.path().join(format!("data/{name}.parquet"));
        conn.execute_batch(&format!(
            "COPY (SELECT range + {from} AS n FROM range(10)) TO '{}' (FORMAT parquet)",
            path.display()
        ))
        .unwrap();
    }
    project.write(
        "pipeline.yaml",
        "oml_version: \"0.1.0\"\nname: glob\nsteps:\n\
         \x20 - {id: nums, component: filesystem.parquet_extractor, mode: read, config: {path: \"data/*.parquet\"}}\n",
    );
    run(&project, "g");
    // A file added after the run does not join the kept view.
    conn.execute_batch(&format!(
        "COPY (SELECT 100 AS n) TO '{}' (FORMAT parquet)",
        project.path().join("data/c.parquet").display()
    ))
    .unwrap();
    let shown = json(&project.osiris(&["sessions", "show", "g", "--json"]));
    let step = &shown["steps"][0];
    assert_eq!(step["materialize"], "view");
    assert_eq!(step["rows"], 20);
    assert_eq!(step["source"]["files"].as_array().unwrap().len(), 2);
    assert_eq!(step["source"]["matches"], true);
}

/// A row past the sniffer's sample that does not convert is found only when a SQL step reads
/// the view: the error names the file, the line, the step whose view reads it and that step's
/// `dtype`, not DuckDB's own `read_csv` options; no table of the failed step remains.
#[test]
fn a_bad_row_found_through_a_view_names_the_file_line_and_source_step() {
    let project = Project::new();
    let mut data = String::from("id,v\n");
    for i in 0..30_000 {
        data.push_str(&format!("{i},{i}\n"));
    }
    data.push_str("30000,oops\n");
    project.write("data.csv", data);
    project.write(
        "p.yaml",
        "oml_version: \"0.1.0\"\nname: late\nsteps:\n\
         \x20 - {id: src, component: filesystem.csv_extractor, mode: read, config: {path: data.csv}}\n\
         \x20 - {id: total, component: duckdb.processor, mode: transform, needs: [src], config: {query: \"SELECT sum(v) AS s FROM src\"}}\n",
    );
    let ran = project.osiris(&["run", "p.yaml", "--session-id", "s1"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    let all = ran.all();
    for expected in [
        "step 'total' (duckdb.processor)",
        "data.csv line 30002",
        "read now through step 'src'",
        "error when converting column \"v\". Could not convert string \"oops\" to 'BIGINT'",
        "`dtype` in step 'src'",
    ] {
        assert!(all.contains(expected), "{expected:?} in {all}");
    }
    assert!(
        !all.contains("types={") && !all.contains("sample_size"),
        "DuckDB's own option names: {all}"
    );
    assert_eq!(
        crate::common::tables(&session(&project, "s1")),
        ["src"],
        "no table of the failed step"
    );

    // A writer that reads the view meets the same row, and says the same.
    project.write(
        "w.yaml",
        "oml_version: \"0.1.0\"\nname: late_write\nsteps:\n\
         \x20 - {id: src, component: filesystem.csv_extractor, mode: read, config: {path: data.csv}}\n\
         \x20 - {id: out, component: filesystem.csv_writer, mode: write, needs: [src], config: {path: out.csv}}\n",
    );
    let ran = project.osiris(&["run", "w.yaml", "--session-id", "s2"]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    let all = ran.all();
    for expected in [
        "step 'out' (filesystem.csv_writer)",
        "data.csv line 30002",
        "read now through step 'src'",
        "`dtype` in step 'src'",
    ] {
        assert!(all.contains(expected), "{expected:?} in {all}");
    }
    assert!(!all.contains("types={"), "{all}");
}
