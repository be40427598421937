//! The one error type drivers return, classified so that the engine, the CLI and a remote host
//! can tell "the world is wrong" (bad config, unreachable server, bad data) from "we are wrong".

/// Result type of driver operations.
pub type Result<T, E = DriverError> = std::result::Result<T, E>;

/// Why a driver operation failed. Each driver converts its private errors into this type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The step configuration is invalid (wrong type, missing or unknown key, bad value).
    #[error("{}{message}", key.as_deref().map(|k| format!("config key `{k}`: ")).unwrap_or_default())]
    Config {
        /// The offending key or JSON path, when known.
        key: Option<String>,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
    /// A file the step needs is missing or cannot be read or written.
    #[error("{message}")]
    Io {
        /// What failed, naming the path.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The source data is malformed (e.g. a CSV row with the wrong number of fields).
    #[error("{message}")]
    Data {
        /// What is wrong, naming the file and line or record.
        message: String,
    },
    /// The remote system could not be reached (DNS, refused, TLS, timeout).
    #[error("{message}")]
    Connection {
        /// What failed (never containing credentials).
        message: String,
    },
    /// The remote system did not answer in time.
    #[error("{message}")]
    Timeout {
        /// What timed out.
        message: String,
    },
    /// The remote system refused the credentials or the permission.
    #[error("{message}")]
    Auth {
        /// What was refused (never containing credentials).
        message: String,
    },
    /// The remote system accepted the credentials but refused the operation (a missing
    /// privilege or grant).
    #[error("{message}")]
    Permission {
        /// What was refused (never containing credentials).
        message: String,
    },
    /// The remote system answered with an error.
    #[error("{message}")]
    Remote {
        /// The remote system's message.
        message: String,
    },
    /// DuckDB reported an error while working on the run database.
    #[error("{context}: {source}")]
    DuckDb {
        /// What the driver was doing.
        context: String,
        /// DuckDB's error, with its own message.
        #[source]
        source: duckdb::Error,
    },
    /// The driver does not support the requested operation.
    #[error("{operation} is not supported by this driver")]
    Unsupported {
        /// The operation, e.g. `discover`.
        operation: String,
    },
    /// The step was cancelled before it finished.
    #[error("cancelled")]
    Cancelled,
    /// A bug in osiris or a driver (an invariant did not hold).
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
}

/// The class of a [`DriverError`], as written to events and status files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// See [`DriverError::Config`].
    Config,
    /// See [`DriverError::Io`].
    Io,
    /// See [`DriverError::Data`].
    Data,
    /// See [`DriverError::Connection`].
    Connection,
    /// See [`DriverError::Timeout`].
    Timeout,
    /// See [`DriverError::Auth`].
    Auth,
    /// See [`DriverError::Permission`].
    Permission,
    /// See [`DriverError::Remote`].
    Remote,
    /// See [`DriverError::DuckDb`].
    Duckdb,
    /// See [`DriverError::Unsupported`].
    Unsupported,
    /// See [`DriverError::Cancelled`].
    Cancelled,
    /// See [`DriverError::Internal`].
    Internal,
}

impl ErrorClass {
    /// The snake_case name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Io => "io",
            Self::Data => "data",
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Auth => "auth",
            Self::Permission => "permission",
            Self::Remote => "remote",
            Self::Duckdb => "duckdb",
            Self::Unsupported => "unsupported",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DriverError {
    /// A configuration error about `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// A data error.
    pub fn data(message: impl Into<String>) -> Self {
        Self::Data {
            message: message.into(),
        }
    }

    /// An I/O error with a message naming the path.
    pub fn io(message: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            message: message.into(),
            source: Some(source),
        }
    }

    /// A DuckDB error with what was being done.
    pub fn duckdb(context: impl Into<String>, source: duckdb::Error) -> Self {
        Self::DuckDb {
            context: context.into(),
            source,
        }
    }

    /// An internal error (a bug).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
        }
    }

    /// This error's class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Config { .. } => ErrorClass::Config,
            Self::Io { .. } => ErrorClass::Io,
            Self::Data { .. } => ErrorClass::Data,
            Self::Connection { .. } => ErrorClass::Connection,
            Self::Timeout { .. } => ErrorClass::Timeout,
            Self::Auth { .. } => ErrorClass::Auth,
            Self::Permission { .. } => ErrorClass::Permission,
            Self::Remote { .. } => ErrorClass::Remote,
            Self::DuckDb { .. } => ErrorClass::Duckdb,
            Self::Unsupported { .. } => ErrorClass::Unsupported,
            Self::Cancelled => ErrorClass::Cancelled,
            Self::Internal { .. } => ErrorClass::Internal,
        }
    }
}

impl From<execution_context::Error> for DriverError {
    fn from(error: execution_context::Error) -> Self {
        match error {
            execution_context::Error::Io { .. } => Self::Io {
                message: error.to_string(),
                source: None,
            },
            execution_context::Error::Database { source, .. } => {
                Self::duckdb("cannot open the run database", source)
            }
            other => Self::internal(other.to_string()),
        }
    }
}
