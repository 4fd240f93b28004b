//! The regular join (Flink's `StreamingJoinOperator`): rows of two streams
//! with equal keys, without time bounds, so each side keeps its rows until
//! the state TTL drops them. A row joins the other side's kept rows when it
//! arrives. An outer row without a partner is emitted null-padded at once;
//! when its first partner arrives the padded row is deleted (`-D`) before the
//! pairs are inserted, as in Flink, so an outer join is an updating result.
//!
//! Either input may itself be updating (a GROUP BY, another regular join, a
//! Top-N): a retracted row (`-U`, `-D`) takes its pairs back and leaves its
//! side's state, as Flink's `StreamingJoinOperator` does, so the result is
//! the join of the inputs' current tables.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, Int8Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int8Type, SchemaRef};
use datafusion::arrow::row::RowConverter;
use datafusion::physical_expr::PhysicalExpr;

use super::join_state::{Entry, RowsCodec};
use super::ttl::{now_ms, sweep, Ttl};
use super::{kind_at, row_converter, RowKind};
use crate::error::ResultExt;
use crate::join::keys::JoinKeys;
use crate::join::rows::{gather, side_batch, without_input, RowRef};
use crate::join::{JoinKind, Side};
use crate::operator::{Emitter, Operator};
use crate::operators::{batch_of, eval};
use crate::state::keyed::{KeyedTable, StateContext, StateTable};
use crate::{EngineError, Result};

/// What a regular join computes, as planned.
#[derive(Debug, Clone)]
pub struct RegularJoinSpec {
    /// Inner, left, right or full.
    pub kind: JoinKind,
    /// A semi or anti join (`IN`, `EXISTS`, their negations): the left rows
    /// that have a partner, or that have none (`kind` is then `Inner`).
    pub existence: Option<Existence>,
    /// Each side's columns (after the side tag in the input).
    pub schemas: [SchemaRef; 2],
    /// The equality keys over each side's columns.
    pub keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    /// The keys' common types.
    pub key_types: Vec<DataType>,
    /// NULL keys are equal (`IS NOT DISTINCT FROM`).
    pub null_equal: bool,
    /// The rest of the join condition, over left columns then right columns.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Left columns then right columns, all nullable.
    pub pair_schema: SchemaRef,
    /// The pair schema, plus `__row_kind` for an outer join.
    pub output_schema: SchemaRef,
    /// `table.exec.state.ttl`.
    pub ttl: Option<Duration>,
    /// Which inputs are updating (their batches end in `__row_kind`).
    pub updating_inputs: [bool; 2],
    /// The plan as text.
    pub describe: String,
}

/// What a semi or anti join keeps of the left rows (see `semi_join`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    /// Those with a partner (`IN`, `EXISTS`).
    Semi,
    /// Those without one (`NOT IN`, `NOT EXISTS`).
    Anti,
}

/// One emitted row: kind, left row, right row (`None`: NULLs).
pub(super) type Change = (RowKind, Option<RowRef>, Option<RowRef>);

/// The kept rows of one side, by key.
type Kept = KeyedTable<Vec<Entry>, RowsCodec>;

/// Runs a regular join of two inputs. Each side's rows live in a
/// declared keyed table (cached, spilled to RocksDB, checkpointed by the
/// state layer).
pub struct RegularJoin {
    spec: RegularJoinSpec,
    keys: JoinKeys,
    pub(super) kept: [Kept; 2],
    ttl: Option<Ttl>,
    updating: bool,
    /// Each side's rows as bytes, to find a retracted row among the kept.
    rows: [RowConverter; 2],
}

const TABLES: [&str; 2] = ["left", "right"];

impl RegularJoin {
    /// The operator for `spec`.
    pub fn new(spec: RegularJoinSpec) -> Result<Self> {
        let keys = JoinKeys::for_sides(&spec.keys, spec.key_types.clone(), spec.null_equal)?;
        let ttl = spec.ttl.map(Ttl::new);
        let updating = super::is_updating(&spec.output_schema);
        let kept = Self::declare(&spec, &mut StateContext::detached())?;
        let rows = [
            row_converter(&spec.schemas[0])?,
            row_converter(&spec.schemas[1])?,
        ];
        Ok(Self {
            spec,
            keys,
            kept,
            ttl,
            updating,
            rows,
        })
    }

    fn declare(spec: &RegularJoinSpec, ctx: &mut StateContext) -> Result<[Kept; 2]> {
        let left = ctx.table(
            TABLES[0],
            RowsCodec::new(spec.schemas[0].clone())?,
            spec.ttl,
        )?;
        let right = ctx.table(
            TABLES[1],
            RowsCodec::new(spec.schemas[1].clone())?,
            spec.ttl,
        )?;
        Ok([left, right])
    }

    fn arrive(&mut self, side: Side, batch: RecordBatch, out: &mut Vec<Change>) -> Result<()> {
        let now = now_ms();
        let (arrivals, keys, matches) = self.candidates(side, batch, now)?;
        for ((row, key), matched) in arrivals.into_iter().zip(keys).zip(matches) {
            if let Some(existence) = self.spec.existence {
                self.exists(existence, row, key, &matched, now, out)?;
            } else if row.kind.is_retraction() {
                self.retract(row, key.as_deref(), &matched, now, out)?;
            } else {
                self.accumulate(row, key, &matched, now, out)?;
            }
        }
        Ok(())
    }

    /// The rows of a batch of `side`, their keys, and for each the indexes
    /// of its partners in the other side's list for its key (which keeps its
    /// order for the whole batch: only partner counts change in it).
    #[allow(clippy::type_complexity)]
    fn candidates(
        &mut self,
        side: Side,
        batch: RecordBatch,
        now: u64,
    ) -> Result<(Vec<Arrival>, Vec<Option<Box<[u8]>>>, Vec<Vec<usize>>)> {
        let (s, o) = (side.index(), side.other().index());
        let (batch, row_kinds) = self.data_of(side, batch)?;
        let batch = Arc::new(batch);
        let keys = self.keys.of(&self.spec.keys[s], &batch)?;
        // Spilled lists of both sides come back in one read each.
        for t in [o, s] {
            self.kept[t].prefetch(keys.iter().flatten().map(|k| &k[..]), now)?;
        }
        // Candidate pairs: (arriving row, index in the other side's list,
        // that row).
        let mut pairs: Vec<(usize, usize, RowRef)> = vec![];
        for (i, k) in keys.iter().enumerate() {
            let Some(k) = k else { continue };
            let ttl = self.ttl.clone();
            if let Some(list) = self.kept[o].get(k, now)? {
                for (j, e) in list.iter().enumerate() {
                    if ttl.as_ref().is_none_or(|t| !t.expired(e.touched, now)) {
                        pairs.push((i, j, e.row.clone()));
                    }
                }
            }
        }
        let pass = self.check(side, &batch, &pairs)?;
        let mut matches = vec![vec![]; keys.len()];
        for (p, (i, j, _)) in pairs.iter().enumerate() {
            if pass[p] {
                matches[*i].push(*j);
            }
        }
        let arrivals = (0..batch.num_rows())
            .map(|i| Arrival {
                side,
                row: (batch.clone(), i),
                kind: kind_at(row_kinds.as_ref(), i),
            })
            .collect();
        Ok((arrivals, keys, matches))
    }

    /// The data columns of a batch of `side` and, from an updating input,
    /// its rows' kinds.
    fn data_of(&self, side: Side, batch: RecordBatch) -> Result<(RecordBatch, Option<Int8Array>)> {
        if !self.spec.updating_inputs[side.index()] {
            let (_, own) = side_batch(side.index(), batch, &self.spec.schemas)?;
            return Ok((own, None));
        }
        // The runtime may hand a join its batches without the row-kind
        // column's marker, so the planned width decides.
        let width = self.spec.schemas[side.index()].fields().len();
        let row_kinds = batch
            .columns()
            .get(width)
            .and_then(|c| c.as_primitive_opt::<Int8Type>())
            .cloned()
            .ok_or_else(|| {
                EngineError::Graph("a join's updating input lost its row kinds".into())
            })?;
        let data = batch_of(
            &self.spec.schemas[side.index()],
            batch.columns()[..width].to_vec(),
            "join input",
        )?;
        Ok((data, Some(row_kinds)))
    }

    /// An inserted row (`+I`, `+U`): joined to its partners (the other
    /// side's rows at `matched` of its key's list) and kept.
    fn accumulate(
        &mut self,
        row: Arrival,
        key: Option<Box<[u8]>>,
        matched: &[usize],
        now: u64,
        out: &mut Vec<Change>,
    ) -> Result<()> {
        let (side, s, o) = (row.side, row.side.index(), row.side.other().index());
        let mut partners: Vec<RowRef> = vec![];
        let mut deleted: Vec<RowRef> = vec![];
        if let (Some(k), false) = (&key, matched.is_empty()) {
            let keeps_other = self.spec.kind.keeps(side.other());
            if let Some(list) = self.kept[o].get_mut(k, now)? {
                for &j in matched {
                    if let Some(e) = list.get_mut(j) {
                        if e.partners == 0 && keeps_other {
                            deleted.push(e.row.clone());
                        }
                        e.partners += 1;
                        e.touched = now;
                        partners.push(e.row.clone());
                    }
                }
            }
        }
        for d in deleted {
            out.push(pad(side.other(), RowKind::Delete, d));
        }
        if partners.is_empty() && self.spec.kind.keeps(side) {
            out.push(pad(side, RowKind::Insert, row.row.clone()));
        }
        // Between two inner sides the pairs keep the input's kind, as in
        // Flink (`+U` in, `+U` out); an outer side makes them inserts.
        let kind = if self.spec.kind == JoinKind::Inner {
            row.kind
        } else {
            RowKind::Insert
        };
        for p in &partners {
            out.push(pair(side, kind, row.row.clone(), p.clone()));
        }
        if let Some(k) = key {
            let ttl = self.ttl.clone();
            if let Some(list) = self.kept[s].get_mut_or(&k, now, || Ok(Some(vec![])))? {
                list.retain(|e| ttl.as_ref().is_none_or(|t| !t.expired(e.touched, now)));
                list.push(Entry {
                    row: row.row,
                    partners: partners.len() as u32,
                    touched: now,
                });
            }
        }
        Ok(())
    }

    /// A retracted row (`-U`, `-D`) of an updating input: its pairs are
    /// taken back (with the input's kind between inner sides, `-D`
    /// otherwise), an outer row of the other side left without partners is
    /// emitted null-padded again, and the row leaves its side's state.
    fn retract(
        &mut self,
        row: Arrival,
        key: Option<&[u8]>,
        matched: &[usize],
        now: u64,
        out: &mut Vec<Change>,
    ) -> Result<()> {
        let (side, o) = (row.side, row.side.other().index());
        if let Some(k) = key {
            self.forget(side, k, &row.row, now)?;
        }
        let mut partners: Vec<RowRef> = vec![];
        let mut padded: Vec<RowRef> = vec![];
        if let (Some(k), false) = (key, matched.is_empty()) {
            let keeps_other = self.spec.kind.keeps(side.other());
            if let Some(list) = self.kept[o].get_mut(k, now)? {
                for &j in matched {
                    if let Some(e) = list.get_mut(j) {
                        if e.partners == 1 && keeps_other {
                            padded.push(e.row.clone());
                        }
                        e.partners = e.partners.saturating_sub(1);
                        e.touched = now;
                        partners.push(e.row.clone());
                    }
                }
            }
        }
        if partners.is_empty() {
            if self.spec.kind.keeps(side) {
                out.push(pad(side, RowKind::Delete, row.row));
            }
            return Ok(());
        }
        let kind = if self.spec.kind.keeps(side) {
            RowKind::Delete
        } else {
            row.kind
        };
        for p in &partners {
            out.push(pair(side, kind, row.row.clone(), p.clone()));
        }
        for p in padded {
            out.push(pad(side.other(), RowKind::Insert, p));
        }
        Ok(())
    }

    /// Removes one kept row of `side` equal to `row` from key `k`'s list
    /// (none if it is not there: its insert was before the state's TTL).
    pub(super) fn forget(&mut self, side: Side, k: &[u8], row: &RowRef, now: u64) -> Result<()> {
        let s = side.index();
        let Some(list) = self.kept[s].get_mut(k, now)? else {
            return Ok(());
        };
        if list.is_empty() {
            return Ok(());
        }
        let mut refs: Vec<Option<&RowRef>> = vec![Some(row)];
        refs.extend(list.iter().map(|e| Some(&e.row)));
        let columns = gather(&self.spec.schemas[s], &refs)?;
        let bytes = self.rows[s]
            .convert_columns(&columns)
            .context("join rows")?;
        let gone = bytes.row(0);
        if let Some(j) = (1..bytes.num_rows()).find(|&j| bytes.row(j) == gone) {
            list.remove(j - 1);
        }
        Ok(())
    }

    /// Whether each candidate pair meets the rest of the join condition.
    fn check(
        &self,
        side: Side,
        batch: &Arc<RecordBatch>,
        pairs: &[(usize, usize, RowRef)],
    ) -> Result<Vec<bool>> {
        let Some(filter) = &self.spec.filter else {
            return Ok(vec![true; pairs.len()]);
        };
        if pairs.is_empty() {
            return Ok(vec![]);
        }
        let mine: Vec<RowRef> = pairs.iter().map(|(i, _, _)| (batch.clone(), *i)).collect();
        let theirs: Vec<RowRef> = pairs.iter().map(|(_, _, r)| r.clone()).collect();
        let (l, r) = match side {
            Side::Left => (&mine, &theirs),
            Side::Right => (&theirs, &mine),
        };
        let lr: Vec<Option<&RowRef>> = l.iter().map(Some).collect();
        let rr: Vec<Option<&RowRef>> = r.iter().map(Some).collect();
        let mut columns = gather(&self.spec.schemas[0], &lr)?;
        columns.extend(gather(&self.spec.schemas[1], &rr)?);
        let pairs_batch = batch_of(&self.spec.pair_schema, columns, "join condition")?;
        let v = eval(filter.as_ref(), &pairs_batch, "join condition")?;
        let b = v
            .as_boolean_opt()
            .ok_or_else(|| EngineError::Graph("the join condition is not boolean".into()))?;
        Ok((0..b.len()).map(|k| b.is_valid(k) && b.value(k)).collect())
    }

    fn output(&self, changes: &[Change]) -> Result<RecordBatch> {
        let l: Vec<Option<&RowRef>> = changes.iter().map(|c| c.1.as_ref()).collect();
        let r: Vec<Option<&RowRef>> = changes.iter().map(|c| c.2.as_ref()).collect();
        let mut columns = gather(&self.spec.schemas[0], &l)?;
        // A semi or anti join emits the left rows alone.
        if self.spec.existence.is_none() {
            columns.extend(gather(&self.spec.schemas[1], &r)?);
        }
        if self.updating {
            columns.push(Arc::new(Int8Array::from_iter_values(
                changes.iter().map(|c| c.0 as i8),
            )));
        }
        batch_of(&self.spec.output_schema, columns, "join output")
    }

    /// Drops cached keys untouched for the TTL (silently, as Flink does;
    /// rows past it are dropped when their key is next used).
    fn expire(&mut self) {
        if sweep(&mut self.ttl).is_some() {
            let now = now_ms();
            for kept in self.kept.iter_mut() {
                kept.expire(now);
            }
        }
    }
}

/// An arriving row: its side, where it is and what it does.
pub(super) struct Arrival {
    pub(super) side: Side,
    pub(super) row: RowRef,
    pub(super) kind: RowKind,
}

/// A row of `side` with NULLs for the other side.
fn pad(side: Side, kind: RowKind, row: RowRef) -> Change {
    match side {
        Side::Left => (kind, Some(row), None),
        Side::Right => (kind, None, Some(row)),
    }
}

/// The pair of an arriving row of `side` and its partner.
fn pair(side: Side, kind: RowKind, mine: RowRef, theirs: RowRef) -> Change {
    match side {
        Side::Left => (kind, Some(mine), Some(theirs)),
        Side::Right => (kind, Some(theirs), Some(mine)),
    }
}

impl Operator for RegularJoin {
    fn name(&self) -> String {
        format!("RegularJoin({})", self.spec.describe)
    }

    fn key_exprs(&self, input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        self.keys.exchange(input)
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some(crate::join::UNKEYED_JOIN)
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(RegularJoin::new(self.spec.clone())?)))
    }

    fn on_batch(&mut self, _batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        Err(without_input())
    }

    fn on_input(&mut self, input: usize, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        self.expire();
        let mut changes = vec![];
        let side = Side::of_input(input)?;
        self.arrive(side, batch, &mut changes)?;
        if !changes.is_empty() {
            out.batch(self.output(&changes)?);
        }
        Ok(())
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        self.kept = Self::declare(&self.spec, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        let [left, right] = &mut self.kept;
        vec![left, right]
    }
}
