//! Rows held by reference into the batches they arrived in, and the output
//! batches built from them in one `interleave` per column.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Int8Type, SchemaRef};

use super::Side;
use crate::error::ResultExt;
use crate::operators::{batch_of, gather_cells};
use crate::{EngineError, Result};

/// A row: its batch and index there.
pub type RowRef = (Arc<RecordBatch>, usize);

/// The columns of `schema` at `rows` (`None`: a NULL row, for padding).
pub fn gather(schema: &SchemaRef, rows: &[Option<&RowRef>]) -> Result<Vec<ArrayRef>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(c, f)| {
            let cells = rows.iter().map(|r| r.map(|(b, i)| (b.column(c), *i)));
            gather_cells(f.data_type(), cells)?.ok_or_else(|| {
                EngineError::Graph(format!("join: column {} changed type", f.name()))
            })
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
