//! Flink's string functions DataFusion lacks (or spells otherwise), with
//! Flink's results:
//! - `BIN(n)`: the binary digits of an integer (two's complement for a
//!   negative one, as Java's `Long.toBinaryString`);
//! - `HEX(x)`: an integer's hex digits, or a string's bytes in hex, upper
//!   case;
//! - `TO_BASE64(s)`, `FROM_BASE64(s)` (padded standard base64; text that is
//!   not base64 gives NULL);
//! - `IS_ALPHA(s)`, `IS_DIGIT(s)`, `IS_DECIMAL(s)` (FALSE for NULL and the
//!   empty string);
//! - `STR_TO_MAP(s [, pair delimiter, key-value delimiter])` (`,` and `=`
//!   by default, both regular expressions as in Flink);
//! - `PARSE_URL(url, part [, key])`: `HOST`, `PATH`, `QUERY` (or one
//!   query parameter's value), `REF`, `PROTOCOL`, `FILE`, `AUTHORITY`,
//!   `USERINFO`;
//! - `JSON_STRING(x)`: `x` as JSON text (a string quoted and escaped);
//! - `URL_ENCODE(s)`, `URL_DECODE(s)` (Java's `URLEncoder`/`URLDecoder`:
//!   form encoding in UTF-8, a space as `+`; NULL for what does not decode);
//! - `SPLIT(s, delimiter)`: the parts between the delimiters, as an array.

use std::sync::Arc;

use base64::Engine;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, MapBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int64Type};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Bin,
    Hex,
    ToBase64,
    FromBase64,
    IsAlpha,
    IsDigit,
    IsDecimal,
    StrToMap,
    ParseUrl,
    JsonString,
    UrlEncode,
    UrlDecode,
    Split,
}

const KINDS: [(Kind, &str); 13] = [
    (Kind::Bin, "bin"),
    (Kind::Hex, "hex"),
    (Kind::ToBase64, "to_base64"),
    (Kind::FromBase64, "from_base64"),
    (Kind::IsAlpha, "is_alpha"),
    (Kind::IsDigit, "is_digit"),
    (Kind::IsDecimal, "is_decimal"),
    (Kind::StrToMap, "str_to_map"),
    (Kind::ParseUrl, "parse_url"),
    (Kind::JsonString, "json_string"),
    (Kind::UrlEncode, "url_encode"),
    (Kind::UrlDecode, "url_decode"),
    (Kind::Split, "split"),
];

/// One of the functions (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextFunction {
    kind: Kind,
    name: &'static str,
    signature: Signature,
}

/// Every function of this module.
pub fn text_functions() -> Vec<ScalarUDF> {
    KINDS
        .iter()
        .map(|(kind, name)| {
            ScalarUDF::from(TextFunction {
                kind: *kind,
                name,
                signature: Signature::variadic_any(Volatility::Immutable),
            })
        })
        .collect()
}

/// The Arrow type of `MAP<STRING, STRING>` as `MapBuilder` makes it.
fn string_map_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::Utf8, false),
            Field::new("values", DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

impl ScalarUDFImpl for TextFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let n = arg_types.len();
        let ok = match self.kind {
            Kind::StrToMap => (1..=3).contains(&n),
            Kind::ParseUrl => (2..=3).contains(&n),
            Kind::Split => n == 2,
            _ => n == 1,
        };
        if !ok {
            return plan_err!(
                "{}: wrong number of arguments ({n})",
                self.name.to_uppercase()
            );
        }
        Ok(match self.kind {
            Kind::IsAlpha | Kind::IsDigit | Kind::IsDecimal => DataType::Boolean,
            Kind::StrToMap => string_map_type(),
            Kind::Split => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
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
        let out: ArrayRef = match self.kind {
            Kind::Bin | Kind::Hex if arrays[0].data_type().is_integer() => {
                let ints = cast(&arrays[0], &DataType::Int64)?;
                let ints = ints.as_primitive::<Int64Type>();
                let upper = self.kind == Kind::Hex;
                Arc::new(
                    ints.iter()
                        .map(|v| {
                            v.map(|v| {
                                if upper {
                                    format!("{:X}", v as u64)
                                } else {
                                    format!("{:b}", v as u64)
                                }
                            })
                        })
                        .collect::<StringArray>(),
                )
            }
            Kind::Bin => return exec_err!("BIN takes an integer"),
            Kind::Hex => map_strings(&arrays[0], |s| {
                Some(s.bytes().map(|b| format!("{b:02X}")).collect())
            })?,
            Kind::ToBase64 => map_strings(&arrays[0], |s| {
                Some(base64::engine::general_purpose::STANDARD.encode(s))
            })?,
            Kind::FromBase64 => map_strings(&arrays[0], |s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
            })?,
            Kind::IsAlpha => test_strings(&arrays[0], |s| s.chars().all(char::is_alphabetic))?,
            Kind::IsDigit => test_strings(&arrays[0], |s| s.chars().all(|c| c.is_ascii_digit()))?,
            Kind::IsDecimal => test_strings(&arrays[0], |s| {
                s.parse::<f64>().is_ok() && !s.contains(['i', 'n', 'I', 'N'])
            })?,
            Kind::StrToMap => str_to_map(&arrays)?,
            Kind::ParseUrl => parse_url(&arrays)?,
            Kind::JsonString if arrays[0].data_type().is_null() => {
                Arc::new(StringArray::new_null(n))
            }
            Kind::JsonString
                if matches!(
                    arrays[0].data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ) =>
            {
                map_strings(&arrays[0], |s| serde_json::to_string(s).ok())?
            }
            Kind::JsonString => map_strings(&arrays[0], |s| Some(s.to_string()))?,
            Kind::UrlEncode => map_strings(&arrays[0], |s| Some(url_encode(s)))?,
            Kind::UrlDecode => map_strings(&arrays[0], url_decode)?,
            Kind::Split => split(&arrays)?,
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `f` of each string of `a` (NULL in, NULL out).
fn map_strings(a: &ArrayRef, f: impl Fn(&str) -> Option<String>) -> Result<ArrayRef> {
    let s = cast(a, &DataType::Utf8)?;
    let s = s.as_string::<i32>();
    Ok(Arc::new(
        s.iter().map(|v| v.and_then(&f)).collect::<StringArray>(),
    ))
}

/// Whether each string of `a` is non-empty and passes `f` (FALSE for NULL).
fn test_strings(a: &ArrayRef, f: impl Fn(&str) -> bool) -> Result<ArrayRef> {
    let s = cast(a, &DataType::Utf8)?;
    let s = s.as_string::<i32>();
    Ok(Arc::new(
        s.iter()
            .map(|v| Some(v.is_some_and(|v| !v.is_empty() && f(v))))
            .collect::<BooleanArray>(),
    ))
}

/// The constant string argument `i` (a delimiter), or `default`.
fn constant(arrays: &[ArrayRef], i: usize, default: &str) -> Result<String> {
    let Some(a) = arrays.get(i) else {
        return Ok(default.to_string());
    };
    let s = cast(a, &DataType::Utf8)?;
    let s = s.as_string::<i32>();
    Ok(if s.is_empty() || s.is_null(0) {
        default.to_string()
    } else {
        s.value(0).to_string()
    })
}

fn str_to_map(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let pairs = regex::Regex::new(&constant(arrays, 1, ",")?)
        .map_err(|e| datafusion::error::DataFusionError::Execution(format!("STR_TO_MAP: {e}")))?;
    let kv = regex::Regex::new(&constant(arrays, 2, "=")?)
        .map_err(|e| datafusion::error::DataFusionError::Execution(format!("STR_TO_MAP: {e}")))?;
    let text = cast(&arrays[0], &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for v in text.iter() {
        let Some(v) = v else {
            b.append(false)?;
            continue;
        };
        for pair in pairs.split(v) {
            let mut parts = kv.splitn(pair, 2);
            let key = parts.next().unwrap_or_default();
            b.keys().append_value(key);
            match parts.next() {
                Some(value) => b.values().append_value(value),
                None => b.values().append_null(),
            }
        }
        b.append(true)?;
    }
    Ok(Arc::new(b.finish()))
}

fn parse_url(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let urls = cast(&arrays[0], &DataType::Utf8)?;
    let urls = urls.as_string::<i32>();
    let parts = cast(&arrays[1], &DataType::Utf8)?;
    let parts = parts.as_string::<i32>();
    let keys = match arrays.get(2) {
        Some(k) => Some(cast(k, &DataType::Utf8)?),
        None => None,
    };
    let keys = keys.as_ref().map(|k| k.as_string::<i32>());
    let out: StringArray = (0..urls.len())
        .map(|i| {
            if urls.is_null(i) || parts.is_null(i) {
                return None;
            }
            let key = keys.and_then(|k| (!k.is_null(i)).then(|| k.value(i)));
            url_part(urls.value(i), parts.value(i), key)
        })
        .collect();
    Ok(Arc::new(out))
}

/// One part of `url` (Java's `URL` getters), `None` if it has none.
fn url_part(url: &str, part: &str, key: Option<&str>) -> Option<String> {
    let (protocol, rest) = url.split_once("://")?;
    let (before_ref, reference) = match rest.split_once('#') {
        Some((b, r)) => (b, Some(r)),
        None => (rest, None),
    };
    let (authority, file) = match before_ref.find('/') {
        Some(i) if before_ref[..i].contains('?') => {
            let q = before_ref.find('?').unwrap_or(i);
            (&before_ref[..q], &before_ref[q..])
        }
        Some(i) => (&before_ref[..i], &before_ref[i..]),
        None => match before_ref.find('?') {
            Some(q) => (&before_ref[..q], &before_ref[q..]),
            None => (before_ref, ""),
        },
    };
    let (path, query) = match file.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (file, None),
    };
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    };
    match part.to_ascii_uppercase().as_str() {
        "HOST" => Some(host.to_string()),
        "PATH" => Some(path.to_string()),
        "QUERY" => {
            let query = query?;
            match key {
                None => Some(query.to_string()),
                Some(k) => query.split('&').find_map(|kv| {
                    let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
                    (name == k).then(|| value.to_string())
                }),
            }
        }
        "REF" => reference.map(str::to_string),
        "PROTOCOL" => Some(protocol.to_string()),
        "FILE" => Some(file.to_string()),
        "AUTHORITY" => Some(authority.to_string()),
        "USERINFO" => userinfo.map(str::to_string),
        _ => None,
    }
}

/// Java's `URLEncoder.encode(s, UTF-8)`.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Java's `URLDecoder.decode(s, UTF-8)`; `None` for a bad escape or bytes
/// that are not UTF-8.
fn url_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `SPLIT(s, delimiter)`.
fn split(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    use datafusion::arrow::array::ListBuilder;
    let text = cast(&arrays[0], &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let delims = cast(&arrays[1], &DataType::Utf8)?;
    let delims = delims.as_string::<i32>();
    let mut b = ListBuilder::new(StringBuilder::new());
    for i in 0..text.len() {
        if text.is_null(i) || delims.is_null(i) {
            b.append_null();
            continue;
        }
        let (t, d) = (text.value(i), delims.value(i));
        if d.is_empty() {
            for c in t.chars() {
                b.values().append_value(c.to_string());
            }
        } else {
            for part in t.split(d) {
                b.values().append_value(part);
            }
        }
        b.append(true);
    }
    Ok(Arc::new(b.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_as_java_reads_them() {
        let url = "http://user@a.com:8080/p/q.html?x=1&y=2#frag";
        assert_eq!(url_part(url, "HOST", None).as_deref(), Some("a.com"));
        assert_eq!(url_part(url, "PATH", None).as_deref(), Some("/p/q.html"));
        assert_eq!(url_part(url, "QUERY", None).as_deref(), Some("x=1&y=2"));
        assert_eq!(url_part(url, "QUERY", Some("y")).as_deref(), Some("2"));
        assert_eq!(url_part(url, "REF", None).as_deref(), Some("frag"));
        assert_eq!(
            url_part(url, "FILE", None).as_deref(),
            Some("/p/q.html?x=1&y=2")
        );
        assert_eq!(
            url_part(url, "AUTHORITY", None).as_deref(),
            Some("user@a.com:8080")
        );
        assert_eq!(url_part(url, "USERINFO", None).as_deref(), Some("user"));
        assert_eq!(url_part("not a url", "HOST", None), None);
    }

    #[test]
    fn urls_encode_and_decode_as_java_does() {
        assert_eq!(url_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(url_decode("a%20b+c").as_deref(), Some("a b c"));
        assert_eq!(url_decode("%zz"), None);
    }
}
