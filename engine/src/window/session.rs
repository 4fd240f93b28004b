//! SESSION window assignment. A session per partition key grows while rows keep
//! arriving within `gap` of each other; it closes when the watermark reaches
//! `last row + gap - 1`. Rows are buffered until their session closes, then
//! emitted with `window_start` (first row), `window_end` (last row + gap) and
//! `window_time`, in front of the watermark that closed them. As in Flink,
//! sessions that touch (`end == start`) merge.
//!
//! A key's open sessions and their rows are keyed state (a declared table),
//! with a timer at the earliest end among them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;

use super::{has_fired, window_arrays};
use crate::error::ResultExt;
use crate::join::rows::{gather, RowRef};
use crate::message::EventTime;
use crate::metrics::Counter;
use crate::operator::{Emitter, Operator};
use crate::operators::eval;
use crate::operators::watermark::to_millis;
use crate::state::keyed::rows::RowList;
use crate::state::keyed::{KeyedTable, StateCodec, StateContext, StateTable, Timers};
use crate::state::{StateEntry, StateWriter, OPERATOR_STATE};
use crate::time::{format_event_time, MAX_WATERMARK, MIN_WATERMARK};
use crate::window::aggregate::read_i64;
use crate::{EngineError, Result};

struct Session {
    start: EventTime,
    end: EventTime,
    rows: Vec<RowRef>,
}

/// A key's open sessions, and the end its timer is registered for.
struct KeySessions {
    sessions: Vec<Session>,
    armed: EventTime,
}

/// Stores a key's sessions: the armed end, each session's bounds, then its
/// rows, each with the index of its session.
struct SessionsCodec {
    list: RowList,
}

impl StateCodec<KeySessions> for SessionsCodec {
    fn encode(&mut self, k: &mut KeySessions, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&k.armed.to_le_bytes());
        out.extend_from_slice(&(k.sessions.len() as u32).to_le_bytes());
        for s in &k.sessions {
            out.extend_from_slice(&s.start.to_le_bytes());
            out.extend_from_slice(&s.end.to_le_bytes());
        }
        let index: Vec<[u8; 4]> = k
            .sessions
            .iter()
            .enumerate()
            .flat_map(|(i, s)| std::iter::repeat_n((i as u32).to_le_bytes(), s.rows.len()))
            .collect();
        let rows = k.sessions.iter().flat_map(|s| &s.rows);
        self.list
            .encode(rows.zip(&index).map(|(r, i)| (r, &i[..])), out)
    }

    fn decode(&mut self, _key: &[u8], bytes: &[u8]) -> Result<KeySessions> {
        let corrupt = || EngineError::State("stored sessions are corrupt".into());
        let (armed, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let (n, mut rest) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let mut sessions = vec![];
        for _ in 0..u32::from_le_bytes(*n) {
            let (start, r) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
            let (end, r) = r.split_first_chunk::<8>().ok_or_else(corrupt)?;
            sessions.push(Session {
                start: i64::from_le_bytes(*start),
                end: i64::from_le_bytes(*end),
                rows: vec![],
            });
            rest = r;
        }
        let (batch, index) = self.list.decode(rest)?;
        for (row, i) in index.into_iter().enumerate() {
            let i: [u8; 4] = i.try_into().map_err(|_| corrupt())?;
            let s = sessions
                .get_mut(u32::from_le_bytes(i) as usize)
                .ok_or_else(corrupt)?;
            s.rows.push((batch.clone(), row));
        }
        Ok(KeySessions {
            sessions,
            armed: i64::from_le_bytes(*armed),
        })
    }

    fn size(&self, k: &KeySessions) -> usize {
        let rows: usize = k.sessions.iter().map(|s| s.rows.len()).sum();
        rows * (16 + self.list.row_size()) + k.sessions.len() * std::mem::size_of::<Session>()
    }
}

/// Assigns rows to session windows per partition key.
pub struct SessionAssigner {
    gap: EventTime,
    time_idx: usize,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_types: Vec<DataType>,
    converter: Option<RowConverter>,
    rowtime_type: DataType,
    schema: SchemaRef,
    /// The input's columns (the schema without the window columns).
    input_schema: SchemaRef,
    sessions: KeyedTable<KeySessions, SessionsCodec>,
    ends: Timers,
    watermark: EventTime,
    late: Counter,
    null_time: Counter,
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
                RowConverter::new(key_types.iter().cloned().map(SortField::new).collect())
                    .context("session keys")?,
            )
        };
        let ncols = schema.fields().len().saturating_sub(3);
        let input_schema = Arc::new(Schema::new(schema.fields()[..ncols].to_vec()));
        let (sessions, ends) = Self::declare(&input_schema, &mut StateContext::detached())?;
        Ok(Self {
            gap,
            time_idx,
            keys,
            key_types,
            converter,
            rowtime_type,
            schema,
            input_schema,
            sessions,
            ends,
            watermark: MIN_WATERMARK,
            late,
            null_time,
        })
    }

    fn declare(
        input_schema: &SchemaRef,
        ctx: &mut StateContext,
    ) -> Result<(KeyedTable<KeySessions, SessionsCodec>, Timers)> {
        let codec = SessionsCodec {
            list: RowList::new(input_schema.clone())?,
        };
        Ok((ctx.table("sessions", codec, None)?, ctx.timers("ends")?))
    }

    /// Emits the sessions the watermark has closed, by end then start.
    fn emit_closed(&mut self, out: &mut Emitter) -> Result<()> {
        let wm = self.watermark;
        let mut closed: Vec<Session> = vec![];
        for (t, key) in self.ends.pop_due(wm)? {
            let Some(k) = self.sessions.get_mut(&key, 0)? else {
                continue;
            };
            // A key registered again since (its sessions grew) is skipped.
            if k.armed - 1 != t {
                continue;
            }
            let (done, open): (Vec<Session>, Vec<Session>) = std::mem::take(&mut k.sessions)
                .into_iter()
                .partition(|s| has_fired(s.end, wm));
            closed.extend(done);
            k.sessions = open;
            match k.sessions.iter().map(|s| s.end).min() {
                Some(next) => {
                    k.armed = next;
                    self.ends.register(next - 1, &key)?;
                }
                None => self.sessions.remove(&key),
            }
        }
        if closed.is_empty() {
            return Ok(());
        }
        closed.sort_by_key(|s| (s.end, s.start));
        let mut rows: Vec<Option<&RowRef>> = vec![];
        let (mut starts, mut ends) = (vec![], vec![]);
        for s in &closed {
            for r in &s.rows {
                rows.push(Some(r));
                starts.push(s.start);
                ends.push(s.end);
            }
        }
        let mut columns = gather(&self.input_schema, &rows)?;
        columns.extend(window_arrays(starts, ends, &self.rowtime_type));
        out.batch(RecordBatch::try_new(self.schema.clone(), columns).context("session output")?);
        Ok(())
    }

    /// Puts row `row` at time `t` of partition `key` into its session;
    /// false if the row is late (its session would already have closed).
    fn assign(&mut self, key: &[u8], t: EventTime, row: RowRef) -> Result<bool> {
        let make = || {
            Ok(Some(KeySessions {
                sessions: vec![],
                armed: MAX_WATERMARK,
            }))
        };
        let Some(k) = self.sessions.get_mut_or(key, 0, make)? else {
            return Ok(false);
        };
        let (start, end) = (t, t + self.gap);
        let touches = |s: &Session, start: i64, end: i64| s.start <= end && start <= s.end;
        let list = &mut k.sessions;
        let grown = match list.iter().position(|s| touches(s, start, end)) {
            None if has_fired(end, self.watermark) => {
                if list.is_empty() {
                    self.sessions.remove(key);
                }
                return Ok(false);
            }
            None => Session {
                start,
                end,
                rows: vec![row],
            },
            Some(first) => {
                // Grow the session the row touches, then absorb any other
                // session the grown one now reaches.
                let mut grown = list.swap_remove(first);
                grown.start = grown.start.min(start);
                grown.end = grown.end.max(end);
                grown.rows.push(row);
                while let Some(j) = list.iter().position(|s| touches(s, grown.start, grown.end)) {
                    let other = list.swap_remove(j);
                    grown.start = grown.start.min(other.start);
                    grown.end = grown.end.max(other.end);
                    grown.rows.extend(other.rows);
                }
                grown
            }
        };
        let end = grown.end;
        list.push(grown);
        let earliest = list.iter().map(|s| s.end).min().unwrap_or(end);
        if earliest < k.armed {
            k.armed = earliest;
            self.ends.register(earliest - 1, key)?;
        }
        Ok(true)
    }
}

impl Operator for SessionAssigner {
    fn key_exprs(&self, _input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        (!self.keys.is_empty()).then(|| self.keys.clone())
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("no PARTITION BY: one instance holds every session")
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(SessionAssigner::new(
            self.gap,
            self.time_idx,
            self.keys.clone(),
            self.key_types.clone(),
            self.rowtime_type.clone(),
            self.schema.clone(),
            self.late.clone(),
            self.null_time.clone(),
        )?)))
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
        let batch = Arc::new(batch);
        let (mut late, mut nulls) = (0u64, 0u64);
        for i in 0..batch.num_rows() {
            if ts.is_null(i) {
                nulls += 1;
                continue;
            }
            let key: &[u8] = match &rows {
                Some(r) => r.row(i).data(),
                None => &[],
            };
            if !self.assign(key, ts.value(i), (batch.clone(), i))? {
                late += 1;
            }
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
        Ok(())
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        (self.sessions, self.ends) = Self::declare(&self.input_schema, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.sessions, &mut self.ends]
    }

    /// The watermark (sessions are keyed state).
    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        w.put(
            OPERATOR_STATE,
            b"watermark",
            self.watermark.to_be_bytes().to_vec(),
        );
        Ok(())
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        for e in entries {
            if e.key_group == OPERATOR_STATE && e.key == b"watermark" {
                self.watermark = read_i64(&e.value)?;
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        self.watermark = self.watermark.max(wm);
        self.emit_closed(out)?;
        out.watermark(wm);
        Ok(())
    }
}
