//! Window aggregation: groups rows by `window_end` (and `window_start` and the
//! other keys), accumulates with DataFusion's accumulators, and emits one row
//! per group when the watermark passes the window's end. State beyond the
//! operator's cache spills (see [`super::spill`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::PhysicalExpr;

use super::has_fired;
use super::spill::Spill;
use super::window_state::{parse_window_key, window_key, WindowState};
use crate::error::ResultExt;
use crate::message::EventTime;
use crate::metrics::Counter;
use crate::operator::{Emitter, Operator};
use crate::operators::eval;
use crate::operators::watermark::to_millis;
use crate::state::arrow_state::{decode_batch, encode_batch, split_by_key_group};
use crate::state::keyed::{RawBatch, RawTable, StateContext, StateTable};
use crate::state::{StateEntry, StateWriter, OPERATOR_STATE};
use crate::time::{format_event_time, MIN_WATERMARK};
use crate::{EngineError, Result};

/// One aggregate call, e.g. `SUM(price) FILTER (WHERE ...)`.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// DataFusion's physical aggregate (arguments, DISTINCT, result type).
    pub expr: Arc<AggregateFunctionExpr>,
    /// Optional `FILTER (WHERE ...)`.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
}

/// The functions of `aggregates` with their result types, DISTINCT and
/// FILTER: what their stored accumulators mean (not their argument text).
pub fn aggregates_signature(aggregates: &[AggregateSpec]) -> String {
    let each: Vec<String> = aggregates
        .iter()
        .map(|a| {
            format!(
                "{}{}({} args){}: {}",
                a.expr.fun().name(),
                if a.expr.is_distinct() {
                    " DISTINCT"
                } else {
                    ""
                },
                a.expr.expressions().len(),
                if a.filter.is_some() { " FILTER" } else { "" },
                a.expr.field().data_type()
            )
        })
        .collect();
    format!("aggregates=[{}]", each.join(", "))
}

/// The grouping of a window aggregation.
#[derive(Debug, Clone)]
pub struct GroupingSpec {
    /// The group expressions over the input, including the window columns.
    pub exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// One entry per grouping set: which of `exprs` are NULL in that set. A plain
    /// GROUP BY has a single set with no NULLs.
    pub sets: Vec<Vec<bool>>,
    /// The `__grouping_id` output field, present with GROUPING SETS / ROLLUP / CUBE.
    pub grouping_id: Option<Field>,
    /// Which of `exprs` is `window_end`.
    pub window_end: usize,
}

/// Aggregates rows per window and group; fires windows on the watermark.
pub struct WindowAggregate {
    pub(super) grouping: GroupingSpec,
    pub(super) aggregates: Vec<AggregateSpec>,
    pub(super) group_schema: SchemaRef,
    pub(super) output_schema: SchemaRef,
    pub(super) windows: BTreeMap<EventTime, WindowState>,
    pub(super) watermark: EventTime,
    pub(super) late: Counter,
    pub(super) late_logged: u64,
    pub(super) group_ids: Vec<usize>,
    /// Group columns and each accumulator's state columns: a window's state as
    /// it is checkpointed.
    pub(super) state_schema: SchemaRef,
    /// Open windows' in-memory state as of the last checkpoint, by key
    /// group and window (written at each checkpoint for the windows that
    /// changed).
    pub(super) stored: RawTable,
    /// Where state beyond the cache goes, if the job bounds it.
    pub(super) spill: Option<Spill>,
}

impl WindowAggregate {
    /// `output_schema` is the group columns (plus `__grouping_id`) followed by one
    /// column per aggregate.
    pub fn new(
        grouping: GroupingSpec,
        aggregates: Vec<AggregateSpec>,
        output_schema: SchemaRef,
        late: Counter,
    ) -> Result<Self> {
        let mut group_fields: Vec<Field> = output_schema.fields()[..grouping.exprs.len()]
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        if let Some(f) = &grouping.grouping_id {
            group_fields.push(f.clone());
        }
        let n_out = group_fields.len() + aggregates.len();
        if n_out != output_schema.fields().len() {
            return Err(EngineError::Graph(format!(
                "window aggregate: {} output columns expected, schema has {}",
                n_out,
                output_schema.fields().len()
            )));
        }
        let mut state_fields = group_fields.clone();
        for (i, a) in aggregates.iter().enumerate() {
            for f in a.expr.state_fields().context("window aggregate state")? {
                state_fields.push(Field::new(
                    format!("a{i}_{}", f.name()),
                    f.data_type().clone(),
                    true,
                ));
            }
        }
        Ok(Self {
            grouping,
            aggregates,
            state_schema: Arc::new(Schema::new(state_fields)),
            stored: StateContext::detached().raw_table("windows")?,
            spill: None,
            group_schema: Arc::new(Schema::new(group_fields)),
            output_schema,
            windows: BTreeMap::new(),
            watermark: MIN_WATERMARK,
            late,
            late_logged: 0,
            group_ids: vec![],
        })
    }

    /// Bounds the in-memory state: beyond the spill's budget, windows spill.
    pub fn with_spill(mut self, spill: Spill) -> Self {
        self.spill = Some(spill);
        self
    }

    fn grouping_id_array(&self, set: usize, rows: usize) -> Result<Option<ArrayRef>> {
        let Some(field) = &self.grouping.grouping_id else {
            return Ok(None);
        };
        let array = ScalarValue::UInt64(Some(grouping_id(&self.grouping.sets, set)))
            .cast_to(field.data_type())
            .and_then(|v| v.to_array_of_size(rows))
            .context("grouping id")?;
        Ok(Some(array))
    }
}

/// The `__grouping_id` of grouping set `set` of `sets` (per set, which
/// group expressions it sets to NULL), as DataFusion numbers them: a bit per
/// expression (1: NULL in this set), the first expression highest; a
/// repeated set gets an ordinal above those bits.
pub fn grouping_id(sets: &[Vec<bool>], set: usize) -> u64 {
    let mask = &sets[set];
    let ordinal = sets[..set].iter().filter(|s| *s == mask).count() as u64;
    let semantic = mask
        .iter()
        .fold(0u64, |acc, &null| (acc << 1) | u64::from(null));
    semantic | (ordinal << mask.len())
}

impl Operator for WindowAggregate {
    fn state_signature(&self) -> String {
        format!(
            "WindowAggregate({} keys, {})",
            self.grouping.exprs.len(),
            aggregates_signature(&self.aggregates)
        )
    }

    fn name(&self) -> String {
        let aggs: Vec<String> = self
            .aggregates
            .iter()
            .map(|a| a.expr.name().to_string())
            .collect();
        let keys: Vec<String> = self.grouping.exprs.iter().map(|e| e.to_string()).collect();
        format!(
            "WindowAggregate(keys=[{}], aggs=[{}])",
            keys.join(", "),
            aggs.join(", ")
        )
    }

    fn on_batch(&mut self, batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        let keys = self
            .grouping
            .exprs
            .iter()
            .map(|e| eval(e.as_ref(), &batch, "group key"))
            .collect::<Result<Vec<_>>>()?;
        let args: Vec<Vec<ArrayRef>> = self
            .aggregates
            .iter()
            .map(|a| {
                a.expr
                    .expressions()
                    .iter()
                    .map(|e| eval(e.as_ref(), &batch, "aggregate argument"))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        let filters: Vec<Option<ArrayRef>> = self
            .aggregates
            .iter()
            .map(|a| {
                a.filter
                    .as_ref()
                    .map(|f| eval(f.as_ref(), &batch, "aggregate filter"))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        let ends = to_millis(&keys[self.grouping.window_end], "window_end")?;
        let ends = ends.as_primitive::<TimestampMillisecondType>();

        // Partition the rows by window; few distinct windows appear in a batch.
        let n = batch.num_rows();
        let mut parts: Vec<(EventTime, Vec<u32>)> = vec![];
        let uniform =
            n > 0 && ends.null_count() == 0 && ends.values().iter().all(|e| *e == ends.value(0));
        if uniform {
            parts.push((ends.value(0), vec![]));
        } else {
            for i in 0..n {
                if ends.is_null(i) {
                    continue;
                }
                let e = ends.value(i);
                match parts.iter_mut().find(|(pe, _)| *pe == e) {
                    Some((_, rows)) => rows.push(i as u32),
                    None => parts.push((e, vec![i as u32])),
                }
            }
        }
        for (end, rows) in parts {
            let count = if uniform { n } else { rows.len() };
            if has_fired(end, self.watermark) {
                self.late.add(count as u64);
                if self.late_logged < 10 {
                    self.late_logged += 1;
                    tracing::warn!(
                        rows = count,
                        window_end = %format_event_time(end),
                        watermark = %format_event_time(self.watermark),
                        "dropped late rows: their window has already fired"
                    );
                }
                continue;
            }
            let idx = (!uniform).then(|| UInt32Array::from(rows));
            let pick = |a: &ArrayRef| -> Result<ArrayRef> {
                match &idx {
                    None => Ok(a.clone()),
                    Some(idx) => take(a.as_ref(), idx, None).context("window aggregate"),
                }
            };
            let part_keys = keys.iter().map(pick).collect::<Result<Vec<_>>>()?;
            let part_args = args
                .iter()
                .map(|a| a.iter().map(pick).collect::<Result<Vec<_>>>())
                .collect::<Result<Vec<_>>>()?;
            let part_filters = filters
                .iter()
                .map(|f| f.as_ref().map(pick).transpose())
                .collect::<Result<Vec<_>>>()?;
            if !self.windows.contains_key(&end) {
                let state = self.new_window()?;
                self.windows.insert(end, state);
            }
            for set in 0..self.grouping.sets.len() {
                let mut cols: Vec<ArrayRef> = part_keys
                    .iter()
                    .zip(&self.grouping.sets[set])
                    .map(|(k, &null)| {
                        if null {
                            datafusion::arrow::array::new_null_array(k.data_type(), count)
                        } else {
                            k.clone()
                        }
                    })
                    .collect();
                if let Some(gid) = self.grouping_id_array(set, count)? {
                    cols.push(gid);
                }
                let state = self
                    .windows
                    .get_mut(&end)
                    .ok_or_else(|| EngineError::Graph("window state vanished".into()))?;
                let group_ids = &mut self.group_ids;
                group_ids.clear();
                state
                    .groups
                    .intern(&cols, group_ids)
                    .context("window aggregate")?;
                let total = state.groups.len();
                state.dirty = true;
                for ((acc, a), f) in state
                    .accumulators
                    .iter_mut()
                    .zip(&part_args)
                    .zip(&part_filters)
                {
                    let f = f.as_ref().map(|f| f.as_boolean().clone());
                    let f: Option<&BooleanArray> = f.as_ref();
                    acc.update_batch(a, group_ids, f, total)
                        .context("window aggregate update")?;
                }
            }
        }
        if let Some(budget) = self.spill.as_ref().map(Spill::budget) {
            if self.state_size() as usize > budget {
                self.spill_windows()?;
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        self.watermark = self.watermark.max(wm);
        while let Some(entry) = self.windows.first_entry() {
            if !has_fired(*entry.key(), self.watermark) {
                break;
            }
            let end = *entry.key();
            self.fire(end, out)?;
        }
        out.watermark(wm);
        Ok(())
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        self.stored = state.raw_table("windows")?;
        if let Some(spill) = &mut self.spill {
            spill.open(state.raw_table("spilled")?)?;
        }
        // A restored checkpoint's open windows come back into memory (they
        // were there when it was taken); spilled parts stay where they are.
        let mut found: Vec<(u16, EventTime, Vec<u8>)> = vec![];
        self.stored.scan(|g, k, v| {
            found.push((g, parse_window_key(k)?, v.to_vec()));
            Ok(true)
        })?;
        for (g, end, value) in found {
            let batch = decode_batch(&value)?;
            if batch.schema().fields().len() != self.state_schema.fields().len() {
                return Err(EngineError::State(format!(
                    "window state has {} columns, {} expected",
                    batch.num_columns(),
                    self.state_schema.fields().len()
                )));
            }
            self.merge_state(end, &batch)?;
            if let Some(s) = self.windows.get_mut(&end) {
                s.stored_groups.push(g);
            }
        }
        // A window whose state is all spilled is still open.
        let spilled: Vec<EventTime> = self.spill.as_ref().map(|s| s.ends()).unwrap_or_default();
        for end in spilled {
            if !self.windows.contains_key(&end) {
                let state = self.new_window()?;
                self.windows.insert(end, state);
            }
        }
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        let mut tables: Vec<&mut dyn StateTable> = vec![&mut self.stored];
        if let Some(spill) = &mut self.spill {
            tables.push(spill.table_mut());
        }
        tables
    }

    /// Writes the windows changed since the last checkpoint into its table,
    /// by key group; the watermark is operator state.
    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        w.put(
            OPERATOR_STATE,
            WATERMARK_KEY,
            self.watermark.to_be_bytes().to_vec(),
        );
        let dirty: Vec<EventTime> = self
            .windows
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(e, _)| *e)
            .collect();
        let n_groups = self.group_schema.fields().len();
        let mut batch = RawBatch::default();
        for end in dirty {
            let state_batch = self.state_batch(end)?;
            let keys = state_batch.columns()[..n_groups].to_vec();
            let parts = split_by_key_group(&state_batch, &keys, w.key_groups())?;
            let Some(state) = self.windows.get_mut(&end) else {
                continue;
            };
            // Key groups stored before and empty now (spilled) are deleted.
            for g in &state.stored_groups {
                if !parts.iter().any(|(p, _)| p == g) {
                    self.stored.delete(&mut batch, *g, &window_key(end));
                }
            }
            state.stored_groups.clear();
            for (g, part) in parts {
                self.stored
                    .put(&mut batch, g, &window_key(end), &encode_batch(&part)?);
                state.stored_groups.push(g);
            }
            state.dirty = false;
        }
        self.stored.write(batch)
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        for e in entries {
            if e.key_group == OPERATOR_STATE && e.key == WATERMARK_KEY {
                self.watermark = read_i64(&e.value)?;
            }
        }
        Ok(())
    }

    fn key_exprs(&self, _input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        // With grouping sets a row has several keys, one per set.
        (self.grouping.sets.len() == 1 && self.grouping.grouping_id.is_none())
            .then(|| self.grouping.exprs.clone())
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("grouping sets give a row one key per set (not partitioned yet)")
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        let mut op = WindowAggregate::new(
            self.grouping.clone(),
            self.aggregates.clone(),
            self.output_schema.clone(),
            self.late.clone(),
        )?;
        if let Some(s) = &self.spill {
            op = op.with_spill(s.fork()?);
        }
        Ok(Some(Box::new(op)))
    }

    fn state_size(&self) -> u64 {
        self.windows
            .values()
            .map(|s| s.groups.size() + s.accumulators.iter().map(|a| a.size()).sum::<usize>())
            .sum::<usize>() as u64
    }
}

const WATERMARK_KEY: &[u8] = b"watermark";

/// Reads an `i64` stored big-endian.
pub(crate) fn read_i64(v: &[u8]) -> Result<i64> {
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| EngineError::State("a stored number has the wrong size".into()))?;
    Ok(i64::from_be_bytes(b))
}
