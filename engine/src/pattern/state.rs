//! MATCH_RECOGNIZE state in checkpoints: the watermark, the rows waiting for
//! it, and per partition its retained rows, partial matches and matches
//! waiting to be emitted, by key group (parallel instances each own some).
//! Written whole at each checkpoint: partial matches are short-lived, and
//! the rows they hold are few.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use serde::{Deserialize, Serialize};

use super::matcher::Matcher;
use super::operator::{MatchRecognize, Partition, Rows};
use crate::error::ResultExt;
use crate::message::EventTime;
use crate::state::arrow_state::split_by_key_group;
use crate::state::arrow_state::{decode_batch, encode_batch};
use crate::state::{
    entry_value, key_group_of, saved_meta, StateEntry, StateWriter, OPERATOR_STATE,
};
use crate::{EngineError, Result};

/// A partition as checkpointed.
#[derive(Serialize, Deserialize)]
struct SavedPartition {
    /// The partition key (Arrow's row format): a partition kept for its match
    /// numbers or its `^` anchor may hold no row to take it from.
    #[serde(default)]
    key: Option<Vec<u8>>,
    first_seq: u64,
    next_seq: u64,
    rows: usize,
    matches: u64,
    matcher: Matcher,
}

/// The operator's checkpointed metadata.
#[derive(Serialize, Deserialize)]
struct Saved {
    watermark: EventTime,
    partitions: Vec<SavedPartition>,
}

impl MatchRecognize {
    /// The whole state at each checkpoint (partial matches are short-lived),
    /// by key group so that a job can resume at another parallelism: per
    /// group, the watermark, its partitions' retained rows, partial and
    /// waiting matches, and its rows waiting for the watermark.
    pub(super) fn save(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        let groups = w.key_groups();
        let keyed = !self.spec.partition_by.is_empty();
        let group_of = |key: &[u8]| if keyed { key_group_of(key, groups) } else { 0 };
        let mut by_group: BTreeMap<u16, (Vec<SavedPartition>, Vec<RecordBatch>)> = BTreeMap::new();
        for p in &self.partitions {
            let (parts, slices) = by_group.entry(group_of(&p.key_bytes)).or_default();
            parts.push(SavedPartition {
                key: Some(p.key_bytes.to_vec()),
                first_seq: p.rows.rows.front().map_or(p.rows.next_seq, |r| r.0),
                next_seq: p.rows.next_seq,
                rows: p.rows.rows.len(),
                matches: p.matches,
                matcher: p.matcher.clone(),
            });
            for (_, batch, i) in &p.rows.rows {
                slices.push(batch.slice(*i, 1));
            }
        }
        let mut staged: BTreeMap<u16, RecordBatch> = BTreeMap::new();
        if !self.staged.is_empty() {
            let all = concat_batches(&self.staged_schema, self.staged.iter().map(|b| &b.0))
                .context("MATCH_RECOGNIZE state")?;
            let keys: Vec<ArrayRef> = (0..self.spec.partition_by.len())
                .map(|i| all.column(self.key_start() + i).clone())
                .collect();
            for (g, b) in split_by_key_group(&all, &keys, groups)? {
                by_group.entry(g).or_default();
                staged.insert(g, b);
            }
        }
        let mut written = vec![];
        for (g, (parts, slices)) in by_group {
            let rows =
                concat_batches(&self.staged_schema, &slices).context("MATCH_RECOGNIZE state")?;
            let meta = serde_json::to_vec(&Saved {
                watermark: self.watermark,
                partitions: parts,
            })
            .map_err(|e| EngineError::State(format!("MATCH_RECOGNIZE state: {e}")))?;
            w.put(g, b"meta", meta);
            w.put(g, b"rows", encode_batch(&rows)?);
            match staged.remove(&g) {
                Some(b) => w.put(g, b"staged", encode_batch(&b)?),
                None => w.delete(g, b"staged"),
            }
            written.push(g);
        }
        // Groups stored before and empty now; and the state of checkpoints
        // written before it was kept by key group.
        for g in std::mem::take(&mut self.stored_groups)
            .into_iter()
            .chain([OPERATOR_STATE])
        {
            if !written.contains(&g) {
                for k in [&b"meta"[..], b"rows", b"staged"] {
                    w.delete(g, k);
                }
            }
        }
        self.stored_groups = written;
        Ok(())
    }

    /// Restores the key groups in `entries` (each group's partitions and
    /// waiting rows).
    pub(super) fn load(&mut self, mut entries: Vec<StateEntry>) -> Result<()> {
        entries.sort_by_key(|e| e.key_group);
        for group in entries.chunk_by(|a, b| a.key_group == b.key_group) {
            self.load_group(group)?;
            let g = group[0].key_group;
            if g != OPERATOR_STATE {
                self.stored_groups.push(g);
            }
        }
        self.upkeep();
        Ok(())
    }

    fn load_group(&mut self, entries: &[StateEntry]) -> Result<()> {
        let find = |k: &[u8]| entry_value(entries, k);
        let Some(saved) = saved_meta::<Saved>(entries, "MATCH_RECOGNIZE")? else {
            return Ok(());
        };
        self.watermark = self.watermark.max(saved.watermark);
        if let Some(b) = find(b"staged") {
            self.stage(decode_batch(b)?);
        }
        let rows = match find(b"rows") {
            Some(b) => Arc::new(decode_batch(b)?),
            None => return Ok(()),
        };
        let key_cols: Vec<ArrayRef> = (0..self.spec.partition_by.len())
            .map(|i| rows.column(self.key_start() + i).clone())
            .collect();
        let key_rows = if key_cols.is_empty() || rows.num_rows() == 0 {
            None
        } else {
            Some(
                self.keys
                    .convert_columns(&key_cols)
                    .context("MATCH_RECOGNIZE state")?,
            )
        };
        let mut at = 0;
        for sp in saved.partitions {
            if at + sp.rows > rows.num_rows() || (sp.key.is_none() && sp.rows == 0) {
                return Err(EngineError::State(
                    "MATCH_RECOGNIZE state: a partition without rows".into(),
                ));
            }
            let key: Arc<[u8]> = match &sp.key {
                Some(k) => Arc::from(&k[..]),
                None => Arc::from(key_rows.as_ref().map_or(&[][..], |k| k.row(at).data())),
            };
            let mut r = Rows {
                rows: Default::default(),
                next_seq: sp.next_seq,
            };
            for j in 0..sp.rows {
                r.rows
                    .push_back((sp.first_seq + j as u64, rows.clone(), at + j));
            }
            at += sp.rows;
            let p = self.partitions.len();
            self.index.insert(key.clone(), p);
            self.partitions
                .push(Partition::new(key, sp.matcher, r, sp.matches));
            self.arm(p);
            self.touched.push(p);
        }
        Ok(())
    }
}
