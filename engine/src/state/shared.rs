//! Checkpoints of a job that runs as several processes, in a directory they
//! all reach:
//!
//! ```text
//! <root>/g<generation>-<i>-of-<n>/chk-<id>/   process i's part of checkpoint
//!                                             id (the layout of
//!                                             [`super::checkpoints`])
//! <root>/g<generation>-<i>-of-<n>/_finished   process i's part of the job ended
//! ```
//!
//! On object storage (`s3://...`), the same names under the job's prefix:
//! each process uploads its parts as a job of one process would (see
//! [`super::remote`]), a part counting once its `_manifest` is there; the
//! local directory holds each process's own parts and the downloaded ones.
//!
//! Each process writes its own part (its operator instances' keyed state, its
//! sources' and readers' positions) as a job of one process would; checkpoint
//! `id` of a generation is complete once every process of that generation
//! wrote its part. A restore takes the newest complete checkpoint, of any
//! generation, and merges its parts: every process hands its instances the
//! key groups they own now, whoever wrote them. The parts of a zombie of an
//! older generation never complete a checkpoint of the current one.
//!
//! Nor of its own: before it looks for the newest complete checkpoint, a
//! process of a new generation writes `_fenced` into every part of the
//! generations it finds, and a process checks its own part for that marker
//! after writing its part and before announcing a completion. So a zombie
//! whose late part completes a checkpoint the new generation did not restore
//! from never commits it (its sinks' rows are replayed by the new one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoints::{by_node, keyed_by_node, CheckpointStore, Restored};
use super::remote::RemoteCheckpoints;
use super::store::StateStore;
use super::{store_key, StateOp};
use crate::graph::StateUid;
use crate::message::CheckpointId;
use crate::Result;

/// The marker of a process whose part of the job finished.
const FINISHED: &str = "_finished";

/// The marker a newer generation leaves in an older one's parts.
const FENCED: &str = "_fenced";

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
    /// The directory all processes reach (with `remote`: this process's
    /// local copy).
    pub root: PathBuf,
    /// The job's checkpoints on object storage, when they live there.
    pub remote: Option<RemoteCheckpoints>,
    /// This process.
    pub me: SharedBy,
}

/// Whether generation `a` formed before `b`: the low 32 bits of a
/// generation are the consumer group's generation id, which every rebalance
/// raises.
fn older(a: u64, b: u64) -> bool {
    (a as u32) < (b as u32)
}

/// The generation, process and process count a part's name says.
fn parse_part(name: &str) -> Option<(u64, usize, usize)> {
    let (generation, rest) = name.strip_prefix('g')?.split_once('-')?;
    let (index, count) = rest.split_once("-of-")?;
    Some((
        u64::from_str_radix(generation, 16).ok()?,
        index.parse().ok()?,
        count.parse().ok()?,
    ))
}

/// The newest checkpoint complete under `root`: its generation, id and the
/// directories of its parts (each checked whole).
pub fn newest_local(root: &Path) -> Option<(u64, CheckpointId, Vec<PathBuf>)> {
    // (generation, id) -> the parts found, by process, with their count.
    let mut found: BTreeMap<(u64, CheckpointId), BTreeMap<usize, (usize, PathBuf)>> =
        BTreeMap::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let dir = entry.path();
        let Some((generation, index, count)) = entry.file_name().to_str().and_then(parse_part)
        else {
            continue;
        };
        let store = CheckpointStore::new(dir.join("_unused"), dir.clone(), usize::MAX);
        for id in store.ids() {
            if store.read_meta(id).is_ok() {
                found
                    .entry((generation, id))
                    .or_default()
                    .insert(index, (count, dir.clone()));
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
        .map(|((g, id), parts)| (g, id, parts.into_values().map(|(_, d)| d).collect()))
}

/// The newest checkpoint whose parts are all on object storage: its
/// generation, id and the names of its parts.
pub async fn newest_remote(
    remote: &RemoteCheckpoints,
) -> Result<Option<(u64, CheckpointId, Vec<String>)>> {
    // (generation, id) -> (count, parts).
    let mut found: BTreeMap<(u64, CheckpointId), (usize, Vec<String>)> = BTreeMap::new();
    for name in remote.names().await? {
        let mut steps = name.split('/');
        let (Some(part), Some(chk), Some("_manifest")) = (steps.next(), steps.next(), steps.next())
        else {
            continue;
        };
        let id = chk
            .strip_prefix("chk-")
            .and_then(|i| i.parse::<CheckpointId>().ok());
        let (Some((generation, _, count)), Some(id)) = (parse_part(part), id) else {
            continue;
        };
        let e = found.entry((generation, id)).or_insert((count, vec![]));
        e.1.push(part.to_string());
    }
    Ok(found
        .into_iter()
        .filter(|(_, (count, parts))| parts.len() == *count)
        .max_by_key(|((_, id), _)| *id)
        .map(|((g, id), (_, parts))| (g, id, parts)))
}

impl Peers {
    /// The name of process `index`'s parts in this generation.
    pub fn part_name(&self, index: usize) -> String {
        format!("g{:016x}-{index}-of-{}", self.me.generation, self.me.count)
    }

    /// Where process `index` of this generation writes its parts.
    pub fn dir_of(&self, index: usize) -> PathBuf {
        self.root.join(self.part_name(index))
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

    /// As [`Self::all_written`], of parts on object storage.
    pub async fn all_uploaded(&self, remote: &RemoteCheckpoints, id: CheckpointId) -> bool {
        for i in 0..self.me.count {
            let part = remote.child(&self.part_name(i));
            let done = part.exists(FINISHED).await.unwrap_or(false)
                || part
                    .exists(&format!("chk-{id}/_manifest"))
                    .await
                    .unwrap_or(false);
            if !done {
                return false;
            }
        }
        true
    }

    /// Downloads the parts of the newest checkpoint some generation
    /// completed on object storage into `root` (when the checkpoints live
    /// there), for [`Self::newest_complete`] to find: of their keyed state,
    /// only the files `wanted` accepts (the key groups this process owns
    /// now); files a local copy still has are not downloaded again.
    pub async fn fetch_newest(&self, wanted: &(dyn Fn(&str) -> bool + Sync)) -> Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let Some((_, id, parts)) = newest_remote(remote).await? else {
            return Ok(());
        };
        tracing::info!(
            checkpoint = id,
            parts = parts.len(),
            url = remote.url(),
            "fetching the newest checkpoint's parts from object storage"
        );
        let mut left = 0;
        for part in parts {
            let r = remote.child(&part);
            if let Some(m) = r.manifest(id).await? {
                let dir = self.root.join(&part).join(format!("chk-{id}"));
                let out = r.download_where(&m, &dir, wanted).await?;
                left += out.len();
                // What is left out is not missing (see `read_meta`); a later
                // fetch of the same checkpoint says again what it left out.
                let marker = dir.join(super::checkpoints::LEFT_OUT_FILE);
                let written = match out.is_empty() {
                    true => std::fs::remove_file(&marker).or_else(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => Ok(()),
                        _ => Err(e),
                    }),
                    false => std::fs::write(&marker, out.join("\n")),
                };
                written.map_err(|e| {
                    crate::EngineError::State(format!("cannot write '{}': {e}", marker.display()))
                })?;
            }
        }
        if left > 0 {
            tracing::info!(
                checkpoint = id,
                files = left,
                "left {left} file(s) of key groups other processes own on object storage"
            );
        }
        Ok(())
    }

    /// Fences every older generation whose parts are here (see the module
    /// doc): all its processes' parts get a `_fenced` marker.
    pub async fn fence_others(&self) -> Result<()> {
        let names: Vec<String> = match &self.remote {
            Some(remote) => remote
                .names()
                .await?
                .into_iter()
                .filter_map(|n| n.split('/').next().map(str::to_string))
                .collect(),
            None => std::fs::read_dir(&self.root)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
        };
        let mut others = std::collections::BTreeSet::new();
        for name in names {
            if let Some((g, _, count)) = parse_part(&name) {
                // Only older ones: a process slow to start an old
                // generation must not fence the one that replaced it.
                if older(g, self.me.generation) {
                    others.insert((g, count));
                }
            }
        }
        for (generation, count) in others {
            for i in 0..count {
                let part = format!("g{generation:016x}-{i}-of-{count}");
                self.mark(&part, FENCED).await?;
            }
        }
        Ok(())
    }

    /// Leaves marker `name` in part `part`, on object storage when the
    /// checkpoints live there.
    async fn mark(&self, part: &str, name: &str) -> Result<()> {
        let body = format!("{}\n", name.trim_start_matches('_'));
        if let Some(remote) = &self.remote {
            return remote.child(part).put(name, body.into_bytes()).await;
        }
        let dir = self.root.join(part);
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(name), body))
            .map_err(|e| {
                crate::EngineError::State(format!("cannot write '{}': {e}", dir.display()))
            })
    }

    /// Whether a newer generation fenced this process's part.
    pub async fn fenced(&self) -> bool {
        let part = self.part_name(self.me.index);
        match &self.remote {
            Some(remote) => remote.child(&part).exists(FENCED).await.unwrap_or(false),
            None => self.root.join(part).join(FENCED).exists(),
        }
    }

    /// Marks this process's part of the job finished (its checkpoints stay:
    /// another process may yet restore the last one).
    pub async fn finish(&self) -> Result<()> {
        self.mark(&self.part_name(self.me.index), FINISHED).await
    }

    /// The newest checkpoint every process of its generation completed: its
    /// id and the directories of its parts (checked whole).
    pub fn newest_complete(&self) -> Option<(CheckpointId, Vec<PathBuf>)> {
        newest_local(&self.root).map(|(_, id, dirs)| (id, dirs))
    }

    /// Removes the parts of older generations (once this one has completed
    /// a checkpoint, they are not needed), here and on object storage.
    pub async fn remove_older_generations(&self) {
        let other =
            |name: &str| parse_part(name).is_some_and(|(g, _, _)| older(g, self.me.generation));
        for entry in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.file_name().to_str().is_some_and(other) {
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!("cannot remove '{}': {e}", entry.path().display());
                }
            }
        }
        if let Some(remote) = &self.remote {
            match remote.names().await {
                Ok(names) => {
                    let old: Vec<String> = names
                        .into_iter()
                        .filter(|n| n.split('/').next().is_some_and(other))
                        .collect();
                    remote.delete(&old).await;
                }
                Err(e) => tracing::warn!("cannot list old checkpoint parts: {e}"),
            }
        }
    }
}

impl CheckpointStore {
    /// Restores checkpoint `id` from the parts in `dirs` (one per process
    /// that wrote it) into this store's working copy: every part's entries
    /// (their keys are apart: sinks store theirs per process, see
    /// [`crate::checkpoint`]), and every part's keyed databases.
    pub fn restore_parts(
        &self,
        id: CheckpointId,
        dirs: &[PathBuf],
        identities: &[(StateUid, String)],
    ) -> Result<(StateStore, Restored)> {
        let scratch = self.keyed_working_dir().with_file_name("merge");
        let mut meta = None;
        let mut ops = vec![];
        let mut keyed = BTreeMap::new();
        for dir in dirs {
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
