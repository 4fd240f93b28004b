//! The window join (Flink's): both inputs are windowed by the same window
//! TVF and joined on their windows and keys. Each side's rows wait in their
//! window; when the watermark passes a window's end the window's rows are
//! joined, all at once, and the window is dropped: pairs, null-padded rows
//! for outer joins, and for semi and anti joins the left rows with and
//! without a partner. Rows of a window the watermark has passed are late and
//! dropped, as in Flink.
//!
//! Each side's waiting rows are keyed state: a list per (key, window) in a
//! declared table, with a timer at the window's end.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimestampMillisecondType};
use datafusion::physical_expr::PhysicalExpr;

use super::keys::JoinKeys;
use super::rows::{gather, side_batch, without_input, RowRef};
use super::Side;
use crate::message::EventTime;
use crate::metrics::Counter;
use crate::operator::{Emitter, Operator};
use crate::operators::watermark::to_millis;
use crate::operators::{batch_of, eval};
use crate::state::keyed::rows::RowList;
use crate::state::keyed::{KeyedTable, StateContext, StateTable, Timers};
use crate::state::{put_meta, saved_meta, StateEntry, StateWriter};
use crate::time::{MAX_WATERMARK, MIN_WATERMARK};
use crate::window::has_fired;
use crate::{EngineError, Result};

/// What a window join outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowJoinKind {
    /// Pairs.
    Inner,
    /// Pairs, and left rows without a partner, padded.
    Left,
    /// Pairs, and right rows without a partner, padded.
    Right,
    /// Pairs, and unmatched rows of both sides, padded.
    Full,
    /// Left rows with a partner (`IN`, `EXISTS`), once each.
    Semi,
    /// Left rows without a partner (`NOT IN`, `NOT EXISTS`).
    Anti,
}

/// What a window join computes, as planned.
#[derive(Debug, Clone)]
pub struct WindowJoinSpec {
    /// The output.
    pub kind: WindowJoinKind,
    /// Each side's columns.
    pub schemas: [SchemaRef; 2],
    /// The equality keys over each side's columns (pairwise equal).
    pub keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    /// The keys' common types.
    pub key_types: Vec<DataType>,
    /// Each side's `window_start` and `window_end` columns.
    pub windows: [(usize, usize); 2],
    /// NULL keys are equal (`IS NOT DISTINCT FROM`).
    pub null_equal: bool,
    /// Any further condition, over left then right columns.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Left then right columns (pairs, and the filter's input).
    pub pair_schema: SchemaRef,
    /// The output: `pair_schema`, or the left columns for semi and anti joins.
    pub output_schema: SchemaRef,
    /// The plan as text.
    pub describe: String,
}

/// A window's rows of one side, by (window start, key); NULL keys apart.
type Groups = HashMap<(i64, Option<Box<[u8]>>), Vec<RowRef>>;

/// Bytes a waiting key adds after the join key: whether the key is NULL,
/// the window's end and start (all left out of the key group, which is the
/// join key's, as the exchange routes rows).
const WINDOW_BYTES: usize = 17;

/// The table key of a group: the join key, whether it is NULL, the window.
fn group_key(key: &Option<Box<[u8]>>, start: i64, end: i64) -> Vec<u8> {
    let k = key.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(k.len() + WINDOW_BYTES);
    out.extend_from_slice(k);
    out.push(u8::from(key.is_some()));
    out.extend_from_slice(&end.to_be_bytes());
    out.extend_from_slice(&start.to_be_bytes());
    out
}

/// A waiting group's window end, window start and join key (`None`: NULL).
type GroupOf = (i64, i64, Option<Box<[u8]>>);

/// The (window end, window start, key) of a table key.
fn parse_group_key(k: &[u8]) -> Option<GroupOf> {
    let (key, rest) = k.split_at_checked(k.len().checked_sub(WINDOW_BYTES)?)?;
    let (flag, window) = rest.split_first()?;
    let (end, start) = window.split_first_chunk::<8>()?;
    let start: [u8; 8] = start.try_into().ok()?;
    let key = (*flag == 1).then(|| Box::from(key));
    Some((i64::from_be_bytes(*end), i64::from_be_bytes(start), key))
}

/// One side's waiting rows and the timers of their windows' ends.
struct Waiting {
    groups: KeyedTable<Vec<RowRef>, RowList>,
    ends: Timers,
}

/// Runs a window join of two inputs.
pub struct WindowJoin {
    spec: WindowJoinSpec,
    keys: JoinKeys,
    waiting: [Waiting; 2],
    watermark: EventTime,
    late: Counter,
}

const TABLES: [[&str; 2]; 2] = [["left", "left ends"], ["right", "right ends"]];

impl WindowJoin {
    /// The operator for `spec`; `late` counts rows of windows already joined.
    pub fn new(spec: WindowJoinSpec, late: Counter) -> Result<Self> {
        let keys = JoinKeys::for_sides(&spec.keys, spec.key_types.clone(), spec.null_equal)?;
        let waiting = Self::declare(&spec, &mut StateContext::detached())?;
        Ok(Self {
            spec,
            keys,
            waiting,
            watermark: MIN_WATERMARK,
            late,
        })
    }

    fn declare(spec: &WindowJoinSpec, ctx: &mut StateContext) -> Result<[Waiting; 2]> {
        let mut side = |s: usize| -> Result<Waiting> {
            let codec = RowList::new(spec.schemas[s].clone())?;
            Ok(Waiting {
                groups: ctx
                    .table(TABLES[s][0], codec, None)?
                    .grouped_without_suffix(WINDOW_BYTES),
                ends: ctx
                    .timers(TABLES[s][1])?
                    .grouped_without_suffix(WINDOW_BYTES),
            })
        };
        Ok([side(0)?, side(1)?])
    }

    /// Keeps `batch`'s rows of `side` in their windows, dropping late ones.
    fn keep(&mut self, side: Side, batch: RecordBatch) -> Result<()> {
        let s = side.index();
        let (ws, we) = self.spec.windows[s];
        let starts = to_millis(batch.column(ws), "window_start")?;
        let ends = to_millis(batch.column(we), "window_end")?;
        let starts = starts.as_primitive::<TimestampMillisecondType>();
        let ends = ends.as_primitive::<TimestampMillisecondType>();
        let keys = self.keys.of(&self.spec.keys[s], &batch)?;
        let batch = Arc::new(batch);
        let mut late = 0;
        for (i, key) in keys.into_iter().enumerate() {
            if starts.is_null(i) || ends.is_null(i) {
                continue;
            }
            let (start, end) = (starts.value(i), ends.value(i));
            // The window's rows were joined when the watermark passed its end.
            if has_fired(end, self.watermark) {
                late += 1;
                continue;
            }
            let k = group_key(&key, start, end);
            let w = &mut self.waiting[s];
            let mut new = false;
            let make = || {
                new = true;
                Ok(Some(vec![]))
            };
            if let Some(rows) = w.groups.get_mut_or(&k, 0, make)? {
                rows.push((batch.clone(), i));
            }
            if new {
                // Fired once the watermark reaches `end - 1`.
                w.ends.register(end - 1, &k)?;
            }
        }
        if late > 0 {
            self.late.add(late);
        }
        Ok(())
    }

    /// The groups of `side` whose windows fired at `wm`, removed from its
    /// state, by window end.
    fn take_fired(&mut self, side: usize, wm: EventTime) -> Result<BTreeMap<i64, Groups>> {
        let w = &mut self.waiting[side];
        let mut out: BTreeMap<i64, Groups> = BTreeMap::new();
        for (_, k) in w.ends.pop_due(wm)? {
            let Some((end, start, key)) = parse_group_key(&k) else {
                return Err(EngineError::State(
                    "a stored window join key is corrupt".into(),
                ));
            };
            if let Some(rows) = w.groups.get_mut(&k, 0)? {
                let rows = std::mem::take(rows);
                out.entry(end).or_default().insert((start, key), rows);
            }
            w.groups.remove(&k);
        }
        Ok(out)
    }

    /// Joins the windows that end at or before `wm + 1` and drops them.
    fn fire(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        let left = self.take_fired(0, wm)?;
        let right = self.take_fired(1, wm)?;
        let mut ends: Vec<i64> = left.keys().chain(right.keys()).copied().collect();
        ends.sort_unstable();
        ends.dedup();
        // Pairs of all due windows, filtered together.
        let mut pairs: Vec<(&RowRef, &RowRef)> = vec![];
        let mut lone: [Vec<&RowRef>; 2] = [vec![], vec![]];
        let empty = Groups::new();
        let mut groups: Vec<(&Vec<RowRef>, Option<&Vec<RowRef>>)> = vec![];
        for end in &ends {
            let l = left.get(end).unwrap_or(&empty);
            let r = right.get(end).unwrap_or(&empty);
            for (g, rows) in l {
                let partner = g.1.as_ref().and_then(|_| r.get(g));
                groups.push((rows, partner));
            }
            for (g, rows) in r {
                if g.1.is_none() || !l.contains_key(g) {
                    lone[1].extend(rows.iter());
                }
            }
        }
        let mut pair_of: Vec<(usize, usize, usize)> = vec![];
        for (gi, (ls, rs)) in groups.iter().enumerate() {
            let Some(rs) = rs else { continue };
            for (li, l) in ls.iter().enumerate() {
                for (ri, r) in rs.iter().enumerate() {
                    pairs.push((l, r));
                    pair_of.push((gi, li, ri));
                }
            }
        }
        let pass = self.check(&pairs)?;
        // Which rows found a partner.
        let mut left_hit: Vec<Vec<bool>> =
            groups.iter().map(|(l, _)| vec![false; l.len()]).collect();
        let mut right_hit: Vec<Vec<bool>> = groups
            .iter()
            .map(|(_, r)| vec![false; r.map_or(0, |r| r.len())])
            .collect();
        for (&(gi, li, ri), &ok) in pair_of.iter().zip(&pass) {
            if ok {
                left_hit[gi][li] = true;
                right_hit[gi][ri] = true;
            }
        }
        for (gi, (ls, rs)) in groups.iter().enumerate() {
            for (li, l) in ls.iter().enumerate() {
                if !left_hit[gi][li] {
                    lone[0].push(l);
                }
            }
            if let Some(rs) = rs {
                for (ri, r) in rs.iter().enumerate() {
                    if !right_hit[gi][ri] {
                        lone[1].push(r);
                    }
                }
            }
        }
        let kind = self.spec.kind;
        match kind {
            WindowJoinKind::Semi | WindowJoinKind::Anti => {
                let mut rows: Vec<Option<&RowRef>> = vec![];
                for (gi, (ls, _)) in groups.iter().enumerate() {
                    for (li, l) in ls.iter().enumerate() {
                        if left_hit[gi][li] == (kind == WindowJoinKind::Semi) {
                            rows.push(Some(l));
                        }
                    }
                }
                if !rows.is_empty() {
                    let columns = gather(&self.spec.schemas[0], &rows)?;
                    out.batch(batch_of(&self.spec.output_schema, columns, "window join")?);
                }
            }
            _ => {
                let kept: Vec<(&RowRef, &RowRef)> = pairs
                    .iter()
                    .zip(&pass)
                    .filter(|(_, ok)| **ok)
                    .map(|(p, _)| *p)
                    .collect();
                let mut ls: Vec<Option<&RowRef>> = kept.iter().map(|p| Some(p.0)).collect();
                let mut rs: Vec<Option<&RowRef>> = kept.iter().map(|p| Some(p.1)).collect();
                if matches!(kind, WindowJoinKind::Left | WindowJoinKind::Full) {
                    ls.extend(lone[0].iter().map(|r| Some(*r)));
                    rs.extend(lone[0].iter().map(|_| None));
                }
                if matches!(kind, WindowJoinKind::Right | WindowJoinKind::Full) {
                    ls.extend(lone[1].iter().map(|_| None));
                    rs.extend(lone[1].iter().map(|r| Some(*r)));
                }
                if !ls.is_empty() {
                    out.batch(self.pairs_batch(&ls, &rs)?);
                }
            }
        }
        Ok(())
    }

    /// Left and right rows side by side.
    fn pairs_batch(&self, ls: &[Option<&RowRef>], rs: &[Option<&RowRef>]) -> Result<RecordBatch> {
        let mut columns = gather(&self.spec.schemas[0], ls)?;
        columns.extend(gather(&self.spec.schemas[1], rs)?);
        batch_of(&self.spec.pair_schema, columns, "window join")
    }

    /// Whether each pair meets the further condition.
    fn check(&self, pairs: &[(&RowRef, &RowRef)]) -> Result<Vec<bool>> {
        let Some(f) = &self.spec.filter else {
            return Ok(vec![true; pairs.len()]);
        };
        if pairs.is_empty() {
            return Ok(vec![]);
        }
        let ls: Vec<Option<&RowRef>> = pairs.iter().map(|p| Some(p.0)).collect();
        let rs: Vec<Option<&RowRef>> = pairs.iter().map(|p| Some(p.1)).collect();
        let batch = self.pairs_batch(&ls, &rs)?;
        let v = eval(f.as_ref(), &batch, "join condition")?;
        let b = v
            .as_boolean_opt()
            .ok_or_else(|| EngineError::Graph("the join condition is not boolean".into()))?;
        Ok((0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect())
    }
}

impl Operator for WindowJoin {
    fn name(&self) -> String {
        format!("WindowJoin({})", self.spec.describe)
    }

    fn key_exprs(&self, input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        self.keys.exchange(input)
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some(super::UNKEYED_JOIN)
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(WindowJoin::new(
            self.spec.clone(),
            self.late.clone(),
        )?)))
    }

    fn on_batch(&mut self, _batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        Err(without_input())
    }

    fn on_input(&mut self, input: usize, batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        let (side, own) = side_batch(input, batch, &self.spec.schemas)?;
        self.keep(side, own)
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        if wm > self.watermark {
            self.watermark = wm;
            self.fire(wm, out)?;
        }
        out.watermark(wm);
        Ok(())
    }

    fn on_end(&mut self, out: &mut Emitter) -> Result<()> {
        self.fire(MAX_WATERMARK, out)
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        self.waiting = Self::declare(&self.spec, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        let [left, right] = &mut self.waiting;
        vec![
            &mut left.groups,
            &mut left.ends,
            &mut right.groups,
            &mut right.ends,
        ]
    }

    /// The watermark (the waiting rows are keyed state).
    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        put_meta(w, &self.watermark, "window join")
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        if let Some(wm) = saved_meta::<EventTime>(&entries, "window join")? {
            self.watermark = wm;
        }
        Ok(())
    }
}
