//! The `metrics` sink: the rows of a (window) query as Prometheus gauges.
//! Each row sets, for its label columns' values, one gauge per numeric
//! column (`metric.name`, or `metric.name_<column>` when there are several)
//! and, if the row has a `window_end`, `metric.name_window_end_timestamp_seconds`.
//! A label set keeps the row of its latest window; `-D` rows of an updating
//! result remove it. The series live in a process-wide [`SeriesStore`] that
//! `vigil serve` renders on `/metrics` and charts on its dashboard; at most
//! `metrics.max-series` label sets are kept per metric, the least recently
//! updated dropped first (and counted).

pub mod store;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use vigil_engine::changelog::{self, RowKind};
use vigil_engine::connector::{ConnectorFactory, Sink, Source, TableSpec};
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::{EngineError, Result};

pub use store::{series_store, Point, SeriesKey, SeriesStore};

use crate::error::connector_error;
use crate::options::check_options;

/// Factory for `'connector' = 'metrics'`.
pub struct MetricsConnector;

const OPTIONS: &[&str] = &["metric.name", "metric.help", "labels", "metrics.max-series"];

/// Whether `name` is a valid Prometheus metric or label name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

struct MetricsSink {
    table: String,
    job: String,
    metric: String,
    help: String,
    label_cols: Vec<(usize, String)>,
    value_cols: Vec<(usize, String)>,
    window_end: Option<usize>,
    kind_col: Option<usize>,
    max_series: usize,
    rows: Counter,
    dropped: Counter,
}

impl ConnectorFactory for MetricsConnector {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn create_source(&self, spec: &TableSpec, _metrics: &Metrics) -> Result<Box<dyn Source>> {
        Err(connector_error(
            "metrics",
            spec,
            "the metrics connector is a sink only; it cannot be read",
        ))
    }

    fn accepts_updates(&self, _spec: &TableSpec) -> bool {
        true
    }

    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>> {
        check_options("metrics", spec, OPTIONS)?;
        let err = |m: String| connector_error("metrics", spec, m);
        let metric = spec.required("metrics", "metric.name")?.to_string();
        if !valid_name(&metric) {
            return Err(err(format!(
                "'metric.name' = '{metric}' is not a Prometheus metric name (letters, digits, '_' and ':', not starting with a digit)"
            )));
        }
        let labels: Vec<String> = spec
            .option("labels")
            .unwrap_or("")
            .split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let max_series = match spec.option("metrics.max-series") {
            None => 10_000,
            Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                err(format!(
                    "'metrics.max-series' must be a positive integer, not '{v}'"
                ))
            })?,
        };
        let kind_col = changelog::is_updating(&spec.schema).then(|| spec.schema.fields().len() - 1);
        let mut label_cols = vec![];
        for l in &labels {
            let i = spec.schema.index_of(l).map_err(|_| {
                err(format!(
                    "'labels' names '{l}', which is not a column of the table"
                ))
            })?;
            if !valid_name(l) {
                return Err(err(format!(
                    "label column '{l}' is not a Prometheus label name"
                )));
            }
            label_cols.push((i, l.clone()));
        }
        let mut value_cols = vec![];
        let mut window_end = None;
        for (i, f) in spec.schema.fields().iter().enumerate() {
            if Some(i) == kind_col || labels.contains(f.name()) {
                continue;
            }
            match f.data_type() {
                DataType::Timestamp(_, _) if f.name() == "window_end" => window_end = Some(i),
                t if t.is_numeric() => value_cols.push((i, f.name().clone())),
                _ => {}
            }
        }
        if value_cols.is_empty() {
            return Err(err(
                "the table has no numeric column to expose as a gauge".into()
            ));
        }
        let many = value_cols.len() > 1;
        let value_cols = value_cols
            .into_iter()
            .map(|(i, c)| {
                let name = if many {
                    format!("{metric}_{c}")
                } else {
                    metric.clone()
                };
                if valid_name(&name) {
                    Ok((i, name))
                } else {
                    Err(err(format!(
                        "column '{c}' does not make a Prometheus metric name"
                    )))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(MetricsSink {
            table: spec.name.clone(),
            job: crate::row_id::job_name(spec).to_string(),
            help: spec
                .option("metric.help")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{metric}, from table {} of Vigil", spec.name)),
            metric,
            label_cols,
            value_cols,
            window_end,
            kind_col,
            max_series,
            rows: metrics.counter(names::SINK_ROWS, &spec.name),
            dropped: metrics.counter(names::METRIC_SERIES_DROPPED, &spec.name),
        }))
    }
}

#[async_trait]
impl Sink for MetricsSink {
    fn describe(&self) -> String {
        format!("Metrics({})", self.metric)
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let err = |e: datafusion::arrow::error::ArrowError| EngineError::Connector {
            connector: "metrics".into(),
            table: self.table.clone(),
            message: e.to_string(),
        };
        let options = FormatOptions::default().with_null("");
        let label_arrays: Vec<_> = self
            .label_cols
            .iter()
            .map(|(i, _)| batch.column(*i).clone())
            .collect();
        let labels: Vec<ArrayFormatter> = label_arrays
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
            .collect::<std::result::Result<_, _>>()
            .map_err(err)?;
        let values = self
            .value_cols
            .iter()
            .map(|(i, _)| cast(batch.column(*i), &DataType::Float64))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(err)?;
        let ends = match self.window_end {
            Some(i) => Some(
                cast(
                    batch.column(i),
                    &DataType::Timestamp(TimeUnit::Millisecond, None),
                )
                .map_err(err)?,
            ),
            None => None,
        };
        let ends = ends
            .as_ref()
            .map(|e| e.as_primitive::<TimestampMillisecondType>());
        let kinds = self.kind_col.map(|k| {
            batch
                .column(k)
                .as_primitive::<datafusion::arrow::datatypes::Int8Type>()
        });
        let store = series_store();
        for row in 0..batch.num_rows() {
            let kind = kinds.map_or(RowKind::Insert, |k| RowKind::from_byte(k.value(row)));
            if kind == RowKind::UpdateBefore {
                continue;
            }
            let mut label_values: Vec<(String, String)> =
                vec![("vigil_job".to_string(), self.job.clone())];
            for ((_, name), f) in self.label_cols.iter().zip(&labels) {
                label_values.push((name.clone(), f.value(row).to_string()));
            }
            let end = ends.filter(|e| e.is_valid(row)).map(|e| e.value(row));
            for ((_, name), v) in self.value_cols.iter().zip(&values) {
                let key = SeriesKey {
                    metric: name.clone(),
                    labels: label_values.clone(),
                };
                if kind == RowKind::Delete {
                    store.remove(&key);
                    continue;
                }
                let v = v.as_primitive::<Float64Type>();
                if v.is_null(row) {
                    continue;
                }
                let dropped = store.set(key, &self.help, v.value(row), end, self.max_series);
                self.dropped.add(dropped);
            }
        }
        self.rows.add(batch.num_rows() as u64);
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
