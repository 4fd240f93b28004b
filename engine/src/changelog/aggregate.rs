//! A non-window GROUP BY (Flink's `GroupAggFunction`): one row per group,
//! updated as rows arrive. Every input row changes its group at once and the
//! change is emitted as Flink emits it: `+I` for a new group, `-U` old / `+U`
//! new when its aggregates change (nothing when they stay the same, unless a
//! state TTL is set), `-D` when retractions empty it. Retractions in the
//! input (`-U`, `-D`) are taken back from the accumulators.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, Int8Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{HashMap, ScalarValue};
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::PhysicalExpr;

use super::retract::{RetractableAvg, RetractableMinMax};
use super::ttl::{now_ms, sweep, Ttl};
use super::{kind_at, kinds, RowKind};
use crate::error::ResultExt;
use crate::operator::{Emitter, Operator};
use crate::operators::eval;
use crate::state::arrow_state::{decode_batch, encode_batch};
use crate::state::{key_group_of, StateEntry, StateWriter};
use crate::window::aggregate::AggregateSpec;
use crate::{EngineError, Result};

/// What a group aggregation computes, as planned.
#[derive(Debug, Clone)]
pub struct GroupAggregateSpec {
    /// The group expressions over the input.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Their types (as in the output).
    pub key_types: Vec<DataType>,
    /// The aggregate calls.
    pub aggregates: Vec<AggregateSpec>,
    /// Whether the input carries retractions.
    pub input_updating: bool,
    /// Group columns, aggregates, then `__row_kind`.
    pub output_schema: SchemaRef,
    /// `table.exec.state.ttl`.
    pub ttl: Option<Duration>,
    /// The plan as text.
    pub describe: String,
}

struct Group {
    key: Vec<ScalarValue>,
    accs: Vec<Box<dyn Accumulator>>,
    /// Rows accumulated minus rows retracted.
    count: i64,
    /// The aggregates as last emitted.
    value: Vec<ScalarValue>,
    touched: u64,
}

/// Rows emitted by one batch, column by column.
struct Changes {
    kinds: Vec<i8>,
    columns: Vec<Vec<ScalarValue>>,
}

impl Changes {
    fn push(&mut self, kind: RowKind, key: &[ScalarValue], value: &[ScalarValue]) {
        self.kinds.push(kind as i8);
        for (c, v) in self.columns.iter_mut().zip(key.iter().chain(value)) {
            c.push(v.clone());
        }
    }
}

/// Runs a non-window GROUP BY, emitting a changelog.
pub struct GroupAggregate {
    spec: GroupAggregateSpec,
    converter: RowConverter,
    groups: HashMap<Box<[u8]>, Group>,
    /// Keys changed or gone since the last checkpoint.
    dirty: HashSet<Box<[u8]>>,
    ttl: Option<Ttl>,
}

impl GroupAggregate {
    /// The operator for `spec`; fails if an aggregate cannot take back rows
    /// of an updating input.
    pub fn new(spec: GroupAggregateSpec) -> Result<Self> {
        let converter =
            RowConverter::new(spec.key_types.iter().cloned().map(SortField::new).collect())
                .context("group keys")?;
        let ttl = spec.ttl.map(Ttl::new);
        let op = Self {
            spec,
            converter,
            groups: HashMap::new(),
            dirty: HashSet::new(),
            ttl,
        };
        for (a, acc) in op.spec.aggregates.iter().zip(op.accumulators()?) {
            if op.spec.input_updating && !acc.supports_retract_batch() {
                return Err(EngineError::Graph(format!(
                    "{} cannot take back rows, and its input is an updating result: aggregate an append-only input",
                    a.expr.name()
                )));
            }
        }
        Ok(op)
    }

    fn accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        self.spec
            .aggregates
            .iter()
            .map(|a| {
                let f = a.expr.fun().name().to_ascii_lowercase();
                if self.spec.input_updating && (f == "min" || f == "max") {
                    return Ok(Box::new(RetractableMinMax::new(
                        f == "max",
                        a.expr.field().data_type().clone(),
                    )) as Box<dyn Accumulator>);
                }
                // `avg_truncated`: Vigil's AVG over integers (Flink's truncating AVG).
                if self.spec.input_updating && (f == "avg" || f == "avg_truncated") {
                    let result = a.expr.field().data_type().clone();
                    if let Some(avg) = RetractableAvg::new(result, f == "avg_truncated") {
                        return Ok(Box::new(avg) as Box<dyn Accumulator>);
                    }
                }
                if self.spec.input_updating {
                    a.expr.create_sliding_accumulator()
                } else {
                    a.expr.create_accumulator()
                }
                .context("group aggregate")
            })
            .collect()
    }

    fn key_columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.spec
            .keys
            .iter()
            .zip(&self.spec.key_types)
            .map(|(e, t)| {
                let a = eval(e.as_ref(), batch, "group key")?;
                if a.data_type() == t {
                    Ok(a)
                } else {
                    cast(&a, t).context("group key")
                }
            })
            .collect()
    }

    fn key_bytes(&self, cols: &[ArrayRef], rows: usize) -> Result<Vec<Box<[u8]>>> {
        if cols.is_empty() {
            return Ok(vec![Box::from(&[][..]); rows]);
        }
        let converted = self.converter.convert_columns(cols).context("group key")?;
        Ok((0..rows)
            .map(|i| Box::from(converted.row(i).data()))
            .collect())
    }

    fn evaluate(accs: &mut [Box<dyn Accumulator>]) -> Result<Vec<ScalarValue>> {
        accs.iter_mut()
            .map(|a| a.evaluate().context("group aggregate"))
            .collect()
    }

    /// Drops groups untouched for the TTL.
    fn expire(&mut self) {
        let Some(expired) = sweep(&mut self.ttl) else {
            return;
        };
        let dirty = &mut self.dirty;
        self.groups.retain(|k, g| {
            let live = !expired(g.touched);
            if !live {
                dirty.insert(k.clone());
            }
            live
        });
    }

    fn output(&self, changes: Changes) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = vec![];
        for (values, f) in changes
            .columns
            .into_iter()
            .zip(self.spec.output_schema.fields())
        {
            let a = ScalarValue::iter_to_array(values).context("group aggregate output")?;
            columns.push(if a.data_type() == f.data_type() {
                a
            } else {
                cast(&a, f.data_type()).context("group aggregate output")?
            });
        }
        columns.push(Arc::new(Int8Array::from(changes.kinds)));
        RecordBatch::try_new(self.spec.output_schema.clone(), columns)
            .context("group aggregate output")
    }

    /// The checkpointed layout of one key group's groups.
    fn state_batch(key_types: &[DataType], groups: &mut [&mut Group]) -> Result<RecordBatch> {
        let mut fields = vec![];
        let mut columns: Vec<ArrayRef> = vec![];
        for (k, t) in key_types.iter().enumerate() {
            let a = ScalarValue::iter_to_array(groups.iter().map(|g| g.key[k].clone()))
                .context("group state")?;
            let a = if a.data_type() == t {
                a
            } else {
                cast(&a, t).context("group state")?
            };
            fields.push(Field::new(format!("k{k}"), t.clone(), true));
            columns.push(a);
        }
        fields.push(Field::new("count", DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from_iter_values(
            groups.iter().map(|g| g.count),
        )));
        let mut states: Vec<Vec<ScalarValue>> = vec![];
        for g in groups.iter_mut() {
            let mut row = vec![];
            for acc in g.accs.iter_mut() {
                row.extend(acc.state().context("group state")?);
            }
            states.push(row);
        }
        let width = states.first().map_or(0, Vec::len);
        for s in 0..width {
            let a = ScalarValue::iter_to_array(states.iter().map(|r| r[s].clone()))
                .context("group state")?;
            fields.push(Field::new(format!("s{s}"), a.data_type().clone(), true));
            columns.push(a);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context("group state")
    }

    fn load(&mut self, batch: &RecordBatch) -> Result<()> {
        let nk = self.spec.key_types.len();
        let keys: Vec<ArrayRef> = batch.columns()[..nk].to_vec();
        let bytes = self.key_bytes(&keys, batch.num_rows())?;
        let counts = batch
            .column(nk)
            .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
            .ok_or_else(|| EngineError::State("group state without counts".into()))?;
        let states = &batch.columns()[nk + 1..];
        let now = now_ms();
        for (i, key) in bytes.into_iter().enumerate() {
            let mut accs = self.accumulators()?;
            let mut at = 0;
            for acc in accs.iter_mut() {
                let n = acc.state().context("restoring group state")?.len();
                let slices: Vec<ArrayRef> =
                    states[at..at + n].iter().map(|c| c.slice(i, 1)).collect();
                acc.merge_batch(&slices).context("restoring group state")?;
                at += n;
            }
            let key_values = keys
                .iter()
                .map(|c| ScalarValue::try_from_array(c, i))
                .collect::<datafusion::error::Result<Vec<_>>>()
                .context("restoring group state")?;
            let value = Self::evaluate(&mut accs)?;
            self.groups.insert(
                key,
                Group {
                    key: key_values,
                    accs,
                    count: counts.value(i),
                    value,
                    touched: now,
                },
            );
        }
        Ok(())
    }
}

impl Operator for GroupAggregate {
    fn name(&self) -> String {
        format!("GroupAggregate({})", self.spec.describe)
    }

    fn state_signature(&self) -> String {
        format!(
            "GroupAggregate({} keys, {}{})",
            self.spec.keys.len(),
            crate::window::aggregate::aggregates_signature(&self.spec.aggregates),
            if self.spec.input_updating {
                ", retracting"
            } else {
                ""
            }
        )
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        self.expire();
        let n = batch.num_rows();
        let kinds = kinds(&batch).cloned();
        let key_cols = self.key_columns(&batch)?;
        let keys = self.key_bytes(&key_cols, n)?;
        let mut args: Vec<Vec<ArrayRef>> = vec![];
        let mut filters: Vec<Option<BooleanArray>> = vec![];
        for a in &self.spec.aggregates {
            args.push(
                a.expr
                    .expressions()
                    .iter()
                    .map(|e| eval(e.as_ref(), &batch, "aggregate argument"))
                    .collect::<Result<_>>()?,
            );
            filters.push(match &a.filter {
                Some(f) => Some(
                    eval(f.as_ref(), &batch, "aggregate filter")?
                        .as_boolean_opt()
                        .ok_or_else(|| EngineError::Graph("FILTER is not boolean".into()))?
                        .clone(),
                ),
                None => None,
            });
        }
        let width = self.spec.output_schema.fields().len() - 1;
        let mut changes = Changes {
            kinds: vec![],
            columns: vec![vec![]; width],
        };
        let now = now_ms();
        for (i, key) in keys.into_iter().enumerate() {
            let retract = kind_at(kinds.as_ref(), i).is_retraction();
            if !self.groups.contains_key(&key) {
                // A retraction for a group never seen (or expired) is ignored.
                if retract {
                    continue;
                }
                let key_values = key_cols
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, i))
                    .collect::<datafusion::error::Result<Vec<_>>>()
                    .context("group key")?;
                let accs = self.accumulators()?;
                self.groups.insert(
                    key.clone(),
                    Group {
                        key: key_values,
                        accs,
                        count: 0,
                        value: vec![],
                        touched: now,
                    },
                );
            }
            let Some(g) = self.groups.get_mut(&key) else {
                continue;
            };
            let first = g.count == 0;
            for ((acc, a), f) in g.accs.iter_mut().zip(&args).zip(&filters) {
                if f.as_ref().is_some_and(|f| !(f.is_valid(i) && f.value(i))) {
                    continue;
                }
                let row: Vec<ArrayRef> = a.iter().map(|c| c.slice(i, 1)).collect();
                if retract {
                    acc.retract_batch(&row)
                } else {
                    acc.update_batch(&row)
                }
                .context("group aggregate")?;
            }
            g.count += if retract { -1 } else { 1 };
            g.touched = now;
            if g.count > 0 {
                let value = Self::evaluate(&mut g.accs)?;
                if first {
                    changes.push(RowKind::Insert, &g.key, &value);
                } else if self.ttl.is_some() || value != g.value {
                    changes.push(RowKind::UpdateBefore, &g.key, &g.value);
                    changes.push(RowKind::UpdateAfter, &g.key, &value);
                }
                g.value = value;
            } else {
                if !first {
                    changes.push(RowKind::Delete, &g.key, &g.value);
                }
                self.groups.remove(&key);
            }
            self.dirty.insert(key);
        }
        if !changes.kinds.is_empty() {
            out.batch(self.output(changes)?);
        }
        Ok(())
    }

    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        let kgs = w.key_groups();
        let dirty: HashSet<u16> = self.dirty.drain().map(|k| key_group_of(&k, kgs)).collect();
        if dirty.is_empty() {
            return Ok(());
        }
        let mut by_group: HashMap<u16, Vec<&mut Group>> = HashMap::new();
        for (k, g) in self.groups.iter_mut() {
            let kg = key_group_of(k, kgs);
            if dirty.contains(&kg) {
                by_group.entry(kg).or_default().push(g);
            }
        }
        for kg in dirty {
            match by_group.get_mut(&kg) {
                Some(groups) => {
                    let batch = Self::state_batch(&self.spec.key_types, groups)?;
                    w.put(kg, b"groups", encode_batch(&batch)?);
                }
                None => w.delete(kg, b"groups"),
            }
        }
        Ok(())
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        for e in entries {
            if e.key == b"groups" {
                let batch = decode_batch(&e.value)?;
                self.load(&batch)?;
            }
        }
        Ok(())
    }

    fn state_size(&self) -> u64 {
        self.groups
            .values()
            .map(|g| g.accs.iter().map(|a| a.size()).sum::<usize>() as u64)
            .sum()
    }

    fn key_exprs(&self) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        (!self.spec.keys.is_empty()).then(|| self.spec.keys.clone())
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("no GROUP BY key: one instance sees the whole stream")
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(GroupAggregate::new(self.spec.clone())?)))
    }
}
