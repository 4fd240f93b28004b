//! Decoding records of a table's format into Arrow batches, vectorised: the
//! lines of a file (JSON with arrow-json here; csv and raw in their modules) or
//! the records of a Kafka chunk. A chunk that fails to decode is decoded again
//! record by record to find the bad ones, which are skipped and reported with
//! their position; the good records of the chunk are kept.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::reader::{Decoder, ReaderBuilder};
use datafusion::arrow::record_batch::RecordBatch;

use super::cdc::{CdcLayout, Changes};
use super::cloudevents::EventLayout;
use super::Format;

/// A line that could not be decoded.
#[derive(Debug, Clone)]
pub struct BadRecord {
    /// 1-based line number in its file.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
    /// The start of the line, for the report.
    pub excerpt: String,
    /// The whole record, unchanged (for a dead-letter output).
    pub raw: Vec<u8>,
}

/// The result of decoding one chunk of lines.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The rows, if any.
    pub batch: Option<RecordBatch>,
    /// The lines that were skipped.
    pub bad: Vec<BadRecord>,
}

/// Why a non-empty JSON record cannot be one object, if it visibly cannot
/// (not UTF-8, or not starting with `{`): checked before decoding it alone.
fn not_an_object(trimmed: &[u8]) -> Option<String> {
    if let Err(e) = std::str::from_utf8(trimmed) {
        return Some(format!("not UTF-8: {e}"));
    }
    (trimmed[0] != b'{').then(|| "not a JSON object".to_string())
}

/// Decodes records of one format into batches of a table's schema.
#[derive(Debug, Clone)]
pub struct RecordDecoder {
    schema: SchemaRef,
    format: Format,
    /// CloudEvents: how the table's columns map onto an event.
    events: Option<EventLayout>,
    /// CDC formats: how the table's columns map onto a change record.
    cdc: Option<CdcLayout>,
}

impl RecordDecoder {
    /// A JSON decoder producing `schema`; fields missing from a record are
    /// NULL, fields not in the schema are ignored, and numbers or booleans are
    /// accepted for string columns (as in Flink).
    pub fn new(schema: SchemaRef) -> Self {
        Self::for_format(Format::Json, schema)
    }

    /// A decoder of `format` producing `schema`.
    pub fn for_format(format: Format, schema: SchemaRef) -> Self {
        let events =
            matches!(format, Format::CloudEvents { .. }).then(|| EventLayout::new(&schema));
        let cdc = match &format {
            Format::Cdc(f) => Some(CdcLayout::new(*f, &schema)),
            _ => None,
        };
        Self {
            schema,
            format,
            events,
            cdc,
        }
    }

    /// The schema of the batches it decodes: the table's columns, and for a
    /// changelog format the row kind after them.
    pub fn output_schema(&self) -> SchemaRef {
        match &self.cdc {
            Some(c) => c.output_schema().clone(),
            None => self.schema.clone(),
        }
    }

    fn decoder(&self, batch_size: usize) -> datafusion::arrow::error::Result<Decoder> {
        let schema = match (&self.events, &self.cdc) {
            (Some(e), _) => e.decode_schema.clone(),
            (_, Some(c)) => c.decode_schema.clone(),
            _ => self.schema.clone(),
        };
        ReaderBuilder::new(schema)
            .with_batch_size(batch_size.max(1))
            .with_coerce_primitive(true)
            .build_decoder()
    }

    /// Decodes `chunk`, a whole number of lines whose first line is `first_line`.
    pub fn decode_chunk(&self, chunk: &[u8], first_line: u64) -> Decoded {
        match &self.format {
            Format::Raw => return super::raw::decode_lines(&self.schema, chunk, first_line),
            Format::Csv(csv) => return csv.decode_chunk(&self.schema, chunk, first_line),
            Format::Json | Format::CloudEvents { .. } | Format::Cdc(_) => {}
        }
        let lines = memchr::memchr_iter(b'\n', chunk).count() + 1;
        if let Ok(batch) = self.decode_rows(chunk, lines) {
            return Decoded { batch, bad: vec![] };
        }
        self.decode_line_by_line(chunk, first_line)
    }

    /// The rows of `chunk`: its records' rows, or for a changelog format
    /// the changes they make.
    fn decode_rows(&self, chunk: &[u8], lines: usize) -> Result<Option<RecordBatch>, String> {
        let batch = self.decode_all(chunk, lines).map_err(|e| e.to_string())?;
        match (&self.cdc, batch) {
            (Some(cdc), Some(b)) => Ok(Some(cdc.changes(&b)?.rows)),
            (_, batch) => Ok(batch),
        }
    }

    /// The changes the records of `buf` make (a changelog format; see
    /// [`RecordDecoder::decode_records`] for the layout of `buf`), or why
    /// some record is not one.
    pub fn decode_changes(&self, buf: &[u8], ends: &[usize]) -> Result<Changes, String> {
        let Some(cdc) = &self.cdc else {
            return Err(format!(
                "'{}' is not a changelog format",
                self.format.name()
            ));
        };
        let n = ends.len();
        let batch = self
            .decode_all(buf, n)
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| RecordBatch::new_empty(cdc.decode_schema.clone()));
        if batch.num_rows() != n {
            return Err(format!(
                "expected {n} record(s), found {}",
                batch.num_rows()
            ));
        }
        cdc.changes(&batch)
    }

    fn decode_all(
        &self,
        chunk: &[u8],
        lines: usize,
    ) -> datafusion::arrow::error::Result<Option<RecordBatch>> {
        let mut decoder = self.decoder(lines)?;
        let mut rest = chunk;
        let mut batches = vec![];
        while !rest.is_empty() {
            let used = decoder.decode(rest)?;
            if used == 0 {
                // The decoder is full (more objects than lines): flush and go on.
                match decoder.flush()? {
                    Some(b) => batches.push(b),
                    None => break,
                }
            }
            rest = &rest[used..];
        }
        if let Some(b) = decoder.flush()? {
            batches.push(b);
        }
        if let Some(e) = &self.events {
            batches = batches
                .iter()
                .map(|b| e.rows(&self.schema, b))
                .collect::<datafusion::arrow::error::Result<_>>()?;
        }
        match batches.len() {
            0 => Ok(None),
            1 => Ok(batches.pop()),
            _ => datafusion::arrow::compute::concat_batches(batches[0].schema_ref(), &batches)
                .map(Some),
        }
    }

    /// Decodes the records of `buf` — each followed by a `\n`, record `i`
    /// ending at `ends[i]` (after its `\n`) — into exactly one row each, or
    /// fails (some record is bad). `nulls[i]` marks a record with no value
    /// (a Kafka tombstone, read by the `raw` format as NULL); it may be empty.
    pub fn decode_records(
        &self,
        buf: &[u8],
        ends: &[usize],
        nulls: &[bool],
    ) -> Result<RecordBatch, String> {
        let n = ends.len();
        if n == 0 {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        let batch = match &self.format {
            Format::Raw => return super::raw::decode_records(&self.schema, buf, ends, nulls),
            Format::Csv(csv) => csv.decode_all(&self.schema, buf)?,
            Format::Json | Format::CloudEvents { .. } => {
                self.decode_all(buf, n).map_err(|e| e.to_string())?
            }
            Format::Cdc(_) => return self.decode_changes(buf, ends).map(|c| c.rows),
        };
        match batch {
            Some(b) if b.num_rows() == n => Ok(b),
            b => Err(format!(
                "expected {n} record(s), found {}",
                b.map_or(0, |b| b.num_rows())
            )),
        }
    }

    /// Why one record (without its `\n`) does not decode into exactly one
    /// row, or None if it does.
    pub fn record_error(&self, record: &[u8]) -> Option<String> {
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        match &self.format {
            Format::Raw => return super::raw::record_error(&self.schema, record),
            Format::Csv(_) => {}
            Format::Json | Format::CloudEvents { .. } | Format::Cdc(_) => {
                let trimmed = record.trim_ascii();
                if trimmed.is_empty() {
                    return Some("empty record".into());
                }
                if let Some(reason) = not_an_object(trimmed) {
                    return Some(reason);
                }
            }
        }
        let mut one = Vec::with_capacity(record.len() + 1);
        one.extend_from_slice(record);
        one.push(b'\n');
        self.decode_records(&one, &[one.len()], &[]).err()
    }

    fn decode_line_by_line(&self, chunk: &[u8], first_line: u64) -> Decoded {
        let mut good: Vec<u8> = Vec::with_capacity(chunk.len());
        let mut bad = vec![];
        let mut good_lines = 0;
        for (i, line) in chunk.split(|b| *b == b'\n').enumerate() {
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            let reason = not_an_object(trimmed).or_else(|| self.decode_rows(trimmed, 1).err());
            match reason {
                Some(reason) => bad.push(BadRecord {
                    line: first_line + i as u64,
                    reason,
                    excerpt: String::from_utf8_lossy(&trimmed[..trimmed.len().min(120)])
                        .into_owned(),
                    raw: line.to_vec(),
                }),
                None => {
                    good.extend_from_slice(trimmed);
                    good.push(b'\n');
                    good_lines += 1;
                }
            }
        }
        let batch = match self.decode_rows(&good, good_lines) {
            Ok(b) => b,
            Err(e) => {
                // Each line decoded alone, so this should not happen; report rather than lose.
                bad.push(BadRecord {
                    line: first_line,
                    reason: format!("chunk failed to decode: {e}"),
                    excerpt: String::new(),
                    raw: vec![],
                });
                None
            }
        };
        Decoded { batch, bad }
    }
}
