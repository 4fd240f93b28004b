//! Encoding batches as records of a format, back to back, each followed by a
//! newline — lines of a file, or (sliced by [`Records::get`]) Kafka values
//! and keys. A record may hold newlines of its own (a raw value, a quoted
//! csv field), so record bounds are kept rather than found again.

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;

use vigil_engine::connector::TableSpec;
use vigil_engine::Result;

use super::cloudevents::encode::{EventEncoder, Events};
use super::{Format, Part};
use crate::json::encode::{encode_json_lines, NonFinite, RowError};

/// Encoded records.
#[derive(Debug, Default)]
pub struct Records {
    /// The records, each followed by a newline.
    pub buf: Vec<u8>,
    /// Where each record ends (after its newline).
    ends: Vec<usize>,
    /// Records that are NULL (a `raw` NULL: a Kafka tombstone).
    nulls: Vec<bool>,
    /// Rows that could not be encoded, with the error, in row order; their
    /// records are empty (no bytes, not even a newline).
    failed: Vec<RowError>,
}

impl Records {
    /// The number of records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The rows that could not be encoded, with the error, in row order.
    pub fn failed(&self) -> &[RowError] {
        &self.failed
    }

    /// Record `i`, without its newline; None for a NULL record. A failed
    /// row's record is empty.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if self.nulls.get(i).copied().unwrap_or(false) {
            return None;
        }
        let record = super::record_at(&self.buf, &self.ends, i);
        Some(record.strip_suffix(b"\n").unwrap_or(record))
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.nulls.clear();
        self.failed.clear();
    }

    /// Marks the records written since `from` bytes, one per line, with an
    /// empty record for each failed row (which wrote no line).
    fn split_lines(&mut self, from: usize) {
        let mut failed = self.failed.iter().map(|(row, _)| *row).peekable();
        for nl in memchr::memchr_iter(b'\n', &self.buf[from..]) {
            while failed.next_if_eq(&self.ends.len()).is_some() {
                self.ends.push(self.ends.last().copied().unwrap_or(from));
            }
            self.ends.push(from + nl + 1);
        }
        while failed.next_if_eq(&self.ends.len()).is_some() {
            self.ends.push(self.ends.last().copied().unwrap_or(from));
        }
    }
}

/// Encodes rows of one table in one format.
#[derive(Debug)]
pub struct RecordEncoder {
    format: Format,
    events: Option<EventEncoder>,
    scratch: String,
    encoded_events: Events,
}

impl RecordEncoder {
    /// An encoder of `format` for rows of `spec`'s table (`part` tells which
    /// format options apply).
    pub fn new(format: Format, spec: &TableSpec, part: Part) -> Result<Self> {
        let events = match format {
            Format::CloudEvents { .. } => Some(EventEncoder::new(spec, part)?),
            _ => None,
        };
        Ok(Self {
            format,
            events,
            scratch: String::new(),
            encoded_events: Events::default(),
        })
    }

    /// Binary-mode CloudEvents: the events last encoded, whose attributes go
    /// in headers (each record is the event's `data`). None in other formats.
    pub fn binary_events(&self) -> Option<&Events> {
        matches!(self.format, Format::CloudEvents { binary: true }).then_some(&self.encoded_events)
    }

    /// Encodes the rows of `batch` into `out` (cleared first).
    pub fn encode(
        &mut self,
        batch: &RecordBatch,
        out: &mut Records,
    ) -> std::result::Result<(), String> {
        out.clear();
        let n = batch.num_rows();
        match &self.format {
            Format::Json => {
                self.scratch.clear();
                out.failed = encode_json_lines(batch, &mut self.scratch, NonFinite::Quoted)
                    .map_err(|e| e.to_string())?;
                out.buf.extend_from_slice(self.scratch.as_bytes());
                out.split_lines(0);
            }
            Format::Raw => {
                let column = batch.column(0);
                for i in 0..n {
                    super::raw::encode_value(column, i, &mut out.buf);
                    out.buf.push(b'\n');
                    out.ends.push(out.buf.len());
                    out.nulls.push(column.is_null(i));
                }
            }
            Format::Csv(csv) => {
                csv.encode(batch, &mut out.buf)?;
                out.split_lines(0);
                if out.ends.len() != n {
                    // Some field held a newline (quoted): encode row by row.
                    out.clear();
                    for i in 0..n {
                        csv.encode(&batch.slice(i, 1), &mut out.buf)?;
                        out.ends.push(out.buf.len());
                    }
                }
            }
            Format::Cdc(_) => {
                return Err(format!("'{}' cannot be written yet", self.format.name()));
            }
            Format::CloudEvents { binary } => {
                let Some(enc) = &self.events else {
                    return Err("CloudEvents need an event encoder".into());
                };
                let events = &mut self.encoded_events;
                enc.encode(batch, events)?;
                out.failed = events.failed().to_vec();
                let mut failed = out.failed.iter().map(|(row, _)| *row).peekable();
                for i in 0..events.len() {
                    if failed.next_if_eq(&i).is_some() {
                        out.ends.push(out.buf.len());
                        continue;
                    }
                    if *binary {
                        out.buf.extend_from_slice(events.data(i).as_bytes());
                    } else {
                        self.scratch.clear();
                        events.write_structured(i, &mut self.scratch);
                        out.buf.extend_from_slice(self.scratch.as_bytes());
                    }
                    out.buf.push(b'\n');
                    out.ends.push(out.buf.len());
                }
            }
        }
        if out.ends.len() != n {
            return Err(format!("encoded {} records for {n} rows", out.ends.len()));
        }
        Ok(())
    }
}
