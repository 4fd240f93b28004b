//! What a sink does with a row its format cannot carry (see [`crate::dlq`]):
//! the row goes to the sink's `sink.dlq.*` output with the error, shown as
//! Flink prints rows, or, without one, is logged; it is counted in
//! `vigil_sink_rejected_rows_total` either way, and the other rows of its
//! batch are delivered.

use datafusion::arrow::record_batch::RecordBatch;
use vigil_engine::connector::TableSpec;
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::Result;

use crate::dlq::{DeadLetter, DeadLetters, Position};
use crate::json::encode::{encode_print_rows, RowError};

/// A sink's rejected rows and its dead-letter output.
pub struct SinkRejects {
    table: String,
    dlq: Option<DeadLetters>,
    rejected: Counter,
}

impl SinkRejects {
    /// For the sink of `spec`, with the output its `sink.dlq.*` options name.
    pub fn new(spec: &TableSpec, metrics: &Metrics) -> Result<Self> {
        Ok(Self {
            table: spec.name.clone(),
            dlq: DeadLetters::for_sink(spec, metrics)?,
            rejected: metrics.counter(names::SINK_REJECTED_ROWS, &spec.name),
        })
    }

    /// Dead-letters (or logs) the `failed` rows of `batch`. Fails only when a
    /// dead letter cannot be stored.
    pub async fn reject(&mut self, batch: &RecordBatch, failed: &[RowError]) -> Result<()> {
        if failed.is_empty() {
            return Ok(());
        }
        self.rejected.add(failed.len() as u64);
        let texts: Vec<String> = failed
            .iter()
            .map(|(row, _)| row_text(batch, *row))
            .collect();
        let Some(dlq) = self.dlq.as_mut() else {
            for ((_, error), text) in failed.iter().zip(&texts) {
                tracing::warn!(table = %self.table, row = %text, "a row could not be encoded and was not written (no 'sink.dlq.connector'): {error}");
            }
            return Ok(());
        };
        let letters: Vec<DeadLetter<'_>> = failed
            .iter()
            .zip(&texts)
            .map(|((_, error), text)| DeadLetter {
                position: Position::Row {
                    sink: self.table.clone(),
                },
                error,
                key: None,
                record: text.as_bytes(),
                headers: vec![],
            })
            .collect();
        dlq.send(&letters).await
    }

    /// Sends other dead letters of the sink (a request a receiver refused);
    /// without an output they are only counted by the caller.
    pub async fn send(&mut self, letters: &[DeadLetter<'_>]) -> Result<()> {
        match self.dlq.as_mut() {
            Some(dlq) => dlq.send(letters).await,
            None => Ok(()),
        }
    }
}

/// Row `row` of `batch` as Flink's print connector shows it (`+I[a, 1]`).
fn row_text(batch: &RecordBatch, row: usize) -> String {
    let mut text = String::new();
    if encode_print_rows(&batch.slice(row, 1), "", &mut text).is_err() {
        text = format!("row {row} of a batch of {}", batch.num_rows());
    }
    text.trim_end().to_string()
}

/// Merges row errors from several parts of a record (value, key, metadata)
/// into one list in row order, a row once (its first error).
pub fn merge(parts: &[&[RowError]]) -> Vec<RowError> {
    let mut all: Vec<RowError> = parts.iter().flat_map(|p| p.iter().cloned()).collect();
    all.sort_by_key(|(row, _)| *row);
    all.dedup_by_key(|(row, _)| *row);
    all
}
