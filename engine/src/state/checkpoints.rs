//! Where a job's checkpoints live and how they are validated, kept and restored.
//!
//! ```text
//! <job dir>/db/                          working copy of operator-wide state (rebuilt at start)
//! <job dir>/keyed/<part>/                working databases of keyed state, one per instance
//! <checkpoints dir>/chk-<id>/db/         RocksDB checkpoint of operator-wide state
//! <checkpoints dir>/chk-<id>/keyed/<uid>-<first>-<last>/
//!                                        RocksDB checkpoint of one instance's keyed
//!                                        state (its key groups first..=last), written
//!                                        by the instance at its barrier
//! <checkpoints dir>/chk-<id>/_metadata   written last: JSON, then a CRC32 line
//! ```
//!
//! RocksDB checkpoints hard-link the SST files, so files unchanged since the
//! previous checkpoint are shared and a checkpoint adds what changed.
//!
//! A checkpoint without a valid `_metadata`, or whose files do not match the
//! sizes it lists, is torn (the process died while writing it) and is skipped
//! for the previous one; so is one whose SST files fail RocksDB's checksums.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::keyed::backend::{link_dir, parse_part_name, Part};
use super::shared::SharedBy;
use super::store::StateStore;
use super::StateEntry;
use crate::graph::{NodeId, StateUid};
use crate::message::CheckpointId;
use crate::{EngineError, Result};

/// The name of a checkpoint's metadata file in its directory.
pub const METADATA_FILE: &str = "_metadata";

/// Of a checkpoint downloaded in part (the keyed state of key groups other
/// processes own left on object storage), the files left out, a line each:
/// they are not missing.
pub const LEFT_OUT_FILE: &str = "_left_out";
const METADATA: &str = METADATA_FILE;

/// The layout of checkpoints this version writes: 2 = keyed state in
/// per-instance databases under `keyed/`, file names relative to the
/// checkpoint's directory.
pub const FORMAT: u32 = 2;

/// The directory of checkpoint `id`'s keyed state in `checkpoints_dir`.
pub fn keyed_dir(checkpoints_dir: &Path, id: CheckpointId) -> PathBuf {
    checkpoints_dir.join(format!("chk-{id}")).join("keyed")
}

/// What a completed checkpoint records about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Its id (increasing within a job, across restarts).
    pub id: CheckpointId,
    /// Its layout ([`FORMAT`]; 0 for a Vigil from before keyed state).
    #[serde(default)]
    pub format: u32,
    /// The name of every node of the job's graph by its identity, when it
    /// was taken: a restore hands each node the state stored under its
    /// identity and refuses state whose node the new graph lacks. (`None` in a
    /// checkpoint of a Vigil from before stable identities.)
    /// In graph order (each node after its inputs).
    #[serde(default)]
    pub operators: Option<Vec<(StateUid, String)>>,
    /// The number of key groups keyed state is spread over.
    pub key_groups: u16,
    /// When it completed (ms since the epoch).
    pub completed_ms: i64,
    /// Its files (relative to its directory) with their sizes.
    pub files: BTreeMap<String, u64>,
    /// Bytes of files that the previous checkpoint did not have (what this one
    /// added on disk).
    pub incremental_bytes: u64,
    /// Of a job running as several processes: the process that wrote this
    /// part of the checkpoint (see [`super::shared`]).
    #[serde(default)]
    pub share: Option<SharedBy>,
}

impl CheckpointMeta {
    /// The total size of its files.
    pub fn total_bytes(&self) -> u64 {
        self.files.values().sum()
    }
}

/// A restored checkpoint: its metadata, the working store rebuilt from it, and
/// every entry by node.
pub struct Restored {
    /// The checkpoint's metadata.
    pub meta: CheckpointMeta,
    /// Entries by node.
    pub entries: BTreeMap<NodeId, Vec<StateEntry>>,
    /// The checkpointed keyed-state databases of each node's instances.
    pub keyed: BTreeMap<NodeId, Vec<Part>>,
}

/// The checkpoints of one job.
pub struct CheckpointStore {
    job_dir: PathBuf,
    dir: PathBuf,
    retained: usize,
    share: Option<SharedBy>,
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> EngineError {
    EngineError::State(format!("{what} '{}': {e}", path.display()))
}

impl CheckpointStore {
    /// `job_dir` holds the working state; `dir` the checkpoints, of which the
    /// newest `retained` are kept.
    pub fn new(job_dir: PathBuf, dir: PathBuf, retained: usize) -> Self {
        Self {
            job_dir,
            dir,
            retained: retained.max(1),
            share: None,
        }
    }

    /// The store of one process's parts of a shared job's checkpoints: they
    /// say who wrote them, and two are kept at least (the newest may not
    /// complete, when another process dies before writing its part).
    pub fn shared_by(mut self, by: SharedBy) -> Self {
        self.share = Some(by);
        self.retained = self.retained.max(2);
        self
    }

    /// The checkpoints directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn chk_dir(&self, id: CheckpointId) -> PathBuf {
        self.dir.join(format!("chk-{id}"))
    }

    fn working_dir(&self) -> PathBuf {
        self.job_dir.join("db")
    }

    /// Ids of the checkpoint directories present, newest first.
    pub fn ids(&self) -> Vec<CheckpointId> {
        let mut ids: Vec<CheckpointId> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("chk-"))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    }

    /// Reads and validates the metadata of checkpoint `id`: its checksum, and
    /// that every file it lists is there with its size.
    pub fn read_meta(&self, id: CheckpointId) -> Result<CheckpointMeta> {
        let dir = self.chk_dir(id);
        let path = dir.join(METADATA);
        let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, "cannot read", e))?;
        let torn = |why: &str| EngineError::State(format!("checkpoint {id} is torn: {why}"));
        let (json, crc_line) = text
            .rsplit_once("\ncrc32:")
            .ok_or_else(|| torn("its metadata has no checksum"))?;
        let crc = u32::from_str_radix(crc_line.trim(), 16)
            .map_err(|_| torn("its metadata checksum is unreadable"))?;
        if crc32fast::hash(json.as_bytes()) != crc {
            return Err(torn("its metadata does not match its checksum"));
        }
        let meta: CheckpointMeta =
            serde_json::from_str(json).map_err(|e| torn(&format!("bad metadata: {e}")))?;
        let left_out = std::fs::read_to_string(dir.join(LEFT_OUT_FILE)).unwrap_or_default();
        let left_out: std::collections::BTreeSet<&str> = left_out.lines().collect();
        for (name, size) in meta
            .files
            .iter()
            .filter(|(n, _)| !left_out.contains(n.as_str()))
        {
            let f = dir.join(name);
            match std::fs::metadata(&f) {
                Ok(m) if m.len() == *size => {}
                Ok(m) => {
                    return Err(torn(&format!(
                        "{name} has {} bytes, {size} expected",
                        m.len()
                    )))
                }
                Err(_) => return Err(torn(&format!("{name} is missing"))),
            }
        }
        Ok(meta)
    }

    /// The newest checkpoint that validates, rebuilt into the working store,
    /// its entries handed to the nodes of `identities` (each node's identity
    /// and name, by node index). Torn or corrupt checkpoints are skipped with
    /// a warning; one holding state of a node this graph lacks is an error
    /// (that state cannot be mapped onto this graph).
    pub fn restore_latest(
        &self,
        identities: &[(StateUid, String)],
    ) -> Result<(StateStore, Option<Restored>)> {
        for id in self.ids() {
            let meta = match self.read_meta(id) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("{e}; trying the previous checkpoint");
                    continue;
                }
            };
            let stored = match &meta.operators {
                Some(stored) if meta.format == FORMAT => stored,
                _ => {
                    return Err(EngineError::State(format!(
                        "checkpoint {id} in '{}' was taken by an older Vigil that stored state another way; finish the job with that version, or start afresh with another --state-dir (or remove that directory)",
                        self.dir.display()
                    )))
                }
            };
            match self.rebuild_from(id) {
                Ok(store) => match store.entries() {
                    Ok(by_uid) => {
                        let parts = self.keyed_parts(id)?;
                        let unmatched_err = |missing: Vec<StateUid>| {
                            EngineError::State(unmatched(&self.dir, id, stored, &missing))
                        };
                        let entries = by_node(by_uid, identities).map_err(unmatched_err)?;
                        let keyed = keyed_by_node(parts, identities).map_err(unmatched_err)?;
                        self.remove_newer_than(id);
                        return Ok((
                            store,
                            Some(Restored {
                                meta,
                                entries,
                                keyed,
                            }),
                        ));
                    }
                    Err(e) => tracing::warn!(
                        "checkpoint {id} is corrupt: {e}; trying the previous checkpoint"
                    ),
                },
                Err(e) => {
                    tracing::warn!(
                        "checkpoint {id} is corrupt: {e}; trying the previous checkpoint"
                    )
                }
            }
        }
        self.remove_newer_than(0);
        Ok((self.fresh()?, None))
    }

    /// Removes the checkpoint directories after `id` (torn or corrupt ones:
    /// the next checkpoint reuses their ids).
    fn remove_newer_than(&self, id: CheckpointId) {
        for newer in self.ids().into_iter().filter(|n| *n > id) {
            let d = self.chk_dir(newer);
            if let Err(e) = std::fs::remove_dir_all(&d) {
                tracing::warn!("cannot remove torn checkpoint '{}': {e}", d.display());
            }
        }
    }

    /// The keyed-state databases in checkpoint `id`, by operator identity.
    pub(super) fn keyed_parts(&self, id: CheckpointId) -> Result<BTreeMap<StateUid, Vec<Part>>> {
        let dir = keyed_dir(&self.dir, id);
        let mut out: BTreeMap<StateUid, Vec<Part>> = BTreeMap::new();
        if !dir.exists() {
            return Ok(out);
        }
        for entry in std::fs::read_dir(&dir).map_err(|e| io_err(&dir, "cannot list", e))? {
            let entry = entry.map_err(|e| io_err(&dir, "cannot list", e))?;
            let name = entry.file_name();
            let Some((uid, key_groups)) = name.to_str().and_then(parse_part_name) else {
                return Err(EngineError::State(format!(
                    "checkpoint {id} holds an unknown entry '{}' in '{}'",
                    name.to_string_lossy(),
                    dir.display()
                )));
            };
            out.entry(uid).or_default().push(Part {
                dir: entry.path(),
                key_groups,
            });
        }
        Ok(out)
    }

    /// Where the instances' working databases of keyed state go.
    pub fn keyed_working_dir(&self) -> PathBuf {
        self.job_dir.join("keyed")
    }

    fn reset_working(&self) -> Result<PathBuf> {
        let keyed = self.keyed_working_dir();
        if keyed.exists() {
            std::fs::remove_dir_all(&keyed).map_err(|e| io_err(&keyed, "cannot clear", e))?;
        }
        let w = self.working_dir();
        if w.exists() {
            std::fs::remove_dir_all(&w).map_err(|e| io_err(&w, "cannot clear", e))?;
        }
        std::fs::create_dir_all(&w).map_err(|e| io_err(&w, "cannot create", e))?;
        Ok(w)
    }

    /// An empty working store.
    pub fn fresh(&self) -> Result<StateStore> {
        let w = self.reset_working()?;
        StateStore::open(&w)
    }

    /// Rebuilds the working store from checkpoint `id` (hard links where the
    /// file system allows, copies otherwise; the checkpoint stays untouched).
    pub(super) fn rebuild_from(&self, id: CheckpointId) -> Result<StateStore> {
        let w = self.reset_working()?;
        std::fs::remove_dir(&w).map_err(|e| io_err(&w, "cannot clear", e))?;
        link_dir(&self.chk_dir(id).join("db"), &w)?;
        StateStore::open(&w)
    }

    /// Takes checkpoint `id` of `store`, writes its metadata last (atomically),
    /// and removes checkpoints beyond the retained number.
    pub fn write(
        &self,
        store: &StateStore,
        id: CheckpointId,
        identities: &[(StateUid, String)],
        key_groups: u16,
    ) -> Result<CheckpointMeta> {
        // The instances have written their keyed state into it already.
        let dir = self.chk_dir(id);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, "cannot create", e))?;
        let db = dir.join("db");
        if db.exists() {
            // Left by a crash during an earlier attempt at this id.
            std::fs::remove_dir_all(&db).map_err(|e| io_err(&db, "cannot clear", e))?;
        }
        store.checkpoint_to(&db)?;
        let mut files = BTreeMap::new();
        list_files(&dir, &db, &mut files)?;
        let keyed = dir.join("keyed");
        if keyed.exists() {
            for part in std::fs::read_dir(&keyed).map_err(|e| io_err(&keyed, "cannot list", e))? {
                let part = part.map_err(|e| io_err(&keyed, "cannot list", e))?;
                list_files(&dir, &part.path(), &mut files)?;
            }
        }
        let previous = self
            .ids()
            .into_iter()
            .find(|p| *p < id)
            .and_then(|p| self.read_meta(p).ok());
        let incremental_bytes = files
            .iter()
            .filter(|(n, _)| {
                !n.ends_with(".sst") || previous.as_ref().is_none_or(|p| !p.files.contains_key(*n))
            })
            .map(|(_, s)| *s)
            .sum();
        let meta = CheckpointMeta {
            id,
            format: FORMAT,
            operators: Some(identities.to_vec()),
            key_groups,
            completed_ms: chrono_now_ms(),
            files,
            incremental_bytes,
            share: self.share,
        };
        let json = serde_json::to_string(&meta)
            .map_err(|e| EngineError::State(format!("cannot encode checkpoint metadata: {e}")))?;
        let text = format!("{json}\ncrc32:{:08x}\n", crc32fast::hash(json.as_bytes()));
        let tmp = dir.join("_metadata.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, dir.join(METADATA))?;
            std::fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| io_err(&dir, "cannot write checkpoint metadata in", e))?;
        for old in self.ids().into_iter().skip(self.retained) {
            let d = self.chk_dir(old);
            if let Err(e) = std::fs::remove_dir_all(&d) {
                tracing::warn!("cannot remove old checkpoint '{}': {e}", d.display());
            }
        }
        Ok(meta)
    }

    /// Removes every checkpoint and the working copy (the job finished).
    pub fn clear(&self) -> Result<()> {
        for d in [&self.dir, &self.job_dir] {
            if d.exists() {
                std::fs::remove_dir_all(d).map_err(|e| io_err(d, "cannot remove", e))?;
            }
        }
        Ok(())
    }
}

/// Adds the files of `sub` (a directory in checkpoint directory `dir`) to
/// `files`, named relative to `dir`.
fn list_files(dir: &Path, sub: &Path, files: &mut BTreeMap<String, u64>) -> Result<()> {
    for entry in std::fs::read_dir(sub).map_err(|e| io_err(sub, "cannot list", e))? {
        let entry = entry.map_err(|e| io_err(sub, "cannot list", e))?;
        let path = entry.path();
        let len = entry
            .metadata()
            .map_err(|e| io_err(&path, "cannot stat", e))?
            .len();
        if let Some(name) = path.strip_prefix(dir).ok().and_then(|p| p.to_str()) {
            files.insert(name.to_string(), len);
        }
    }
    Ok(())
}

/// The keyed-state databases of each node of the graph of `identities`; the
/// identities of stored operators the graph lacks are the error.
pub(super) fn keyed_by_node(
    parts: BTreeMap<StateUid, Vec<Part>>,
    identities: &[(StateUid, String)],
) -> std::result::Result<BTreeMap<NodeId, Vec<Part>>, Vec<StateUid>> {
    let mut out = BTreeMap::new();
    let mut missing = vec![];
    for (uid, p) in parts {
        match identities.iter().position(|(u, _)| *u == uid) {
            Some(node) => {
                out.insert(node, p);
            }
            None => missing.push(uid),
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Stored entries (by node identity) by node index of the graph of
/// `identities`; the identities of stored nodes the graph lacks are the error.
pub(super) fn by_node(
    by_uid: BTreeMap<usize, Vec<StateEntry>>,
    identities: &[(StateUid, String)],
) -> std::result::Result<BTreeMap<NodeId, Vec<StateEntry>>, Vec<StateUid>> {
    let index: BTreeMap<StateUid, NodeId> = identities
        .iter()
        .enumerate()
        .map(|(node, (uid, _))| (*uid, node))
        .collect();
    let mut out = BTreeMap::new();
    let mut missing = vec![];
    for (uid, entries) in by_uid {
        // Read back from the 4-byte prefix, so it fits.
        let uid = uid as StateUid;
        match index.get(&uid) {
            Some(node) => {
                out.insert(*node, entries);
            }
            None => missing.push(uid),
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// Explains which stored operator has no counterpart in the new graph: the
/// first in graph order (a change upstream also changes what follows it).
pub(super) fn unmatched(
    dir: &Path,
    id: CheckpointId,
    stored: &[(StateUid, String)],
    missing: &[StateUid],
) -> String {
    let name = stored
        .iter()
        .find(|(uid, _)| missing.contains(uid))
        .map(|(_, name)| name.clone())
        .unwrap_or_else(|| format!("#{:08x}", missing.first().copied().unwrap_or(0)));
    format!(
        "checkpoint {id} in '{}' was taken by a different plan, so its state cannot be restored into this script: the state of operator {name} has no counterpart in it (that operator, its parameters or what feeds it changed)\nrestore the script as it was, or start afresh with another --state-dir (or remove that directory)",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{store_key, StateOp};

    /// One node, whose identity is 0xabc.
    fn plan() -> Vec<(StateUid, String)> {
        vec![(0xabc, "Agg(x)".into())]
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-chk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn restores_the_newest_valid_checkpoint_and_skips_torn_ones() {
        let root = temp("torn");
        let cs = CheckpointStore::new(root.join("job"), root.join("chk"), 3);
        let (store, restored) = cs.restore_latest(&plan()).expect("fresh");
        assert!(restored.is_none());
        store
            .apply(vec![StateOp::Put(
                store_key(0xabc, 1, b"k"),
                b"v1".to_vec(),
            )])
            .expect("apply");
        cs.write(&store, 1, &plan(), 128).expect("chk 1");
        store
            .apply(vec![StateOp::Put(
                store_key(0xabc, 1, b"k"),
                b"v2".to_vec(),
            )])
            .expect("apply");
        cs.write(&store, 2, &plan(), 128).expect("chk 2");
        drop(store);

        let (_, r) = cs.restore_latest(&plan()).expect("restore");
        let r = r.expect("a checkpoint");
        assert_eq!(r.meta.id, 2);
        assert_eq!(r.entries[&0][0].value, b"v2");

        // A crash while writing checkpoint 2's metadata leaves it torn.
        let meta = cs.chk_dir(2).join(METADATA);
        let text = std::fs::read_to_string(&meta).expect("read");
        std::fs::write(&meta, &text[..text.len() / 2]).expect("truncate");
        let (_, r) = cs.restore_latest(&plan()).expect("restore");
        let r = r.expect("the previous checkpoint");
        assert_eq!(r.meta.id, 1);
        assert_eq!(r.entries[&0][0].value, b"v1");

        // Another node order takes the state (by identity, not position).
        let reordered = vec![(0x123, "Filter".into()), (0xabc, "Agg(y)".into())];
        let (_, r) = cs.restore_latest(&reordered).expect("restore");
        assert_eq!(r.expect("a checkpoint").entries[&1][0].value, b"v1");

        // A graph without the stored node is refused, naming it.
        let err = cs
            .restore_latest(&[(0xdef, "Other".into())])
            .err()
            .expect("plan mismatch")
            .to_string();
        assert!(err.contains("different plan"), "{err}");
        assert!(err.contains("operator Agg(x)"), "{err}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn keeps_only_the_retained_number() {
        let root = temp("retain");
        let cs = CheckpointStore::new(root.join("job"), root.join("chk"), 2);
        let (store, _) = cs.restore_latest(&plan()).expect("fresh");
        for id in 1..=4 {
            store
                .apply(vec![StateOp::Put(
                    store_key(0xabc, 0, &[id as u8]),
                    vec![0; 100],
                )])
                .expect("apply");
            cs.write(&store, id, &plan(), 128).expect("write");
        }
        assert_eq!(cs.ids(), vec![4, 3]);
        let _ = std::fs::remove_dir_all(&root);
    }
}
