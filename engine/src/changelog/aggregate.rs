//! A non-window GROUP BY (Flink's `GroupAggFunction`): one row per group,
//! updated as rows arrive. Every input row changes its group at once and the
//! change is emitted as Flink emits it: `+I` for a new group, `-U` old / `+U`
//! new when its aggregates change (nothing when they stay the same, unless a
//! state TTL is set), `-D` when retractions empty it. Retractions in the
//! input (`-U`, `-D`) are taken back from the accumulators.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int8Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::PhysicalExpr;

use super::group_accs::Flat;
use super::group_state::{group_layout, new_accumulators, Group, GroupCodec};
use super::ttl::{now_ms, sweep, Ttl};
use super::{kind_at, kinds, RowKind};
use crate::error::ResultExt;
use crate::operator::{Emitter, Operator};
use crate::operators::eval;
use crate::state::keyed::{KeyedTable, StateContext, StateTable};
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
    /// With `table.exec.mini-batch.enabled`: at most this many rows
    /// (`table.exec.mini-batch.size`) change each group at once, and a group
    /// emits one change per mini-batch (Flink's `MiniBatchGroupAggFunction`).
    pub mini_batch: Option<usize>,
    /// The plan as text.
    pub describe: String,
}

/// Rows emitted by one batch: their keys in Arrow's row format (the
/// groups' table keys, converted to columns once for the batch), their
/// aggregates column by column.
pub(super) struct Changes {
    kinds: Vec<i8>,
    keys: Vec<u8>,
    key_ends: Vec<usize>,
    columns: Vec<Vec<ScalarValue>>,
}

impl Changes {
    fn push(&mut self, kind: RowKind, key: &[u8], value: &[ScalarValue]) {
        self.kinds.push(kind as i8);
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len());
        for (c, v) in self.columns.iter_mut().zip(value) {
            c.push(v.clone());
        }
    }
}

/// Runs a non-window GROUP BY, emitting a changelog. Its groups live in a
/// declared keyed table (cached, spilled to RocksDB, checkpointed by the
/// state layer).
pub struct GroupAggregate {
    pub(super) spec: GroupAggregateSpec,
    converter: RowConverter,
    /// The inline states of new groups, when they have them.
    pub(super) layout: Option<Vec<Flat>>,
    pub(super) groups: KeyedTable<Group, GroupCodec>,
    pub(super) ttl: Option<Ttl>,
}

impl GroupAggregate {
    /// The operator for `spec`; fails if an aggregate cannot take back rows
    /// of an updating input.
    pub fn new(spec: GroupAggregateSpec) -> Result<Self> {
        let converter =
            RowConverter::new(spec.key_types.iter().cloned().map(SortField::new).collect())
                .context("group keys")?;
        let ttl = spec.ttl.map(Ttl::new);
        let groups = Self::declare(&spec, &mut StateContext::detached())?;
        let layout = group_layout(&spec.aggregates, spec.input_updating)?;
        let op = Self {
            spec,
            converter,
            layout,
            groups,
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

    fn declare(
        spec: &GroupAggregateSpec,
        ctx: &mut StateContext,
    ) -> Result<KeyedTable<Group, GroupCodec>> {
        let codec = GroupCodec::new(&spec.aggregates, spec.input_updating)?;
        ctx.table("groups", codec, spec.ttl)
    }

    fn accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        new_accumulators(&self.spec.aggregates, self.spec.input_updating)
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

    /// The keys of a batch in Arrow's row format (`None` without GROUP BY
    /// columns: one group, the empty key).
    fn key_rows(&self, cols: &[ArrayRef]) -> Result<Option<Rows>> {
        if cols.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            self.converter.convert_columns(cols).context("group key")?,
        ))
    }

    /// Drops cached groups untouched for the TTL (the table skips expired
    /// ones it reads back).
    fn expire(&mut self) {
        if sweep(&mut self.ttl).is_some() {
            self.groups.expire(now_ms());
        }
    }

    fn output(&self, changes: Changes) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = if self.spec.keys.is_empty() {
            vec![]
        } else {
            let parser = self.converter.parser();
            let mut start = 0;
            let rows = changes.key_ends.iter().map(|&end| {
                let row = parser.parse(&changes.keys[start..end]);
                start = end;
                row
            });
            self.converter
                .convert_rows(rows)
                .context("group aggregate output")?
        };
        let fields = self.spec.output_schema.fields();
        for (values, f) in changes.columns.into_iter().zip(&fields[columns.len()..]) {
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
}

/// A batch's keys, aggregate arguments and FILTER masks, evaluated once.
pub(super) struct Inputs {
    pub(super) kinds: Option<Int8Array>,
    pub(super) keys: Option<Rows>,
    pub(super) args: Vec<Vec<ArrayRef>>,
    pub(super) filters: Vec<Option<BooleanArray>>,
}

impl Inputs {
    /// Row `i`'s key (Arrow's row format).
    pub(super) fn key(&self, i: usize) -> &[u8] {
        self.keys.as_ref().map_or(&[], |k| k.row(i).data())
    }
}

impl GroupAggregate {
    fn inputs(&self, batch: &RecordBatch) -> Result<Inputs> {
        let key_cols = self.key_columns(batch)?;
        let keys = self.key_rows(&key_cols)?;
        let mut args: Vec<Vec<ArrayRef>> = vec![];
        let mut filters: Vec<Option<BooleanArray>> = vec![];
        for a in &self.spec.aggregates {
            args.push(
                a.expr
                    .expressions()
                    .iter()
                    .map(|e| eval(e.as_ref(), batch, "aggregate argument"))
                    .collect::<Result<_>>()?,
            );
            filters.push(match &a.filter {
                Some(f) => Some(
                    eval(f.as_ref(), batch, "aggregate filter")?
                        .as_boolean_opt()
                        .ok_or_else(|| EngineError::Graph("FILTER is not boolean".into()))?
                        .clone(),
                ),
                None => None,
            });
        }
        Ok(Inputs {
            kinds: kinds(batch).cloned(),
            keys,
            args,
            filters,
        })
    }

    /// A new, empty group.
    pub(super) fn new_group(spec: &GroupAggregateSpec, layout: Option<&[Flat]>) -> Result<Group> {
        Group::new(layout, &spec.aggregates, spec.input_updating)
    }

    /// Flink's per-record changelog: each row changes its group at once.
    fn row_by_row(&mut self, input: &Inputs, n: usize) -> Result<Changes> {
        let mut changes = self.changes();
        let now = now_ms();
        self.groups.prefetch((0..n).map(|i| input.key(i)), now)?;
        for i in 0..n {
            let key = input.key(i);
            let retract = kind_at(input.kinds.as_ref(), i).is_retraction();
            let (spec, layout) = (&self.spec, self.layout.as_deref());
            let make = || -> Result<Option<Group>> {
                // A retraction for a group never seen (or expired) is ignored.
                if retract {
                    return Ok(None);
                }
                Self::new_group(spec, layout).map(Some)
            };
            let Some(group) = self.groups.get_mut_or(key, now, make)? else {
                continue;
            };
            let first = group.count == 0;
            for (k, (a, f)) in input.args.iter().zip(&input.filters).enumerate() {
                if f.as_ref().is_some_and(|f| !(f.is_valid(i) && f.value(i))) {
                    continue;
                }
                group.accs.update_row(k, a, i, retract)?;
            }
            group.count += if retract { -1 } else { 1 };
            let ttl = self.ttl.is_some();
            if !Self::settle(group, key, first, ttl, &mut changes)? {
                self.groups.remove(key);
            }
        }
        Ok(changes)
    }

    /// The changes of a group after an update (`first`: it was new): `+I`,
    /// `-U`/`+U` if its aggregates changed (always with a TTL, as Flink), or
    /// `-D` once retractions empty it. False when the group is gone.
    pub(super) fn settle(
        g: &mut Group,
        key: &[u8],
        first: bool,
        ttl: bool,
        changes: &mut Changes,
    ) -> Result<bool> {
        if g.count > 0 {
            let value = g.accs.evaluate()?;
            if first {
                changes.push(RowKind::Insert, key, &value);
            } else if ttl || value != g.value {
                changes.push(RowKind::UpdateBefore, key, &g.value);
                changes.push(RowKind::UpdateAfter, key, &value);
            }
            g.value = value;
            Ok(true)
        } else {
            if !first {
                changes.push(RowKind::Delete, key, &g.value);
            }
            Ok(false)
        }
    }

    pub(super) fn changes(&self) -> Changes {
        Changes {
            kinds: vec![],
            keys: vec![],
            key_ends: vec![],
            columns: vec![vec![]; self.spec.aggregates.len()],
        }
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
        let input = self.inputs(&batch)?;
        let changes = match self.spec.mini_batch {
            Some(size) => self.mini_batches(&input, batch.num_rows(), size)?,
            None => self.row_by_row(&input, batch.num_rows())?,
        };
        if !changes.kinds.is_empty() {
            out.batch(self.output(changes)?);
        }
        Ok(())
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        self.groups = Self::declare(&self.spec, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.groups]
    }

    fn key_exprs(&self, _input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        (!self.spec.keys.is_empty()).then(|| self.spec.keys.clone())
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("no GROUP BY key: one instance sees the whole stream")
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(GroupAggregate::new(self.spec.clone())?)))
    }
}
