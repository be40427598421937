//! The HTTP layer against a real HTTP server (axum on 127.0.0.1, port 0).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use driver_api::testing::TestRun;
use driver_api::{ErrorClass, SecretString, StepContext};
use http_support::{
    Auth, ClientOptions, Headers, HttpClient, JsonOptions, PageLoader, RetryPolicy,
};
use serde_json::json;

#[derive(Default)]
struct Hits {
    flaky: AtomicU32,
    limited: AtomicU32,
    bad: AtomicU32,
}

async fn serve() -> (String, Arc<Hits>) {
    let hits = Arc::new(Hits::default());
    let app = Router::new()
        .route("/ok", get(|| async { axum::Json(json!({"ok": true})) }))
        .route(
            "/flaky",
            get(|State(h): State<Arc<Hits>>| async move {
                if h.flaky.fetch_add(1, Ordering::SeqCst) < 2 {
                    (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
                } else {
                    axum::Json(json!({"ok": "finally"})).into_response()
                }
            }),
        )
        .route(
            "/limited",
            get(|State(h): State<Arc<Hits>>| async move {
                if h.limited.fetch_add(1, Ordering::SeqCst) == 0 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    axum::Json(json!({"ok": 1})).into_response()
                }
            }),
        )
        .route(
            "/bad",
            post(|State(h): State<Arc<Hits>>| async move {
                h.bad.fetch_add(1, Ordering::SeqCst);
                (StatusCode::BAD_REQUEST, "bad query").into_response()
            }),
        )
        .route(
            "/always-503",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "maintenance") }),
        )
        .route(
            "/private",
            get(|headers: HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer tok-abcdef123") => {
                        axum::Json(json!({"echo": "Bearer tok-abcdef123"})).into_response()
                    }
                    _ => (StatusCode::UNAUTHORIZED, "who are you").into_response(),
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/html", get(|| async { "<html>not json</html>" }))
        .with_state(Arc::clone(&hits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), hits)
}

fn fast_retries(max_retries: u32) -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(2),
        retry: RetryPolicy::new(max_retries, Duration::from_millis(20)),
        ..ClientOptions::default()
    }
}

fn step(run: &TestRun, dir: &std::path::Path) -> StepContext {
    StepContext::new(run.execution_context(), "api", "test.extractor", dir).unwrap()
}

fn events(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("session/events.jsonl")).unwrap_or_default()
}

#[tokio::test]
async fn server_errors_are_retried_until_success_and_counted() {
    let (base, hits) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    let ctx = step(&run, dir.path());
    let client = HttpClient::for_step(&ctx, &fast_retries(3)).unwrap();
    let response = client
        .send(client.request(http_support::Method::GET, &format!("{base}/flaky")))
        .await
        .unwrap();
    assert_eq!(response.json().unwrap(), json!({"ok": "finally"}));
    assert_eq!(response.attempts, 3);
    assert_eq!(hits.flaky.load(Ordering::SeqCst), 3);
    let stats = client.stats();
    assert_eq!((stats.requests_made, stats.retries), (3, 2));
    client.report(&ctx);
    let log = events(dir.path());
    assert_eq!(log.matches("\"event\":\"http.retry\"").count(), 2, "{log}");
    assert!(log.contains("HTTP 500 Internal Server Error"), "{log}");
    let metrics = std::fs::read_to_string(dir.path().join("session/metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("\"metric\":\"requests_made\",\"value\":3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\"metric\":\"retries\",\"value\":2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn retry_after_of_a_429_is_honoured() {
    let (base, hits) = serve().await;
    let client = HttpClient::new(&fast_retries(2)).unwrap();
    let started = Instant::now();
    let response = client
        .send(client.request(http_support::Method::GET, &format!("{base}/limited")))
        .await
        .unwrap();
    assert!(response.is_success());
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?} although the server asked for 1 s",
        started.elapsed()
    );
    assert_eq!(hits.limited.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let (base, hits) = serve().await;
    let client = HttpClient::new(&fast_retries(3)).unwrap();
    let err = client
        .send(client.post_json(&format!("{base}/bad"), &json!({})))
        .await
        .unwrap_err();
    assert_eq!(hits.bad.load(Ordering::SeqCst), 1);
    assert_eq!(err.class(), ErrorClass::Remote);
    let text = err.to_string();
    assert!(text.contains("HTTP 400 Bad Request: bad query"), "{text}");
    assert!(text.starts_with("POST http://127.0.0.1:"), "{text}");
}

#[tokio::test]
async fn exhausted_retries_report_the_last_status() {
    let (base, _) = serve().await;
    let client = HttpClient::new(&fast_retries(2)).unwrap();
    let err = client
        .send(client.request(http_support::Method::GET, &format!("{base}/always-503")))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Remote);
    assert!(
        err.to_string()
            .contains("HTTP 503 Service Unavailable after 3 attempts: maintenance"),
        "{err}"
    );
    assert_eq!(client.stats().requests_made, 3);
}

#[tokio::test]
async fn slow_responses_time_out_after_the_retries() {
    let (base, _) = serve().await;
    let options = ClientOptions {
        timeout: Duration::from_millis(300),
        retry: RetryPolicy::new(1, Duration::from_millis(10)),
        ..ClientOptions::default()
    };
    let client = HttpClient::new(&options).unwrap();
    let started = Instant::now();
    let err = client
        .send(client.request(http_support::Method::GET, &format!("{base}/slow")))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout, "{err}");
    assert!(err.to_string().contains("after 2 attempts"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn refused_connections_are_connection_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = HttpClient::new(&fast_retries(1)).unwrap();
    let err = client
        .send(client.request(
            http_support::Method::GET,
            &format!("http://{addr}/x?api_key=zzz"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Connection, "{err}");
    assert!(!err.to_string().contains("zzz"), "no query string: {err}");
    assert_eq!(client.stats().requests_made, 2);
}

#[tokio::test]
async fn credentials_are_sent_and_scrubbed_from_everything_written() {
    let (base, _) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    let ctx = step(&run, dir.path());
    let mut headers = Headers::new();
    Auth::Bearer(SecretString::new("tok-abcdef123"))
        .apply("auth_token", &mut headers)
        .unwrap();
    let options = ClientOptions {
        headers,
        ..fast_retries(0)
    };
    let client = HttpClient::for_step(&ctx, &options).unwrap();
    let body = client
        .send(client.request(http_support::Method::GET, &format!("{base}/private")))
        .await
        .unwrap()
        .json()
        .unwrap();
    // The server echoes the token; whatever reaches the run's files is scrubbed.
    ctx.event("echo", serde_json::from_value(body).unwrap());
    let log = events(dir.path());
    assert!(log.contains("\"echo\":\"***\""), "{log}");
    assert!(!log.contains("abcdef123"), "{log}");

    let anonymous = HttpClient::new(&fast_retries(3)).unwrap();
    let err = anonymous
        .send(anonymous.request(http_support::Method::GET, &format!("{base}/private")))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert_eq!(anonymous.stats().requests_made, 1, "401 is not retried");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_remote_error() {
    let (base, _) = serve().await;
    let client = HttpClient::new(&fast_retries(0)).unwrap();
    let response = client
        .send(client.request(http_support::Method::GET, &format!("{base}/html")))
        .await
        .unwrap();
    let err = response.json().unwrap_err();
    assert_eq!(err.class(), ErrorClass::Remote);
    assert!(err.to_string().contains("<html>not json</html>"), "{err}");
}

#[tokio::test]
async fn pages_with_changing_columns_merge_by_name_into_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    let ctx = step(&run, dir.path());
    let mut loader = PageLoader::for_step(&ctx, JsonOptions { flatten: true }).unwrap();
    let page = |v: serde_json::Value| match v {
        serde_json::Value::Array(items) => items,
        _ => unreachable!(),
    };
    loader
        .send(page(
            json!([{"id": 1, "amount": 10, "user": {"name": "a"}, "gone": "x"}]),
        ))
        .await
        .unwrap();
    loader.send(Vec::new()).await.unwrap();
    loader
        .send(page(
            json!([{"user": {"name": "b", "age": 30}, "id": 2, "amount": 2.5, "tags": ["t"]}]),
        ))
        .await
        .unwrap();
    let summary = loader.finish().await.unwrap();
    assert_eq!((summary.rows, summary.pages), (2, 3));
    let columns = run.query_strings(
        "SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = 'api' ORDER BY ordinal_position",
    );
    let columns: Vec<String> = columns.into_iter().flatten().collect();
    assert_eq!(
        columns,
        [
            "id BIGINT",
            "amount DOUBLE",
            "user.name VARCHAR",
            "gone VARCHAR",
            "user.age BIGINT",
            "tags JSON"
        ]
    );
    let rows = run.query_strings(
        "SELECT concat_ws('|', id, amount, \"user.name\", coalesce(gone, '-'), coalesce(\"user.age\"::VARCHAR, '-'), coalesce(tags::VARCHAR, '-')) FROM api ORDER BY id",
    );
    assert_eq!(
        rows,
        [
            Some("1|10.0|a|x|-|-".into()),
            Some("2|2.5|b|-|30|[\"t\"]".into())
        ]
    );
}

#[tokio::test]
async fn no_records_give_an_empty_value_table_and_abort_leaves_none() {
    let dir = tempfile::tempdir().unwrap();
    let run = TestRun::new(dir.path());
    let ctx = step(&run, dir.path());
    let mut loader = PageLoader::for_step(&ctx, JsonOptions::default()).unwrap();
    loader.send(Vec::new()).await.unwrap();
    assert_eq!(loader.finish().await.unwrap().rows, 0);
    assert_eq!(
        run.query_strings(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'api'"
        ),
        [Some("value".into())]
    );

    let ctx = StepContext::new(run.execution_context(), "other", "t", dir.path()).unwrap();
    let mut loader = PageLoader::for_step(&ctx, JsonOptions::default()).unwrap();
    loader.send(vec![json!({"a": 1})]).await.unwrap();
    loader.abort().await;
    assert!(!run.table_exists("other"));
}

#[tokio::test]
async fn redirects_are_followed_within_the_server_only_so_keys_never_leave_it() {
    // Another server that counts what reaches it.
    let elsewhere_hits = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&elsewhere_hits);
    let elsewhere = Router::new().route(
        "/steal",
        get(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"stolen": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, elsewhere).await.unwrap() });

    let away = format!("{other}/steal?token=abc");
    let app = Router::new()
        .route("/ok", get(|| async { axum::Json(json!({"ok": true})) }))
        .route(
            "/moved",
            get(|| async { axum::response::Redirect::temporary("/ok") }),
        )
        .route(
            "/away",
            get(move || {
                let away = away.clone();
                async move { axum::response::Redirect::temporary(&away) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut headers = Headers::new();
    Auth::ApiKey {
        header: "apikey".into(),
        key: SecretString::new("k-secret-123"),
    }
    .apply("api_key", &mut headers)
    .unwrap();
    let client = HttpClient::new(&ClientOptions {
        headers,
        ..fast_retries(2)
    })
    .unwrap();
    let same = client
        .send(client.request(http_support::Method::GET, &format!("{base}/moved")))
        .await
        .unwrap();
    assert_eq!(same.json().unwrap(), json!({"ok": true}));

    let err = client
        .send(client.request(http_support::Method::GET, &format!("{base}/away")))
        .await
        .unwrap_err();
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "the key went elsewhere"
    );
    assert_eq!(err.class(), ErrorClass::Remote);
    let text = err.to_string();
    assert!(
        text.contains(&format!("redirected to {other}/steal"))
            && text.contains("use the final URL"),
        "{text}"
    );
    assert!(!text.contains("token=abc"), "{text}");
    assert_eq!(
        client.stats().requests_made,
        2,
        "one request per send: the redirect to another server is not retried"
    );
}
