//! Rows held by reference into the batches they arrived in, and the output
//! batches built from them in one `interleave` per column.

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::SchemaRef;

use crate::error::ResultExt;
use crate::Result;

/// A row: its batch and index there.
pub type RowRef = (Arc<RecordBatch>, usize);

/// The columns of `schema` at `rows` (`None`: a NULL row, for padding).
pub fn gather(schema: &SchemaRef, rows: &[Option<&RowRef>]) -> Result<Vec<ArrayRef>> {
    let mut batches: Vec<&Arc<RecordBatch>> = vec![];
    let mut at: Vec<(usize, usize)> = Vec::with_capacity(rows.len());
    for r in rows {
        match r {
            None => at.push((0, 0)),
            Some((b, i)) => {
                let k = match batches.iter().rposition(|x| Arc::ptr_eq(x, b)) {
                    Some(k) => k,
                    None => {
                        batches.push(b);
                        batches.len() - 1
                    }
                };
                at.push((k + 1, *i));
            }
        }
    }
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(c, f)| {
            // Source 0 is one NULL of the column's type.
            let null = new_null_array(f.data_type(), 1);
            let mut sources: Vec<&dyn Array> = vec![null.as_ref()];
            sources.extend(batches.iter().map(|b| b.column(c).as_ref()));
            interleave(&sources, &at).context("join output")
        })
        .collect()
}
