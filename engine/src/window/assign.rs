//! Window assignment for TUMBLE, HOP and CUMULATE: appends `window_start`,
//! `window_end` and `window_time`, repeating a row once per window it belongs to.

use datafusion::arrow::array::{Array, AsArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;

use super::{window_arrays, WindowKind};
use crate::error::ResultExt;
use crate::metrics::Counter;
use crate::operator::{Emitter, Operator};
use crate::operators::watermark::to_millis;
use crate::time::floor_mod;
use crate::{EngineError, Result};

/// Assigns rows to TUMBLE, HOP or CUMULATE windows.
pub struct WindowAssigner {
    kind: WindowKind,
    time_idx: usize,
    rowtime_type: DataType,
    schema: SchemaRef,
    null_time: Counter,
}

impl WindowAssigner {
    /// `time_idx` is the DESCRIPTOR column; `schema` the output (input + 3 window columns).
    pub fn new(kind: WindowKind, time_idx: usize, rowtime_type: DataType, schema: SchemaRef, null_time: Counter) -> Result<Self> {
        if let WindowKind::Session { .. } = kind {
            return Err(EngineError::Graph("SESSION windows need the session assigner".into()));
        }
        Ok(Self { kind, time_idx, rowtime_type, schema, null_time })
    }
}

impl Operator for WindowAssigner {
    fn name(&self) -> String {
        format!("WindowAssign({})", self.kind)
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let ts = to_millis(batch.column(self.time_idx), "window time column")?;
        let ts = ts.as_primitive::<TimestampMillisecondType>();
        let n = batch.num_rows();
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        let mut starts: Vec<i64> = Vec::with_capacity(n);
        let mut ends: Vec<i64> = Vec::with_capacity(n);
        let mut nulls = 0u64;
        for i in 0..n {
            if ts.is_null(i) {
                nulls += 1;
                continue;
            }
            let t = ts.value(i);
            match self.kind {
                WindowKind::Tumble { size, offset } => {
                    let s = t - floor_mod(t - offset, size);
                    rows.push(i as u32);
                    starts.push(s);
                    ends.push(s + size);
                }
                WindowKind::Hop { slide, size, offset } => {
                    let mut s = t - floor_mod(t - offset, slide);
                    while s > t - size {
                        rows.push(i as u32);
                        starts.push(s);
                        ends.push(s + size);
                        s -= slide;
                    }
                }
                WindowKind::Cumulate { step, size, offset } => {
                    let s = t - floor_mod(t - offset, size);
                    let mut e = s + step * ((t - s) / step + 1);
                    while e <= s + size {
                        rows.push(i as u32);
                        starts.push(s);
                        ends.push(e);
                        e += step;
                    }
                }
                WindowKind::Session { .. } => unreachable!("rejected in new()"),
            }
        }
        if nulls > 0 {
            self.null_time.add(nulls);
            tracing::warn!(rows = nulls, "dropped rows whose window time column is NULL");
        }
        // Every row lies in at least one window (size >= slide is checked at planning),
        // so n entries without NULLs means each row once, in order.
        let identity = nulls == 0 && rows.len() == n;
        let mut columns = if identity {
            batch.columns().to_vec()
        } else {
            let idx = UInt32Array::from(rows);
            batch
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &idx, None))
                .collect::<std::result::Result<Vec<_>, _>>()
                .context("window assignment")?
        };
        columns.extend(window_arrays(starts, ends, &self.rowtime_type));
        out.batch(RecordBatch::try_new(self.schema.clone(), columns).context("window assignment")?);
        Ok(())
    }
}
