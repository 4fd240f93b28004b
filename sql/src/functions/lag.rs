//! `LAG(x [, n [, default]]) OVER (PARTITION BY ... ORDER BY time)`, which
//! Flink runs in a streaming OVER aggregation: `x` of the row `n` rows
//! before (1 by default) in the partition's time order, or `default` (NULL)
//! when there is none. Planned as an OVER aggregate `over_lag(x, n,
//! default)` over the frame `ROWS BETWEEN n PRECEDING AND CURRENT ROW`,
//! whose first row is the one wanted once the frame is full (the OVER
//! operator takes rows leaving the frame back out, oldest first).

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

/// The `over_lag` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
struct OverLag {
    signature: Signature,
}

/// The aggregate behind LAG in an OVER aggregation.
pub fn over_lag() -> AggregateUDF {
    AggregateUDF::from(OverLag {
        signature: Signature::any(3, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for OverLag {
    fn name(&self) -> &str {
        "over_lag"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) => Ok(t.clone()),
            None => exec_err!("LAG takes a value"),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let offset = args
            .exprs
            .get(1)
            .and_then(|e| {
                let any: &dyn std::any::Any = e.as_ref();
                any.downcast_ref::<Literal>()
            })
            .and_then(|l| match l.value().cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(n))) => Some(n),
                _ => None,
            });
        let Some(offset) = offset.filter(|n| *n >= 0) else {
            return exec_err!("LAG's offset must be a constant, 0 or more");
        };
        Ok(Box::new(Lag {
            offset: offset as usize,
            data_type: args.return_field.data_type().clone(),
            frame: VecDeque::new(),
            default: None,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[frame]", args.name),
            DataType::List(Arc::new(Field::new_list_field(
                args.return_field.data_type().clone(),
                true,
            ))),
            true,
        ))])
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.accumulator(args)
    }
}

/// The frame's values, oldest first, and the last default seen.
#[derive(Debug)]
struct Lag {
    offset: usize,
    data_type: DataType,
    frame: VecDeque<ScalarValue>,
    default: Option<ScalarValue>,
}

impl Accumulator for Lag {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(x) = values.first() else {
            return Ok(());
        };
        for i in 0..x.len() {
            self.frame.push_back(ScalarValue::try_from_array(x, i)?);
            if let Some(d) = values.get(2) {
                self.default = Some(ScalarValue::try_from_array(d, i)?);
            }
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for _ in 0..values.first().map_or(0, |x| x.len()) {
            self.frame.pop_front();
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let value = if self.frame.len() > self.offset {
            self.frame[self.frame.len() - 1 - self.offset].clone()
        } else {
            self.default.clone().unwrap_or(ScalarValue::Null)
        };
        value.cast_to(&self.data_type)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.frame.iter().map(|v| v.size()).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.frame.iter().cloned().collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &self.data_type,
        ))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states.first() else {
            return Ok(());
        };
        let lists = lists.as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_null(i) {
                continue;
            }
            let values = lists.value(i);
            for j in 0..values.len() {
                self.frame
                    .push_back(ScalarValue::try_from_array(&values, j)?);
            }
        }
        Ok(())
    }
}
