//! Request headers whose secret values never print, and the authentication schemes of HTTP APIs.

use std::fmt;

use base64::Engine as _;
use driver_api::{DriverError, Result, SecretString};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

/// Headers sent with every request of a client. Values added with
/// [`insert_secret`](Self::insert_secret) are marked sensitive (reqwest never shows them) and
/// are registered with the run's redactor by [`HttpClient::for_step`](crate::HttpClient::for_step),
/// so they are scrubbed from any event, error or log line. `Debug` prints header names only.
#[derive(Clone, Default)]
pub struct Headers {
    map: HeaderMap,
    secrets: Vec<SecretString>,
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.map.keys().map(HeaderName::as_str))
            .finish()
    }
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a header that is not secret (`Content-Type`, `User-Agent`, ...), replacing one of
    /// the same name. `key` names the config key for the error of an invalid name or value.
    pub fn insert(&mut self, key: &str, name: &str, value: &str) -> Result<&mut Self> {
        let name = header_name(key, name)?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            DriverError::config(
                key,
                format!("header {name}: the value is not a valid header value"),
            )
        })?;
        self.map.insert(name, value);
        Ok(self)
    }

    /// Sets a header whose value is secret (credentials, or any user header), replacing one of
    /// the same name. The error for an invalid value never contains the value.
    pub fn insert_secret(
        &mut self,
        key: &str,
        name: &str,
        value: &SecretString,
    ) -> Result<&mut Self> {
        let name = header_name(key, name)?;
        let mut header = HeaderValue::from_str(value.expose()).map_err(|_| {
            DriverError::config(
                key,
                format!("header {name}: the value contains characters not allowed in a header"),
            )
        })?;
        header.set_sensitive(true);
        self.map.insert(name, header);
        self.secrets.push(value.clone());
        Ok(self)
    }

    /// Whether a header of this name is set (names are case-insensitive).
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The secret values (to register with a redactor).
    pub fn secret_values(&self) -> impl Iterator<Item = &SecretString> {
        self.secrets.iter()
    }

    /// The headers as reqwest's map.
    pub fn to_header_map(&self) -> HeaderMap {
        self.map.clone()
    }
}

fn header_name(key: &str, name: &str) -> Result<HeaderName> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| DriverError::config(key, format!("{name:?} is not a valid HTTP header name")))
}

/// How a client authenticates.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// No authentication header.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// `Authorization: Basic base64(<username>:<password>)`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// `<header>: <key>`, e.g. `X-API-Key`.
    ApiKey {
        /// The header carrying the key.
        header: String,
        /// The key.
        key: SecretString,
    },
}

impl Auth {
    /// Adds this scheme's header to `headers` (the header value is secret). `key` names the
    /// config key for errors.
    pub fn apply(&self, key: &str, headers: &mut Headers) -> Result<()> {
        match self {
            Self::None => {}
            Self::Bearer(token) => {
                let value = SecretString::new(format!("Bearer {}", token.expose()));
                headers.insert_secret(key, AUTHORIZATION.as_str(), &value)?;
                // The bare token too: a server echoing it back must not leak it.
                headers.secrets.push(token.clone());
            }
            Self::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()));
                let value = SecretString::new(format!("Basic {encoded}"));
                headers.insert_secret(key, AUTHORIZATION.as_str(), &value)?;
                headers.secrets.push(SecretString::new(encoded));
                headers.secrets.push(password.clone());
            }
            Self::ApiKey {
                header,
                key: api_key,
            } => {
                headers.insert_secret(key, header, api_key)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_only_and_values_are_sensitive() {
        let mut headers = Headers::new();
        Auth::Bearer(SecretString::new("tok-123456"))
            .apply("auth_token", &mut headers)
            .unwrap();
        headers.insert("headers", "X-Trace", "on").unwrap();
        let printed = format!("{headers:?} {:?}", headers.to_header_map());
        assert!(!printed.contains("tok-123456"), "{printed}");
        assert!(printed.contains("authorization"), "{printed}");
        assert!(headers.to_header_map()["authorization"].is_sensitive());
        let secrets: Vec<&str> = headers.secret_values().map(|s| s.expose()).collect();
        assert_eq!(secrets, ["Bearer tok-123456", "tok-123456"]);
    }

    #[test]
    fn basic_auth_encodes_user_and_password() {
        let mut headers = Headers::new();
        Auth::Basic {
            username: "ann".into(),
            password: SecretString::new("s3cret"),
        }
        .apply("auth_password", &mut headers)
        .unwrap();
        assert_eq!(
            headers.to_header_map()["authorization"].to_str().unwrap(),
            "Basic YW5uOnMzY3JldA=="
        );
    }

    #[test]
    fn invalid_values_name_the_key_but_not_the_value() {
        let mut headers = Headers::new();
        let err = headers
            .insert_secret("headers", "X-Key", &SecretString::new("bad\nvalue"))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("headers") && text.contains("x-key"), "{text}");
        assert!(!text.contains("bad"), "{text}");
        let err = headers.insert("headers", "bad name", "v").unwrap_err();
        assert!(
            err.to_string().contains("not a valid HTTP header name"),
            "{err}"
        );
    }
}
