//! The `print` connector: writes every row to stdout (or stderr) as Flink's
//! print sink does, `+I[v1, v2, ...]`, prefixed by `'print-identifier'> `.

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use tokio::io::AsyncWriteExt;
use vigil_engine::connector::{ConnectorFactory, Sink, Source, TableSpec};
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::Result;

use crate::error::connector_error;
use crate::json::encode::encode_print_rows;
use crate::options::check_options;

/// Factory for `'connector' = 'print'`.
pub struct PrintConnector;

struct PrintSink {
    table: String,
    prefix: String,
    stderr: bool,
    buf: String,
    rows: Counter,
}

#[async_trait]
impl Sink for PrintSink {
    fn describe(&self) -> String {
        format!("PrintSink({})", self.table)
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.buf.clear();
        encode_print_rows(&batch, &self.prefix, &mut self.buf).map_err(|e| {
            vigil_engine::EngineError::Connector {
                connector: "print".into(),
                table: self.table.clone(),
                message: format!("cannot format rows: {e}"),
            }
        })?;
        let res = if self.stderr {
            tokio::io::stderr().write_all(self.buf.as_bytes()).await
        } else {
            tokio::io::stdout().write_all(self.buf.as_bytes()).await
        };
        res.map_err(|e| vigil_engine::EngineError::Connector {
            connector: "print".into(),
            table: self.table.clone(),
            message: format!("cannot write: {e}"),
        })?;
        self.rows.add(batch.num_rows() as u64);
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        let _ = tokio::io::stdout().flush().await;
        Ok(())
    }
}

impl ConnectorFactory for PrintConnector {
    fn name(&self) -> &'static str {
        "print"
    }

    fn create_source(&self, spec: &TableSpec, _metrics: &Metrics) -> Result<Box<dyn Source>> {
        Err(connector_error(
            "print",
            spec,
            "the print connector is a sink only; it cannot be read",
        ))
    }

    fn accepts_updates(&self, _spec: &TableSpec) -> bool {
        true
    }

    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>> {
        check_options(
            "print",
            spec,
            &["print-identifier", "standard-error", "sink.parallelism"],
        )?;
        let prefix = spec
            .option("print-identifier")
            .map(|p| format!("{p}> "))
            .unwrap_or_default();
        let stderr = match spec.option("standard-error") {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => {
                return Err(connector_error(
                    "print",
                    spec,
                    format!("'standard-error' must be true or false, not '{v}'"),
                ))
            }
        };
        Ok(Box::new(PrintSink {
            table: spec.name.clone(),
            prefix,
            stderr,
            buf: String::new(),
            rows: metrics.counter(names::SINK_ROWS, &spec.name),
        }))
    }
}
