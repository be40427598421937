//! The typed connection of a driver's family, and how the engine's one config map is split
//! into the connection and the step config.

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::{Map, Value};

use crate::{DriverError, Result};

/// The connection type of drivers whose components take no connection (`duckdb.processor`,
/// test drivers): no fields, so a step config's every key belongs to the step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConnection {}

/// The field names serde's derive gives `T` (renames applied), read from its
/// `deserialize_struct` call; empty for anything that is not a struct with named fields.
pub fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Capture(&'static [&'static str]);
    impl<'de> Deserializer<'de> for &mut Capture {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("captured"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut capture = Capture(&[]);
    let _ = T::deserialize(&mut capture);
    capture.0
}

/// Deserializes `value` into `T`; a failure is a config error naming the key path.
pub(crate) fn parse<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        DriverError::Config {
            key: (path != ".").then_some(path),
            message: error.into_inner().to_string(),
        }
    })
}

/// Splits the engine's config map (step config with the connection's fields merged in) into
/// the fields of the connection type `C` and the rest, and deserializes both: what the
/// registry does before [`Driver::run`](crate::Driver::run). A failure is a config error
/// naming the key.
pub fn split_config<C: DeserializeOwned, T: DeserializeOwned>(config: Value) -> Result<(C, T)> {
    let mut step = match config {
        Value::Object(map) => map,
        other => {
            return Err(DriverError::Config {
                key: None,
                message: format!("the step config must be a mapping, not {other}"),
            });
        }
    };
    let connection: Map<String, Value> = struct_fields::<C>()
        .iter()
        .filter_map(|field| step.remove(*field).map(|v| ((*field).to_owned(), v)))
        .collect();
    let connection = parse::<C>(Value::Object(connection))?;
    let config = parse::<T>(Value::Object(step))?;
    Ok((connection, config))
}

/// Deserializes a connection's fields (as `doctor` and `discover` receive them) into `C`.
/// An unknown or ill-typed field is a config error naming it.
pub(crate) fn parse_connection<C: DeserializeOwned>(fields: &Map<String, Value>) -> Result<C> {
    parse::<C>(Value::Object(fields.clone())).map_err(|error| match error {
        DriverError::Config { key, message } => DriverError::Config {
            key,
            message: format!("in the connection: {message}"),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Conn {
        host: String,
        #[serde(default)]
        port: Option<u16>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Step {
        table: String,
    }

    #[test]
    fn the_config_splits_by_the_connection_types_fields() {
        assert_eq!(struct_fields::<Conn>(), ["host", "port"]);
        assert!(struct_fields::<NoConnection>().is_empty());
        let (conn, step): (Conn, Step) =
            split_config(json!({"host": "db", "port": 3307, "table": "t"})).unwrap();
        assert_eq!(
            conn,
            Conn {
                host: "db".into(),
                port: Some(3307)
            }
        );
        assert_eq!(step, Step { table: "t".into() });
        let (_, step): (NoConnection, Step) = split_config(json!({"table": "t"})).unwrap();
        assert_eq!(step.table, "t");
    }

    #[test]
    fn a_bad_connection_field_is_a_config_error_naming_it() {
        let unknown =
            parse_connection::<Conn>(json!({"host": "db", "hostname": "x"}).as_object().unwrap())
                .unwrap_err();
        assert!(matches!(unknown, DriverError::Config { .. }), "{unknown:?}");
        let text = unknown.to_string();
        assert!(
            text.contains("in the connection: unknown field `hostname`, expected `host` or `port`"),
            "{text}"
        );
        let typed =
            parse_connection::<Conn>(json!({"host": "db", "port": "abc"}).as_object().unwrap())
                .unwrap_err();
        assert!(
            matches!(&typed, DriverError::Config { key: Some(k), .. } if k == "port"),
            "{typed:?}"
        );
        let none = parse_connection::<NoConnection>(json!({"base_dir": "x"}).as_object().unwrap())
            .unwrap_err();
        assert!(
            none.to_string().contains("unknown field `base_dir`"),
            "{none}"
        );
    }
}
