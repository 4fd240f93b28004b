//! Flink's `SIGN(x)`: -1, 0 or 1 in the type of `x` (DataFusion's `signum`
//! gives a DOUBLE).

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Flink's SIGN.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Sign {
    signature: Signature,
}

impl Sign {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Sign {
    fn name(&self) -> &str {
        "sign"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) if t.is_numeric() => Ok(t.clone()),
            Some(DataType::Null) => Ok(DataType::Int32),
            Some(other) => plan_err!("SIGN takes a number, not {other}"),
            None => plan_err!("SIGN takes a number"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let x = args.args[0].to_array(n)?;
        let as_double = cast(&x, &DataType::Float64)?;
        let signs: datafusion::arrow::array::Float64Array = as_double
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    if v > 0.0 {
                        1.0
                    } else if v < 0.0 {
                        -1.0
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        let out = cast(&signs, args.return_field.data_type())?;
        Ok(ColumnarValue::Array(out))
    }
}
