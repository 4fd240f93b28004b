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
        Ok(Self {
            grouping,
            aggregates,
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
        })
    }

    fn fire(&mut self, state: WindowState, out: &mut Emitter) -> Result<()> {
        let WindowState {
            mut groups,
            mut accumulators,
        } = state;
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
            let state = entry.remove();
            self.fire(state, out)?;
        }
        out.watermark(wm);
        Ok(())
    }
}
