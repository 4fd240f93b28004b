//! OVER aggregations over an updating input (beyond Flink, which refuses
//! them; Nexmark q6 averages the last ten final prices of each seller over a
//! Top-1's result). The input is read as the table its changes leave: each
//! partition keeps its current rows in time order (rows of one time in
//! arrival order), and each row's output is the row with the aggregates of
//! its frame among them. When a partition's rows change, the outputs that
//! change with them are updated: an output no longer there, or with other
//! values, is deleted (`-D`), a new one inserted (`+I`). So the result is
//! the OVER aggregation of the input's current table at all times, which is
//! what a batch engine computes over the final table.
//!
//! Keyed state: each partition's current rows.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int8Array, RecordBatch};
use datafusion::arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::{HashMap, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::{kind_at, kinds, with_row_kind, RowKind};
use crate::error::ResultExt;
use crate::join::rows::{gather, RowRef};
use crate::operator::{Emitter, Operator};
use crate::operators::watermark::to_millis;
use crate::operators::{batch_of, eval};
use crate::state::keyed::rows::RowList;
use crate::state::keyed::{KeyedTable, StateContext, StateTable};
use crate::window::aggregate::aggregates_signature;
use crate::window::over::{OverFrame, OverSpec};
use crate::{EngineError, Result};

/// One output: the row and its aggregate values.
type Output = (RowRef, Vec<ScalarValue>);

/// The OVER aggregation of an updating input (see the module docs).
pub struct UpdatingOver {
    spec: OverSpec,
    keys: RowConverter,
    rows: RowConverter,
    partitions: KeyedTable<Vec<RowRef>, RowList>,
    output: SchemaRef,
}

impl UpdatingOver {
    /// The operator for `spec`, whose `input_schema` is the input's data
    /// columns (without its row kind); it emits `output_schema` with a row
    /// kind.
    pub fn new(spec: OverSpec) -> Result<Self> {
        let key_fields = spec
            .partition_by
            .iter()
            .map(|e| e.data_type(&spec.input_schema).map(SortField::new))
            .collect::<datafusion::error::Result<Vec<_>>>()
            .context("OVER keys")?;
        let keys = RowConverter::new(key_fields).context("OVER keys")?;
        let rows = super::row_converter(&spec.input_schema)?;
        let partitions = Self::declare(&spec, &mut StateContext::detached())?;
        let output = with_row_kind(spec.output_schema.as_ref());
        Ok(Self {
            spec,
            keys,
            rows,
            partitions,
            output,
        })
    }

    fn declare(
        spec: &OverSpec,
        ctx: &mut StateContext,
    ) -> Result<KeyedTable<Vec<RowRef>, RowList>> {
        ctx.table("rows", RowList::new(spec.input_schema.clone())?, None)
    }

    fn time_of(&self, row: &RowRef) -> Result<Option<i64>> {
        let t = to_millis(
            &row.0.column(self.spec.time).slice(row.1, 1),
            "the OVER time",
        )?;
        let t = t.as_primitive::<TimestampMillisecondType>();
        Ok(t.is_valid(0).then(|| t.value(0)))
    }

    /// The rows' bytes, to find a retracted row among them.
    fn row_bytes(&self, rows: &[RowRef]) -> Result<Vec<OwnedRow>> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let refs: Vec<Option<&RowRef>> = rows.iter().map(Some).collect();
        let cols = gather(&self.spec.input_schema, &refs)?;
        let converted = self.rows.convert_columns(&cols).context("OVER rows")?;
        Ok(converted.iter().map(|r| r.owned()).collect())
    }

    /// Each row of `rows` (one partition's, in order) from `first` on, with
    /// its aggregates.
    fn outputs(&self, rows: &[RowRef], first: usize) -> Result<Vec<Output>> {
        if first >= rows.len() {
            return Ok(vec![]);
        }
        // The rows before `first` that its frame can reach.
        let start = match self.spec.frame {
            OverFrame::Rows(Some(k)) => first.saturating_sub(k as usize),
            _ => 0,
        };
        let rows = &rows[start..];
        let first = first - start;
        let refs: Vec<Option<&RowRef>> = rows.iter().map(Some).collect();
        let batch = batch_of(
            &self.spec.input_schema,
            gather(&self.spec.input_schema, &refs)?,
            "OVER rows",
        )?;
        let times = to_millis(batch.column(self.spec.time), "the OVER time")?;
        let times = times.as_primitive::<TimestampMillisecondType>();
        let time = |i: usize| times.is_valid(i).then(|| times.value(i));
        let n = rows.len();
        let mut values: Vec<Vec<ScalarValue>> =
            vec![Vec::with_capacity(self.spec.aggregates.len()); n];
        for a in &self.spec.aggregates {
            let args: Vec<ArrayRef> = a
                .expr
                .expressions()
                .iter()
                .map(|e| eval(e.as_ref(), &batch, "OVER argument"))
                .collect::<Result<_>>()?;
            for (i, out) in values.iter_mut().enumerate().skip(first) {
                let (lo, hi) = frame(self.spec.frame, i, n, &time);
                let mut acc = a.expr.create_accumulator().context("OVER aggregate")?;
                let slice: Vec<ArrayRef> = args.iter().map(|c| c.slice(lo, hi + 1 - lo)).collect();
                acc.update_batch(&slice).context("OVER aggregate")?;
                out.push(acc.evaluate().context("OVER aggregate")?);
            }
        }
        Ok(rows.iter().cloned().zip(values).skip(first).collect())
    }

    /// Applies one partition's changes (`changes`: row and whether it is
    /// added) and emits the outputs that change.
    fn apply(
        &mut self,
        key: &[u8],
        changes: Vec<(RowRef, bool)>,
        emitted: &mut Vec<(RowRef, Vec<ScalarValue>, RowKind)>,
    ) -> Result<()> {
        let old: Vec<RowRef> = self.partitions.get(key, 0)?.cloned().unwrap_or_default();
        let mut rows = old.clone();
        let mut bytes = self.row_bytes(&rows)?;
        for (row, add) in changes {
            let own = self.row_bytes(std::slice::from_ref(&row))?;
            if add {
                let t = self.time_of(&row)?;
                // After the rows of the same time: arrival order.
                let mut at = rows.len();
                for (j, r) in rows.iter().enumerate() {
                    if self.time_of(r)? > t {
                        at = j;
                        break;
                    }
                }
                rows.insert(at, row);
                bytes.splice(at..at, own);
            } else if let Some(j) = bytes.iter().position(|b| Some(b) == own.first()) {
                rows.remove(j);
                bytes.remove(j);
            }
        }
        let same = |a: &RowRef, b: &RowRef| Arc::ptr_eq(&a.0, &b.0) && a.1 == b.1;
        let first = old
            .iter()
            .zip(&rows)
            .position(|(a, b)| !same(a, b))
            .unwrap_or(old.len().min(rows.len()));
        if first == old.len() && first == rows.len() {
            return Ok(());
        }
        // Outputs from the first changed place on, before and after.
        let before = self.outputs(&old, first)?;
        let after = self.outputs(&rows, first)?;
        let mut gone: Vec<Option<Output>> = before.into_iter().map(Some).collect();
        let mut new = vec![];
        for (row, values) in after {
            let kept = gone.iter_mut().find(|g| {
                g.as_ref()
                    .is_some_and(|(r, v)| same(r, &row) && *v == values)
            });
            match kept {
                Some(slot) => *slot = None,
                None => new.push((row, values, RowKind::Insert)),
            }
        }
        // Deletes first: a consumer that upserts by a key of the row (a
        // sink with a primary key) must see an output's new values last.
        emitted.extend(
            gone.into_iter()
                .flatten()
                .map(|(r, v)| (r, v, RowKind::Delete)),
        );
        emitted.extend(new);
        if rows.is_empty() {
            self.partitions.remove(key);
        } else {
            self.partitions.insert(key, rows, 0)?;
        }
        Ok(())
    }

    fn emit(
        &self,
        emitted: Vec<(RowRef, Vec<ScalarValue>, RowKind)>,
        out: &mut Emitter,
    ) -> Result<()> {
        if emitted.is_empty() {
            return Ok(());
        }
        let refs: Vec<Option<&RowRef>> = emitted.iter().map(|(r, ..)| Some(r)).collect();
        let mut columns = gather(&self.spec.input_schema, &refs)?;
        for a in 0..self.spec.aggregates.len() {
            let values = emitted.iter().map(|(_, v, _)| v[a].clone());
            columns.push(ScalarValue::iter_to_array(values).context("OVER output")?);
        }
        let kinds: Int8Array = emitted.iter().map(|(.., k)| Some(*k as i8)).collect();
        columns.push(Arc::new(kinds));
        out.batch(batch_of(&self.output, columns, "OVER output")?);
        Ok(())
    }
}

/// The frame of row `i` of `n` (indices, inclusive).
fn frame(
    frame: OverFrame,
    i: usize,
    n: usize,
    time: &dyn Fn(usize) -> Option<i64>,
) -> (usize, usize) {
    match frame {
        OverFrame::Rows(None) => (0, i),
        OverFrame::Rows(Some(k)) => (i.saturating_sub(k as usize), i),
        OverFrame::Range(range) => {
            let t = time(i);
            // Peers (rows of the same time) are in the frame.
            let mut hi = i;
            while hi + 1 < n && time(hi + 1) == t {
                hi += 1;
            }
            let lo = match (range, t) {
                (None, _) | (_, None) => 0,
                (Some(ms), Some(t)) => (0..=i)
                    .find(|&j| time(j).is_some_and(|tj| tj >= t.saturating_sub(ms)))
                    .unwrap_or(i),
            };
            (lo, hi)
        }
    }
}

impl Operator for UpdatingOver {
    fn name(&self) -> String {
        format!("UpdatingOver({})", self.spec.describe)
    }

    fn state_signature(&self) -> String {
        format!(
            "UpdatingOver({:?}, {})",
            self.spec.frame,
            aggregates_signature(&self.spec.aggregates)
        )
    }

    fn key_exprs(&self, _input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        (!self.spec.partition_by.is_empty()).then(|| self.spec.partition_by.clone())
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("an OVER window without PARTITION BY orders the whole stream in one instance")
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(UpdatingOver::new(self.spec.clone())?)))
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let kind = kinds(&batch).cloned();
        let width = self.spec.input_schema.fields().len();
        if batch.num_columns() < width {
            return Err(EngineError::Graph("OVER input lost columns".into()));
        }
        let data = Arc::new(batch_of(
            &self.spec.input_schema,
            batch.columns()[..width].to_vec(),
            "OVER input",
        )?);
        let cols = self
            .spec
            .partition_by
            .iter()
            .map(|e| eval(e.as_ref(), &data, "PARTITION BY"))
            .collect::<Result<Vec<_>>>()?;
        let keys = if cols.is_empty() {
            None
        } else {
            Some(self.keys.convert_columns(&cols).context("OVER keys")?)
        };
        // Changes by partition, in order of first change.
        let mut order: Vec<Box<[u8]>> = vec![];
        let mut changes: HashMap<Box<[u8]>, Vec<(RowRef, bool)>> = HashMap::new();
        for i in 0..data.num_rows() {
            let key: Box<[u8]> = Box::from(keys.as_ref().map_or(&[][..], |r| r.row(i).data()));
            let add = !kind_at(kind.as_ref(), i).is_retraction();
            let list = changes.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                vec![]
            });
            list.push(((data.clone(), i), add));
        }
        let mut emitted = vec![];
        for key in order {
            if let Some(list) = changes.remove(&key) {
                self.apply(&key, list, &mut emitted)?;
            }
        }
        self.emit(emitted, out)
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        self.partitions = Self::declare(&self.spec, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.partitions]
    }
}
