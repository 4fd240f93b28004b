//! Stateless operators (projection, filter) and the watermark assigner.

pub mod filter;
pub mod project;
pub mod watermark;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::error::ResultExt;
use crate::Result;

/// Evaluates `expr` over `batch` into an array with one value per row.
pub fn eval(expr: &dyn PhysicalExpr, batch: &RecordBatch, context: &str) -> Result<ArrayRef> {
    expr.evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .context(context)
}
