//! The watermark assigner: computes `WATERMARK FOR rowtime AS expr` per row and
//! emits watermarks.
//!
//! Watermarks are kept per source split (a Kafka partition) and merged by
//! minimum, as Flink's per-split watermark generation does: a split that is
//! behind holds the others back, an idle split does not until it speaks again,
//! and a finished split no longer counts. A source that sends no split events
//! is one split.
//!
//! Vigil advances the watermark after every row, as Flink does with
//! `pipeline.auto-watermark-interval = 0`, so which rows are late is decided by
//! the input alone, never by timing. It stays vectorised: a batch is only split
//! before a row that could be late (its event time is at or behind the
//! watermark reached by the rows before it), and the watermark is emitted there.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use super::eval;
use crate::error::ResultExt;
use crate::message::{EventTime, SplitEvent, SplitId};
use crate::operator::{Emitter, Operator};
use crate::state::keyed::StateContext;
use crate::state::{StateEntry, StateWriter, OPERATOR_STATE};
use crate::time::{format_event_time, MAX_WATERMARK, MIN_WATERMARK};
use crate::{EngineError, Result};

/// The watermark state of one split.
#[derive(Debug, Clone, Copy)]
struct SplitState {
    watermark: EventTime,
    idle: bool,
    finished: bool,
}

impl SplitState {
    fn holds_back(&self) -> bool {
        !self.idle && !self.finished
    }
}

/// Emits watermarks for one source, from an expression over its rows.
pub struct WatermarkAssigner {
    table: String,
    rowtime_idx: usize,
    watermark_expr: Arc<dyn PhysicalExpr>,
    splits: BTreeMap<SplitId, SplitState>,
    current_split: SplitId,
    /// Whether the idle status was sent downstream (every split idle).
    idle_sent: bool,
    emitted: EventTime,
    /// Which subtask of the source it follows, of how many.
    subtask: (usize, usize),
    /// What a restore handed it, read once its subtask is known (`open`).
    restored: Vec<StateEntry>,
    /// Stored keys of another parallelism, deleted at the next checkpoint.
    stale: Vec<Vec<u8>>,
}

/// The key of subtask `i` of `n`'s split watermarks (`splits` when the
/// source runs once), and that key read back.
fn splits_key((i, n): (usize, usize)) -> Vec<u8> {
    if n == 1 {
        b"splits".to_vec()
    } else {
        format!("splits/{i}/{n}").into_bytes()
    }
}

fn parse_splits_key(key: &[u8]) -> Option<(usize, usize)> {
    if key == b"splits" {
        return Some((0, 1));
    }
    let rest = std::str::from_utf8(key.strip_prefix(b"splits/")?).ok()?;
    let (i, n) = rest.split_once('/')?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

impl WatermarkAssigner {
    /// `rowtime_idx` is the column of the time attribute; `watermark_expr`
    /// computes the watermark a row allows (e.g. `ts - INTERVAL '5' SECOND`).
    pub fn new(table: String, rowtime_idx: usize, watermark_expr: Arc<dyn PhysicalExpr>) -> Self {
        Self {
            table,
            rowtime_idx,
            watermark_expr,
            splits: BTreeMap::new(),
            current_split: 0,
            idle_sent: false,
            emitted: MIN_WATERMARK,
            subtask: (0, 1),
            restored: vec![],
            stale: vec![],
        }
    }

    /// Reads the split watermarks stored as `v`.
    fn read_splits(&mut self, v: &[u8]) -> Result<()> {
        let bad = || EngineError::State("malformed watermark state".into());
        if v.len() < 12 || !(v.len() - 12).is_multiple_of(13) {
            return Err(bad());
        }
        self.emitted = i64::from_be_bytes(v[0..8].try_into().map_err(|_| bad())?);
        self.current_split = u32::from_be_bytes(v[8..12].try_into().map_err(|_| bad())?);
        for rec in v[12..].chunks_exact(13) {
            let id = u32::from_be_bytes(rec[0..4].try_into().map_err(|_| bad())?);
            let watermark = i64::from_be_bytes(rec[4..12].try_into().map_err(|_| bad())?);
            self.splits.insert(
                id,
                SplitState {
                    watermark,
                    idle: rec[12] & 1 != 0,
                    finished: rec[12] & 2 != 0,
                },
            );
        }
        Ok(())
    }

    fn split_mut(&mut self, id: SplitId) -> &mut SplitState {
        self.splits.entry(id).or_insert(SplitState {
            watermark: MIN_WATERMARK,
            idle: false,
            finished: false,
        })
    }

    /// The minimum watermark over the splits that hold it back, other than `except`;
    /// None when there is none.
    fn min_except(&self, except: Option<SplitId>) -> Option<EventTime> {
        self.splits
            .iter()
            .filter(|(id, s)| Some(**id) != except && s.holds_back())
            .map(|(_, s)| s.watermark)
            .min()
    }

    /// Emits the combined watermark if it advanced, and the idle status once
    /// every split is idle.
    fn advance(&mut self, out: &mut Emitter) {
        match self.min_except(None) {
            Some(wm) => {
                self.idle_sent = false;
                if wm > self.emitted {
                    self.emitted = wm;
                    out.watermark(wm);
                }
            }
            None => {
                // Every split is idle or finished. The idle ones that have had data
                // still bound the watermark by their own progress, so which split's
                // idleness was noticed first does not matter.
                let idle_min = self
                    .splits
                    .values()
                    .filter(|s| s.idle && !s.finished && s.watermark > MIN_WATERMARK)
                    .map(|s| s.watermark)
                    .min();
                if let Some(wm) = idle_min.filter(|wm| *wm > self.emitted) {
                    self.emitted = wm;
                    out.watermark(wm);
                }
                let all_idle = !self.splits.is_empty()
                    && self.splits.values().all(|s| s.idle || s.finished)
                    && self.splits.values().any(|s| s.idle);
                if all_idle && !self.idle_sent {
                    self.idle_sent = true;
                    out.idle();
                }
            }
        }
    }
}

/// Casts a timestamp array of any unit to milliseconds (values as i64).
pub fn to_millis(array: &ArrayRef, context: &str) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, None) => Ok(array.clone()),
        _ => cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None)).context(context),
    }
}

impl Operator for WatermarkAssigner {
    fn name(&self) -> String {
        format!("WatermarkAssigner({}: {})", self.table, self.watermark_expr)
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let wm = eval(self.watermark_expr.as_ref(), &batch, "watermark expression")?;
        let wm = to_millis(&wm, "watermark expression")?;
        let wm = wm.as_primitive::<TimestampMillisecondType>();
        let rowtime = to_millis(batch.column(self.rowtime_idx), "rowtime column")?;
        let rowtime = rowtime.as_primitive::<TimestampMillisecondType>();
        let split = self.current_split;
        let others = self.min_except(Some(split)).unwrap_or(EventTime::MAX);
        let state = self.split_mut(split);
        state.idle = false;
        let mut own = state.watermark;
        let mut start = 0;
        for i in 0..batch.num_rows() {
            let before = own.min(others);
            if before > self.emitted && rowtime.is_valid(i) && rowtime.value(i) <= before {
                out.batch(batch.slice(start, i - start));
                out.watermark(before);
                self.emitted = before;
                start = i;
            }
            if wm.is_valid(i) {
                own = own.max(wm.value(i));
            }
        }
        self.split_mut(split).watermark = own;
        out.batch(batch.slice(start, batch.num_rows() - start));
        self.advance(out);
        Ok(())
    }

    fn on_split(&mut self, event: SplitEvent, out: &mut Emitter) -> Result<()> {
        match event {
            SplitEvent::Current(id) => {
                self.current_split = id;
                let state = self.split_mut(id);
                let was_idle = state.idle;
                state.idle = false;
                state.finished = false;
                if was_idle {
                    tracing::debug!(table = %self.table, split = id, "split active again");
                }
            }
            SplitEvent::Idle(id) => {
                tracing::debug!(table = %self.table, split = id, "split idle");
                self.split_mut(id).idle = true;
                self.advance(out);
            }
            SplitEvent::Finished(id) => {
                self.split_mut(id).finished = true;
                self.advance(out);
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        // A source that emits watermarks of its own: keep the larger.
        if wm > self.emitted {
            let split = self.current_split;
            let state = self.split_mut(split);
            state.watermark = state.watermark.max(wm);
            self.advance(out);
        }
        Ok(())
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        self.subtask = state.subtask();
        let entries = std::mem::take(&mut self.restored);
        let stored: Vec<((usize, usize), &StateEntry)> = entries
            .iter()
            .filter_map(|e| parse_splits_key(&e.key).map(|s| (s, e)))
            .collect();
        // The same subtask of the same parallelism: its splits are the same
        // (a source spreads splits by their ids and the parallelism).
        if let Some((_, e)) = stored.iter().find(|(s, _)| *s == self.subtask) {
            self.read_splits(&e.value)?;
        } else if !stored.is_empty() {
            // Rescaled: splits moved between subtasks; none may go back
            // behind the watermark every subtask had passed.
            let mut emitted = EventTime::MAX;
            for (_, e) in &stored {
                let mut other = WatermarkAssigner::new(
                    self.table.clone(),
                    self.rowtime_idx,
                    self.watermark_expr.clone(),
                );
                other.read_splits(&e.value)?;
                emitted = emitted.min(other.emitted);
            }
            self.emitted = emitted;
        }
        self.stale = stored
            .iter()
            .filter(|(s, _)| s.1 != self.subtask.1)
            .map(|(_, e)| e.key.clone())
            .collect();
        Ok(())
    }

    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        for key in self.stale.drain(..) {
            w.delete(OPERATOR_STATE, &key);
        }
        // emitted, current split, then per split: id, watermark, flags.
        let mut v = Vec::with_capacity(12 + self.splits.len() * 13);
        v.extend_from_slice(&self.emitted.to_be_bytes());
        v.extend_from_slice(&self.current_split.to_be_bytes());
        for (id, s) in &self.splits {
            v.extend_from_slice(&id.to_be_bytes());
            v.extend_from_slice(&s.watermark.to_be_bytes());
            v.push(u8::from(s.idle) | (u8::from(s.finished) << 1));
        }
        w.put(OPERATOR_STATE, &splits_key(self.subtask), v);
        Ok(())
    }

    /// Kept until `open` says which subtask this instance is.
    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        self.restored = entries;
        Ok(())
    }

    /// One per subtask of a source that runs as several, each with the
    /// watermarks of its own splits.
    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(WatermarkAssigner::new(
            self.table.clone(),
            self.rowtime_idx,
            self.watermark_expr.clone(),
        ))))
    }

    fn runs_per_input(&self) -> bool {
        true
    }

    fn on_end(&mut self, out: &mut Emitter) -> Result<()> {
        tracing::debug!(table = %self.table, last = %format_event_time(self.emitted), "source ended; final watermark");
        out.watermark(MAX_WATERMARK);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::TimestampMillisecondArray;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::physical_expr::expressions::Column;

    use super::*;
    use crate::message::Message;

    fn assigner() -> WatermarkAssigner {
        WatermarkAssigner::new("t".into(), 0, Arc::new(Column::new("ts", 0)))
    }

    fn batch(ts: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        )]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(TimestampMillisecondArray::from(ts.to_vec()))],
        )
        .expect("batch")
    }

    fn watermarks(out: &mut Emitter) -> Vec<EventTime> {
        out.drain()
            .filter_map(|m| match m {
                Message::Watermark(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    fn feed(a: &mut WatermarkAssigner, split: SplitId, ts: &[i64], out: &mut Emitter) {
        a.on_split(SplitEvent::Current(split), out).expect("split");
        a.on_batch(batch(ts), out).expect("batch");
    }

    #[test]
    fn the_slowest_split_holds_the_watermark() {
        let (mut a, mut out) = (assigner(), Emitter::new());
        a.on_split(SplitEvent::Current(0), &mut out).expect("split");
        a.on_split(SplitEvent::Current(1), &mut out).expect("split");
        feed(&mut a, 0, &[100, 200], &mut out);
        assert_eq!(
            watermarks(&mut out),
            Vec::<EventTime>::new(),
            "split 1 has no data yet"
        );
        feed(&mut a, 1, &[50], &mut out);
        assert_eq!(watermarks(&mut out), vec![50]);
        feed(&mut a, 1, &[300], &mut out);
        assert_eq!(watermarks(&mut out), vec![200]);
    }

    #[test]
    fn an_idle_split_is_ignored_until_it_speaks_again() {
        let (mut a, mut out) = (assigner(), Emitter::new());
        a.on_split(SplitEvent::Current(1), &mut out).expect("split");
        feed(&mut a, 0, &[100], &mut out);
        feed(&mut a, 1, &[10], &mut out);
        assert_eq!(watermarks(&mut out), vec![10]);
        a.on_split(SplitEvent::Idle(1), &mut out).expect("idle");
        assert_eq!(watermarks(&mut out), vec![100]);
        feed(&mut a, 0, &[150], &mut out);
        assert_eq!(watermarks(&mut out), vec![150]);
        // Split 1 rejoins behind: the watermark does not go back, and holds until split 1 catches up.
        feed(&mut a, 1, &[20], &mut out);
        assert_eq!(watermarks(&mut out), Vec::<EventTime>::new());
        feed(&mut a, 0, &[400], &mut out);
        assert_eq!(watermarks(&mut out), Vec::<EventTime>::new());
        feed(&mut a, 1, &[300], &mut out);
        assert_eq!(watermarks(&mut out), vec![300]);
    }

    #[test]
    fn every_split_idle_makes_the_input_idle_and_finished_splits_stop_counting() {
        let (mut a, mut out) = (assigner(), Emitter::new());
        a.on_split(SplitEvent::Current(1), &mut out).expect("split");
        feed(&mut a, 0, &[100], &mut out);
        feed(&mut a, 1, &[10], &mut out);
        out.drain().for_each(drop);
        a.on_split(SplitEvent::Finished(1), &mut out)
            .expect("finished");
        assert_eq!(watermarks(&mut out), vec![100]);
        a.on_split(SplitEvent::Idle(0), &mut out).expect("idle");
        assert!(out.drain().any(|m| matches!(m, Message::Idle)));
    }

    #[test]
    fn splits_going_idle_together_release_the_watermark_of_those_with_data() {
        let (mut a, mut out) = (assigner(), Emitter::new());
        a.on_split(SplitEvent::Current(1), &mut out).expect("split");
        feed(&mut a, 0, &[100], &mut out);
        assert_eq!(watermarks(&mut out), Vec::<EventTime>::new());
        // Split 0 is noticed idle first, then split 1, which never had data.
        a.on_split(SplitEvent::Idle(0), &mut out).expect("idle");
        a.on_split(SplitEvent::Idle(1), &mut out).expect("idle");
        assert_eq!(watermarks(&mut out), vec![100]);
    }

    #[test]
    fn rows_late_for_the_combined_watermark_start_a_new_batch() {
        let (mut a, mut out) = (assigner(), Emitter::new());
        feed(&mut a, 0, &[100, 40, 120], &mut out);
        let msgs: Vec<String> = out
            .drain()
            .map(|m| match m {
                Message::Batch(b) => format!("batch{}", b.num_rows()),
                Message::Watermark(w) => format!("wm{w}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(msgs, vec!["batch1", "wm100", "batch2", "wm120"]);
    }

    /// The entries a checkpoint holds after `a` (subtask `i` of `n`) wrote
    /// its state, and the keys it deleted.
    fn stored(a: &mut WatermarkAssigner, (i, n): (usize, usize)) -> (Vec<StateEntry>, usize) {
        a.subtask = (i, n);
        let mut ops = vec![];
        a.snapshot(&mut StateWriter::new(0, 1, &mut ops))
            .expect("snapshot");
        let mut entries = vec![];
        let mut deleted = 0;
        for op in ops {
            match op {
                crate::state::StateOp::Put(k, v) => {
                    let (_, group, key) = crate::state::split_store_key(&k).expect("key");
                    entries.push(StateEntry {
                        key_group: group,
                        key: key.to_vec(),
                        value: v,
                    });
                }
                crate::state::StateOp::Delete(_) => deleted += 1,
            }
        }
        (entries, deleted)
    }

    fn reopened(entries: Vec<StateEntry>, subtask: (usize, usize)) -> WatermarkAssigner {
        let mut a = assigner();
        a.restore(entries).expect("restore");
        let mut ctx = StateContext::detached().for_subtask(subtask.0, subtask.1);
        a.open(&mut ctx).expect("open");
        a
    }

    #[test]
    fn each_subtask_restores_its_own_splits_and_a_rescale_keeps_the_slowest_watermark() {
        let mut out = Emitter::new();
        let (mut first, mut second) = (assigner(), assigner());
        first
            .on_split(SplitEvent::Current(1), &mut out)
            .expect("split");
        feed(&mut first, 0, &[100], &mut out);
        feed(&mut first, 1, &[70], &mut out);
        feed(&mut second, 0, &[40], &mut out);
        let (mut entries, _) = stored(&mut first, (0, 2));
        entries.extend(stored(&mut second, (1, 2)).0);
        assert_eq!(entries.len(), 2, "one key per subtask");

        // The same parallelism: subtask 0 gets its two splits back.
        let mut again = reopened(entries.clone(), (0, 2));
        assert_eq!(again.emitted, 70);
        assert_eq!(again.splits.len(), 2);
        assert_eq!(stored(&mut again, (0, 2)).1, 0, "nothing stale");

        // Another parallelism: no split state (splits moved), the watermark
        // of the slowest subtask, and the old keys deleted once.
        let mut rescaled = reopened(entries, (0, 3));
        assert_eq!(rescaled.emitted, 40);
        assert!(rescaled.splits.is_empty());
        assert_eq!(stored(&mut rescaled, (0, 3)).1, 2);
        assert_eq!(stored(&mut rescaled, (0, 3)).1, 0);
    }
}
