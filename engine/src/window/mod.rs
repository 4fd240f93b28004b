//! Event-time windows: assignment of rows to windows (TUMBLE, HOP, CUMULATE,
//! SESSION) and aggregation per window, with Flink's semantics: windows are
//! `[start, end)`, `window_time = end - 1 ms`, a window fires once, when the
//! watermark reaches `end - 1`, and a row whose window has fired is dropped.

pub mod aggregate;
pub mod assign;
pub mod over;
pub mod rank;
pub mod session;
pub mod spill;
mod window_state;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

use crate::message::EventTime;

/// Whether the window ending at `end` (exclusive) has fired once the
/// watermark is `watermark`: it fires when the watermark reaches `end - 1`.
pub fn has_fired(end: EventTime, watermark: EventTime) -> bool {
    end - 1 <= watermark
}

/// Removes and returns the entries of `waiting` (by window end) whose windows
/// have fired at `watermark`, earliest first.
pub fn take_fired<T>(
    waiting: &mut std::collections::BTreeMap<EventTime, T>,
    watermark: EventTime,
) -> std::collections::BTreeMap<EventTime, T> {
    // Ends up to `watermark + 1` have fired.
    let later = waiting.split_off(&watermark.saturating_add(2));
    std::mem::replace(waiting, later)
}

/// Name of the column holding a window's start.
pub const WINDOW_START: &str = "window_start";
/// Name of the column holding a window's end (exclusive).
pub const WINDOW_END: &str = "window_end";
/// Name of the column holding a window's time attribute, `window_end - 1 ms`.
pub const WINDOW_TIME: &str = "window_time";

/// Field metadata key marking window columns (`start`, `end`, `time`), so that
/// planners can recognise them through projections.
pub const WINDOW_METADATA_KEY: &str = "vigil.window";
/// Field metadata key marking a time attribute (rowtime) column.
pub const ROWTIME_METADATA_KEY: &str = "vigil.rowtime";
/// Field metadata key marking a processing-time attribute (`PROCTIME()`):
/// windows over it are fired by the wall clock.
pub const PROCTIME_METADATA_KEY: &str = "vigil.proctime";

/// How rows are assigned to windows. Durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows of `size`.
    Tumble {
        /// Window length.
        size: i64,
        /// Shift of window boundaries.
        offset: i64,
    },
    /// Windows of `size` starting every `slide`.
    Hop {
        /// Distance between window starts.
        slide: i64,
        /// Window length.
        size: i64,
        /// Shift of window boundaries.
        offset: i64,
    },
    /// Windows growing by `step` from a fixed start up to `size`.
    Cumulate {
        /// Growth step.
        step: i64,
        /// Maximum window length.
        size: i64,
        /// Shift of window boundaries.
        offset: i64,
    },
    /// Windows that close after `gap` of inactivity, per partition key.
    Session {
        /// Inactivity gap.
        gap: i64,
    },
}

impl WindowKind {
    /// The SQL name of the window function.
    pub fn sql_name(&self) -> &'static str {
        match self {
            WindowKind::Tumble { .. } => "TUMBLE",
            WindowKind::Hop { .. } => "HOP",
            WindowKind::Cumulate { .. } => "CUMULATE",
            WindowKind::Session { .. } => "SESSION",
        }
    }
}

impl std::fmt::Display for WindowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowKind::Tumble { size, offset } => {
                write!(f, "TUMBLE(size={size}ms, offset={offset}ms)")
            }
            WindowKind::Hop {
                slide,
                size,
                offset,
            } => {
                write!(f, "HOP(slide={slide}ms, size={size}ms, offset={offset}ms)")
            }
            WindowKind::Cumulate { step, size, offset } => {
                write!(
                    f,
                    "CUMULATE(step={step}ms, size={size}ms, offset={offset}ms)"
                )
            }
            WindowKind::Session { gap } => write!(f, "SESSION(gap={gap}ms)"),
        }
    }
}

/// The three window columns appended to a window TVF's input, with their
/// metadata. `rowtime_type` is the type of the time attribute (TIMESTAMP or
/// TIMESTAMP_LTZ), which `window_time` keeps.
pub fn window_fields(rowtime_type: &DataType) -> [Field; 3] {
    let meta = |v: &str| {
        [(WINDOW_METADATA_KEY.to_string(), v.to_string())]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>()
    };
    let mut time_meta = meta("time");
    time_meta.insert(ROWTIME_METADATA_KEY.to_string(), "true".to_string());
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    [
        Field::new(WINDOW_START, ts.clone(), false).with_metadata(meta("start")),
        Field::new(WINDOW_END, ts, false).with_metadata(meta("end")),
        Field::new(WINDOW_TIME, rowtime_type.clone(), false).with_metadata(time_meta),
    ]
}

/// Builds the `window_start`, `window_end` and `window_time` arrays.
pub fn window_arrays(
    starts: Vec<EventTime>,
    ends: Vec<EventTime>,
    rowtime_type: &DataType,
) -> [ArrayRef; 3] {
    let times: Vec<EventTime> = ends.iter().map(|e| e - 1).collect();
    let tz = match rowtime_type {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    [
        Arc::new(TimestampMillisecondArray::from(starts)),
        Arc::new(TimestampMillisecondArray::from(ends)),
        Arc::new(TimestampMillisecondArray::from(times).with_timezone_opt(tz)),
    ]
}
