//! `TO_TIMESTAMP_LTZ(numeric, precision)`: epoch seconds (precision 0) or
//! milliseconds (precision 3) to TIMESTAMP_LTZ(3).

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, TimestampMillisecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use crate::types::timestamp_ltz;

/// Flink's TO_TIMESTAMP_LTZ.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToTimestampLtz {
    signature: Signature,
}

impl ToTimestampLtz {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            ),
        }
    }
}

fn precision_of(args: &[ColumnarValue]) -> Result<i64> {
    match args.get(1) {
        None => Ok(3),
        Some(ColumnarValue::Scalar(s)) => match s.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(p)) if p == 0 || p == 3 => Ok(p),
            other => exec_err!(
                "TO_TIMESTAMP_LTZ precision must be 0 (seconds) or 3 (milliseconds), not {other}"
            ),
        },
        Some(_) => exec_err!("TO_TIMESTAMP_LTZ precision must be a constant"),
    }
}

impl ScalarUDFImpl for ToTimestampLtz {
    fn name(&self) -> &str {
        "to_timestamp_ltz"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(timestamp_ltz())
    }

    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        if let Some(t) = args.arg_fields.first() {
            if !t.data_type().is_numeric() && !t.data_type().is_null() {
                return plan_err!(
                    "TO_TIMESTAMP_LTZ takes a number of seconds or milliseconds, not {}",
                    t.data_type()
                );
            }
        }
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(
            self.name(),
            timestamp_ltz(),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let factor = if precision_of(&args.args)? == 0 {
            1000
        } else {
            1
        };
        let n = args.number_rows;
        let input = args.args[0].to_array(n)?;
        let ints = cast(&input, &DataType::Int64)?;
        let ints = ints.as_primitive::<Int64Type>();
        let out: TimestampMillisecondArray = ints
            .iter()
            .map(|v| v.and_then(|v| v.checked_mul(factor)))
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC");
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
