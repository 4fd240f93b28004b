//! `LAG(x [, n [, default]]) OVER (PARTITION BY ... ORDER BY time)`, which
//! Flink runs in a streaming OVER aggregation: `x` of the row `n` rows
//! before (1 by default) in the partition's time order, or `default` (NULL)
//! when there is none. Planned as an OVER aggregate `over_lag(x, n,
//! default)` over the frame `ROWS BETWEEN n PRECEDING AND CURRENT ROW`,
//! whose first row is the one wanted once the frame is full (the OVER
//! operator takes rows leaving the frame back out, oldest first).
//!
//! `FIRST_VALUE(x)` and `LAST_VALUE(x)` over an OVER window are
//! `over_first(x, bounded)` and `over_last(x, bounded)`: the first and the
//! last value of the frame (kept whole only when the frame is bounded, as
//! rows then leave it).

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

/// Which value of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pick {
    Lag,
    First,
    Last,
}

/// The `over_lag`, `over_first` or `over_last` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
struct OverLag {
    pick: Pick,
    signature: Signature,
}

/// The aggregates behind LAG, FIRST_VALUE and LAST_VALUE in an OVER
/// aggregation.
pub fn over_value_functions() -> Vec<AggregateUDF> {
    [(Pick::Lag, 3), (Pick::First, 2), (Pick::Last, 2)]
        .into_iter()
        .map(|(pick, n)| {
            AggregateUDF::from(OverLag {
                pick,
                signature: Signature::any(n, Volatility::Immutable),
            })
        })
        .collect()
}

impl AggregateUDFImpl for OverLag {
    fn name(&self) -> &str {
        match self.pick {
            Pick::Lag => "over_lag",
            Pick::First => "over_first",
            Pick::Last => "over_last",
        }
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
        let literal = |i: usize| {
            args.exprs
                .get(i)
                .and_then(|e| {
                    let any: &dyn std::any::Any = e.as_ref();
                    any.downcast_ref::<Literal>()
                })
                .map(|l| l.value().clone())
        };
        let (offset, bounded) = match self.pick {
            Pick::Lag => match literal(1).map(|v| v.cast_to(&DataType::Int64)) {
                Some(Ok(ScalarValue::Int64(Some(n)))) if n >= 0 => (n as usize, true),
                _ => return exec_err!("LAG's offset must be a constant, 0 or more"),
            },
            _ => (0, literal(1) == Some(ScalarValue::Boolean(Some(true)))),
        };
        Ok(Box::new(Lag {
            pick: self.pick,
            offset,
            bounded,
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

/// The frame's values, oldest first (of an unbounded frame, only the one
/// wanted), and the last default seen.
#[derive(Debug)]
struct Lag {
    pick: Pick,
    offset: usize,
    bounded: bool,
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
            let v = ScalarValue::try_from_array(x, i)?;
            match (self.pick, self.bounded) {
                (Pick::First, false) if !self.frame.is_empty() => {}
                (Pick::Last, false) => self.frame = VecDeque::from([v]),
                _ => self.frame.push_back(v),
            }
            if let (Pick::Lag, Some(d)) = (self.pick, values.get(2)) {
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
        let value = match self.pick {
            Pick::Lag if self.frame.len() > self.offset => {
                self.frame[self.frame.len() - 1 - self.offset].clone()
            }
            Pick::Lag => self.default.clone().unwrap_or(ScalarValue::Null),
            Pick::First => self.frame.front().cloned().unwrap_or(ScalarValue::Null),
            Pick::Last => self.frame.back().cloned().unwrap_or(ScalarValue::Null),
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
