//! OVER aggregations as Flink runs them on a stream: `agg(x) OVER (PARTITION
//! BY k ORDER BY rowtime ROWS|RANGE BETWEEN ... PRECEDING AND CURRENT ROW)`.
//! Each row waits until the watermark passes its time; then the rows of a
//! partition are taken in time order (rows of one time in arrival order) and
//! each is emitted with the aggregates over its frame: the row and the `n`
//! rows before it (ROWS), or every row of the last `interval` up to its time,
//! its peers of the same time included (RANGE), or everything before
//! (UNBOUNDED PRECEDING). Rows at or before the watermark when they arrive
//! are late: dropped and counted. The result is insert-only.
//!
//! Keyed state per partition: the accumulators (a [`Group`], retractable
//! ones so that rows leave a bounded frame by retraction), the rows inside a
//! bounded frame, and the rows waiting for the watermark (by partition and
//! time, with an event-time timer at their time).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimestampMillisecondType};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;

use crate::changelog::group_accs::{Accs, Flat};
use crate::changelog::group_state::{group_layout, Group, GroupCodec};
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
use crate::window::aggregate::{aggregates_signature, AggregateSpec};
use crate::{EngineError, Result};

/// Which rows before the current one an OVER window takes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverFrame {
    /// `ROWS BETWEEN n PRECEDING AND CURRENT ROW` (`None`: UNBOUNDED).
    Rows(Option<u64>),
    /// `RANGE BETWEEN INTERVAL 'ms' PRECEDING AND CURRENT ROW` (`None`:
    /// UNBOUNDED): rows whose time is at least the current one's minus `ms`.
    Range(Option<i64>),
}

/// What an OVER aggregation computes, as planned.
#[derive(Debug, Clone)]
pub struct OverSpec {
    /// PARTITION BY.
    pub partition_by: Vec<Arc<dyn PhysicalExpr>>,
    /// The input's time attribute, the ORDER BY column.
    pub time: usize,
    /// The frame.
    pub frame: OverFrame,
    /// The aggregate calls, one output column each (after the input's).
    pub aggregates: Vec<AggregateSpec>,
    /// The input's columns.
    pub input_schema: SchemaRef,
    /// The input's columns, then one per aggregate.
    pub output_schema: SchemaRef,
    /// The plan as text.
    pub describe: String,
}

/// Bytes a waiting key adds after the partition key: the rows' time (left
/// out of its key group, so that a partition's times share one).
const TIME_BYTES: usize = 8;

/// Rows emitted with their aggregates, gathered over one watermark.
#[derive(Default)]
struct Output {
    rows: Vec<RowRef>,
    /// One column of values per aggregate.
    values: Vec<Vec<ScalarValue>>,
}

/// The OVER aggregation operator (see the module documentation).
pub struct OverAggregate {
    spec: OverSpec,
    keys: RowConverter,
    waiting: KeyedTable<Vec<RowRef>, RowList>,
    times: Timers,
    accs: KeyedTable<Group, GroupCodec>,
    /// The inline states of new partitions' accumulators, when they have them.
    layout: Option<Vec<Flat>>,
    /// The rows inside each partition's bounded frame, oldest first.
    frames: KeyedTable<Vec<RowRef>, RowList>,
    watermark: EventTime,
    late: Counter,
}

type Tables = (
    KeyedTable<Vec<RowRef>, RowList>,
    Timers,
    KeyedTable<Group, GroupCodec>,
    KeyedTable<Vec<RowRef>, RowList>,
);

impl OverAggregate {
    /// The operator for `spec`; `late` counts rows dropped as late.
    pub fn new(spec: OverSpec, late: Counter) -> Result<Self> {
        if let Some(a) = spec.aggregates.iter().find(|a| a.filter.is_some()) {
            return Err(EngineError::Graph(format!(
                "FILTER in the OVER aggregate {}",
                a.expr.fun().name()
            )));
        }
        let fields = Self::key_types(&spec)?
            .into_iter()
            .map(SortField::new)
            .collect();
        let keys = RowConverter::new(fields).context("OVER keys")?;
        let (waiting, times, accs, frames) = Self::declare(&spec, &mut StateContext::detached())?;
        let layout = group_layout(&spec.aggregates, true)?;
        Ok(Self {
            spec,
            keys,
            waiting,
            times,
            accs,
            layout,
            frames,
            watermark: MIN_WATERMARK,
            late,
        })
    }

    fn key_types(spec: &OverSpec) -> Result<Vec<DataType>> {
        spec.partition_by
            .iter()
            .map(|e| e.data_type(&spec.input_schema))
            .collect::<datafusion::error::Result<Vec<_>>>()
            .context("OVER keys")
    }

    fn declare(spec: &OverSpec, ctx: &mut StateContext) -> Result<Tables> {
        let waiting = ctx
            .table("rows", RowList::new(spec.input_schema.clone())?, None)?
            .grouped_without_suffix(TIME_BYTES);
        let times = ctx.timers("times")?.grouped_without_suffix(TIME_BYTES);
        let accs = ctx.table(
            "accumulators",
            GroupCodec::new(&spec.aggregates, true)?,
            None,
        )?;
        let frames = ctx.table("frame", RowList::new(spec.input_schema.clone())?, None)?;
        Ok((waiting, times, accs, frames))
    }

    /// Keeps `batch`'s rows until the watermark passes their time.
    fn keep(&mut self, batch: RecordBatch) -> Result<()> {
        let times = to_millis(batch.column(self.spec.time), "the OVER time attribute")?;
        let times = times.as_primitive::<TimestampMillisecondType>();
        let cols = self
            .spec
            .partition_by
            .iter()
            .map(|e| eval(e.as_ref(), &batch, "PARTITION BY"))
            .collect::<Result<Vec<_>>>()?;
        let keys = if cols.is_empty() {
            None
        } else {
            Some(self.keys.convert_columns(&cols).context("OVER keys")?)
        };
        let batch = Arc::new(batch);
        let mut late = 0;
        let mut k = Vec::new();
        for i in 0..batch.num_rows() {
            if times.is_null(i) || times.value(i) <= self.watermark {
                late += 1;
                continue;
            }
            let t = times.value(i);
            k.clear();
            k.extend_from_slice(keys.as_ref().map_or(&[], |r| r.row(i).data()));
            k.extend_from_slice(&t.to_be_bytes());
            let mut new = false;
            let make = || {
                new = true;
                Ok(Some(vec![]))
            };
            if let Some(rows) = self.waiting.get_mut_or(&k, 0, make)? {
                rows.push((batch.clone(), i));
            }
            if new {
                self.times.register(t, &k)?;
            }
        }
        if late > 0 {
            self.late.add(late);
        }
        Ok(())
    }

    /// Emits every row whose time is at or before `wm`.
    fn fire(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        let mut due = self.times.pop_due(wm)?;
        // A partition's times in order (stored and pending timers interleave).
        due.sort();
        let mut output = Output {
            rows: vec![],
            values: vec![vec![]; self.spec.aggregates.len()],
        };
        for (t, k) in due {
            let Some(rows) = self.waiting.take(&k, 0)? else {
                continue;
            };
            self.waiting.remove(&k);
            let part = &k[..k.len().saturating_sub(TIME_BYTES)];
            self.advance(part, t, rows, &mut output)?;
        }
        if output.rows.is_empty() {
            return Ok(());
        }
        let refs: Vec<Option<&RowRef>> = output.rows.iter().map(Some).collect();
        let mut columns = gather(&self.spec.input_schema, &refs)?;
        for values in output.values {
            columns.push(ScalarValue::iter_to_array(values).context("OVER aggregate")?);
        }
        out.batch(batch_of(
            &self.spec.output_schema,
            columns,
            "OVER aggregate",
        )?);
        Ok(())
    }

    /// The aggregates' arguments over `rows`.
    fn args(&self, rows: &[RowRef]) -> Result<Vec<Vec<ArrayRef>>> {
        let refs: Vec<Option<&RowRef>> = rows.iter().map(Some).collect();
        let columns = gather(&self.spec.input_schema, &refs)?;
        let batch = batch_of(&self.spec.input_schema, columns, "OVER aggregate")?;
        self.spec
            .aggregates
            .iter()
            .map(|a| {
                a.expr
                    .expressions()
                    .iter()
                    .map(|e| eval(e.as_ref(), &batch, "OVER aggregate argument"))
                    .collect()
            })
            .collect()
    }

    /// The rows of partition `part` at time `t`: into the frame, out with
    /// their aggregates.
    fn advance(&mut self, part: &[u8], t: i64, rows: Vec<RowRef>, out: &mut Output) -> Result<()> {
        let args = self.args(&rows)?;
        let mut group = match self.accs.take(part, 0)? {
            Some(g) => g,
            // The table key is the partition key: the group needs no copy of
            // its values (nothing reads them, and they are not stored).
            None => Group::new(self.layout.as_deref(), &self.spec.aggregates, true)?,
        };
        let bounded = matches!(
            self.spec.frame,
            OverFrame::Rows(Some(_)) | OverFrame::Range(Some(_))
        );
        let mut frame = if bounded {
            self.frames.take(part, 0)?.unwrap_or_default()
        } else {
            vec![]
        };
        match self.spec.frame {
            OverFrame::Range(range) => {
                if let Some(ms) = range {
                    // Rows older than the range leave before the new ones come.
                    let times = self.times_of(&frame)?;
                    let gone = times.iter().take_while(|ft| **ft < t - ms).count();
                    let leaving: Vec<RowRef> = frame.drain(..gone).collect();
                    self.retract(&mut group.accs, &leaving)?;
                }
                update(&mut group.accs, &args, None)?;
                let values = evaluate(&mut group.accs)?;
                for r in &rows {
                    out.rows.push(r.clone());
                    for (col, v) in out.values.iter_mut().zip(&values) {
                        col.push(v.clone());
                    }
                }
                if bounded {
                    frame.extend(rows);
                }
            }
            OverFrame::Rows(n) => {
                for (j, r) in rows.into_iter().enumerate() {
                    update(&mut group.accs, &args, Some(j))?;
                    if let Some(n) = n {
                        frame.push(r.clone());
                        if frame.len() as u64 > n + 1 {
                            let oldest = frame.remove(0);
                            self.retract(&mut group.accs, std::slice::from_ref(&oldest))?;
                        }
                    }
                    let values = evaluate(&mut group.accs)?;
                    out.rows.push(r);
                    for (col, v) in out.values.iter_mut().zip(values) {
                        col.push(v);
                    }
                }
            }
        }
        self.accs.insert(part, group, 0)?;
        if bounded {
            self.frames.insert(part, frame, 0)?;
        }
        Ok(())
    }

    fn times_of(&self, rows: &[RowRef]) -> Result<Vec<i64>> {
        rows.iter()
            .map(|(batch, i)| {
                let c = to_millis(batch.column(self.spec.time), "the OVER time attribute")?;
                Ok(c.as_primitive::<TimestampMillisecondType>().value(*i))
            })
            .collect()
    }

    /// Takes `rows` out of the accumulators.
    fn retract(&self, accs: &mut Accs, rows: &[RowRef]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let args = self.args(rows)?;
        for (k, a) in args.iter().enumerate() {
            accs.update_batch(k, a, true)?;
        }
        Ok(())
    }
}

/// Adds row `j` of `args` (every row with `None`) to the accumulators.
fn update(accs: &mut Accs, args: &[Vec<ArrayRef>], j: Option<usize>) -> Result<()> {
    for (k, a) in args.iter().enumerate() {
        match j {
            Some(j) => accs.update_row(k, a, j, false),
            None => accs.update_batch(k, a, false),
        }?;
    }
    Ok(())
}

fn evaluate(accs: &mut Accs) -> Result<Vec<ScalarValue>> {
    accs.evaluate()
}

impl Operator for OverAggregate {
    fn name(&self) -> String {
        format!("OverAggregate({})", self.spec.describe)
    }

    fn state_signature(&self) -> String {
        format!(
            "OverAggregate({:?}, {})",
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
        Ok(Some(Box::new(OverAggregate::new(
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
        (self.waiting, self.times, self.accs, self.frames) = Self::declare(&self.spec, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![
            &mut self.waiting,
            &mut self.times,
            &mut self.accs,
            &mut self.frames,
        ]
    }

    /// The watermark (rows, accumulators and frames are keyed state).
    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        put_meta(w, &self.watermark, "OVER aggregate")
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        if let Some(wm) = saved_meta::<EventTime>(&entries, "OVER aggregate")? {
            self.watermark = wm;
        }
        Ok(())
    }
}
