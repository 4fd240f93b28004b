//! The regular join (Flink's `StreamingJoinOperator`): rows of two streams
//! with equal keys, without time bounds, so each side keeps its rows until
//! the state TTL drops them. A row joins the other side's kept rows when it
//! arrives. An outer row without a partner is emitted null-padded at once;
//! when its first partner arrives the padded row is deleted (`-D`) before the
//! pairs are inserted, as in Flink, so an outer join is an updating result.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int8Array, RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::HashMap;
use datafusion::physical_expr::PhysicalExpr;

use super::ttl::{now_ms, sweep, Ttl};
use super::RowKind;
use crate::error::ResultExt;
use crate::join::keys::JoinKeys;
use crate::join::rows::{gather, split_sides, RowRef};
use crate::join::{JoinKind, Side};
use crate::operator::{Emitter, Operator};
use crate::operators::{batch_of, eval};
use crate::state::arrow_state::{decode_batch, encode_batch};
use crate::state::{key_group_of, StateEntry, StateWriter};
use crate::{EngineError, Result};

/// What a regular join computes, as planned.
#[derive(Debug, Clone)]
pub struct RegularJoinSpec {
    /// Inner, left, right or full.
    pub kind: JoinKind,
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
    /// The plan as text.
    pub describe: String,
}

struct Entry {
    row: RowRef,
    /// Partners found so far (an outer row with none is out null-padded).
    partners: u32,
    touched: u64,
}

/// One emitted row: kind, left row, right row (`None`: NULLs).
type Change = (RowKind, Option<RowRef>, Option<RowRef>);

/// Runs a regular join over a side-tagged input.
pub struct RegularJoin {
    spec: RegularJoinSpec,
    keys: JoinKeys,
    kept: [HashMap<Box<[u8]>, Vec<Entry>>; 2],
    /// Keys whose rows changed since the last checkpoint, per side.
    dirty: [HashSet<Box<[u8]>>; 2],
    ttl: Option<Ttl>,
    updating: bool,
}

impl RegularJoin {
    /// The operator for `spec`.
    pub fn new(spec: RegularJoinSpec) -> Result<Self> {
        let keys = JoinKeys::new(spec.key_types.clone(), spec.null_equal)?;
        let ttl = spec.ttl.map(Ttl::new);
        let updating = super::is_updating(&spec.output_schema);
        Ok(Self {
            spec,
            keys,
            kept: [HashMap::new(), HashMap::new()],
            dirty: [HashSet::new(), HashSet::new()],
            ttl,
            updating,
        })
    }

    fn arrive(&mut self, side: Side, batch: RecordBatch, out: &mut Vec<Change>) -> Result<()> {
        let (s, o) = (side.index(), side.other().index());
        let batch = Arc::new(batch);
        let keys = self.keys.of(&self.spec.keys[s], &batch)?;
        // Candidate partners: (arriving row, index in the other side's list).
        let mut pairs: Vec<(usize, usize)> = vec![];
        for (i, k) in keys.iter().enumerate() {
            if let Some(list) = k.as_ref().and_then(|k| self.kept[o].get(k)) {
                pairs.extend((0..list.len()).map(|j| (i, j)));
            }
        }
        let pass = self.check(side, &batch, &keys, &pairs)?;
        let now = now_ms();
        let mut at = 0;
        for (i, key) in keys.into_iter().enumerate() {
            let mine: RowRef = (batch.clone(), i);
            let mut partners: Vec<RowRef> = vec![];
            let mut deleted: Vec<RowRef> = vec![];
            if let Some(k) = &key {
                while at < pairs.len() && pairs[at].0 == i {
                    let j = pairs[at].1;
                    if pass[at] {
                        if let Some(e) = self.kept[o].get_mut(k).and_then(|l| l.get_mut(j)) {
                            if e.partners == 0 && self.spec.kind.keeps(side.other()) {
                                deleted.push(e.row.clone());
                            }
                            e.partners += 1;
                            e.touched = now;
                            partners.push(e.row.clone());
                        }
                    }
                    at += 1;
                }
            }
            for d in deleted {
                out.push(pad(side.other(), RowKind::Delete, d));
            }
            if partners.is_empty() && self.spec.kind.keeps(side) {
                out.push(pad(side, RowKind::Insert, mine.clone()));
            }
            for p in &partners {
                out.push(pair(side, mine.clone(), p.clone()));
            }
            if let Some(k) = key {
                self.kept[s].entry(k.clone()).or_default().push(Entry {
                    row: mine,
                    partners: partners.len() as u32,
                    touched: now,
                });
                self.dirty[s].insert(k);
            }
        }
        Ok(())
    }

    /// Whether each candidate pair meets the rest of the join condition.
    fn check(
        &self,
        side: Side,
        batch: &Arc<RecordBatch>,
        keys: &[Option<Box<[u8]>>],
        pairs: &[(usize, usize)],
    ) -> Result<Vec<bool>> {
        let Some(filter) = &self.spec.filter else {
            return Ok(vec![true; pairs.len()]);
        };
        if pairs.is_empty() {
            return Ok(vec![]);
        }
        let o = side.other().index();
        let mut mine: Vec<RowRef> = vec![];
        let mut theirs: Vec<RowRef> = vec![];
        for &(i, j) in pairs {
            let e = keys[i]
                .as_ref()
                .and_then(|k| self.kept[o].get(k))
                .and_then(|l| l.get(j))
                .ok_or_else(|| EngineError::Graph("join: a kept row vanished".into()))?;
            mine.push((batch.clone(), i));
            theirs.push(e.row.clone());
        }
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
        columns.extend(gather(&self.spec.schemas[1], &r)?);
        if self.updating {
            columns.push(Arc::new(Int8Array::from_iter_values(
                changes.iter().map(|c| c.0 as i8),
            )));
        }
        batch_of(&self.spec.output_schema, columns, "join output")
    }

    /// Drops rows untouched for the TTL (silently, as Flink does).
    fn expire(&mut self) {
        let Some(expired) = sweep(&mut self.ttl) else {
            return;
        };
        for (kept, dirty) in self.kept.iter_mut().zip(self.dirty.iter_mut()) {
            kept.retain(|k, rows| {
                let before = rows.len();
                rows.retain(|e| !expired(e.touched));
                if rows.len() != before {
                    dirty.insert(k.clone());
                }
                !rows.is_empty()
            });
        }
    }

    /// One key group's kept rows of a side, with their partner counts last.
    fn state_batch(&self, s: usize, keys: &[&[u8]]) -> Result<RecordBatch> {
        let entries: Vec<&Entry> = keys
            .iter()
            .filter_map(|k| self.kept[s].get(*k))
            .flatten()
            .collect();
        let refs: Vec<Option<&RowRef>> = entries.iter().map(|e| Some(&e.row)).collect();
        let schema = &self.spec.schemas[s];
        let mut columns = gather(schema, &refs)?;
        columns.push(Arc::new(UInt32Array::from_iter_values(
            entries.iter().map(|e| e.partners),
        )));
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("__partners", DataType::UInt32, false));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context("join state")
    }
}

/// A row of `side` with NULLs for the other side.
fn pad(side: Side, kind: RowKind, row: RowRef) -> Change {
    match side {
        Side::Left => (kind, Some(row), None),
        Side::Right => (kind, None, Some(row)),
    }
}

/// The pair of an arriving row of `side` and its partner, as an insert.
fn pair(side: Side, mine: RowRef, theirs: RowRef) -> Change {
    match side {
        Side::Left => (RowKind::Insert, Some(mine), Some(theirs)),
        Side::Right => (RowKind::Insert, Some(theirs), Some(mine)),
    }
}

const STATE_KEYS: [&[u8]; 2] = [b"left", b"right"];

impl Operator for RegularJoin {
    fn name(&self) -> String {
        format!("RegularJoin({})", self.spec.describe)
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("no parallel form yet")
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        self.expire();
        let mut changes = vec![];
        for (side, own) in split_sides(&batch, &self.spec.schemas)? {
            self.arrive(side, own, &mut changes)?;
        }
        if !changes.is_empty() {
            out.batch(self.output(&changes)?);
        }
        Ok(())
    }

    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        let kgs = w.key_groups();
        for (s, state_key) in STATE_KEYS.iter().enumerate() {
            let dirty: HashSet<u16> = self.dirty[s]
                .drain()
                .map(|k| key_group_of(&k, kgs))
                .collect();
            if dirty.is_empty() {
                continue;
            }
            let mut by_group: HashMap<u16, Vec<&[u8]>> = HashMap::new();
            for k in self.kept[s].keys() {
                let kg = key_group_of(k, kgs);
                if dirty.contains(&kg) {
                    by_group.entry(kg).or_default().push(&k[..]);
                }
            }
            for kg in dirty {
                match by_group.get(&kg) {
                    Some(keys) => {
                        let batch = self.state_batch(s, keys)?;
                        w.put(kg, state_key, encode_batch(&batch)?);
                    }
                    None => w.delete(kg, state_key),
                }
            }
        }
        Ok(())
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        let now = now_ms();
        for e in entries {
            let Some(s) = STATE_KEYS.iter().position(|k| *k == e.key.as_slice()) else {
                continue;
            };
            let stored = decode_batch(&e.value)?;
            let width = stored.num_columns() - 1;
            let partners = stored
                .column(width)
                .as_primitive_opt::<datafusion::arrow::datatypes::UInt32Type>()
                .ok_or_else(|| EngineError::State("join state without partner counts".into()))?
                .clone();
            let columns: Vec<ArrayRef> = stored.columns()[..width].to_vec();
            let batch = Arc::new(batch_of(&self.spec.schemas[s], columns, "join state")?);
            let keys = self.keys.of(&self.spec.keys[s], &batch)?;
            for (i, k) in keys.into_iter().enumerate() {
                if let Some(k) = k {
                    self.kept[s].entry(k).or_default().push(Entry {
                        row: (batch.clone(), i),
                        partners: partners.value(i),
                        touched: now,
                    });
                }
            }
        }
        Ok(())
    }

    fn state_size(&self) -> u64 {
        let rows: usize = self
            .kept
            .iter()
            .map(|k| k.values().map(Vec::len).sum::<usize>())
            .sum();
        (rows * std::mem::size_of::<Entry>()) as u64
    }
}
