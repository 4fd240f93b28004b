//! `UNIX_TIMESTAMP()`: the current time in seconds since 1970;
//! `UNIX_TIMESTAMP(s [, format])`: `s` read with the Java date pattern
//! `format` (default `yyyy-MM-dd HH:mm:ss`) in UTC (Vigil's session time
//! zone), in seconds. As in Flink, text that does not fit the pattern gives
//! `Long.MIN_VALUE` (-9223372036854775808) and a NULL argument NULL.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, AsArray, Int64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::date_format::java_to_chrono;

/// Flink's UNIX_TIMESTAMP.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UnixTimestamp {
    signature: Signature,
}

impl UnixTimestamp {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Volatile,
            ),
        }
    }
}

/// Seconds since 1970 of `text` read with the chrono pattern `pattern`.
fn seconds(text: &str, pattern: &str) -> Option<i64> {
    if let Ok(t) = NaiveDateTime::parse_from_str(text, pattern) {
        return Some(t.and_utc().timestamp());
    }
    // A pattern of a date alone.
    NaiveDate::parse_from_str(text, pattern)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

impl ScalarUDFImpl for UnixTimestamp {
    fn name(&self) -> &str {
        "unix_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() > 2 {
            return exec_err!("UNIX_TIMESTAMP takes (), (string) or (string, format)");
        }
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let Some(text) = args.args.first() else {
            let now = chrono::Utc::now().timestamp();
            return Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(now))));
        };
        let text = cast(&text.to_array(n)?, &DataType::Utf8)?;
        let formats = match args.args.get(1) {
            Some(f) => Some(cast(&f.to_array(n)?, &DataType::Utf8)?),
            None => None,
        };
        let text = text.as_string::<i32>();
        let formats = formats.as_ref().map(|f| f.as_string::<i32>());
        let mut pattern: Option<(String, String)> = None;
        let mut b = Int64Builder::with_capacity(n);
        for i in 0..n {
            let java = match formats {
                Some(f) if f.is_null(i) => {
                    b.append_null();
                    continue;
                }
                Some(f) => f.value(i),
                None => "yyyy-MM-dd HH:mm:ss",
            };
            if text.is_null(i) {
                b.append_null();
                continue;
            }
            if pattern.as_ref().is_none_or(|(j, _)| j != java) {
                pattern = Some((java.to_string(), java_to_chrono(java)));
            }
            let chrono_pattern = pattern.as_ref().map_or("", |(_, c)| c.as_str());
            b.append_value(seconds(text.value(i), chrono_pattern).unwrap_or(i64::MIN));
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}
