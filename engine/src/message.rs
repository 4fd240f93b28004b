//! What flows along an edge of the job graph.

use datafusion::arrow::record_batch::RecordBatch;

/// Event time in milliseconds since the Unix epoch (UTC).
pub type EventTime = i64;

/// A message on an edge between two operators.
#[derive(Debug, Clone)]
pub enum Message {
    /// A batch of rows.
    Batch(RecordBatch),
    /// No row with an event time at or before this one will follow (in Flink's sense:
    /// windows whose `window_end - 1 <= watermark` may fire).
    Watermark(EventTime),
    /// The input is exhausted; nothing follows.
    End,
}
