//! What flows along an edge of the job graph.

use datafusion::arrow::record_batch::RecordBatch;

/// Event time in milliseconds since the Unix epoch (UTC).
pub type EventTime = i64;

/// A checkpoint's number: increasing within a job, across restarts.
pub type CheckpointId = u64;

/// A source split: one Kafka partition, one file. Watermarks are generated per
/// split and merged by minimum, so one slow partition holds the others back.
pub type SplitId = u32;

/// What a source says about one of its splits. The watermark assigner consumes
/// these; every other operator forwards them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitEvent {
    /// The split exists (it holds the watermark back until it has data or goes
    /// idle) and the batches that follow come from it.
    Current(SplitId),
    /// The split has been silent for the idle timeout: it no longer holds the
    /// watermark back until it speaks again.
    Idle(SplitId),
    /// The split is exhausted (a bounded read reached its end).
    Finished(SplitId),
}

/// A message on an edge between two operators.
#[derive(Debug, Clone)]
pub enum Message {
    /// A batch of rows.
    Batch(RecordBatch),
    /// No row with an event time at or before this one will follow (in Flink's sense:
    /// windows whose `window_end - 1 <= watermark` may fire).
    Watermark(EventTime),
    /// About the split the following batches come from.
    Split(SplitEvent),
    /// The whole input is idle: a merge ignores it until it sends again.
    Idle,
    /// A checkpoint barrier: every row before it belongs to checkpoint `id`,
    /// every row after it to the next. An operator snapshots its state when the
    /// barrier has arrived on all of its inputs.
    Barrier(CheckpointId),
    /// The input is exhausted; nothing follows.
    End,
    /// The job is being stopped (Ctrl-C, SIGTERM): nothing follows, but the input
    /// is not exhausted, so operators keep open state unfired and sinks flush.
    Stop,
}
