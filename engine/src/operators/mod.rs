//! Stateless operators (projection, filter, unnest), the watermark assigner
//! and the processing-time clock.

pub mod expand;
pub mod filter;
pub mod proctime_clock;
pub mod project;
pub mod sort;
pub mod unnest;
pub mod watermark;

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::HashMap;
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

/// One array of type `t` from cells of other arrays (`None`: NULL), in one
/// `interleave`; `None` when a cell's array is of another type.
pub fn gather_cells<'a>(
    t: &DataType,
    cells: impl Iterator<Item = Option<(&'a ArrayRef, usize)>>,
) -> Result<Option<ArrayRef>> {
    // Source 0 is one NULL, for cells that are not there.
    let null = new_null_array(t, 1);
    let mut sources: Vec<&dyn Array> = vec![null.as_ref()];
    // Each distinct array once, found by address (rows read back from state
    // may each be in an array of their own: a linear search would be
    // quadratic); consecutive cells of one array skip the lookup.
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut last: Option<(usize, usize)> = None;
    let mut at: Vec<(usize, usize)> = vec![];
    for cell in cells {
        let Some((a, i)) = cell else {
            at.push((0, 0));
            continue;
        };
        let addr = Arc::as_ptr(a) as *const () as usize;
        let k = match last {
            Some((l, k)) if l == addr => k,
            _ => match index.get(&addr) {
                Some(k) => *k,
                None => {
                    if a.data_type() != t {
                        return Ok(None);
                    }
                    sources.push(a.as_ref());
                    index.insert(addr, sources.len() - 1);
                    sources.len() - 1
                }
            },
        };
        last = Some((addr, k));
        at.push((k, i));
    }
    interleave(&sources, &at)
        .map(Some)
        .context("gathering rows")
}
