//! `TIMESTAMPADD(unit, n, ts)` (the planner passes the unit as text): `ts`
//! plus `n` units of SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER or
//! YEAR, in the type of `ts`. Months are calendar months, the day clamped to
//! the month's last (January 31 plus a month is February 28), as in Flink;
//! NULL in, NULL out.

use std::sync::Arc;

use chrono::{DateTime, Months, TimeDelta};
use datafusion::arrow::array::{Array, AsArray, TimestampMillisecondBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Flink's TIMESTAMPADD.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TimestampAdd {
    signature: Signature,
}

impl TimestampAdd {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

/// `ms` plus `n` units, or `None` out of range.
fn add(ms: i64, n: i64, unit: &str) -> Option<i64> {
    let t = DateTime::from_timestamp_millis(ms)?;
    let months = |m: i64| -> Option<DateTime<chrono::Utc>> {
        let m32 = u32::try_from(m.unsigned_abs()).ok()?;
        if m >= 0 {
            t.checked_add_months(Months::new(m32))
        } else {
            t.checked_sub_months(Months::new(m32))
        }
    };
    let out = match unit {
        "SECOND" => t.checked_add_signed(TimeDelta::try_seconds(n)?),
        "MINUTE" => t.checked_add_signed(TimeDelta::try_minutes(n)?),
        "HOUR" => t.checked_add_signed(TimeDelta::try_hours(n)?),
        "DAY" => t.checked_add_signed(TimeDelta::try_days(n)?),
        "WEEK" => t.checked_add_signed(TimeDelta::try_weeks(n)?),
        "MONTH" => months(n),
        "QUARTER" => months(n.checked_mul(3)?),
        "YEAR" => months(n.checked_mul(12)?),
        _ => None,
    }?;
    Some(out.timestamp_millis())
}

const UNITS: [&str; 8] = [
    "SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR",
];

impl ScalarUDFImpl for TimestampAdd {
    fn name(&self) -> &str {
        "timestampadd"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.get(2) {
            Some(DataType::Timestamp(_, tz)) => {
                Ok(DataType::Timestamp(TimeUnit::Millisecond, tz.clone()))
            }
            Some(DataType::Date32 | DataType::Date64) => {
                Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
            }
            other => exec_err!("TIMESTAMPADD needs a timestamp, not {other:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let unit = match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(u))) => u.to_ascii_uppercase(),
            _ => return exec_err!("TIMESTAMPADD's unit must be a word such as HOUR"),
        };
        if !UNITS.contains(&unit.as_str()) {
            return exec_err!("TIMESTAMPADD's unit must be one of {}", UNITS.join(", "));
        }
        let out_type =
            self.return_type(&[DataType::Utf8, DataType::Int64, args.args[2].data_type()])?;
        let counts = cast(&args.args[1].to_array(n)?, &DataType::Int64)?;
        let times = cast(&args.args[2].to_array(n)?, &out_type)?;
        let (counts, times) = (
            counts.as_primitive::<Int64Type>(),
            times.as_primitive::<TimestampMillisecondType>(),
        );
        let mut b = TimestampMillisecondBuilder::with_capacity(n);
        for i in 0..n {
            if counts.is_null(i) || times.is_null(i) {
                b.append_null();
                continue;
            }
            b.append_option(add(times.value(i), counts.value(i), &unit));
        }
        let DataType::Timestamp(_, tz) = out_type else {
            return exec_err!("TIMESTAMPADD's result is a timestamp");
        };
        Ok(ColumnarValue::Array(Arc::new(
            b.finish().with_timezone_opt(tz),
        )))
    }
}
