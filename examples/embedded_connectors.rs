//! A job binary embedding Vigil with a source and a sink of its own: a
//! generator of temperature readings (a `thermo` connector) and a sink that
//! raises alerts through the program's own code (an `alert` connector). The
//! SQL in between is Vigil's: an average per sensor over 1-second windows.
//!
//!     cargo run --example embedded_connectors
//!
//! Sources and sinks implement `vigil::engine::connector::{Source, Sink}`
//! and are made by a `ConnectorFactory` registered under a connector name.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, Float64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::Float64Type;
use datafusion::arrow::record_batch::RecordBatch;
use vigil::engine::connector::{ConnectorFactory, Sink, Source, SourceContext, TableSpec};
use vigil::engine::metrics::Metrics;
use vigil::engine::{EngineError, Result};
use vigil::{OutputFormat, Vigil};

/// Readings of three sensors, one every 10 ms of event time, sensor `s2`
/// overheating in the second half.
struct Thermo {
    spec: TableSpec,
    readings: usize,
}

#[async_trait]
impl Source for Thermo {
    fn describe(&self) -> String {
        format!("Thermo({} readings)", self.readings)
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let start = 1_767_225_600_000i64;
        for chunk in (0..self.readings).collect::<Vec<_>>().chunks(100) {
            let sensors: StringArray = chunk.iter().map(|i| Some(format!("s{}", i % 3))).collect();
            let temps: Float64Array = chunk
                .iter()
                .map(|i| {
                    let hot = i % 3 == 2 && *i > self.readings / 2;
                    Some(if hot { 85.0 } else { 20.0 } + (i % 7) as f64)
                })
                .collect();
            let times: TimestampMillisecondArray =
                chunk.iter().map(|i| Some(start + *i as i64 * 10)).collect();
            let batch = RecordBatch::try_new(
                self.spec.schema.clone(),
                vec![Arc::new(sensors), Arc::new(temps), Arc::new(times)],
            )
            .map_err(|e| EngineError::Graph(e.to_string()))?;
            ctx.emit(batch).await?;
        }
        Ok(())
    }
}

/// Prints an alert for each row (a real program would page someone).
struct Alert;

#[async_trait]
impl Sink for Alert {
    fn describe(&self) -> String {
        "Alert".into()
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let sensors = batch.column(0).as_string::<i32>();
        let temps = batch.column(1).as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            println!(
                "ALERT sensor {} averaged {:.1} °C",
                sensors.value(i),
                temps.value(i)
            );
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// `'connector' = 'thermo'` (source) and `'connector' = 'alert'` (sink).
struct Connectors(&'static str);

impl ConnectorFactory for Connectors {
    fn name(&self) -> &'static str {
        self.0
    }
    fn create_source(&self, spec: &TableSpec, _: &Metrics) -> Result<Box<dyn Source>> {
        let readings = spec
            .option("readings")
            .unwrap_or("3000")
            .parse()
            .unwrap_or(3000);
        Ok(Box::new(Thermo {
            spec: spec.clone(),
            readings,
        }))
    }
    fn create_sink(&self, _: &TableSpec, _: &Metrics) -> Result<Box<dyn Sink>> {
        Ok(Box::new(Alert))
    }
}

const SCRIPT: &str = "
CREATE TABLE readings (sensor_id STRING, temperature DOUBLE, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '100' MILLISECOND)
WITH ('connector' = 'thermo', 'readings' = '3000');
CREATE TABLE alerts (sensor_id STRING, avg_temperature DOUBLE) WITH ('connector' = 'alert');
INSERT INTO alerts
SELECT sensor_id, AVG(temperature) FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY sensor_id, window_start, window_end HAVING AVG(temperature) > 80;
";

#[tokio::main]
async fn main() -> std::result::Result<(), String> {
    let mut vigil = Vigil::new();
    vigil
        .registry_mut()
        .register(Arc::new(Connectors("thermo")));
    vigil.registry_mut().register(Arc::new(Connectors("alert")));
    let summary = vigil
        .run_script(SCRIPT, OutputFormat::Table)
        .await
        .map_err(|e| match e {
            vigil::Error::Sql(e) => e.render("SCRIPT", SCRIPT),
            e => e.to_string(),
        })?;
    eprintln!("done ({} late rows dropped)", summary.late_rows_dropped);
    Ok(())
}
