//! Rows held by reference into the batches they arrived in, and the output
//! batches built from them in one `interleave` per column.

use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch,
};
use datafusion::arrow::compute::{filter_record_batch, interleave};
use datafusion::arrow::datatypes::{Int8Type, SchemaRef};

use super::Side;
use crate::error::ResultExt;
use crate::operators::batch_of;
use crate::{EngineError, Result};

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

/// Splits a side-tagged batch (tag, left columns, right columns) into each
/// side's own rows, as batches of `schemas`.
pub fn split_sides(
    batch: &RecordBatch,
    schemas: &[SchemaRef; 2],
) -> Result<Vec<(Side, RecordBatch)>> {
    let tags = batch
        .column(0)
        .as_primitive_opt::<Int8Type>()
        .ok_or_else(|| EngineError::Graph("join input without its side tag".into()))?;
    let width = schemas[0].fields().len();
    let mut out = vec![];
    for side in Side::BOTH {
        let mine: BooleanArray = tags
            .iter()
            .map(|t| Some(t == Some(side.index() as i8)))
            .collect();
        let rows = filter_record_batch(batch, &mine).context("join input")?;
        if rows.num_rows() == 0 {
            continue;
        }
        let range = match side {
            Side::Left => 1..1 + width,
            Side::Right => 1 + width..rows.num_columns(),
        };
        let columns: Vec<ArrayRef> = range.map(|c| rows.column(c).clone()).collect();
        out.push((
            side,
            batch_of(&schemas[side.index()], columns, "join input")?,
        ));
    }
    Ok(out)
}
