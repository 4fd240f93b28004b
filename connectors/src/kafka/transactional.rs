//! Exactly-once delivery for the Kafka sink (`'sink.delivery-guarantee' =
//! 'exactly-once'`): the rows of each checkpoint are written in one Kafka
//! transaction when that checkpoint completes.
//!
//! librdkafka cannot resume another process's open transaction (Flink does it
//! by reflection into the Java producer), so the sink keeps a write-ahead
//! buffer instead: rows since the last barrier stay in memory; at the barrier
//! (pre-commit) they become pending and are stored in the checkpoint; when the
//! checkpoint completes they are produced in a transaction that also commits
//! a marker offset (checkpoint id) for the consumer group
//! `<prefix>-vigil-commits`. After a crash, `restore` reads the marker: pending
//! rows of checkpoints the marker has not reached are committed then, and
//! nothing else, so a crash between pre-commit and commit neither loses nor
//! duplicates rows. The transactional id `<prefix>-0` stays the same across
//! runs, so a restarted job fences the producer of a crashed one and aborts
//! its open transaction.
//!
//! Of a job running as several processes, process `i` writes as
//! `<prefix>-<i>` with its own marker group (`<prefix>-vigil-commits-<i>`,
//! the plain name for process 0). After any change of membership, the pending
//! rows every process stored in the restored checkpoint are committed by one
//! process of the new generation, under the transactional id and marker of
//! the process that stored them: that fences the old owner's producer (a
//! zombie can no longer commit) and the marker keeps the commit to once.

use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::ThreadedProducer;
use rdkafka::{Offset, TopicPartitionList};
use vigil_engine::message::CheckpointId;
use vigil_engine::state::arrow_state::{decode_batch, encode_batch};
use vigil_engine::Result;

use super::client::DeliveryContext;

/// How long a transaction call may take before the job fails.
pub const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// The rows of one checkpoint, waiting for it to complete.
pub struct Pending {
    /// The checkpoint they precede.
    pub id: CheckpointId,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

/// The sink's transactional state.
pub struct Transactions {
    /// The consumer that owns the marker group (its offsets say which
    /// checkpoint was committed last).
    pub marker: BaseConsumer,
    /// The marker's topic and partition: the sink topic, partition 0.
    pub topic: String,
    /// Rows since the last barrier.
    pub buffer: Vec<RecordBatch>,
    /// Pre-committed rows, oldest first.
    pub pending: Vec<Pending>,
    /// The newest checkpoint pre-committed (or restored).
    pub last_id: Option<CheckpointId>,
    /// Whether `init_transactions` ran (it is deferred so that `explain` does
    /// not connect).
    pub initialised: bool,
    /// Builds the producer and marker consumer of any share.
    pub clients: TxnClients,
}

/// What the producer and marker consumer of a share are made from.
#[derive(Clone)]
pub struct TxnClients {
    /// The `sink.transactional-id-prefix`.
    pub prefix: String,
    /// The producer's configuration, but its transactional id.
    pub producer: ClientConfig,
    /// The marker consumer's configuration, but its group.
    pub marker: ClientConfig,
    /// Names the producer's delivery failures (the sink's table).
    pub table: String,
}

impl TxnClients {
    /// The transactional id of share `share`.
    pub fn transactional_id(&self, share: usize) -> String {
        format!("{}-{share}", self.prefix)
    }

    /// The marker group of share `share`.
    pub fn marker_group(&self, share: usize) -> String {
        match share {
            0 => format!("{}-vigil-commits", self.prefix),
            i => format!("{}-vigil-commits-{i}", self.prefix),
        }
    }

    /// The producer writing as share `share`.
    pub fn producer(&self, share: usize) -> Result<ThreadedProducer<DeliveryContext>, String> {
        let mut config = self.producer.clone();
        config.set("transactional.id", self.transactional_id(share));
        config
            .create_with_context(DeliveryContext::new(&self.table))
            .map_err(|e| format!("invalid Kafka configuration: {e}"))
    }

    /// The consumer owning share `share`'s marker group.
    pub fn marker(&self, share: usize) -> Result<BaseConsumer, String> {
        let mut config = self.marker.clone();
        config
            .set("group.id", self.marker_group(share))
            .set("enable.auto.commit", "false");
        config
            .create()
            .map_err(|e| format!("invalid Kafka configuration: {e}"))
    }
}

impl Transactions {
    /// The marker for checkpoint `id`, as an offset list.
    pub fn marker_offsets(&self, id: CheckpointId) -> Result<TopicPartitionList, String> {
        let mut tpl = TopicPartitionList::new();
        let offset = i64::try_from(id).map_err(|_| format!("checkpoint id {id} is too large"))?;
        tpl.add_partition_offset(&self.topic, 0, Offset::Offset(offset))
            .map_err(|e| e.to_string())?;
        Ok(tpl)
    }

    /// The last checkpoint whose rows were committed, if any.
    pub fn committed_marker(&self) -> Result<Option<CheckpointId>, String> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let got = self
            .marker
            .committed_offsets(tpl, TXN_TIMEOUT)
            .map_err(|e| format!("cannot read the commit marker: {e}"))?;
        Ok(got
            .find_partition(&self.topic, 0)
            .and_then(|p| match p.offset() {
                Offset::Offset(o) if o >= 0 => Some(o as CheckpointId),
                _ => None,
            }))
    }

    /// Stores the marker with a plain offset commit too. On a real broker the
    /// transaction already stored it atomically with the rows; rdkafka's mock
    /// cluster accepts TxnOffsetCommit without storing it.
    pub fn store_marker(&self, id: CheckpointId) -> Result<(), String> {
        let tpl = self.marker_offsets(id)?;
        self.marker
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| format!("cannot store the commit marker: {e}"))
    }
}

/// Encodes the pending rows for the checkpoint: for each checkpoint its id and
/// batch count, then each batch as length-prefixed Arrow IPC.
pub fn encode_pending(pending: &[Pending]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pending.len() as u64).to_le_bytes());
    for p in pending {
        out.extend_from_slice(&p.id.to_le_bytes());
        out.extend_from_slice(&(p.batches.len() as u64).to_le_bytes());
        for b in &p.batches {
            let bytes = encode_batch(b)?;
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
    }
    Ok(out)
}

/// Decodes what [`encode_pending`] wrote.
pub fn decode_pending(mut bytes: &[u8]) -> Result<Vec<Pending>, String> {
    fn take_u64(bytes: &mut &[u8]) -> Result<u64, String> {
        let (head, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or("the stored sink state is truncated")?;
        *bytes = rest;
        Ok(u64::from_le_bytes(*head))
    }
    let n = take_u64(&mut bytes)?;
    let mut out = Vec::new();
    for _ in 0..n {
        let id = take_u64(&mut bytes)?;
        let batches = take_u64(&mut bytes)?;
        let mut p = Pending {
            id,
            batches: vec![],
        };
        for _ in 0..batches {
            let len = usize::try_from(take_u64(&mut bytes)?).map_err(|e| e.to_string())?;
            if bytes.len() < len {
                return Err("the stored sink state is truncated".into());
            }
            let (b, rest) = bytes.split_at(len);
            p.batches.push(decode_batch(b).map_err(|e| e.to_string())?);
            bytes = rest;
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(keys: &[&str], vals: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(vals.to_vec())),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn pending_rows_round_trip() {
        let pending = vec![
            Pending {
                id: 3,
                batches: vec![batch(&["a", "b"], &[1, 2]), batch(&["c"], &[3])],
            },
            Pending {
                id: 4,
                batches: vec![],
            },
        ];
        let bytes = encode_pending(&pending).expect("encode");
        let back = decode_pending(&bytes).expect("decode");
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].id, back[1].id), (3, 4));
        assert_eq!(back[0].batches, pending[0].batches);
        assert!(back[1].batches.is_empty());
    }

    #[test]
    fn truncated_state_is_an_error_not_a_panic() {
        let pending = vec![Pending {
            id: 7,
            batches: vec![batch(&["a"], &[1])],
        }];
        let bytes = encode_pending(&pending).expect("encode");
        for cut in [0, 5, 8, 17, bytes.len() - 1] {
            assert!(decode_pending(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
