//! Join keys of a side's rows in Arrow's row format, so that rows of both
//! sides compare as bytes.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::expressions::CastExpr;
use datafusion::physical_expr::PhysicalExpr;

use crate::error::ResultExt;
use crate::operators::eval;
use crate::Result;

/// Turns a side's key expressions into comparable bytes.
pub struct JoinKeys {
    types: Vec<DataType>,
    converter: RowConverter,
    null_equal: bool,
    /// Each side's keys cast to the common types, which the exchanges in
    /// front of the join's parallel instances route that side's rows by
    /// (`None`: no key).
    exchange: Option<[Vec<Arc<dyn PhysicalExpr>>; 2]>,
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

    /// The keys of a join whose sides' key expressions are `sides`
    /// (pairwise, cast to `types`); with at least one key, the join can run
    /// as parallel instances.
    pub fn for_sides(
        sides: &[Vec<Arc<dyn PhysicalExpr>>; 2],
        types: Vec<DataType>,
        null_equal: bool,
    ) -> Result<Self> {
        // Equal keys of both sides must hash alike, so each side's are cast
        // to the common type before the exchange hashes them.
        let cast_keys = |keys: &Vec<Arc<dyn PhysicalExpr>>| -> Vec<Arc<dyn PhysicalExpr>> {
            keys.iter()
                .zip(&types)
                .map(|(k, t)| Arc::new(CastExpr::new(k.clone(), t.clone(), None)) as _)
                .collect()
        };
        let exchange = if sides[0].is_empty() {
            None
        } else {
            Some([cast_keys(&sides[0]), cast_keys(&sides[1])])
        };
        Ok(Self {
            exchange,
            ..Self::new(types, null_equal)?
        })
    }

    /// What the exchange in front of parallel instances routes the rows of
    /// input `input` (0: left, 1: right) by (`None`: the join has no
    /// equality key and runs once).
    pub fn exchange(&self, input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        self.exchange.as_ref().and_then(|e| e.get(input).cloned())
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
