//! Stateless operators (projection, filter) and the watermark assigner.

pub mod filter;
pub mod project;
pub mod watermark;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
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

/// A batch of `schema` from `columns`, casting a column whose type differs
/// from its field's (e.g. group values or navigation results computed with a
/// narrower type).
pub fn batch_of(schema: &SchemaRef, columns: Vec<ArrayRef>, context: &str) -> Result<RecordBatch> {
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                datafusion::arrow::compute::cast(&c, f.data_type()).context(context)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), columns).context(context)
}
