//! Event-time timers of an operator instance, each for a key: the state
//! layer's timer service (as Flink's `InternalTimerService` over RocksDB).
//!
//! Timers registered since the last flush wait in memory; flushed (at a
//! checkpoint, or when too many wait) they go to the instance's database
//! under `key group | table | time | key`, so that each key group's timers
//! are in time order. The layer remembers the earliest stored time of each
//! key group it owns, so a watermark reads only the key groups with a timer
//! due. A restore seeks each owned key group's first timer; nothing else is
//! read until it is due.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::Arc;

use rocksdb::WriteBatch;

use super::backend::{db_key, KeyedBackend};
use super::table::{group_of, CacheBudget, StateTable};
use crate::Result;

/// Bytes a waiting timer takes besides its key.
const TIMER_OVERHEAD: usize = 48;

/// Time in bytes that sort as the times do (sign bit flipped, big-endian).
fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_of(b: &[u8]) -> Option<i64> {
    let b: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// The event-time timers of one instance (see the module documentation).
pub struct Timers {
    id: u8,
    key_groups: u16,
    owned: RangeInclusive<u16>,
    backend: Arc<KeyedBackend>,
    pending: BTreeSet<(i64, Box<[u8]>)>,
    /// What the waiting timers take in memory (they share the cache budget).
    pending_bytes: usize,
    budget: Arc<CacheBudget>,
    /// The earliest stored time per owned key group (`i64::MAX`: none).
    stored_next: Vec<i64>,
    /// Trailing bytes of a key that do not decide its key group.
    suffix: usize,
    scratch: Vec<u8>,
}

impl Timers {
    pub(super) fn new(
        id: u8,
        key_groups: u16,
        owned: RangeInclusive<u16>,
        backend: Arc<KeyedBackend>,
        budget: Arc<CacheBudget>,
    ) -> Result<Self> {
        budget.join();
        let mut t = Self {
            pending_bytes: 0,
            budget,
            id,
            key_groups,
            stored_next: vec![i64::MAX; owned.clone().count()],
            owned,
            backend,
            pending: BTreeSet::new(),
            suffix: 0,
            scratch: vec![],
        };
        // A restored database: each key group's first timer.
        for g in t.owned.clone() {
            let first = t.first_stored(g)?;
            t.stored_next[(g - t.owned.start()) as usize] = first;
        }
        Ok(t)
    }

    fn first_stored(&self, group: u16) -> Result<i64> {
        let mut first = i64::MAX;
        self.backend.scan(self.id, group..=group, |_, k, _| {
            first = time_of(k).unwrap_or(i64::MAX);
            Ok(false)
        })?;
        Ok(first)
    }

    /// The same timers, their keys' last `suffix` bytes left out of their
    /// key group (as the table's they belong to).
    pub fn grouped_without_suffix(mut self, suffix: usize) -> Self {
        self.suffix = suffix;
        self
    }

    /// Registers a timer for `key` at `time` (once per time and key).
    pub fn register(&mut self, time: i64, key: &[u8]) -> Result<()> {
        if self.pending.insert((time, Box::from(key))) {
            self.pending_bytes += key.len() + TIMER_OVERHEAD;
        }
        if self.pending_bytes > self.budget.share() {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Removes and returns every timer at or before `wm`, in time order.
    pub fn pop_due(&mut self, wm: i64) -> Result<Vec<(i64, Box<[u8]>)>> {
        let later = match wm.checked_add(1) {
            Some(after) => self.pending.split_off(&(after, Box::from(&[][..]))),
            None => BTreeSet::new(),
        };
        let mut due: Vec<(i64, Box<[u8]>)> = std::mem::replace(&mut self.pending, later)
            .into_iter()
            .collect();
        let mut batch = WriteBatch::default();
        let start = *self.owned.start();
        for (i, next) in self.stored_next.iter_mut().enumerate() {
            if *next > wm {
                continue;
            }
            let group = start + i as u16;
            let mut first_left = i64::MAX;
            let id = self.id;
            self.backend.scan(id, group..=group, |_, k, _| {
                let Some(t) = time_of(k) else {
                    return Ok(true);
                };
                if t > wm {
                    first_left = t;
                    return Ok(false);
                }
                due.push((t, Box::from(&k[8..])));
                let mut full = vec![];
                db_key(group, id, k, &mut full);
                batch.delete(full);
                Ok(true)
            })?;
            *next = first_left;
        }
        self.backend.write(batch)?;
        due.sort();
        due.dedup();
        Ok(due)
    }

    /// Writes the timers waiting in memory to the database.
    fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        let start = *self.owned.start();
        self.pending_bytes = 0;
        for (t, key) in std::mem::take(&mut self.pending) {
            let group = group_of(&key, self.suffix, self.key_groups);
            let mut k = Vec::with_capacity(8 + key.len());
            k.extend_from_slice(&time_bytes(t));
            k.extend_from_slice(&key);
            db_key(group, self.id, &k, &mut self.scratch);
            batch.put(&self.scratch, []);
            if let Some(next) = group
                .checked_sub(start)
                .and_then(|i| self.stored_next.get_mut(i as usize))
            {
                *next = (*next).min(t);
            }
        }
        self.backend.write(batch)
    }

    /// Timers waiting in memory.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

impl StateTable for Timers {
    fn flush(&mut self) -> Result<()> {
        self.write_pending()
    }

    fn cached_bytes(&self) -> u64 {
        self.pending_bytes as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_time_order_from_memory_and_from_the_database() {
        let dir = std::env::temp_dir().join(format!("vigil-timers-{}", std::process::id()));
        let backend = Arc::new(KeyedBackend::new(dir, true));
        let mut t =
            Timers::new(3, 8, 0..=7, backend.clone(), CacheBudget::new(1 << 20)).expect("timers");
        t.register(30, b"c").expect("register");
        t.register(-5, b"a").expect("register");
        t.flush().expect("flush");
        t.register(10, b"b").expect("register");
        t.register(10, b"b").expect("register");
        t.register(50, b"d").expect("register");
        let due = t.pop_due(30).expect("pop");
        let keys: Vec<(i64, &[u8])> = due.iter().map(|(t, k)| (*t, &k[..])).collect();
        assert_eq!(
            keys,
            vec![(-5, &b"a"[..]), (10, &b"b"[..]), (30, &b"c"[..])]
        );
        assert!(t.pop_due(49).expect("pop").is_empty());
        t.flush().expect("flush");
        // Restored: the stored timers are found again.
        let mut again =
            Timers::new(3, 8, 0..=7, backend, CacheBudget::new(1 << 20)).expect("timers");
        let due = again.pop_due(i64::MAX).expect("pop");
        assert_eq!(due.len(), 1);
        assert_eq!(&due[0].1[..], b"d");
    }
}
