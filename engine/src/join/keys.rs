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
    /// For a two-input join, the keys of the side-tagged rows the exchange
    /// in front of its parallel instances routes by (`None`: no key).
    exchange: Option<Vec<Arc<dyn PhysicalExpr>>>,
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
            exchange: None,
        })
    }

    /// The keys of a join over a side-tagged input (tag, `left_width` left
    /// columns, right columns) whose sides' key expressions are `sides`; with
    /// at least one key, the join can run as parallel instances.
    pub fn tagged(
        sides: &[Vec<Arc<dyn PhysicalExpr>>; 2],
        types: Vec<DataType>,
        left_width: usize,
        null_equal: bool,
    ) -> Result<Self> {
        let exchange = if sides[0].is_empty() {
            None
        } else {
            Some(super::tagged_key_exprs(sides, &types, left_width)?)
        };
        Ok(Self {
            exchange,
            ..Self::new(types, null_equal)?
        })
    }

    /// What the exchange in front of parallel instances routes rows by
    /// (`None`: the join has no equality key and runs once).
    pub fn exchange(&self) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        self.exchange.clone()
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
