//! The writing end of an exchange as a sink: rows to their key group's
//! partition, everything else in band to all of them.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use super::{Marker, ShuffleWriter};
use crate::connector::{Sink, SinkState};
use crate::error::ResultExt;
use crate::message::{CheckpointId, EventTime};
use crate::operators::eval;
use crate::state::arrow_state::key_groups_of;
use crate::Result;

/// Routes its input's rows by key group to a [`ShuffleWriter`].
pub struct ExchangeSink {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_groups: u16,
    writer: Box<dyn ShuffleWriter>,
    groups_of_rows: Vec<u16>,
    rows_of: Vec<Vec<u32>>,
    /// The last watermark sent (a repeat is not sent again).
    watermark: Option<EventTime>,
    /// The newest checkpoint whose barrier was sent, or restored from.
    barrier: CheckpointId,
}

impl ExchangeSink {
    /// A sink evaluating `keys` on each batch to find its rows' key groups.
    pub fn new(
        keys: Vec<Arc<dyn PhysicalExpr>>,
        key_groups: u16,
        writer: Box<dyn ShuffleWriter>,
    ) -> Self {
        Self {
            keys,
            key_groups,
            writer,
            groups_of_rows: vec![],
            rows_of: vec![vec![]; key_groups as usize],
            watermark: None,
            barrier: 0,
        }
    }
}

#[async_trait]
impl Sink for ExchangeSink {
    fn describe(&self) -> String {
        self.writer.describe()
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let keys = self
            .keys
            .iter()
            .map(|k| eval(k.as_ref(), &batch, "exchange key"))
            .collect::<Result<Vec<_>>>()?;
        key_groups_of(&keys, self.key_groups, &mut self.groups_of_rows)?;
        for rows in &mut self.rows_of {
            rows.clear();
        }
        for (row, g) in self.groups_of_rows.iter().enumerate() {
            self.rows_of[*g as usize].push(row as u32);
        }
        for (g, rows) in self.rows_of.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let part = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                let idx = UInt32Array::from(rows.clone());
                take_record_batch(&batch, &idx).context("exchange")?
            };
            self.writer.rows(g as u16, &part).await?;
        }
        Ok(())
    }

    async fn on_watermark(&mut self, wm: EventTime) -> Result<()> {
        if self.watermark.is_some_and(|w| w >= wm) {
            return Ok(());
        }
        self.watermark = Some(wm);
        self.writer.marker(Marker::Watermark(wm)).await
    }

    async fn on_idle(&mut self) -> Result<()> {
        // The next watermark ends the idleness, even if it is no newer.
        self.watermark = None;
        self.writer.marker(Marker::Idle).await
    }

    async fn finish(&mut self) -> Result<()> {
        self.writer.marker(Marker::End).await?;
        self.writer.flush().await
    }

    async fn stop(&mut self) -> Result<()> {
        // Not the end of the input: the readers stop on their own.
        self.writer.flush().await
    }

    async fn pre_commit(&mut self, id: CheckpointId) -> Result<Vec<u8>> {
        // A sink whose input ended answers the checkpoints still to come
        // itself, and the first may be the one the job was restored from:
        // a barrier of a completed checkpoint must not travel downstream,
        // where no other input would ever bring it.
        if id > self.barrier {
            self.barrier = id;
            self.writer.marker(Marker::Barrier(id)).await?;
            self.writer.flush().await?;
        }
        Ok(self.barrier.to_be_bytes().to_vec())
    }

    async fn restore(&mut self, states: &[SinkState]) -> Result<()> {
        for s in states {
            if let Ok(id) = <[u8; 8]>::try_from(s.bytes.as_slice()) {
                self.barrier = self.barrier.max(CheckpointId::from_be_bytes(id));
            }
        }
        Ok(())
    }
}
