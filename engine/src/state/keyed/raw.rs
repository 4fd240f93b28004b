//! A raw keyed table: bytes under (key group, key) in the instance's
//! database, written through at once, for an operator that keeps its own
//! in-memory layout (a window aggregation's vectorised groups) and stores it
//! whole per key group rather than key by key.

use std::ops::RangeInclusive;
use std::sync::Arc;

use rocksdb::WriteBatch;

use super::backend::{db_key, KeyedBackend};
use super::table::StateTable;
use crate::Result;

/// See the module documentation.
pub struct RawTable {
    id: u8,
    owned: RangeInclusive<u16>,
    backend: Arc<KeyedBackend>,
}

/// Changes to a raw table, written together.
#[derive(Default)]
pub struct RawBatch {
    batch: WriteBatch,
    key: Vec<u8>,
}

impl RawTable {
    pub(super) fn new(id: u8, owned: RangeInclusive<u16>, backend: Arc<KeyedBackend>) -> Self {
        Self { id, owned, backend }
    }

    /// Sets `key` in `group` (in `batch`).
    pub fn put(&self, batch: &mut RawBatch, group: u16, key: &[u8], value: &[u8]) {
        db_key(group, self.id, key, &mut batch.key);
        batch.batch.put(&batch.key, value);
    }

    /// Removes `key` from `group` (in `batch`).
    pub fn delete(&self, batch: &mut RawBatch, group: u16, key: &[u8]) {
        db_key(group, self.id, key, &mut batch.key);
        batch.batch.delete(&batch.key);
    }

    /// Writes `batch`.
    pub fn write(&self, batch: RawBatch) -> Result<()> {
        self.backend.write(batch.batch)
    }

    /// The value of `key` in `group`.
    pub fn get(&self, group: u16, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut k = vec![];
        db_key(group, self.id, key, &mut k);
        self.backend.get(&k)
    }

    /// Visits the entries of the key groups this instance owns, in order,
    /// while `f` returns true.
    pub fn scan(&self, f: impl FnMut(u16, &[u8], &[u8]) -> Result<bool>) -> Result<()> {
        self.backend.scan(self.id, self.owned.clone(), f)
    }
}

impl StateTable for RawTable {
    /// Written through: nothing waits.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn cached_bytes(&self) -> u64 {
        0
    }
}
