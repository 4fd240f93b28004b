//! MIN and MAX over an updating input. DataFusion's accumulators forget the
//! values behind the current extreme (its sliding variants retract only the
//! oldest value, as a window slides), but a retraction may take back any
//! value; like Flink's `MaxWithRetractAggFunction`, this one counts every
//! value it holds.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
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
