//! Stateless steps behind `ORDER BY` and `LIMIT` on a stream: ordering the
//! rows of each batch (after the temporal sort, which emits a watermark's
//! rows as one batch in time order, the further sort keys order rows of one
//! time), and letting the first `n` rows through.

use std::sync::Arc;

use datafusion::arrow::compute::{lexsort_to_indices, take_record_batch, SortColumn, SortOptions};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use super::eval;
use crate::error::ResultExt;
use crate::operator::{Emitter, Operator};
use crate::state::{put_meta, saved_meta, StateEntry, StateWriter};
use crate::Result;

/// Orders the rows of each batch by its keys.
#[derive(Clone)]
pub struct SortBatch {
    keys: Vec<(Arc<dyn PhysicalExpr>, SortOptions)>,
}

impl SortBatch {
    /// Orders by `keys` (expression, direction and NULL placement), the
    /// first the most significant.
    pub fn new(keys: Vec<(Arc<dyn PhysicalExpr>, SortOptions)>) -> Self {
        Self { keys }
    }
}

impl Operator for SortBatch {
    fn name(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(|(e, _)| e.to_string()).collect();
        format!("SortBatch({})", keys.join(", "))
    }

    fn runs_per_input(&self) -> bool {
        true
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(self.clone())))
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        if batch.num_rows() < 2 {
            out.batch(batch);
            return Ok(());
        }
        let columns = self
            .keys
            .iter()
            .map(|(e, options)| {
                Ok(SortColumn {
                    values: eval(e.as_ref(), &batch, "ORDER BY")?,
                    options: Some(*options),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let order = lexsort_to_indices(&columns, None).context("ORDER BY")?;
        out.batch(take_record_batch(&batch, &order).context("ORDER BY")?);
        Ok(())
    }
}

/// Lets the first `limit` rows through, then none.
pub struct Limit {
    limit: u64,
    passed: u64,
}

impl Limit {
    /// At most `limit` rows.
    pub fn new(limit: u64) -> Self {
        Self { limit, passed: 0 }
    }
}

impl Operator for Limit {
    fn name(&self) -> String {
        format!("Limit({})", self.limit)
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("LIMIT counts the rows of the whole stream in one instance")
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let left = self.limit.saturating_sub(self.passed) as usize;
        let take = left.min(batch.num_rows());
        if take > 0 {
            self.passed += take as u64;
            out.batch(batch.slice(0, take));
        }
        Ok(())
    }

    /// How many rows went through.
    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        put_meta(w, &self.passed, "LIMIT")
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        if let Some(n) = saved_meta::<u64>(&entries, "LIMIT")? {
            self.passed = n;
        }
        Ok(())
    }
}
