//! The watermark assigner: computes `WATERMARK FOR rowtime AS expr` per row and
//! emits watermarks.
//!
//! Vigil advances the watermark after every row, as Flink does with
//! `pipeline.auto-watermark-interval = 0`, so which rows are late is decided by
//! the input alone, never by timing. It stays vectorised: a batch is only split
//! before a row that could be late (its event time is at or behind the
//! watermark reached by the rows before it), and the watermark is emitted there.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use super::eval;
use crate::error::ResultExt;
use crate::message::EventTime;
use crate::operator::{Emitter, Operator};
use crate::time::{format_event_time, MAX_WATERMARK, MIN_WATERMARK};
use crate::Result;

/// Emits watermarks for one source, from an expression over its rows.
pub struct WatermarkAssigner {
    table: String,
    rowtime_idx: usize,
    watermark_expr: Arc<dyn PhysicalExpr>,
    current: EventTime,
    emitted: EventTime,
}

impl WatermarkAssigner {
    /// `rowtime_idx` is the column of the time attribute; `watermark_expr`
    /// computes the watermark a row allows (e.g. `ts - INTERVAL '5' SECOND`).
    pub fn new(table: String, rowtime_idx: usize, watermark_expr: Arc<dyn PhysicalExpr>) -> Self {
        Self {
            table,
            rowtime_idx,
            watermark_expr,
            current: MIN_WATERMARK,
            emitted: MIN_WATERMARK,
        }
    }
}

/// Casts a timestamp array of any unit to milliseconds (values as i64).
pub fn to_millis(array: &ArrayRef, context: &str) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, None) => Ok(array.clone()),
        _ => cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None)).context(context),
    }
}

impl Operator for WatermarkAssigner {
    fn name(&self) -> String {
        format!("WatermarkAssigner({}: {})", self.table, self.watermark_expr)
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let wm = eval(self.watermark_expr.as_ref(), &batch, "watermark expression")?;
        let wm = to_millis(&wm, "watermark expression")?;
        let wm = wm.as_primitive::<TimestampMillisecondType>();
        let rowtime = to_millis(batch.column(self.rowtime_idx), "rowtime column")?;
        let rowtime = rowtime.as_primitive::<TimestampMillisecondType>();
        let mut start = 0;
        for i in 0..batch.num_rows() {
            let before = self.current;
            if before > self.emitted && rowtime.is_valid(i) && rowtime.value(i) <= before {
                out.batch(batch.slice(start, i - start));
                out.watermark(before);
                self.emitted = before;
                start = i;
            }
            if wm.is_valid(i) {
                self.current = self.current.max(wm.value(i));
            }
        }
        out.batch(batch.slice(start, batch.num_rows() - start));
        if self.current > self.emitted {
            out.watermark(self.current);
            self.emitted = self.current;
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        // A source that emits watermarks of its own: keep the larger.
        if wm > self.emitted {
            self.current = self.current.max(wm);
            self.emitted = self.current;
            out.watermark(self.current);
        }
        Ok(())
    }

    fn on_end(&mut self, out: &mut Emitter) -> Result<()> {
        tracing::debug!(table = %self.table, last = %format_event_time(self.current), "source ended; final watermark");
        out.watermark(MAX_WATERMARK);
        Ok(())
    }
}
