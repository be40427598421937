//! The one retry policy of every HTTP driver: exponential backoff with jitter on network errors,
//! timeouts, 429 and 5xx; a longer `Retry-After` wins; nothing else is retried.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How often and how long to wait before sending a failed request again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Extra attempts after the first one (0 disables retries).
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further retry.
    pub base_delay: Duration,
    /// Upper bound of the backoff (not of `Retry-After`).
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a server asking for more fails the request at once
    /// instead of stalling the run.
    pub max_retry_after: Duration,
    /// Spread of the random jitter around each backoff delay (0.2 = ±20 %), so that clients
    /// that failed together do not retry together.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// A policy with `max_retries` extra attempts and `base_delay` before the first, other
    /// settings at their defaults.
    pub fn new(max_retries: u32, base_delay: Duration) -> Self {
        Self {
            max_retries,
            base_delay,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (1 for the first retry), jitter included.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let nominal = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let spread = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - spread + 2.0 * spread * fastrand::f64();
        nominal.mul_f64(factor)
    }

    /// The wait before retry number `retry`: the backoff, or the server's `Retry-After` when
    /// that is longer.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(retry);
        match retry_after {
            Some(asked) if asked > backoff => asked,
            _ => backoff,
        }
    }
}

/// Whether a response status is worth retrying: 429 and every 5xx.
pub fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The `Retry-After` of a response: delay seconds or an HTTP date (RFC 9110).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_the_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            jitter: 0.2,
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = policy.backoff(1).as_secs_f64();
            let third = policy.backoff(3).as_secs_f64();
            let tenth = policy.backoff(10).as_secs_f64();
            assert!((0.08..=0.12).contains(&first), "{first}");
            assert!((0.32..=0.48).contains(&third), "{third}");
            assert!((0.4..=0.6).contains(&tenth), "capped: {tenth}");
        }
    }

    #[test]
    fn longer_retry_after_wins() {
        let policy = RetryPolicy::new(3, Duration::from_millis(100));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert!(policy.delay(1, Some(Duration::from_millis(1))) >= Duration::from_millis(80));
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&later)
            .unwrap();
        headers.insert(RETRY_AFTER, date.parse().unwrap());
        let wait = retry_after(&headers).unwrap().as_secs();
        assert!((28..=30).contains(&wait), "{wait}");
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn only_429_and_5xx_are_retryable() {
        assert!(is_retryable_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_retryable_status(StatusCode::BAD_GATEWAY));
        assert!(!is_retryable_status(StatusCode::BAD_REQUEST));
        assert!(!is_retryable_status(StatusCode::UNAUTHORIZED));
    }
}
