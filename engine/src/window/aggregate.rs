//! Window aggregation: groups rows by `window_end` (and `window_start` and the
//! other keys), accumulates with DataFusion's accumulators, and emits one row
//! per group when the watermark passes the window's end.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use crate::error::ResultExt;
use crate::message::EventTime;
use crate::metrics::Counter;
use crate::operator::{Emitter, Operator};
use crate::operators::eval;
use crate::operators::watermark::to_millis;
use crate::state::arrow_state::{decode_batch, encode_batch, split_by_key_group};
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

struct WindowState {
    groups: Box<dyn GroupValues>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Changed since the last checkpoint.
    dirty: bool,
    /// Key groups this window has state in, in the store.
    stored_groups: Vec<u16>,
}

/// Aggregates rows per window and group; fires windows on the watermark.
pub struct WindowAggregate {
    grouping: GroupingSpec,
    aggregates: Vec<AggregateSpec>,
    group_schema: SchemaRef,
    output_schema: SchemaRef,
    windows: BTreeMap<EventTime, WindowState>,
    watermark: EventTime,
    late: Counter,
    late_logged: u64,
    group_ids: Vec<usize>,
    /// Group columns and each accumulator's state columns: a window's state as
    /// it is checkpointed.
    state_schema: SchemaRef,
    /// Windows fired since the last checkpoint, with the key groups they had
    /// stored state in.
    fired: Vec<(EventTime, Vec<u16>)>,
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
            fired: vec![],
            group_schema: Arc::new(Schema::new(group_fields)),
            output_schema,
            windows: BTreeMap::new(),
            watermark: MIN_WATERMARK,
            late,
            late_logged: 0,
            group_ids: vec![],
        })
    }

    fn new_window(&self) -> Result<WindowState> {
        let groups = new_group_values(self.group_schema.clone(), &GroupOrdering::None)
            .context("window aggregate")?;
        let accumulators = self
            .aggregates
            .iter()
            .map(|a| {
                if a.expr.groups_accumulator_supported() {
                    a.expr.create_groups_accumulator()
                } else {
                    let expr = a.expr.clone();
                    Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                        expr.create_accumulator()
                    })) as Box<dyn GroupsAccumulator>)
                }
            })
            .collect::<datafusion::error::Result<Vec<_>>>()
            .context("window aggregate")?;
        Ok(WindowState {
            groups,
            accumulators,
            dirty: false,
            stored_groups: vec![],
        })
    }

    /// Takes a window's state out as one batch (group columns, then each
    /// accumulator's state columns) and leaves an equivalent state in its place.
    fn state_batch(&mut self, end: EventTime) -> Result<RecordBatch> {
        let fresh = self.new_window()?;
        let Some(state) = self.windows.get_mut(&end) else {
            return Err(EngineError::Graph("window state vanished".into()));
        };
        let old = std::mem::replace(state, fresh);
        let WindowState {
            mut groups,
            mut accumulators,
            stored_groups,
            ..
        } = old;
        let mut columns = groups.emit(EmitTo::All).context("window state")?;
        for acc in accumulators.iter_mut() {
            columns.extend(acc.state(EmitTo::All).context("window state")?);
        }
        // Named by the planned state fields, typed by what the accumulators returned.
        let fields: Vec<Field> = self
            .state_schema
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true))
            .collect();
        let batch =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context("window state")?;
        self.merge_state(end, &batch)?;
        if let Some(state) = self.windows.get_mut(&end) {
            state.stored_groups = stored_groups;
        }
        Ok(batch)
    }

    /// Merges a state batch (as [`Self::state_batch`] makes) into window `end`.
    fn merge_state(&mut self, end: EventTime, batch: &RecordBatch) -> Result<()> {
        if !self.windows.contains_key(&end) {
            let state = self.new_window()?;
            self.windows.insert(end, state);
        }
        let n_groups = self.group_schema.fields().len();
        let state = self
            .windows
            .get_mut(&end)
            .ok_or_else(|| EngineError::Graph("window state vanished".into()))?;
        let group_ids = &mut self.group_ids;
        group_ids.clear();
        state
            .groups
            .intern(&batch.columns()[..n_groups], group_ids)
            .context("window state restore")?;
        let total = state.groups.len();
        let mut col = n_groups;
        for (acc, a) in state.accumulators.iter_mut().zip(&self.aggregates) {
            let width = a.expr.state_fields().context("window state")?.len();
            acc.merge_batch(&batch.columns()[col..col + width], group_ids, total)
                .context("window state restore")?;
            col += width;
        }
        Ok(())
    }

    fn fire(&mut self, end: EventTime, state: WindowState, out: &mut Emitter) -> Result<()> {
        let WindowState {
            mut groups,
            mut accumulators,
            stored_groups,
            ..
        } = state;
        if !stored_groups.is_empty() {
            self.fired.push((end, stored_groups));
        }
        let mut columns = groups.emit(EmitTo::All).context("window aggregate emit")?;
        for acc in accumulators.iter_mut() {
            columns.push(
                acc.evaluate(EmitTo::All)
                    .context("window aggregate evaluate")?,
            );
        }
        // Group values come back with the group schema's types; align names,
        // nullability and metadata with the output schema.
        let columns = columns
            .into_iter()
            .zip(self.output_schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    datafusion::arrow::compute::cast(&c, f.data_type())
                        .context("window aggregate output")
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(self.output_schema.clone(), columns)
            .context("window aggregate output")?;
        out.batch(batch);
        Ok(())
    }

    fn grouping_id_array(&self, set: usize, rows: usize) -> Result<Option<ArrayRef>> {
        let Some(field) = &self.grouping.grouping_id else {
            return Ok(None);
        };
        // As DataFusion: bit per expression (1 = NULL in this set), first
        // expression highest; repeated sets get an ordinal above those bits.
        let mask = &self.grouping.sets[set];
        let ordinal = self.grouping.sets[..set]
            .iter()
            .filter(|s| *s == mask)
            .count() as u64;
        let semantic = mask
            .iter()
            .fold(0u64, |acc, &null| (acc << 1) | u64::from(null));
        let id = semantic | (ordinal << mask.len());
        let array = ScalarValue::UInt64(Some(id))
            .cast_to(field.data_type())
            .and_then(|v| v.to_array_of_size(rows))
            .context("grouping id")?;
        Ok(Some(array))
    }
}

impl Operator for WindowAggregate {
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
            if end - 1 <= self.watermark {
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
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        self.watermark = self.watermark.max(wm);
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() - 1 > self.watermark {
                break;
            }
            let end = *entry.key();
            let state = entry.remove();
            self.fire(end, state, out)?;
        }
        out.watermark(wm);
        Ok(())
    }

    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        for (end, groups) in self.fired.drain(..) {
            for g in groups {
                w.delete(g, &window_key(end));
            }
        }
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
        for end in dirty {
            let batch = self.state_batch(end)?;
            let keys = batch.columns()[..n_groups].to_vec();
            let parts = split_by_key_group(&batch, &keys, w.key_groups())?;
            let Some(state) = self.windows.get_mut(&end) else {
                continue;
            };
            for (g, part) in parts {
                w.put(g, &window_key(end), encode_batch(&part)?);
                if !state.stored_groups.contains(&g) {
                    state.stored_groups.push(g);
                }
            }
            state.dirty = false;
        }
        Ok(())
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        for e in entries {
            if e.key_group == OPERATOR_STATE {
                if e.key == WATERMARK_KEY {
                    self.watermark = read_i64(&e.value)?;
                }
                continue;
            }
            let end = parse_window_key(&e.key)?;
            let batch = decode_batch(&e.value)?;
            if batch.schema().fields().len() != self.state_schema.fields().len() {
                return Err(EngineError::State(format!(
                    "window state has {} columns, {} expected",
                    batch.num_columns(),
                    self.state_schema.fields().len()
                )));
            }
            self.merge_state(end, &batch)?;
            if let Some(s) = self.windows.get_mut(&end) {
                s.stored_groups.push(e.key_group);
            }
        }
        Ok(())
    }

    fn state_size(&self) -> u64 {
        self.windows
            .values()
            .map(|s| s.groups.size() + s.accumulators.iter().map(|a| a.size()).sum::<usize>())
            .sum::<usize>() as u64
    }
}

const WATERMARK_KEY: &[u8] = b"watermark";

/// A window's key in the store: `w` and its end, ordered.
fn window_key(end: EventTime) -> [u8; 9] {
    let mut k = [b'w'; 9];
    k[1..].copy_from_slice(&((end as u64) ^ (1 << 63)).to_be_bytes());
    k
}

fn parse_window_key(k: &[u8]) -> Result<EventTime> {
    match k {
        [b'w', rest @ ..] if rest.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(rest);
            Ok((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
        }
        _ => Err(EngineError::State("unknown window state key".into())),
    }
}

/// Reads an `i64` stored big-endian.
pub(crate) fn read_i64(v: &[u8]) -> Result<i64> {
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| EngineError::State("a stored number has the wrong size".into()))?;
    Ok(i64::from_be_bytes(b))
}
