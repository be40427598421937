//! The session settings a client can SET, RESET and SHOW, with PostgreSQL's defaults. They are
//! mirrored into the catalog (pg_settings, current_setting()); search_path, TimeZone and
//! statement_timeout also act on the client's DuckDB.

use std::time::Duration;

use duckdb::types::Value;
use pgwire::api::Type;
use pgwire::error::ErrorInfo;

use crate::backend::{Column, Rows, error};

/// One setting.
#[derive(Debug, Clone)]
pub struct Setting {
    /// Name as PostgreSQL spells it (`DateStyle`).
    pub name: String,
    /// Current value.
    pub value: String,
    /// Value RESET goes back to.
    pub reset: String,
    /// Unit (`ms` for timeouts).
    pub unit: Option<&'static str>,
    /// pg_settings.category.
    pub category: &'static str,
    /// pg_settings.short_desc.
    pub description: &'static str,
    /// pg_settings.vartype.
    pub vartype: &'static str,
    /// Whether SET may change it.
    pub settable: bool,
}

/// A default: (name, value, unit, vartype, settable, description).
type DefaultSetting = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    bool,
    &'static str,
);

/// PostgreSQL's defaults.
const DEFAULTS: &[DefaultSetting] = &[
    (
        "application_name",
        "",
        None,
        "string",
        true,
        "Sets the application name.",
    ),
    (
        "bytea_output",
        "hex",
        None,
        "enum",
        true,
        "Sets the output format for bytea.",
    ),
    (
        "client_encoding",
        "UTF8",
        None,
        "string",
        true,
        "Sets the client's character set encoding.",
    ),
    (
        "client_min_messages",
        "notice",
        None,
        "enum",
        true,
        "Sets the message levels sent to the client.",
    ),
    (
        "DateStyle",
        "ISO, MDY",
        None,
        "string",
        true,
        "Sets the display format for date and time values.",
    ),
    (
        "default_transaction_isolation",
        "read committed",
        None,
        "enum",
        true,
        "Sets the isolation level of new transactions.",
    ),
    (
        "default_transaction_read_only",
        "on",
        None,
        "bool",
        true,
        "Sets the default read-only status of new transactions.",
    ),
    (
        "extra_float_digits",
        "1",
        None,
        "integer",
        true,
        "Sets the number of digits displayed for floating-point values.",
    ),
    (
        "idle_in_transaction_session_timeout",
        "0",
        Some("ms"),
        "integer",
        true,
        "Sets the maximum allowed idle time between queries, when in a transaction.",
    ),
    (
        "integer_datetimes",
        "on",
        None,
        "bool",
        false,
        "Shows whether datetimes are integer based.",
    ),
    (
        "IntervalStyle",
        "postgres",
        None,
        "enum",
        true,
        "Sets the display format for interval values.",
    ),
    (
        "is_superuser",
        "off",
        None,
        "bool",
        false,
        "Shows whether the current user is a superuser.",
    ),
    (
        "lc_collate",
        "C",
        None,
        "string",
        false,
        "Shows the collation order locale.",
    ),
    (
        "lc_ctype",
        "C",
        None,
        "string",
        false,
        "Shows the character classification locale.",
    ),
    (
        "lc_messages",
        "C",
        None,
        "string",
        true,
        "Sets the language in which messages are displayed.",
    ),
    (
        "lc_monetary",
        "C",
        None,
        "string",
        true,
        "Sets the locale for formatting monetary amounts.",
    ),
    (
        "lc_numeric",
        "C",
        None,
        "string",
        true,
        "Sets the locale for formatting numbers.",
    ),
    (
        "lc_time",
        "C",
        None,
        "string",
        true,
        "Sets the locale for formatting date and time values.",
    ),
    (
        "lock_timeout",
        "0",
        Some("ms"),
        "integer",
        true,
        "Sets the maximum allowed duration of any wait for a lock.",
    ),
    (
        "max_identifier_length",
        "63",
        None,
        "integer",
        false,
        "Shows the maximum identifier length.",
    ),
    (
        "max_index_keys",
        "32",
        None,
        "integer",
        false,
        "Shows the maximum number of index keys.",
    ),
    (
        "row_security",
        "on",
        None,
        "bool",
        true,
        "Enable row security.",
    ),
    (
        "search_path",
        "\"$user\", public",
        None,
        "string",
        true,
        "Sets the schema search order for names that are not schema-qualified.",
    ),
    (
        "server_encoding",
        "UTF8",
        None,
        "string",
        false,
        "Shows the server (database) character set encoding.",
    ),
    (
        "server_version",
        SERVER_VERSION,
        None,
        "string",
        false,
        "Shows the server version.",
    ),
    (
        "server_version_num",
        SERVER_VERSION_NUM,
        None,
        "integer",
        false,
        "Shows the server version as an integer.",
    ),
    (
        "standard_conforming_strings",
        "on",
        None,
        "bool",
        true,
        "Causes '...' strings to treat backslashes literally.",
    ),
    (
        "statement_timeout",
        "0",
        Some("ms"),
        "integer",
        true,
        "Sets the maximum allowed duration of any statement.",
    ),
    (
        "TimeZone",
        "UTC",
        None,
        "string",
        true,
        "Sets the time zone for displaying and interpreting time stamps.",
    ),
    (
        "transaction_isolation",
        "read committed",
        None,
        "enum",
        true,
        "Sets the current transaction's isolation level.",
    ),
    (
        "transaction_read_only",
        "on",
        None,
        "bool",
        true,
        "Sets the current transaction's read-only status.",
    ),
    (
        "session_authorization",
        "osiris",
        None,
        "string",
        false,
        "Sets the session user name.",
    ),
];

/// The PostgreSQL version clients are told (they pick their catalog queries by it).
pub const SERVER_VERSION: &str = "16.0";
/// [`SERVER_VERSION`] as `server_version_num`.
pub const SERVER_VERSION_NUM: &str = "160000";

/// One client's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    settings: Vec<Setting>,
}

impl Settings {
    /// The defaults, plus the server's own `osiris.*` values for the catalog's functions.
    pub fn new(user: &str, pid: i32, duckdb_version: &str) -> Self {
        let mut settings: Vec<Setting> = DEFAULTS
            .iter()
            .map(
                |&(name, value, unit, vartype, settable, description)| Setting {
                    name: name.to_owned(),
                    value: value.to_owned(),
                    reset: value.to_owned(),
                    unit,
                    category: "Client Connection Defaults",
                    description,
                    vartype,
                    settable,
                },
            )
            .collect();
        let version = format!(
            "PostgreSQL {SERVER_VERSION} (osiris {} on DuckDB {duckdb_version}), compiled by rustc, 64-bit",
            env!("CARGO_PKG_VERSION")
        );
        let start = chrono::Utc::now().to_rfc3339();
        for (name, value) in [
            ("osiris.version", version.as_str()),
            ("osiris.user", user),
            ("osiris.pid", &pid.to_string()),
            ("osiris.start_time", &start),
        ] {
            settings.push(internal(name, value));
        }
        Self { settings }
    }

    fn find(&self, name: &str) -> Option<&Setting> {
        self.settings
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The current value of a setting.
    pub fn get(&self, name: &str) -> Option<String> {
        self.find(name).map(|s| s.value.clone())
    }

    /// Sets (or with `None` resets) a setting. Unknown names are kept as custom settings, as
    /// PostgreSQL does for names with a dot; read-only ones are refused (55P02).
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), Box<ErrorInfo>> {
        let name = name.trim_matches('"');
        if let Some(s) = self
            .settings
            .iter_mut()
            .find(|s| s.name.eq_ignore_ascii_case(name))
        {
            if !s.settable || s.name.starts_with("osiris.") {
                return Err(error(
                    "55P02",
                    format!("parameter \"{name}\" cannot be changed"),
                ));
            }
            let value = value.map_or_else(|| s.reset.clone(), str::to_owned);
            if s.name == "statement_timeout" {
                parse_duration_ms(&value).ok_or_else(|| {
                    error(
                        "22023",
                        format!("invalid value for parameter \"statement_timeout\": \"{value}\""),
                    )
                })?;
            }
            s.value = value;
            return Ok(());
        }
        let value = value.unwrap_or("").to_owned();
        let mut custom = internal(name, &value);
        custom.name = name.to_ascii_lowercase();
        custom.settable = true;
        self.settings.push(custom);
        Ok(())
    }

    /// Sets one of the server's own `osiris.*` values.
    pub fn set_internal(&mut self, name: &str, value: &str) {
        match self.settings.iter_mut().find(|s| s.name == name) {
            Some(s) => s.value = value.to_owned(),
            None => self.settings.push(internal(name, value)),
        }
    }

    /// `RESET ALL`.
    pub fn reset_all(&mut self) {
        for s in &mut self.settings {
            if s.settable {
                s.value = s.reset.clone();
            }
        }
    }

    /// Every setting, the server's own included.
    pub fn rows(&self) -> &[Setting] {
        &self.settings
    }

    /// `SHOW name`, `SHOW ALL`.
    pub fn show(&self, name: &str) -> Result<Rows, Box<ErrorInfo>> {
        if name.eq_ignore_ascii_case("all") {
            return Ok(Rows {
                columns: vec![
                    Column::new("name", Type::TEXT),
                    Column::new("setting", Type::TEXT),
                    Column::new("description", Type::TEXT),
                ],
                rows: self
                    .settings
                    .iter()
                    .filter(|s| !s.name.starts_with("osiris."))
                    .map(|s| {
                        vec![
                            Value::Text(s.name.clone()),
                            Value::Text(s.value.clone()),
                            Value::Text(s.description.to_owned()),
                        ]
                    })
                    .collect(),
            });
        }
        let s = self
            .find(name.trim_matches('"'))
            .filter(|s| !s.name.starts_with("osiris."))
            .ok_or_else(|| {
                error(
                    "42704",
                    format!("unrecognized configuration parameter \"{name}\""),
                )
            })?;
        let column = if s.name.chars().any(|c| c.is_ascii_uppercase()) {
            s.name.to_ascii_lowercase()
        } else {
            s.name.clone()
        };
        Ok(Rows {
            columns: vec![Column::new(column, Type::TEXT)],
            rows: vec![vec![Value::Text(s.value.clone())]],
        })
    }

    /// The schemas on search_path that exist (`public` and attached sessions), in order.
    pub fn visible_schemas(&self, attached: &[String]) -> Vec<String> {
        let path = self.get("search_path").unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        for entry in path.split(',') {
            let entry = entry.trim();
            // A quoted name as written; an unquoted one as written (a string literal keeps
            // its case in PostgreSQL), else folded to lower case.
            let name = match entry.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None if attached.iter().any(|a| a == entry) => entry.to_owned(),
                None => entry.to_ascii_lowercase(),
            };
            let exists = name == "public" || attached.contains(&name);
            if exists && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// `statement_timeout` as a duration (`None`: no limit).
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.get("statement_timeout")
            .and_then(|v| parse_duration_ms(&v))
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    }
}

fn internal(name: &str, value: &str) -> Setting {
    Setting {
        name: name.to_owned(),
        value: value.to_owned(),
        reset: value.to_owned(),
        unit: None,
        category: "Customized Options",
        description: "",
        vartype: "string",
        settable: false,
    }
}

/// PostgreSQL's time values: `5000`, `5s`, `250ms`, `1min`, `1h` (plain numbers are ms).
fn parse_duration_ms(value: &str) -> Option<u64> {
    let v = value.trim().trim_matches('\'').trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_keeps_existing_schemas_in_order() {
        let mut s = Settings::new("u", 1, "v1");
        s.set("search_path", Some("\"Run-2\", public, nope, RUN1, Lit"))
            .unwrap();
        assert_eq!(
            s.visible_schemas(&["run1".into(), "Run-2".into(), "Lit".into()]),
            vec!["Run-2", "public", "run1", "Lit"]
        );
        s.set("search_path", None).unwrap();
        assert_eq!(s.visible_schemas(&["run1".into()]), vec!["public"]);
    }

    #[test]
    fn timeouts_and_read_only_settings() {
        let mut s = Settings::new("u", 1, "v1");
        s.set("statement_timeout", Some("2s")).unwrap();
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(2)));
        assert!(s.set("statement_timeout", Some("soon")).is_err());
        assert_eq!(
            s.set("server_version", Some("9")).unwrap_err().code,
            "55P02"
        );
        let shown = s.show("DateStyle").unwrap();
        assert_eq!(shown.columns[0].name, "datestyle");
        assert!(matches!(&shown.rows[0][0], Value::Text(v) if v == "ISO, MDY"));
        assert_eq!(s.show("nope").unwrap_err().code, "42704");
    }
}
