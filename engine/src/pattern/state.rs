//! MATCH_RECOGNIZE state: each partition (its partial matches, the rows they
//! may still read, its match count) is a value of the keyed table
//! `partitions`, and each WITHIN deadline a timer, so partitions beyond the
//! cache live in RocksDB and a checkpoint writes the partitions that changed.
//! What stays operator state is small: the watermark, and the rows waiting
//! for it (by key group, so a job can resume at another parallelism).

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use super::matcher::Matcher;
use super::operator::{MatchRecognize, Partition, Rows};
use crate::error::ResultExt;
use crate::join::rows::RowRef;
use crate::message::EventTime;
use crate::state::arrow_state::{decode_batch, encode_batch, split_by_key_group};
use crate::state::keyed::rows::RowList;
use crate::state::keyed::StateCodec;
use crate::state::{entry_value, put_meta, saved_meta, StateEntry, StateWriter, OPERATOR_STATE};
use crate::{EngineError, Result};

/// A partition as stored, besides its rows.
/// (`M`: the matcher, owned when read, borrowed when written.)
#[derive(Serialize, Deserialize)]
struct StoredPartition<M> {
    first_seq: u64,
    next_seq: u64,
    matches: u64,
    armed: Option<i64>,
    counted: (usize, usize, usize),
    matcher: M,
}

/// Encodes a partition: its header as JSON, then its retained rows in
/// Arrow's row format.
pub(super) struct PartitionCodec {
    rows: RowList,
}

impl PartitionCodec {
    /// A codec for partitions whose rows have the staged layout `schema`.
    pub(super) fn new(schema: SchemaRef) -> Result<Self> {
        Ok(Self {
            rows: RowList::new(schema)?,
        })
    }
}

fn corrupt(e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("MATCH_RECOGNIZE state is corrupt: {e}"))
}

impl StateCodec<Partition> for PartitionCodec {
    fn encode(&mut self, p: &mut Partition, out: &mut Vec<u8>) -> Result<()> {
        self.encode_all(std::slice::from_mut(p), out, &mut vec![])
    }

    /// The rows of all partitions converted at once (see
    /// [`RowList::encode_headed`]), each partition's after its header.
    fn encode_all(
        &mut self,
        partitions: &mut [Partition],
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        let refs: Vec<Vec<RowRef>> = partitions
            .iter()
            .map(|p| {
                p.rows
                    .rows
                    .iter()
                    .map(|(_, b, i)| (b.clone(), *i))
                    .collect()
            })
            .collect();
        let mut header = |(p, _): &(&Partition, &Vec<RowRef>), out: &mut Vec<u8>| {
            let header = StoredPartition {
                first_seq: p.rows.rows.front().map_or(p.rows.next_seq, |r| r.0),
                next_seq: p.rows.next_seq,
                matches: p.matches,
                armed: p.armed,
                counted: p.counted,
                matcher: &p.matcher,
            };
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            serde_json::to_writer(&mut *out, &header).map_err(corrupt)?;
            let len = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&len.to_le_bytes());
            Ok(())
        };
        let values: Vec<(&Partition, &Vec<RowRef>)> = partitions.iter().zip(&refs).collect();
        fn rows<'a>(
            (_, r): &'a (&'a Partition, &'a Vec<RowRef>),
        ) -> impl Iterator<Item = (&'a RowRef, &'a [u8])> {
            r.iter().map(|r| (r, &[][..]))
        }
        self.rows
            .encode_headed(&values, &mut header, rows, out, ends)
    }

    fn decode(&mut self, key: &[u8], bytes: &[u8]) -> Result<Partition> {
        let mut one = self.decode_all(&[(key, bytes)])?;
        one.pop().ok_or_else(|| corrupt("no partition"))
    }

    /// All partitions a prefetch read, their rows in one batch.
    fn decode_all(&mut self, entries: &[(&[u8], &[u8])]) -> Result<Vec<Partition>> {
        let mut headers = Vec::with_capacity(entries.len());
        let mut bodies = Vec::with_capacity(entries.len());
        for (_, bytes) in entries {
            let (len, rest) = bytes
                .split_first_chunk::<4>()
                .ok_or_else(|| corrupt("no header"))?;
            let (header, rows) = rest
                .split_at_checked(u32::from_le_bytes(*len) as usize)
                .ok_or_else(|| corrupt("short header"))?;
            headers.push(header);
            bodies.push(rows);
        }
        let (batch, lists) = self.rows.decode_lists(bodies.into_iter())?;
        let mut row = 0;
        let mut partitions = Vec::with_capacity(entries.len());
        for (((key, _), header), extras) in entries.iter().zip(headers).zip(lists) {
            let h: StoredPartition<Matcher> = serde_json::from_slice(header).map_err(corrupt)?;
            let mut r = Rows {
                rows: Default::default(),
                next_seq: h.next_seq,
            };
            for i in 0..extras.len() {
                r.rows
                    .push_back((h.first_seq + i as u64, batch.clone(), row));
                row += 1;
            }
            let mut p = Partition::new(Arc::from(*key), h.matcher, r, h.matches);
            p.armed = h.armed;
            p.counted = h.counted;
            partitions.push(p);
        }
        Ok(partitions)
    }

    fn size(&self, p: &Partition) -> usize {
        let rows = p.rows.rows.len() * (24 + self.rows.row_size());
        let (threads, runs) = p.matcher.open();
        128 + rows + threads * 64 + runs * 8
    }
}

/// The operator-wide part of the state.
#[derive(Serialize, Deserialize)]
struct Saved {
    watermark: EventTime,
}

impl MatchRecognize {
    /// The watermark, and the rows waiting for it by key group (the
    /// partitions are in the keyed table).
    pub(super) fn save(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        put_meta(
            w,
            &Saved {
                watermark: self.watermark,
            },
            "MATCH_RECOGNIZE",
        )?;
        let mut written = vec![];
        if !self.staged.is_empty() {
            let all = concat_batches(&self.staged_schema, self.staged.iter().map(|b| &b.0))
                .context("MATCH_RECOGNIZE state")?;
            let keys: Vec<ArrayRef> = (0..self.spec.partition_by.len())
                .map(|i| all.column(self.key_start() + i).clone())
                .collect();
            for (g, b) in split_by_key_group(&all, &keys, w.key_groups())? {
                w.put(g, b"staged", encode_batch(&b)?);
                written.push(g);
            }
        }
        for g in std::mem::take(&mut self.stored_groups) {
            if !written.contains(&g) {
                w.delete(g, b"staged");
            }
        }
        self.stored_groups = written;
        Ok(())
    }

    /// Restores the watermark and the waiting rows of the key groups in
    /// `entries`.
    pub(super) fn load(&mut self, mut entries: Vec<StateEntry>) -> Result<()> {
        // The restored table's partitions are not counted.
        self.live = None;
        entries.sort_by_key(|e| e.key_group);
        for group in entries.chunk_by(|a, b| a.key_group == b.key_group) {
            let g = group[0].key_group;
            if g == OPERATOR_STATE {
                if let Some(saved) = saved_meta::<Saved>(group, "MATCH_RECOGNIZE")? {
                    self.watermark = self.watermark.max(saved.watermark);
                }
                continue;
            }
            if let Some(b) = entry_value(group, b"staged") {
                self.stage(decode_batch(b)?);
                self.stored_groups.push(g);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array, RecordBatch, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    #[test]
    fn a_partition_round_trips_with_its_rows_and_sequence_numbers() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "__time",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new("__d0", DataType::Int64, true),
        ]));
        let batch = Arc::new(
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(TimestampMillisecondArray::from(vec![10, 20, 30])),
                    Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
                ],
            )
            .expect("batch"),
        );
        let mut rows = Rows {
            rows: Default::default(),
            next_seq: 9,
        };
        rows.rows.push_back((7, batch.clone(), 1));
        rows.rows.push_back((8, batch.clone(), 2));
        let mut p = Partition::new(Arc::from(&b"k"[..]), Matcher::new(), rows, 4);
        p.armed = Some(99);
        let mut codec = PartitionCodec::new(schema).expect("codec");
        let mut bytes = vec![];
        codec.encode(&mut p, &mut bytes).expect("encode");
        let back = codec.decode(b"k", &bytes).expect("decode");
        assert_eq!(&*back.key_bytes, b"k");
        assert_eq!(
            (back.matches, back.armed, back.rows.next_seq),
            (4, Some(99), 9)
        );
        let seqs: Vec<u64> = back.rows.rows.iter().map(|r| r.0).collect();
        assert_eq!(seqs, vec![7, 8]);
        let (b, i) = back.rows.cell(8).expect("row 8");
        let d = b
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("ints");
        assert_eq!(d.value(i), 3);
        let (b, i) = back.rows.cell(7).expect("row 7");
        assert!(b.column(1).is_null(i));
        assert!(codec.decode(b"k", &bytes[..3]).is_err());
    }
}
