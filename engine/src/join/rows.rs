//! Rows held by reference into the batches they arrived in, and the output
//! batches built from them in one `interleave` per column.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;

use super::Side;
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

/// A batch of a join's input `input`, as its side's rows (under that side's
/// schema, which the join's state and output are built on).
pub fn side_batch(
    input: usize,
    batch: RecordBatch,
    schemas: &[SchemaRef; 2],
) -> Result<(Side, RecordBatch)> {
    let side = Side::of_input(input)?;
    let batch = batch_of(
        &schemas[side.index()],
        batch.columns().to_vec(),
        "join input",
    )?;
    Ok((side, batch))
}

/// What a join answers to a batch without its input: the runtime always
/// says which input a join's batch comes from.
pub fn without_input() -> EngineError {
    EngineError::Graph("a join's batch came without its input".into())
}
