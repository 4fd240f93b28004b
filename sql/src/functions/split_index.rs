//! `SPLIT_INDEX(str, delimiter, n)`: the n-th (0-based) piece of `str` split by
//! `delimiter`; NULL when n is negative or out of range, or any argument is NULL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Flink's SPLIT_INDEX.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SplitIndex {
    signature: Signature,
}

impl SplitIndex {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SplitIndex {
    fn name(&self) -> &str {
        "split_index"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let s = cast(&args.args[0].to_array(n)?, &DataType::Utf8)?;
        let d = cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let i = cast(&args.args[2].to_array(n)?, &DataType::Int64)?;
        let (s, d, i) = (
            s.as_string::<i32>(),
            d.as_string::<i32>(),
            i.as_primitive::<Int64Type>(),
        );
        let mut b = StringBuilder::with_capacity(n, 0);
        for row in 0..n {
            if s.is_null(row) || d.is_null(row) || i.is_null(row) || i.value(row) < 0 {
                b.append_null();
                continue;
            }
            let (text, delim, idx) = (s.value(row), d.value(row), i.value(row) as usize);
            let piece = if delim.is_empty() {
                (idx == 0).then_some(text)
            } else {
                text.split(delim).nth(idx)
            };
            match piece {
                Some(p) => b.append_value(p),
                None => b.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}
