//! The event-time temporal join (Flink's `JOIN versioned FOR SYSTEM_TIME AS
//! OF probe.rowtime`): each row of the probe side (input 0) joins the
//! version of the versioned side's row (input 1) with its key that was
//! current at the probe row's time: the latest version at or before it,
//! unless that version is a deletion.
//!
//! Probe rows wait, by key, until the watermark (the lower of both inputs')
//! passes their time, so that every version up to it has arrived; then they
//! are joined and emitted, an unmatched one null-padded under LEFT JOIN. A
//! key keeps its versions after the watermark and the latest one at or
//! before it: older ones can no longer be the version of any row. The
//! output is append-only. As in Flink, an update's old image (`-U`) is not
//! a version; `+I` and `+U` are, `-D` ends the key's row.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimestampMillisecondType};
use datafusion::physical_expr::PhysicalExpr;

use super::interval::{Entry, KeyRows, KeyRowsCodec};
use super::keys::JoinKeys;
use super::rows::{gather, without_input, RowRef};
use crate::changelog::{kind_at, kinds, RowKind};
use crate::error::ResultExt;
use crate::message::EventTime;
use crate::operator::{Emitter, Operator};
use crate::operators::watermark::to_millis;
use crate::operators::{batch_of, eval};
use crate::state::keyed::rows::RowList;
use crate::state::keyed::{KeyedTable, StateContext, StateTable, Timers};
use crate::state::{put_meta, saved_meta, StateEntry, StateWriter};
use crate::time::{MAX_WATERMARK, MIN_WATERMARK};
use crate::{EngineError, Result};

/// What a temporal join computes, as planned.
#[derive(Debug, Clone)]
pub struct TemporalJoinSpec {
    /// LEFT (unmatched probe rows padded with NULLs) or INNER.
    pub left_outer: bool,
    /// The probe side's columns, and the versioned side's data columns
    /// (without its row kind).
    pub schemas: [SchemaRef; 2],
    /// The equality keys over each side's columns (pairwise equal).
    pub keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    /// The keys' common types.
    pub key_types: Vec<DataType>,
    /// Each side's time attribute, by column index.
    pub times: [usize; 2],
    /// The rest of the join condition, over the output columns.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Probe columns, then versioned columns.
    pub output_schema: SchemaRef,
    /// The plan as text (for `explain`).
    pub describe: String,
}

/// Per key: the probe rows waiting for the watermark, or the versions.
struct Side {
    by_key: KeyedTable<KeyRows, KeyRowsCodec>,
    timers: Timers,
}

impl Side {
    fn declare(
        ctx: &mut StateContext,
        names: [&'static str; 2],
        schema: &SchemaRef,
    ) -> Result<Self> {
        let codec = KeyRowsCodec {
            list: RowList::new(schema.clone())?,
        };
        Ok(Self {
            by_key: ctx.table(names[0], codec, None)?,
            timers: ctx.timers(names[1])?,
        })
    }

    /// The key's list, made empty if new.
    fn list<'a>(
        by_key: &'a mut KeyedTable<KeyRows, KeyRowsCodec>,
        key: &[u8],
    ) -> Result<Option<&'a mut KeyRows>> {
        by_key.get_mut_or(key, 0, || {
            Ok(Some(KeyRows {
                rows: vec![],
                armed: i64::MAX,
            }))
        })
    }

    /// Arms the key's timer at `t` if that is earlier than the one armed.
    fn arm(timers: &mut Timers, k: &mut KeyRows, key: &[u8], t: i64) -> Result<()> {
        if t < k.armed {
            k.armed = t;
            timers.register(t, key)?;
        }
        Ok(())
    }
}

const TABLES: [[&str; 2]; 2] = [
    ["probe rows", "probe timers"],
    ["versions", "version timers"],
];

/// Runs an event-time temporal join.
pub struct TemporalJoin {
    spec: TemporalJoinSpec,
    keys: JoinKeys,
    probe: Side,
    versions: Side,
    watermark: EventTime,
}

impl TemporalJoin {
    /// The operator for `spec`.
    pub fn new(spec: TemporalJoinSpec) -> Result<Self> {
        let keys = JoinKeys::for_sides(&spec.keys, spec.key_types.clone(), false)?;
        let (probe, versions) = Self::declare(&spec, &mut StateContext::detached())?;
        Ok(Self {
            spec,
            keys,
            probe,
            versions,
            watermark: MIN_WATERMARK,
        })
    }

    fn declare(spec: &TemporalJoinSpec, ctx: &mut StateContext) -> Result<(Side, Side)> {
        Ok((
            Side::declare(ctx, TABLES[0], &spec.schemas[0])?,
            Side::declare(ctx, TABLES[1], &spec.schemas[1])?,
        ))
    }

    fn times(&self, side: usize, batch: &RecordBatch) -> Result<Vec<Option<i64>>> {
        let t = to_millis(batch.column(self.spec.times[side]), "temporal join time")?;
        Ok(t.as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect())
    }

    /// Probe rows wait for the watermark to pass their time.
    fn probe_rows(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let batch = batch_of(
            &self.spec.schemas[0],
            batch.columns().to_vec(),
            "temporal join",
        )?;
        let times = self.times(0, &batch)?;
        let keys = self.keys.of(&self.spec.keys[0], &batch)?;
        let batch = Arc::new(batch);
        let mut unmatched = vec![];
        for (i, (t, k)) in times.into_iter().zip(keys).enumerate() {
            let (Some(time), Some(key)) = (t, k) else {
                // Without a time or a key a row has no version.
                unmatched.push((batch.clone(), i));
                continue;
            };
            if let Some(list) = Side::list(&mut self.probe.by_key, &key)? {
                list.rows.push(Entry {
                    row: (batch.clone(), i),
                    time,
                    matched: false,
                });
                Side::arm(&mut self.probe.timers, list, &key, time)?;
            }
        }
        if self.spec.left_outer && !unmatched.is_empty() {
            out.batch(self.output(&unmatched, &vec![None; unmatched.len()])?);
        }
        Ok(())
    }

    /// Versions are kept by key in time order; one of the same time as a
    /// kept one replaces it.
    fn version_rows(&mut self, batch: RecordBatch) -> Result<()> {
        let kind = kinds(&batch).cloned();
        let width = self.spec.schemas[1].fields().len();
        let data = batch_of(
            &self.spec.schemas[1],
            batch.columns()[..width].to_vec(),
            "temporal join",
        )?;
        let times = self.times(1, &data)?;
        let keys = self.keys.of(&self.spec.keys[1], &data)?;
        let data = Arc::new(data);
        for (i, (t, k)) in times.into_iter().zip(keys).enumerate() {
            let row_kind = kind_at(kind.as_ref(), i);
            let (Some(time), Some(key), false) = (t, k, row_kind == RowKind::UpdateBefore) else {
                continue;
            };
            let Some(list) = Side::list(&mut self.versions.by_key, &key)? else {
                continue;
            };
            let entry = Entry {
                row: (data.clone(), i),
                time,
                matched: row_kind == RowKind::Delete,
            };
            match list.rows.binary_search_by_key(&time, |e| e.time) {
                Ok(at) => list.rows[at] = entry,
                Err(at) => list.rows.insert(at, entry),
            }
            Side::arm(&mut self.versions.timers, list, &key, time)?;
        }
        Ok(())
    }

    /// Probe columns, then versioned columns (`None`: NULLs).
    fn output(&self, probe: &[RowRef], version: &[Option<RowRef>]) -> Result<RecordBatch> {
        let probe: Vec<Option<&RowRef>> = probe.iter().map(Some).collect();
        let version: Vec<Option<&RowRef>> = version.iter().map(Option::as_ref).collect();
        let mut columns = gather(&self.spec.schemas[0], &probe)?;
        columns.extend(gather(&self.spec.schemas[1], &version)?);
        batch_of(&self.spec.output_schema, columns, "temporal join output")
    }

    /// Joins the probe rows the watermark `wm` passed with their versions.
    fn fire(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        let mut probe: Vec<RowRef> = vec![];
        let mut version: Vec<Option<RowRef>> = vec![];
        for (armed, key) in self.probe.timers.pop_due(wm)? {
            let Some(list) = self.probe.by_key.get_mut(&key, 0)? else {
                continue;
            };
            if list.armed != armed {
                continue;
            }
            let mut due: Vec<Entry> = list.rows.extract_if(.., |e| e.time <= wm).collect();
            match list.rows.iter().map(|e| e.time).min() {
                Some(next) => {
                    list.armed = next;
                    self.probe.timers.register(next, &key)?;
                }
                None => self.probe.by_key.remove(&key),
            }
            due.sort_by_key(|e| e.time);
            let versions = self.versions.by_key.get(&key, 0)?;
            for e in due {
                let current = versions.and_then(|v| {
                    let at = v.rows.partition_point(|x| x.time <= e.time);
                    at.checked_sub(1).map(|j| &v.rows[j])
                });
                probe.push(e.row);
                version.push(current.filter(|v| !v.matched).map(|v| v.row.clone()));
            }
        }
        if !probe.is_empty() {
            self.emit(&probe, version, out)?;
        }
        Ok(())
    }

    /// Emits the pairs whose condition holds, and (LEFT) the others padded.
    fn emit(
        &self,
        probe: &[RowRef],
        version: Vec<Option<RowRef>>,
        out: &mut Emitter,
    ) -> Result<()> {
        let joined = self.output(probe, &version)?;
        let pass: Vec<bool> = match &self.spec.filter {
            None => version.iter().map(Option::is_some).collect(),
            Some(f) => {
                let v = eval(f.as_ref(), &joined, "temporal join condition")?;
                let b = v.as_boolean_opt().ok_or_else(|| {
                    EngineError::Graph("the join condition is not boolean".into())
                })?;
                version
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v.is_some() && b.is_valid(i) && b.value(i))
                    .collect()
            }
        };
        if !self.spec.left_outer || pass.iter().all(|p| *p) {
            let mask = pass.into();
            out.batch(filter_record_batch(&joined, &mask).context("temporal join")?);
            return Ok(());
        }
        // LEFT: a row without a version, or whose version fails the
        // condition, goes out with NULLs for the versioned side.
        let version: Vec<Option<RowRef>> = version
            .into_iter()
            .zip(&pass)
            .map(|(v, p)| v.filter(|_| *p))
            .collect();
        out.batch(self.output(probe, &version)?);
        Ok(())
    }

    /// Drops the versions no probe row can use any more: per key, those
    /// before the latest one at or before `wm` (and that one if a deletion).
    fn clean_up(&mut self, wm: EventTime) -> Result<()> {
        for (armed, key) in self.versions.timers.pop_due(wm)? {
            let Some(list) = self.versions.by_key.get_mut(&key, 0)? else {
                continue;
            };
            if list.armed != armed {
                continue;
            }
            let current = list.rows.partition_point(|e| e.time <= wm);
            let mut keep_from = current.saturating_sub(1);
            if list
                .rows
                .get(keep_from)
                .is_some_and(|e| e.matched && e.time <= wm)
            {
                keep_from += 1;
            }
            list.rows.drain(..keep_from);
            list.armed = i64::MAX;
            match list.rows.iter().map(|e| e.time).find(|t| *t > wm) {
                Some(next) => {
                    list.armed = next;
                    self.versions.timers.register(next, &key)?;
                }
                None if list.rows.is_empty() => self.versions.by_key.remove(&key),
                None => {}
            }
        }
        Ok(())
    }
}

/// The checkpointed watermark.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    watermark: EventTime,
}

impl Operator for TemporalJoin {
    fn name(&self) -> String {
        format!("TemporalJoin({})", self.spec.describe)
    }

    fn key_exprs(&self, input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        self.keys.exchange(input)
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some(super::UNKEYED_JOIN)
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(TemporalJoin::new(self.spec.clone())?)))
    }

    fn on_batch(&mut self, _batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        Err(without_input())
    }

    fn on_input(&mut self, input: usize, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        match input {
            0 => self.probe_rows(batch, out),
            1 => self.version_rows(batch),
            other => Err(EngineError::Graph(format!(
                "a temporal join has two inputs, not input {other}"
            ))),
        }
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        if wm > self.watermark {
            self.watermark = wm;
            self.fire(wm, out)?;
            self.clean_up(wm)?;
        }
        out.watermark(wm);
        Ok(())
    }

    fn on_end(&mut self, out: &mut Emitter) -> Result<()> {
        // Every version has arrived.
        self.fire(MAX_WATERMARK, out)
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        (self.probe, self.versions) = Self::declare(&self.spec, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![
            &mut self.probe.by_key,
            &mut self.probe.timers,
            &mut self.versions.by_key,
            &mut self.versions.timers,
        ]
    }

    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        put_meta(
            w,
            &Saved {
                watermark: self.watermark,
            },
            "temporal join",
        )
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        if let Some(saved) = saved_meta::<Saved>(&entries, "temporal join")? {
            self.watermark = saved.watermark;
        }
        Ok(())
    }
}
