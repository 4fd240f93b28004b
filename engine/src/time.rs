//! Event time helpers.

use crate::message::EventTime;

/// The watermark before any has been seen.
pub const MIN_WATERMARK: EventTime = i64::MIN;
/// The final watermark of a bounded input: every window fires.
pub const MAX_WATERMARK: EventTime = i64::MAX;

/// Formats an event time for logs: `2026-03-01 00:00:00.040` (UTC).
pub fn format_event_time(t: EventTime) -> String {
    if t == MIN_WATERMARK {
        return "-inf".into();
    }
    if t == MAX_WATERMARK {
        return "+inf".into();
    }
    match datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(t) {
        Some(dt) => dt.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => t.to_string(),
    }
}

/// Floor division that rounds towards negative infinity (for window alignment
/// of timestamps before 1970).
pub fn floor_mod(a: i64, b: i64) -> i64 {
    a.rem_euclid(b)
}

/// Parses a Flink duration: `500 ms`, `5 s`, `5s`, `1 min`, `2 h`, `1 d`, or a
/// bare number of milliseconds.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => n,
        "s" | "sec" | "secs" | "second" | "seconds" => n * 1000,
        "min" | "m" | "minute" | "minutes" => n * 60_000,
        "h" | "hour" | "hours" => n * 3_600_000,
        "d" | "day" | "days" => n * 86_400_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(ms))
}

thread_local! {
    static CURRENT_WATERMARK: std::cell::Cell<Option<EventTime>> = const { std::cell::Cell::new(None) };
}

/// Sets the watermark of the operator about to process a batch on this
/// thread (the runtime does, before each batch).
pub fn set_current_watermark(wm: Option<EventTime>) {
    CURRENT_WATERMARK.with(|c| c.set(wm));
}

/// The last watermark the operator processing a batch on this thread
/// received (`None` before its first, or outside a batch): Flink's
/// `CURRENT_WATERMARK`.
pub fn current_watermark() -> Option<EventTime> {
    CURRENT_WATERMARK.with(|c| c.get())
}
