//! `count_char(s, c)`: how many bytes of `s` equal the first byte of `c` (0
//! for a NULL `s`), the Rust twin of Nexmark's Java UDF
//! `com.github.nexmark.flink.udf.CountChar` that query 14 binds with
//! `CREATE FUNCTION count_char AS 'com.github.nexmark.flink.udf.CountChar'`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};

/// The Java class Nexmark's q14 names, under which the function is registered.
pub const JAVA_CLASS: &str = "com.github.nexmark.flink.udf.CountChar";

fn count_char(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    let rows = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    let s = cast(&args[0].to_array(rows)?, &DataType::Utf8)?;
    let c = cast(&args[1].to_array(rows)?, &DataType::Utf8)?;
    let (s, c) = (s.as_string::<i32>(), c.as_string::<i32>());
    let counts: Int64Array = (0..rows)
        .map(|i| {
            if s.is_null(i) {
                return Some(0);
            }
            let wanted = (!c.is_null(i))
                .then(|| c.value(i).as_bytes().first().copied())
                .flatten()?;
            Some(s.value(i).bytes().filter(|b| *b == wanted).count() as i64)
        })
        .collect();
    Ok(ColumnarValue::Array(Arc::new(counts) as ArrayRef))
}

/// The function, named `count_char`, also callable as [`JAVA_CLASS`].
pub fn udf() -> ScalarUDF {
    create_udf(
        "count_char",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(count_char),
    )
    .with_aliases([JAVA_CLASS])
}
