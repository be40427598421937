//! `bench-graphql`: the graphql.extractor step against simply downloading the same pages with
//! the same HTTP client, from the same local GraphQL server, in one process.
//!
//! The server (async-graphql over axum, `test-graphql-server`) runs on its own two-thread
//! runtime; both sides pay its cost equally. The download side sends exactly the step's
//! requests (same query, same variables, cursors known in advance) one after another through
//! `http_support::HttpClient` and only reads the bodies. The step side runs the driver into a
//! real run database (`pipeline_data.duckdb` in a temp dir): parse, page info, arrow-json
//! decoding and DuckDB appends, overlapped with fetching. Sides alternate; medians are printed
//! with the step/download ratio. Goal (issue): within 1.2x.
//!
//! Hand-run: `bash bench/run-graphql.sh` (release build).

mod stats;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use driver_api::testing::TestRun;
use driver_graphql::GraphqlExtractor;
use http_support::{ClientOptions, Headers, HttpClient, Method, RetryPolicy};
use serde_json::json;
use test_graphql_server::{BackgroundServer, ServerOptions};

const QUERY: &str = "query($first: Int, $after: String) { users(first: $first, after: $after) { nodes { id name email active balance address { city geo { lat lng } } tags } pageInfo { hasNextPage endCursor } } }";

#[derive(Debug, Parser)]
#[command(
    name = "bench-graphql",
    about = "Benchmark the graphql.extractor step against downloading the same pages with the same client."
)]
struct Cli {
    /// Rows in total.
    #[arg(long, default_value_t = 200_000)]
    rows: usize,
    /// Pages (rows / pages records per page).
    #[arg(long, default_value_t = 200)]
    pages: usize,
    /// Runs of each side; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: u32,
    /// The goal for step time / download time.
    #[arg(long, default_value_t = 1.2)]
    goal: f64,
}

fn main() -> ExitCode {
    match bench(&Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("bench-graphql: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn bench(cli: &Cli) -> Result<bool> {
    ensure!(
        cli.pages > 0 && cli.rows.is_multiple_of(cli.pages),
        "rows must be a multiple of pages"
    );
    let page_size = cli.rows / cli.pages;
    let server = BackgroundServer::start(ServerOptions {
        users: cli.rows,
        ..ServerOptions::default()
    });
    let endpoint = server.endpoint("");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "bench-graphql: {} rows in {} pages of {page_size}, {} runs per side",
        cli.rows, cli.pages, cli.runs
    );
    let mut download = Vec::new();
    let mut step = Vec::new();
    let mut bytes = 0;
    for run in 0..cli.runs {
        let (d_time, d_bytes) =
            runtime.block_on(download_pages(&endpoint, cli.pages, page_size))?;
        let s_time = runtime.block_on(run_step(&endpoint, page_size, cli.rows))?;
        bytes = d_bytes;
        println!(
            "  run {}: download {:.3} s, step {:.3} s",
            run + 1,
            d_time.as_secs_f64(),
            s_time.as_secs_f64()
        );
        download.push(d_time.as_secs_f64());
        step.push(s_time.as_secs_f64());
    }
    let d = stats::median(download.iter().copied());
    let s = stats::median(step.iter().copied());
    let ratio = s / d;
    println!(
        "download (same client, bodies only): {d:.3} s ({:.1} MiB, {:.0} rows/s)",
        bytes as f64 / 1048576.0,
        cli.rows as f64 / d
    );
    println!(
        "graphql.extractor step (into DuckDB): {s:.3} s ({:.0} rows/s)",
        cli.rows as f64 / s
    );
    println!(
        "ratio step/download: {ratio:.2}x (goal {:.2}x): {}",
        cli.goal,
        if ratio <= cli.goal { "met" } else { "MISSED" }
    );
    Ok(ratio <= cli.goal)
}

/// The step's own client settings: same timeout, retries and headers as the driver's.
fn client() -> Result<HttpClient> {
    let mut headers = Headers::new();
    headers.insert("headers", "Content-Type", "application/json")?;
    headers.insert("headers", "Accept", "application/json")?;
    Ok(HttpClient::new(&ClientOptions {
        timeout: Duration::from_secs(30),
        headers,
        retry: RetryPolicy::new(3, Duration::from_secs(1)),
        ..ClientOptions::default()
    })?)
}

async fn download_pages(
    endpoint: &str,
    pages: usize,
    page_size: usize,
) -> Result<(Duration, usize)> {
    let client = client()?;
    let started = Instant::now();
    let mut bytes = 0;
    for page in 0..pages {
        let mut variables = json!({"first": page_size});
        if page > 0 {
            variables["after"] = format!("cursor:{}", page * page_size - 1).into();
        }
        let body = json!({"query": QUERY, "variables": variables});
        let response = client
            .send(
                client
                    .request(Method::POST, endpoint)
                    .body(body.to_string()),
            )
            .await?;
        bytes += response.body.len();
    }
    Ok((started.elapsed(), bytes))
}

async fn run_step(endpoint: &str, page_size: usize, rows: usize) -> Result<Duration> {
    let dir = tempfile::tempdir()?;
    let run = TestRun::new(dir.path());
    let config = json!({
        "endpoint": endpoint,
        "query": QUERY,
        "data_path": "data.users.nodes",
        "pagination_style": "relay",
        "pagination_path": "data.users.pageInfo",
        "page_size": page_size,
    });
    let started = Instant::now();
    let out = run
        .run(&GraphqlExtractor, "users", config, &[])
        .await
        .context("the graphql.extractor step failed")?;
    let elapsed = started.elapsed();
    ensure!(
        out.rows as usize == rows,
        "the step wrote {} rows, not {rows}",
        out.rows
    );
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        let events = std::fs::read_to_string(dir.path().join("session/events.jsonl"))?;
        if let Some(line) = events.lines().find(|l| l.contains("extraction.complete")) {
            println!("    {line}");
        }
    }
    Ok(elapsed)
}
