//! The interval join (Flink's time-windowed join): rows of two streams with
//! equal keys whose times lie within bounds of each other,
//! `left.t - right.t` in `[lower, upper]`. Each side keeps its rows, by key,
//! for as long as a row of the other side could still join them (rows after
//! the watermark can come); a row joins the other side's kept rows when it
//! arrives, as in Flink, and an outer join emits a row that never found a
//! partner null-padded once the watermark passes its bound. The output
//! watermark is held back by the larger bound, so that joined rows are not
//! late downstream.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimestampMillisecondType};
use datafusion::physical_expr::PhysicalExpr;

use super::keys::JoinKeys;
use super::rows::{gather, side_batch, without_input, RowRef};
use super::{JoinKind, Side};
use crate::error::ResultExt;
use crate::message::EventTime;
use crate::operator::{Emitter, Operator};
use crate::operators::watermark::to_millis;
use crate::operators::{batch_of, eval};
use crate::state::keyed::rows::RowList;
use crate::state::keyed::{KeyedTable, StateCodec, StateContext, StateTable, Timers};
use crate::state::{StateEntry, StateWriter};
use crate::time::{MAX_WATERMARK, MIN_WATERMARK};
use crate::{EngineError, Result};

/// What an interval join computes, as planned.
#[derive(Debug, Clone)]
pub struct IntervalJoinSpec {
    /// Inner, left, right or full.
    pub kind: JoinKind,
    /// Each side's columns (input 0: left, input 1: right).
    pub schemas: [SchemaRef; 2],
    /// The equality keys over each side's columns (pairwise equal).
    pub keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    /// The keys' common types (the right side's are cast to them).
    pub key_types: Vec<DataType>,
    /// Each side's time attribute, by column index.
    pub times: [usize; 2],
    /// Least `left.t - right.t` (milliseconds, inclusive).
    pub lower: i64,
    /// Greatest `left.t - right.t` (milliseconds, inclusive).
    pub upper: i64,
    /// NULL keys are equal (`IS NOT DISTINCT FROM`); otherwise they never join.
    pub null_equal: bool,
    /// The join condition over the output columns, checked on each pair.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Left columns, then right columns.
    pub output_schema: SchemaRef,
    /// The plan as text (for `explain` and checkpoint plan checks).
    pub describe: String,
}

impl IntervalJoinSpec {
    /// The range of partner times of a `side` row at `t`; its end is the
    /// latest time a partner can have (the row is kept while the watermark is
    /// below it).
    fn partner_range(&self, side: Side, t: i64) -> (i64, i64) {
        match side {
            Side::Left => (t.saturating_sub(self.upper), t.saturating_sub(self.lower)),
            Side::Right => (t.saturating_add(self.lower), t.saturating_add(self.upper)),
        }
    }
}

/// A row kept for later partners.
pub(super) struct Entry {
    pub(super) row: RowRef,
    pub(super) time: i64,
    /// Whether it found a partner (a temporal join's version: whether it
    /// is a deletion).
    pub(super) matched: bool,
}

/// A key's kept rows, and the deadline its timer is registered for (the
/// watermark at which its earliest row can meet no partner).
pub(super) struct KeyRows {
    pub(super) rows: Vec<Entry>,
    pub(super) armed: i64,
}

/// Stores a key's kept rows: its deadline, then per row its time and
/// whether it found a partner, with the row.
pub(super) struct KeyRowsCodec {
    pub(super) list: RowList,
}

impl StateCodec<KeyRows> for KeyRowsCodec {
    fn encode(&mut self, k: &mut KeyRows, out: &mut Vec<u8>) -> Result<()> {
        self.encode_all(std::slice::from_mut(k), out, &mut vec![])
    }

    /// The rows of all keys converted at once, each key's after its timer.
    fn encode_all(
        &mut self,
        keys: &mut [KeyRows],
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        let metas: Vec<Vec<[u8; 9]>> = keys
            .iter()
            .map(|k| {
                k.rows
                    .iter()
                    .map(|e| {
                        let mut m = [0u8; 9];
                        m[..8].copy_from_slice(&e.time.to_le_bytes());
                        m[8] = u8::from(e.matched);
                        m
                    })
                    .collect()
            })
            .collect();
        let values: Vec<(&KeyRows, &Vec<[u8; 9]>)> = keys.iter().zip(&metas).collect();
        let armed = |(k, _): &(&KeyRows, &Vec<[u8; 9]>), out: &mut Vec<u8>| {
            out.extend_from_slice(&k.armed.to_le_bytes());
            Ok(())
        };
        fn rows<'a>(
            (k, m): &'a (&'a KeyRows, &'a Vec<[u8; 9]>),
        ) -> impl Iterator<Item = (&'a RowRef, &'a [u8])> {
            k.rows.iter().zip(m.iter()).map(|(e, m)| (&e.row, &m[..]))
        }
        self.list.encode_headed(&values, armed, rows, out, ends)
    }

    fn decode(&mut self, _key: &[u8], bytes: &[u8]) -> Result<KeyRows> {
        let corrupt = || EngineError::State("stored join rows are corrupt".into());
        let (armed, body) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let (batch, metas) = self.list.decode(body)?;
        let rows = metas
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let (t, flag) = m.split_first_chunk::<8>().ok_or_else(corrupt)?;
                Ok(Entry {
                    row: (batch.clone(), i),
                    time: i64::from_le_bytes(*t),
                    matched: flag.first() == Some(&1),
                })
            })
            .collect::<Result<_>>()?;
        Ok(KeyRows {
            rows,
            armed: i64::from_le_bytes(*armed),
        })
    }

    fn size(&self, k: &KeyRows) -> usize {
        k.rows.len() * (std::mem::size_of::<Entry>() + self.list.row_size())
    }
}

/// The rows one side keeps, by key, in a declared keyed table, with a timer
/// per key at its earliest deadline, so that a watermark visits only the
/// keys it expires.
pub(super) struct Kept {
    by_key: KeyedTable<KeyRows, KeyRowsCodec>,
    deadlines: Timers,
}

impl Kept {
    fn declare(
        ctx: &mut StateContext,
        names: [&'static str; 2],
        schema: &SchemaRef,
    ) -> Result<Self> {
        let codec = KeyRowsCodec {
            list: RowList::new(schema.clone())?,
        };
        Ok(Self {
            by_key: ctx.table(names[0], codec, None)?,
            deadlines: ctx.timers(names[1])?,
        })
    }

    /// Keeps `entry` under `key`; it can meet no partner once the watermark
    /// reaches `last`.
    fn push(&mut self, key: &[u8], entry: Entry, last: i64) -> Result<()> {
        let make = || {
            Ok(Some(KeyRows {
                rows: vec![],
                armed: i64::MAX,
            }))
        };
        let Some(k) = self.by_key.get_mut_or(key, 0, make)? else {
            return Ok(());
        };
        k.rows.push(entry);
        if last < k.armed {
            k.armed = last;
            self.deadlines.register(last, key)?;
        }
        Ok(())
    }

    /// Removes the rows whose `last(time)` the watermark `wm` has reached.
    fn expire(&mut self, wm: i64, last: impl Fn(i64) -> i64) -> Result<Vec<Entry>> {
        let mut gone = vec![];
        for (deadline, key) in self.deadlines.pop_due(wm)? {
            // A key gone, or registered again since, is skipped.
            let Some(k) = self.by_key.get_mut(&key, 0)? else {
                continue;
            };
            if k.armed != deadline {
                continue;
            }
            gone.extend(k.rows.extract_if(.., |e| last(e.time) <= wm));
            match k.rows.iter().map(|e| last(e.time)).min() {
                Some(next) => {
                    k.armed = next;
                    self.deadlines.register(next, &key)?;
                }
                None => self.by_key.remove(&key),
            }
        }
        Ok(gone)
    }
}

/// Runs an interval join of two inputs.
pub struct IntervalJoin {
    pub(super) spec: IntervalJoinSpec,
    keys: JoinKeys,
    kept: [Kept; 2],
    pub(super) watermark: EventTime,
}

const TABLES: [[&str; 2]; 2] = [["left", "left deadlines"], ["right", "right deadlines"]];

/// A side's rows as they arrive: times, keys, and the batch.
struct Arrival {
    batch: Arc<RecordBatch>,
    times: Vec<Option<i64>>,
    keys: Vec<Option<Box<[u8]>>>,
}

impl IntervalJoin {
    /// The operator for `spec`.
    pub fn new(spec: IntervalJoinSpec) -> Result<Self> {
        let keys = JoinKeys::for_sides(&spec.keys, spec.key_types.clone(), spec.null_equal)?;
        let kept = Self::declare(&spec, &mut StateContext::detached())?;
        Ok(Self {
            spec,
            keys,
            kept,
            watermark: MIN_WATERMARK,
        })
    }

    fn declare(spec: &IntervalJoinSpec, ctx: &mut StateContext) -> Result<[Kept; 2]> {
        Ok([
            Kept::declare(ctx, TABLES[0], &spec.schemas[0])?,
            Kept::declare(ctx, TABLES[1], &spec.schemas[1])?,
        ])
    }

    /// Keeps a row of `side` for later partners; it can meet none once the
    /// watermark reaches its last partner time.
    fn keep(
        &mut self,
        side: Side,
        row: RowRef,
        time: i64,
        key: &[u8],
        matched: bool,
    ) -> Result<()> {
        let last = self.spec.partner_range(side, time).1;
        let entry = Entry { row, time, matched };
        self.kept[side.index()].push(key, entry, last)
    }

    /// How far the output watermark trails the input's.
    fn delay(&self) -> i64 {
        0.max(self.spec.upper).max(self.spec.lower.saturating_neg())
    }

    /// Times and keys of a side's batch.
    fn arrival(&self, side: Side, batch: RecordBatch) -> Result<Arrival> {
        let s = side.index();
        let time = to_millis(batch.column(self.spec.times[s]), "join time")?;
        let time = time.as_primitive::<TimestampMillisecondType>();
        let times: Vec<Option<i64>> = time.iter().collect();
        let keys = self.keys.of(&self.spec.keys[s], &batch)?;
        Ok(Arrival {
            batch: Arc::new(batch),
            times,
            keys,
        })
    }

    /// A batch of output rows: pairs (left, right) or, with one side `None`,
    /// null-padded rows.
    fn output(&self, left: &[Option<&RowRef>], right: &[Option<&RowRef>]) -> Result<RecordBatch> {
        let mut columns = gather(&self.spec.schemas[0], left)?;
        columns.extend(gather(&self.spec.schemas[1], right)?);
        batch_of(&self.spec.output_schema, columns, "join output")
    }

    /// Null-padded rows of `side`.
    fn padded(&self, side: Side, rows: &[RowRef]) -> Result<RecordBatch> {
        let some: Vec<Option<&RowRef>> = rows.iter().map(Some).collect();
        let none: Vec<Option<&RowRef>> = vec![None; rows.len()];
        match side {
            Side::Left => self.output(&some, &none),
            Side::Right => self.output(&none, &some),
        }
    }

    /// Joins arriving rows of `side` with the other side's kept rows, then
    /// keeps them (or, past their bound, pads the unmatched ones).
    fn arrive(&mut self, side: Side, a: Arrival, out: &mut Emitter) -> Result<()> {
        let other = side.other();
        let n = a.batch.num_rows();
        // Candidate pairs: (arriving row, index in the other side's list,
        // that row).
        let mut pairs: Vec<(usize, usize, RowRef)> = vec![];
        for i in 0..n {
            let (Some(t), Some(k)) = (a.times[i], &a.keys[i]) else {
                continue;
            };
            let (lo, hi) = self.spec.partner_range(side, t);
            let Some(list) = self.kept[other.index()].by_key.get(k, 0)? else {
                continue;
            };
            pairs.extend(
                list.rows
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.time >= lo && e.time <= hi)
                    .map(|(j, e)| (i, j, e.row.clone())),
            );
        }
        let mut matched = vec![false; n];
        if !pairs.is_empty() {
            let mine: Vec<RowRef> = pairs
                .iter()
                .map(|(i, _, _)| (a.batch.clone(), *i))
                .collect();
            let theirs: Vec<RowRef> = pairs.iter().map(|(_, _, r)| r.clone()).collect();
            let mine_refs: Vec<Option<&RowRef>> = mine.iter().map(Some).collect();
            let theirs_refs: Vec<Option<&RowRef>> = theirs.iter().map(Some).collect();
            let joined = match side {
                Side::Left => self.output(&mine_refs, &theirs_refs)?,
                Side::Right => self.output(&theirs_refs, &mine_refs)?,
            };
            let pass: Vec<bool> = match &self.spec.filter {
                None => vec![true; pairs.len()],
                Some(f) => {
                    let v = eval(f.as_ref(), &joined, "join condition")?;
                    let b = v.as_boolean_opt().ok_or_else(|| {
                        EngineError::Graph("the join condition is not boolean".into())
                    })?;
                    (0..b.len()).map(|k| b.is_valid(k) && b.value(k)).collect()
                }
            };
            for ((i, j, _), &ok) in pairs.iter().zip(&pass) {
                if !ok {
                    continue;
                }
                matched[*i] = true;
                if let Some(k) = &a.keys[*i] {
                    if let Some(e) = self.kept[other.index()]
                        .by_key
                        .get_mut(k, 0)?
                        .and_then(|l| l.rows.get_mut(*j))
                    {
                        e.matched = true;
                    }
                }
            }
            let mask = BooleanArray::from(pass);
            let joined = filter_record_batch(&joined, &mask).context("join condition")?;
            if joined.num_rows() > 0 {
                out.batch(joined);
            }
        }
        // Keep the rows a later row of the other side may join; pad the
        // others now if they never matched.
        let mut pad: Vec<RowRef> = vec![];
        for (i, (&t, k)) in a.times.iter().zip(a.keys).enumerate() {
            let keep = match (t, k) {
                (Some(t), Some(k)) if self.spec.partner_range(side, t).1 > self.watermark => {
                    Some((t, k))
                }
                _ => None,
            };
            match keep {
                Some((time, k)) => self.keep(side, (a.batch.clone(), i), time, &k, matched[i])?,
                None if !matched[i] && self.spec.kind.keeps(side) => pad.push((a.batch.clone(), i)),
                None => {}
            }
        }
        if !pad.is_empty() {
            out.batch(self.padded(side, &pad)?);
        }
        Ok(())
    }

    /// Drops the kept rows no later row can join, padding the unmatched ones
    /// of an outer side.
    fn expire(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        for side in Side::BOTH {
            let spec = &self.spec;
            let gone = self.kept[side.index()].expire(wm, |t| spec.partner_range(side, t).1)?;
            let keeps = self.spec.kind.keeps(side);
            let pad: Vec<RowRef> = gone
                .into_iter()
                .filter(|e| keeps && !e.matched)
                .map(|e| e.row)
                .collect();
            if !pad.is_empty() {
                out.batch(self.padded(side, &pad)?);
            }
        }
        Ok(())
    }
}

impl Operator for IntervalJoin {
    fn name(&self) -> String {
        format!("IntervalJoin({})", self.spec.describe)
    }

    fn key_exprs(&self, input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        self.keys.exchange(input)
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some(super::UNKEYED_JOIN)
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(IntervalJoin::new(self.spec.clone())?)))
    }

    fn on_batch(&mut self, _batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        Err(without_input())
    }

    fn on_input(&mut self, input: usize, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let (side, own) = side_batch(input, batch, &self.spec.schemas)?;
        let a = self.arrival(side, own)?;
        self.arrive(side, a, out)
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        if wm > self.watermark {
            self.watermark = wm;
            self.expire(wm, out)?;
        }
        let held = if wm == MAX_WATERMARK {
            wm
        } else {
            wm.saturating_sub(self.delay())
        };
        out.watermark(held);
        Ok(())
    }

    fn on_end(&mut self, out: &mut Emitter) -> Result<()> {
        // Rows still kept can meet no partner any more.
        self.expire(MAX_WATERMARK, out)
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        self.kept = Self::declare(&self.spec, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        let [left, right] = &mut self.kept;
        vec![
            &mut left.by_key,
            &mut left.deadlines,
            &mut right.by_key,
            &mut right.deadlines,
        ]
    }

    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        self.save_watermark(w)
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        self.load_watermark(entries)
    }
}
