//! Expand (Flink's `Expand` before a GROUP BY with GROUPING SETS, ROLLUP or
//! CUBE without a window): each row once per grouping set, with the group
//! keys the set leaves out set to NULL and the set's grouping id, so that
//! one keyed aggregation over all keys and the id computes every set.

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;

use super::eval;
use crate::error::ResultExt;
use crate::operator::{Emitter, Operator};
use crate::Result;

/// One grouping set: which keys it leaves out, and its grouping id.
#[derive(Clone, Debug)]
pub struct GroupingSet {
    /// Per key, whether this set sets it to NULL.
    pub nulls: Vec<bool>,
    /// The `__grouping_id` of its rows.
    pub id: ScalarValue,
}

/// Emits each row once per grouping set: the input's data columns, the keys
/// (NULL where the set leaves one out), the grouping id, then the input's
/// row kind if it has one.
#[derive(Clone)]
pub struct Expand {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    sets: Vec<GroupingSet>,
    data_width: usize,
    schema: SchemaRef,
}

impl Expand {
    /// Expands the first `data_width` columns of each batch by `sets` of
    /// `keys` into `schema`.
    pub fn new(
        keys: Vec<Arc<dyn PhysicalExpr>>,
        sets: Vec<GroupingSet>,
        data_width: usize,
        schema: SchemaRef,
    ) -> Self {
        Self {
            keys,
            sets,
            data_width,
            schema,
        }
    }
}

impl Operator for Expand {
    fn runs_per_input(&self) -> bool {
        true
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(self.clone())))
    }

    fn name(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(|e| e.to_string()).collect();
        format!("Expand({} sets of [{}])", self.sets.len(), keys.join(", "))
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let n = batch.num_rows();
        let keys = self
            .keys
            .iter()
            .map(|k| eval(k.as_ref(), &batch, "grouping key"))
            .collect::<Result<Vec<_>>>()?;
        let data = &batch.columns()[..self.data_width.min(batch.num_columns())];
        let kind = batch.columns().get(self.data_width);
        let mut copies = Vec::with_capacity(self.sets.len());
        for set in &self.sets {
            let mut columns: Vec<ArrayRef> = data.to_vec();
            for (k, null) in keys.iter().zip(&set.nulls) {
                columns.push(if *null {
                    new_null_array(k.data_type(), n)
                } else {
                    k.clone()
                });
            }
            columns.push(set.id.to_array_of_size(n).context("grouping id")?);
            columns.extend(kind.cloned());
            copies.push(RecordBatch::try_new(self.schema.clone(), columns).context("expand")?);
        }
        out.batch(concat_batches(&self.schema, &copies).context("expand")?);
        Ok(())
    }
}
