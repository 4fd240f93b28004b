//! The latest rows of a served job's queries (its bare SELECTs), kept for
//! `vigil results`: at most [`KEPT`] rows, as JSON objects.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use vigil_connectors::json::encode::{encode_json_lines, NonFinite};
use vigil_engine::connector::Sink;
use vigil_engine::{EngineError, Result};

/// How many rows are kept.
pub const KEPT: usize = 200;

/// A job's latest result rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Results {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// The latest rows, oldest first (JSON objects; a change other than an
    /// insert has `"_op"`).
    #[schema(value_type = Vec<Object>)]
    pub rows: VecDeque<serde_json::Value>,
    /// Rows seen in all.
    pub total: u64,
}

/// A sink keeping the latest rows in [`Results`].
pub struct ResultsSink {
    results: Arc<Mutex<Results>>,
    buf: String,
}

impl ResultsSink {
    /// A sink into `results`.
    pub fn new(results: Arc<Mutex<Results>>) -> Self {
        Self {
            results,
            buf: String::new(),
        }
    }
}

#[async_trait]
impl Sink for ResultsSink {
    fn describe(&self) -> String {
        "Results".into()
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.buf.clear();
        let failed = encode_json_lines(&batch, &mut self.buf, NonFinite::Quoted).map_err(|e| {
            EngineError::Connector {
                connector: "results".into(),
                table: "query".into(),
                message: e.to_string(),
            }
        })?;
        for (row, error) in failed {
            tracing::warn!(row, "a result row cannot be shown as JSON: {error}");
        }
        let width = vigil_engine::changelog::data_width(batch.schema_ref());
        let mut r = self.results.lock().unwrap_or_else(|p| p.into_inner());
        if r.columns.is_empty() {
            r.columns = batch.schema().fields()[..width]
                .iter()
                .map(|f| f.name().clone())
                .collect();
        }
        for line in self.buf.lines() {
            if let Ok(v) = serde_json::from_str(line) {
                r.rows.push_back(v);
                r.total += 1;
            }
        }
        while r.rows.len() > KEPT {
            r.rows.pop_front();
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
