//! An exchange's records in the log: a fixed header (magic, kind,
//! generation, producer), then rows as an Arrow IPC stream or a marker's
//! number.

use datafusion::arrow::record_batch::RecordBatch;

use super::Marker;
use crate::state::arrow_state::{decode_batch, encode_batch};
use crate::{EngineError, Result};

const MAGIC: &[u8; 4] = b"VGX1";
const HEADER: usize = 4 + 1 + 8 + 4;

const ROWS: u8 = 0;
const WATERMARK: u8 = 1;
const IDLE: u8 = 2;
const BARRIER: u8 = 3;
const END: u8 = 4;

/// What a record holds.
#[derive(Debug, Clone)]
pub enum Body {
    /// Rows of one key group.
    Rows(RecordBatch),
    /// A marker.
    Marker(Marker),
}

/// A decoded record.
#[derive(Debug, Clone)]
pub struct Record {
    /// The run that wrote it.
    pub generation: u64,
    /// The writer that wrote it.
    pub producer: u32,
    /// What it holds.
    pub body: Body,
}

fn header(kind: u8, generation: u64, producer: u32, extra: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + extra);
    out.extend_from_slice(MAGIC);
    out.push(kind);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&producer.to_be_bytes());
    out
}

/// The record of `batch`'s rows.
pub fn encode_rows(generation: u64, producer: u32, batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = header(ROWS, generation, producer, 0);
    out.extend_from_slice(&encode_batch(batch)?);
    Ok(out)
}

/// The record of `marker`.
pub fn encode_marker(generation: u64, producer: u32, marker: Marker) -> Vec<u8> {
    let (kind, n) = match marker {
        Marker::Watermark(wm) => (WATERMARK, Some(wm.to_be_bytes())),
        Marker::Idle => (IDLE, None),
        Marker::Barrier(id) => (BARRIER, Some(id.to_be_bytes())),
        Marker::End => (END, None),
    };
    let mut out = header(kind, generation, producer, 8);
    if let Some(n) = n {
        out.extend_from_slice(&n);
    }
    out
}

/// The generation of a record, without decoding its body (None: not an
/// exchange record).
pub fn generation_of(bytes: &[u8]) -> Option<u64> {
    (bytes.len() >= HEADER && &bytes[..4] == MAGIC)
        .then(|| u64::from_be_bytes(bytes[5..13].try_into().unwrap_or_default()))
}

/// Decodes a record.
pub fn decode(bytes: &[u8]) -> Result<Record> {
    let bad = |why: &str| EngineError::State(format!("not an exchange record: {why}"));
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err(bad("no header"));
    }
    let generation = u64::from_be_bytes(bytes[5..13].try_into().map_err(|_| bad("generation"))?);
    let producer = u32::from_be_bytes(bytes[13..17].try_into().map_err(|_| bad("producer"))?);
    let rest = &bytes[HEADER..];
    let number = || -> Result<[u8; 8]> { rest.try_into().map_err(|_| bad("marker length")) };
    let body = match bytes[4] {
        ROWS => Body::Rows(decode_batch(rest)?),
        WATERMARK => Body::Marker(Marker::Watermark(i64::from_be_bytes(number()?))),
        IDLE => Body::Marker(Marker::Idle),
        BARRIER => Body::Marker(Marker::Barrier(u64::from_be_bytes(number()?))),
        END => Body::Marker(Marker::End),
        k => return Err(bad(&format!("kind {k}"))),
    };
    Ok(Record {
        generation,
        producer,
        body,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn records_read_back_as_written() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])
            .expect("batch");
        let r = decode(&encode_rows(7, 2, &batch).expect("encode")).expect("decode");
        assert_eq!((r.generation, r.producer), (7, 2));
        assert!(matches!(r.body, Body::Rows(b) if b == batch));
        for m in [
            Marker::Watermark(-5),
            Marker::Idle,
            Marker::Barrier(9),
            Marker::End,
        ] {
            let bytes = encode_marker(u64::MAX, 0, m);
            assert_eq!(generation_of(&bytes), Some(u64::MAX));
            let r = decode(&bytes).expect("decode");
            assert!(matches!(r.body, Body::Marker(got) if got == m), "{m:?}");
        }
        assert!(decode(b"VGX1").is_err());
        assert!(decode(b"{\"json\": 1, \"not\": \"an exchange record\"}").is_err());
        assert_eq!(generation_of(b"short"), None);
    }
}
