//! `PROCTIME()`: the processing time (wall clock) as a TIMESTAMP_LTZ(3), for
//! a computed column that a lookup join's `FOR SYSTEM_TIME AS OF` names.
//! Evaluated once per batch: rows processed together share their time. Its
//! column is a processing-time attribute that window TVFs take.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use vigil_engine::window::PROCTIME_METADATA_KEY;

/// Flink's PROCTIME().
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Proctime {
    signature: Signature,
}

impl Proctime {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for Proctime {
    fn name(&self) -> &str {
        "proctime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(
            TimeUnit::Millisecond,
            Some("UTC".into()),
        ))
    }

    /// Marked as a processing-time attribute, a mark its column keeps
    /// through views, so that a window TVF over it runs on the wall clock.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let t = self.return_type(&[])?;
        let meta = [(PROCTIME_METADATA_KEY.to_string(), "true".to_string())];
        let _ = args;
        Ok(Arc::new(
            Field::new(self.name(), t, false).with_metadata(meta.into_iter().collect()),
        ))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let now = chrono::Utc::now().timestamp_millis();
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
            Some(now),
            Some("UTC".into()),
        )))
    }
}
