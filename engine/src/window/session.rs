//! SESSION window assignment. A session per partition key grows while rows keep
//! arriving within `gap` of each other; it closes when the watermark reaches
//! `last row + gap - 1`. Rows are buffered until their session closes, then
//! emitted with `window_start` (first row), `window_end` (last row + gap) and
//! `window_time`, in front of the watermark that closed them. As in Flink,
//! sessions that touch (`end == start`) merge.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;

use super::{has_fired, window_arrays};
use crate::error::ResultExt;
use crate::message::EventTime;
use crate::metrics::Counter;
use crate::operator::{Emitter, Operator};
use crate::operators::eval;
use crate::operators::watermark::to_millis;
use crate::state::arrow_state::{decode_batch, encode_batch, split_by_key_group};
use crate::state::{StateEntry, StateWriter, OPERATOR_STATE};
use crate::time::{format_event_time, MAX_WATERMARK, MIN_WATERMARK};
use crate::window::aggregate::read_i64;
use crate::Result;

struct Session {
    start: EventTime,
    end: EventTime,
    rows: Vec<(u32, u32)>,
}

struct Buffered {
    batch: RecordBatch,
    live: usize,
}

/// Assigns rows to session windows per partition key.
pub struct SessionAssigner {
    gap: EventTime,
    time_idx: usize,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    converter: Option<RowConverter>,
    rowtime_type: DataType,
    schema: SchemaRef,
    sessions: HashMap<Box<[u8]>, Vec<Session>>,
    batches: HashMap<u32, Buffered>,
    next_batch: u32,
    watermark: EventTime,
    min_end: EventTime,
    late: Counter,
    null_time: Counter,
    /// Changed since the last checkpoint.
    dirty: bool,
    /// Key groups holding stored rows.
    stored_groups: Vec<u16>,
}

impl SessionAssigner {
    /// `keys` are the PARTITION BY expressions (may be empty); `schema` is the
    /// input schema plus the three window columns.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gap: EventTime,
        time_idx: usize,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        key_types: Vec<DataType>,
        rowtime_type: DataType,
        schema: SchemaRef,
        late: Counter,
        null_time: Counter,
    ) -> Result<Self> {
        let converter = if keys.is_empty() {
            None
        } else {
            Some(
                RowConverter::new(key_types.into_iter().map(SortField::new).collect())
                    .context("session keys")?,
            )
        };
        Ok(Self {
            gap,
            time_idx,
            keys,
            converter,
            rowtime_type,
            schema,
            sessions: HashMap::new(),
            batches: HashMap::new(),
            next_batch: 0,
            watermark: MIN_WATERMARK,
            min_end: MAX_WATERMARK,
            late,
            null_time,
            dirty: false,
            stored_groups: vec![],
        })
    }

    /// Every buffered row, as the input columns.
    fn buffered_rows(&self) -> Result<Option<RecordBatch>> {
        let mut ids: Vec<u32> = self.batches.keys().copied().collect();
        ids.sort_unstable();
        let pos: HashMap<u32, usize> = ids.iter().enumerate().map(|(p, id)| (*id, p)).collect();
        let mut indices = vec![];
        for list in self.sessions.values() {
            for s in list {
                indices.extend(s.rows.iter().map(|&(b, r)| (pos[&b], r as usize)));
            }
        }
        if indices.is_empty() {
            return Ok(None);
        }
        let ncols = self.schema.fields().len() - 3;
        let input_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
            self.schema.fields()[..ncols].to_vec(),
        ));
        let mut columns = Vec::with_capacity(ncols);
        for c in 0..ncols {
            let arrays: Vec<&dyn Array> = ids
                .iter()
                .map(|id| self.batches[id].batch.column(c).as_ref())
                .collect();
            columns.push(interleave(&arrays, &indices).context("session state")?);
        }
        Ok(Some(
            RecordBatch::try_new(input_schema, columns).context("session state")?,
        ))
    }

    fn emit_closed(&mut self, out: &mut Emitter) -> Result<()> {
        if self.min_end == MAX_WATERMARK || !has_fired(self.min_end, self.watermark) {
            return Ok(());
        }
        let wm = self.watermark;
        let mut closed: Vec<Session> = vec![];
        let mut min_end = MAX_WATERMARK;
        self.sessions.retain(|_, list| {
            let (done, open): (Vec<Session>, Vec<Session>) =
                list.drain(..).partition(|s| has_fired(s.end, wm));
            closed.extend(done);
            for s in &open {
                min_end = min_end.min(s.end);
            }
            *list = open;
            !list.is_empty()
        });
        self.min_end = min_end;
        closed.sort_by_key(|s| (s.end, s.start));
        let mut ids: Vec<u32> = self.batches.keys().copied().collect();
        ids.sort_unstable();
        let pos: HashMap<u32, usize> = ids.iter().enumerate().map(|(p, id)| (*id, p)).collect();
        let mut indices = vec![];
        let mut starts = vec![];
        let mut ends = vec![];
        for s in &closed {
            for &(b, r) in &s.rows {
                indices.push((pos[&b], r as usize));
                starts.push(s.start);
                ends.push(s.end);
            }
        }
        if indices.is_empty() {
            return Ok(());
        }
        let ncols = self.schema.fields().len() - 3;
        let mut columns = Vec::with_capacity(ncols + 3);
        for c in 0..ncols {
            let arrays: Vec<&dyn Array> = ids
                .iter()
                .map(|id| self.batches[id].batch.column(c).as_ref())
                .collect();
            columns.push(interleave(&arrays, &indices).context("session output")?);
        }
        columns.extend(window_arrays(starts, ends, &self.rowtime_type));
        out.batch(RecordBatch::try_new(self.schema.clone(), columns).context("session output")?);
        for s in &closed {
            for &(b, _) in &s.rows {
                if let Some(buf) = self.batches.get_mut(&b) {
                    buf.live -= 1;
                }
            }
        }
        self.batches.retain(|_, b| b.live > 0);
        self.dirty = true;
        Ok(())
    }
}

impl Operator for SessionAssigner {
    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("no parallel form yet")
    }

    /// The gap decides which session each stored row is in.
    fn state_signature(&self) -> String {
        format!(
            "SessionAssign(gap={}ms, {} keys)",
            self.gap,
            self.keys.len()
        )
    }

    fn name(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        format!(
            "SessionAssign(gap={}ms, partition=[{}])",
            self.gap,
            keys.join(", ")
        )
    }

    fn on_batch(&mut self, batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        let ts = to_millis(batch.column(self.time_idx), "session time column")?;
        let ts = ts.as_primitive::<TimestampMillisecondType>();
        let rows = match &self.converter {
            Some(conv) => {
                let keys = self
                    .keys
                    .iter()
                    .map(|k| eval(k.as_ref(), &batch, "session key"))
                    .collect::<Result<Vec<_>>>()?;
                Some(conv.convert_columns(&keys).context("session keys")?)
            }
            None => None,
        };
        let id = self.next_batch;
        self.next_batch = self.next_batch.wrapping_add(1);
        let mut live = 0usize;
        let (mut late, mut nulls) = (0u64, 0u64);
        for i in 0..batch.num_rows() {
            if ts.is_null(i) {
                nulls += 1;
                continue;
            }
            let t = ts.value(i);
            let key: &[u8] = match &rows {
                Some(r) => r.row(i).data(),
                None => &[],
            };
            let list = match self.sessions.get_mut(key) {
                Some(l) => l,
                None => self.sessions.entry(Box::from(key)).or_default(),
            };
            let (start, end) = (t, t + self.gap);
            let touches = |s: &Session, start: i64, end: i64| s.start <= end && start <= s.end;
            let Some(first) = list.iter().position(|s| touches(s, start, end)) else {
                if has_fired(end, self.watermark) {
                    late += 1;
                    if list.is_empty() {
                        self.sessions.remove(key);
                    }
                    continue;
                }
                live += 1;
                self.min_end = self.min_end.min(end);
                list.push(Session {
                    start,
                    end,
                    rows: vec![(id, i as u32)],
                });
                continue;
            };
            // Grow the session the row touches (no allocation in the common case),
            // then absorb any other session the grown one now reaches.
            let mut grown = list.swap_remove(first);
            grown.start = grown.start.min(start);
            grown.end = grown.end.max(end);
            grown.rows.push((id, i as u32));
            while let Some(j) = list.iter().position(|s| touches(s, grown.start, grown.end)) {
                let other = list.swap_remove(j);
                grown.start = grown.start.min(other.start);
                grown.end = grown.end.max(other.end);
                grown.rows.extend(other.rows);
            }
            live += 1;
            self.min_end = self.min_end.min(grown.end);
            list.push(grown);
        }
        if nulls > 0 {
            self.null_time.add(nulls);
            tracing::warn!(
                rows = nulls,
                "dropped rows whose session time column is NULL"
            );
        }
        if late > 0 {
            self.late.add(late);
            tracing::warn!(rows = late, watermark = %format_event_time(self.watermark), "dropped late rows: their session has already closed");
        }
        if live > 0 {
            self.batches.insert(id, Buffered { batch, live });
            self.dirty = true;
        }
        Ok(())
    }

    /// Sessions are written whole at a checkpoint that follows a change: the
    /// buffered rows by key group (a session is rebuilt from its rows on restore).
    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        w.put(
            OPERATOR_STATE,
            b"watermark",
            self.watermark.to_be_bytes().to_vec(),
        );
        if !self.dirty {
            return Ok(());
        }
        let mut now = vec![];
        if let Some(rows) = self.buffered_rows()? {
            let keys = self
                .keys
                .iter()
                .map(|k| eval(k.as_ref(), &rows, "session key"))
                .collect::<Result<Vec<_>>>()?;
            for (g, part) in split_by_key_group(&rows, &keys, w.key_groups())? {
                w.put(g, b"rows", encode_batch(&part)?);
                now.push(g);
            }
        }
        for g in &self.stored_groups {
            if !now.contains(g) {
                w.delete(*g, b"rows");
            }
        }
        self.stored_groups = now;
        self.dirty = false;
        Ok(())
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        let mut watermark = MIN_WATERMARK;
        let mut sink = Emitter::new();
        for e in entries {
            if e.key_group == OPERATOR_STATE {
                if e.key == b"watermark" {
                    watermark = read_i64(&e.value)?;
                }
                continue;
            }
            // Replayed before the watermark is set, so no row counts as late.
            self.on_batch(decode_batch(&e.value)?, &mut sink)?;
            self.stored_groups.push(e.key_group);
        }
        self.watermark = watermark;
        self.dirty = false;
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        self.watermark = self.watermark.max(wm);
        self.emit_closed(out)?;
        out.watermark(wm);
        Ok(())
    }
}
