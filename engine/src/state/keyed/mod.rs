//! Declared keyed state: an operator declares its tables when it opens
//! ([`crate::operator::Operator::open`]), reads and writes them by key, and
//! the layer does the rest — which key group a key belongs to, a bounded
//! write-back cache (`state.backend.cache-size`) in front of a RocksDB
//! database per operator instance (so state larger than memory spills, by
//! design), the keys changed since the last checkpoint, incremental
//! checkpoints (the changed keys are written, then a RocksDB checkpoint
//! links the database's files), and restores that open the checkpoint's
//! files instead of loading entries (at another parallelism, each instance
//! copies just the key groups it owns).
//!
//! Modelled on Flink's keyed state backends (key groups, a RocksDB instance
//! per subtask, incremental checkpoints of SST files) and Arroyo's declared
//! state tables.

pub mod backend;
pub mod raw;
pub mod rows;
pub mod table;
pub mod timers;

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

pub use backend::KeyedBackend;
pub use raw::{RawBatch, RawTable};
pub use table::{CacheBudget, KeyedTable, StateCodec, StateTable};
pub use timers::Timers;

use crate::{EngineError, Result};

/// The keyed-state cache of a job when `state.backend.cache-size` is not set.
pub const DEFAULT_CACHE_SIZE: usize = 1 << 30;

/// A job's keyed-state settings.
#[derive(Debug, Clone)]
pub struct StateSettings {
    /// `state.backend.cache-size`: the bytes of keyed state the job's
    /// tables keep in memory together (each an equal share).
    pub cache_size: usize,
    /// `io.tmp.dirs`: where a job without checkpoints spills.
    pub tmp_dir: std::path::PathBuf,
}

impl Default for StateSettings {
    fn default() -> Self {
        Self {
            cache_size: DEFAULT_CACHE_SIZE,
            tmp_dir: std::env::temp_dir(),
        }
    }
}

/// The key groups owned by instance `instance` of `parallelism` (of
/// `key_groups`): the inverse of [`crate::state::instance_of`].
pub fn key_group_range(
    instance: usize,
    parallelism: usize,
    key_groups: u16,
) -> RangeInclusive<u16> {
    let g = key_groups.max(1) as usize;
    let p = parallelism.max(1);
    // First group g with g * p / groups >= instance.
    let lo = (instance * g).div_ceil(p);
    let hi = ((instance + 1) * g).div_ceil(p) - 1;
    (lo as u16)..=(hi as u16)
}

/// What an operator instance declares its tables in.
pub struct StateContext {
    backend: Arc<KeyedBackend>,
    key_groups: u16,
    owned: RangeInclusive<u16>,
    budget: Arc<CacheBudget>,
    checkpointed: bool,
    declared: Vec<&'static str>,
    subtask: (usize, usize),
}

impl StateContext {
    /// The context of an instance whose state lives in `backend`; its tables
    /// share `budget`, spread keys over `key_groups`, and remember their
    /// changes for checkpoints when `checkpointed`.
    pub fn new(
        backend: Arc<KeyedBackend>,
        key_groups: u16,
        owned: RangeInclusive<u16>,
        budget: Arc<CacheBudget>,
        checkpointed: bool,
    ) -> Self {
        Self {
            backend,
            key_groups,
            owned,
            budget,
            checkpointed,
            declared: vec![],
            subtask: (0, 1),
        }
    }

    /// The same context for instance `index` of `of`.
    pub fn for_subtask(mut self, index: usize, of: usize) -> Self {
        self.subtask = (index, of);
        self
    }

    /// Which instance of how many the operator is (operator state that is
    /// per instance, not per key, is stored under it).
    pub fn subtask(&self) -> (usize, usize) {
        self.subtask
    }

    /// A context for an operator used outside a job's runtime (built, or
    /// run directly in a test): its tables spill to a temporary directory
    /// past [`DEFAULT_CACHE_SIZE`] and are never checkpointed. The runtime
    /// opens every operator again with the job's own.
    pub fn detached() -> Self {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vigil-detached-{}-{seq}", std::process::id()));
        let groups = crate::state::DEFAULT_KEY_GROUPS;
        Self::new(
            Arc::new(KeyedBackend::new(dir, true)),
            groups,
            0..=groups - 1,
            CacheBudget::new(DEFAULT_CACHE_SIZE),
            false,
        )
    }

    /// Declares table `name` of values `V`, stored through `codec`; with a
    /// `ttl`, an entry not written for that long (processing time) is gone.
    pub fn table<V: Send + 'static, C: StateCodec<V>>(
        &mut self,
        name: &'static str,
        codec: C,
        ttl: Option<Duration>,
    ) -> Result<KeyedTable<V, C>> {
        let id = self.declare(name)?;
        Ok(KeyedTable::new(
            id,
            self.key_groups,
            self.owned.clone(),
            self.backend.clone(),
            codec,
            self.budget.clone(),
            self.checkpointed,
            ttl.map(|d| (d.as_millis() as u64).max(1)),
        ))
    }

    /// Declares event-time timers `name` (see [`Timers`]).
    pub fn timers(&mut self, name: &'static str) -> Result<Timers> {
        let id = self.declare(name)?;
        Timers::new(
            id,
            self.key_groups,
            self.owned.clone(),
            self.backend.clone(),
            self.budget.clone(),
        )
    }

    /// Declares raw table `name` (see [`RawTable`]).
    pub fn raw_table(&mut self, name: &'static str) -> Result<RawTable> {
        let id = self.declare(name)?;
        Ok(RawTable::new(id, self.owned.clone(), self.backend.clone()))
    }

    fn declare(&mut self, name: &'static str) -> Result<u8> {
        if self.declared.contains(&name) {
            return Err(EngineError::State(format!(
                "table '{name}' is declared twice"
            )));
        }
        let id = u8::try_from(self.declared.len())
            .map_err(|_| EngineError::State("an operator declares at most 256 tables".into()))?;
        self.declared.push(name);
        Ok(id)
    }

    /// The tables declared so far.
    pub fn declared(&self) -> &[&'static str] {
        &self.declared
    }

    /// The instance's database.
    pub fn backend(&self) -> &Arc<KeyedBackend> {
        &self.backend
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::instance_of;

    #[test]
    fn key_group_ranges_match_instance_of() {
        for (p, g) in [(1usize, 128u16), (3, 128), (2, 7), (5, 5), (4, 130)] {
            for i in 0..p {
                let r = key_group_range(i, p, g);
                for kg in 0..g {
                    assert_eq!(
                        r.contains(&kg),
                        instance_of(kg, p, g) == i,
                        "p={p} g={g} i={i} kg={kg}"
                    );
                }
            }
        }
    }
}
