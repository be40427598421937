//! Requests to PostgREST: where (the REST root), with which key, and how its errors read.
//!
//! SEAM: `send` is the one place that performs HTTP requests with retries. It is meant to be
//! the shared HTTP layer of the workspace (retry/backoff on network errors, 5xx and 429,
//! request/retry events and metrics, secret-safe headers); until that layer is merged this
//! module carries a minimal equivalent with the same contract (see ADR 0015).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use driver_api::{DriverError, Result, SecretString, StepContext};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Where the project is and which key to send; the fields every Supabase step and connection has.
#[derive(Debug, Clone, Default)]
pub struct Location<'a> {
    /// `url` (project URL).
    pub url: Option<&'a str>,
    /// `project_id`.
    pub project_id: Option<&'a str>,
    /// `rest_url` (a PostgREST root).
    pub rest_url: Option<&'a str>,
    /// `service_role_key`.
    pub service_role_key: Option<&'a SecretString>,
    /// `anon_key`.
    pub anon_key: Option<&'a SecretString>,
    /// `key`.
    pub key: Option<&'a SecretString>,
}

impl Location<'_> {
    /// The REST root: `rest_url`, else `<url>/rest/v1`, else `https://<project_id>.supabase.co/rest/v1`.
    pub fn rest_root(&self) -> Result<Url> {
        let (text, key) = if let Some(rest) = self.rest_url {
            (rest.trim_end_matches('/').to_owned(), "rest_url")
        } else if let Some(url) = self.url {
            (format!("{}/rest/v1", url.trim_end_matches('/')), "url")
        } else if let Some(id) = self.project_id {
            (format!("https://{id}.supabase.co/rest/v1"), "project_id")
        } else {
            return Err(DriverError::config(
                "url",
                "say where the project is: url, project_id or rest_url (usually from the connection)",
            ));
        };
        // A trailing slash makes relative joins (`<root>/<table>`) keep the root's path.
        Url::parse(&format!("{text}/"))
            .map_err(|e| DriverError::config(key, format!("is not a valid URL: {e}")))
    }

    /// The API key: `service_role_key`, else `anon_key`, else `key`.
    pub fn api_key(&self) -> Result<SecretString> {
        self.service_role_key
            .or(self.anon_key)
            .or(self.key)
            .cloned()
            .ok_or_else(|| {
                DriverError::config(
                    "key",
                    "an API key is needed: service_role_key, anon_key or key (usually from the connection)",
                )
            })
    }
}

/// A PostgREST client for one step.
#[derive(Debug)]
pub struct Rest {
    client: reqwest::Client,
    root: Url,
    key: SecretString,
    retries: u32,
    requests: AtomicU64,
    retried: AtomicU64,
}

/// A failed request, after retries.
#[derive(Debug)]
pub struct Failure {
    /// HTTP status when the server answered.
    pub status: Option<StatusCode>,
    /// PostgREST/Postgres error code (`42P01`, `PGRST205`, ...).
    pub code: Option<String>,
    /// What happened, readable, without secrets.
    pub message: String,
    /// Timed out (no answer in time).
    pub timeout: bool,
}

impl Failure {
    /// Whether the answer says the table does not exist (and nothing else).
    pub fn is_missing_relation(&self) -> bool {
        matches!(self.code.as_deref(), Some("42P01" | "PGRST205"))
    }

    /// The failure as a classified driver error, `what` saying what was being done.
    pub fn into_error(self, what: &str) -> DriverError {
        let message = format!("{what}: {}", self.message);
        let denied = self.code.as_deref() == Some("42501");
        match self.status {
            None if self.timeout => DriverError::Timeout { message },
            None => DriverError::Connection { message },
            // PostgREST answers a missing privilege with 401 for the anon role, 403 otherwise.
            Some(_) if denied => DriverError::Auth {
                message: format!(
                    "{message} (the key's role lacks a privilege on this table: GRANT it to the role, or use the service_role key)"
                ),
            },
            Some(StatusCode::UNAUTHORIZED) => DriverError::Auth {
                message: format!(
                    "{message} (PostgREST rejected the API key: check service_role_key/anon_key/key and that it is signed with the server's JWT secret)"
                ),
            },
            Some(StatusCode::FORBIDDEN) => DriverError::Auth {
                message: format!("{message} (the key's role is not allowed to do this)"),
            },
            Some(_) => DriverError::Remote { message },
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// Body.
    pub body: Vec<u8>,
}

impl Rest {
    /// A client for `root` sending `key`, each request limited to `timeout`, with `retries`
    /// extra attempts on network errors, timeouts, 429 and 5xx.
    pub fn new(root: Url, key: SecretString, timeout: Duration, retries: u32) -> Result<Self> {
        // No redirects: the key travels in an `apikey` header that a redirect to another host
        // would carry along.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| DriverError::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            root,
            key,
            retries,
            requests: AtomicU64::new(0),
            retried: AtomicU64::new(0),
        })
    }

    /// `<root>/<path>` with `path` as one percent-encoded segment (a table name).
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.root.clone();
        if !path.is_empty()
            && let Ok(mut segments) = url.path_segments_mut()
        {
            segments.pop_if_empty().push(path);
        }
        url
    }

    /// The REST root.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Requests made so far (attempts included).
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Retries made so far.
    pub fn retries(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// Sends a request (`headers` besides the key's), retrying as configured. A 2xx answer is
    /// returned; anything else is a [`Failure`].
    pub async fn send(
        &self,
        ctx: Option<&StepContext>,
        method: Method,
        url: Url,
        headers: &[(&str, String)],
        body: Option<String>,
    ) -> std::result::Result<Answer, Failure> {
        let mut attempt = 0u32;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .headers(self.auth_headers());
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            if let Some(body) = &body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.clone());
            }
            let outcome = request.send().await;
            let (failure, retry_after) = match outcome {
                Ok(response) if response.status().is_success() => match response.bytes().await {
                    Ok(body) => {
                        return Ok(Answer {
                            body: body.to_vec(),
                        });
                    }
                    Err(e) => (network_failure(&e), None),
                },
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = response.bytes().await.unwrap_or_default();
                    (http_failure(status, &body), retry_after)
                }
                Err(e) => (network_failure(&e), None),
            };
            let retryable = match failure.status {
                None => true,
                Some(s) => s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error(),
            };
            if !retryable || attempt >= self.retries {
                return Err(failure);
            }
            let backoff = Duration::from_secs(1u64 << attempt.min(5)).min(Duration::from_secs(30));
            let wait = retry_after.map_or(backoff, |r| r.max(backoff));
            attempt += 1;
            self.retried.fetch_add(1, Ordering::Relaxed);
            if let Some(ctx) = ctx {
                ctx.event(
                    "http.retry",
                    execution_context::object([
                        ("attempt", attempt.into()),
                        ("wait_ms", (wait.as_millis() as u64).into()),
                        ("reason", failure.message.clone().into()),
                    ]),
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = ctx.cancellation().cancelled() => {
                        return Err(Failure { status: None, code: None, message: "cancelled".into(), timeout: false });
                    }
                }
            } else {
                tokio::time::sleep(wait).await;
            }
        }
    }

    fn auth_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(mut v) = HeaderValue::from_str(self.key.expose()) {
            v.set_sensitive(true);
            headers.insert("apikey", v);
        }
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", self.key.expose())) {
            v.set_sensitive(true);
            headers.insert("authorization", v);
        }
        headers
    }
}

fn network_failure(error: &reqwest::Error) -> Failure {
    // reqwest's error text holds the URL but never headers; the URL carries no secret.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    Failure {
        status: None,
        code: None,
        message,
        timeout: error.is_timeout(),
    }
}

fn http_failure(status: StatusCode, body: &[u8]) -> Failure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("code");
    let mut message = format!("HTTP {status}");
    match field("message") {
        Some(m) => {
            message.push_str(": ");
            message.push_str(&m);
        }
        None if !body.is_empty() => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            message.push_str(": ");
            message.push_str(text.trim());
        }
        None => {}
    }
    if let Some(code) = &code {
        message.push_str(&format!(" [{code}]"));
    }
    for extra in ["details", "hint"] {
        if let Some(text) = field(extra) {
            message.push_str(&format!("; {extra}: {text}"));
        }
    }
    Failure {
        status: Some(status),
        code,
        message,
        timeout: false,
    }
}
