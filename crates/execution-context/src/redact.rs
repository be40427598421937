//! Scrubbing of secret values by value: every resolved secret string is replaced by `***`
//! wherever it appears, whatever field or message it ended up in.

use std::borrow::Cow;
use std::sync::RwLock;

/// The mask written in place of a secret.
pub const MASK: &str = "***";

/// Secrets shorter than this are not scrubbed by value: masking "1" or "ab" everywhere would
/// destroy unrelated output while protecting nothing guessable. They are still masked by key.
const MIN_SECRET_LEN: usize = 4;

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
    fn very_short_values_are_not_scrubbed_by_value() {
        let r = Redactor::default();
        r.add_secret("ab");
        assert_eq!(r.redact("tab"), "tab");
    }
}
