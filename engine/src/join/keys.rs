//! Join keys of a side's rows in Arrow's row format, so that rows of both
//! sides compare as bytes.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;

use crate::error::ResultExt;
use crate::operators::eval;
use crate::Result;

/// Turns a side's key expressions into comparable bytes.
pub struct JoinKeys {
    types: Vec<DataType>,
    converter: RowConverter,
    null_equal: bool,
}

impl JoinKeys {
    /// Keys of `types` (both sides' keys are cast to them); NULL keys match
    /// only if `null_equal`.
    pub fn new(types: Vec<DataType>, null_equal: bool) -> Result<Self> {
        let converter = RowConverter::new(types.iter().cloned().map(SortField::new).collect())
            .context("join keys")?;
        Ok(Self {
            types,
            converter,
            null_equal,
        })
    }

    /// Each row's key (`None`: a NULL key, which joins nothing).
    pub fn of(
        &self,
        exprs: &[Arc<dyn PhysicalExpr>],
        batch: &RecordBatch,
    ) -> Result<Vec<Option<Box<[u8]>>>> {
        let mut cols: Vec<ArrayRef> = vec![];
        for (e, t) in exprs.iter().zip(&self.types) {
            let a = eval(e.as_ref(), batch, "join key")?;
            cols.push(if a.data_type() == t {
                a
            } else {
                cast(&a, t).context("join key")?
            });
        }
        if cols.is_empty() {
            return Ok(vec![Some(Box::from(&[][..])); batch.num_rows()]);
        }
        let rows = self.converter.convert_columns(&cols).context("join key")?;
        Ok((0..batch.num_rows())
            .map(|i| {
                let null = cols.iter().any(|c| c.is_null(i));
                (self.null_equal || !null).then(|| Box::from(rows.row(i).data()))
            })
            .collect())
    }
}
