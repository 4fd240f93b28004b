//! A declared keyed table: a write-back cache in front of the instance's
//! RocksDB database.
//!
//! Reads and writes go to the cache; a key not cached is read from the
//! database (and decoded) on first use. When the cache holds more than its
//! share of `state.backend.cache-size`, the entries not used since the last
//! sweep are evicted (CLOCK), written to the database first if they changed.
//! The table remembers the keys that changed since the last checkpoint, so a
//! checkpoint writes just those: O(changed), not O(state).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;
use smallvec::SmallVec;

use super::backend::{db_key, KeyedBackend, SortedWrites};
use crate::state::key_group_of;
use crate::Result;

/// How a table's values become bytes and back.
pub trait StateCodec<V>: Send {
    /// Appends the bytes of `value` to `out`.
    fn encode(&mut self, value: &mut V, out: &mut Vec<u8>) -> Result<()>;
    /// The value of `key` stored as `bytes`.
    fn decode(&mut self, key: &[u8], bytes: &[u8]) -> Result<V>;
    /// Its approximate size in memory, for the cache's budget.
    fn size(&self, value: &V) -> usize;
    /// The values of several entries (key, stored bytes), in order: what a
    /// prefetch read, decoded at once where a codec can do better than one
    /// at a time (the default).
    fn decode_all(&mut self, entries: &[(&[u8], &[u8])]) -> Result<Vec<V>> {
        entries.iter().map(|(k, b)| self.decode(k, b)).collect()
    }
    /// Appends the bytes of each of `values` to `out`, pushing where each
    /// ends to `ends`: what an eviction or a checkpoint writes, encoded at
    /// once where a codec can do better than one at a time (the default).
    fn encode_all(
        &mut self,
        values: &mut [V],
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        for v in values {
            self.encode(v, out)?;
            ends.push(out.len());
        }
        Ok(())
    }
}

/// The cache budget shared by the tables of a job: each table gets an equal
/// share of `state.backend.cache-size`.
#[derive(Debug)]
pub struct CacheBudget {
    total: usize,
    tables: AtomicUsize,
}

impl CacheBudget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            tables: AtomicUsize::new(0),
        })
    }

    /// Counts one more table sharing the budget.
    pub(super) fn join(&self) {
        self.tables.fetch_add(1, Ordering::Relaxed);
    }

    /// A table's share, in bytes.
    pub(super) fn share(&self) -> usize {
        self.total / self.tables.load(Ordering::Relaxed).max(1)
    }
}

/// What a table flushes and reports, whatever its values are (for the
/// runtime, which checkpoints every declared table of an operator).
pub trait StateTable: Send {
    /// Writes what changed since the last flush to the database.
    fn flush(&mut self) -> Result<()>;
    /// The bytes its cache holds (approximate).
    fn cached_bytes(&self) -> u64;
}

struct Slot<V> {
    /// `None`: deleted, and the database may still hold it.
    value: Option<V>,
    dirty: bool,
    /// Used since the last sweep.
    hot: bool,
    /// Processing time of the last write (for the TTL).
    touched: u64,
    cost: usize,
}

/// What a lookup found in the cache.
enum Found {
    /// A slot (at this position), holding a value or not (deleted).
    Cached(usize, bool),
    /// A value past its TTL.
    Expired,
    Missing,
}

/// Whether an entry written at `touched` is past `ttl` at `now`.
fn expired(ttl: Option<u64>, touched: u64, now: u64) -> bool {
    ttl.is_some_and(|ttl| now.saturating_sub(touched) >= ttl)
}

/// Marks `slot` (of `key`) used and changed at `now`; a slot turning dirty
/// is remembered in `dirty` (when the table is checkpointed).
fn touch<V>(slot: &mut Slot<V>, key: &[u8], now: u64, dirty: Option<&mut Vec<Box<[u8]>>>) {
    slot.hot = true;
    slot.touched = now;
    if !slot.dirty {
        slot.dirty = true;
        if let Some(d) = dirty {
            d.push(Box::from(key));
        }
    }
}

/// A key in the cache's map: held inline up to 24 bytes (most keys), so
/// that a lookup compares bytes already in the map's bucket rather than
/// following a pointer to a heap allocation of its own, and a new entry
/// allocates nothing for its key.
type SlotKey = SmallVec<[u8; 24]>;

/// Per-entry overhead of the cache's map, in bytes.
const SLOT_OVERHEAD: usize = 64;

/// A keyed table of values `V` (see the module documentation).
pub struct KeyedTable<V, C> {
    id: u8,
    key_groups: u16,
    /// The key groups of the instance (what [`KeyedTable::keys`] reads).
    owned: std::ops::RangeInclusive<u16>,
    backend: Arc<KeyedBackend>,
    codec: C,
    /// The cached entries, in a dense vector with a hash index over it
    /// (each entry keeps its hash): an eviction sweep walks the vector in
    /// order and rebuilds the index once, where an open-addressing map
    /// would leave a tombstone per evicted entry and rehash on later
    /// inserts; and a slot found once is reached again by its position.
    slots: IndexMap<SlotKey, Slot<V>, foldhash::fast::RandomState>,
    /// Keys that turned dirty since the last flush (only when checkpointed).
    dirty: Vec<Box<[u8]>>,
    checkpointed: bool,
    bytes: usize,
    budget: Arc<CacheBudget>,
    ttl_ms: Option<u64>,
    /// Trailing bytes of a key that do not decide its key group.
    suffix: usize,
    scratch: Vec<u8>,
}

/// The value bytes of a stored entry and its time of last write, unless
/// there is none or it is past `ttl` at `now` (with a TTL, an entry starts
/// with that time).
fn live_body(ttl: Option<u64>, stored: Option<&[u8]>, now: u64) -> Option<(&[u8], u64)> {
    let bytes = stored?;
    let (touched, body) = match ttl {
        Some(_) if bytes.len() >= 8 => {
            let mut t = [0u8; 8];
            t.copy_from_slice(&bytes[..8]);
            (u64::from_be_bytes(t), &bytes[8..])
        }
        _ => (now, bytes),
    };
    (!expired(ttl, touched, now)).then_some((body, touched))
}

/// The key group of `key` without its last `suffix` bytes.
pub(super) fn group_of(key: &[u8], suffix: usize, groups: u16) -> u16 {
    key_group_of(&key[..key.len().saturating_sub(suffix)], groups)
}

/// How a table's keys become keys of the database (key group, table id,
/// key), a copy apart from the table so that it can be used while the
/// table's map is borrowed.
#[derive(Clone, Copy)]
struct StoreKeys {
    id: u8,
    key_groups: u16,
    /// Trailing bytes of a key that do not decide its key group.
    suffix: usize,
}

impl StoreKeys {
    /// The store key of `key`, in `out` (replacing what it held).
    fn write(&self, key: &[u8], out: &mut Vec<u8>) {
        db_key(
            group_of(key, self.suffix, self.key_groups),
            self.id,
            key,
            out,
        );
    }
}

/// Changed entries on their way to the database: values taken out of their
/// slots to be encoded together ([`StateCodec::encode_all`]), deletions put
/// in the batch at once.
struct Outgoing<V> {
    keys: StoreKeys,
    /// The store keys of `values`, one after another, each ending where
    /// `key_ends` says.
    store_keys: Vec<u8>,
    key_ends: Vec<usize>,
    touched: Vec<u64>,
    values: Vec<V>,
    scratch: Vec<u8>,
}

impl<V> Outgoing<V> {
    /// Room for about `n` entries (growing a vector entry by entry copies
    /// it and faults in fresh pages each time).
    fn new(keys: StoreKeys, n: usize) -> Self {
        Self {
            keys,
            store_keys: Vec::with_capacity(n * 16),
            key_ends: Vec::with_capacity(n),
            touched: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
            scratch: vec![],
        }
    }

    /// Stages `slot` of `key` (a deletion goes into `batch`, a value is
    /// taken out of the slot); the slot is clean afterwards.
    fn stage(&mut self, key: &[u8], slot: &mut Slot<V>, batch: &mut SortedWrites) {
        self.keys.write(key, &mut self.scratch);
        match slot.value.take() {
            None => batch.delete(&self.scratch),
            Some(v) => {
                self.store_keys.extend_from_slice(&self.scratch);
                self.key_ends.push(self.store_keys.len());
                self.touched.push(slot.touched);
                self.values.push(v);
            }
        }
        slot.dirty = false;
    }

    /// Encodes the staged values into `batch` (each after its time of last
    /// write, with a TTL) and hands the values back.
    fn encode<C: StateCodec<V>>(
        mut self,
        codec: &mut C,
        ttl: bool,
        batch: &mut SortedWrites,
    ) -> Result<Vec<V>> {
        if self.values.is_empty() {
            return Ok(self.values);
        }
        let mut bytes = Vec::with_capacity(self.values.len() * 32);
        let mut ends = Vec::with_capacity(self.values.len());
        codec.encode_all(&mut self.values, &mut bytes, &mut ends)?;
        let (mut key_at, mut value_at) = (0, 0);
        for ((key_end, end), touched) in self.key_ends.iter().zip(&ends).zip(&self.touched) {
            let head = if ttl {
                &touched.to_be_bytes()[..]
            } else {
                &[][..]
            };
            batch.put_after(
                &self.store_keys[key_at..*key_end],
                head,
                &bytes[value_at..*end],
            );
            (key_at, value_at) = (*key_end, *end);
        }
        Ok(self.values)
    }
}

impl<V: Send + 'static, C: StateCodec<V>> KeyedTable<V, C> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        id: u8,
        key_groups: u16,
        owned: std::ops::RangeInclusive<u16>,
        backend: Arc<KeyedBackend>,
        codec: C,
        budget: Arc<CacheBudget>,
        checkpointed: bool,
        ttl_ms: Option<u64>,
    ) -> Self {
        budget.join();
        Self {
            id,
            key_groups,
            owned,
            backend,
            codec,
            slots: IndexMap::default(),
            dirty: vec![],
            checkpointed,
            bytes: 0,
            budget,
            ttl_ms,
            suffix: 0,
            scratch: vec![],
        }
    }

    /// The same table, its keys' last `suffix` bytes left out of their key
    /// group (keys that add, say, a window to the operator's key stay in
    /// the key group of that key).
    pub fn grouped_without_suffix(mut self, suffix: usize) -> Self {
        self.suffix = suffix;
        self
    }

    fn store_key(&mut self, key: &[u8]) -> Vec<u8> {
        let mut k = std::mem::take(&mut self.scratch);
        self.store_keys().write(key, &mut k);
        k
    }

    fn store_keys(&self) -> StoreKeys {
        StoreKeys {
            id: self.id,
            key_groups: self.key_groups,
            suffix: self.suffix,
        }
    }

    /// Reads `key` from the database into the cache. Returns whether it holds
    /// a value (an expired one does not).
    fn load(&mut self, key: &[u8], now: u64) -> Result<bool> {
        let sk = self.store_key(key);
        let stored = self.backend.get(&sk)?;
        self.scratch = sk;
        self.cache_stored(key, stored.as_deref(), now)
    }

    /// What the database holds for `key` (`stored`) as a live value, with
    /// its time of last write (`None`: nothing, or expired).
    fn live_value(
        &mut self,
        stored: Option<&[u8]>,
        key: &[u8],
        now: u64,
    ) -> Result<Option<(V, u64)>> {
        match live_body(self.ttl_ms, stored, now) {
            Some((body, touched)) => Ok(Some((self.codec.decode(key, body)?, touched))),
            None => Ok(None),
        }
    }

    /// Caches what the database holds for `key` (`stored`); whether it is a
    /// live value (an expired one is not).
    fn cache_stored(&mut self, key: &[u8], stored: Option<&[u8]>, now: u64) -> Result<bool> {
        let Some((value, touched)) = self.live_value(stored, key, now)? else {
            return Ok(false);
        };
        let cost = key.len() + SLOT_OVERHEAD + self.codec.size(&value);
        self.make_room(cost)?;
        self.cache_read(key, Some(value), touched, cost);
        Ok(true)
    }

    /// Caches what was read for `key` (`None`: known absent), clean and
    /// just used, in room already made for its `cost`.
    fn cache_read(&mut self, key: &[u8], value: Option<V>, touched: u64, cost: usize) {
        self.bytes += cost;
        self.slots.insert(
            SlotKey::from_slice(key),
            Slot {
                value,
                dirty: false,
                hot: true,
                touched,
                cost,
            },
        );
    }

    /// Reads the keys of `keys` not cached from the database into the cache
    /// in one batch (an operator calls it with a batch's keys before it
    /// works through the rows, so that state that spilled comes back in one
    /// MultiGet rather than a read a row). A key the database does not hold
    /// is cached as known absent, so that the row's own lookup does not read
    /// it again.
    pub fn prefetch<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        now: u64,
    ) -> Result<()> {
        if !self.backend.is_open() {
            return Ok(());
        }
        // The store keys of the keys not cached, one after another in one
        // buffer (`wanted` holds where each ends), rather than a vector each.
        let mut buffer = std::mem::take(&mut self.scratch);
        buffer.clear();
        let mut wanted: Vec<(usize, usize, &[u8])> = vec![];
        let store = self.store_keys();
        let mut one = vec![];
        for k in keys {
            if !self.slots.contains_key(k) {
                store.write(k, &mut one);
                let start = buffer.len();
                buffer.extend_from_slice(&one);
                wanted.push((start, buffer.len(), k));
            }
        }
        if wanted.is_empty() {
            self.scratch = buffer;
            return Ok(());
        }
        let at = |w: &(usize, usize, &[u8])| &buffer[w.0..w.1];
        wanted.sort_unstable_by(|a, b| at(a).cmp(at(b)));
        wanted.dedup_by(|a, b| at(a) == at(b));
        let store_keys: Vec<&[u8]> = wanted.iter().map(at).collect();
        let keys: Vec<&[u8]> = wanted.iter().map(|w| w.2).collect();
        let stored = self.backend.get_sorted(&store_keys);
        drop(store_keys);
        self.scratch = buffer;
        let stored = stored?;
        // All live values decoded together (a codec may do a batch at once),
        // then room made once for all of them, so that a sweep for one
        // cannot evict another just read.
        let bodies: Vec<Option<(&[u8], u64)>> = stored
            .iter()
            .map(|v| live_body(self.ttl_ms, v.as_deref(), now))
            .collect();
        let live: Vec<(&[u8], &[u8])> = keys
            .iter()
            .zip(&bodies)
            .filter_map(|(k, b)| b.map(|(body, _)| (*k, body)))
            .collect();
        let mut values = self.codec.decode_all(&live)?.into_iter();
        let mut loaded = Vec::with_capacity(keys.len());
        let mut incoming = 0;
        for (key, body) in keys.iter().zip(&bodies) {
            let (value, touched) = match body {
                Some((_, touched)) => {
                    let v = values.next().ok_or_else(|| {
                        crate::EngineError::State("a codec decoded fewer values than asked".into())
                    })?;
                    (Some(v), *touched)
                }
                // Known absent (a slot without a value, not to be written),
                // so that the row's own lookup does not read it again.
                None => (None, now),
            };
            let cost = key.len() + SLOT_OVERHEAD + value.as_ref().map_or(0, |v| self.codec.size(v));
            incoming += cost;
            loaded.push((*key, value, touched, cost));
        }
        self.make_room(incoming)?;
        for (key, value, touched, cost) in loaded {
            self.cache_read(key, value, touched, cost);
        }
        Ok(())
    }

    fn mark(&mut self, key: &[u8], now: u64) {
        if let Some(slot) = self.slots.get_mut(key) {
            let dirty = self.checkpointed.then_some(&mut self.dirty);
            touch(slot, key, now, dirty);
        }
    }

    /// Looks `key` up in the cache; a live value found is marked changed.
    fn probe_mut(&mut self, key: &[u8], now: u64) -> Found {
        let ttl = self.ttl_ms;
        match self.slots.get_full_mut(key) {
            Some((_, _, slot)) if slot.value.is_some() && expired(ttl, slot.touched, now) => {
                Found::Expired
            }
            Some((at, _, slot)) => {
                if slot.value.is_some() {
                    let dirty = self.checkpointed.then_some(&mut self.dirty);
                    touch(slot, key, now, dirty);
                }
                Found::Cached(at, slot.value.is_some())
            }
            None => Found::Missing,
        }
    }

    /// The value of `key` to change (it is written back at the next
    /// checkpoint or eviction); when there is none, the one `make` gives (if
    /// any) is inserted.
    pub fn get_mut_or(
        &mut self,
        key: &[u8],
        now: u64,
        make: impl FnOnce() -> Result<Option<V>>,
    ) -> Result<Option<&mut V>> {
        let found = self.probe_mut(key, now);
        let live = match found {
            // Reached again by its position: nothing moved it since.
            Found::Cached(at, true) => {
                return Ok(self
                    .slots
                    .get_index_mut(at)
                    .and_then(|(_, s)| s.value.as_mut()));
            }
            Found::Cached(_, live) => live,
            Found::Expired => {
                // Gone, as if never there.
                self.remove(key);
                false
            }
            Found::Missing => {
                let loaded = self.load(key, now)?;
                if loaded {
                    self.mark(key, now);
                }
                loaded
            }
        };
        if !live {
            let Some(v) = make()? else {
                return Ok(None);
            };
            if let Found::Cached(at, false) = found {
                // A known-absent slot: filled where it is.
                let cost = key.len() + SLOT_OVERHEAD + self.codec.size(&v);
                return self.fill(at, key, v, cost, now).map(Some);
            }
            return self.insert(key, v, now).map(Some);
        }
        Ok(self.slots.get_mut(key).and_then(|s| s.value.as_mut()))
    }

    /// The value of `key` to change (it is written back at the next
    /// checkpoint or eviction), if there is one.
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Result<Option<&mut V>> {
        self.get_mut_or(key, now, || Ok(None))
    }

    /// The value of `key` to read, if there is one (not marked changed).
    pub fn get(&mut self, key: &[u8], now: u64) -> Result<Option<&V>> {
        let ttl = self.ttl_ms;
        let found = match self.slots.get_full_mut(key) {
            Some((_, _, slot)) if slot.value.is_some() && expired(ttl, slot.touched, now) => {
                Found::Expired
            }
            Some((at, _, slot)) => {
                slot.hot = true;
                Found::Cached(at, slot.value.is_some())
            }
            None => Found::Missing,
        };
        match found {
            Found::Cached(at, true) => {
                return Ok(self.slots.get_index(at).and_then(|(_, s)| s.value.as_ref()));
            }
            Found::Cached(_, false) | Found::Expired => return Ok(None),
            Found::Missing if !self.load(key, now)? => return Ok(None),
            _ => {}
        }
        Ok(self.slots.get(key).and_then(|s| s.value.as_ref()))
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: &[u8], value: V, now: u64) -> Result<&mut V> {
        let cost = key.len() + SLOT_OVERHEAD + self.codec.size(&value);
        let at = match self.slots.get_index_of(key) {
            Some(at) => at,
            None => {
                self.make_room(cost)?;
                let empty = Slot {
                    value: None,
                    dirty: false,
                    hot: true,
                    touched: now,
                    cost: 0,
                };
                self.slots.insert_full(SlotKey::from_slice(key), empty).0
            }
        };
        self.fill(at, key, value, cost, now)
    }

    /// Puts `value` (costing `cost`) into the slot of `key` at position `at`.
    fn fill(&mut self, at: usize, key: &[u8], value: V, cost: usize, now: u64) -> Result<&mut V> {
        let Some((_, slot)) = self.slots.get_index_mut(at) else {
            return Err(crate::EngineError::State(
                "a cached slot moved while it was written".into(),
            ));
        };
        self.bytes = self.bytes.saturating_sub(slot.cost) + cost;
        touch(slot, key, now, self.checkpointed.then_some(&mut self.dirty));
        slot.cost = cost;
        Ok(slot.value.insert(value))
    }

    /// Takes the value of `key` out of the table, if there is one: the
    /// table holds nothing for it until it is inserted again (an operator
    /// works on a value it took, then puts it back with
    /// [`KeyedTable::insert`] or lets it go with [`KeyedTable::remove`]; the
    /// slot stays for either, so that neither allocates).
    pub fn take(&mut self, key: &[u8], now: u64) -> Result<Option<V>> {
        if self.get_mut(key, now)?.is_none() {
            return Ok(None);
        }
        let Some(slot) = self.slots.get_mut(key) else {
            return Ok(None);
        };
        let value = slot.value.take();
        let left = key.len() + SLOT_OVERHEAD;
        self.bytes = self.bytes.saturating_sub(slot.cost.saturating_sub(left));
        slot.cost = left;
        Ok(value)
    }

    /// Every key holding a value, cached or stored (it writes what changed
    /// first, then reads the instance's key groups of the table: for a
    /// rare full visit, such as the end of the input).
    pub fn keys(&mut self) -> Result<Vec<Box<[u8]>>> {
        if !self.backend.is_open() {
            return Ok(self
                .slots
                .iter()
                .filter(|(_, s)| s.value.is_some())
                .map(|(k, _)| Box::from(&k[..]))
                .collect());
        }
        self.write_changed()?;
        let mut keys = vec![];
        self.backend.scan(self.id, self.owned.clone(), |_, k, _| {
            keys.push(Box::from(k));
            Ok(true)
        })?;
        Ok(keys)
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &[u8]) {
        if !self.backend.is_open() {
            // Nothing of it can be in the database: forget it.
            if let Some(old) = self.slots.swap_remove(key) {
                self.bytes = self.bytes.saturating_sub(old.cost);
            }
            return;
        }
        let now = self.slots.get(key).map_or(0, |s| s.touched);
        if !self.slots.contains_key(key) {
            self.slots.insert(
                SlotKey::from_slice(key),
                Slot {
                    value: None,
                    dirty: false,
                    hot: false,
                    touched: now,
                    cost: key.len() + SLOT_OVERHEAD,
                },
            );
            self.bytes += key.len() + SLOT_OVERHEAD;
        }
        self.mark(key, now);
        if let Some(slot) = self.slots.get_mut(key) {
            slot.value = None;
        }
    }

    /// Drops the cached entries not written for the TTL (as if never there;
    /// expired entries in the database are skipped when read).
    pub fn expire(&mut self, now: u64) {
        let Some(ttl) = self.ttl_ms else {
            return;
        };
        let mut gone = vec![];
        for (k, s) in &self.slots {
            if s.value.is_some() && now.saturating_sub(s.touched) >= ttl {
                gone.push(k.clone());
            }
        }
        for k in gone {
            self.remove(&k);
        }
    }

    /// Evicts entries until `incoming` more bytes fit the table's share, as a
    /// CLOCK: entries not used since the hand last passed go first (their hot
    /// bit is cleared as it passes), used ones only if that is not enough.
    /// One pass to weigh, one to evict (changed ones written in one batch).
    fn make_room(&mut self, incoming: usize) -> Result<()> {
        let share = self.budget.share();
        if self.bytes + incoming <= share {
            return Ok(());
        }
        // Aim below the share, so that sweeps are not one per entry.
        let target = (share - share.min(incoming)) / 4 * 3;
        let (mut total, mut cold) = (0usize, 0usize);
        for (k, s) in self.slots.iter_mut() {
            // Only a value used since the last sweep can have grown.
            if let (Some(v), true) = (&s.value, s.hot) {
                s.cost = k.len() + SLOT_OVERHEAD + self.codec.size(v);
            }
            total += s.cost;
            if !s.hot {
                cold += s.cost;
            }
        }
        let to_free = total.saturating_sub(target);
        let hot_too = cold < to_free;
        // About as many entries as their share of the bytes.
        let leaving = (self.slots.len() as u128 * to_free as u128 / total.max(1) as u128) as usize;
        let mut batch = SortedWrites::default();
        let mut out = Outgoing::new(self.store_keys(), leaving + leaving / 8);
        let mut freed = 0usize;
        let mut evicted: Vec<(SlotKey, Slot<V>)> = Vec::with_capacity(leaving + leaving / 8);
        evicted.extend(self.slots.extract_if(.., |k, s| {
            if freed >= to_free || (s.hot && !hot_too) {
                s.hot = false;
                return false;
            }
            if s.dirty {
                out.stage(k, s, &mut batch);
            }
            freed += s.cost;
            true
        }));
        self.bytes = total.saturating_sub(freed);
        // On an error the evicted changes are lost with the job, which
        // restarts from its last checkpoint.
        let written = out.encode(&mut self.codec, self.ttl_ms.is_some(), &mut batch)?;
        // Written and freed on the backend's writer thread.
        self.backend
            .write_behind(batch, Box::new((evicted, written)))
    }

    /// Writes every changed entry to the database.
    fn write_changed(&mut self) -> Result<()> {
        let mut batch = SortedWrites::default();
        let dirty: Vec<Box<[u8]>> = if self.checkpointed {
            std::mem::take(&mut self.dirty)
        } else {
            self.slots
                .iter()
                .filter(|(_, s)| s.dirty)
                .map(|(k, _)| Box::from(&k[..]))
                .collect()
        };
        // In chunks, each encoded at once, its values put back after.
        for chunk in dirty.chunks(4096) {
            let mut out = Outgoing::new(self.store_keys(), chunk.len());
            let mut taken = vec![];
            for k in chunk {
                if let Some(slot) = self.slots.get_mut(&k[..]).filter(|s| s.dirty) {
                    if slot.value.is_some() {
                        taken.push(k);
                    }
                    out.stage(k, slot, &mut batch);
                }
            }
            let values = out.encode(&mut self.codec, self.ttl_ms.is_some(), &mut batch)?;
            for (k, v) in taken.into_iter().zip(values) {
                if let Some(slot) = self.slots.get_mut(&k[..]) {
                    slot.value = Some(v);
                }
            }
            if batch.bytes() > 8 << 20 {
                self.backend.write_sorted(std::mem::take(&mut batch))?;
            }
        }
        self.backend.write_sorted(batch)?;
        // Tombstones have reached the database: they can go.
        self.slots.retain(|_, s| s.value.is_some() || s.dirty);
        Ok(())
    }

    /// Entries cached now.
    pub fn cached(&self) -> usize {
        self.slots.len()
    }
}

impl<V: Send + 'static, C: StateCodec<V>> StateTable for KeyedTable<V, C> {
    fn flush(&mut self) -> Result<()> {
        self.write_changed()
    }

    fn cached_bytes(&self) -> u64 {
        self.bytes as u64
    }
}

#[cfg(test)]
mod tests;
