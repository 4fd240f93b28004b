//! Flink's JSON functions over JSON text, as Flink 2.3 runs them (Calcite's
//! `JsonFunctions`; paths: see `json_path`, strict unless `lax` is
//! written):
//! - `JSON_VALUE(s, path)`: the scalar at `path` as a STRING; nothing there
//!   (lax) or an object or array (lax) takes the ON EMPTY behaviour, an
//!   error (strict: a missing path, JSON null, an object or array; text
//!   that is not JSON) the ON ERROR one, both NULL by default; with
//!   `RETURNING` and behaviours it is `json_value(s, path, typed NULL,
//!   empty mode, default, error mode, default)` (see `json_syntax`);
//! - `JSON_QUERY(s, path)`: the object or array at `path` as JSON text,
//!   `json_query(s, path, wrapper, on empty, on error)` with a wrapper
//!   (`WITHOUT`, `CONDITIONAL`, `UNCONDITIONAL`) and behaviours (`NULL`,
//!   `EMPTY ARRAY`, `EMPTY OBJECT`, `ERROR`); a scalar is empty in lax mode
//!   and an error in strict mode;
//! - `JSON_EXISTS(s, path)`: whether `path` leads to a value other than JSON
//!   null; an error (strict) is FALSE, or `json_exists(s, path, on error)`
//!   with `TRUE`, `FALSE`, `UNKNOWN` or `ERROR`;
//! - `s IS JSON [VALUE | OBJECT | ARRAY | SCALAR]` (`is_json(s, kind)`; FALSE
//!   for NULL).
//!
//! Each value is parsed once per call; the path once per batch.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanBuilder, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

use super::json_path::{is_scalar, Found, JsonPath};

/// Which JSON function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Value,
    Query,
    /// JSON_QUERY ... RETURNING ARRAY<STRING>.
    QueryArray,
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
            // Two arguments, or more with the clauses `json_syntax` reads.
            Kind::Value | Kind::Query | Kind::QueryArray | Kind::Exists => {
                Signature::user_defined(Volatility::Immutable)
            }
            Kind::IsJson => Signature::any(2, Volatility::Immutable),
        };
        Self { kind, signature }
    }
}

/// JSON_VALUE, JSON_QUERY, JSON_EXISTS and is_json (behind `IS JSON`).
pub fn json_functions() -> Vec<ScalarUDF> {
    [
        Kind::Value,
        Kind::Query,
        Kind::QueryArray,
        Kind::Exists,
        Kind::IsJson,
    ]
    .into_iter()
    .map(|k| ScalarUDF::from(JsonFunction::new(k)))
    .collect()
}

/// What a path gives one row: a value, nothing (ON EMPTY) or an error (ON
/// ERROR); `Null` for a NULL input.
enum Outcome {
    Null,
    Value(String),
    Empty,
    Error,
}

impl ScalarUDFImpl for JsonFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Value => "json_value",
            Kind::Query => "json_query",
            Kind::QueryArray => "json_query_array",
            Kind::Exists => "json_exists",
            Kind::IsJson => "is_json",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = |n: usize| vec![DataType::Utf8; n];
        match (self.kind, arg_types) {
            (_, [a, b]) => Ok(vec![a.clone(), b.clone()]),
            (Kind::Value, [a, b, t, _, _, _, _]) => Ok(vec![
                a.clone(),
                b.clone(),
                t.clone(),
                DataType::Utf8,
                t.clone(),
                DataType::Utf8,
                t.clone(),
            ]),
            (Kind::Query | Kind::QueryArray, [_, _, _, _, _]) => Ok(text(5)),
            (Kind::Exists, [_, _, _]) => Ok(text(3)),
            _ => exec_err!(
                "{} takes a value and a path, then its optional clauses",
                self.name().to_uppercase()
            ),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Value if arg_types.len() == 7 => arg_types[2].clone(),
            Kind::Value | Kind::Query => DataType::Utf8,
            Kind::QueryArray => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
            }
            Kind::Exists | Kind::IsJson => DataType::Boolean,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let text = cast(&args.args[0].to_array(n)?, &DataType::Utf8)?;
        let second = cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let (text, second) = (text.as_string::<i32>(), second.as_string::<i32>());
        let rest = args.args[2..]
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<Vec<_>>>()?;
        match self.kind {
            Kind::Value => {
                let outcomes = outcomes(text, second, json_value_of);
                json_value_with(text, second, &outcomes, &rest)
            }
            Kind::Query => json_query_with(text, second, &rest),
            Kind::QueryArray => {
                let ColumnarValue::Array(texts) = json_query_with(text, second, &rest)? else {
                    return exec_err!("JSON_QUERY: no result");
                };
                Ok(ColumnarValue::Array(Arc::new(as_string_arrays(
                    texts.as_string::<i32>(),
                ))))
            }
            Kind::Exists => json_exists_with(text, second, &rest),
            Kind::IsJson => {
                let mut b = BooleanBuilder::with_capacity(n);
                for i in 0..n {
                    // Flink: NULL IS JSON is false.
                    if text.is_null(i) || second.is_null(i) {
                        b.append_value(false);
                        continue;
                    }
                    let parsed = serde_json::from_str::<Value>(text.value(i)).ok();
                    let answer = match (second.value(i).to_ascii_uppercase().as_str(), &parsed) {
                        (_, None) => false,
                        ("OBJECT", Some(v)) => v.is_object(),
                        ("ARRAY", Some(v)) => v.is_array(),
                        ("SCALAR", Some(v)) => is_scalar(v),
                        ("VALUE", Some(_)) => true,
                        (other, _) => {
                            return exec_err!(
                                "IS JSON {other}: expected VALUE, OBJECT, ARRAY or SCALAR"
                            )
                        }
                    };
                    b.append_value(answer);
                }
                Ok(ColumnarValue::Array(Arc::new(b.finish())))
            }
        }
    }
}

/// What `path` finds in each row's `text`, through `of` (the path parsed
/// once for each run of rows with the same path).
fn outcomes(
    text: &StringArray,
    paths: &StringArray,
    of: impl Fn(&JsonPath, Found<'_>) -> Outcome,
) -> Vec<Outcome> {
    let mut path: Option<(String, Option<JsonPath>)> = None;
    (0..text.len())
        .map(|i| {
            if text.is_null(i) || paths.is_null(i) {
                return Outcome::Null;
            }
            let p = paths.value(i);
            if path.as_ref().is_none_or(|(q, _)| q != p) {
                path = Some((p.to_string(), JsonPath::parse(p)));
            }
            let Some(parsed) = path.as_ref().and_then(|(_, s)| s.as_ref()) else {
                return Outcome::Error;
            };
            let doc = serde_json::from_str::<Value>(text.value(i)).ok();
            of(parsed, parsed.find(doc.as_ref()))
        })
        .collect()
}

/// JSON_VALUE's outcome: a scalar's text; an object or array is empty in lax
/// mode, an error in strict mode.
fn json_value_of(path: &JsonPath, found: Found<'_>) -> Outcome {
    match found {
        Found::Error => Outcome::Error,
        Found::Empty => Outcome::Empty,
        Found::Value(v) => match v.as_ref() {
            Value::String(s) => Outcome::Value(s.clone()),
            v @ (Value::Number(_) | Value::Bool(_)) => Outcome::Value(v.to_string()),
            _ if path.lax => Outcome::Empty,
            _ => Outcome::Error,
        },
    }
}

/// JSON_VALUE with its behaviours: `rest` is the typed NULL, the ON EMPTY
/// mode and default, the ON ERROR mode and default (none: NULL for both). A
/// scalar that does not convert to the returned type takes the ON ERROR
/// behaviour (beyond Flink, which fails the job there).
fn json_value_with(
    text: &StringArray,
    paths: &StringArray,
    outcomes: &[Outcome],
    rest: &[datafusion::arrow::array::ArrayRef],
) -> Result<ColumnarValue> {
    use datafusion::arrow::array::{new_null_array, BooleanArray};
    use datafusion::arrow::compute::kernels::zip::zip;
    let values: StringArray = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Value(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let [typed_null, empty_mode, empty_default, error_mode, error_default] = rest else {
        return Ok(ColumnarValue::Array(Arc::new(values)));
    };
    let target = typed_null.data_type();
    let converted = cast(&values, target)?;
    let failed = |i: usize| {
        matches!(outcomes[i], Outcome::Error)
            || (matches!(outcomes[i], Outcome::Value(_)) && converted.is_null(i))
    };
    let errors: BooleanArray = (0..text.len()).map(|i| Some(failed(i))).collect();
    let empties: BooleanArray = outcomes
        .iter()
        .map(|o| Some(matches!(o, Outcome::Empty)))
        .collect();
    for (mask, mode, what) in [
        (&empties, empty_mode, "ON EMPTY"),
        (&errors, error_mode, "ON ERROR"),
    ] {
        if let Some(i) = mask.values().set_indices().next() {
            if mode_is(mode, "ERROR")? {
                return exec_err!(
                    "JSON_VALUE: no {target} at path '{}' of '{}' (ERROR {what})",
                    paths.value(i),
                    text.value(i)
                );
            }
        }
    }
    let null = new_null_array(target, text.len());
    let default_of = |mode: &datafusion::arrow::array::ArrayRef,
                      default: &datafusion::arrow::array::ArrayRef| {
        Ok::<_, datafusion::error::DataFusionError>(if mode_is(mode, "DEFAULT")? {
            default.clone()
        } else {
            null.clone()
        })
    };
    let with_errors = zip(&errors, &default_of(error_mode, error_default)?, &converted)?;
    Ok(ColumnarValue::Array(zip(
        &empties,
        &default_of(empty_mode, empty_default)?,
        &with_errors,
    )?))
}

/// Whether a behaviour's mode argument (a constant) is `mode`.
fn mode_is(arg: &datafusion::arrow::array::ArrayRef, mode: &str) -> Result<bool> {
    let m = cast(arg, &DataType::Utf8)?;
    let m = m.as_string::<i32>();
    Ok(m.len() > 0 && m.is_valid(0) && m.value(0).eq_ignore_ascii_case(mode))
}

/// The text of a behaviour's mode argument (a constant), upper case.
fn mode_of(arg: Option<&datafusion::arrow::array::ArrayRef>, default: &str) -> Result<String> {
    let Some(arg) = arg else {
        return Ok(default.to_string());
    };
    let m = cast(arg, &DataType::Utf8)?;
    let m = m.as_string::<i32>();
    Ok(if m.len() > 0 && m.is_valid(0) {
        m.value(0).to_ascii_uppercase()
    } else {
        default.to_string()
    })
}

/// JSON_QUERY with its wrapper and behaviours (`rest`: none, or wrapper, ON
/// EMPTY, ON ERROR), as Calcite's `jsonQuery`.
fn json_query_with(
    text: &StringArray,
    paths: &StringArray,
    rest: &[datafusion::arrow::array::ArrayRef],
) -> Result<ColumnarValue> {
    let wrapper = mode_of(rest.first(), "WITHOUT")?;
    let on_empty = mode_of(rest.get(1), "NULL")?;
    let on_error = mode_of(rest.get(2), "NULL")?;
    let outcomes = outcomes(text, paths, |path, found| {
        let value = match found {
            Found::Error => return Outcome::Error,
            Found::Empty => None,
            Found::Value(v) => Some(match wrapper.as_str() {
                "UNCONDITIONAL" => Value::Array(vec![v.into_owned()]),
                "CONDITIONAL" if !v.is_array() => Value::Array(vec![v.into_owned()]),
                _ => v.into_owned(),
            }),
        };
        match value {
            None => Outcome::Empty,
            Some(v) if is_scalar(&v) && path.lax => Outcome::Empty,
            Some(v) if is_scalar(&v) => Outcome::Error,
            Some(v) => Outcome::Value(v.to_string()),
        }
    });
    let mut b = StringBuilder::with_capacity(text.len(), 0);
    for (i, o) in outcomes.into_iter().enumerate() {
        let (mode, what) = match o {
            Outcome::Null => {
                b.append_null();
                continue;
            }
            Outcome::Value(s) => {
                b.append_value(s);
                continue;
            }
            Outcome::Empty => (&on_empty, "ON EMPTY"),
            Outcome::Error => (&on_error, "ON ERROR"),
        };
        match mode.as_str() {
            "EMPTY ARRAY" => b.append_value("[]"),
            "EMPTY OBJECT" => b.append_value("{}"),
            "ERROR" => {
                return exec_err!(
                    "JSON_QUERY: no object or array at path '{}' of '{}' (ERROR {what})",
                    paths.value(i),
                    text.value(i)
                )
            }
            _ => b.append_null(),
        }
    }
    Ok(ColumnarValue::Array(Arc::new(b.finish())))
}

/// JSON_QUERY's texts as `ARRAY<STRING>` (`RETURNING ARRAY<STRING>`): an
/// array's elements, a string as itself, a JSON null as NULL, anything
/// else as its JSON text; NULL for what is not an array.
fn as_string_arrays(texts: &StringArray) -> datafusion::arrow::array::ListArray {
    use datafusion::arrow::array::ListBuilder;
    let mut b = ListBuilder::new(StringBuilder::new());
    for i in 0..texts.len() {
        let parsed = texts
            .is_valid(i)
            .then(|| serde_json::from_str::<Value>(texts.value(i)).ok())
            .flatten();
        let Some(Value::Array(items)) = parsed else {
            b.append_null();
            continue;
        };
        for item in items {
            match item {
                Value::Null => b.values().append_null(),
                Value::String(s) => b.values().append_value(s),
                other => b.values().append_value(other.to_string()),
            }
        }
        b.append(true);
    }
    b.finish()
}

/// JSON_EXISTS with its ON ERROR behaviour (`rest`: none or the mode).
fn json_exists_with(
    text: &StringArray,
    paths: &StringArray,
    rest: &[datafusion::arrow::array::ArrayRef],
) -> Result<ColumnarValue> {
    let on_error = mode_of(rest.first(), "FALSE")?;
    let outcomes = outcomes(text, paths, |_, found| match found {
        Found::Error => Outcome::Error,
        Found::Empty => Outcome::Empty,
        Found::Value(_) => Outcome::Value(String::new()),
    });
    let mut b = BooleanBuilder::with_capacity(text.len());
    for (i, o) in outcomes.into_iter().enumerate() {
        match o {
            Outcome::Null => b.append_null(),
            Outcome::Value(_) => b.append_value(true),
            Outcome::Empty => b.append_value(false),
            Outcome::Error => match on_error.as_str() {
                "TRUE" => b.append_value(true),
                "UNKNOWN" => b.append_null(),
                "ERROR" => {
                    return exec_err!(
                        "JSON_EXISTS: path '{}' fails on '{}' (ERROR ON ERROR)",
                        paths.value(i),
                        text.value(i)
                    )
                }
                _ => b.append_value(false),
            },
        }
    }
    Ok(ColumnarValue::Array(Arc::new(b.finish())))
}
