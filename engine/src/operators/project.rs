//! Projection: evaluates a list of expressions over each batch.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_expr::PhysicalExpr;

use super::eval;
use crate::error::ResultExt;
use crate::operator::{Emitter, Operator};
use crate::Result;

/// Computes `exprs` for every row; the output has `schema`.
#[derive(Clone)]
pub struct Project {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl Project {
    /// A projection producing `schema` (one field per expression).
    pub fn new(exprs: Vec<Arc<dyn PhysicalExpr>>, schema: SchemaRef) -> Self {
        Self { exprs, schema }
    }
}

impl Operator for Project {
    fn runs_per_input(&self) -> bool {
        true
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(self.clone())))
    }

    fn name(&self) -> String {
        let exprs: Vec<String> = self.exprs.iter().map(|e| e.to_string()).collect();
        format!("Project({})", exprs.join(", "))
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let columns = self
            .exprs
            .iter()
            .map(|e| eval(e.as_ref(), &batch, "projection"))
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .context("projection")?;
        out.batch(batch);
        Ok(())
    }
}
