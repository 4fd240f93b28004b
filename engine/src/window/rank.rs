//! Window Top-N and window deduplication (Flink's): `ROW_NUMBER()`, `RANK()`
//! or `DENSE_RANK()` `OVER (PARTITION BY window_start, window_end[, keys]
//! ORDER BY ...)` over a windowed input. A window's rows wait until the
//! watermark passes its end; then they are ranked within their partition and
//! emitted with their ranks (a filter after it keeps the top N). Rows of a
//! window already ranked are late: dropped and counted.
//!
//! The waiting rows are keyed state: a list per (partition key, window) in a
//! declared table, with a timer at the window's end.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::{lexsort_to_indices, take_record_batch, SortColumn};
use datafusion::arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};

use crate::error::ResultExt;
use crate::join::rows::{gather, RowRef};
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
use crate::Result;

/// A ranking function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RankFunc {
    /// 1, 2, 3, ... in order.
    RowNumber,
    /// Ties share a rank; the next rank skips (1, 1, 3).
    Rank,
    /// Ties share a rank; no gaps (1, 1, 2).
    DenseRank,
}

/// What a window rank computes, as planned.
#[derive(Debug, Clone)]
pub struct WindowRankSpec {
    /// The input's `window_start` and `window_end` columns.
    pub windows: (usize, usize),
    /// Further PARTITION BY expressions.
    pub partition_by: Vec<Arc<dyn PhysicalExpr>>,
    /// ORDER BY.
    pub order_by: Vec<PhysicalSortExpr>,
    /// The ranking functions, one output column each (after the input's).
    pub funcs: Vec<RankFunc>,
    /// The input's columns.
    pub input_schema: SchemaRef,
    /// The input's columns, then one per function.
    pub output_schema: SchemaRef,
    /// The plan as text.
    pub describe: String,
}

/// Bytes a waiting key adds after the partition key: the window's end and
/// start (left out of its key group).
const WINDOW_BYTES: usize = 16;

/// Ranks the rows of each window once the watermark passes its end.
pub struct WindowRank {
    spec: WindowRankSpec,
    keys: RowConverter,
    /// Waiting rows by (partition key, window).
    waiting: KeyedTable<Vec<RowRef>, RowList>,
    ends: Timers,
    watermark: EventTime,
    late: Counter,
}

impl WindowRank {
    /// The operator for `spec`; `late` counts rows of windows already ranked.
    pub fn new(spec: WindowRankSpec, late: Counter) -> Result<Self> {
        let types = spec
            .partition_by
            .iter()
            .map(|e| e.data_type(&spec.input_schema).map(SortField::new))
            .collect::<datafusion::error::Result<Vec<_>>>()
            .context("window rank keys")?;
        let keys = RowConverter::new(types).context("window rank keys")?;
        let (waiting, ends) = Self::declare(&spec, &mut StateContext::detached())?;
        Ok(Self {
            spec,
            keys,
            waiting,
            ends,
            watermark: MIN_WATERMARK,
            late,
        })
    }

    fn declare(
        spec: &WindowRankSpec,
        ctx: &mut StateContext,
    ) -> Result<(KeyedTable<Vec<RowRef>, RowList>, Timers)> {
        let codec = RowList::new(spec.input_schema.clone())?;
        let waiting = ctx
            .table("rows", codec, None)?
            .grouped_without_suffix(WINDOW_BYTES);
        let ends = ctx.timers("ends")?.grouped_without_suffix(WINDOW_BYTES);
        Ok((waiting, ends))
    }

    /// Keeps `batch`'s rows by partition and window, dropping late ones.
    fn keep(&mut self, batch: RecordBatch) -> Result<()> {
        let (ws, we) = self.spec.windows;
        let starts = to_millis(batch.column(ws), "window_start")?;
        let starts = starts.as_primitive::<TimestampMillisecondType>();
        let ends = to_millis(batch.column(we), "window_end")?;
        let ends = ends.as_primitive::<TimestampMillisecondType>();
        let cols = self
            .spec
            .partition_by
            .iter()
            .map(|e| eval(e.as_ref(), &batch, "PARTITION BY"))
            .collect::<Result<Vec<_>>>()?;
        let keys = if cols.is_empty() {
            None
        } else {
            Some(
                self.keys
                    .convert_columns(&cols)
                    .context("window rank keys")?,
            )
        };
        let batch = Arc::new(batch);
        let mut late = 0;
        let mut k = Vec::new();
        for i in 0..batch.num_rows() {
            if ends.is_null(i) || starts.is_null(i) {
                continue;
            }
            let end = ends.value(i);
            if has_fired(end, self.watermark) {
                late += 1;
                continue;
            }
            k.clear();
            k.extend_from_slice(keys.as_ref().map_or(&[], |r| r.row(i).data()));
            k.extend_from_slice(&end.to_be_bytes());
            k.extend_from_slice(&starts.value(i).to_be_bytes());
            let mut new = false;
            let make = || {
                new = true;
                Ok(Some(vec![]))
            };
            if let Some(rows) = self.waiting.get_mut_or(&k, 0, make)? {
                rows.push((batch.clone(), i));
            }
            if new {
                // Ranked once the watermark reaches `end - 1`.
                self.ends.register(end - 1, &k)?;
            }
        }
        if late > 0 {
            self.late.add(late);
        }
        Ok(())
    }

    /// Ranks and emits the windows that end at or before `wm + 1`.
    fn fire(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        let mut by_end: BTreeMap<i64, Vec<RowRef>> = BTreeMap::new();
        for (t, k) in self.ends.pop_due(wm)? {
            if let Some(rows) = self.waiting.get_mut(&k, 0)? {
                by_end.entry(t).or_default().append(rows);
            }
            self.waiting.remove(&k);
        }
        for rows in by_end.into_values() {
            let refs: Vec<Option<&RowRef>> = rows.iter().map(Some).collect();
            let columns = gather(&self.spec.input_schema, &refs)?;
            let batch = batch_of(&self.spec.input_schema, columns, "window rank")?;
            if batch.num_rows() > 0 {
                out.batch(self.rank(&batch)?);
            }
        }
        Ok(())
    }

    /// One window's rows, sorted by partition then ORDER BY, with their ranks.
    fn rank(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut parts: Vec<ArrayRef> = vec![batch.column(self.spec.windows.0).clone()];
        for e in &self.spec.partition_by {
            parts.push(eval(e.as_ref(), batch, "PARTITION BY")?);
        }
        let mut orders: Vec<SortColumn> = vec![];
        for s in &self.spec.order_by {
            orders.push(SortColumn {
                values: eval(s.expr.as_ref(), batch, "ORDER BY")?,
                options: Some(s.options),
            });
        }
        let mut sort: Vec<SortColumn> = parts
            .iter()
            .map(|p| SortColumn {
                values: p.clone(),
                options: None,
            })
            .collect();
        sort.extend(orders.iter().cloned());
        let order = lexsort_to_indices(&sort, None).context("window rank")?;
        let sorted = take_record_batch(batch, &order).context("window rank")?;
        let rows_of = |cols: Vec<ArrayRef>, fields: Vec<SortField>| -> Result<_> {
            let conv = RowConverter::new(fields).context("window rank")?;
            let taken = cols
                .iter()
                .map(|c| datafusion::arrow::compute::take(c, &order, None))
                .collect::<std::result::Result<Vec<_>, _>>()
                .context("window rank")?;
            conv.convert_columns(&taken).context("window rank")
        };
        let part_fields = parts
            .iter()
            .map(|p| SortField::new(p.data_type().clone()))
            .collect();
        let part_rows = rows_of(parts, part_fields)?;
        let order_fields = orders
            .iter()
            .map(|o| {
                SortField::new_with_options(
                    o.values.data_type().clone(),
                    o.options.unwrap_or_default(),
                )
            })
            .collect();
        let order_rows = rows_of(orders.into_iter().map(|o| o.values).collect(), order_fields)?;
        let n = sorted.num_rows();
        let (mut number, mut rank, mut dense) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
        for i in 0..n {
            let new_part = i == 0 || part_rows.row(i) != part_rows.row(i - 1);
            if new_part {
                (number[i], rank[i], dense[i]) = (1, 1, 1);
                continue;
            }
            number[i] = number[i - 1] + 1;
            if order_rows.row(i) == order_rows.row(i - 1) {
                (rank[i], dense[i]) = (rank[i - 1], dense[i - 1]);
            } else {
                (rank[i], dense[i]) = (number[i], dense[i - 1] + 1);
            }
        }
        let mut columns: Vec<ArrayRef> = sorted.columns().to_vec();
        for f in &self.spec.funcs {
            let v = match f {
                RankFunc::RowNumber => &number,
                RankFunc::Rank => &rank,
                RankFunc::DenseRank => &dense,
            };
            columns.push(Arc::new(UInt64Array::from(v.clone())));
        }
        batch_of(&self.spec.output_schema, columns, "window rank")
    }
}

impl Operator for WindowRank {
    fn name(&self) -> String {
        format!("WindowRank({})", self.spec.describe)
    }

    fn key_exprs(&self, _input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        (!self.spec.partition_by.is_empty()).then(|| self.spec.partition_by.clone())
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("no PARTITION BY beyond the window: one instance ranks each window")
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(WindowRank::new(
            self.spec.clone(),
            self.late.clone(),
        )?)))
    }

    fn on_batch(&mut self, batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        self.keep(batch)
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
        (self.waiting, self.ends) = Self::declare(&self.spec, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.waiting, &mut self.ends]
    }

    /// The watermark (the waiting rows are keyed state).
    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        put_meta(w, &self.watermark, "window rank")
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        if let Some(wm) = saved_meta::<EventTime>(&entries, "window rank")? {
            self.watermark = wm;
        }
        Ok(())
    }
}
