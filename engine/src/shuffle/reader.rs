//! The reading end of an exchange, independent of the log: takes each
//! partition's records in order and says what to emit downstream.
//!
//! Each (partition, producer) pair is a channel of its own, ordered in its
//! partition. A barrier is emitted once every channel has brought it (or has
//! ended); what a channel brings after its barrier waits until then, so that
//! rows of the next checkpoint never come before its barrier. The position
//! stored with the barrier is, per partition, just past the oldest of its
//! channels' last markers: a restore reads again from there, and takes only
//! the records of its own generation.

use std::collections::VecDeque;

use datafusion::arrow::record_batch::RecordBatch;

use super::record::{decode, generation_of, Body, Record};
use super::Marker;
use crate::message::{CheckpointId, EventTime};
use crate::{EngineError, Result};

/// What the reader emits.
#[derive(Debug, Clone)]
pub enum Emit {
    /// Rows.
    Rows(RecordBatch),
    /// The merged watermark rose.
    Watermark(EventTime),
    /// Every channel that has not ended is idle.
    Idle,
    /// Checkpoint `id` is aligned; the positions to store with it.
    Barrier(CheckpointId, Vec<(u16, i64)>),
}

#[derive(Default, Clone)]
struct Channel {
    watermark: Option<EventTime>,
    idle: bool,
    ended: bool,
    /// The barrier it brought that is not yet aligned.
    passed: Option<CheckpointId>,
    /// The offset just past its last barrier or end.
    position: i64,
}

/// The exchange reader's state over its partitions (key groups).
pub struct ExchangeReader {
    generation: u64,
    producers: usize,
    groups: Vec<u16>,
    channels: Vec<Channel>,
    /// Records of channels that passed their barrier, in arrival order.
    held: VecDeque<(usize, i64, Record)>,
    emitted_watermark: Option<EventTime>,
    idle_emitted: bool,
    /// Records of other generations skipped.
    pub skipped: u64,
}

impl ExchangeReader {
    /// A reader of `groups` (each read from `start[i]`), of records of
    /// `generation` written by `producers` producers.
    pub fn new(generation: u64, producers: u32, groups: Vec<u16>, start: &[i64]) -> Self {
        let producers = producers.max(1) as usize;
        let mut channels = vec![];
        for i in 0..groups.len() {
            let position = start.get(i).copied().unwrap_or(0);
            for _ in 0..producers {
                channels.push(Channel {
                    position,
                    ..Default::default()
                });
            }
        }
        Self {
            generation,
            producers,
            groups,
            channels,
            held: VecDeque::new(),
            emitted_watermark: None,
            idle_emitted: false,
            skipped: 0,
        }
    }

    /// Whether every channel has ended.
    pub fn finished(&self) -> bool {
        self.channels.iter().all(|c| c.ended)
    }

    /// Takes the record at `offset` of the partition of `group`.
    pub fn on_record(
        &mut self,
        group: u16,
        offset: i64,
        bytes: &[u8],
        out: &mut Vec<Emit>,
    ) -> Result<()> {
        if generation_of(bytes) != Some(self.generation) {
            self.skipped += 1;
            return Ok(());
        }
        let record = decode(bytes)?;
        let Some(part) = self.groups.iter().position(|g| *g == group) else {
            return Err(EngineError::State(format!(
                "exchange record of key group {group}, which this reader does not read"
            )));
        };
        if record.producer as usize >= self.producers {
            return Err(EngineError::State(format!(
                "exchange record of producer {} of {}",
                record.producer, self.producers
            )));
        }
        let ch = part * self.producers + record.producer as usize;
        self.take(ch, offset, record, out);
        self.align(out);
        Ok(())
    }

    fn take(&mut self, ch: usize, offset: i64, record: Record, out: &mut Vec<Emit>) {
        if self.channels[ch].passed.is_some() {
            self.held.push_back((ch, offset, record));
            return;
        }
        let c = &mut self.channels[ch];
        match record.body {
            Body::Rows(b) => {
                c.idle = false;
                out.push(Emit::Rows(b));
            }
            Body::Marker(Marker::Watermark(wm)) => {
                c.idle = false;
                c.watermark = Some(c.watermark.map_or(wm, |w| w.max(wm)));
            }
            Body::Marker(Marker::Idle) => c.idle = true,
            Body::Marker(Marker::Barrier(id)) => {
                c.passed = Some(id);
                c.position = offset + 1;
            }
            Body::Marker(Marker::End) => {
                c.ended = true;
                c.position = offset + 1;
            }
        }
        self.merge_watermarks(out);
    }

    fn merge_watermarks(&mut self, out: &mut Vec<Emit>) {
        let active: Vec<&Channel> = self
            .channels
            .iter()
            .filter(|c| !c.ended && !c.idle)
            .collect();
        if active.is_empty() {
            if self.channels.iter().any(|c| c.idle) && !self.idle_emitted {
                // As Flink's watermark valve: once no channel can advance,
                // the highest watermark any idle one brought holds.
                let max = self
                    .channels
                    .iter()
                    .filter(|c| !c.ended)
                    .filter_map(|c| c.watermark)
                    .max();
                if let Some(wm) = max.filter(|wm| self.emitted_watermark.is_none_or(|e| *wm > e)) {
                    self.emitted_watermark = Some(wm);
                    out.push(Emit::Watermark(wm));
                }
                self.idle_emitted = true;
                out.push(Emit::Idle);
            }
            return;
        }
        self.idle_emitted = false;
        let min = active.iter().map(|c| c.watermark).min().flatten();
        if let Some(wm) = min.filter(|wm| self.emitted_watermark.is_none_or(|e| *wm > e)) {
            self.emitted_watermark = Some(wm);
            out.push(Emit::Watermark(wm));
        }
    }

    /// Emits the oldest barrier once every channel that has not ended
    /// brought it, then lets the held records through.
    fn align(&mut self, out: &mut Vec<Emit>) {
        loop {
            let open: Vec<&Channel> = self.channels.iter().filter(|c| !c.ended).collect();
            let Some(id) = open.iter().filter_map(|c| c.passed).min() else {
                return;
            };
            if open.iter().any(|c| c.passed != Some(id)) {
                return;
            }
            let positions = self
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    let chans = &self.channels[i * self.producers..(i + 1) * self.producers];
                    (*g, chans.iter().map(|c| c.position).min().unwrap_or(0))
                })
                .collect();
            out.push(Emit::Barrier(id, positions));
            for c in &mut self.channels {
                c.passed = None;
            }
            for (ch, offset, record) in std::mem::take(&mut self.held) {
                self.take(ch, offset, record, out);
            }
        }
    }
}

/// Encodes the positions stored with a barrier.
pub fn encode_positions(positions: &[(u16, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(positions.len() * 10);
    for (g, o) in positions {
        out.extend_from_slice(&g.to_be_bytes());
        out.extend_from_slice(&o.to_be_bytes());
    }
    out
}

/// Decodes what [`encode_positions`] wrote.
pub fn decode_positions(bytes: &[u8]) -> Result<Vec<(u16, i64)>> {
    if !bytes.len().is_multiple_of(10) {
        return Err(EngineError::State(format!(
            "exchange position of {} bytes, a multiple of 10 expected",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(10)
        .map(|c| {
            let g = u16::from_be_bytes([c[0], c[1]]);
            let mut o = [0u8; 8];
            o.copy_from_slice(&c[2..]);
            (g, i64::from_be_bytes(o))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::super::record::{encode_marker, encode_rows};
    use super::*;

    fn rows(v: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![v]))]).expect("batch")
    }

    fn values(out: &[Emit]) -> Vec<String> {
        out.iter()
            .map(|e| match e {
                Emit::Rows(b) => {
                    let v = b.column(0).as_any().downcast_ref::<Int64Array>();
                    format!("r{}", v.map_or(-1, |a| a.value(0)))
                }
                Emit::Watermark(w) => format!("w{w}"),
                Emit::Idle => "idle".into(),
                Emit::Barrier(id, pos) => format!("b{id}{pos:?}"),
            })
            .collect()
    }

    /// Two partitions, two producers: a barrier waits for all four
    /// channels, rows behind it wait too, the watermark is the minimum, and
    /// records of another generation are skipped.
    #[test]
    fn barriers_align_and_watermarks_merge_over_every_channel() {
        let mut r = ExchangeReader::new(5, 2, vec![3, 8], &[100, 200]);
        let mut out = vec![];
        let feed = |r: &mut ExchangeReader, out: &mut Vec<Emit>, g: u16, o: i64, bytes: Vec<u8>| {
            r.on_record(g, o, &bytes, out).expect("record");
        };
        let wm = |p, w| encode_marker(5, p, Marker::Watermark(w));
        let bar = |p| encode_marker(5, p, Marker::Barrier(1));
        feed(
            &mut r,
            &mut out,
            3,
            100,
            encode_rows(5, 0, &rows(1)).expect("rows"),
        );
        feed(&mut r, &mut out, 3, 101, wm(0, 10));
        feed(&mut r, &mut out, 3, 102, wm(1, 20));
        feed(&mut r, &mut out, 8, 200, wm(0, 30));
        feed(
            &mut r,
            &mut out,
            8,
            201,
            encode_rows(4, 1, &rows(99)).expect("old generation"),
        );
        feed(&mut r, &mut out, 8, 202, wm(1, 15));
        feed(&mut r, &mut out, 3, 103, bar(0));
        feed(
            &mut r,
            &mut out,
            3,
            104,
            encode_rows(5, 0, &rows(2)).expect("rows"),
        );
        feed(&mut r, &mut out, 3, 105, bar(1));
        feed(&mut r, &mut out, 8, 203, bar(0));
        feed(
            &mut r,
            &mut out,
            8,
            204,
            encode_rows(5, 1, &rows(3)).expect("rows"),
        );
        assert_eq!(
            values(&out),
            ["r1", "w10", "r3"],
            "row 2 waits for the barrier"
        );
        out.clear();
        feed(&mut r, &mut out, 8, 205, bar(1));
        assert_eq!(values(&out), ["b1[(3, 104), (8, 204)]", "r2"]);
        assert_eq!(r.skipped, 1);
        out.clear();
        for (g, p) in [(3, 0), (3, 1), (8, 0)] {
            feed(&mut r, &mut out, g, 300, encode_marker(5, p, Marker::End));
        }
        assert!(!r.finished());
        feed(&mut r, &mut out, 8, 301, encode_marker(5, 1, Marker::Idle));
        // The channel at 10 ended: the next lowest, 15, holds the rest back.
        assert_eq!(values(&out), ["w15", "idle"]);
        feed(&mut r, &mut out, 8, 302, encode_marker(5, 1, Marker::End));
        assert!(r.finished());
    }

    #[test]
    fn when_every_channel_is_idle_the_highest_watermark_holds() {
        let mut r = ExchangeReader::new(5, 2, vec![0], &[0]);
        let mut out = vec![];
        let mut feed = |o: i64, m: Marker| {
            r.on_record(0, o, &encode_marker(5, (o % 2) as u32, m), &mut out)
                .expect("record");
        };
        feed(0, Marker::Watermark(10));
        // Producer 0 goes idle first; producer 1 never brought a watermark.
        feed(2, Marker::Idle);
        feed(1, Marker::Idle);
        assert_eq!(values(&out), ["w10", "idle"]);
    }

    #[test]
    fn positions_read_back() {
        let p = vec![(0, 0), (127, i64::MAX), (5, 42)];
        assert_eq!(decode_positions(&encode_positions(&p)).expect("decode"), p);
        assert!(decode_positions(&[1, 2, 3]).is_err());
    }
}
