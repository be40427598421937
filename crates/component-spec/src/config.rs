//! Checking a step config against its component's spec: the `configSchema` and the spec's
//! cross-field `constraints`, plus the string-to-type coercion that environment substitution
//! makes necessary.

use std::collections::BTreeSet;

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::ComponentSpec;
use crate::schema::{self, Found};

/// One problem with a step config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// JSON pointer inside the config (`/port`, `/columns/2`); empty for the whole config.
    pub pointer: String,
    /// What is wrong, for a pipeline author.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

impl From<Found> for ConfigProblem {
    fn from(found: Found) -> Self {
        Self {
            pointer: found.pointer,
            message: found.message,
        }
    }
}

/// The `constraints` block of a spec.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Constraints {
    /// Cross-field rules.
    #[serde(default)]
    pub required: Vec<Constraint>,
}

/// `{when, must, error}`: when every `when` entry matches, every `must` rule has to hold.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Constraint {
    /// Field -> scalar, `null` or `{present: bool}`.
    pub when: Map<String, Value>,
    /// Field -> rules, in spec order.
    #[serde(deserialize_with = "ordered_rules")]
    pub must: Vec<(String, FieldRule)>,
    /// The message when the rule fails.
    pub error: String,
}

/// Rules on one field; all must hold.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FieldRule {
    /// The field is set (true) or not set (false); defaults do not count.
    pub present: Option<bool>,
    /// The effective value is an array of at least this many items.
    #[serde(rename = "minItems")]
    pub min_items: Option<u64>,
    /// The effective value is one of these.
    #[serde(rename = "enum")]
    pub one_of: Option<Vec<Value>>,
}

fn ordered_rules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, FieldRule)>, D::Error> {
    let map = Map::<String, Value>::deserialize(d)?;
    map.into_iter()
        .map(|(field, rule)| {
            FieldRule::deserialize(rule)
                .map(|rule| (field, rule))
                .map_err(serde::de::Error::custom)
        })
        .collect()
}

/// What is known about a field when checking constraints.
#[derive(Debug, Clone, Copy)]
enum Known<'a> {
    /// Neither the config nor (for effective values) a default gives it a value.
    Unset,
    /// A connection that could not be resolved provides it: set, value unknown.
    FromConnection,
    /// This value.
    Value(&'a Value),
}

/// Set = present with a value other than null or "".
fn is_set(value: &Value) -> bool {
    !matches!(value, Value::Null) && value.as_str() != Some("")
}

/// JSON equality, with numbers compared by value (1 == 1.0), as in the Python original.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl ComponentSpec {
    /// Turns strings that environment substitution produced back into the types the
    /// `configSchema` asks for: for each top-level key whose property type is `integer`,
    /// `number` or `boolean` (or a list of types with one of them and without `string`), a
    /// string value that is exactly such a value (`"3306"`, `"1.5"`, `"true"`, `"false"`)
    /// becomes it. Anything else (`"3306x"`, `" 1"`) stays a string, for validation to report.
    pub fn coerce(&self, config: &mut Map<String, Value>) {
        let Some(props) = self.config_properties() else {
            return;
        };
        for (key, value) in config.iter_mut() {
            let Value::String(text) = value else {
                continue;
            };
            let types: Vec<&str> = match props.get(key).and_then(|s| s.get("type")) {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => continue,
            };
            if types.contains(&"string") {
                continue;
            }
            if let Some(typed) = parse_as(text, &types) {
                *value = typed;
            }
        }
    }

    /// Checks `config` (the step config merged with its connection's fields) against the
    /// `configSchema` and the spec's constraints; returns every problem, schema problems first.
    ///
    /// Unknown top-level keys are not reported (the caller reports them, with suggestions).
    /// Keys in `assume_present` are fields a connection provides that could not be resolved:
    /// they are not reported as missing, count as set for `present` rules, and a `when` that
    /// tests their value does not apply (the value is unknown).
    pub fn validate_config(
        &self,
        config: &Map<String, Value>,
        assume_present: &BTreeSet<String>,
    ) -> Vec<ConfigProblem> {
        let instance = Value::Object(config.clone());
        let mut problems = Vec::new();
        match self.validator() {
            Ok(validator) => {
                let skip = |e: &ValidationError<'_>| {
                    if !e.instance_path().is_empty() {
                        return false;
                    }
                    match e.kind() {
                        ValidationErrorKind::AdditionalProperties { .. } => true,
                        ValidationErrorKind::Required { property } => property
                            .as_str()
                            .is_some_and(|p| assume_present.contains(p)),
                        _ => false,
                    }
                };
                let mut found = Vec::new();
                for error in validator.iter_errors(&instance) {
                    schema::describe(&error, &skip, &mut found);
                }
                problems.extend(found.into_iter().map(ConfigProblem::from));
            }
            Err(reasons) => problems.push(ConfigProblem {
                pointer: String::new(),
                message: format!(
                    "the configSchema of {} is not a valid JSON Schema: {}",
                    self.name,
                    reasons.join("; ")
                ),
            }),
        }
        problems.extend(self.check_constraints(config, assume_present));
        problems
    }

    /// The failing constraints, each as one problem at its first failing `must` field.
    fn check_constraints(
        &self,
        config: &Map<String, Value>,
        assume_present: &BTreeSet<String>,
    ) -> Vec<ConfigProblem> {
        let provided = |field: &str| match config.get(field) {
            Some(value) if is_set(value) => Known::Value(value),
            _ if assume_present.contains(field) => Known::FromConnection,
            _ => Known::Unset,
        };
        let effective = |field: &str| match provided(field) {
            Known::Unset => self.default_of(field).map_or(Known::Unset, Known::Value),
            known => known,
        };
        let applies = |rule: &Constraint| {
            rule.when.iter().all(|(field, expected)| {
                if let Some(present) = expected.get("present").and_then(Value::as_bool) {
                    return !matches!(provided(field), Known::Unset) == present;
                }
                match effective(field) {
                    Known::FromConnection => false,
                    Known::Unset => expected.is_null(),
                    Known::Value(value) => !expected.is_null() && json_eq(value, expected),
                }
            })
        };
        let holds = |field: &str, rule: &FieldRule| {
            let is_present = !matches!(provided(field), Known::Unset);
            if rule.present.is_some_and(|wanted| wanted != is_present) {
                return false;
            }
            // minItems and enum hold for a field without value or default.
            let Known::Value(value) = effective(field) else {
                return true;
            };
            let long_enough = |min: u64| {
                value
                    .as_array()
                    .is_some_and(|items| items.len() as u64 >= min)
            };
            rule.min_items.is_none_or(long_enough)
                && rule
                    .one_of
                    .as_ref()
                    .is_none_or(|allowed| allowed.iter().any(|a| json_eq(a, value)))
        };
        self.constraints
            .required
            .iter()
            .filter(|rule| applies(rule))
            .filter_map(|rule| {
                let (field, _) = rule.must.iter().find(|(field, r)| !holds(field, r))?;
                Some(ConfigProblem {
                    pointer: schema::join_pointer("", field),
                    message: rule.error.trim().to_owned(),
                })
            })
            .collect()
    }

    /// The `properties` object of the `configSchema`.
    pub(crate) fn config_properties(&self) -> Option<&Map<String, Value>> {
        self.config_schema
            .get("properties")
            .and_then(Value::as_object)
    }

    /// The configSchema `default` of a top-level field.
    fn default_of(&self, field: &str) -> Option<&Value> {
        self.config_properties()?.get(field)?.get("default")
    }
}

/// `text` as the first of `types` (integer, number, boolean) it is exactly a value of.
fn parse_as(text: &str, types: &[&str]) -> Option<Value> {
    if types.contains(&"boolean") {
        match text {
            "true" => return Some(Value::Bool(true)),
            "false" => return Some(Value::Bool(false)),
            _ => {}
        }
    }
    let integer = types.contains(&"integer");
    let number = types.contains(&"number");
    // serde_json tolerates surrounding whitespace; an exact value has none.
    if !(integer || number) || text.is_empty() || text.trim() != text {
        return None;
    }
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Number(n) if number || n.is_i64() || n.is_u64() => Some(Value::Number(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SpecRegistry;
    use serde_json::json;

    fn registry() -> SpecRegistry {
        SpecRegistry::builtin().unwrap()
    }

    fn config(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    fn check(component: &str, value: Value) -> Vec<String> {
        registry()
            .get(component)
            .unwrap()
            .validate_config(&config(value), &none())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn coerce_turns_exact_strings_into_schema_types() {
        let registry = registry();
        let mysql = registry.get("mysql.extractor").unwrap();
        let mut c = config(json!({
            "host": "db", "port": "3306", "batch_size": "33x", "limit": " 5",
            "connect_timeout": "1.5", "password": "1234"
        }));
        mysql.coerce(&mut c);
        assert_eq!(c["port"], json!(3306));
        assert_eq!(c["batch_size"], json!("33x"));
        assert_eq!(c["limit"], json!(" 5"));
        assert_eq!(c["connect_timeout"], json!("1.5"), "not an integer");
        assert_eq!(
            c["password"],
            json!("1234"),
            "string property stays a string"
        );

        let csv = registry.get("filesystem.csv_writer").unwrap();
        let mut c =
            config(json!({"header": "true", "create_dirs": "false", "sort_columns": "yes"}));
        csv.coerce(&mut c);
        assert_eq!(c["header"], json!(true));
        assert_eq!(c["create_dirs"], json!(false));
        assert_eq!(c["sort_columns"], json!("yes"));

        let graphql = registry.get("graphql.extractor").unwrap();
        let mut c = config(json!({"retry_delay": "2.5"}));
        graphql.coerce(&mut c);
        assert_eq!(c["retry_delay"], json!(2.5));
    }

    #[test]
    fn coerce_follows_type_lists_and_leaves_string_unions_alone() {
        let registry = registry();
        let csv = registry.get("filesystem.csv_extractor").unwrap();
        let mut c = config(json!({"header": "2", "skip_rows": "1", "parse_dates": "false"}));
        csv.coerce(&mut c);
        assert_eq!(c["header"], json!(2), "[boolean, integer]");
        assert_eq!(c["parse_dates"], json!(false), "[boolean, array]");
        let posthog = registry.get("posthog.extractor").unwrap();
        let mut c = config(json!({"project_id": "123"}));
        posthog.coerce(&mut c);
        assert_eq!(
            c["project_id"],
            json!("123"),
            "[string, integer] keeps the string"
        );
    }

    #[test]
    fn schema_problems_have_pointers_and_plain_messages() {
        let problems = check(
            "mysql.writer",
            json!({"host": "db", "port": 70000, "database": "d", "user": "u",
                   "table": "t", "mode": "upsrt", "batch_size": "10", "primary_key": ["id", 3]}),
        );
        assert_eq!(
            problems,
            [
                "/port: 70000 is greater than the maximum of 65535",
                "/mode: \"upsrt\" is not one of \"append\", \"replace\", \"upsert\"",
                "/batch_size: \"10\" is not of type \"integer\"",
                "/primary_key/1: 3 is not of type \"string\"",
            ],
            "in the order the config lists the keys"
        );
    }

    #[test]
    fn pattern_length_and_minimum_problems() {
        let problems = check(
            "graphql.extractor",
            json!({"endpoint": "ftp://x", "query": "", "timeout": 1, "connection": "mysql"}),
        );
        assert_eq!(
            problems,
            [
                "/endpoint: \"ftp://x\" does not match the pattern ^https?://",
                "/query: \"\" is shorter than 1 character",
                "/timeout: 1 is less than the minimum of 5",
                "/connection: \"mysql\" does not match the pattern ^@[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$",
            ]
        );
    }

    #[test]
    fn missing_required_key_is_named_unless_a_connection_provides_it() {
        let registry = registry();
        let processor = registry.get("duckdb.processor").unwrap();
        let problems = processor.validate_config(&Map::new(), &none());
        assert_eq!(
            problems,
            [ConfigProblem {
                pointer: "/query".into(),
                message: "missing required key `query`".into()
            }]
        );

        let writer = registry.get("mysql.writer").unwrap();
        let c = config(json!({"connection": "@mysql.main", "table": "t"}));
        let messages: Vec<String> = writer
            .validate_config(&c, &none())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "/host: missing required key `host`",
                "/database: missing required key `database`",
                "/user: missing required key `user`",
            ]
        );
        let from_connection: BTreeSet<String> = writer
            .connection_fields()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(writer.validate_config(&c, &from_connection), []);
    }

    #[test]
    fn unknown_top_level_keys_are_left_to_the_caller() {
        assert!(
            check(
                "duckdb.processor",
                json!({"query": "SELECT 1", "qurey": "x"})
            )
            .is_empty()
        );
        // ... but not unknown keys nested in a value, which nobody else reports.
        assert_eq!(
            check(
                "filesystem.csv_extractor",
                json!({"path": "a.csv", "dtype": {"a": 5}})
            ),
            ["/dtype/a: 5 is not of type \"string\""]
        );
    }

    #[test]
    fn mysql_writer_upsert_needs_primary_key() {
        let base =
            json!({"host": "db", "database": "d", "user": "u", "table": "t", "mode": "upsert"});
        assert_eq!(
            check("mysql.writer", base.clone()),
            ["/primary_key: mode upsert needs primary_key: the key columns that identify a row"]
        );
        let mut with_key = base.clone();
        with_key["primary_key"] = json!(["id"]);
        assert!(check("mysql.writer", with_key).is_empty());
        let mut with_alias = base;
        with_alias["upsert_keys"] = json!(["id"]);
        assert!(
            check("mysql.writer", with_alias).is_empty(),
            "when upsert_keys: null"
        );
    }

    #[test]
    fn mysql_writer_enum_rule_and_both_keys() {
        let problems = check(
            "mysql.writer",
            json!({"host": "db", "database": "d", "user": "u", "table": "t", "mode": "replace",
                   "truncate_before": true}),
        );
        assert_eq!(
            problems,
            [
                "/truncate_before: mode replace already replaces all rows; truncate_before goes with append or upsert"
            ]
        );
        let problems = check(
            "mysql.writer",
            json!({"host": "db", "database": "d", "user": "u", "table": "t",
                   "primary_key": ["id"], "upsert_keys": ["id"]}),
        );
        assert_eq!(
            problems,
            ["/primary_key: set primary_key or its deprecated alias upsert_keys, not both"]
        );
    }

    #[test]
    fn mysql_extractor_query_excludes_table() {
        let base = json!({"host": "db", "database": "d", "user": "u"});
        let mut both = base.clone();
        both["query"] = json!("SELECT 1");
        both["table"] = json!("t");
        assert_eq!(
            check("mysql.extractor", both),
            [
                "/table: `query` excludes `table`, `columns`, `where`, `limit`, `offset` and `partition_on`: set either `query` or `table` with its options"
            ]
        );
        assert_eq!(
            check("mysql.extractor", base.clone()),
            ["/table: set `query` (an SQL statement) or `table` (a table to read)"]
        );
        let mut empty_query = base;
        empty_query["query"] = json!("");
        empty_query["table"] = json!("t");
        assert_eq!(
            check("mysql.extractor", empty_query),
            ["/query: \"\" is shorter than 1 character"],
            "an empty query is not set, so table alone applies"
        );
    }

    #[test]
    fn supabase_writer_constraints() {
        let key = "k".repeat(20);
        let ok = json!({"url": "https://x.supabase.co", "key": key, "table": "t"});
        assert!(check("supabase.writer", ok.clone()).is_empty());

        assert_eq!(
            check("supabase.writer", json!({"table": "t"})),
            [
                "/project_id: say where the project is: url, project_id or rest_url (usually from the connection)",
                "/key: an API key is needed: service_role_key, anon_key or key (usually from the connection)",
            ]
        );

        let mut replace = ok.clone();
        replace["write_mode"] = json!("replace");
        replace["primary_key"] = json!(["id"]);
        assert_eq!(
            check("supabase.writer", replace.clone()),
            [
                "/pg_dsn: write_mode replace needs primary_key and pg_dsn (the table is truncated and loaded in one Postgres transaction; the REST API cannot do that)"
            ],
            "the pointer names the failing field"
        );
        replace["pg_dsn"] = json!("postgresql://u:p@h/db");
        assert!(check("supabase.writer", replace).is_empty());

        // create_if_missing needs pg_dsn only when the table is missing: the driver checks
        // that at run time, so validation accepts it.
        let mut create = ok;
        create["create_if_missing"] = json!(true);
        create["write_mode"] = json!("upsert");
        create["primary_key"] = json!("id");
        assert!(check("supabase.writer", create).is_empty());
    }

    #[test]
    fn unresolved_connection_fields_count_as_present_but_unknown() {
        let registry = registry();
        let writer = registry.get("supabase.writer").unwrap();
        let assumed: BTreeSet<String> = writer
            .connection_fields()
            .into_iter()
            .map(|f| f.name)
            .collect();
        let c = config(
            json!({"connection": "@supabase.main", "table": "t", "write_mode": "replace",
                              "primary_key": ["id"]}),
        );
        assert_eq!(
            writer.validate_config(&c, &assumed),
            [],
            "pg_dsn may come from it"
        );
        let problems = writer.validate_config(&c, &none());
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn when_matches_a_default_value() {
        // graphql auth_type defaults to none: a token without auth_type violates that rule.
        let problems = check(
            "graphql.extractor",
            json!({"endpoint": "https://x/graphql", "query": "{a}", "auth_token": "t"}),
        );
        assert_eq!(
            problems,
            [
                "/auth_token: a token or password is set but auth_type is none: set auth_type (bearer, basic or api_key)"
            ]
        );
        // posthog data_type defaults to events: event_types passes its enum rule by default...
        let base = json!({"api_key": "k", "project_id": 1, "event_types": ["signup"]});
        assert!(check("posthog.extractor", base.clone()).is_empty());
        // ... and fails once data_type is something else.
        let mut persons = base;
        persons["data_type"] = json!("persons");
        assert_eq!(
            check("posthog.extractor", persons),
            ["/data_type: event_types filters events: it needs data_type events"]
        );
        // `null` never matches a field with a default: region defaults to us.
        let registry = registry();
        let spec = registry.get("posthog.extractor").unwrap();
        let c = config(json!({"api_key": "k", "project_id": 1}));
        assert_eq!(spec.validate_config(&c, &none()), []);
    }

    #[test]
    fn present_ignores_defaults() {
        // graphql `pagination_style` has a default, yet is not present unless set.
        let base =
            json!({"endpoint": "https://x/graphql", "query": "{a}", "pagination_enabled": true});
        assert!(check("graphql.extractor", base.clone()).is_empty());
        let mut both = base;
        both["pagination_style"] = json!("relay");
        assert_eq!(
            check("graphql.extractor", both),
            [
                "/pagination_style: pagination_enabled is the deprecated form of pagination_style: set only pagination_style"
            ]
        );
        // A field set to "" is not present either.
        let problems = check(
            "posthog.extractor",
            json!({"api_key": "k", "project_id": "1", "deduplication_enabled": "", "deduplicate": true}),
        );
        assert_eq!(
            problems,
            ["/deduplication_enabled: \"\" is not of type \"boolean\""]
        );
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(!json_eq(&json!(1), &json!("1")));
    }
}
