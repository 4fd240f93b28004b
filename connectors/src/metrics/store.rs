//! The series the `metrics` sinks wrote: the latest value per metric and
//! label set, with a short history for charts, bounded per metric.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, OnceLock};

/// How many points of history a series keeps for the dashboard's charts.
const HISTORY: usize = 120;

/// A metric and its labels (`vigil_job` first, then the label columns).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// The gauge's name.
    pub metric: String,
    /// Label names and values.
    pub labels: Vec<(String, String)>,
}

/// One value of a series: its window's end (ms, if any) and the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The window end, or when the value was set (ms since the epoch).
    pub at_ms: i64,
    /// The value.
    pub value: f64,
}

#[derive(Debug, Clone)]
struct Series {
    help: String,
    latest: Point,
    window_end: Option<i64>,
    history: VecDeque<Point>,
    /// Update order, for dropping the least recently updated.
    touched: u64,
}

/// Every series, by key.
#[derive(Default)]
pub struct SeriesStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    series: BTreeMap<SeriesKey, Series>,
    clock: u64,
}

/// The process's series store.
pub fn series_store() -> &'static SeriesStore {
    static STORE: OnceLock<SeriesStore> = OnceLock::new();
    STORE.get_or_init(SeriesStore::default)
}

/// A series as read for rendering.
#[derive(Debug, Clone)]
pub struct SeriesView {
    /// Its key.
    pub key: SeriesKey,
    /// Its help text.
    pub help: String,
    /// The latest value.
    pub latest: Point,
    /// The latest row's window end (ms), if the table has `window_end`.
    pub window_end: Option<i64>,
    /// Recent points, oldest first.
    pub history: Vec<Point>,
}

impl SeriesStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets `key` to `value` for the window ending at `window_end` (an older
    /// window than the one it holds is ignored); returns how many series of
    /// the metric were dropped to stay within `max_series`.
    pub fn set(
        &self,
        key: SeriesKey,
        help: &str,
        value: f64,
        window_end: Option<i64>,
        max_series: usize,
    ) -> u64 {
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        let at_ms = window_end.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        let point = Point { at_ms, value };
        match inner.series.get_mut(&key) {
            Some(s) => {
                if matches!((s.window_end, window_end), (Some(old), Some(new)) if new < old) {
                    return 0;
                }
                if s.history.back().is_some_and(|p| p.at_ms == at_ms) {
                    s.history.pop_back();
                }
                s.history.push_back(point);
                if s.history.len() > HISTORY {
                    s.history.pop_front();
                }
                s.latest = point;
                s.window_end = window_end;
                s.touched = clock;
                0
            }
            None => {
                let metric = key.metric.clone();
                inner.series.insert(
                    key,
                    Series {
                        help: help.to_string(),
                        latest: point,
                        window_end,
                        history: VecDeque::from([point]),
                        touched: clock,
                    },
                );
                let mut dropped = 0;
                loop {
                    let of_metric: Vec<(&SeriesKey, u64)> = inner
                        .series
                        .iter()
                        .filter(|(k, _)| k.metric == metric)
                        .map(|(k, s)| (k, s.touched))
                        .collect();
                    if of_metric.len() <= max_series {
                        break;
                    }
                    let Some(oldest) = of_metric
                        .iter()
                        .min_by_key(|(_, t)| *t)
                        .map(|(k, _)| (*k).clone())
                    else {
                        break;
                    };
                    inner.series.remove(&oldest);
                    dropped += 1;
                }
                dropped
            }
        }
    }

    /// Removes `key` (its row was deleted).
    pub fn remove(&self, key: &SeriesKey) {
        self.lock().series.remove(key);
    }

    /// Removes every series of job `job` (when it is stopped or replaced).
    pub fn remove_job(&self, job: &str) {
        self.lock()
            .series
            .retain(|k, _| !k.labels.iter().any(|(n, v)| n == "vigil_job" && v == job));
    }

    /// Every series, in key order.
    pub fn snapshot(&self) -> Vec<SeriesView> {
        self.lock()
            .series
            .iter()
            .map(|(k, s)| SeriesView {
                key: k.clone(),
                help: s.help.clone(),
                latest: s.latest,
                window_end: s.window_end,
                history: s.history.iter().copied().collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(metric: &str, l: &str) -> SeriesKey {
        SeriesKey {
            metric: metric.into(),
            labels: vec![("sensor".into(), l.into())],
        }
    }

    #[test]
    fn the_latest_window_wins_and_the_least_recent_series_is_dropped() {
        let s = SeriesStore::default();
        assert_eq!(s.set(key("t", "a"), "h", 1.0, Some(2_000), 2), 0);
        assert_eq!(
            s.set(key("t", "a"), "h", 9.0, Some(1_000), 2),
            0,
            "an older window"
        );
        assert_eq!(s.set(key("t", "b"), "h", 2.0, Some(2_000), 2), 0);
        assert_eq!(s.set(key("t", "a"), "h", 3.0, Some(3_000), 2), 0);
        assert_eq!(
            s.set(key("other", "x"), "h", 5.0, None, 2),
            0,
            "another metric"
        );
        // A third sensor of `t`: `b`, updated least recently, goes.
        assert_eq!(s.set(key("t", "c"), "h", 4.0, Some(3_000), 2), 1);
        let views = s.snapshot();
        let t: Vec<(String, f64)> = views
            .iter()
            .filter(|v| v.key.metric == "t")
            .map(|v| (v.key.labels[0].1.clone(), v.latest.value))
            .collect();
        assert_eq!(t, vec![("a".into(), 3.0), ("c".into(), 4.0)]);
        let a = views.iter().find(|v| v.key == key("t", "a")).unwrap();
        assert_eq!(a.history.len(), 2);
        assert_eq!(a.window_end, Some(3_000));
    }
}
