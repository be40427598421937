//! Scrubbing of secret values by value: every resolved secret string is replaced by `***`
//! wherever it appears, whatever field or message it ended up in.

use std::borrow::Cow;
use std::sync::RwLock;

/// The mask written in place of a secret.
pub const MASK: &str = "***";

/// Secrets shorter than this are not scrubbed by value: masking "1" or "ab" everywhere would
/// destroy unrelated output while protecting nothing guessable. They are still masked by key.
const MIN_SECRET_LEN: usize = 4;

/// Whether a config or connection field name conventionally holds a secret (`password`,
/// `api_key`, `service_role_key`, `pg_dsn`, `auth_token`, ...). Specs declare their secrets
/// precisely; this rule covers connection fields no spec lists, so that their values are still
/// scrubbed. `primary_key` and other non-secret `*_key(s)` names are not secret.
pub fn is_secret_key(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "password",
        "passwd",
        "pwd",
        "token",
        "secret",
        "key",
        "apikey",
        "api_key",
        "access_key",
        "secret_key",
        "private_key",
        "session_key",
        "encryption_key",
        "client_key",
        "client_secret",
        "service_key",
        "service_role_key",
        "anon_key",
        "dsn",
        "pg_dsn",
        "connection_string",
        "authorization",
        "cookie",
    ];
    let name = name.to_ascii_lowercase();
    EXACT.contains(&name.as_str())
        || name.contains("password")
        || name.contains("secret")
        || name.ends_with("_token")
        || name.ends_with("_api_key")
        || name.ends_with("-api-key")
        || name.ends_with("_dsn")
}

/// A set of secret strings to scrub from text. Shared by the run's sinks and the terminal.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: RwLock<Vec<String>>,
}

impl Redactor {
    /// Registers a secret value; later output never contains it.
    pub fn add_secret(&self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(|p| p.into_inner());
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_owned());
            // Longest first, so that a secret containing another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Returns `text` with every registered secret (and its JSON-escaped form) replaced by `***`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let secrets = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Cow::Borrowed(text);
        for secret in secrets.iter() {
            for form in [Cow::Borrowed(secret.as_str()), json_escaped(secret)] {
                if out.contains(form.as_ref()) {
                    out = Cow::Owned(out.replace(form.as_ref(), MASK));
                }
            }
        }
        out
    }
}

fn json_escaped(secret: &str) -> Cow<'_, str> {
    let quoted = serde_json::to_string(secret).expect("a string always serializes");
    let inner = &quoted[1..quoted.len() - 1];
    if inner == secret {
        Cow::Borrowed(secret)
    } else {
        Cow::Owned(inner.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_plain_and_json_escaped_forms() {
        let r = Redactor::default();
        r.add_secret("pa\"ss\\word");
        assert_eq!(r.redact("x pa\"ss\\word y"), "x *** y");
        let json = serde_json::json!({ "e": "pa\"ss\\word" }).to_string();
        assert_eq!(r.redact(&json), r#"{"e":"***"}"#);
    }

    #[test]
    fn longer_secret_wins_over_its_prefix() {
        let r = Redactor::default();
        r.add_secret("abcd");
        r.add_secret("abcdefgh");
        assert_eq!(r.redact("abcdefgh"), "***");
    }

    #[test]
    fn secret_key_names() {
        for secret in [
            "password",
            "auth_password",
            "api_key",
            "X-API-KEY",
            "service_role_key",
            "pg_dsn",
            "auth_token",
            "Authorization",
            "key",
            "client_secret",
        ] {
            assert!(is_secret_key(secret), "{secret}");
        }
        for plain in [
            "primary_key",
            "upsert_keys",
            "host",
            "user",
            "token_count",
            "pagination_cursor_field",
        ] {
            assert!(!is_secret_key(plain), "{plain}");
        }
    }

    #[test]
    fn very_short_values_are_not_scrubbed_by_value() {
        let r = Redactor::default();
        r.add_secret("ab");
        assert_eq!(r.redact("tab"), "tab");
    }
}
