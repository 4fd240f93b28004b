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

    /// A snapshot of every counter.
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
}
