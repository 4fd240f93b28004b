//! Window Top-N and window deduplication (Flink's): `ROW_NUMBER()`, `RANK()`
//! or `DENSE_RANK()` `OVER (PARTITION BY window_start, window_end[, keys]
//! ORDER BY ...)` over a windowed input. A window's rows wait until the
//! watermark passes its end; then they are ranked within their partition and
//! emitted with their ranks (a filter after it keeps the top N). Rows of a
//! window already ranked are late: dropped and counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{
    concat_batches, lexsort_to_indices, take_record_batch, SortColumn,
};
use datafusion::arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};

use crate::error::ResultExt;
use crate::message::EventTime;
use crate::metrics::Counter;
use crate::operator::{Emitter, Operator};
use crate::operators::watermark::to_millis;
use crate::operators::{batch_of, eval};
use crate::state::arrow_state::{decode_batch, encode_batch};
use crate::state::{entry_value, put_meta, saved_meta, StateEntry, StateWriter, OPERATOR_STATE};
use crate::time::{MAX_WATERMARK, MIN_WATERMARK};
use crate::window::{has_fired, take_fired};
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

/// Ranks the rows of each window once the watermark passes its end.
pub struct WindowRank {
    spec: WindowRankSpec,
    /// Waiting rows by window end.
    waiting: BTreeMap<i64, Vec<RecordBatch>>,
    watermark: EventTime,
    late: Counter,
}

impl WindowRank {
    /// The operator for `spec`; `late` counts rows of windows already ranked.
    pub fn new(spec: WindowRankSpec, late: Counter) -> Self {
        Self {
            spec,
            waiting: BTreeMap::new(),
            watermark: MIN_WATERMARK,
            late,
        }
    }

    /// Keeps `batch`'s rows by window end (dropping late ones unless
    /// `restoring`).
    fn keep(&mut self, batch: RecordBatch, restoring: bool) -> Result<()> {
        let ends = to_millis(batch.column(self.spec.windows.1), "window_end")?;
        let ends = ends.as_primitive::<TimestampMillisecondType>();
        let mut by_end: HashMap<i64, Vec<u32>> = HashMap::new();
        let mut late = 0;
        for i in 0..batch.num_rows() {
            if ends.is_null(i) {
                continue;
            }
            let end = ends.value(i);
            if !restoring && has_fired(end, self.watermark) {
                late += 1;
                continue;
            }
            by_end.entry(end).or_default().push(i as u32);
        }
        if late > 0 {
            self.late.add(late);
        }
        for (end, rows) in by_end {
            let rows =
                take_record_batch(&batch, &UInt32Array::from(rows)).context("window rank")?;
            self.waiting.entry(end).or_default().push(rows);
        }
        Ok(())
    }

    /// Ranks and emits the windows that end at or before `wm + 1`.
    fn fire(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        for batches in take_fired(&mut self.waiting, wm).into_values() {
            let batch = concat_batches(&self.spec.input_schema, &batches).context("window rank")?;
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

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("no parallel form yet")
    }

    fn on_batch(&mut self, batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        self.keep(batch, false)
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

    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        let all: Vec<&RecordBatch> = self.waiting.values().flatten().collect();
        let batch = concat_batches(&self.spec.input_schema, all).context("window rank state")?;
        w.put(OPERATOR_STATE, b"rows", encode_batch(&batch)?);
        put_meta(w, &self.watermark, "window rank")
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        let Some(wm) = saved_meta::<EventTime>(&entries, "window rank")? else {
            return Ok(());
        };
        self.watermark = wm;
        if let Some(b) = entry_value(&entries, b"rows") {
            self.keep(decode_batch(b)?, true)?;
        }
        Ok(())
    }

    fn state_size(&self) -> u64 {
        let bytes: usize = self
            .waiting
            .values()
            .flatten()
            .map(|b| b.get_array_memory_size())
            .sum();
        bytes as u64
    }
}
