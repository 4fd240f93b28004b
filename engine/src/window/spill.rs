//! Window state beyond the operator's cache (`state.backend.cache-size`).
//!
//! Open windows live in memory, where updates are cheapest. When their state
//! grows past the budget, the operator spills: each window's partial
//! aggregates (group keys and accumulator states, the same batch a checkpoint
//! stores) are split by key group and written to a local RocksDB database,
//! and the window starts again empty in memory. Partial aggregates merge
//! (every DataFusion accumulator has `merge_batch`), so when the window fires
//! its key groups are finished one at a time — the in-memory part plus that
//! group's spilled parts — and the result equals the in-memory one while at
//! most one key group's state is held at once.
//!
//! Spilled parts are immutable: a checkpoint stores each one once, under its
//! window and sequence number, and a restore puts them back into the spill
//! database instead of memory. The database itself is scratch space (under
//! `io.tmp.dirs` or the system's temporary directory), removed on drop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::record_batch::RecordBatch;
use rocksdb::{Options, WriteBatch, WriteOptions, DB};

use crate::message::EventTime;
use crate::metrics::Counter;
use crate::state::arrow_state::{decode_batch, encode_batch};
use crate::state::StateWriter;
use crate::{EngineError, Result};

/// When and where a window operator spills.
#[derive(Debug, Clone)]
pub struct SpillConfig {
    /// In-memory state, in bytes, above which the operator spills.
    pub budget: usize,
    /// The parent of the spill database's directory.
    pub dir: PathBuf,
    /// The job's key groups (`pipeline.max-parallelism`).
    pub key_groups: u16,
}

/// The in-memory budget of a window operator when `state.backend.cache-size`
/// is not set.
pub const DEFAULT_CACHE_SIZE: usize = 1 << 30;

impl SpillConfig {
    /// The spill settings of a job: `state.backend.cache-size` (default 1 GiB),
    /// `io.tmp.dirs` (the first of a `,`/`;`/`:` list; default the system's
    /// temporary directory) and `pipeline.max-parallelism`.
    pub fn from_settings(settings: &BTreeMap<String, String>) -> std::result::Result<Self, String> {
        let budget = match settings.get("state.backend.cache-size") {
            Some(v) => parse_memory_size(v).ok_or_else(|| {
                format!("invalid 'state.backend.cache-size' = '{v}'; write a size like '256 mb' or '2 gb'")
            })?,
            None => DEFAULT_CACHE_SIZE,
        };
        let dir = settings
            .get("io.tmp.dirs")
            .and_then(|v| {
                v.split([',', ';', ':'])
                    .map(str::trim)
                    .find(|d| !d.is_empty())
            })
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let key_groups = crate::state::key_groups_setting(
            settings.get("pipeline.max-parallelism").map(String::as_str),
        )?;
        Ok(Self {
            budget,
            dir,
            key_groups,
        })
    }
}

/// Parses a memory size as Flink writes them: `512mb`, `1 gb`, `64 kb`,
/// `1048576` (bytes).
pub fn parse_memory_size(text: &str) -> Option<usize> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.trim().parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "b" | "bytes" => 1.0,
        "k" | "kb" | "kibibytes" => 1024.0,
        "m" | "mb" | "mebibytes" => 1024.0 * 1024.0,
        "g" | "gb" | "gibibytes" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tebibytes" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as usize)
}

/// One spill of one window.
#[derive(Debug, Clone)]
struct Part {
    seq: u64,
    groups: Vec<u16>,
    /// Already stored by a checkpoint.
    checkpointed: bool,
}

/// The spilled parts of a window operator.
pub struct Spill {
    config: SpillConfig,
    db: Option<(DB, PathBuf)>,
    next_seq: u64,
    parts: BTreeMap<EventTime, Vec<Part>>,
    spilled_bytes: Counter,
}

/// Distinguishes the spill directories of one process.
static SPILL_DIRS: AtomicU64 = AtomicU64::new(0);

fn spill_err(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("window state spill: {what}: {e}"))
}

/// A part's key in the spill database: window end, key group, sequence.
fn db_key(end: EventTime, group: u16, seq: u64) -> [u8; 18] {
    let mut k = [0u8; 18];
    k[..8].copy_from_slice(&((end as u64) ^ (1 << 63)).to_be_bytes());
    k[8..10].copy_from_slice(&group.to_be_bytes());
    k[10..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// A part's key in a checkpoint (within its key group): `s`, window end, sequence.
pub fn checkpoint_key(end: EventTime, seq: u64) -> [u8; 17] {
    let mut k = [b's'; 17];
    k[1..9].copy_from_slice(&((end as u64) ^ (1 << 63)).to_be_bytes());
    k[9..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The window end and sequence of a checkpoint key, if it is a spilled part's.
pub fn parse_checkpoint_key(k: &[u8]) -> Option<(EventTime, u64)> {
    match k {
        [b's', rest @ ..] if rest.len() == 16 => {
            let end = u64::from_be_bytes(rest[..8].try_into().ok()?) ^ (1 << 63);
            let seq = u64::from_be_bytes(rest[8..].try_into().ok()?);
            Some((end as i64, seq))
        }
        _ => None,
    }
}

impl Spill {
    /// Nothing spilled yet; the database is created on the first spill.
    pub fn new(config: SpillConfig, spilled_bytes: Counter) -> Self {
        Self {
            config,
            db: None,
            next_seq: 0,
            parts: BTreeMap::new(),
            spilled_bytes,
        }
    }

    /// An empty spill with the same configuration (for a parallel instance).
    pub fn fork(&self) -> Self {
        Self::new(self.config.clone(), self.spilled_bytes.clone())
    }

    /// The in-memory budget in bytes.
    pub fn budget(&self) -> usize {
        self.config.budget
    }

    /// The job's key groups.
    pub fn key_groups(&self) -> u16 {
        self.config.key_groups
    }

    fn db(&mut self) -> Result<&DB> {
        if self.db.is_none() {
            let dir = self.config.dir.join(format!(
                "vigil-spill-{}-{}",
                std::process::id(),
                SPILL_DIRS.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let mut opts = Options::default();
            opts.create_if_missing(true);
            opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            let db = DB::open(&opts, &dir)
                .map_err(|e| spill_err(&format!("cannot open '{}'", dir.display()), e))?;
            tracing::info!(dir = %dir.display(), budget = self.config.budget, "window state exceeds the cache; spilling to RocksDB");
            self.db = Some((db, dir));
        }
        match &self.db {
            Some((db, _)) => Ok(db),
            None => Err(spill_err("database", "not open")),
        }
    }

    fn write(&mut self, end: EventTime, seq: u64, parts: &[(u16, Vec<u8>)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        let mut bytes = 0;
        for (g, value) in parts {
            bytes += value.len();
            batch.put(db_key(end, *g, seq), value);
        }
        let mut wo = WriteOptions::default();
        // Scratch space: a crash rebuilds it from the checkpoint.
        wo.disable_wal(true);
        self.db()?
            .write_opt(batch, &wo)
            .map_err(|e| spill_err("cannot write", e))?;
        self.spilled_bytes.add(bytes as u64);
        Ok(())
    }

    /// Spills a window's partial state, split by key group.
    pub fn spill(&mut self, end: EventTime, parts: Vec<(u16, RecordBatch)>) -> Result<()> {
        if parts.is_empty() {
            return Ok(());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let encoded = parts
            .iter()
            .map(|(g, b)| Ok((*g, encode_batch(b)?)))
            .collect::<Result<Vec<_>>>()?;
        self.write(end, seq, &encoded)?;
        self.parts.entry(end).or_default().push(Part {
            seq,
            groups: parts.iter().map(|(g, _)| *g).collect(),
            checkpointed: false,
        });
        Ok(())
    }

    /// Whether window `end` has spilled parts.
    pub fn has(&self, end: EventTime) -> bool {
        self.parts.contains_key(&end)
    }

    /// The key groups window `end` has spilled parts in.
    pub fn groups(&self, end: EventTime) -> BTreeSet<u16> {
        self.parts
            .get(&end)
            .into_iter()
            .flatten()
            .flat_map(|p| p.groups.iter().copied())
            .collect()
    }

    /// The spilled parts of window `end` in key group `group`.
    pub fn read(&mut self, end: EventTime, group: u16) -> Result<Vec<RecordBatch>> {
        let seqs: Vec<u64> = self
            .parts
            .get(&end)
            .into_iter()
            .flatten()
            .filter(|p| p.groups.contains(&group))
            .map(|p| p.seq)
            .collect();
        let db = self.db()?;
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let bytes = db
                .get_pinned(db_key(end, group, seq))
                .map_err(|e| spill_err("cannot read", e))?
                .ok_or_else(|| spill_err("missing part", format!("window {end}, seq {seq}")))?;
            out.push(decode_batch(&bytes)?);
        }
        Ok(out)
    }

    /// Forgets window `end` (it fired): removes its parts and returns the
    /// checkpoint keys of those a checkpoint stored, to delete there.
    pub fn remove(&mut self, end: EventTime) -> Result<Vec<(u16, Vec<u8>)>> {
        let Some(parts) = self.parts.remove(&end) else {
            return Ok(vec![]);
        };
        let mut stored = vec![];
        let mut batch = WriteBatch::default();
        for p in &parts {
            for g in &p.groups {
                batch.delete(db_key(end, *g, p.seq));
                if p.checkpointed {
                    stored.push((*g, checkpoint_key(end, p.seq).to_vec()));
                }
            }
        }
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db()?
            .write_opt(batch, &wo)
            .map_err(|e| spill_err("cannot delete", e))?;
        Ok(stored)
    }

    /// Writes the parts spilled since the last checkpoint into it.
    pub fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        if w.key_groups() != self.config.key_groups {
            return Err(EngineError::State(format!(
                "window state spill: {} key groups, the checkpoint has {}",
                self.config.key_groups,
                w.key_groups()
            )));
        }
        let todo: Vec<(EventTime, u64, Vec<u16>)> = self
            .parts
            .iter()
            .flat_map(|(end, parts)| {
                parts
                    .iter()
                    .filter(|p| !p.checkpointed)
                    .map(|p| (*end, p.seq, p.groups.clone()))
            })
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let db = self.db()?;
        for (end, seq, groups) in &todo {
            for g in groups {
                let bytes = db
                    .get(db_key(*end, *g, *seq))
                    .map_err(|e| spill_err("cannot read", e))?
                    .ok_or_else(|| spill_err("missing part", format!("window {end}, seq {seq}")))?;
                w.put(*g, &checkpoint_key(*end, *seq), bytes);
            }
        }
        for parts in self.parts.values_mut() {
            for p in parts.iter_mut() {
                p.checkpointed = true;
            }
        }
        Ok(())
    }

    /// Takes back a part a checkpoint stored.
    pub fn restore(&mut self, end: EventTime, seq: u64, group: u16, value: &[u8]) -> Result<()> {
        self.write(end, seq, &[(group, value.to_vec())])?;
        self.next_seq = self.next_seq.max(seq + 1);
        let parts = self.parts.entry(end).or_default();
        match parts.iter_mut().find(|p| p.seq == seq) {
            Some(p) => p.groups.push(group),
            None => parts.push(Part {
                seq,
                groups: vec![group],
                checkpointed: true,
            }),
        }
        Ok(())
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        if let Some((db, dir)) = self.db.take() {
            drop(db);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_as_flink_writes_them() {
        assert_eq!(parse_memory_size("64 kb"), Some(64 * 1024));
        assert_eq!(parse_memory_size("512mb"), Some(512 << 20));
        assert_eq!(parse_memory_size("1 GB"), Some(1 << 30));
        assert_eq!(parse_memory_size("1048576"), Some(1 << 20));
        assert_eq!(parse_memory_size("0.5 mb"), Some(512 * 1024));
        assert_eq!(parse_memory_size("lots"), None);
        assert_eq!(parse_memory_size("12 parsecs"), None);
        assert_eq!(parse_memory_size("0"), None);
    }

    #[test]
    fn checkpoint_keys_round_trip_and_differ_from_window_keys() {
        let k = checkpoint_key(-5, 7);
        assert_eq!(parse_checkpoint_key(&k), Some((-5, 7)));
        assert_eq!(parse_checkpoint_key(b"w12345678"), None);
        assert!(checkpoint_key(1, 0) < checkpoint_key(2, 0));
    }
}
