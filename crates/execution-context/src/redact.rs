//! Scrubbing of secret values by value: every resolved secret string is replaced by `***`
//! wherever it appears, whatever field or message it ended up in, in the forms it travels in:
//! as is, JSON-escaped, percent-encoded, base64 (alone and as the `user:password` of a Basic
//! `Authorization` header, which servers like to echo in error bodies). Credentials written
//! into a URL (`https://user:pass@host/`) are secrets too, whatever the key holding the URL.

use std::borrow::Cow;
use std::sync::RwLock;

use base64::Engine as _;
use serde_json::Value;

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
    /// Registers a secret value; later output never contains it, nor its percent-encoded or
    /// base64 forms. A URL with credentials (`postgres://u:p@h/db`) also registers its
    /// user-info and password.
    pub fn add_secret(&self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let mut forms = vec![secret.to_owned()];
        forms.extend(encoded_forms(secret));
        self.add_forms(forms);
        self.add_url_credentials(secret);
    }

    /// Registers the credentials of HTTP Basic authentication: the password (as a secret)
    /// and `base64(user:password)`, the form an `Authorization: Basic` header carries.
    pub fn add_basic_credentials(&self, user: &str, password: &str) {
        self.add_secret(password);
        if password.len() < MIN_SECRET_LEN {
            return;
        }
        let pair = format!("{user}:{password}");
        self.add_forms(base64_forms(&pair));
    }

    /// Registers the secrets found in a config or connection: credentials inside any URL
    /// string (`endpoint: http://user:${PASS}@host/graphql`), and the `user:password` pairs of
    /// objects holding a user name field (`user`, `username`, `auth_username`, `*_user`) next
    /// to secret fields, for their Basic-authentication form. Secret fields themselves are
    /// registered by their callers (they know the spec's secret keys).
    pub fn add_config_secrets(&self, value: &Value) {
        match value {
            Value::String(text) => self.add_url_credentials(text),
            Value::Array(items) => items.iter().for_each(|v| self.add_config_secrets(v)),
            Value::Object(map) => self.add_config_fields(map),
            _ => {}
        }
    }

    /// [`add_config_secrets`](Self::add_config_secrets) of a config's fields.
    pub fn add_config_fields(&self, map: &serde_json::Map<String, Value>) {
        let users: Vec<&str> = map
            .iter()
            .filter(|(k, _)| is_user_key(k))
            .filter_map(|(_, v)| v.as_str())
            .collect();
        for (key, value) in map {
            if let (true, Value::String(secret)) = (is_secret_key(key), value) {
                for user in &users {
                    self.add_basic_credentials(user, secret);
                }
            }
            self.add_config_secrets(value);
        }
    }

    /// Registers the user-info and password of every `scheme://user:password@` in `text`.
    fn add_url_credentials(&self, text: &str) {
        for (start, end) in url_userinfo_spans(text) {
            let userinfo = &text[start..end];
            let Some((user, password)) = userinfo.split_once(':') else {
                continue;
            };
            if password.len() < MIN_SECRET_LEN {
                continue;
            }
            let mut forms = vec![userinfo.to_owned(), password.to_owned()];
            forms.extend(encoded_forms(password));
            let decoded = percent_decoded(password);
            if decoded != password {
                forms.push(decoded.clone());
                forms.extend(encoded_forms(&decoded));
            }
            forms.extend(base64_forms(&format!(
                "{}:{decoded}",
                percent_decoded(user)
            )));
            self.add_forms(forms);
        }
    }

    fn add_forms(&self, forms: Vec<String>) {
        let mut secrets = self.secrets.write().unwrap_or_else(|p| p.into_inner());
        let mut added = false;
        for form in forms {
            if form.len() >= MIN_SECRET_LEN && !secrets.contains(&form) {
                secrets.push(form);
                added = true;
            }
        }
        if added {
            // Longest first, so that a secret containing another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Returns `text` with every registered secret (and its JSON-escaped form) replaced by
    /// `***`, and the credentials of every `scheme://user:password@` URL masked whether
    /// registered or not (`http://***@host/`).
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
        let spans = url_userinfo_spans(&out);
        if spans.is_empty() {
            return out;
        }
        let mut masked = String::with_capacity(out.len());
        let mut last = 0;
        for (start, end) in spans {
            masked.push_str(&out[last..start]);
            masked.push_str(MASK);
            last = end;
        }
        masked.push_str(&out[last..]);
        Cow::Owned(masked)
    }
}

/// Whether a field name holds a user name (the other half of Basic credentials).
fn is_user_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "user" | "username" | "login")
        || name.ends_with("_user")
        || name.ends_with("_username")
}

/// The byte ranges of the `user:password` part of every `scheme://user:password@host` in
/// `text` (user-info with a password; `git@host` alone is a user name, not a secret). The
/// user-info ends at `@`; a `/`, `?`, `#`, quote, backslash or whitespace first means there is
/// none.
fn url_userinfo_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let mut end = start;
        let mut colon = false;
        let mut at = None;
        while end < bytes.len() {
            match bytes[end] {
                b'@' => at = Some(end),
                b':' if at.is_none() => colon = true,
                b'/' | b'?' | b'#' | b'"' | b'\'' | b'\\' | b'<' | b'>' | b'`' => break,
                c if c.is_ascii_whitespace() => break,
                _ => {}
            }
            end += 1;
        }
        // The last `@` of the authority ends the user-info (`@` in a password must be
        // percent-encoded, but a raw one is masked whole too).
        if let Some(at) = at
            && colon
            && text[start..at].contains(':')
            && at > start
        {
            spans.push((start, at));
        }
        from = start;
    }
    spans
}

/// Percent-encoded and base64 forms of a secret (those that differ from it).
fn encoded_forms(secret: &str) -> Vec<String> {
    let mut forms = base64_forms(secret);
    let percent = percent_encoded(secret);
    if percent != secret {
        forms.push(percent.clone());
        // Lower-case hex digits are as valid as upper-case ones.
        let lower = percent_encoded_lower(secret);
        if lower != percent {
            forms.push(lower);
        }
    }
    forms
}

/// Standard and URL-safe base64, padded (masked whole, being longer) and unpadded.
fn base64_forms(text: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = Vec::with_capacity(4);
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        let form = engine.encode(text);
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

fn percent_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_encoded_lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02x}"));
        }
    }
    out
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
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

    #[test]
    fn url_credentials_are_masked_registered_or_not() {
        let r = Redactor::default();
        assert_eq!(
            r.redact(r#"{"endpoint":"http://alice:s3cr3t-pw@api.example.com:8080/graphql"}"#),
            r#"{"endpoint":"http://***@api.example.com:8080/graphql"}"#
        );
        // Not credentials: a user alone, a port, an `@` after the path.
        for plain in [
            "ssh://git@github.com/x",
            "http://host:8080/a?mail=a@b",
            "see http://host/x@y",
        ] {
            assert_eq!(r.redact(plain), plain);
        }
        // Registered from a config, the password is masked wherever it appears alone.
        r.add_config_secrets(&serde_json::json!({"endpoint": "https://alice:p%40ss-word@h/g"}));
        assert_eq!(
            r.redact("password p@ss-word rejected"),
            "password *** rejected"
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:p@ss-word");
        assert_eq!(r.redact(&format!("Basic {basic}")), "Basic ***");
    }

    #[test]
    fn encoded_forms_of_secrets_are_masked() {
        use base64::engine::general_purpose::STANDARD;
        let r = Redactor::default();
        r.add_secret("pä ss/wörd+1");
        for form in [
            "pä ss/wörd+1".to_owned(),
            percent_encoded("pä ss/wörd+1"),
            percent_encoded_lower("pä ss/wörd+1"),
            STANDARD.encode("pä ss/wörd+1"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("pä ss/wörd+1"),
        ] {
            let text = format!("<{form}>");
            let out = r.redact(&text);
            assert!(!out.contains(&form), "{form} leaked: {out}");
        }
        r.add_config_secrets(
            &serde_json::json!({"auth_username": "bob", "auth_password": "hunter2-pw"}),
        );
        let header = format!("Authorization: Basic {}", STANDARD.encode("bob:hunter2-pw"));
        assert_eq!(r.redact(&header), "Authorization: Basic ***");
    }
}
