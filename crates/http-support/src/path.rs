//! Dot paths into JSON documents (`data.users.edges[*].node`): where an API's records and page
//! information live in a response.

use driver_api::{DriverError, Result};
use serde_json::Value;

/// A parsed dot path. Segments are object keys; `[*]` after a key, or a `*` segment, takes every
/// element of a list and continues the path in each. A leading `$.` is ignored; `$` or an empty
/// path is the whole document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Each,
}

impl JsonPath {
    /// Parses `path`; `key` names the config key for errors.
    pub fn parse(key: &str, path: &str) -> Result<Self> {
        let trimmed = path.trim();
        let body = trimmed
            .strip_prefix("$.")
            .or_else(|| (trimmed == "$").then_some(""))
            .unwrap_or(trimmed);
        let mut segments = Vec::new();
        if !body.is_empty() {
            for part in body.split('.') {
                let (name, each) = match part.strip_suffix("[*]") {
                    Some(name) => (name, true),
                    None => (part, false),
                };
                if name.is_empty() && !each {
                    return Err(DriverError::config(
                        key,
                        format!(
                            "{path:?} has an empty segment (write keys separated by single dots)"
                        ),
                    ));
                }
                if name.contains(['[', ']']) {
                    return Err(DriverError::config(
                        key,
                        format!("{path:?}: only `[*]` is supported after a key, not {part:?}"),
                    ));
                }
                match name {
                    "*" => segments.push(Segment::Each),
                    "" => {}
                    _ => segments.push(Segment::Key(name.to_owned())),
                }
                if each {
                    segments.push(Segment::Each);
                }
            }
        }
        Ok(Self {
            text: body.to_owned(),
            segments,
        })
    }

    /// Whether the path has a wildcard (and so may match many values).
    pub fn has_wildcard(&self) -> bool {
        self.segments.contains(&Segment::Each)
    }

    /// The path as written (without `$.`), `$` for the whole document.
    pub fn as_str(&self) -> &str {
        if self.text.is_empty() {
            "$"
        } else {
            &self.text
        }
    }

    /// Takes the value at this path out of `doc` (leaving `null`), without copying it. A
    /// wildcard gives the list of the values it reached. A key that does not exist (or a
    /// step into something that is not an object or list) is a [`DriverError::Data`] naming
    /// the part of the path that was found; a `null` on the way gives `null`.
    pub fn take(&self, doc: &mut Value) -> Result<Value> {
        let mut out = Vec::new();
        let multi = self.has_wildcard();
        take_into(doc, &self.segments, 0, self, &mut out)?;
        Ok(if multi {
            Value::Array(out)
        } else {
            out.pop().unwrap_or(Value::Null)
        })
    }

    /// The value at this path (no wildcards), or `None` when a key is missing.
    pub fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        let mut current = doc;
        for segment in &self.segments {
            current = match segment {
                Segment::Key(k) => current.get(k)?,
                Segment::Each => return None,
            };
        }
        Some(current)
    }

    fn found_until(&self, depth: usize) -> String {
        let found = self.segments[..depth]
            .iter()
            .map(|s| match s {
                Segment::Key(k) => k.as_str(),
                Segment::Each => "*",
            })
            .collect::<Vec<_>>()
            .join(".");
        if found.is_empty() { "$".into() } else { found }
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn take_into(
    value: &mut Value,
    segments: &[Segment],
    depth: usize,
    path: &JsonPath,
    out: &mut Vec<Value>,
) -> Result<()> {
    let Some(segment) = segments.get(depth) else {
        out.push(value.take());
        return Ok(());
    };
    match (segment, value) {
        (_, Value::Null) => {
            if depth + 1 == segments.len() || !path.has_wildcard() {
                out.push(Value::Null);
            }
            Ok(())
        }
        (Segment::Key(key), Value::Object(map)) => match map.get_mut(key) {
            Some(child) => take_into(child, segments, depth + 1, path, out),
            None => Err(DriverError::data(format!(
                "path {}: key {key:?} not found after {} (keys there: {})",
                path,
                path.found_until(depth),
                preview_keys(map)
            ))),
        },
        (Segment::Each, Value::Array(items)) => {
            for item in items {
                take_into(item, segments, depth + 1, path, out)?;
            }
            Ok(())
        }
        (segment, other) => Err(DriverError::data(format!(
            "path {}: {} is {}, so {} cannot be applied",
            path,
            path.found_until(depth),
            kind_name(other),
            match segment {
                Segment::Key(k) => format!("key {k:?}"),
                Segment::Each => "[*]".into(),
            }
        ))),
    }
}

fn preview_keys(map: &serde_json::Map<String, Value>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    let mut keys: Vec<&str> = map.keys().map(String::as_str).take(10).collect();
    if map.len() > 10 {
        keys.push("...");
    }
    keys.join(", ")
}

/// `an object`, `a list`, ... for messages.
pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_nested_values_and_wildcards() {
        let mut doc =
            json!({"data": {"users": {"edges": [{"node": {"id": 1}}, {"node": {"id": 2}}]}}});
        let path = JsonPath::parse("data_path", "$.data.users.edges[*].node").unwrap();
        assert_eq!(path.take(&mut doc).unwrap(), json!([{"id": 1}, {"id": 2}]));
        let mut doc = json!({"data": {"xs": [1, 2]}});
        assert_eq!(
            JsonPath::parse("k", "data.xs")
                .unwrap()
                .take(&mut doc)
                .unwrap(),
            json!([1, 2])
        );
        let mut doc = json!({"a": 1});
        assert_eq!(
            JsonPath::parse("k", "$").unwrap().take(&mut doc).unwrap(),
            json!({"a": 1})
        );
        let mut doc = json!({"a": [{"b": [1]}, {"b": [2, 3]}]});
        assert_eq!(
            JsonPath::parse("k", "a.*.b.*")
                .unwrap()
                .take(&mut doc)
                .unwrap(),
            json!([1, 2, 3])
        );
    }

    #[test]
    fn missing_key_names_what_was_found() {
        let mut doc = json!({"data": {"user": null, "orders": {}}});
        let err = JsonPath::parse("k", "data.users")
            .unwrap()
            .take(&mut doc)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "path data.users: key \"users\" not found after data (keys there: user, orders)"
        );
        assert_eq!(
            JsonPath::parse("k", "data.user.x")
                .unwrap()
                .take(&mut doc)
                .unwrap(),
            Value::Null
        );
        let err = JsonPath::parse("k", "data..x").unwrap_err();
        assert!(err.to_string().contains("empty segment"), "{err}");
    }

    #[test]
    fn get_reads_without_taking() {
        let doc = json!({"data": {"pageInfo": {"hasNextPage": true}}});
        let path = JsonPath::parse("pagination_path", "data.pageInfo").unwrap();
        assert_eq!(path.get(&doc), Some(&json!({"hasNextPage": true})));
        assert_eq!(JsonPath::parse("k", "data.nope").unwrap().get(&doc), None);
    }
}

/// Reads only the values at `paths` (no wildcards) from a JSON document, skipping everything
/// else without building it: several times cheaper than parsing the whole body, for the fetch
/// loop that needs only `errors` and the page info before asking for the next page. Returns
/// `None` when the document is not a JSON object; otherwise the value at each path (`None`
/// where a path does not exist).
pub fn pick(body: &[u8], paths: &[&JsonPath]) -> Result<Option<Vec<Option<Value>>>> {
    use serde::de::DeserializeSeed;
    let mut root = PickNode::default();
    for (index, path) in paths.iter().enumerate() {
        let mut node = &mut root;
        for segment in &path.segments {
            let Segment::Key(key) = segment else {
                return Err(DriverError::internal("pick paths cannot have wildcards"));
            };
            let position = match node.children.iter().position(|(k, _)| k == key) {
                Some(p) => p,
                None => {
                    node.children.push((key.clone(), PickNode::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[position].1;
        }
        node.captures.push(index);
    }
    let mut out = vec![None; paths.len()];
    let mut de = serde_json::Deserializer::from_slice(body);
    let is_object = PickSeed {
        node: &root,
        out: &mut out,
    }
    .deserialize(&mut de)
    .and_then(|is_object| de.end().map(|()| is_object))
    .map_err(|e| DriverError::Remote {
        message: format!("the response is not valid JSON: {e}"),
    })?;
    Ok(is_object.then_some(out))
}

#[derive(Debug, Default)]
struct PickNode {
    children: Vec<(String, PickNode)>,
    /// Paths (by index) that end here.
    captures: Vec<usize>,
}

struct PickSeed<'a> {
    node: &'a PickNode,
    out: &'a mut Vec<Option<Value>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for PickSeed<'_> {
    /// Whether the value was an object.
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PickSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.node.children.iter().find(|(k, _)| k == key.as_ref()) {
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Some((_, child)) if child.captures.is_empty() => {
                    map.next_value_seed(PickSeed {
                        node: child,
                        out: &mut *self.out,
                    })?;
                }
                Some((_, child)) => {
                    // A wanted value: keep it whole (paths below it read from it).
                    let value: Value = map.next_value()?;
                    for &index in &child.captures {
                        self.out[index] = Some(value.clone());
                    }
                    capture_below(child, &value, self.out);
                }
            }
        }
        Ok(true)
    }
}

fn capture_below(node: &PickNode, value: &Value, out: &mut [Option<Value>]) {
    for (key, child) in &node.children {
        if let Some(inner) = value.get(key) {
            for &index in &child.captures {
                out[index] = Some(inner.clone());
            }
            capture_below(child, inner, out);
        }
    }
}

#[cfg(test)]
mod pick_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_only_the_wanted_values() {
        let body = br#"{"data": {"users": {"nodes": [{"id": 1}, {"id": "x\"y"}], "pageInfo": {"hasNextPage": true, "endCursor": "c9"}}}, "extensions": [1, null]}"#;
        let errors = JsonPath::parse("k", "errors").unwrap();
        let info = JsonPath::parse("k", "data.users.pageInfo").unwrap();
        let cursor = JsonPath::parse("k", "data.users.pageInfo.endCursor").unwrap();
        let picked = pick(body, &[&errors, &info, &cursor]).unwrap().unwrap();
        assert_eq!(
            picked,
            [
                None,
                Some(json!({"hasNextPage": true, "endCursor": "c9"})),
                Some(json!("c9"))
            ]
        );
        assert_eq!(pick(b"[1, 2]", &[&errors]).unwrap(), None);
        assert!(pick(b"{\"a\": ", &[&errors]).is_err());
        assert!(pick(b"{} trailing", &[&errors]).is_err());
    }
}

/// The records a value found at a records path stands for: a list gives its elements, `null`
/// none, anything else one record.
pub fn into_records(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        single => vec![single],
    }
}
