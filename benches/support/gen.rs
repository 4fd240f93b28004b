//! `'connector' = 'bench-gen'`, the benchmarks' in-process source: rows
//! `(k, v, ts)` without decoding, so figures show the engine's own cost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, TimestampMillisecondArray};
use datafusion::arrow::record_batch::RecordBatch;
use vigil::engine::connector::{ConnectorFactory, Sink, Source, SourceContext, TableSpec};
use vigil::engine::metrics::Metrics;
use vigil::engine::{EngineError, Result};

const BATCH: u64 = 8192;
/// 2026-01-01 00:00:00 UTC.
const BASE_MS: i64 = 1_767_225_600_000;

/// `'connector' = 'bench-gen'`: rows `(k, v, ts)`, `k` cycling over `keys`,
/// `events-per-ms` rows per millisecond of event time, `rows` in all; with
/// `'hold' = 'true'` it then waits (taking part in checkpoints) until stopped.
pub struct Gen;

/// Set when a holding generator has emitted all its rows.
pub static HOLDING: AtomicBool = AtomicBool::new(false);

struct GenSource {
    spec: TableSpec,
    rows: u64,
    keys: u64,
    per_ms: u64,
    hold: bool,
    next: u64,
}

fn opt(spec: &TableSpec, key: &str) -> Result<u64> {
    spec.required("bench-gen", key)?
        .parse()
        .map_err(|_| EngineError::Graph(format!("bad '{key}'")))
}

impl ConnectorFactory for Gen {
    fn name(&self) -> &'static str {
        "bench-gen"
    }
    fn create_source(&self, spec: &TableSpec, _: &Metrics) -> Result<Box<dyn Source>> {
        Ok(Box::new(GenSource {
            spec: spec.clone(),
            rows: opt(spec, "rows")?,
            keys: opt(spec, "keys")?,
            per_ms: opt(spec, "events-per-ms")?,
            hold: spec.option("hold") == Some("true"),
            next: 0,
        }))
    }
    fn create_sink(&self, _: &TableSpec, _: &Metrics) -> Result<Box<dyn Sink>> {
        Err(EngineError::Graph("bench-gen is a source".into()))
    }
}

#[async_trait]
impl Source for GenSource {
    fn describe(&self) -> String {
        format!("Gen({})", self.spec.name)
    }
    fn supports_checkpoints(&self) -> bool {
        true
    }
    /// It runs once: one stored position.
    fn restore(&mut self, states: &[Vec<u8>]) -> Result<()> {
        for state in states {
            let b: [u8; 8] = state
                .as_slice()
                .try_into()
                .map_err(|_| EngineError::State("bad position".into()))?;
            self.next = u64::from_be_bytes(b);
        }
        Ok(())
    }
    async fn run(mut self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let schema = self.spec.schema.clone();
        while self.next < self.rows && !ctx.stop.is_stopped() {
            let n = BATCH.min(self.rows - self.next);
            let i0 = self.next;
            // The columns the query reads (the planner may leave some out).
            let columns: Vec<ArrayRef> = schema
                .fields()
                .iter()
                .map(|f| -> ArrayRef {
                    match f.name().as_str() {
                        "k" => Arc::new(Int64Array::from_iter_values(
                            (i0..i0 + n).map(|i| (i % self.keys) as i64),
                        )),
                        "v" => Arc::new(Int64Array::from_iter_values(
                            (i0..i0 + n).map(|i| (i % 1000) as i64),
                        )),
                        _ => Arc::new(TimestampMillisecondArray::from_iter_values(
                            (i0..i0 + n).map(|i| BASE_MS + (i / self.per_ms) as i64),
                        )),
                    }
                })
                .collect();
            let batch = RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| EngineError::Graph(e.to_string()))?;
            ctx.emit(batch).await?;
            self.next += n;
            if let Some(id) = ctx.checkpoint_due() {
                ctx.barrier(id, self.next.to_be_bytes().to_vec()).await?;
            }
        }
        if self.hold {
            HOLDING.store(true, Ordering::SeqCst);
            let mut stop = ctx.stop.clone();
            loop {
                tokio::select! {
                    _ = stop.stopped() => break,
                    id = ctx.checkpoint_requested() => {
                        ctx.barrier(id, self.next.to_be_bytes().to_vec()).await?;
                    }
                }
            }
        }
        Ok(())
    }
}
