//! The HTTP client every HTTP driver uses: one reqwest client (rustls, timeouts, TLS switch,
//! default headers), one retry loop, one classification of failures into [`DriverError`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use driver_api::{DriverError, Result, StepContext};
use execution_context::{StepEmitter, object};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::retry::{is_retryable_status, retry_after};
use crate::{Headers, RetryPolicy};

/// Settings of an [`HttpClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest time one request may take: connect, send and read the whole response.
    pub timeout: Duration,
    /// Longest time to establish a connection (within `timeout`).
    pub connect_timeout: Duration,
    /// Verify the server's certificate and host name. `false` accepts any certificate (for
    /// self-signed development servers; [`HttpClient::for_step`] logs a warning).
    pub validate_ssl: bool,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Headers sent with every request (auth, content type, user headers).
    pub headers: Headers,
    /// When and how often to retry.
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            validate_ssl: true,
            user_agent: concat!("osiris-rs/", env!("CARGO_PKG_VERSION")).into(),
            headers: Headers::new(),
            retry: RetryPolicy::default(),
        }
    }
}

/// Requests sent and retries made by one client (all clones share the counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Every request sent, retries included.
    pub requests_made: u64,
    /// Requests sent again after a retryable failure.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
}

/// A response read in full.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: bytes::Bytes,
    /// Attempts it took (1 without retries).
    pub attempts: u32,
    /// `METHOD scheme://host/path` of the request (no query string: it may carry keys).
    pub target: String,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// `Ok(self)` for a 2xx response, otherwise the classified error (see [`status_error`]).
    pub fn error_for_status(self) -> Result<Self> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(status_error(&self))
        }
    }

    /// The body parsed as JSON; a body that is not JSON is a [`DriverError::Remote`] quoting
    /// its start.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let kind = self
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no content type");
            DriverError::Remote {
                message: format!(
                    "{}: the response is not JSON ({kind}, {e}): {}",
                    self.target,
                    excerpt(&self.body)
                ),
            }
        })
    }

    /// The start of the body as text, whitespace collapsed (for error messages).
    pub fn body_excerpt(&self) -> String {
        excerpt(&self.body)
    }
}

/// The [`DriverError`] for a non-2xx response: 401/403 [`Auth`](DriverError::Auth), 408
/// [`Timeout`](DriverError::Timeout), 404 and any other status [`Remote`](DriverError::Remote).
/// The message names the request, the status, the attempts and the start of the body.
pub fn status_error(response: &HttpResponse) -> DriverError {
    let status = response.status;
    let attempts = if response.attempts > 1 {
        format!(" after {} attempts", response.attempts)
    } else {
        String::new()
    };
    let body = response.body_excerpt();
    let body = if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    };
    let head = format!("{}: HTTP {status}{attempts}", response.target);
    match status {
        StatusCode::UNAUTHORIZED => DriverError::Auth {
            message: format!("{head} (the server refused the credentials){body}"),
        },
        StatusCode::FORBIDDEN => DriverError::Auth {
            message: format!("{head} (the credentials lack permission){body}"),
        },
        StatusCode::REQUEST_TIMEOUT => DriverError::Timeout {
            message: format!("{head}{body}"),
        },
        StatusCode::NOT_FOUND => DriverError::Remote {
            message: format!("{head} (check the URL){body}"),
        },
        StatusCode::TOO_MANY_REQUESTS => DriverError::Remote {
            message: format!("{head} (rate limited; lower the request rate or retry later){body}"),
        },
        _ if status.is_redirection() => {
            let location = response
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| reqwest::Url::parse(v).ok())
                .map(|url| {
                    format!(
                        " to {}",
                        describe(&Method::GET, &url).trim_start_matches("GET ")
                    )
                })
                .unwrap_or_default();
            DriverError::Remote {
                message: format!(
                    "{head}: redirected{location}; redirects to another server are not followed because the request carries credentials: use the final URL"
                ),
            }
        }
        _ => DriverError::Remote {
            message: format!("{head}{body}"),
        },
    }
}

/// Redirects are followed only within the same scheme, host and port. reqwest drops
/// `Authorization` on a cross-host redirect but not custom headers such as `apikey` or
/// `X-API-Key`, so following one could send credentials to another server. A redirect that is
/// not followed comes back as its 3xx response and fails the request (see [`status_error`]).
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().last().is_some_and(|previous| {
            previous.scheme() == attempt.url().scheme()
                && previous.host_str() == attempt.url().host_str()
                && previous.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if same_origin && attempt.previous().len() < 10 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX * 4)]);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &collapsed[..cut]),
        None => collapsed,
    }
}

/// `METHOD scheme://host[:port]/path`: enough to say which request failed, never the query
/// string (API keys travel there) nor user info.
fn describe(method: &Method, url: &reqwest::Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{method} {}://{}{port}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    )
}

/// The shared HTTP client. Cheap to clone (clones share the connection pool and counters).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    retry: RetryPolicy,
    counters: Arc<Counters>,
    events: Option<StepEmitter>,
    cancel: CancellationToken,
}

impl HttpClient {
    /// A client outside a step (e.g. `doctor`): no events, no cancellation.
    pub fn new(options: &ClientOptions) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout.min(options.timeout))
            .user_agent(options.user_agent.clone())
            .default_headers(options.headers.to_header_map())
            .redirect(same_origin_redirects());
        if !options.validate_ssl {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| DriverError::Internal {
            message: format!("cannot build the HTTP client: {e}"),
        })?;
        Ok(Self {
            client,
            retry: options.retry,
            counters: Arc::default(),
            events: None,
            cancel: CancellationToken::new(),
        })
    }

    /// A client for a step: its secret header values are registered with the run's redactor,
    /// each retry is an `http.retry` event of the step, waits end when the step is cancelled,
    /// and `validate_ssl: false` logs a warning.
    pub fn for_step(ctx: &StepContext, options: &ClientOptions) -> Result<Self> {
        let redactor = ctx.execution_context().redactor();
        for secret in options.headers.secret_values() {
            redactor.add_secret(secret.expose());
        }
        if !options.validate_ssl {
            tracing::warn!(
                step_id = ctx.step_id(),
                "TLS certificate verification is off (validate_ssl: false)"
            );
        }
        let mut client = Self::new(options)?;
        client.events = Some(ctx.execution_context().step_emitter(ctx.step_id()));
        client.cancel = ctx.cancellation().clone();
        Ok(client)
    }

    /// A request builder on this client (default headers are added when sent).
    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// A POST of `body` as JSON (`Content-Type: application/json`).
    pub fn post_json(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }

    /// Sends a request, retrying network errors, timeouts, 429 and 5xx as the policy says,
    /// and returns the final response whatever its status (see [`send`](Self::send) for one
    /// that must succeed). Fails only when no response arrived after all attempts
    /// ([`Connection`](DriverError::Connection) or [`Timeout`](DriverError::Timeout)), when
    /// a `Retry-After` exceeds the policy's limit, or when the step is cancelled.
    pub async fn execute(&self, request: reqwest::RequestBuilder) -> Result<HttpResponse> {
        let request = request.build().map_err(|e| {
            DriverError::config(
                "endpoint",
                format!("cannot build the request: {}", error_chain(e)),
            )
        })?;
        let target = describe(request.method(), request.url());
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let this = request.try_clone().ok_or_else(|| {
                DriverError::internal("a retried request must have a buffered body")
            })?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(request = %target, attempt, "HTTP request");
            let outcome = tokio::select! {
                outcome = self.send_once(this) => outcome,
                () = self.cancel.cancelled() => return Err(DriverError::Cancelled),
            };
            let retries_left = attempt <= self.retry.max_retries;
            let (reason, asked) = match outcome {
                Ok((status, headers, body)) => {
                    if !(is_retryable_status(status) && retries_left) {
                        return Ok(HttpResponse {
                            status,
                            headers,
                            body,
                            attempts: attempt,
                            target,
                        });
                    }
                    let asked = retry_after(&headers);
                    (format!("HTTP {status}"), asked)
                }
                Err(error) => {
                    if !retries_left {
                        return Err(network_error(&target, attempt, &error));
                    }
                    (network_reason(&error), None)
                }
            };
            if let Some(asked) = asked.filter(|a| *a > self.retry.max_retry_after) {
                return Err(DriverError::Remote {
                    message: format!(
                        "{target}: {reason}, and the server asks to retry after {} s (more than the {} s this client waits)",
                        asked.as_secs(),
                        self.retry.max_retry_after.as_secs()
                    ),
                });
            }
            let delay = self.retry.delay(attempt, asked);
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(request = %target, attempt, %reason, delay_ms = delay.as_millis() as u64, "retrying HTTP request");
            if let Some(events) = &self.events {
                events.event(
                    "http.retry",
                    object([
                        ("request", target.clone().into()),
                        ("retry", attempt.into()),
                        ("max_retries", self.retry.max_retries.into()),
                        ("reason", reason.into()),
                        ("delay_ms", (delay.as_millis() as u64).into()),
                    ]),
                );
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.cancel.cancelled() => return Err(DriverError::Cancelled),
            }
        }
    }

    /// [`execute`](Self::execute), then [`HttpResponse::error_for_status`].
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<HttpResponse> {
        self.execute(request).await?.error_for_status()
    }

    async fn send_once(
        &self,
        request: reqwest::Request,
    ) -> std::result::Result<(StatusCode, HeaderMap, bytes::Bytes), NetFailure> {
        let response = self.client.execute(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok((status, headers, body))
    }

    /// Requests and retries so far.
    pub fn stats(&self) -> HttpStats {
        HttpStats {
            requests_made: self.counters.requests.load(Ordering::Relaxed),
            retries: self.counters.retries.load(Ordering::Relaxed),
        }
    }

    /// Writes the `requests_made` and `retries` metrics of the step.
    pub fn report(&self, ctx: &StepContext) {
        let stats = self.stats();
        ctx.metric("requests_made", stats.requests_made);
        ctx.metric("retries", stats.retries);
    }
}

/// A request that got no response.
#[derive(Debug)]
struct NetFailure {
    timeout: bool,
    /// reqwest's error and causes, without the URL (its query may hold keys).
    text: String,
}

impl From<reqwest::Error> for NetFailure {
    fn from(error: reqwest::Error) -> Self {
        Self {
            timeout: error.is_timeout(),
            text: error_chain(error),
        }
    }
}

/// reqwest's error and its causes, without the URL it embeds.
fn error_chain(error: reqwest::Error) -> String {
    use std::error::Error as _;
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = source.and_then(|s| s.source());
    }
    text
}

fn network_reason(error: &NetFailure) -> String {
    if error.timeout {
        "timed out".into()
    } else {
        format!("network error: {}", error.text)
    }
}

fn network_error(target: &str, attempts: u32, error: &NetFailure) -> DriverError {
    let after = if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    };
    if error.timeout {
        DriverError::Timeout {
            message: format!("{target}: no complete response within the timeout{after}"),
        }
    } else {
        DriverError::Connection {
            message: format!("{target}: {}{after}", error.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str, attempts: u32) -> HttpResponse {
        HttpResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
            attempts,
            target: "POST http://h/graphql".into(),
        }
    }

    #[test]
    fn statuses_map_to_error_classes() {
        use driver_api::ErrorClass;
        let class = |s| status_error(&response(s, "nope", 1)).class();
        assert_eq!(class(401), ErrorClass::Auth);
        assert_eq!(class(403), ErrorClass::Auth);
        assert_eq!(class(408), ErrorClass::Timeout);
        assert_eq!(class(404), ErrorClass::Remote);
        assert_eq!(class(429), ErrorClass::Remote);
        assert_eq!(class(500), ErrorClass::Remote);
        let text = status_error(&response(503, "  down \n for   maintenance ", 4)).to_string();
        assert_eq!(
            text,
            "POST http://h/graphql: HTTP 503 Service Unavailable after 4 attempts: down for maintenance"
        );
    }

    #[test]
    fn long_bodies_are_cut() {
        let text = excerpt("x".repeat(5000).as_bytes());
        assert_eq!(text.len(), 303);
    }

    #[test]
    fn describe_drops_query_and_user_info() {
        let url = reqwest::Url::parse("https://u:p@api.example.com:8443/v1/q?api_key=zzz").unwrap();
        assert_eq!(
            describe(&Method::GET, &url),
            "GET https://api.example.com:8443/v1/q"
        );
    }
}
