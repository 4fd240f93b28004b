//! The SQL/JSON paths of Flink's JSON functions, read as Flink reads them
//! (Calcite's `JsonFunctions` over Jayway JsonPath): an optional mode, `lax`
//! or `strict` (the default, when neither is written), then `$` and steps
//! `.name`, `."name"`, `['name']`, `[n]`, and the wildcards `.*` and `[*]`.
//!
//! What a path finds in a document ([`Found`]):
//! - a definite path (no wildcard) its one value; in strict mode a missing
//!   key, an index out of range, a step into a scalar or a JSON null there
//!   is an error, in lax mode nothing (`Empty`);
//! - a path with a wildcard the array of every value it reaches, as Jayway
//!   returns it (`[*]` and `.*` alike reach an object's members and an
//!   array's elements); in strict mode a step before the first wildcard
//!   that finds nothing is an error, after it the branch is dropped.
//!
//! Text that is not JSON is an error in strict mode, nothing in lax mode.

use std::borrow::Cow;

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// `.name`, `."name"`, `['name']`.
    Key(String),
    /// `[n]`.
    Index(usize),
    /// `.*`: every member of an object.
    AnyKey,
    /// `[*]`: every element of an array.
    AnyIndex,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonPath {
    /// `lax` (else strict).
    pub lax: bool,
    /// The steps after `$`.
    pub steps: Vec<Step>,
}

/// What a path finds in a document.
#[derive(Debug, PartialEq)]
pub(crate) enum Found<'a> {
    /// The value (for a wildcard path, the array of the values reached).
    Value(Cow<'a, Value>),
    /// Nothing, in lax mode.
    Empty,
    /// Nothing, in strict mode: an error.
    Error,
}

impl JsonPath {
    /// Parses `[lax | strict] $.a.b[0]['c'][*].*`; `None` for a path it
    /// does not read.
    pub fn parse(path: &str) -> Option<JsonPath> {
        let mut rest = path.trim();
        let mut lax = false;
        for (mode, is_lax) in [("lax ", true), ("strict ", false)] {
            if rest.len() >= mode.len() && rest[..mode.len()].eq_ignore_ascii_case(mode) {
                rest = rest[mode.len()..].trim_start();
                lax = is_lax;
            }
        }
        let mut rest = rest.strip_prefix('$')?;
        let mut steps = vec![];
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                if let Some(r) = r.strip_prefix('"') {
                    let end = r.find('"')?;
                    steps.push(Step::Key(r[..end].to_string()));
                    rest = &r[end + 1..];
                } else if let Some(r) = r.strip_prefix('*') {
                    steps.push(Step::AnyKey);
                    rest = r;
                } else {
                    let end = r.find(['.', '[']).unwrap_or(r.len());
                    if end == 0 {
                        return None;
                    }
                    steps.push(Step::Key(r[..end].to_string()));
                    rest = &r[end..];
                }
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']')?;
                let inside = r[..end].trim();
                let quoted = inside
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inside.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
                steps.push(match quoted {
                    Some(k) => Step::Key(k.to_string()),
                    None if inside == "*" => Step::AnyIndex,
                    None => Step::Index(inside.parse().ok()?),
                });
                rest = &r[end + 1..];
            } else {
                return None;
            }
        }
        Some(JsonPath { lax, steps })
    }

    fn definite(&self) -> bool {
        !self
            .steps
            .iter()
            .any(|s| matches!(s, Step::AnyKey | Step::AnyIndex))
    }

    /// What the path finds in `doc` (`None`: text that is not JSON, an
    /// error in strict mode and nothing in lax mode); see the module docs.
    pub fn find<'a>(&self, doc: Option<&'a Value>) -> Found<'a> {
        let Some(doc) = doc else {
            return self.nothing();
        };
        if self.definite() {
            let mut v = doc;
            for s in &self.steps {
                let next = match (s, v) {
                    (Step::Key(k), Value::Object(m)) => m.get(k),
                    (Step::Index(i), Value::Array(a)) => a.get(*i),
                    _ => None,
                };
                match next {
                    Some(n) => v = n,
                    None => return self.nothing(),
                }
            }
            return match v {
                Value::Null => self.nothing(),
                v => Found::Value(Cow::Borrowed(v)),
            };
        }
        // As Jayway: before the first wildcard a step that finds nothing is
        // an error in strict mode (but a missing last key is not); after
        // it, such a branch is dropped.
        let mut reached: Vec<&Value> = vec![doc];
        let mut upstream_definite = true;
        let last = self.steps.len().saturating_sub(1);
        for (k, s) in self.steps.iter().enumerate() {
            let mut next = vec![];
            for v in reached {
                let found: Vec<&Value> = match (s, v) {
                    (Step::Key(key), Value::Object(m)) => match m.get(key) {
                        Some(x) => vec![x],
                        None if upstream_definite && k < last && !self.lax => return Found::Error,
                        None => vec![],
                    },
                    (Step::Index(i), Value::Array(a)) => a.get(*i).into_iter().collect(),
                    (Step::AnyKey | Step::AnyIndex, Value::Object(m)) => m.values().collect(),
                    (Step::AnyKey | Step::AnyIndex, Value::Array(a)) => a.iter().collect(),
                    (Step::Key(_) | Step::Index(_), _) if upstream_definite && !self.lax => {
                        return Found::Error
                    }
                    _ => vec![],
                };
                next.extend(found);
            }
            reached = next;
            upstream_definite &= !matches!(s, Step::AnyKey | Step::AnyIndex);
        }
        Found::Value(Cow::Owned(Value::Array(
            reached.into_iter().cloned().collect(),
        )))
    }

    fn nothing<'a>(&self) -> Found<'a> {
        if self.lax {
            Found::Empty
        } else {
            Found::Error
        }
    }
}

/// Whether `v` is a scalar (not an object or array).
pub(crate) fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> JsonPath {
        JsonPath::parse(p).unwrap_or_else(|| panic!("{p} parses"))
    }

    #[test]
    fn paths_parse_in_each_spelling() {
        assert_eq!(
            path("$.a.\"b c\"[2]['d'][*].*").steps,
            vec![
                Step::Key("a".into()),
                Step::Key("b c".into()),
                Step::Index(2),
                Step::Key("d".into()),
                Step::AnyIndex,
                Step::AnyKey,
            ]
        );
        assert!(path("lax $.x").lax);
        assert!(!path("strict $.x").lax);
        assert!(!path("$.x").lax, "strict unless lax is written");
        assert_eq!(path("$").steps, vec![]);
        assert_eq!(JsonPath::parse("a.b"), None);
        assert_eq!(JsonPath::parse("$..a"), None);
    }

    #[test]
    fn strict_paths_fail_where_lax_ones_find_nothing() {
        let doc: Value = serde_json::from_str(r#"{"a": [1, {"b": null}], "c": "x"}"#).unwrap();
        for p in ["$.z", "$.a[5]", "$.c.d", "$.a[1].b"] {
            assert_eq!(path(p).find(Some(&doc)), Found::Error, "{p}");
            assert_eq!(
                path(&format!("lax {p}")).find(Some(&doc)),
                Found::Empty,
                "{p}"
            );
        }
        assert_eq!(path("$.a").find(None), Found::Error, "not JSON");
        assert_eq!(path("lax $.a").find(None), Found::Empty, "not JSON");
        assert_eq!(
            path("$.a[0]").find(Some(&doc)),
            Found::Value(Cow::Owned(Value::from(1)))
        );
    }

    #[test]
    fn wildcards_collect_what_they_reach() {
        let doc: Value = serde_json::from_str(
            r#"{"a": [{"b": 1}, {"b": 2}, {"c": 3}], "o": {"x": 1, "y": [2]}}"#,
        )
        .unwrap();
        let found = |p: &str| match path(p).find(Some(&doc)) {
            Found::Value(v) => v.to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(found("$.a[*].b"), "[1,2]");
        assert_eq!(found("$.o.*"), "[1,[2]]");
        assert_eq!(found("$.a[*].z"), "[]");
        assert_eq!(found("$[*].x"), "[1]", "[*] reaches an object's members");
        assert_eq!(
            found("$.z[*]"),
            "Error",
            "a missing step before the wildcard"
        );
        assert_eq!(found("lax $.z[*]"), "[]");
    }
}
