//! The state of a window aggregation's open windows: DataFusion group values
//! and accumulators per window, taken out as one batch for checkpoints and
//! spills, merged back, and evaluated when the window fires (key group by key
//! group when part of it was spilled).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use super::aggregate::{AggregateSpec, WindowAggregate};
use crate::error::ResultExt;
use crate::message::EventTime;
use crate::operator::Emitter;
use crate::operators::batch_of;
use crate::state::arrow_state::split_by_key_group;
use crate::state::keyed::RawBatch;
use crate::{EngineError, Result};

/// One open window's groups and accumulators.
pub(super) struct WindowState {
    pub(super) groups: Box<dyn GroupValues>,
    pub(super) accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Changed since the last checkpoint.
    pub(super) dirty: bool,
    /// Key groups this window has state in, in the store.
    pub(super) stored_groups: Vec<u16>,
}

impl WindowAggregate {
    pub(super) fn new_window(&self) -> Result<WindowState> {
        let groups = new_group_values(self.group_schema.clone(), &GroupOrdering::None)
            .context("window aggregate")?;
        let accumulators = self
            .aggregates
            .iter()
            .map(|a| {
                if a.expr.groups_accumulator_supported() {
                    a.expr.create_groups_accumulator()
                } else {
                    let expr = a.expr.clone();
                    Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                        expr.create_accumulator()
                    })) as Box<dyn GroupsAccumulator>)
                }
            })
            .collect::<datafusion::error::Result<Vec<_>>>()
            .context("window aggregate")?;
        Ok(WindowState {
            groups,
            accumulators,
            dirty: false,
            stored_groups: vec![],
        })
    }

    /// Takes a window's state out as one batch (group columns, then each
    /// accumulator's state columns), leaving the window empty in memory.
    pub(super) fn take_state(&mut self, end: EventTime) -> Result<(RecordBatch, Vec<u16>)> {
        let fresh = self.new_window()?;
        let Some(state) = self.windows.get_mut(&end) else {
            return Err(EngineError::Graph("window state vanished".into()));
        };
        let old = std::mem::replace(state, fresh);
        let WindowState {
            mut groups,
            mut accumulators,
            stored_groups,
            ..
        } = old;
        let mut columns = groups.emit(EmitTo::All).context("window state")?;
        for acc in accumulators.iter_mut() {
            columns.extend(acc.state(EmitTo::All).context("window state")?);
        }
        // Named by the planned state fields, typed by what the accumulators returned.
        let fields: Vec<Field> = self
            .state_schema
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true))
            .collect();
        let batch =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context("window state")?;
        Ok((batch, stored_groups))
    }

    /// Takes a window's state out as one batch and leaves an equivalent state
    /// in its place.
    pub(super) fn state_batch(&mut self, end: EventTime) -> Result<RecordBatch> {
        let (batch, stored_groups) = self.take_state(end)?;
        self.merge_state(end, &batch)?;
        if let Some(state) = self.windows.get_mut(&end) {
            state.stored_groups = stored_groups;
        }
        Ok(batch)
    }

    /// Moves the partial state of every open window to the spill store.
    pub(super) fn spill_windows(&mut self) -> Result<()> {
        let ends: Vec<EventTime> = self
            .windows
            .iter()
            .filter(|(_, s)| !s.groups.is_empty())
            .map(|(e, _)| *e)
            .collect();
        let n_groups = self.group_schema.fields().len();
        for end in ends {
            let (batch, stored_groups) = self.take_state(end)?;
            let Some(spill) = &mut self.spill else {
                return Ok(());
            };
            let keys = batch.columns()[..n_groups].to_vec();
            let parts = split_by_key_group(&batch, &keys, spill.key_groups())?;
            spill.spill(end, parts)?;
            if let Some(state) = self.windows.get_mut(&end) {
                // The checkpoint's copy of the in-memory part is now stale.
                state.stored_groups = stored_groups;
                state.dirty = true;
            }
        }
        Ok(())
    }

    /// Merges a state batch (as [`Self::state_batch`] makes) into window `end`.
    pub(super) fn merge_state(&mut self, end: EventTime, batch: &RecordBatch) -> Result<()> {
        if !self.windows.contains_key(&end) {
            let state = self.new_window()?;
            self.windows.insert(end, state);
        }
        let state = self
            .windows
            .get_mut(&end)
            .ok_or_else(|| EngineError::Graph("window state vanished".into()))?;
        merge_into(
            state,
            batch,
            &self.aggregates,
            self.group_schema.fields().len(),
            &mut self.group_ids,
        )
    }

    /// Fires window `end`: emits its rows and forgets its state.
    pub(super) fn fire(&mut self, end: EventTime, out: &mut Emitter) -> Result<()> {
        let spilled = self.spill.as_ref().is_some_and(|s| s.has(end));
        if !spilled {
            let Some(state) = self.windows.remove(&end) else {
                return Ok(());
            };
            self.forget_stored(end, &state.stored_groups)?;
            return self.emit(state, out);
        }
        // Key group by key group: the in-memory part and the spilled parts.
        let n_groups = self.group_schema.fields().len();
        let (batch, stored_groups) = self.take_state(end)?;
        self.windows.remove(&end);
        self.forget_stored(end, &stored_groups)?;
        let Some(spill) = &mut self.spill else {
            return Ok(());
        };
        let keys = batch.columns()[..n_groups].to_vec();
        let mut in_memory: BTreeMap<u16, RecordBatch> =
            split_by_key_group(&batch, &keys, spill.key_groups())?
                .into_iter()
                .collect();
        let mut groups = spill.groups(end);
        groups.extend(in_memory.keys().copied());
        for g in groups {
            let mut parts = match &mut self.spill {
                Some(spill) => spill.read(end, g)?,
                None => vec![],
            };
            parts.extend(in_memory.remove(&g));
            let mut state = self.new_window()?;
            for part in &parts {
                merge_into(
                    &mut state,
                    part,
                    &self.aggregates,
                    n_groups,
                    &mut self.group_ids,
                )?;
            }
            self.emit(state, out)?;
        }
        if let Some(spill) = &mut self.spill {
            spill.remove(end)?;
        }
        Ok(())
    }

    /// Removes a fired window's stored in-memory state (its key groups).
    fn forget_stored(&mut self, end: EventTime, groups: &[u16]) -> Result<()> {
        let mut batch = RawBatch::default();
        for g in groups {
            self.stored.delete(&mut batch, *g, &window_key(end));
        }
        self.stored.write(batch)
    }

    /// Evaluates a window's state and emits its rows.
    pub(super) fn emit(&self, state: WindowState, out: &mut Emitter) -> Result<()> {
        let WindowState {
            mut groups,
            mut accumulators,
            ..
        } = state;
        if groups.is_empty() {
            return Ok(());
        }
        let mut columns = groups.emit(EmitTo::All).context("window aggregate emit")?;
        for acc in accumulators.iter_mut() {
            columns.push(
                acc.evaluate(EmitTo::All)
                    .context("window aggregate evaluate")?,
            );
        }
        // Group values come back with the group schema's types; align names,
        // nullability and metadata with the output schema.
        let batch = batch_of(&self.output_schema, columns, "window aggregate output")?;
        out.batch(batch);
        Ok(())
    }
}

/// Merges a state batch (group columns, then each accumulator's state
/// columns) into `state`.
pub(super) fn merge_into(
    state: &mut WindowState,
    batch: &RecordBatch,
    aggregates: &[AggregateSpec],
    n_groups: usize,
    group_ids: &mut Vec<usize>,
) -> Result<()> {
    group_ids.clear();
    state
        .groups
        .intern(&batch.columns()[..n_groups], group_ids)
        .context("window state merge")?;
    let total = state.groups.len();
    let mut col = n_groups;
    for (acc, a) in state.accumulators.iter_mut().zip(aggregates) {
        let width = a.expr.state_fields().context("window state")?.len();
        acc.merge_batch(&batch.columns()[col..col + width], group_ids, total)
            .context("window state merge")?;
        col += width;
    }
    Ok(())
}

/// A window's key in the store: `w` and its end, ordered.
pub(super) fn window_key(end: EventTime) -> [u8; 9] {
    let mut k = [b'w'; 9];
    k[1..].copy_from_slice(&((end as u64) ^ (1 << 63)).to_be_bytes());
    k
}

pub(super) fn parse_window_key(k: &[u8]) -> Result<EventTime> {
    match k {
        [b'w', rest @ ..] if rest.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(rest);
            Ok((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
        }
        _ => Err(EngineError::State("unknown window state key".into())),
    }
}
