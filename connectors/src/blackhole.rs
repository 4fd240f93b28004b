//! The `blackhole` connector: a sink that discards every row.

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use vigil_engine::connector::{ConnectorFactory, Sink, Source, TableSpec};
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::Result;

use crate::error::connector_error;
use crate::options::check_options;

/// Factory for `'connector' = 'blackhole'`.
pub struct BlackholeConnector;

struct BlackholeSink {
    rows: Counter,
}

#[async_trait]
impl Sink for BlackholeSink {
    fn describe(&self) -> String {
        "BlackholeSink".into()
    }
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.rows.add(batch.num_rows() as u64);
        Ok(())
    }
    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

impl ConnectorFactory for BlackholeConnector {
    fn name(&self) -> &'static str {
        "blackhole"
    }
    fn create_source(&self, spec: &TableSpec, _metrics: &Metrics) -> Result<Box<dyn Source>> {
        Err(connector_error(
            "blackhole",
            spec,
            "the blackhole connector is a sink only; it cannot be read",
        ))
    }
    fn accepts_updates(&self, _spec: &TableSpec) -> bool {
        true
    }

    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>> {
        check_options("blackhole", spec, &[])?;
        Ok(Box::new(BlackholeSink {
            rows: metrics.counter(names::SINK_ROWS, &spec.name),
        }))
    }
}
