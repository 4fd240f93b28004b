//! The RocksDB database of one operator instance's keyed state.
//!
//! Each instance of a keyed operator has a database of its own (as each
//! subtask has in Flink's RocksDB backend), so that it can checkpoint at its
//! barrier without waiting for the rest of the job: its tables flush what
//! changed, and a RocksDB checkpoint (a memtable flush and hard links to the
//! SST files) goes into the checkpoint's directory. Unchanged SST files are
//! shared with the previous checkpoint, so a checkpoint costs what changed.
//!
//! Keys are `key group (u16 BE) | table (u8) | the table's key`, so that the
//! state of a range of key groups is a range of keys: a restore at another
//! parallelism copies just the ranges an instance owns.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use rocksdb::{
    checkpoint::Checkpoint, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use crate::{EngineError, Result};

fn state_err(path: &Path, what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("{what} '{}': {e}", path.display()))
}

/// The store key of `key` in `table` and `key_group`.
pub(crate) fn db_key(key_group: u16, table: u8, key: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&key_group.to_be_bytes());
    out.push(table);
    out.extend_from_slice(key);
}

/// Options of every keyed-state database: small memtables (the write-back
/// cache in front of them is where hot state lives), LZ4, checksums checked
/// when files are opened so that a corrupt checkpoint fails on restore.
fn options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts.set_paranoid_checks(true);
    opts.set_write_buffer_size(8 << 20);
    opts.set_max_write_buffer_number(2);
    opts.set_max_open_files(256);
    // Most reads of a growing key space miss: a Bloom filter answers those
    // without reading a block, and one over each memtable's keys without a
    // search of its skip list (every read probes the memtables first).
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    opts.set_block_based_table_factory(&table);
    opts.set_memtable_whole_key_filtering(true);
    opts.set_memtable_prefix_bloom_ratio(0.1);
    opts
}

/// Opens the database at `path` with its default column family named, so
/// that `cf_handle` finds it and reads take RocksDB's batched MultiGet over
/// sorted keys (opened without it, the crate falls back to the unbatched
/// MultiGet, which copies and sorts every key again).
fn open(path: &Path) -> std::result::Result<DB, rocksdb::Error> {
    let default =
        rocksdb::ColumnFamilyDescriptor::new(rocksdb::DEFAULT_COLUMN_FAMILY_NAME, options());
    DB::open_cf_descriptors(&options(), path, [default])
}

/// Writes gathered in any order (a cache's map is not ordered) and handed to
/// RocksDB sorted by key: a memtable's skip list inserts keys in order from
/// where the previous one went, far cheaper than each at a random place.
#[derive(Debug, Default)]
pub struct SortedWrites {
    buf: Vec<u8>,
    /// Each write: where its key starts in `buf`, its key's and value's
    /// lengths (the value follows the key), and whether it is a put.
    entries: Vec<(usize, usize, usize, bool)>,
}

impl SortedWrites {
    /// Sets `key` to `head` followed by `value`.
    pub fn put_after(&mut self, key: &[u8], head: &[u8], value: &[u8]) {
        self.entries
            .push((self.buf.len(), key.len(), head.len() + value.len(), true));
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(value);
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.entries.push((self.buf.len(), key.len(), 0, false));
        self.buf.extend_from_slice(key);
    }

    /// The bytes gathered.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The writes as one RocksDB batch, in key order.
    fn into_batch(mut self) -> WriteBatch {
        let buf = &self.buf;
        self.entries
            .sort_unstable_by(|a, b| buf[a.0..a.0 + a.1].cmp(&buf[b.0..b.0 + b.1]));
        let mut batch = WriteBatch::default();
        for (at, k, v, put) in self.entries {
            let key = &buf[at..at + k];
            if put {
                batch.put(key, &buf[at + k..at + k + v]);
            } else {
                batch.delete(key);
            }
        }
        batch
    }
}

/// One instance's keyed-state database, opened when first needed: an
/// operator whose state fits its cache and that is never checkpointed never
/// opens one.
pub struct KeyedBackend {
    path: PathBuf,
    db: OnceLock<Arc<DB>>,
    /// Removed when the backend is dropped (a job without checkpoints keeps
    /// spilled state in a temporary directory).
    temporary: bool,
    /// The thread that applies writes behind the operator, started by the
    /// first [`KeyedBackend::write_behind`].
    behind: Mutex<Behind>,
}

/// A write applied on the backend's writer thread, and what to drop after it
/// (evicted values: freeing them is work taken off the operator as well).
struct Job {
    db: Arc<DB>,
    writes: SortedWrites,
    garbage: Box<dyn Send>,
    done: SyncSender<Result<()>>,
}

/// The writer thread and the write it was last handed (at most one is in
/// flight: the next waits for it, so evictions cannot run ahead of RocksDB).
#[derive(Default)]
struct Behind {
    jobs: Option<(SyncSender<Job>, JoinHandle<()>)>,
    pending: Option<Receiver<Result<()>>>,
}

impl Behind {
    /// Waits for the write in flight; its error, if it failed.
    fn settle(&mut self) -> Result<()> {
        match self.pending.take() {
            None => Ok(()),
            Some(done) => done.recv().unwrap_or_else(|_| {
                Err(EngineError::State(
                    "the keyed-state writer thread stopped".into(),
                ))
            }),
        }
    }

    /// The channel to the writer thread, started when first needed.
    fn jobs(&mut self, path: &Path) -> Result<&SyncSender<Job>> {
        let (tx, _) = match &mut self.jobs {
            Some(started) => started,
            none => none.insert(start_writer(path)?),
        };
        Ok(tx)
    }
}

/// Starts a writer thread: it applies each job's writes, then drops its
/// garbage, until its channel closes.
fn start_writer(path: &Path) -> Result<(SyncSender<Job>, JoinHandle<()>)> {
    let (tx, rx) = sync_channel::<Job>(1);
    let dir = path.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("vigil-state-writer".into())
        .spawn(move || {
            for job in rx {
                let result = write_to(&job.db, &dir, job.writes.into_batch());
                drop(job.garbage);
                let _ = job.done.send(result);
            }
        })
        .map_err(|e| state_err(path, "cannot start the state writer for", e))?;
    Ok((tx, thread))
}

/// Writes `batch` into `db` (no write-ahead log: a crash restores the last
/// checkpoint, never this working copy).
fn write_to(db: &DB, path: &Path, batch: WriteBatch) -> Result<()> {
    let mut wo = WriteOptions::default();
    wo.disable_wal(true);
    db.write_opt(batch, &wo)
        .map_err(|e| state_err(path, "cannot write state to", e))
}

impl std::fmt::Debug for KeyedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedBackend")
            .field("path", &self.path)
            .finish()
    }
}

impl KeyedBackend {
    /// A backend at `path` (created, emptied, when first written). With
    /// `temporary`, the directory goes when the backend does.
    pub fn new(path: PathBuf, temporary: bool) -> Self {
        Self {
            path,
            db: OnceLock::new(),
            temporary,
            behind: Mutex::default(),
        }
    }

    /// A backend over the database already at `path` (a restored one).
    pub fn restored(path: PathBuf) -> Result<Self> {
        let db = open(&path).map_err(|e| state_err(&path, "cannot open restored state in", e))?;
        let cell = OnceLock::new();
        let _ = cell.set(Arc::new(db));
        Ok(Self {
            path,
            db: cell,
            temporary: false,
            behind: Mutex::default(),
        })
    }

    /// Where its database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether its database is open (anything was ever written to it, or it
    /// was restored).
    pub fn is_open(&self) -> bool {
        self.db.get().is_some()
    }

    /// Waits for the write behind the operator, if one is in flight: every
    /// read and write of the database comes after it.
    fn settle(&self) -> Result<()> {
        self.behind()?.settle()
    }

    /// The writer thread's side, locked.
    fn behind(&self) -> Result<std::sync::MutexGuard<'_, Behind>> {
        self.behind
            .lock()
            .map_err(|_| EngineError::State("the keyed-state writer failed".into()))
    }

    /// The database if it is open, once the write behind is applied.
    fn opened(&self) -> Result<Option<&DB>> {
        self.settle()?;
        Ok(self.db.get().map(|db| &**db))
    }

    /// The database, opened (empty) if it was not, once the write behind
    /// is applied.
    fn db(&self) -> Result<&Arc<DB>> {
        self.settle()?;
        if let Some(db) = self.db.get() {
            return Ok(db);
        }
        if self.path.exists() {
            std::fs::remove_dir_all(&self.path)
                .map_err(|e| state_err(&self.path, "cannot clear", e))?;
        }
        std::fs::create_dir_all(&self.path)
            .map_err(|e| state_err(&self.path, "cannot create", e))?;
        let db = open(&self.path).map_err(|e| state_err(&self.path, "cannot open state in", e))?;
        if self.temporary {
            tracing::info!(dir = %self.path.display(), "keyed state exceeds the cache; spilling to RocksDB");
        }
        Ok(self.db.get_or_init(|| Arc::new(db)))
    }

    /// The value stored under `key` (a full store key), if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.opened()? {
            None => Ok(None),
            Some(db) => db
                .get(key)
                .map_err(|e| state_err(&self.path, "cannot read state from", e)),
        }
    }

    /// The values stored under `keys` (full store keys, sorted), in their
    /// order: one RocksDB MultiGet, which probes memtables, Bloom filters and
    /// blocks for the whole batch at once, far cheaper than a get a key.
    pub fn get_sorted(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let Some(db) = self.opened()? else {
            return Ok(vec![None; keys.len()]);
        };
        let err = |e| state_err(&self.path, "cannot read state from", e);
        let cf = db
            .cf_handle(rocksdb::DEFAULT_COLUMN_FAMILY_NAME)
            .ok_or_else(|| {
                state_err(
                    &self.path,
                    "no default column family in",
                    "opened without it",
                )
            })?;
        db.batched_multi_get_cf(cf, keys, true)
            .into_iter()
            .map(|r| r.map(|v| v.map(|v| v.to_vec())).map_err(err))
            .collect()
    }

    /// Writes `batch` (no write-ahead log: a crash restores the last
    /// checkpoint, never this working copy).
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        write_to(self.db()?, &self.path, batch)
    }

    /// Writes `writes`, sorted by key (see [`SortedWrites`]).
    pub fn write_sorted(&self, writes: SortedWrites) -> Result<()> {
        if writes.entries.is_empty() {
            return Ok(());
        }
        self.write(writes.into_batch())
    }

    /// Writes `writes` on the backend's writer thread and drops `garbage`
    /// there after, while the operator goes on: an eviction's write to
    /// RocksDB (sorting, the memtable's inserts) and the freeing of the
    /// evicted values use the other core. Every later read or write waits
    /// for it (see `settle`), so nothing reads around it; an error it meets
    /// is returned by the next.
    pub fn write_behind(&self, writes: SortedWrites, garbage: Box<dyn Send>) -> Result<()> {
        if writes.entries.is_empty() {
            // Nothing to write: the freeing alone is not worth a hand-over.
            drop(garbage);
            return Ok(());
        }
        let db = Arc::clone(self.db()?);
        let mut behind = self.behind()?;
        behind.settle()?;
        let (done, pending) = sync_channel(1);
        let job = Job {
            db,
            writes,
            garbage,
            done,
        };
        behind
            .jobs(&self.path)?
            .send(job)
            .map_err(|_| EngineError::State("the keyed-state writer thread stopped".into()))?;
        behind.pending = Some(pending);
        Ok(())
    }

    /// Visits the entries of `table` in `key_groups`, in key order, with the
    /// table's key (after the group and table bytes) and the value, while
    /// `f` returns true.
    pub fn scan(
        &self,
        table: u8,
        key_groups: RangeInclusive<u16>,
        mut f: impl FnMut(u16, &[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let Some(db) = self.opened()? else {
            return Ok(());
        };
        for group in key_groups {
            let mut prefix = Vec::with_capacity(3);
            db_key(group, table, &[], &mut prefix);
            let iter = db.iterator(IteratorMode::From(&prefix, Direction::Forward));
            for item in iter {
                let (k, v) =
                    item.map_err(|e| state_err(&self.path, "cannot read state from", e))?;
                if !k.starts_with(&prefix) {
                    break;
                }
                if !f(group, &k[3..], &v)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Takes a RocksDB checkpoint into `dir` (which must not exist). Returns
    /// false, writing nothing, when the instance never stored anything.
    pub fn checkpoint_to(&self, dir: &Path) -> Result<bool> {
        let Some(db) = self.opened()? else {
            return Ok(false);
        };
        let cp = Checkpoint::new(db).map_err(|e| state_err(&self.path, "cannot checkpoint", e))?;
        cp.create_checkpoint(dir)
            .map_err(|e| state_err(dir, "cannot create checkpoint", e))?;
        Ok(true)
    }

    /// The bytes of live data in its files (RocksDB's estimate, without
    /// the overwritten and deleted entries compaction has yet to drop).
    pub fn live_bytes(&self) -> u64 {
        // A gauge: a write still in flight is counted next time.
        self.db
            .get()
            .and_then(|db| {
                db.property_int_value("rocksdb.estimate-live-data-size")
                    .ok()
                    .flatten()
            })
            .unwrap_or(0)
    }
}

impl Drop for KeyedBackend {
    fn drop(&mut self) {
        // The writer thread ends with its channel; its last job holds the
        // database until it is done.
        if let Ok(behind) = self.behind.get_mut() {
            let _ = behind.settle();
            if let Some((jobs, thread)) = behind.jobs.take() {
                drop(jobs);
                let _ = thread.join();
            }
        }
        if self.temporary {
            drop(self.db.take());
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A checkpointed instance database: where it is and the key groups its
/// instance owned.
#[derive(Debug, Clone)]
pub struct Part {
    /// Its directory in the checkpoint.
    pub dir: PathBuf,
    /// The key groups of the instance that wrote it.
    pub key_groups: RangeInclusive<u16>,
}

/// The directory name of an instance's database in a checkpoint.
pub fn part_name(uid: u32, key_groups: &RangeInclusive<u16>) -> String {
    format!("{uid:08x}-{}-{}", key_groups.start(), key_groups.end())
}

/// Parses [`part_name`].
pub fn parse_part_name(name: &str) -> Option<(u32, RangeInclusive<u16>)> {
    let mut it = name.split('-');
    let uid = u32::from_str_radix(it.next()?, 16).ok()?;
    let lo = it.next()?.parse().ok()?;
    let hi = it.next()?.parse().ok()?;
    (it.next().is_none() && lo <= hi).then_some((uid, lo..=hi))
}

/// Builds the working database of an instance owning `mine` at `target`
/// from the checkpointed `parts` of its operator: when one part is exactly
/// its key groups (same parallelism), its files are linked (SST files are
/// immutable) and nothing is read; otherwise (rescaling) the entries of the
/// key groups it owns are copied over from each part, range by range, without
/// holding them in memory.
pub fn assemble(target: &Path, parts: &[Part], mine: &RangeInclusive<u16>) -> Result<KeyedBackend> {
    if target.exists() {
        std::fs::remove_dir_all(target).map_err(|e| state_err(target, "cannot clear", e))?;
    }
    if let [only] = parts {
        if only.key_groups == *mine {
            link_dir(&only.dir, target)?;
            return KeyedBackend::restored(target.to_path_buf());
        }
    }
    std::fs::create_dir_all(target).map_err(|e| state_err(target, "cannot create", e))?;
    let backend = KeyedBackend::restored(target.to_path_buf())?;
    for part in parts {
        let lo = (*part.key_groups.start()).max(*mine.start());
        let hi = (*part.key_groups.end()).min(*mine.end());
        if lo > hi {
            continue;
        }
        let src = DB::open_for_read_only(&options(), &part.dir, false)
            .map_err(|e| state_err(&part.dir, "cannot open checkpointed state in", e))?;
        let start = lo.to_be_bytes();
        let mut batch = WriteBatch::default();
        for item in src.iterator(IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item.map_err(|e| state_err(&part.dir, "cannot read state from", e))?;
            if k.len() < 3 || u16::from_be_bytes([k[0], k[1]]) > hi {
                break;
            }
            batch.put(&k, &v);
            if batch.size_in_bytes() > 4 << 20 {
                backend.write(std::mem::take(&mut batch))?;
            }
        }
        backend.write(batch)?;
    }
    Ok(backend)
}

/// Copies a checkpointed database directory: SST files as hard links where
/// the file system allows (they are immutable), the rest (which RocksDB
/// rewrites) as copies.
pub(crate) fn link_dir(src: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| state_err(to, "cannot create", e))?;
    for entry in std::fs::read_dir(src).map_err(|e| state_err(src, "cannot list", e))? {
        let entry = entry.map_err(|e| state_err(src, "cannot list", e))?;
        let from = entry.path();
        let dest = to.join(entry.file_name());
        let is_sst = from.extension().is_some_and(|e| e == "sst");
        if !(is_sst && std::fs::hard_link(&from, &dest).is_ok()) {
            std::fs::copy(&from, &dest).map_err(|e| state_err(&from, "cannot copy", e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-keyed-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn put(b: &KeyedBackend, group: u16, key: &str) {
        let mut k = vec![];
        db_key(group, 1, key.as_bytes(), &mut k);
        let mut batch = WriteBatch::default();
        batch.put(&k, key.as_bytes());
        b.write(batch).expect("write");
    }

    fn keys(b: &KeyedBackend, groups: RangeInclusive<u16>) -> Vec<String> {
        let mut out = vec![];
        b.scan(1, groups, |_, k, _| {
            out.push(String::from_utf8_lossy(k).to_string());
            Ok(true)
        })
        .expect("scan");
        out
    }

    #[test]
    fn rescaling_hands_each_instance_only_its_key_groups() {
        let root = temp("rescale");
        // Two instances of 0..=9, checkpointed.
        let a = KeyedBackend::new(root.join("a"), false);
        let b = KeyedBackend::new(root.join("b"), false);
        for g in 0..5u16 {
            put(&a, g, &format!("a{g}"));
        }
        for g in 5..10u16 {
            put(&b, g, &format!("b{g}"));
        }
        let parts = vec![
            Part {
                dir: root.join("chk").join(part_name(7, &(0..=4))),
                key_groups: 0..=4,
            },
            Part {
                dir: root.join("chk").join(part_name(7, &(5..=9))),
                key_groups: 5..=9,
            },
        ];
        std::fs::create_dir_all(root.join("chk")).expect("dir");
        assert!(a.checkpoint_to(&parts[0].dir).expect("checkpoint"));
        assert!(b.checkpoint_to(&parts[1].dir).expect("checkpoint"));
        // Three instances now: the middle one takes from both.
        let mid = assemble(&root.join("mid"), &parts, &(3..=6)).expect("assemble");
        assert_eq!(keys(&mid, 0..=9), vec!["a3", "a4", "b5", "b6"]);
        // Same parallelism: linked, all there.
        let same = assemble(&root.join("same"), &parts[..1], &(0..=4)).expect("assemble");
        assert_eq!(keys(&same, 0..=9).len(), 5);
        assert_eq!(parse_part_name(&part_name(7, &(5..=9))), Some((7, 5..=9)));
        assert!(
            a.live_bytes() > 0,
            "flushed by its checkpoint: {}",
            a.live_bytes()
        );
        let never = KeyedBackend::new(root.join("never"), false);
        assert!(!never.checkpoint_to(&root.join("x")).expect("checkpoint"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
