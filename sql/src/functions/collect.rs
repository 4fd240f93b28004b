//! Flink's `COLLECT(x)`: the multiset of a group's non-NULL values, as a
//! `MULTISET<T>`, which Vigil holds as Flink's JSON format writes it: a map
//! from each distinct value to how many times it occurs (`MAP<T, INT NOT
//! NULL>`). Retractable, so it also serves an updating GROUP BY; a value
//! whose count falls to zero leaves the multiset.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, MapArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int32Type};
use datafusion::common::{exec_err, HashMap, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use crate::types::map_type;

/// The `collect` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Collect {
    signature: Signature,
}

/// `COLLECT(x)`.
pub fn collect_aggregate() -> AggregateUDF {
    AggregateUDF::from(Collect {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for Collect {
    fn name(&self) -> &str {
        "collect"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => Ok(map_type(t.clone(), DataType::Int32, false)),
            _ => exec_err!("COLLECT takes one argument"),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(e) = args.exprs.first() else {
            return exec_err!("COLLECT takes one argument");
        };
        Ok(Box::new(Multiset {
            element: e.data_type(args.schema)?,
            counts: HashMap::new(),
            order: vec![],
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let element = args
            .input_fields
            .first()
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Null);
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[values]", args.name),
                DataType::List(Arc::new(Field::new_list_field(element, true))),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[counts]", args.name),
                DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))),
                true,
            )),
        ])
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.accumulator(args)
    }
}

/// The distinct values with their counts, in order of first arrival.
#[derive(Debug)]
struct Multiset {
    element: DataType,
    counts: HashMap<ScalarValue, i32>,
    order: Vec<ScalarValue>,
}

impl Multiset {
    fn add(&mut self, value: ScalarValue, by: i32) {
        if value.is_null() {
            return;
        }
        let count = self.counts.entry(value.clone()).or_insert_with(|| {
            self.order.push(value);
            0
        });
        *count += by;
    }

    /// The values still counted, in order; forgets the others.
    fn current(&mut self) -> Vec<(ScalarValue, i32)> {
        let counts = &self.counts;
        self.order.retain(|v| counts.get(v).is_some_and(|c| *c > 0));
        self.counts.retain(|_, c| *c > 0);
        self.order
            .iter()
            .map(|v| (v.clone(), self.counts.get(v).copied().unwrap_or(0)))
            .collect()
    }
}

impl Accumulator for Multiset {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return Ok(());
        };
        for i in 0..a.len() {
            if a.is_valid(i) {
                self.add(ScalarValue::try_from_array(a, i)?, 1);
            }
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return Ok(());
        };
        for i in 0..a.len() {
            if a.is_valid(i) {
                self.add(ScalarValue::try_from_array(a, i)?, -1);
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let current = self.current();
        let keys = if current.is_empty() {
            datafusion::arrow::array::new_empty_array(&self.element)
        } else {
            ScalarValue::iter_to_array(current.iter().map(|(v, _)| v.clone()))?
        };
        let counts: ArrayRef = Arc::new(Int32Array::from_iter_values(
            current.iter().map(|(_, c)| *c),
        ));
        let DataType::Map(entries, sorted) = map_type(self.element.clone(), DataType::Int32, false)
        else {
            return exec_err!("COLLECT: not a map type");
        };
        let DataType::Struct(fields) = entries.data_type() else {
            return exec_err!("COLLECT: map entries are not a struct");
        };
        let fields: Fields = fields.clone();
        let keys = datafusion::arrow::compute::cast(&keys, fields[0].data_type())?;
        let struct_array = StructArray::try_new(fields, vec![keys, counts], None)?;
        let map = MapArray::try_new(
            entries,
            OffsetBuffer::from_lengths([current.len()]),
            struct_array,
            None,
            sorted,
        )?;
        Ok(ScalarValue::Map(Arc::new(map)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.order.iter().map(|v| 2 * v.size() + 8).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let current = self.current();
        let values: Vec<ScalarValue> = current.iter().map(|(v, _)| v.clone()).collect();
        let counts: Vec<ScalarValue> = current
            .iter()
            .map(|(_, c)| ScalarValue::Int32(Some(*c)))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.element)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::Int32)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, counts] = states else {
            return exec_err!("COLLECT: its state has two columns");
        };
        let (values, counts) = (values.as_list::<i32>(), counts.as_list::<i32>());
        for i in 0..values.len() {
            if values.is_null(i) || counts.is_null(i) {
                continue;
            }
            let (v, c) = (values.value(i), counts.value(i));
            let c = c.as_primitive::<Int32Type>();
            for j in 0..v.len().min(c.len()) {
                self.add(ScalarValue::try_from_array(&v, j)?, c.value(j));
            }
        }
        Ok(())
    }
}
