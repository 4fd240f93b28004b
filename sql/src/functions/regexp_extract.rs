//! `REGEXP_EXTRACT(str, regex [, group])`: the text of capture group `group`
//! (default 0, the whole match) of the first match of `regex` in `str`, as
//! Flink's `SqlFunctionUtils.regexpExtract`: NULL when an argument is NULL,
//! nothing matches, the group took no part in the match, the group is negative or beyond the pattern's groups, or
//! the pattern is not a valid regular expression. (Rust's `regex` syntax,
//! which agrees with Java's on the common constructs; no look-around.)

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

/// Flink's REGEXP_EXTRACT.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexpExtract {
    signature: Signature,
}

impl RegexpExtract {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !(2..=3).contains(&arg_types.len()) {
            return exec_err!("REGEXP_EXTRACT takes (string, regex) or (string, regex, group)");
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let text = cast(&args.args[0].to_array(n)?, &DataType::Utf8)?;
        let pattern = cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let group = match args.args.get(2) {
            Some(g) => Some(cast(&g.to_array(n)?, &DataType::Int64)?),
            None => None,
        };
        let (text, pattern) = (text.as_string::<i32>(), pattern.as_string::<i32>());
        let group = group.as_ref().map(|g| g.as_primitive::<Int64Type>());
        // The pattern is nearly always a literal: compile it once per batch.
        let mut compiled: Option<(String, Option<Regex>)> = None;
        let mut b = StringBuilder::with_capacity(n, 0);
        for row in 0..n {
            let index = match group {
                Some(g) if g.is_null(row) => None,
                Some(g) => usize::try_from(g.value(row)).ok(),
                None => Some(0),
            };
            if text.is_null(row) || pattern.is_null(row) {
                b.append_null();
                continue;
            }
            let Some(index) = index else {
                b.append_null();
                continue;
            };
            let p = pattern.value(row);
            if compiled.as_ref().is_none_or(|(q, _)| q != p) {
                compiled = Some((p.to_string(), Regex::new(p).ok()));
            }
            let found = compiled
                .as_ref()
                .and_then(|(_, re)| re.as_ref())
                .filter(|re| index < re.captures_len())
                .and_then(|re| re.captures(text.value(row)))
                // A group that took no part in the match is NULL, as in Java.
                .and_then(|c| c.get(index).map(|m| m.as_str()));
            match found {
                Some(s) => b.append_value(s),
                None => b.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}
