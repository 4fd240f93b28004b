//! Unnest: each input row once per element of its array column(s), as
//! Flink's `CROSS JOIN UNNEST(array)`. Several arrays unnest side by side
//! (the shorter padded with NULL); a row whose arrays are all NULL or empty
//! yields nothing. Stateless: one instance per input subtask.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Builder};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::batch_of;
use crate::error::ResultExt;
use crate::operator::{Emitter, Operator};
use crate::{EngineError, Result};

/// Unnests the array columns of each batch.
#[derive(Clone)]
pub struct Unnest {
    /// For each output column, the input column it comes from.
    sources: Vec<usize>,
    /// The input columns whose arrays are unnested.
    lists: Vec<usize>,
    schema: SchemaRef,
}

impl Unnest {
    /// Output column `j` is input column `sources[j]`: its elements if that
    /// column is one of `lists`, else its value repeated per element.
    pub fn new(sources: Vec<usize>, lists: Vec<usize>, schema: SchemaRef) -> Self {
        Self {
            sources,
            lists,
            schema,
        }
    }
}

/// A list column as `List` (a `LargeList` or `FixedSizeList` cast to it).
fn as_list(a: &ArrayRef) -> Result<ArrayRef> {
    match a.data_type() {
        DataType::List(_) => Ok(a.clone()),
        DataType::LargeList(f) | DataType::FixedSizeList(f, _) => cast(
            a,
            &DataType::List(Arc::new(Field::new("element", f.data_type().clone(), true))),
        )
        .context("unnest"),
        other => Err(EngineError::Graph(format!(
            "UNNEST needs an ARRAY, not {other}"
        ))),
    }
}

impl Operator for Unnest {
    fn runs_per_input(&self) -> bool {
        true
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(self.clone())))
    }

    fn name(&self) -> String {
        format!("Unnest(columns {:?})", self.lists)
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let lists = self
            .lists
            .iter()
            .map(|i| as_list(batch.column(*i)))
            .collect::<Result<Vec<_>>>()?;
        let lists: Vec<_> = lists.iter().map(|l| l.as_list::<i32>()).collect();
        // Which input row each output row repeats, and which element of each
        // list it carries (NULL past a shorter list's end).
        let mut rows = UInt32Builder::new();
        let mut elements: Vec<UInt32Builder> = lists.iter().map(|_| UInt32Builder::new()).collect();
        for i in 0..batch.num_rows() {
            let len = |l: &&datafusion::arrow::array::ListArray| {
                if l.is_null(i) {
                    0
                } else {
                    l.value_length(i) as usize
                }
            };
            let n = lists.iter().map(len).max().unwrap_or(0);
            for j in 0..n {
                rows.append_value(i as u32);
                for (l, e) in lists.iter().zip(elements.iter_mut()) {
                    if j < len(l) {
                        e.append_value(l.value_offsets()[i] as u32 + j as u32);
                    } else {
                        e.append_null();
                    }
                }
            }
        }
        let rows = rows.finish();
        if rows.is_empty() {
            return Ok(());
        }
        let elements: Vec<_> = elements.iter_mut().map(|e| e.finish()).collect();
        let columns = self
            .sources
            .iter()
            .map(|src| match self.lists.iter().position(|l| l == src) {
                Some(k) => take(lists[k].values().as_ref(), &elements[k], None),
                None => take(batch.column(*src).as_ref(), &rows, None),
            })
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()
            .context("unnest")?;
        out.batch(batch_of(&self.schema, columns, "unnest")?);
        Ok(())
    }
}
