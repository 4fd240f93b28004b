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
//! Spilled parts go to a raw table of the instance's keyed-state database
//! (see [`crate::state::keyed`]), under their key group, window and sequence
//! number: immutable, they are in every checkpoint of that database until
//! their window fires, without being copied, and a restore finds them there
//! (only their index is rebuilt).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use datafusion::arrow::record_batch::RecordBatch;

use crate::message::EventTime;
use crate::metrics::Counter;
use crate::state::arrow_state::{decode_batch, encode_batch};
use crate::state::keyed::{RawBatch, RawTable, StateContext};
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
}

/// The spilled parts of a window operator.
pub struct Spill {
    config: SpillConfig,
    table: RawTable,
    next_seq: u64,
    parts: BTreeMap<EventTime, Vec<Part>>,
    spilled_bytes: Counter,
    logged: bool,
}

fn spill_err(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("window state spill: {what}: {e}"))
}

/// A part's key within its key group: window end (ordered), sequence.
pub fn part_key(end: EventTime, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&((end as u64) ^ (1 << 63)).to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The window end and sequence of a part's key.
pub fn parse_part_key(k: &[u8]) -> Option<(EventTime, u64)> {
    let end = u64::from_be_bytes(k.get(..8)?.try_into().ok()?) ^ (1 << 63);
    let seq = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
    Some((end as i64, seq))
}

impl Spill {
    /// Nothing spilled yet (the table is the operator's own once it opens).
    pub fn new(config: SpillConfig, spilled_bytes: Counter) -> Result<Self> {
        let table = StateContext::detached().raw_table("spilled")?;
        Ok(Self {
            config,
            table,
            next_seq: 0,
            parts: BTreeMap::new(),
            spilled_bytes,
            logged: false,
        })
    }

    /// An empty spill with the same configuration (for a parallel instance).
    pub fn fork(&self) -> Result<Self> {
        Self::new(self.config.clone(), self.spilled_bytes.clone())
    }

    /// Moves to `table` (the instance's, declared when the operator opens)
    /// and indexes the parts a restored checkpoint holds there.
    pub fn open(&mut self, table: RawTable) -> Result<()> {
        self.table = table;
        self.parts.clear();
        let mut found: Vec<(EventTime, u64, u16)> = vec![];
        self.table.scan(|g, k, _| {
            let (end, seq) =
                parse_part_key(k).ok_or_else(|| spill_err("stored part", "malformed key"))?;
            found.push((end, seq, g));
            Ok(true)
        })?;
        for (end, seq, g) in found {
            self.next_seq = self.next_seq.max(seq + 1);
            let parts = self.parts.entry(end).or_default();
            match parts.iter_mut().find(|p| p.seq == seq) {
                Some(p) => p.groups.push(g),
                None => parts.push(Part {
                    seq,
                    groups: vec![g],
                }),
            }
        }
        Ok(())
    }

    /// Its table, for the runtime's checkpoints.
    pub fn table_mut(&mut self) -> &mut RawTable {
        &mut self.table
    }

    /// The in-memory budget in bytes.
    pub fn budget(&self) -> usize {
        self.config.budget
    }

    /// The job's key groups.
    pub fn key_groups(&self) -> u16 {
        self.config.key_groups
    }

    /// Spills a window's partial state, split by key group.
    pub fn spill(&mut self, end: EventTime, parts: Vec<(u16, RecordBatch)>) -> Result<()> {
        if parts.is_empty() {
            return Ok(());
        }
        if !self.logged {
            self.logged = true;
            tracing::info!(
                budget = self.config.budget,
                "window state exceeds the cache; spilling to RocksDB"
            );
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut batch = RawBatch::default();
        let mut bytes = 0;
        for (g, b) in &parts {
            let value = encode_batch(b)?;
            bytes += value.len();
            self.table.put(&mut batch, *g, &part_key(end, seq), &value);
        }
        self.table.write(batch)?;
        self.spilled_bytes.add(bytes as u64);
        self.parts.entry(end).or_default().push(Part {
            seq,
            groups: parts.iter().map(|(g, _)| *g).collect(),
        });
        Ok(())
    }

    /// The windows with spilled parts.
    pub fn ends(&self) -> Vec<EventTime> {
        self.parts.keys().copied().collect()
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
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let bytes = self
                .table
                .get(group, &part_key(end, seq))?
                .ok_or_else(|| spill_err("missing part", format!("window {end}, seq {seq}")))?;
            out.push(decode_batch(&bytes)?);
        }
        Ok(out)
    }

    /// Forgets window `end` (it fired): removes its parts.
    pub fn remove(&mut self, end: EventTime) -> Result<()> {
        let Some(parts) = self.parts.remove(&end) else {
            return Ok(());
        };
        let mut batch = RawBatch::default();
        for p in &parts {
            for g in &p.groups {
                self.table.delete(&mut batch, *g, &part_key(end, p.seq));
            }
        }
        self.table.write(batch)
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
    fn part_keys_round_trip_in_window_order() {
        let k = part_key(-5, 7);
        assert_eq!(parse_part_key(&k), Some((-5, 7)));
        assert_eq!(parse_part_key(b"short"), None);
        assert!(part_key(-1, 9) < part_key(1, 0));
    }
}
