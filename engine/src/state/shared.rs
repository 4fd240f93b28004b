//! Checkpoints of a job that runs as several processes, in a directory they
//! all reach:
//!
//! ```text
//! <root>/g<generation>-<i>/chk-<id>/   process i's part of checkpoint id
//!                                      (the layout of [`super::checkpoints`])
//! ```
//!
//! Each process writes its own part (its operator instances' keyed state, its
//! sources' and readers' positions) as a job of one process would; checkpoint
//! `id` of a generation is complete once every process of that generation
//! wrote its part. A restore takes the newest complete checkpoint, of any
//! generation, and merges its parts: every process hands its instances the
//! key groups they own now, whoever wrote them. The parts of a zombie of an
//! older generation never complete a checkpoint of the current one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoints::{by_node, keyed_by_node, CheckpointStore, Restored};
use super::store::StateStore;
use super::{store_key, StateOp};
use crate::graph::StateUid;
use crate::message::CheckpointId;
use crate::Result;

/// The marker of a process whose part of the job finished.
const FINISHED: &str = "_finished";

/// Which process wrote a part of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedBy {
    /// The membership generation it ran in.
    pub generation: u64,
    /// Which process, from 0.
    pub index: usize,
    /// Of how many.
    pub count: usize,
}

/// This process's place among the processes checkpointing under `root`.
#[derive(Debug, Clone)]
pub struct Peers {
    /// The directory all processes reach.
    pub root: PathBuf,
    /// This process.
    pub me: SharedBy,
}

impl Peers {
    fn dir_name(generation: u64, index: usize) -> String {
        format!("g{generation:016x}-{index}")
    }

    /// Where process `index` of this generation writes its parts.
    pub fn dir_of(&self, index: usize) -> PathBuf {
        self.root.join(Self::dir_name(self.me.generation, index))
    }

    /// Whether every process of this generation wrote its part of `id`, or
    /// finished its part of the job (it takes no more checkpoints: what it
    /// wrote is committed and its input ended).
    pub fn all_written(&self, id: CheckpointId) -> bool {
        (0..self.me.count).all(|i| {
            let dir = self.dir_of(i);
            dir.join(FINISHED).exists()
                || dir
                    .join(format!("chk-{id}"))
                    .join(super::checkpoints::METADATA_FILE)
                    .exists()
        })
    }

    /// Marks this process's part of the job finished (its checkpoints stay:
    /// another process may yet restore the last one).
    pub fn finish(&self) -> Result<()> {
        let dir = self.dir_of(self.me.index);
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(FINISHED), b"finished\n"))
            .map_err(|e| {
                crate::EngineError::State(format!("cannot write '{}': {e}", dir.display()))
            })
    }

    /// The newest checkpoint every process of its generation completed: its
    /// id and the directories of its parts (checked whole).
    pub fn newest_complete(&self) -> Option<(CheckpointId, Vec<PathBuf>)> {
        // (generation, id) -> the parts found, by process.
        let mut found: BTreeMap<(u64, CheckpointId), BTreeMap<usize, (usize, PathBuf)>> =
            BTreeMap::new();
        for entry in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = entry.path();
            let store = CheckpointStore::new(dir.join("_unused"), dir.clone(), usize::MAX);
            for id in store.ids() {
                let Ok(meta) = store.read_meta(id) else {
                    continue;
                };
                if let Some(by) = meta.share {
                    found
                        .entry((by.generation, id))
                        .or_default()
                        .insert(by.index, (by.count, dir.clone()));
                }
            }
        }
        found
            .into_iter()
            .filter(|(_, parts)| {
                parts
                    .values()
                    .next()
                    .is_some_and(|(count, _)| parts.len() == *count)
            })
            .max_by_key(|((_, id), _)| *id)
            .map(|((_, id), parts)| (id, parts.into_values().map(|(_, d)| d).collect()))
    }

    /// Removes the parts of other generations (once this one has completed
    /// a checkpoint, they are not needed).
    pub fn remove_other_generations(&self) {
        let prefix = format!("g{:016x}-", self.me.generation);
        for entry in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('g') && !name.starts_with(&prefix) {
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!("cannot remove '{}': {e}", entry.path().display());
                }
            }
        }
    }
}

impl CheckpointStore {
    /// Restores checkpoint `id` from the parts in `dirs` (one per process
    /// that wrote it) into this store's working copy: every part's entries
    /// (this process's own, `own`, last, so its sinks' pending commits are
    /// its own), and every part's keyed databases.
    pub fn restore_parts(
        &self,
        id: CheckpointId,
        dirs: &[PathBuf],
        own: &Path,
        identities: &[(StateUid, String)],
    ) -> Result<(StateStore, Restored)> {
        let mut ordered: Vec<&PathBuf> = dirs.iter().filter(|d| d.as_path() != own).collect();
        ordered.extend(dirs.iter().filter(|d| d.as_path() == own));
        let scratch = self.keyed_working_dir().with_file_name("merge");
        let mut meta = None;
        let mut ops = vec![];
        let mut keyed = BTreeMap::new();
        for dir in ordered {
            let part = CheckpointStore::new(scratch.clone(), dir.clone(), usize::MAX);
            let m = part.read_meta(id)?;
            let store = part.rebuild_from(id)?;
            for (uid, entries) in store.entries()? {
                for e in entries {
                    ops.push(StateOp::Put(store_key(uid, e.key_group, &e.key), e.value));
                }
            }
            drop(store);
            for (uid, parts) in part.keyed_parts(id)? {
                keyed.entry(uid).or_insert_with(Vec::new).extend(parts);
            }
            meta = Some(m);
        }
        let _ = std::fs::remove_dir_all(&scratch);
        let Some(meta) = meta else {
            return Err(crate::EngineError::State(format!(
                "checkpoint {id} has no parts"
            )));
        };
        let store = self.fresh()?;
        store.apply(ops)?;
        let entries = store.entries()?;
        let stored = meta.operators.clone().unwrap_or_default();
        let unmatched = |missing: Vec<StateUid>| {
            crate::EngineError::State(super::checkpoints::unmatched(
                self.dir(),
                id,
                &stored,
                &missing,
            ))
        };
        let entries = by_node(entries, identities).map_err(unmatched)?;
        let keyed = keyed_by_node(keyed, identities).map_err(unmatched)?;
        Ok((
            store,
            Restored {
                meta,
                entries,
                keyed,
            },
        ))
    }
}
