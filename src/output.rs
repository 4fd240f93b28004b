//! Where the rows of a bare SELECT go when run from the CLI: stdout, as JSON
//! lines (`--format json`, one object per row, as Flink's oracle prints them)
//! or as tables (`--format table`).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::FormatOptions;
use datafusion::arrow::util::pretty::pretty_format_batches_with_options;
use tokio::io::AsyncWriteExt;
use vigil_connectors::json::encode::{encode_json_lines, NonFinite};
use vigil_engine::changelog;
use vigil_engine::connector::Sink;
use vigil_engine::{EngineError, Result};

/// How query rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line, column names as keys.
    Json,
    /// Aligned tables, one per batch of results.
    Table,
}

/// Prints query rows to stdout.
pub struct StdoutSink {
    format: OutputFormat,
    buf: String,
    /// One handle for the whole query: tokio writes stdout from a blocking
    /// thread, and writes through separate handles may land out of order
    /// (rows of a later batch printed before an earlier one).
    out: tokio::io::Stdout,
}

impl StdoutSink {
    /// A sink printing in `format`.
    pub fn new(format: OutputFormat) -> Self {
        Self {
            format,
            buf: String::new(),
            out: tokio::io::stdout(),
        }
    }
}

fn io_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Connector {
        connector: "stdout".into(),
        table: "query".into(),
        message: e.to_string(),
    }
}

/// An updating result's rows with their change kind (`+I`, `-U`, ...) as a
/// first `op` column, in place of the internal `__row_kind` column.
fn with_op_column(batch: RecordBatch) -> Result<RecordBatch> {
    let Some(kinds) = changelog::kinds(&batch) else {
        return Ok(batch);
    };
    let ops: StringArray = (0..batch.num_rows())
        .map(|i| Some(changelog::kind_at(Some(kinds), i).short()))
        .collect();
    let width = changelog::data_width(batch.schema_ref());
    let mut fields = vec![Field::new("op", DataType::Utf8, false)];
    fields.extend(
        batch.schema().fields()[..width]
            .iter()
            .map(|f| f.as_ref().clone()),
    );
    let mut columns: Vec<ArrayRef> = vec![Arc::new(ops)];
    columns.extend(batch.columns()[..width].iter().cloned());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(io_err)
}

#[async_trait]
impl Sink for StdoutSink {
    fn describe(&self) -> String {
        format!("Stdout({:?})", self.format)
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.buf.clear();
        match self.format {
            OutputFormat::Json => {
                // As the Flink oracle prints rows: NaN and infinities bare.
                let failed =
                    encode_json_lines(&batch, &mut self.buf, NonFinite::Bare).map_err(io_err)?;
                for (row, error) in failed {
                    tracing::warn!(row, "a result row cannot be printed as JSON: {error}");
                }
            }
            OutputFormat::Table => {
                let options = FormatOptions::default()
                    .with_null("NULL")
                    .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.3f"));
                let batch = with_op_column(batch)?;
                let t = pretty_format_batches_with_options(&[batch], &options).map_err(io_err)?;
                self.buf.push_str(&t.to_string());
                self.buf.push('\n');
            }
        }
        self.out
            .write_all(self.buf.as_bytes())
            .await
            .map_err(io_err)?;
        // Written before the next batch (or a warning on stderr) is.
        self.out.flush().await.map_err(io_err)
    }

    async fn finish(&mut self) -> Result<()> {
        self.out.flush().await.map_err(io_err)
    }
}
