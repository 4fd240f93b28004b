//! A `collect` sink for tests: rows written to a table with
//! `'connector' = 'collect', 'name' = 'x'` are kept in memory as JSON objects,
//! readable while the job runs with [`rows`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use vigil::engine::connector::{ConnectorFactory, Sink, Source, TableSpec};
use vigil::engine::metrics::Metrics;
use vigil::engine::{EngineError, Result};

type Store = Mutex<HashMap<String, Vec<serde_json::Value>>>;

fn store() -> &'static Store {
    static S: OnceLock<Store> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// The rows collected so far under `name`.
pub fn rows(name: &str) -> Vec<serde_json::Value> {
    store()
        .lock()
        .map(|s| s.get(name).cloned().unwrap_or_default())
        .unwrap_or_default()
}

/// The `collect` connector (sink only).
pub struct Collect;

struct CollectSink {
    name: String,
}

impl ConnectorFactory for Collect {
    fn name(&self) -> &'static str {
        "collect"
    }
    fn create_source(&self, spec: &TableSpec, _: &Metrics) -> Result<Box<dyn Source>> {
        Err(EngineError::Connector {
            connector: "collect".into(),
            table: spec.name.clone(),
            message: "collect is a sink".into(),
        })
    }
    /// Updating results keep their `__row_kind` (0 +I, 1 -U, 2 +U, 3 -D).
    fn accepts_updates(&self, _: &TableSpec) -> bool {
        true
    }
    fn create_sink(&self, spec: &TableSpec, _: &Metrics) -> Result<Box<dyn Sink>> {
        Ok(Box::new(CollectSink {
            name: spec.option("name").unwrap_or(&spec.name).to_string(),
        }))
    }
}

#[async_trait]
impl Sink for CollectSink {
    fn describe(&self) -> String {
        format!("Collect({})", self.name)
    }
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let mut buf = Vec::new();
        {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
            w.write(&batch)
                .map_err(|e| EngineError::Graph(e.to_string()))?;
            w.finish().map_err(|e| EngineError::Graph(e.to_string()))?;
        }
        let mut s = store()
            .lock()
            .map_err(|e| EngineError::Graph(e.to_string()))?;
        let v = s.entry(self.name.clone()).or_default();
        for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            v.push(serde_json::from_slice(line).map_err(|e| EngineError::Graph(e.to_string()))?);
        }
        Ok(())
    }
    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Vigil with the `collect` connector added.
pub fn vigil() -> vigil::Vigil {
    let mut v = vigil::Vigil::new();
    v.registry_mut().register(Arc::new(Collect));
    v
}
