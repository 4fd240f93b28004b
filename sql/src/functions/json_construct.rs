//! Flink's JSON constructors, behind the syntax `json_syntax` rewrites:
//! `json_object(on_null, k1, v1, ...)`, `json_array(on_null, v1, ...)` and
//! the aggregates `json_objectagg(on_null, k, v)` and `json_arrayagg(on_null,
//! v)`, each giving JSON text; `on_null` is `'NULL'` (a NULL value is JSON
//! null) or `'ABSENT'` (left out). Values are written as JSON of their type
//! (strings quoted, numbers and booleans bare); a value wrapped in
//! `json_raw(...)` (a nested constructor's text) is embedded as JSON. Object
//! keys come out sorted, as Flink writes them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder, StructArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

/// The field of the struct `json_raw` wraps JSON text in.
const RAW_FIELD: &str = "__json";

/// Whether a NULL value is kept as JSON null (`NULL ON NULL`).
fn keeps_nulls(mode: &ArrayRef) -> Result<bool> {
    let mode = cast(mode, &DataType::Utf8)?;
    let mode = mode.as_string::<i32>();
    match (mode.is_valid(0)).then(|| mode.value(0).to_ascii_uppercase()) {
        Some(m) if m == "NULL" => Ok(true),
        Some(m) if m == "ABSENT" => Ok(false),
        _ => exec_err!("the ON NULL behaviour of a JSON constructor is NULL or ABSENT"),
    }
}

/// The value at `row` of `array` as JSON text (`None`: NULL). Numbers are
/// written as their type prints them (a DECIMAL(10, 2) as `2.00`, as Flink
/// does), so the text is built here rather than through a JSON value.
fn json_text(array: &ArrayRef, row: usize) -> Result<Option<String>> {
    if array.is_null(row) {
        return Ok(None);
    }
    Ok(Some(match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = cast(&array.slice(row, 1), &DataType::Utf8)?;
            Value::String(s.as_string::<i32>().value(0).to_string()).to_string()
        }
        DataType::Struct(fields) if fields.len() == 1 && fields[0].name() == RAW_FIELD => {
            let inner = array.as_struct().column(0).clone();
            let text = cast(&inner.slice(row, 1), &DataType::Utf8)?;
            let text = text.as_string::<i32>();
            if text.is_null(0) {
                return Ok(None);
            }
            text.value(0).to_string()
        }
        t if t.is_floating() => {
            let v = cast(&array.slice(row, 1), &DataType::Float64)?;
            let f = v
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(0);
            match serde_json::Number::from_f64(f) {
                Some(n) => n.to_string(),
                None => return Ok(None),
            }
        }
        t if t.is_integer() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) => {
            let f = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
            f.value(row).to_string()
        }
        _ => {
            let f = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
            Value::String(f.value(row).to_string()).to_string()
        }
    }))
}

/// A key as text (a NULL key is an error, as in Flink).
fn key_text(array: &ArrayRef, row: usize, what: &str) -> Result<String> {
    let k = cast(array, &DataType::Utf8)?;
    let k = k.as_string::<i32>();
    if k.is_null(row) {
        return exec_err!("a {what} key is NULL");
    }
    Ok(k.value(row).to_string())
}

/// `{"k":v,...}` with the keys sorted (a later equal key wins).
fn object_text(pairs: impl Iterator<Item = (String, String)>) -> String {
    let sorted: std::collections::BTreeMap<String, String> = pairs.collect();
    let body: Vec<String> = sorted
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", Value::String(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Which constructor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Object,
    Array,
    Raw,
}

/// `json_object`, `json_array` or `json_raw`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Constructor {
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for Constructor {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Object => "json_object",
            Kind::Array => "json_array",
            Kind::Raw => "json_raw",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Raw => DataType::Struct(Fields::from(vec![Field::new(
                RAW_FIELD,
                DataType::Utf8,
                true,
            )])),
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<Vec<_>>>()?;
        if self.kind == Kind::Raw {
            let [text] = arrays.as_slice() else {
                return exec_err!("json_raw takes one argument");
            };
            let text = cast(text, &DataType::Utf8)?;
            let field: FieldRef = Arc::new(Field::new(RAW_FIELD, DataType::Utf8, true));
            return Ok(ColumnarValue::Array(Arc::new(StructArray::from(vec![(
                field, text,
            )]))));
        }
        let Some((mode, values)) = arrays.split_first() else {
            return exec_err!("{} takes its ON NULL behaviour first", self.name());
        };
        let keep = keeps_nulls(mode)?;
        if self.kind == Kind::Object && values.len() % 2 == 1 {
            return exec_err!("json_object takes keys and values in pairs");
        }
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for row in 0..n {
            let text = match self.kind {
                Kind::Object => {
                    let mut pairs = vec![];
                    for pair in values.chunks(2) {
                        let k = key_text(&pair[0], row, "JSON_OBJECT")?;
                        match json_text(&pair[1], row)? {
                            Some(v) => pairs.push((k, v)),
                            None if keep => pairs.push((k, "null".to_string())),
                            None => {}
                        }
                    }
                    object_text(pairs.into_iter())
                }
                _ => {
                    let mut items = vec![];
                    for a in values {
                        match json_text(a, row)? {
                            Some(v) => items.push(v),
                            None if keep => items.push("null".to_string()),
                            None => {}
                        }
                    }
                    format!("[{}]", items.join(","))
                }
            };
            b.append_value(text);
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}

/// `json_object`, `json_array` and `json_raw`.
pub fn json_constructors() -> Vec<ScalarUDF> {
    [Kind::Object, Kind::Array, Kind::Raw]
        .into_iter()
        .map(|kind| {
            ScalarUDF::from(Constructor {
                kind,
                signature: match kind {
                    Kind::Raw => Signature::any(1, Volatility::Immutable),
                    _ => Signature::variadic_any(Volatility::Immutable),
                },
            })
        })
        .collect()
}

/// `json_objectagg` or `json_arrayagg`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Aggregate {
    object: bool,
    signature: Signature,
}

impl AggregateUDFImpl for Aggregate {
    fn name(&self) -> &str {
        if self.object {
            "json_objectagg"
        } else {
            "json_arrayagg"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Entries {
            object: self.object,
            keep: None,
            entries: vec![],
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new_list_field(DataType::Utf8, true));
        Ok(vec![Arc::new(Field::new(
            format!("{}[entries]", args.name),
            DataType::List(item),
            true,
        ))])
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.accumulator(args)
    }
}

/// The entries so far, each as JSON text (for an object, the key, a NUL,
/// then the value: JSON text has no bare NUL), in arrival order; a
/// retraction removes the first equal one.
#[derive(Debug)]
struct Entries {
    object: bool,
    keep: Option<bool>,
    entries: Vec<String>,
}

impl Entries {
    /// The entries of `values` (mode, [key,] value), and whether NULLs count.
    fn entries_of(&mut self, values: &[ArrayRef]) -> Result<Vec<String>> {
        let Some((mode, rest)) = values.split_first() else {
            return Ok(vec![]);
        };
        if mode.is_empty() {
            return Ok(vec![]);
        }
        let keep = *self.keep.get_or_insert(keeps_nulls(mode)?);
        let mut out = vec![];
        for row in 0..mode.len() {
            let (key, value) = match rest {
                [k, v] if self.object => (Some(key_text(k, row, "JSON_OBJECTAGG")?), v),
                [v] if !self.object => (None, v),
                _ => {
                    return exec_err!(
                        "{} takes the wrong number of arguments",
                        if self.object {
                            "json_objectagg"
                        } else {
                            "json_arrayagg"
                        }
                    )
                }
            };
            let value = match json_text(value, row)? {
                Some(v) => v,
                None if keep => "null".to_string(),
                None => continue,
            };
            out.push(match key {
                Some(k) => format!("{k}\u{0}{value}"),
                None => value,
            });
        }
        Ok(out)
    }
}

impl Accumulator for Entries {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let new = self.entries_of(values)?;
        self.entries.extend(new);
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for e in self.entries_of(values)? {
            if let Some(i) = self.entries.iter().position(|x| *x == e) {
                self.entries.remove(i);
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let text = if self.object {
            object_text(self.entries.iter().filter_map(|e| {
                e.split_once('\u{0}')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            }))
        } else {
            format!("[{}]", self.entries.join(","))
        };
        Ok(ScalarValue::Utf8(Some(text)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .entries
                .iter()
                .map(|e| e.capacity() + 24)
                .sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let items: Vec<ScalarValue> = self
            .entries
            .iter()
            .map(|e| ScalarValue::Utf8(Some(e.clone())))
            .collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &items,
            &DataType::Utf8,
        ))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states.first() else {
            return Ok(());
        };
        let lists = lists.as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_null(i) {
                continue;
            }
            let items = cast(&lists.value(i), &DataType::Utf8)?;
            let items = items.as_string::<i32>();
            self.entries.extend(
                (0..items.len())
                    .filter(|j| items.is_valid(*j))
                    .map(|j| items.value(j).to_string()),
            );
        }
        Ok(())
    }
}

/// `json_objectagg` and `json_arrayagg`.
pub fn json_aggregates() -> Vec<AggregateUDF> {
    [true, false]
        .into_iter()
        .map(|object| {
            AggregateUDF::from(Aggregate {
                object,
                signature: Signature::variadic_any(Volatility::Immutable),
            })
        })
        .collect()
}
