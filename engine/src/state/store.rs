//! The RocksDB database that holds a job's checkpointed state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rocksdb::{checkpoint::Checkpoint, IteratorMode, Options, Range, WriteBatch, WriteOptions, DB};

use super::{split_store_key, StateEntry, StateOp};
use crate::graph::{NodeId, StateUid};
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

    /// The bytes on disk (compressed, approximate: RocksDB's estimate from
    /// its SST files, so measured right after a checkpoint flushed the
    /// memtable) of the state stored under each of `uids`.
    pub fn bytes_by_uid(&self, uids: &[StateUid]) -> Vec<u64> {
        let bounds: Vec<([u8; 4], Vec<u8>)> = uids
            .iter()
            .map(|u| {
                let end = match u.checked_add(1) {
                    Some(next) => next.to_be_bytes().to_vec(),
                    None => vec![0xff; 5],
                };
                (u.to_be_bytes(), end)
            })
            .collect();
        let ranges: Vec<Range<'_>> = bounds
            .iter()
            .map(|(start, end)| Range::new(start, end))
            .collect();
        self.db.get_approximate_sizes(&ranges)
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

    #[test]
    fn measures_each_nodes_state_on_disk() {
        let dir = std::env::temp_dir().join(format!("vigil-store-bytes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = StateStore::open(&dir).expect("open");
        // Pseudo-random values, 64 KiB for node 7, nothing for node 8, 1 MiB
        // for the last identity there is.
        let noise = |n: usize, seed: u64| -> Vec<u8> {
            let mut x = seed | 1;
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let mut ops = vec![];
        for i in 0..64u32 {
            ops.push(StateOp::Put(
                store_key(7, 0, &i.to_be_bytes()),
                noise(1024, u64::from(i) + 1),
            ));
        }
        for i in 0..256u32 {
            ops.push(StateOp::Put(
                store_key(u32::MAX as NodeId, 0, &i.to_be_bytes()),
                noise(4096, u64::from(i) + 1000),
            ));
        }
        store.apply(ops).expect("apply");
        // A checkpoint flushes the memtable; the estimate reads SST files.
        store.checkpoint_to(&dir.join("chk")).expect("checkpoint");
        let bytes = store.bytes_by_uid(&[7, 8, u32::MAX]);
        // On disk after LZ4: at most what was written, and more than half.
        assert!((30_000..80_000).contains(&bytes[0]), "{bytes:?}");
        assert_eq!(bytes[1], 0, "{bytes:?}");
        assert!((600_000..1_200_000).contains(&bytes[2]), "{bytes:?}");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
