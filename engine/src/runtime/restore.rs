//! Restoring the newest complete checkpoint into a job's nodes before it
//! runs: connector positions to sources (every subtask gets them all),
//! operator state to operators (keyed entries to the instance owning their
//! key group), pending commits to sinks; keyed tables' parts are handed to
//! the instances' databases by [`super::state::StateSetup`].

use std::collections::BTreeMap;
use std::time::Instant;

use super::{source, Forks, SourceForks};
use crate::checkpoint::{
    is_connector_key, sink_state_share, subtask_finished, CheckpointConfig, Coordinator,
    FINISHED_KEY,
};
use crate::connector::{SinkState, Source};
use crate::graph::{JobGraph, NodeId, NodeKind};
use crate::message::CheckpointId;
use crate::metrics::{names, Metrics};
use crate::state::checkpoints::{CheckpointStore, Restored};
use crate::state::keyed::backend::Part;
use crate::state::remote::{Manifest, RemoteCheckpoints};
use crate::state::shared::Peers;
use crate::state::store::StateStore;
use crate::state::{instance_of, store_key, StateEntry, StateOp, OPERATOR_STATE};
use crate::{EngineError, Result};

/// Restores the newest complete checkpoint into the graph's nodes and returns
/// the coordinator for the checkpoints to come.
pub(super) async fn prepare_checkpoints(
    graph: &mut JobGraph,
    forks: &mut (&mut Forks, &mut SourceForks),
    config: CheckpointConfig,
    metrics: &Metrics,
) -> Result<(Coordinator, BTreeMap<NodeId, Vec<Part>>)> {
    for node in &graph.nodes {
        if let NodeKind::Source(s) = &node.kind {
            if !s.supports_checkpoints() {
                return Err(EngineError::State(format!(
                    "source '{}' cannot be checkpointed; run without 'execution.checkpointing.interval'",
                    node.name
                )));
            }
        }
    }
    let identities = graph.identities();
    let started = Instant::now();
    let uploaded = match (&config.peers, &config.remote) {
        // Every process uploads its parts under a name of this generation's.
        (Some(peers), _) => {
            peers.fence_others().await?;
            let owned = owned_key_groups(graph, &*forks.0, config.key_groups);
            let wanted = move |file: &str| wanted_file(&owned, file);
            peers.fetch_newest(&wanted).await?;
            vec![]
        }
        (None, Some(remote)) => fetch_newest(remote, &config.checkpoints_dir).await?,
        (None, None) => vec![],
    };
    let mut checkpoints = CheckpointStore::new(
        config.job_dir.clone(),
        config.checkpoints_dir.clone(),
        config.retained,
    );
    if let Some(peers) = &config.peers {
        checkpoints = checkpoints.shared_by(peers.me);
    }
    let peers = config.peers.clone();
    let (checkpoints, identities, restored) = tokio::task::spawn_blocking(move || {
        let r = match &peers {
            Some(peers) => restore_shared(&checkpoints, peers, &identities),
            None => checkpoints.restore_latest(&identities),
        };
        (checkpoints, identities, r)
    })
    .await
    .map_err(|e| EngineError::State(e.to_string()))?;
    let (store, restored) = restored?;
    let mut last_id = 0;
    let mut keyed = BTreeMap::new();
    let mut first = vec![];
    if let Some(r) = restored {
        if r.meta.key_groups != config.key_groups {
            return Err(EngineError::State(format!(
                "checkpoint {} in '{}' spreads keyed state over {} key groups, and this job sets 'pipeline.max-parallelism' to {}; set it back to {}",
                r.meta.id,
                checkpoints.dir().display(),
                r.meta.key_groups,
                config.key_groups,
                r.meta.key_groups
            )));
        }
        first = restore_nodes(graph, forks, r.entries, config.key_groups).await?;
        keyed = r.keyed;
        last_id = r.meta.id;
        let ms = started.elapsed().as_millis() as u64;
        metrics.gauge(names::RESTORE_DURATION_MS, "job").set(ms);
        tracing::info!(
            checkpoint = last_id,
            ms,
            bytes = r.meta.total_bytes(),
            "resumed from checkpoint"
        );
    }
    let coordinator = Coordinator::new(
        config,
        store,
        checkpoints,
        identities,
        last_id,
        metrics.clone(),
    )
    .with_first(first)
    .with_uploaded(uploaded);
    Ok((coordinator, keyed))
}

/// The key groups this process's instances of each parallel operator own
/// (by the operator's state identity), out of `key_groups`.
fn owned_key_groups(
    graph: &JobGraph,
    forks: &Forks,
    key_groups: u16,
) -> BTreeMap<crate::graph::StateUid, Vec<bool>> {
    forks
        .iter()
        .filter_map(|(id, fork)| {
            let node = graph.nodes.get(*id)?;
            let mine = fork.first..fork.first + fork.extra.len() + 1;
            let owned = (0..key_groups)
                .map(|kg| mine.contains(&instance_of(kg, fork.total, key_groups)))
                .collect();
            Some((node.uid, owned))
        })
        .collect()
}

/// Whether a file of a checkpoint part (`keyed/<uid>-<first>-<last>/...`
/// for keyed state) is needed here: keyed state of a parallel operator only
/// when it holds key groups this process owns (`owned`); anything else is.
fn wanted_file(owned: &BTreeMap<crate::graph::StateUid, Vec<bool>>, file: &str) -> bool {
    let Some(rest) = file.strip_prefix("keyed/") else {
        return true;
    };
    let dir = rest.split('/').next().unwrap_or_default();
    let Some((uid, groups)) = crate::state::keyed::backend::parse_part_name(dir) else {
        return true;
    };
    match owned.get(&uid) {
        Some(mine) => groups
            .into_iter()
            .any(|kg| mine.get(usize::from(kg)).copied().unwrap_or(true)),
        None => true,
    }
}

/// The newest checkpoint all processes of a job running as several
/// completed, merged from their parts (see [`crate::state::shared`]).
fn restore_shared(
    checkpoints: &CheckpointStore,
    peers: &Peers,
    identities: &[(crate::graph::StateUid, String)],
) -> Result<(StateStore, Option<Restored>)> {
    match peers.newest_complete() {
        Some((id, dirs)) => {
            let (store, restored) = checkpoints.restore_parts(id, &dirs, identities)?;
            Ok((store, Some(restored)))
        }
        None => Ok((checkpoints.fresh()?, None)),
    }
}

/// The checkpoints on object storage (newest first), the newest one
/// downloaded into the local checkpoints directory `local` (keeping the
/// files a local copy still has); local checkpoints newer than it never
/// completed and are removed.
async fn fetch_newest(
    remote: &RemoteCheckpoints,
    local: &std::path::Path,
) -> Result<Vec<Manifest>> {
    let manifests = remote.manifests().await?;
    let newest = manifests.first().map_or(0, |m| m.id);
    if let Ok(entries) = std::fs::read_dir(local) {
        for e in entries.flatten() {
            let id = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("chk-"))
                .and_then(|n| n.parse::<CheckpointId>().ok());
            if id.is_some_and(|id| id > newest) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    if let Some(m) = manifests.first() {
        tracing::info!(
            checkpoint = m.id,
            url = remote.url(),
            "fetching the newest checkpoint from object storage"
        );
        remote
            .download(m, &local.join(format!("chk-{}", m.id)))
            .await?;
    }
    Ok(manifests)
}

/// Restores a source (its subtasks: `first` and `extra`) from its entries;
/// returns the changes for the first checkpoint: the stored positions and
/// markers of subtasks are deleted there, since this run's subtasks store
/// their own (which cover every split they were handed).
fn restore_source(
    id: NodeId,
    first: &mut Box<dyn Source>,
    extra: Option<&mut Vec<Box<dyn Source>>>,
    mine: &[StateEntry],
) -> Result<Vec<StateOp>> {
    let ours = || mine.iter().filter(|e| e.key_group == OPERATOR_STATE);
    let subtasks_done: Vec<(usize, u32)> = ours()
        .filter_map(|e| subtask_finished(&e.key, &e.value))
        .collect();
    let every_subtask_done = subtasks_done
        .first()
        .is_some_and(|(_, n)| subtasks_done.len() == *n as usize);
    let mut all: Vec<&mut Box<dyn Source>> = std::iter::once(first)
        .chain(extra.into_iter().flatten())
        .collect();
    if ours().any(|e| e.key == FINISHED_KEY) || every_subtask_done {
        for s in all {
            *s = Box::new(source::Finished);
        }
        return Ok(vec![]);
    }
    let states: Vec<Vec<u8>> = ours()
        .filter(|e| is_connector_key(&e.key))
        .map(|e| e.value.clone())
        .collect();
    if !states.is_empty() {
        for s in all.iter_mut() {
            s.restore(&states)?;
        }
    }
    Ok(ours()
        .filter(|e| is_connector_key(&e.key) || subtask_finished(&e.key, &e.value).is_some())
        .map(|e| StateOp::Delete(store_key(id, OPERATOR_STATE, &e.key)))
        .collect())
}

async fn restore_nodes(
    graph: &mut JobGraph,
    (forks, source_forks): &mut (&mut Forks, &mut SourceForks),
    mut entries: BTreeMap<NodeId, Vec<StateEntry>>,
    key_groups: u16,
) -> Result<Vec<StateOp>> {
    let mut first = vec![];
    let share = graph.share.filter(|s| s.count > 1);
    for (id, node) in graph.nodes.iter_mut().enumerate() {
        let mine = entries.remove(&id).unwrap_or_default();
        // A node that had reached the end of its input: its source is not
        // read again, its operators start empty (what they emitted is in the
        // state downstream); a sink still completes its pending commit.
        let finished = mine
            .iter()
            .any(|e| e.key_group == OPERATOR_STATE && e.key == FINISHED_KEY);
        if finished {
            tracing::info!(node = %node.name, "finished before the checkpoint: not run again");
        }
        let wrap =
            |e: EngineError| EngineError::State(format!("cannot restore '{}': {e}", node.name));
        match &mut node.kind {
            NodeKind::Source(s) => {
                let extra = source_forks.get_mut(&id).map(|f| &mut f.extra);
                let cleanup = restore_source(id, s, extra, &mine);
                first.extend(cleanup.map_err(wrap)?);
            }
            NodeKind::Sink(s) => {
                let (index, count) = share.map_or((0, 1), |s| (s.index, s.count.max(1)));
                let mut states = vec![];
                for e in mine.iter().filter(|e| e.key_group == OPERATOR_STATE) {
                    let Some(from) = sink_state_share(&e.key) else {
                        continue;
                    };
                    // Each stored share's pending commits go to one process;
                    // every process's sink stores its own again at the next
                    // checkpoint, so none stays in the working copy.
                    first.push(StateOp::Delete(store_key(id, OPERATOR_STATE, &e.key)));
                    if from % count == index {
                        states.push(SinkState {
                            share: from,
                            bytes: e.value.clone(),
                        });
                    }
                }
                if !states.is_empty() {
                    s.restore(&states).await.map_err(wrap)?;
                }
            }
            NodeKind::Operator(_) if finished => {}
            NodeKind::Operator(op) => match forks.get_mut(&id) {
                None => op.restore(mine).map_err(wrap)?,
                Some(fork) => {
                    // Keyed state to the instance owning its key group (of
                    // a job running as several processes: this process's
                    // instances take theirs); operator-wide state (the
                    // watermark) to every instance.
                    let n = fork.extra.len() + 1;
                    let mut parts: Vec<Vec<StateEntry>> = (0..n).map(|_| vec![]).collect();
                    for e in mine {
                        if e.key_group == OPERATOR_STATE {
                            for p in parts.iter_mut() {
                                p.push(e.clone());
                            }
                        } else if let Some(p) = instance_of(e.key_group, fork.total, key_groups)
                            .checked_sub(fork.first)
                            .and_then(|i| parts.get_mut(i))
                        {
                            p.push(e);
                        }
                    }
                    let mut parts = parts.into_iter();
                    op.restore(parts.next().unwrap_or_default()).map_err(wrap)?;
                    for (inst, part) in fork.extra.iter_mut().zip(parts) {
                        inst.restore(part).map_err(wrap)?;
                    }
                }
            },
            NodeKind::Union => {}
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process downloads the keyed state of the key groups its instances
    /// own, and everything else.
    #[test]
    fn only_the_keyed_parts_of_owned_key_groups_are_wanted() {
        let owned: BTreeMap<crate::graph::StateUid, Vec<bool>> =
            [(0x1a, vec![true, true, false, false])]
                .into_iter()
                .collect();
        assert!(wanted_file(&owned, "keyed/1a-0-1/000007.sst"));
        assert!(wanted_file(&owned, "keyed/1a-1-2/000007.sst"), "overlaps");
        assert!(!wanted_file(&owned, "keyed/1a-2-3/000007.sst"));
        assert!(wanted_file(&owned, "keyed/2b-2-3/000007.sst"), "runs once");
        assert!(wanted_file(&owned, "db/CURRENT"));
        assert!(wanted_file(&owned, "_metadata"));
    }
}
