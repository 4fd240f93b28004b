//! Filter: keeps the rows for which a predicate is TRUE (NULL counts as false).

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use super::eval;
use crate::error::ResultExt;
use crate::operator::{Emitter, Operator};
use crate::{EngineError, Result};

/// Keeps the rows where `predicate` is TRUE.
#[derive(Clone)]
pub struct Filter {
    predicate: Arc<dyn PhysicalExpr>,
}

impl Filter {
    /// A filter on a boolean expression.
    pub fn new(predicate: Arc<dyn PhysicalExpr>) -> Self {
        Self { predicate }
    }
}

impl Operator for Filter {
    fn runs_per_input(&self) -> bool {
        true
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(self.clone())))
    }

    fn name(&self) -> String {
        format!("Filter({})", self.predicate)
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let mask = eval(self.predicate.as_ref(), &batch, "filter")?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| {
                EngineError::Graph(format!(
                    "filter predicate {} is not boolean",
                    self.predicate
                ))
            })?;
        if mask.true_count() == batch.num_rows() {
            out.batch(batch);
            return Ok(());
        }
        // filter_record_batch treats NULL as false already; keep that explicit
        // for masks with nulls by comparing with TRUE.
        let filtered = if mask.null_count() > 0 {
            let t = BooleanArray::new_scalar(true);
            let m = eq(mask, &t).context("filter")?;
            filter_record_batch(&batch, &m)
        } else {
            filter_record_batch(&batch, mask)
        }
        .context("filter")?;
        out.batch(filtered);
        Ok(())
    }
}
