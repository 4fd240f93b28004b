//! Accumulators that take back any value, for aggregates over an updating
//! input where DataFusion's cannot:
//! - MIN and MAX: DataFusion's forget the values behind the current extreme
//!   (its sliding variants retract only the oldest value, as a window
//!   slides); like Flink's `MaxWithRetractAggFunction`, this one counts every
//!   value it holds.
//! - AVG: DataFusion's integer AVG does not retract; this one keeps a sum and
//!   a count (a DOUBLE sum, or an exact DECIMAL one for a DECIMAL average).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Accumulator;

/// A value ordered as SQL orders it (values of one column compare; NaN, which
/// does not, sorts as equal).
#[derive(Debug, Clone)]
struct Ordered(ScalarValue);

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ordered {}
impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// MIN or MAX that can take back any value it was given.
#[derive(Debug)]
pub struct RetractableMinMax {
    max: bool,
    data_type: DataType,
    values: BTreeMap<Ordered, u64>,
}

impl RetractableMinMax {
    /// MAX (`max`) or MIN of values of `data_type`.
    pub fn new(max: bool, data_type: DataType) -> Self {
        Self {
            max,
            data_type,
            values: BTreeMap::new(),
        }
    }

    fn each(values: &ArrayRef, mut f: impl FnMut(ScalarValue)) -> DfResult<()> {
        for i in 0..values.len() {
            if values.is_valid(i) {
                f(ScalarValue::try_from_array(values, i)?);
            }
        }
        Ok(())
    }
}

impl Accumulator for RetractableMinMax {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let map = &mut self.values;
        Self::each(&values[0], |v| *map.entry(Ordered(v)).or_insert(0) += 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let map = &mut self.values;
        Self::each(&values[0], |v| {
            let k = Ordered(v);
            if let Some(n) = map.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&k);
                }
            }
        })
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let v = if self.max {
            self.values.keys().next_back()
        } else {
            self.values.keys().next()
        };
        match v {
            Some(v) => Ok(v.0.clone()),
            None => ScalarValue::try_from(&self.data_type),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .values
                .keys()
                .map(|k| k.0.size() + std::mem::size_of::<u64>())
                .sum::<usize>()
    }

    /// Every value held, once per time it was given.
    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let all: Vec<ScalarValue> = self
            .values
            .iter()
            .flat_map(|(k, n)| std::iter::repeat_n(k.0.clone(), *n as usize))
            .collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &all,
            &self.data_type,
        ))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(lists) = states.first().and_then(|s| s.as_list_opt::<i32>()) else {
            return Ok(());
        };
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                self.update_batch(&[lists.value(i)])?;
            }
        }
        Ok(())
    }
}

/// AVG that can take back values: a sum and a count.
#[derive(Debug)]
pub struct RetractableAvg {
    /// The result type: Float64, or Decimal128 (whose scale the sum keeps).
    result: DataType,
    /// Truncate a DOUBLE result toward zero (Flink's AVG over integers).
    truncate: bool,
    sum_f: f64,
    sum_d: i128,
    count: i64,
}

impl RetractableAvg {
    /// An average returning `result` (Float64 or Decimal128), truncated
    /// toward zero if `truncate`; `None` for another type.
    pub fn new(result: DataType, truncate: bool) -> Option<Self> {
        matches!(result, DataType::Float64 | DataType::Decimal128(_, _)).then_some(Self {
            result,
            truncate,
            sum_f: 0.0,
            sum_d: 0,
            count: 0,
        })
    }

    /// Adds (`sign` 1) or takes back (-1) the valid values of `values`.
    fn add(&mut self, values: &ArrayRef, sign: i64) -> DfResult<()> {
        match self.result {
            DataType::Decimal128(_, s) => {
                let a = cast(values, &DataType::Decimal128(38, s))?;
                for v in a.as_primitive::<Decimal128Type>().iter().flatten() {
                    self.sum_d += i128::from(sign) * v;
                    self.count += sign;
                }
            }
            _ => {
                let a = cast(values, &DataType::Float64)?;
                for v in a.as_primitive::<Float64Type>().iter().flatten() {
                    self.sum_f += sign as f64 * v;
                    self.count += sign;
                }
            }
        }
        Ok(())
    }
}

impl Accumulator for RetractableAvg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.add(&values[0], 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.add(&values[0], -1)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        if self.count == 0 {
            return ScalarValue::try_from(&self.result);
        }
        Ok(match self.result {
            DataType::Decimal128(p, s) => {
                ScalarValue::Decimal128(Some(self.sum_d / i128::from(self.count)), p, s)
            }
            _ if self.truncate => {
                ScalarValue::Float64(Some((self.sum_f / self.count as f64).trunc()))
            }
            _ => ScalarValue::Float64(Some(self.sum_f / self.count as f64)),
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let sum = match self.result {
            DataType::Decimal128(_, s) => ScalarValue::Decimal128(Some(self.sum_d), 38, s),
            _ => ScalarValue::Float64(Some(self.sum_f)),
        };
        Ok(vec![sum, ScalarValue::Int64(Some(self.count))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let (Some(sums), Some(counts)) = (states.first(), states.get(1)) else {
            return Ok(());
        };
        let counts = counts.as_primitive::<Int64Type>();
        for i in 0..sums.len() {
            if sums.is_null(i) || counts.is_null(i) {
                continue;
            }
            match self.result {
                DataType::Decimal128(_, _) => {
                    self.sum_d += sums.as_primitive::<Decimal128Type>().value(i)
                }
                _ => self.sum_f += sums.as_primitive::<Float64Type>().value(i),
            }
            self.count += counts.value(i);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;

    use super::*;

    fn ints(v: &[i64]) -> Vec<ArrayRef> {
        vec![Arc::new(Int64Array::from(v.to_vec()))]
    }

    #[test]
    fn retracting_the_extreme_reveals_the_next_one() {
        let mut m = RetractableMinMax::new(true, DataType::Int64);
        m.update_batch(&ints(&[3, 9, 9, 5])).unwrap();
        assert_eq!(m.evaluate().unwrap(), ScalarValue::Int64(Some(9)));
        m.retract_batch(&ints(&[9])).unwrap();
        assert_eq!(m.evaluate().unwrap(), ScalarValue::Int64(Some(9)));
        m.retract_batch(&ints(&[9])).unwrap();
        assert_eq!(m.evaluate().unwrap(), ScalarValue::Int64(Some(5)));
        m.retract_batch(&ints(&[3, 5])).unwrap();
        assert_eq!(m.evaluate().unwrap(), ScalarValue::Int64(None));
    }

    #[test]
    fn an_average_takes_back_any_value() {
        let mut a = RetractableAvg::new(DataType::Float64, false).unwrap();
        a.update_batch(&ints(&[1, 2, 9])).unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Float64(Some(4.0)));
        a.retract_batch(&ints(&[2])).unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Float64(Some(5.0)));
        let state: Vec<ArrayRef> = a
            .state()
            .unwrap()
            .iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        let mut back = RetractableAvg::new(DataType::Float64, false).unwrap();
        back.merge_batch(&state).unwrap();
        back.retract_batch(&ints(&[1, 9])).unwrap();
        assert_eq!(back.evaluate().unwrap(), ScalarValue::Float64(None));
    }

    #[test]
    fn state_round_trips() {
        let mut m = RetractableMinMax::new(false, DataType::Int64);
        m.update_batch(&ints(&[4, 2, 2])).unwrap();
        let state = m.state().unwrap();
        let arrays: Vec<ArrayRef> = state.iter().map(|s| s.to_array().unwrap()).collect();
        let mut back = RetractableMinMax::new(false, DataType::Int64);
        back.merge_batch(&arrays).unwrap();
        back.retract_batch(&ints(&[2])).unwrap();
        assert_eq!(back.evaluate().unwrap(), ScalarValue::Int64(Some(2)));
        back.retract_batch(&ints(&[2])).unwrap();
        assert_eq!(back.evaluate().unwrap(), ScalarValue::Int64(Some(4)));
    }
}
