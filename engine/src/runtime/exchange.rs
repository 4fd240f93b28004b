//! The edges out of a task: forwarding every message to one consumer, or the
//! keyed exchange in front of the parallel instances of a keyed operator.
//!
//! The exchange evaluates the operator's key expressions on each batch, finds
//! each row's key group (the same function checkpoints split state by) and
//! sends the row to the instance owning that group; watermarks, barriers,
//! idleness and the end of input go to every instance.

use std::sync::Arc;

use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;
use tokio::sync::mpsc;

use crate::error::ResultExt;
use crate::message::Message;
use crate::operators::eval;
use crate::state::arrow_state::key_groups_of;
use crate::state::instance_of;
use crate::Result;

/// Routes rows to parallel instances by key group.
pub(super) struct KeyRouter {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_groups: u16,
    /// The job's number of the first instance routed to, of how many (of a
    /// job running as several processes, this process's instances are a
    /// range of the job's).
    first: usize,
    total: usize,
    groups_of_rows: Vec<u16>,
    rows_of: Vec<Vec<u32>>,
}

impl KeyRouter {
    pub fn new(
        keys: Vec<Arc<dyn PhysicalExpr>>,
        key_groups: u16,
        first: usize,
        total: usize,
    ) -> Self {
        Self {
            keys,
            key_groups,
            first,
            total,
            groups_of_rows: vec![],
            rows_of: vec![],
        }
    }

    /// Splits `batch` into one part per instance (`None` where it has no rows).
    pub fn route(
        &mut self,
        batch: &RecordBatch,
        instances: usize,
    ) -> Result<Vec<Option<RecordBatch>>> {
        let keys = self
            .keys
            .iter()
            .map(|k| eval(k.as_ref(), batch, "exchange key"))
            .collect::<Result<Vec<_>>>()?;
        key_groups_of(&keys, self.key_groups, &mut self.groups_of_rows)?;
        self.rows_of.resize(instances, vec![]);
        for rows in &mut self.rows_of {
            rows.clear();
        }
        for (row, g) in self.groups_of_rows.iter().enumerate() {
            let to = instance_of(*g, self.total, self.key_groups)
                .checked_sub(self.first)
                .and_then(|i| self.rows_of.get_mut(i));
            let Some(to) = to else {
                return Err(crate::EngineError::Graph(format!(
                    "a row of key group {g} reached a process that does not own it"
                )));
            };
            to.push(row as u32);
        }
        self.rows_of
            .iter()
            .map(|rows| {
                if rows.is_empty() {
                    Ok(None)
                } else if rows.len() == batch.num_rows() {
                    Ok(Some(batch.clone()))
                } else {
                    let idx = UInt32Array::from(rows.clone());
                    take_record_batch(batch, &idx).context("exchange").map(Some)
                }
            })
            .collect()
    }
}

/// Where a task sends what leaves it.
pub(super) enum Output {
    /// Every message to one consumer.
    Forward(mpsc::Sender<Message>),
    /// Rows by key group to the instances of a keyed operator; everything
    /// else to all of them.
    Keyed(KeyRouter, Vec<mpsc::Sender<Message>>),
}

impl Output {
    /// Sends `msg`; false once a consumer is gone (the job is shutting down).
    pub async fn send(&mut self, msg: &Message) -> Result<bool> {
        match self {
            Output::Forward(tx) => Ok(tx.send(msg.clone()).await.is_ok()),
            Output::Keyed(router, txs) => {
                if let Message::Batch(b) = msg {
                    let parts = router.route(b, txs.len())?;
                    for (part, tx) in parts.into_iter().zip(txs.iter()) {
                        if let Some(p) = part {
                            if tx.send(Message::Batch(p)).await.is_err() {
                                return Ok(false);
                            }
                        }
                    }
                    return Ok(true);
                }
                for tx in txs.iter() {
                    if tx.send(msg.clone()).await.is_err() {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::Column;

    #[test]
    fn rows_of_a_key_go_to_one_instance_and_none_is_lost() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let keys: Vec<String> = (0..1000).map(|i| format!("key-{}", i % 37)).collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from((0..1000).collect::<Vec<i64>>())),
            ],
        )
        .expect("batch");
        let mut router = KeyRouter::new(vec![Arc::new(Column::new("k", 0))], 128, 0, 3);
        let parts = router.route(&batch, 3).expect("route");
        assert_eq!(parts.len(), 3);
        let total: usize = parts.iter().flatten().map(|p| p.num_rows()).sum();
        assert_eq!(total, 1000);
        let mut owner = std::collections::HashMap::new();
        for (i, p) in parts.iter().enumerate() {
            let Some(p) = p else { continue };
            let k = p
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("strings");
            for j in 0..k.len() {
                let prev = owner.insert(k.value(j).to_string(), i);
                assert!(prev.is_none_or(|o| o == i), "a key went to two instances");
            }
        }
        assert!(
            parts.iter().filter(|p| p.is_some()).count() >= 2,
            "37 keys should reach more than one of 3 instances"
        );
    }
}
