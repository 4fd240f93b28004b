//! Flink's JSON functions over JSON text, with Flink's defaults (lax paths,
//! NULL ON EMPTY, NULL ON ERROR):
//! - `JSON_VALUE(s, path)`: the scalar at `path` as a STRING (an object, an
//!   array, JSON null, a missing path or text that is not JSON give NULL);
//! - `JSON_QUERY(s, path)`: the object or array at `path` as JSON text (a
//!   scalar gives NULL, as Flink's WITHOUT WRAPPER);
//! - `JSON_EXISTS(s, path)`: whether `path` leads to a value other than JSON
//!   null (FALSE for text that is not JSON);
//! - `s IS JSON [VALUE | OBJECT | ARRAY | SCALAR]` (`is_json(s, kind)`; FALSE
//!   for NULL).
//!
//! A path is `$` followed by `.name`, `."name"`, `['name']` or `[n]` steps.
//! Each value is parsed once per call; the path once per batch.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanBuilder, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses `$.a.b[0]['c']`; `None` for a path it does not read.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.trim();
    // Flink's optional mode prefix.
    for mode in ["lax ", "strict "] {
        if let Some(r) = rest.strip_prefix(mode) {
            rest = r.trim_start();
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
                None => Step::Index(inside.parse().ok()?),
            });
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn walk<'a>(mut v: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    for s in steps {
        v = match (s, v) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Which JSON function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Value,
    Query,
    Exists,
    IsJson,
}

/// One of Flink's JSON functions (see the module documentation).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonFunction {
    kind: Kind,
    signature: Signature,
}

impl JsonFunction {
    fn new(kind: Kind) -> Self {
        let signature = match kind {
            // Two arguments, or seven with RETURNING and the ON EMPTY / ON
            // ERROR behaviours (see `json_syntax`).
            Kind::Value => Signature::user_defined(Volatility::Immutable),
            _ => Signature::any(2, Volatility::Immutable),
        };
        Self { kind, signature }
    }
}

/// JSON_VALUE, JSON_QUERY, JSON_EXISTS and is_json (behind `IS JSON`).
pub fn json_functions() -> Vec<ScalarUDF> {
    [Kind::Value, Kind::Query, Kind::Exists, Kind::IsJson]
        .into_iter()
        .map(|k| ScalarUDF::from(JsonFunction::new(k)))
        .collect()
}

impl ScalarUDFImpl for JsonFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Value => "json_value",
            Kind::Query => "json_query",
            Kind::Exists => "json_exists",
            Kind::IsJson => "is_json",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [a, b] => Ok(vec![a.clone(), b.clone()]),
            [a, b, t, _, _, _, _] => Ok(vec![
                a.clone(),
                b.clone(),
                t.clone(),
                DataType::Utf8,
                t.clone(),
                DataType::Utf8,
                t.clone(),
            ]),
            _ => exec_err!("JSON_VALUE takes a value and a path, then optional RETURNING and ON EMPTY / ON ERROR clauses"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Value if arg_types.len() == 7 => arg_types[2].clone(),
            Kind::Value | Kind::Query => DataType::Utf8,
            Kind::Exists | Kind::IsJson => DataType::Boolean,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let text = cast(&args.args[0].to_array(n)?, &DataType::Utf8)?;
        let second = cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let (text, second) = (text.as_string::<i32>(), second.as_string::<i32>());
        match self.kind {
            Kind::Value if args.args.len() == 7 => {
                let values = self.extract(text, second)?;
                let rest = args.args[2..]
                    .iter()
                    .map(|a| a.to_array(n))
                    .collect::<Result<Vec<_>>>()?;
                json_value_with(text, second, &values, &rest)
            }
            Kind::Value | Kind::Query => {
                Ok(ColumnarValue::Array(Arc::new(self.extract(text, second)?)))
            }
            Kind::Exists | Kind::IsJson => {
                let mut b = BooleanBuilder::with_capacity(n);
                let mut path: Option<(String, Option<Vec<Step>>)> = None;
                for i in 0..n {
                    if text.is_null(i) || second.is_null(i) {
                        // Flink: NULL IS JSON is false, JSON_EXISTS of NULL is NULL.
                        if self.kind == Kind::IsJson {
                            b.append_value(false);
                        } else {
                            b.append_null();
                        }
                        continue;
                    }
                    let parsed = serde_json::from_str::<Value>(text.value(i)).ok();
                    let answer = if self.kind == Kind::IsJson {
                        match (second.value(i).to_ascii_uppercase().as_str(), &parsed) {
                            (_, None) => false,
                            ("OBJECT", Some(v)) => v.is_object(),
                            ("ARRAY", Some(v)) => v.is_array(),
                            ("SCALAR", Some(v)) => !v.is_object() && !v.is_array(),
                            ("VALUE", Some(_)) => true,
                            (other, _) => {
                                return exec_err!(
                                    "IS JSON {other}: expected VALUE, OBJECT, ARRAY or SCALAR"
                                )
                            }
                        }
                    } else {
                        let p = second.value(i);
                        if path.as_ref().is_none_or(|(q, _)| q != p) {
                            path = Some((p.to_string(), parse_path(p)));
                        }
                        let steps = path.as_ref().and_then(|(_, s)| s.as_ref());
                        // A JSON null at the path does not count (as in Flink).
                        match (parsed.as_ref(), steps) {
                            (Some(v), Some(s)) => walk(v, s).is_some_and(|v| !v.is_null()),
                            _ => false,
                        }
                    };
                    b.append_value(answer);
                }
                Ok(ColumnarValue::Array(Arc::new(b.finish())))
            }
        }
    }
}

/// JSON_VALUE with RETURNING and behaviours: `rest` is the typed NULL, the
/// ON EMPTY mode and default, the ON ERROR mode and default. As Flink 2.3
/// runs it, anything but a scalar at the path (a missing path, JSON null,
/// an object or array, text that is not JSON) takes the ON ERROR
/// behaviour, and so does (beyond Flink, which fails the job there) a
/// scalar that does not convert to the returned type. A NULL input gives
/// NULL.
fn json_value_with(
    text: &StringArray,
    paths: &StringArray,
    values: &StringArray,
    rest: &[datafusion::arrow::array::ArrayRef],
) -> Result<ColumnarValue> {
    use datafusion::arrow::array::BooleanArray;
    use datafusion::arrow::compute::kernels::zip::zip;
    let [typed_null, _empty_mode, _empty_default, error_mode, error_default] = rest else {
        return exec_err!("JSON_VALUE: wrong number of arguments");
    };
    let target = typed_null.data_type();
    let converted = cast(values, target)?;
    let errors: BooleanArray = (0..text.len())
        .map(|i| {
            let input = text.is_valid(i) && paths.is_valid(i);
            Some(input && (values.is_null(i) || converted.is_null(i)))
        })
        .collect();
    if errors.true_count() > 0 {
        let mode = cast(error_mode, &DataType::Utf8)?;
        let mode = mode.as_string::<i32>();
        if mode.is_valid(0) && mode.value(0).eq_ignore_ascii_case("ERROR") {
            let i = errors.values().set_indices().next().unwrap_or(0);
            return exec_err!(
                "JSON_VALUE: no {target} at path '{}' of '{}' (ERROR ON ERROR)",
                paths.value(i),
                text.value(i)
            );
        }
    }
    Ok(ColumnarValue::Array(zip(
        &errors,
        error_default,
        &converted,
    )?))
}

impl JsonFunction {
    /// JSON_VALUE's or JSON_QUERY's strings.
    fn extract(&self, text: &StringArray, paths: &StringArray) -> Result<StringArray> {
        let mut b = StringBuilder::with_capacity(text.len(), 0);
        let mut path: Option<(String, Option<Vec<Step>>)> = None;
        for i in 0..text.len() {
            if text.is_null(i) || paths.is_null(i) {
                b.append_null();
                continue;
            }
            let p = paths.value(i);
            if path.as_ref().is_none_or(|(q, _)| q != p) {
                path = Some((p.to_string(), parse_path(p)));
            }
            let Some(steps) = path.as_ref().and_then(|(_, s)| s.as_ref()) else {
                b.append_null();
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(text.value(i)) else {
                b.append_null();
                continue;
            };
            match (self.kind, walk(&v, steps)) {
                (Kind::Value, Some(Value::String(s))) => b.append_value(s),
                (Kind::Value, Some(v @ (Value::Number(_) | Value::Bool(_)))) => {
                    b.append_value(v.to_string())
                }
                (Kind::Query, Some(v @ (Value::Object(_) | Value::Array(_)))) => {
                    b.append_value(v.to_string())
                }
                _ => b.append_null(),
            }
        }
        Ok(b.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_in_each_spelling() {
        assert_eq!(
            parse_path("$.a.\"b c\"[2]['d']"),
            Some(vec![
                Step::Key("a".into()),
                Step::Key("b c".into()),
                Step::Index(2),
                Step::Key("d".into())
            ])
        );
        assert_eq!(parse_path("lax $.x"), Some(vec![Step::Key("x".into())]));
        assert_eq!(parse_path("$"), Some(vec![]));
        assert_eq!(parse_path("a.b"), None);
        assert_eq!(parse_path("$..a"), None);
    }
}
