//! Counters a job keeps about itself (rows in and out, late rows dropped,
//! malformed records skipped), readable while it runs and after it ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A monotonically increasing counter. Cheap to clone and to bump.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Adds `d` (which may be negative; the value stays at or above zero).
    pub fn add_signed(&self, d: i64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_add_signed(d))
            });
    }
}

/// A value that goes up and down (a duration, a size). Shares the registry
/// with counters.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Adds `d` (which may be negative; the value stays at or above zero).
    pub fn add_signed(&self, d: i64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_add_signed(d))
            });
    }
}

/// The counters of one job, keyed by `name{label}`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    counters: Arc<Mutex<BTreeMap<String, Counter>>>,
}

impl Metrics {
    /// A new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter `name` for `label` (e.g. an operator or table name), created on
    /// first use. Call at construction time, not per batch.
    pub fn counter(&self, name: &str, label: &str) -> Counter {
        let key = format!("{name}{{{label}}}");
        let mut map = self
            .counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(key).or_default().clone()
    }

    /// The gauge `name` for `label`, created on first use.
    pub fn gauge(&self, name: &str, label: &str) -> Gauge {
        Gauge(self.counter(name, label).0)
    }

    /// A snapshot of every counter and gauge.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let map = self
            .counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.get())).collect()
    }

    /// The sum of every counter called `name`, whatever its label.
    pub fn total(&self, name: &str) -> u64 {
        let prefix = format!("{name}{{");
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| *v)
            .sum()
    }
}

/// Metric names used by the engine and connectors.
pub mod names {
    /// Rows read by a source.
    pub const SOURCE_ROWS: &str = "vigil_source_rows_total";
    /// Records a source could not decode and skipped.
    pub const MALFORMED_RECORDS: &str = "vigil_malformed_records_total";
    /// Rows dropped because their window had already fired.
    pub const LATE_ROWS_DROPPED: &str = "vigil_late_rows_dropped_total";
    /// Rows dropped because their event time was NULL.
    pub const NULL_TIME_DROPPED: &str = "vigil_null_rowtime_dropped_total";
    /// Rows written by a sink.
    pub const SINK_ROWS: &str = "vigil_sink_rows_total";
    /// Records without a value (Kafka tombstones) that a source skipped.
    pub const TOMBSTONES_SKIPPED: &str = "vigil_tombstones_skipped_total";
    /// Checkpoints completed.
    pub const CHECKPOINTS_COMPLETED: &str = "vigil_checkpoints_completed_total";
    /// The id of the newest checkpoint completed.
    pub const LAST_CHECKPOINT: &str = "vigil_last_checkpoint_id";
    /// Checkpoints that failed (state could not be written).
    pub const CHECKPOINTS_FAILED: &str = "vigil_checkpoints_failed_total";
    /// Gauge: duration of the last checkpoint, from trigger to completion.
    pub const CHECKPOINT_DURATION_MS: &str = "vigil_checkpoint_last_duration_ms";
    /// Gauge: total size of the last checkpoint's files.
    pub const CHECKPOINT_SIZE_BYTES: &str = "vigil_checkpoint_last_size_bytes";
    /// Gauge: bytes the last checkpoint added on disk (files the previous one lacked).
    pub const CHECKPOINT_INCREMENTAL_BYTES: &str = "vigil_checkpoint_last_incremental_bytes";
    /// Gauge: time the job took to restore its last checkpoint at start.
    pub const RESTORE_DURATION_MS: &str = "vigil_checkpoint_restore_duration_ms";
    /// Bytes of window state spilled to RocksDB because it exceeded the cache.
    pub const STATE_SPILLED_BYTES: &str = "vigil_state_spilled_bytes_total";
    /// Gauge: open partial matches of a MATCH_RECOGNIZE (after the last watermark).
    pub const PARTIAL_MATCHES: &str = "vigil_pattern_partial_matches";
    /// Gauge: bytes of state per open partial match of a MATCH_RECOGNIZE.
    pub const PARTIAL_MATCH_BYTES: &str = "vigil_pattern_partial_match_bytes";
    /// Requests a sink sent again (after an error, a timeout, 5xx or 429).
    pub const SINK_RETRIES: &str = "vigil_sink_retries_total";
    /// Records a source sent to its dead-letter output.
    pub const DEAD_LETTERS: &str = "vigil_dead_letters_total";
    /// Rows a sink could not encode (sent to its dead-letter output, or logged).
    pub const SINK_REJECTED_ROWS: &str = "vigil_sink_rejected_rows_total";
    /// Rows an operator received.
    pub const OPERATOR_ROWS_IN: &str = "vigil_operator_rows_in_total";
    /// Rows an operator emitted.
    pub const OPERATOR_ROWS_OUT: &str = "vigil_operator_rows_out_total";
    /// Batches an operator received.
    pub const OPERATOR_BATCHES_IN: &str = "vigil_operator_batches_in_total";
    /// Time a task spent handing messages to the next (backpressure), µs.
    pub const BACKPRESSURE_US: &str = "vigil_backpressure_microseconds_total";
    /// Gauge: the latest watermark a sink received (ms since the epoch).
    pub const SINK_WATERMARK_MS: &str = "vigil_sink_watermark_ms";
    /// Gauge: records of a Kafka partition not read yet (high watermark - position).
    pub const KAFKA_CONSUMER_LAG: &str = "vigil_kafka_consumer_lag";
    /// Records a Kafka sink could not deliver (after librdkafka's retries).
    pub const SINK_DELIVERY_FAILURES: &str = "vigil_sink_delivery_failures_total";
    /// Series a `metrics` sink dropped to stay within `metrics.max-series`.
    pub const METRIC_SERIES_DROPPED: &str = "vigil_metric_series_dropped_total";
    /// Gauge: in-memory state of an operator, by operator, at its last checkpoint.
    pub const STATE_SIZE_BYTES: &str = "vigil_state_size_bytes";
    /// Gauge: an operator's, source's or sink's state as the state backend
    /// holds it (on disk, compressed; RocksDB's estimate after each checkpoint).
    pub const STATE_BYTES: &str = "vigil_state_bytes";

    /// The help text of metric `name` (its doc comment, for Prometheus).
    pub fn help(name: &str) -> Option<&'static str> {
        Some(match name {
            SOURCE_ROWS => "Rows read by a source.",
            MALFORMED_RECORDS => "Records a source could not decode and skipped.",
            LATE_ROWS_DROPPED => "Rows dropped because their window had already fired.",
            NULL_TIME_DROPPED => "Rows dropped because their event time was NULL.",
            SINK_ROWS => "Rows written by a sink.",
            TOMBSTONES_SKIPPED => {
                "Records without a value (Kafka tombstones) that a source skipped."
            }
            CHECKPOINTS_COMPLETED => "Checkpoints completed.",
            LAST_CHECKPOINT => "The id of the newest checkpoint completed.",
            CHECKPOINTS_FAILED => "Checkpoints that failed (state could not be written).",
            CHECKPOINT_DURATION_MS => {
                "Duration of the last checkpoint, from trigger to completion."
            }
            CHECKPOINT_SIZE_BYTES => "Total size of the last checkpoint's files.",
            CHECKPOINT_INCREMENTAL_BYTES => "Bytes the last checkpoint added on disk.",
            RESTORE_DURATION_MS => "Time the job took to restore its last checkpoint at start.",
            STATE_SPILLED_BYTES => "Bytes of window state spilled to RocksDB beyond the cache.",
            PARTIAL_MATCHES => "Open partial matches of a MATCH_RECOGNIZE.",
            PARTIAL_MATCH_BYTES => "Bytes of state per open partial match of a MATCH_RECOGNIZE.",
            METRIC_SERIES_DROPPED => {
                "Series a metrics sink dropped to stay within metrics.max-series."
            }
            STATE_SIZE_BYTES => "In-memory state of an operator at its last checkpoint.",
            STATE_BYTES => "State of an operator in the state backend (on disk, compressed), after the last checkpoint.",
            SINK_RETRIES => "Requests a sink sent again after an error, a timeout, 5xx or 429.",
            DEAD_LETTERS => "Records a source could not decode (or a sink could not deliver) sent to a dead-letter output.",
            SINK_REJECTED_ROWS => "Rows a sink could not encode, sent to its dead-letter output or logged.",
            OPERATOR_ROWS_IN => "Rows an operator received.",
            OPERATOR_ROWS_OUT => "Rows an operator emitted.",
            OPERATOR_BATCHES_IN => "Batches an operator received.",
            BACKPRESSURE_US => "Time a task spent handing messages downstream (waiting when the next task cannot keep up).",
            SINK_WATERMARK_MS => "The latest watermark a sink received.",
            KAFKA_CONSUMER_LAG => "Records of a Kafka partition not read yet.",
            SINK_DELIVERY_FAILURES => "Records a sink could not deliver after retries.",
            _ => return None,
        })
    }
}
