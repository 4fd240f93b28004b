//! JSON-lines file sink: writes `part-0.json` into the directory named by
//! `'path'` (created if missing), as Flink's filesystem sink writes part files.

use std::path::PathBuf;

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use tokio::io::AsyncWriteExt;
use vigil_engine::connector::{Sink, TableSpec};
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::{EngineError, Result};

use super::local_path;
use crate::json::encode::encode_json_lines;

/// Writes rows as JSON lines.
pub struct FileSink {
    table: String,
    dir: PathBuf,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    buf: String,
    rows: Counter,
}

impl FileSink {
    /// Prepares the sink; the file is created on first write.
    pub fn new(spec: &TableSpec, metrics: &Metrics) -> Result<Self> {
        Ok(Self {
            table: spec.name.clone(),
            dir: local_path(spec)?,
            file: None,
            buf: String::new(),
            rows: metrics.counter(names::SINK_ROWS, &spec.name),
        })
    }

    fn error(&self, message: String) -> EngineError {
        EngineError::Connector {
            connector: "filesystem".into(),
            table: self.table.clone(),
            message,
        }
    }

    async fn open(&mut self) -> Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
            self.error(format!(
                "cannot create directory '{}': {e}",
                self.dir.display()
            ))
        })?;
        let path = self.dir.join("part-0.json");
        let f = tokio::fs::File::create(&path)
            .await
            .map_err(|e| self.error(format!("cannot create '{}': {e}", path.display())))?;
        self.file = Some(tokio::io::BufWriter::new(f));
        Ok(())
    }
}

#[async_trait]
impl Sink for FileSink {
    fn describe(&self) -> String {
        format!("FileSink({}: {})", self.table, self.dir.display())
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.open().await?;
        self.buf.clear();
        encode_json_lines(&batch, &mut self.buf)
            .map_err(|e| self.error(format!("cannot encode rows: {e}")))?;
        let res = match &mut self.file {
            Some(f) => f.write_all(self.buf.as_bytes()).await,
            None => Ok(()),
        };
        res.map_err(|e| self.error(format!("cannot write: {e}")))?;
        self.rows.add(batch.num_rows() as u64);
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        // An empty result still leaves an (empty) output file, so readers find one.
        self.open().await?;
        let res = match &mut self.file {
            Some(f) => f.flush().await,
            None => Ok(()),
        };
        res.map_err(|e| self.error(format!("cannot flush: {e}")))
    }
}
