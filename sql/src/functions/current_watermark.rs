//! `CURRENT_WATERMARK(rowtime)`: the last watermark the operator evaluating
//! it received, NULL before the first (Flink's function, e.g. to drop late
//! rows: `WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts)`).
//! Vigil advances watermarks after every row, so what it returns depends on
//! the input alone; Flink's periodic watermarks make it depend on timing.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use vigil_engine::time::{current_watermark, MAX_WATERMARK, MIN_WATERMARK};
use vigil_engine::window::ROWTIME_METADATA_KEY;

/// Flink's CURRENT_WATERMARK.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CurrentWatermark {
    signature: Signature,
}

impl CurrentWatermark {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for CurrentWatermark {
    fn name(&self) -> &str {
        "current_watermark"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types
            .first()
            .cloned()
            .unwrap_or(DataType::Timestamp(TimeUnit::Millisecond, None)))
    }

    /// The argument's type, as a plain timestamp (not a time attribute).
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let Some(arg) = args.arg_fields.first() else {
            return plan_err!("CURRENT_WATERMARK takes the table's time attribute");
        };
        if !arg.metadata().contains_key(ROWTIME_METADATA_KEY) {
            return plan_err!(
                "CURRENT_WATERMARK takes a time attribute (a column with a WATERMARK), not {}",
                arg.name()
            );
        }
        Ok(Arc::new(Field::new(
            self.name(),
            arg.data_type().clone(),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let tz = match args.return_field.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        let wm = current_watermark().filter(|w| *w != MIN_WATERMARK && *w != MAX_WATERMARK);
        let value = ScalarValue::TimestampMillisecond(wm, tz);
        // The argument's unit may differ: cast to the declared type.
        Ok(ColumnarValue::Scalar(
            value.cast_to(args.return_field.data_type())?,
        ))
    }
}
