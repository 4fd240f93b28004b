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
#[derive(Clone)]
pub struct WindowAssigner {
    kind: WindowKind,
    time_idx: usize,
    rowtime_type: DataType,
    schema: SchemaRef,
    null_time: Counter,
}

impl WindowAssigner {
    /// `time_idx` is the DESCRIPTOR column; `schema` the output (input + 3 window columns).
    pub fn new(
        kind: WindowKind,
        time_idx: usize,
        rowtime_type: DataType,
        schema: SchemaRef,
        null_time: Counter,
    ) -> Result<Self> {
        if let WindowKind::Session { .. } = kind {
            return Err(EngineError::Graph(
                "SESSION windows need the session assigner".into(),
            ));
        }
        Ok(Self {
            kind,
            time_idx,
            rowtime_type,
            schema,
            null_time,
        })
    }
}

impl Operator for WindowAssigner {
    fn runs_per_input(&self) -> bool {
        true
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(self.clone())))
    }

    fn name(&self) -> String {
        format!("WindowAssign({})", self.kind)
    }

    /// The window's kind and sizes decide which window each stored row is in.
    fn state_signature(&self) -> String {
        self.name()
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
                WindowKind::Hop {
                    slide,
                    size,
                    offset,
                } => {
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
            tracing::warn!(
                rows = nulls,
                "dropped rows whose window time column is NULL"
            );
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::TimestampMillisecondArray;
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};

    use super::*;
    use crate::message::Message;
    use crate::window::window_fields;

    const MIN: i64 = 60_000;

    /// Runs the assigner on one row at `t` and returns its (start, end) windows.
    fn windows(kind: WindowKind, t: i64) -> Vec<(i64, i64)> {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let mut fields = vec![Field::new("ts", ts.clone(), true)];
        fields.extend(window_fields(&ts));
        let schema = Arc::new(Schema::new(fields));
        let input_schema = Arc::new(Schema::new(vec![Field::new("ts", ts.clone(), true)]));
        let batch = RecordBatch::try_new(
            input_schema,
            vec![Arc::new(TimestampMillisecondArray::from(vec![t]))],
        )
        .unwrap();
        let mut op = WindowAssigner::new(kind, 0, ts, schema, Counter::default()).unwrap();
        let mut out = Emitter::new();
        op.on_batch(batch, &mut out).unwrap();
        let mut v = vec![];
        for m in out.drain() {
            if let Message::Batch(b) = m {
                let s = b.column(1).as_primitive::<TimestampMillisecondType>();
                let e = b.column(2).as_primitive::<TimestampMillisecondType>();
                let w = b.column(3).as_primitive::<TimestampMillisecondType>();
                for i in 0..b.num_rows() {
                    assert_eq!(
                        w.value(i),
                        e.value(i) - 1,
                        "window_time is window_end - 1 ms"
                    );
                    v.push((s.value(i), e.value(i)));
                }
            }
        }
        v.sort();
        v
    }

    #[test]
    fn tumble_offsets_follow_flink_reference() {
        // cep-semantics.md T-WIN-02: ts 2021-06-30 00:00:04, size 10 minutes. (The SQL
        // layer rejects |offset| >= size as Flink does; the assigner still aligns them.)
        let midnight = 1_625_011_200_000; // 2021-06-30 00:00:00 UTC
        let t = midnight + 4_000;
        let size = 10 * MIN;
        for (offset, start) in [
            (-16, -6),
            (-6, -6),
            (4, -6),
            (-4, -4),
            (6, -4),
            (16, -4),
            (0, 0),
        ] {
            let got = windows(
                WindowKind::Tumble {
                    size,
                    offset: offset * MIN,
                },
                t,
            );
            assert_eq!(
                got,
                vec![(midnight + start * MIN, midnight + start * MIN + size)],
                "offset {offset} min"
            );
        }
    }

    #[test]
    fn tumble_before_1970_rounds_down() {
        assert_eq!(
            windows(
                WindowKind::Tumble {
                    size: 10,
                    offset: 0
                },
                -3
            ),
            vec![(-10, 0)]
        );
    }

    #[test]
    fn hop_row_belongs_to_size_over_slide_windows() {
        // T-WIN-01: row 08:05 with slide 5 min, size 10 min -> [08:00, 08:10) and [08:05, 08:15).
        let t = 8 * 60 * MIN + 5 * MIN;
        let got = windows(
            WindowKind::Hop {
                slide: 5 * MIN,
                size: 10 * MIN,
                offset: 0,
            },
            t,
        );
        assert_eq!(got, vec![(t - 5 * MIN, t + 5 * MIN), (t, t + 10 * MIN)]);
    }

    #[test]
    fn cumulate_row_belongs_to_every_later_step() {
        // T-WIN-01: row 08:11 with step 2 min, size 10 min -> ends 08:12, 14, 16, 18, 20.
        let start = 8 * 60 * MIN + 10 * MIN;
        let got = windows(
            WindowKind::Cumulate {
                step: 2 * MIN,
                size: 10 * MIN,
                offset: 0,
            },
            start + MIN,
        );
        let ends: Vec<i64> = got
            .iter()
            .map(|(s, e)| {
                assert_eq!(*s, start);
                (e - start) / MIN
            })
            .collect();
        assert_eq!(ends, vec![2, 4, 6, 8, 10]);
    }
}
