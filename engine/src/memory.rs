//! A bounded source of batches held in memory (constant subqueries, tests,
//! embedding).

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::connector::{Source, SourceContext};
use crate::Result;

/// Emits the given batches, then ends.
pub struct MemorySource {
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
}

impl MemorySource {
    /// A source of `batches`, all of `schema`.
    pub fn new(batches: Vec<RecordBatch>, schema: SchemaRef) -> Self {
        Self { batches, schema }
    }
}

#[async_trait]
impl Source for MemorySource {
    fn describe(&self) -> String {
        let rows: usize = self.batches.iter().map(|b| b.num_rows()).sum();
        format!(
            "MemorySource({rows} rows, {} columns)",
            self.schema.fields().len()
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        for b in self.batches {
            ctx.emit(b).await?;
        }
        Ok(())
    }
}
