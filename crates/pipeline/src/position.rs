//! Where a step's config value sits in the pipeline file, so that an error inside a multi-line
//! value (a SQL query) can name the file's line, not only the value's.
//!
//! serde_yaml does not keep positions, so this reads the file's lines for the block style that
//! pipelines use (`steps:` as a block sequence, `config:` a block mapping); any other layout
//! gives `None` and messages then count lines of the value alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a scalar value is written, which decides how its lines map to the file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalarStyle {
    /// `key: |` (literal block): line `n` of the value is line `start + n - 1` of the file.
    Literal,
    /// On the key's own line (plain or quoted): a one-line value is on line `start`.
    Inline,
    /// Folded (`>`) or a plain/quoted scalar continued over several lines: the value's lines
    /// do not map one to one.
    Folded,
}

/// The first line (1-based) of a config value in the file, and its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValuePosition {
    /// The file line of the value's first line.
    pub line: usize,
    /// How the value is written.
    pub style: ScalarStyle,
}

impl ValuePosition {
    /// The file line of line `n` (1-based) of the value, when it can be known.
    pub fn file_line(&self, n: usize) -> Option<usize> {
        match (self.style, n) {
            (ScalarStyle::Literal, n) if n >= 1 => Some(self.line + n - 1),
            (ScalarStyle::Inline, 1) => Some(self.line),
            _ => None,
        }
    }
}

/// Where a step's multi-line config values are in the pipeline file: the file's name (as the
/// user gave it) and the position of each located key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLines {
    /// The pipeline file, as named on the command line.
    pub file: String,
    /// Config key -> where its value starts.
    pub values: BTreeMap<String, ValuePosition>,
}

impl SourceLines {
    /// Locates `keys` of the step at `index` in `text` (the file `file`); `None` when none is
    /// found.
    pub fn locate(file: &str, text: &str, index: usize, keys: &[&str]) -> Option<Self> {
        let values: BTreeMap<String, ValuePosition> = keys
            .iter()
            .filter_map(|key| Some((key.to_string(), config_value_position(text, index, key)?)))
            .collect();
        (!values.is_empty()).then(|| Self {
            file: file.to_owned(),
            values,
        })
    }

    /// Rewrites DuckDB's `LINE <n>:` markers in `message`, which count lines of the value of
    /// `key`, to also name the file's line: `LINE <n> (<file> line <m>):`.
    pub fn annotate(&self, key: &str, message: &str) -> String {
        let Some(position) = self.values.get(key) else {
            return message.to_owned();
        };
        let mut out = String::with_capacity(message.len() + 32);
        let mut rest = message;
        while let Some(at) = rest.find("LINE ") {
            out.push_str(&rest[..at + 5]);
            rest = &rest[at + 5..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let line = rest[..digits].parse::<usize>().ok();
            match line.and_then(|n| position.file_line(n)) {
                Some(file_line) if rest[digits..].starts_with(':') => {
                    out.push_str(&format!(
                        "{} ({} line {file_line})",
                        &rest[..digits],
                        self.file
                    ));
                    rest = &rest[digits..];
                }
                _ => {}
            }
        }
        out.push_str(rest);
        out
    }
}

/// Finds `config.<key>` of the step at `index` (0-based, in file order) in `text`.
pub fn config_value_position(text: &str, index: usize, key: &str) -> Option<ValuePosition> {
    let lines: Vec<&str> = text.lines().collect();
    let steps = lines.iter().position(|l| {
        l.trim_end() == "steps:" || l.starts_with("steps:") && is_comment_or_empty(&l[6..])
    })?;
    // The step items: lines `- ...` at the sequence's indentation.
    let mut items = Vec::new();
    let mut seq_indent = None;
    for (i, line) in lines.iter().enumerate().skip(steps + 1) {
        if is_comment_or_empty(line) {
            continue;
        }
        let indent = indent_of(line);
        let rest = &line[indent..];
        match seq_indent {
            None if rest.starts_with('-') => seq_indent = Some(indent),
            None => return None,
            Some(seq) if indent < seq => break,
            Some(seq) if indent == seq && !rest.starts_with('-') => break,
            _ => {}
        }
        if Some(indent) == seq_indent && (rest == "-" || rest.starts_with("- ")) {
            items.push(i);
        }
    }
    let seq = seq_indent?;
    let start = *items.get(index)?;
    let end = items.get(index + 1).copied().unwrap_or_else(|| {
        lines
            .iter()
            .enumerate()
            .skip(start + 1)
            .find(|(_, l)| {
                !is_comment_or_empty(l)
                    && indent_of(l) <= seq
                    && !l[indent_of(l)..].starts_with('-')
            })
            .map_or(lines.len(), |(i, _)| i)
    });
    // `config:` at the item's content indentation.
    let item_indent = seq + 2;
    let (config_line, config_rest) = (start..end).find_map(|i| {
        let line = if i == start {
            format!("{}{}", " ".repeat(seq + 1), &lines[i][seq + 1..])
        } else {
            lines[i].to_owned()
        };
        let indent = indent_of(&line);
        let rest = line[indent..].to_owned();
        (indent == item_indent && rest.starts_with("config:"))
            .then(|| (i, rest["config:".len()..].trim().to_owned()))
    })?;
    if config_rest.starts_with('{') {
        // Flow mapping on one line: the value is on that line if the key is.
        return config_rest
            .contains(&format!("{key}:"))
            .then_some(ValuePosition {
                line: config_line + 1,
                style: ScalarStyle::Inline,
            });
    }
    let mut child_indent = None;
    for i in config_line + 1..end {
        let line = lines[i];
        if is_comment_or_empty(line) {
            continue;
        }
        let indent = indent_of(line);
        if indent <= item_indent {
            break;
        }
        let child = *child_indent.get_or_insert(indent);
        if indent != child {
            continue;
        }
        let rest = &line[indent..];
        let Some(value) = rest
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .or_else(|| quoted_key(rest, key))
        else {
            continue;
        };
        let value = value.trim();
        let style = if value.starts_with('|') {
            ScalarStyle::Literal
        } else if value.starts_with('>') || value.is_empty() {
            ScalarStyle::Folded
        } else {
            // A scalar starting on the key's line: one line unless the next line continues it.
            let continued = lines
                .get(i + 1)
                .is_some_and(|next| !is_comment_or_empty(next) && indent_of(next) > indent);
            if continued {
                ScalarStyle::Folded
            } else {
                ScalarStyle::Inline
            }
        };
        let line = match style {
            ScalarStyle::Literal => {
                // The first content line after the header (blank lines count: a literal block
                // keeps them).
                i + 2
            }
            ScalarStyle::Inline | ScalarStyle::Folded => i + 1,
        };
        return Some(ValuePosition { line, style });
    }
    None
}

fn quoted_key<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    ['"', '\''].iter().find_map(|q| {
        rest.strip_prefix(*q)?
            .strip_prefix(key)?
            .strip_prefix(*q)?
            .strip_prefix(':')
    })
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_comment_or_empty(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = r#"oml_version: "0.1.0"
name: p
steps:
# Step 1
- id: extract-movies
  component: mysql.extractor
  mode: read
  config:
    connection: "@mysql.db"
    query: |
      SELECT
        m.id
      FROM movies m

- id: stats
  component: duckdb.processor
  needs: [ "extract-movies" ]
  config:
    # the aggregate
    query: |-
      SELECT director_id,
             count(*) AS n
      FROM input_df
      GROUP BY 1
- id: inline
  component: duckdb.processor
  config: {query: "SELECT 1"}
- id: plain
  component: duckdb.processor
  config:
    query: SELECT 2 AS x
- id: folded
  component: duckdb.processor
  config:
    query: >
      SELECT 3
"#;

    #[test]
    fn literal_blocks_map_value_lines_to_file_lines() {
        let p = config_value_position(PIPELINE, 1, "query").unwrap();
        assert_eq!(
            p,
            ValuePosition {
                line: 21,
                style: ScalarStyle::Literal
            }
        );
        assert_eq!(
            PIPELINE
                .lines()
                .nth(p.file_line(3).unwrap() - 1)
                .unwrap()
                .trim(),
            "FROM input_df"
        );
        let p = config_value_position(PIPELINE, 0, "query").unwrap();
        assert_eq!(
            PIPELINE
                .lines()
                .nth(p.file_line(1).unwrap() - 1)
                .unwrap()
                .trim(),
            "SELECT"
        );
    }

    #[test]
    fn one_line_values_and_other_styles() {
        assert_eq!(
            config_value_position(PIPELINE, 2, "query"),
            Some(ValuePosition {
                line: 27,
                style: ScalarStyle::Inline
            })
        );
        assert_eq!(
            config_value_position(PIPELINE, 3, "query"),
            Some(ValuePosition {
                line: 31,
                style: ScalarStyle::Inline
            })
        );
        let folded = config_value_position(PIPELINE, 4, "query").unwrap();
        assert_eq!(folded.style, ScalarStyle::Folded);
        assert_eq!(folded.file_line(1), None);
        assert_eq!(config_value_position(PIPELINE, 5, "query"), None);
        assert_eq!(config_value_position(PIPELINE, 0, "missing"), None);
        assert_eq!(config_value_position("steps: []\n", 0, "query"), None);
    }

    #[test]
    fn messages_name_the_file_line() {
        let lines = SourceLines::locate("p.yaml", PIPELINE, 1, &["query"]).unwrap();
        assert_eq!(
            lines.annotate("query", "Binder Error: x\n\nLINE 3: FROM input_df\n  ^"),
            "Binder Error: x\n\nLINE 3 (p.yaml line 23): FROM input_df\n  ^"
        );
        assert_eq!(lines.annotate("other", "LINE 3: x"), "LINE 3: x");
        let folded = SourceLines::locate("p.yaml", PIPELINE, 4, &["query"]).unwrap();
        assert_eq!(folded.annotate("query", "LINE 1: x"), "LINE 1: x");
    }

    #[test]
    fn indented_sequences_work_too() {
        let text = "name: x\nsteps:\n  - id: a\n    config:\n      query: |\n        SELECT 1\n        FROM t\n";
        let p = config_value_position(text, 0, "query").unwrap();
        assert_eq!(
            p,
            ValuePosition {
                line: 6,
                style: ScalarStyle::Literal
            }
        );
    }
}
