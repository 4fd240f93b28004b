//! A job binary embedding Vigil with functions of its own: a scalar function
//! (`price_band`) and an aggregate (`spread`: max - min), used from SQL over
//! the bids of examples/data, with the job's metrics on a Prometheus endpoint.
//!
//!     cargo run --example embedded_functions
//!
//! Any DataFusion `ScalarUDF` or `AggregateUDF` can be registered this way.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{create_udaf, create_udf, Accumulator, ColumnarValue, Volatility};
use vigil::engine::control::stop_channel;
use vigil::engine::metrics::Metrics;
use vigil::{RunOptions, StdoutSink, Vigil};

/// `price_band(price)`: 'low' under 2, 'mid' under 5, else 'high'.
fn price_band(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    let prices = cast(&args[0].to_array(1)?, &DataType::Float64)?;
    let bands: StringArray = prices
        .as_primitive::<Float64Type>()
        .iter()
        .map(|p| {
            p.map(|p| match p {
                p if p < 2.0 => "low",
                p if p < 5.0 => "mid",
                _ => "high",
            })
        })
        .collect();
    Ok(ColumnarValue::Array(Arc::new(bands) as ArrayRef))
}

/// The spread of a group's values: max - min.
#[derive(Debug, Default)]
struct Spread {
    min: Option<f64>,
    max: Option<f64>,
}

impl Accumulator for Spread {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion::error::Result<()> {
        let v = cast(&values[0], &DataType::Float64)?;
        for x in v.as_primitive::<Float64Type>().iter().flatten() {
            self.min = Some(self.min.map_or(x, |m| m.min(x)));
            self.max = Some(self.max.map_or(x, |m| m.max(x)));
        }
        Ok(())
    }
    fn evaluate(&mut self) -> datafusion::error::Result<ScalarValue> {
        Ok(ScalarValue::Float64(
            self.max.zip(self.min).map(|(a, b)| a - b),
        ))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> datafusion::error::Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(self.min),
            ScalarValue::Float64(self.max),
        ])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion::error::Result<()> {
        self.update_batch(&states[0..1])?;
        self.update_batch(&states[1..2])
    }
}

const SCRIPT: &str = "
CREATE TABLE Bid (bidtime TIMESTAMP(3), price DECIMAL(10, 2), item STRING, supplier_id STRING,
  WATERMARK FOR bidtime AS bidtime - INTERVAL '1' SECOND)
WITH ('connector' = 'filesystem', 'path' = 'examples/data/bids.jsonl', 'format' = 'json');
SELECT window_end, price_band(price) AS band, COUNT(*) AS bids, spread(price) AS spread
FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end, price_band(price);
";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut vigil = Vigil::new();
    vigil.register_udf(create_udf(
        "price_band",
        vec![DataType::Decimal128(10, 2)],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(price_band),
    ));
    vigil.register_udaf(create_udaf(
        "spread",
        vec![DataType::Float64],
        Arc::new(DataType::Float64),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Spread::default()))),
        Arc::new(vec![DataType::Float64, DataType::Float64]),
    ));
    // The job's counters on a Prometheus endpoint while it runs.
    let metrics = Metrics::new();
    let (handle, stop) = stop_channel();
    let addr = vigil::server::serve_metrics(
        "127.0.0.1:0".parse()?,
        "embedded_functions",
        metrics.clone(),
        stop.clone(),
    )
    .await?;
    eprintln!("metrics on http://{addr}/metrics");
    let summary = vigil
        .run_script_into(
            SCRIPT,
            &|| Box::new(StdoutSink::new(vigil::OutputFormat::Table)),
            &metrics,
            stop,
            &RunOptions::default(),
        )
        .await
        .map_err(|e| match e {
            vigil::Error::Sql(e) => e.render("SCRIPT", SCRIPT),
            e => e.to_string(),
        })?;
    handle.stop();
    eprintln!("read {} rows", summary.rows_read);
    Ok(())
}
