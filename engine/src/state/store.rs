//! The RocksDB database that holds a job's checkpointed state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rocksdb::{checkpoint::Checkpoint, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::{split_store_key, StateEntry, StateOp};
use crate::graph::NodeId;
use crate::{EngineError, Result};

/// A job's state database (the working copy; checkpoints are RocksDB
/// checkpoints of it, see [`super::checkpoints`]).
pub struct StateStore {
    db: DB,
    path: PathBuf,
}

fn state_err(path: &Path, what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("{what} '{}': {e}", path.display()))
}

impl StateStore {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Checks block checksums when files are opened, so a corrupt checkpoint
        // fails on restore instead of later.
        opts.set_paranoid_checks(true);
        let db = DB::open(&opts, path).map_err(|e| state_err(path, "cannot open state in", e))?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Applies a checkpoint's changes in one batch; returns the bytes written.
    /// The write-ahead log is off: a checkpoint flushes the memtable anyway, and
    /// the working copy is rebuilt from the last checkpoint after a crash.
    pub fn apply(&self, ops: Vec<StateOp>) -> Result<u64> {
        let mut batch = WriteBatch::default();
        let mut bytes = 0u64;
        for op in ops {
            match op {
                StateOp::Put(k, v) => {
                    bytes += (k.len() + v.len()) as u64;
                    batch.put(k, v);
                }
                StateOp::Delete(k) => {
                    bytes += k.len() as u64;
                    batch.delete(k);
                }
            }
        }
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| state_err(&self.path, "cannot write state to", e))?;
        Ok(bytes)
    }

    /// Takes a RocksDB checkpoint into `dir` (which must not exist): the memtable
    /// is flushed and the SST files are hard-linked.
    pub fn checkpoint_to(&self, dir: &Path) -> Result<()> {
        let cp =
            Checkpoint::new(&self.db).map_err(|e| state_err(&self.path, "cannot checkpoint", e))?;
        cp.create_checkpoint(dir)
            .map_err(|e| state_err(dir, "cannot create checkpoint", e))
    }

    /// Every entry, by the node identity it is stored under (see
    /// [`crate::graph::StateUid`]); reading verifies the blocks' checksums.
    pub fn entries(&self) -> Result<BTreeMap<NodeId, Vec<StateEntry>>> {
        let mut out: BTreeMap<NodeId, Vec<StateEntry>> = BTreeMap::new();
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, v) = item.map_err(|e| state_err(&self.path, "cannot read state from", e))?;
            let Some((node, key_group, key)) = split_store_key(&k) else {
                return Err(state_err(&self.path, "malformed state key in", "too short"));
            };
            out.entry(node).or_default().push(StateEntry {
                key_group,
                key: key.to_vec(),
                value: v.to_vec(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store_key;

    #[test]
    fn applies_and_reads_back_by_node() {
        let dir = std::env::temp_dir().join(format!("vigil-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = StateStore::open(&dir).expect("open");
        store
            .apply(vec![
                StateOp::Put(store_key(1, 3, b"a"), b"x".to_vec()),
                StateOp::Put(store_key(2, 0, b"b"), b"y".to_vec()),
                StateOp::Put(store_key(1, 4, b"c"), b"z".to_vec()),
            ])
            .expect("apply");
        store
            .apply(vec![StateOp::Delete(store_key(1, 4, b"c"))])
            .expect("delete");
        let all = store.entries().expect("entries");
        assert_eq!(all[&1].len(), 1);
        assert_eq!(all[&1][0].key_group, 3);
        assert_eq!(all[&1][0].value, b"x");
        assert_eq!(all[&2][0].key, b"b");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
