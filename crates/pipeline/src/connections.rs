//! `osiris_connections.yaml`: named connections per family, referenced from steps as
//! `connection: "@family.alias"`.
//!
//! ```yaml
//! connections:
//!   mysql:
//!     main:
//!       default: true             # used by mysql steps that name no connection
//!       host: db.internal
//!       password: ${MYSQL_PASSWORD}
//!       port: ${MYSQL_PORT:-3306}
//! ```
//!
//! `${VAR}` and `${VAR:-default}` are substituted when an alias is resolved (so a missing
//! variable only matters for aliases that are used), with shell semantics: `${VAR}` fails when
//! `VAR` is unset and gives `""` when it is set but empty; `${VAR:-default}` gives `default` when
//! `VAR` is unset or empty. Error messages name families, aliases, fields and variable names,
//! never values.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// File name of the connections file.
pub const CONNECTIONS_FILE: &str = "osiris_connections.yaml";

/// Other names Osiris' connection files use for a field, by family: `(family, alias, field)`.
/// Resolving a connection renames an alias to its field unless the field is set too.
pub const FIELD_ALIASES: &[(&str, &str, &str)] = &[
    ("supabase", "dsn", "pg_dsn"),
    ("supabase", "sql_dsn", "pg_dsn"),
];

/// Why a connection could not be loaded or resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The connections file cannot be read or parsed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong (with line and column for YAML errors).
        message: String,
    },
    /// The connections file is larger or nests deeper than any real one; it is not parsed.
    #[error("{message}")]
    Refused {
        /// What limit it passes, naming the file.
        message: String,
    },
    /// A reference is not of the form `@family.alias`.
    #[error(
        "{reference:?} is not a connection reference; write \"@family.alias\", e.g. \"@mysql.main\""
    )]
    BadReference {
        /// The reference as written.
        reference: String,
    },
    /// The family has no connections.
    #[error("no connections for family `{family}`{}", list_hint("families", known))]
    UnknownFamily {
        /// The family asked for.
        family: String,
        /// Families that exist.
        known: Vec<String>,
    },
    /// The alias does not exist in the family.
    #[error(
        "no connection `{alias}` in family `{family}`{}",
        list_hint("aliases", known)
    )]
    UnknownAlias {
        /// The family.
        family: String,
        /// The alias asked for.
        alias: String,
        /// Aliases of the family.
        known: Vec<String>,
    },
    /// No alias was named and the family has no default.
    #[error(
        "family `{family}` has no default connection (mark one `default: true` or name one `default`){}",
        list_hint("aliases", known)
    )]
    NoDefault {
        /// The family.
        family: String,
        /// Aliases of the family.
        known: Vec<String>,
    },
    /// An environment variable used by the connection is not set.
    #[error(
        "environment variable {variable} is not set (used by field `{field}` of connection @{family}.{alias}); set it or use ${{{variable}:-default}}"
    )]
    MissingVariable {
        /// The family.
        family: String,
        /// The alias.
        alias: String,
        /// The field using the variable.
        field: String,
        /// The variable name.
        variable: String,
    },
    /// A connection was needed but there is no connections file.
    #[error(
        "no {CONNECTIONS_FILE} found (looked in {searched}); create one or pass --connections FILE"
    )]
    NoFile {
        /// Where it was looked for.
        searched: String,
    },
}

fn list_hint(what: &str, known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!("; {what}: {}", known.join(", "))
    }
}

/// A parsed `@family.alias` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRef {
    /// The family (`mysql`).
    pub family: String,
    /// The alias (`main`).
    pub alias: String,
}

impl ConnectionRef {
    /// Parses `@family.alias` (letters, digits, `_` and `-` in both parts).
    pub fn parse(reference: &str) -> Result<Self, ConnectionError> {
        let bad = || ConnectionError::BadReference {
            reference: reference.to_owned(),
        };
        let rest = reference.strip_prefix('@').ok_or_else(bad)?;
        let (family, alias) = rest.split_once('.').ok_or_else(bad)?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !valid(family) || !valid(alias) {
            return Err(bad());
        }
        Ok(Self {
            family: family.to_owned(),
            alias: alias.to_owned(),
        })
    }
}

impl fmt::Display for ConnectionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}.{}", self.family, self.alias)
    }
}

/// A resolved connection: its fields after substitution. Its `Debug` shows field names only,
/// never values.
#[derive(Clone, PartialEq)]
pub struct ResolvedConnection {
    /// Family and alias it was resolved from.
    pub reference: ConnectionRef,
    /// Fields (without `default`), variables substituted.
    pub fields: Map<String, Value>,
}

impl fmt::Debug for ResolvedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedConnection")
            .field("reference", &self.reference.to_string())
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The contents of a connections file (values unsubstituted).
#[derive(Debug, Clone, Default)]
pub struct Connections {
    path: Option<PathBuf>,
    searched: Vec<PathBuf>,
    families: BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
    warnings: Vec<String>,
}

impl Connections {
    /// No connections file.
    pub fn none(searched: Vec<PathBuf>) -> Self {
        Self {
            searched,
            ..Self::default()
        }
    }

    /// Loads a connections file.
    pub fn load(path: &Path) -> Result<Self, ConnectionError> {
        let file_error = |message: String| ConnectionError::File {
            path: path.to_owned(),
            message,
        };
        let text = yaml_input::read_file(path).map_err(|e| match e {
            yaml_input::Error::Read { source, .. } => file_error(source.to_string()),
            other => ConnectionError::Refused {
                message: other.to_string(),
            },
        })?;
        Self::parse(&text, path).map_err(file_error)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, String> {
        yaml_input::check_depth(text).map_err(|e| e.to_string())?;
        let yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let doc: Value = serde_json::to_value(yaml).map_err(|e| e.to_string())?;
        let mut families = BTreeMap::new();
        let mut warnings = Vec::new();
        let connections = match doc.get("connections") {
            None => {
                warnings.push(format!(
                    "{} has no `connections:` key, so it defines no connections; put the families under `connections:`",
                    path.display()
                ));
                Map::new()
            }
            Some(Value::Null) => Map::new(),
            Some(Value::Object(c)) => c.clone(),
            Some(_) => return Err("`connections` must be a mapping of families".into()),
        };
        for (family, aliases) in connections {
            let Value::Object(aliases) = aliases else {
                return Err(format!(
                    "`connections.{family}` must be a mapping of aliases"
                ));
            };
            let mut parsed = BTreeMap::new();
            for (alias, fields) in aliases {
                let Value::Object(fields) = fields else {
                    return Err(format!(
                        "`connections.{family}.{alias}` must be a mapping of fields"
                    ));
                };
                parsed.insert(alias, fields);
            }
            families.insert(family, parsed);
        }
        Ok(Self {
            path: Some(path.to_owned()),
            searched: vec![path.to_owned()],
            families,
            warnings,
        })
    }

    /// What is odd about the file but does not stop a run (e.g. no `connections:` key).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Finds and loads the connections file: `explicit` if given, else the first of
    /// `$OSIRIS_HOME/`, the current directory and its parent that holds one. No file is not an
    /// error until a connection is needed.
    pub fn discover(
        explicit: Option<&Path>,
        osiris_home: Option<&Path>,
        cwd: &Path,
    ) -> Result<Self, ConnectionError> {
        if let Some(path) = explicit {
            return Self::load(path);
        }
        let mut candidates = Vec::new();
        if let Some(home) = osiris_home {
            candidates.push(home.join(CONNECTIONS_FILE));
        }
        candidates.push(cwd.join(CONNECTIONS_FILE));
        if let Some(parent) = cwd.parent() {
            candidates.push(parent.join(CONNECTIONS_FILE));
        }
        for candidate in &candidates {
            if candidate.is_file() {
                return Self::load(candidate);
            }
        }
        Ok(Self::none(candidates))
    }

    /// The file these connections came from.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Families with their aliases and raw (unsubstituted) fields.
    pub fn families(&self) -> &BTreeMap<String, BTreeMap<String, Map<String, Value>>> {
        &self.families
    }

    /// The default alias of a family: the one marked `default: true`, else one named `default`.
    pub fn default_alias(&self, family: &str) -> Option<&str> {
        let aliases = self.families.get(family)?;
        aliases
            .iter()
            .find(|(_, fields)| fields.get("default") == Some(&Value::Bool(true)))
            .map(|(alias, _)| alias.as_str())
            .or_else(|| aliases.contains_key("default").then_some("default"))
    }

    /// Resolves `family` / `alias` (or the family's default), substituting variables with
    /// `env`.
    pub fn resolve(
        &self,
        family: &str,
        alias: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ResolvedConnection, ConnectionError> {
        if self.path.is_none() {
            return Err(ConnectionError::NoFile {
                searched: self
                    .searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let aliases = self
            .families
            .get(family)
            .ok_or_else(|| ConnectionError::UnknownFamily {
                family: family.to_owned(),
                known: self.families.keys().cloned().collect(),
            })?;
        let known = || aliases.keys().cloned().collect::<Vec<_>>();
        let alias = match alias {
            Some(alias) => alias,
            None => self
                .default_alias(family)
                .ok_or_else(|| ConnectionError::NoDefault {
                    family: family.to_owned(),
                    known: known(),
                })?,
        };
        let raw = aliases
            .get(alias)
            .ok_or_else(|| ConnectionError::UnknownAlias {
                family: family.to_owned(),
                alias: alias.to_owned(),
                known: known(),
            })?;
        let mut fields = Map::new();
        for (field, value) in raw {
            if field == "default" {
                continue;
            }
            let value = substitute_value(value, env).map_err(|variable| {
                ConnectionError::MissingVariable {
                    family: family.to_owned(),
                    alias: alias.to_owned(),
                    field: field.clone(),
                    variable,
                }
            })?;
            fields.insert(field.clone(), value);
        }
        for (aliased_family, alias_name, field) in FIELD_ALIASES {
            if *aliased_family == family
                && !fields.contains_key(*field)
                && let Some(value) = fields.remove(*alias_name)
            {
                fields.insert((*field).to_owned(), value);
            }
        }
        Ok(ResolvedConnection {
            reference: ConnectionRef {
                family: family.to_owned(),
                alias: alias.to_owned(),
            },
            fields,
        })
    }
}

fn substitute_value(value: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(substitute(s, env)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute_value(v, env))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute_value(v, env)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Substitutes `${VAR}` and `${VAR:-default}` in `text`; returns the name of the first unset
/// variable on failure. Text that is not a well-formed placeholder is kept as written.
pub fn substitute(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let is_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !is_name {
            // Not a variable reference (e.g. `${params.x}` handled elsewhere): keep it.
            out.push_str(&rest[start..start + 2 + end + 1]);
        } else {
            match (env(name), default) {
                (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(name.to_owned()),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `${VAR}` names a raw value refers to (for showing which are set).
pub fn variables(value: &Value) -> Vec<String> {
    let mut names = Vec::new();
    collect_variables(value, &mut names);
    names
}

fn collect_variables(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            let seen = std::cell::RefCell::new(Vec::new());
            let _ = substitute(s, &|name| {
                seen.borrow_mut().push(name.to_owned());
                Some(String::new())
            });
            for name in seen.into_inner() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_variables(v, names)),
        Value::Object(map) => map.values().for_each(|v| collect_variables(v, names)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    const FILE: &str = r#"
version: 1
connections:
  mysql:
    main:
      default: true
      host: db.internal
      port: ${MYSQL_PORT:-3306}
      user: app
      password: ${MYSQL_PASSWORD}
    replica:
      host: ${REPLICA_HOST}
  supabase:
    default:
      url: https://x.supabase.co
"#;

    fn connections() -> Connections {
        Connections::parse(FILE, Path::new("osiris_connections.yaml")).unwrap()
    }

    #[test]
    fn references_parse_and_reject_malformed_ones() {
        let r = ConnectionRef::parse("@mysql.db_movies").unwrap();
        assert_eq!(
            (r.family.as_str(), r.alias.as_str()),
            ("mysql", "db_movies")
        );
        for bad in ["mysql.main", "@mysql", "@.main", "@mysql.", "@my sql.main"] {
            assert!(ConnectionRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn substitution_follows_shell_semantics() {
        let e = env(&[("SET", "v"), ("EMPTY", "")]);
        assert_eq!(substitute("a${SET}b${SET}", &e).unwrap(), "avbv");
        assert_eq!(substitute("${EMPTY}", &e).unwrap(), "");
        assert_eq!(substitute("${EMPTY:-d}", &e).unwrap(), "d");
        assert_eq!(substitute("${UNSET:-d}", &e).unwrap(), "d");
        assert_eq!(substitute("${UNSET}", &e).unwrap_err(), "UNSET");
        assert_eq!(
            substitute("${params.x} ${not closed", &e).unwrap(),
            "${params.x} ${not closed"
        );
    }

    #[test]
    fn resolves_defaults_and_substitutes_variables() {
        let c = connections();
        let resolved = c
            .resolve("mysql", None, &env(&[("MYSQL_PASSWORD", "pw-123")]))
            .unwrap();
        assert_eq!(resolved.reference.to_string(), "@mysql.main");
        assert_eq!(resolved.fields["port"], "3306");
        assert_eq!(resolved.fields["password"], "pw-123");
        assert!(!resolved.fields.contains_key("default"));
        assert_eq!(c.default_alias("supabase"), Some("default"));
        let debug = format!("{resolved:?}");
        assert!(
            !debug.contains("pw-123") && debug.contains("password"),
            "{debug}"
        );
    }

    #[test]
    fn errors_list_what_exists_and_never_values() {
        let c = connections();
        let e = env(&[]);
        assert_eq!(
            c.resolve("postgres", None, &e).unwrap_err().to_string(),
            "no connections for family `postgres`; families: mysql, supabase"
        );
        assert_eq!(
            c.resolve("mysql", Some("primary"), &e)
                .unwrap_err()
                .to_string(),
            "no connection `primary` in family `mysql`; aliases: main, replica"
        );
        assert_eq!(
            c.resolve("mysql", Some("main"), &e)
                .unwrap_err()
                .to_string(),
            "environment variable MYSQL_PASSWORD is not set (used by field `password` of connection @mysql.main); set it or use ${MYSQL_PASSWORD:-default}"
        );
    }

    #[test]
    fn family_without_default_says_how_to_mark_one() {
        let c = Connections::parse(
            "connections:\n  graphql:\n    a: {endpoint: x}\n    b: {endpoint: y}\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        assert_eq!(
            c.resolve("graphql", None, &env(&[]))
                .unwrap_err()
                .to_string(),
            "family `graphql` has no default connection (mark one `default: true` or name one `default`); aliases: a, b"
        );
    }

    #[test]
    fn discovery_prefers_explicit_then_home_then_cwd_then_parent() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("project");
        std::fs::create_dir_all(&cwd).unwrap();
        let none = Connections::discover(None, None, &cwd).unwrap();
        assert!(none.path().is_none());
        assert!(matches!(
            none.resolve("mysql", None, &env(&[])),
            Err(ConnectionError::NoFile { .. })
        ));
        std::fs::write(
            dir.path().join(CONNECTIONS_FILE),
            "connections: {parent: {a: {}}}",
        )
        .unwrap();
        let c = Connections::discover(None, None, &cwd).unwrap();
        assert!(c.families().contains_key("parent"));
        std::fs::write(cwd.join(CONNECTIONS_FILE), "connections: {cwd: {a: {}}}").unwrap();
        let c = Connections::discover(None, None, &cwd).unwrap();
        assert!(c.families().contains_key("cwd"));
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(CONNECTIONS_FILE), "connections: {home: {a: {}}}").unwrap();
        let c = Connections::discover(None, Some(&home), &cwd).unwrap();
        assert!(c.families().contains_key("home"));
        let explicit = dir.path().join("other.yaml");
        std::fs::write(&explicit, "connections: {explicit: {a: {}}}").unwrap();
        let c = Connections::discover(Some(&explicit), Some(&home), &cwd).unwrap();
        assert!(c.families().contains_key("explicit"));
    }

    #[test]
    fn malformed_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONNECTIONS_FILE);
        std::fs::write(&path, "connections:\n  mysql: [1, 2]\n").unwrap();
        let err = Connections::load(&path).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "osiris_connections.yaml: `connections.mysql` must be a mapping of aliases"
            ),
            "{err}"
        );
    }

    #[test]
    fn osiris_files_with_version_read_their_connections() {
        let c = connections();
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        assert_eq!(
            c.families().keys().collect::<Vec<_>>(),
            ["mysql", "supabase"]
        );
    }

    #[test]
    fn a_file_without_connections_key_warns() {
        let c = Connections::parse(
            "version: 1
mysql:
  main: {host: h}
",
            Path::new("osiris_connections.yaml"),
        )
        .unwrap();
        assert!(c.families().is_empty());
        assert_eq!(
            c.warnings(),
            [
                "osiris_connections.yaml has no `connections:` key, so it defines no connections; put the families under `connections:`"
            ]
        );
    }

    #[test]
    fn supabase_dsn_and_sql_dsn_are_pg_dsn() {
        let c = Connections::parse(
            "connections:\n  supabase:\n    a: {url: u, dsn: postgres://a}\n    b: {url: u, sql_dsn: postgres://b}\n    c: {url: u, pg_dsn: postgres://c, dsn: postgres://other}\n  mysql:\n    m: {dsn: kept}\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        let e = env(&[]);
        let pg = |alias: &str| c.resolve("supabase", Some(alias), &e).unwrap().fields;
        assert_eq!(pg("a")["pg_dsn"], "postgres://a");
        assert!(!pg("a").contains_key("dsn"));
        assert_eq!(pg("b")["pg_dsn"], "postgres://b");
        assert_eq!(
            pg("c")["pg_dsn"],
            "postgres://c",
            "pg_dsn wins over its alias"
        );
        let mysql = c.resolve("mysql", Some("m"), &e).unwrap().fields;
        assert_eq!(mysql["dsn"], "kept", "aliases are per family");
    }

    #[test]
    fn deep_or_huge_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONNECTIONS_FILE);
        std::fs::write(&path, format!("connections:\n  x: {}", "[".repeat(100_000))).unwrap();
        let err = Connections::load(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: line 2: nesting is deeper than 64 levels; such a document is refused unparsed",
                path.display()
            )
        );
    }

    #[test]
    fn variables_lists_referenced_names() {
        let v: Value = serde_json::json!({"a": "${A}", "b": ["x${B:-1}"], "c": 3});
        assert_eq!(variables(&v), ["A", "B"]);
    }
}
