//! The checkpoint coordinator: triggers aligned barriers at the sources every
//! interval, collects what every source and task wrote at the barrier, stores it
//! as one checkpoint, and announces its completion (sinks commit, sources commit
//! their offsets).
//!
//! One checkpoint is in flight at a time. Checkpoints go on after part of the
//! graph has finished (Flink's FLIP-147): a source or task that reaches the
//! end of its input says so, and is no longer waited for; its "finished"
//! marker goes into the first checkpoint it did not acknowledge, which is the
//! first whose state holds everything it emitted (downstream tasks align a
//! barrier with the end of an input). A restore does not run a finished
//! source again nor restore a finished operator. A sink whose input ended
//! asks for a checkpoint at once and commits its last rows when that
//! checkpoint completes (Flink's final checkpoint). A participant that goes
//! away without finishing (a stop, a failure) abandons the checkpoint in
//! flight and ends the checkpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::graph::{scope_label, NodeId, StateUid};
use crate::message::CheckpointId;
use crate::metrics::{names, Metrics};
use crate::state::checkpoints::CheckpointStore;
use crate::state::checkpoints::{CheckpointMeta, METADATA_FILE};
use crate::state::remote::{Manifest, RemoteCheckpoints};
use crate::state::shared::Peers;
use crate::state::store::StateStore;
use crate::state::{store_key, StateOp, OPERATOR_STATE};

/// The key under which a source or sink keeps its state.
pub(crate) const CONNECTOR_STATE_KEY: &[u8] = b"connector";

/// How long a checkpoint may wait for its participants before the log says
/// which ones it waits for.
const SLOW_CHECKPOINT: Duration = Duration::from_secs(10);

/// The next checkpoint completed on `rx` (as from
/// [`crate::connector::SourceContext::completed_checkpoints`]); pends forever
/// without checkpoints, or once the coordinator is gone.
pub async fn next_completed(rx: &mut Option<watch::Receiver<CheckpointId>>) -> CheckpointId {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => *r.borrow_and_update(),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// How a job checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Time between the completion of one checkpoint and the start of the next
    /// (`execution.checkpointing.interval`).
    pub interval: Duration,
    /// The job's working state (`<state dir>/<job>`).
    pub job_dir: PathBuf,
    /// Where checkpoints go (`state.checkpoints.dir`, default `<job dir>/checkpoints`).
    pub checkpoints_dir: PathBuf,
    /// How many completed checkpoints are kept (`state.checkpoints.num-retained`).
    pub retained: usize,
    /// Key groups of keyed state (`pipeline.max-parallelism`).
    pub key_groups: u16,
    /// Where checkpoints are stored when they live on object storage
    /// (`state.checkpoints.dir` = `s3://...`): `checkpoints_dir` is then the
    /// local copy, and a checkpoint is complete once uploaded.
    pub remote: Option<RemoteCheckpoints>,
    /// Of a job running as several processes: where all of them checkpoint
    /// (`checkpoints_dir` is then this process's directory among them), and
    /// which this one is. A
    /// checkpoint completes once every process wrote its part.
    pub peers: Option<Peers>,
}

/// The marker of a node that reached the end of its input.
pub(crate) const FINISHED_KEY: &[u8] = b"finished";

/// The key of a source's position: [`CONNECTOR_STATE_KEY`] for a source
/// that runs once, `connector/<i>` for subtask `i` of several.
pub(crate) fn connector_key(subtask: Option<usize>) -> Vec<u8> {
    match subtask {
        None => CONNECTOR_STATE_KEY.to_vec(),
        Some(i) => format!("connector/{i}").into_bytes(),
    }
}

/// The marker of subtask `i` of a source that runs as several and reached
/// the end of its splits: `finished/<i>`, its value the number of subtasks.
pub(crate) fn subtask_finished_key(i: usize) -> Vec<u8> {
    format!("finished/{i}").into_bytes()
}

/// A subtask's "finished" marker read back: (subtask, number of subtasks);
/// `None` for any other key.
pub(crate) fn subtask_finished(key: &[u8], value: &[u8]) -> Option<(usize, u32)> {
    let i = std::str::from_utf8(key.strip_prefix(b"finished/")?)
        .ok()?
        .parse()
        .ok()?;
    Some((i, u32::from_be_bytes(value.try_into().ok()?)))
}

/// Which process wrote a sink's state stored under `key` (see
/// [`TaskCheckpoint::sink_key`]); `None` for any other key.
pub(crate) fn sink_state_share(key: &[u8]) -> Option<usize> {
    if key == CONNECTOR_STATE_KEY {
        return Some(0);
    }
    std::str::from_utf8(key.strip_prefix(b"connector/")?)
        .ok()?
        .parse()
        .ok()
}

/// Whether `key` is one of a source's positions (of any subtask).
pub(crate) fn is_connector_key(key: &[u8]) -> bool {
    key == CONNECTOR_STATE_KEY || key.starts_with(b"connector/")
}

/// Identifies a source or task to the coordinator.
pub(crate) type Participant = usize;

/// What a source or task hands the coordinator.
pub(crate) enum Ack {
    /// Its writes for checkpoint `id` (sources and tasks acknowledge once each).
    Snapshot {
        id: CheckpointId,
        from: Participant,
        ops: Vec<StateOp>,
        /// The live bytes of each of its operator instances' keyed state.
        keyed_bytes: Vec<(NodeId, u64)>,
    },
    /// A sink's input ended: it waits for a checkpoint to commit its last rows.
    Finishing,
    /// It reached the end of its input; `ops` (its finished markers) belong in
    /// the first checkpoint it did not acknowledge.
    Finished {
        from: Participant,
        ops: Vec<StateOp>,
    },
    /// It went away without finishing (stopped or failed): checkpoints end.
    Gone,
}

/// The finished markers of `nodes`.
pub(crate) fn finished_markers(nodes: impl IntoIterator<Item = NodeId>) -> Vec<StateOp> {
    nodes
        .into_iter()
        .map(|n| StateOp::Put(store_key(n, OPERATOR_STATE, FINISHED_KEY), vec![1]))
        .collect()
}

/// A source's link to the coordinator.
pub struct SourceCheckpoint {
    node: NodeId,
    /// Its subtask, when the source runs as several.
    subtask: Option<usize>,
    from: Participant,
    trigger: watch::Receiver<CheckpointId>,
    completed: watch::Receiver<CheckpointId>,
    acks: mpsc::UnboundedSender<Ack>,
    last: AtomicU64,
}

impl SourceCheckpoint {
    pub(crate) fn due(&self) -> Option<CheckpointId> {
        let id = *self.trigger.borrow();
        (id > self.last.load(Ordering::Relaxed)).then_some(id)
    }

    pub(crate) async fn requested(&self) -> CheckpointId {
        let mut rx = self.trigger.clone();
        let last = self.last.load(Ordering::Relaxed);
        let id = rx.wait_for(|id| *id > last).await.map(|id| *id);
        match id {
            Ok(id) => id,
            Err(_) => std::future::pending().await,
        }
    }

    pub(crate) fn acknowledge(&self, id: CheckpointId, state: Vec<u8>) {
        self.last.fetch_max(id, Ordering::Relaxed);
        let ops = vec![StateOp::Put(
            store_key(self.node, OPERATOR_STATE, &connector_key(self.subtask)),
            state,
        )];
        // The coordinator is gone once the job stops; a late answer is no error.
        let _ = self.acks.send(Ack::Snapshot {
            id,
            from: self.from,
            ops,
            keyed_bytes: vec![],
        });
    }

    pub(crate) fn completed(&self) -> watch::Receiver<CheckpointId> {
        self.completed.clone()
    }
}

/// A task's link to the coordinator.
#[derive(Clone)]
pub(crate) struct TaskCheckpoint {
    pub key_groups: u16,
    /// Where checkpoints go (instances write their keyed state there).
    pub checkpoints_dir: PathBuf,
    /// Who it is to the coordinator.
    pub from: Participant,
    pub acks: mpsc::UnboundedSender<Ack>,
    /// The newest checkpoint triggered (a finishing sink answers it itself).
    pub trigger: watch::Receiver<CheckpointId>,
    pub completed: watch::Receiver<CheckpointId>,
    /// The key of a sink's state: of a job running as several processes,
    /// one per process (`connector/<i>`), so that the merged parts keep every
    /// process's pending commits.
    pub sink_key: Vec<u8>,
}

impl TaskCheckpoint {
    /// Sends `ack`; the coordinator may be gone if the job is shutting down.
    pub fn send(&self, ack: Ack) {
        let _ = self.acks.send(ack);
    }
}

/// The coordinator's end of the channels, before it runs.
pub(crate) struct Coordinator {
    config: CheckpointConfig,
    store: Arc<StateStore>,
    checkpoints: Arc<CheckpointStore>,
    /// Each node's identity and name, by node index: what its state is
    /// stored under.
    identities: Arc<Vec<(StateUid, String)>>,
    trigger: watch::Sender<CheckpointId>,
    completed: watch::Sender<CheckpointId>,
    acks_tx: mpsc::UnboundedSender<Ack>,
    acks: mpsc::UnboundedReceiver<Ack>,
    last_id: CheckpointId,
    metrics: Metrics,
    /// Changes for the first checkpoint (restored per-subtask keys that the
    /// subtasks of this run write anew).
    first: Vec<StateOp>,
    /// The retained checkpoints on object storage, oldest first.
    uploaded: Vec<Manifest>,
    /// Whether earlier generations' parts were removed (see [`Peers`]).
    peers_cleaned: bool,
}

impl Coordinator {
    /// A coordinator whose next checkpoint follows `last_id` (the restored one).
    pub fn new(
        config: CheckpointConfig,
        store: StateStore,
        checkpoints: CheckpointStore,
        identities: Vec<(StateUid, String)>,
        last_id: CheckpointId,
        metrics: Metrics,
    ) -> Self {
        let (trigger, _) = watch::channel(last_id);
        let (completed, _) = watch::channel(last_id);
        let (acks_tx, acks) = mpsc::unbounded_channel();
        Self {
            config,
            store: Arc::new(store),
            checkpoints: Arc::new(checkpoints),
            identities: Arc::new(identities),
            trigger,
            completed,
            acks_tx,
            acks,
            last_id,
            metrics,
            first: vec![],
            uploaded: vec![],
            peers_cleaned: false,
        }
    }

    /// The checkpoints already on object storage (newest first), which the
    /// next upload builds on and retention keeps.
    pub fn with_uploaded(mut self, mut manifests: Vec<Manifest>) -> Self {
        manifests.truncate(self.config.retained.max(1));
        manifests.reverse();
        self.uploaded = manifests;
        self
    }

    /// Adds changes to the first checkpoint, before what its participants write.
    pub fn with_first(mut self, ops: Vec<StateOp>) -> Self {
        self.first = ops;
        self
    }

    /// The link of source `node` (of its `subtask`, when it runs as several).
    pub fn source(
        &self,
        node: NodeId,
        subtask: Option<usize>,
        from: Participant,
    ) -> SourceCheckpoint {
        SourceCheckpoint {
            node,
            subtask,
            from,
            trigger: self.trigger.subscribe(),
            completed: self.completed.subscribe(),
            acks: self.acks_tx.clone(),
            last: AtomicU64::new(self.last_id),
        }
    }

    pub fn task(&self, from: Participant) -> TaskCheckpoint {
        TaskCheckpoint {
            key_groups: self.config.key_groups,
            checkpoints_dir: self.config.checkpoints_dir.clone(),
            from,
            acks: self.acks_tx.clone(),
            trigger: self.trigger.subscribe(),
            completed: self.completed.subscribe(),
            sink_key: connector_key(self.config.peers.as_ref().map(|p| p.me.index)),
        }
    }

    pub fn checkpoints(&self) -> Arc<CheckpointStore> {
        self.checkpoints.clone()
    }

    /// The other processes, of a job running as several.
    pub fn peers(&self) -> Option<Peers> {
        self.config.peers.clone()
    }

    /// The checkpoints on object storage, if they live there.
    pub fn remote(&self) -> Option<RemoteCheckpoints> {
        self.config.remote.clone()
    }

    /// Runs until every participant has finished, or one went away without
    /// finishing. `participants` (their names) are numbered from 0.
    pub async fn run(mut self, participants: Vec<String>) {
        // Let go of our own sender, so that `recv` ends once every participant has.
        let (unused, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.acks_tx, unused));
        let mut round = Round {
            live: (0..participants.len()).collect(),
            carry: std::mem::take(&mut self.first),
            urgent: false,
            early: vec![],
        };
        let mut id = self.last_id;
        loop {
            // Between checkpoints: the interval, or at once for a finishing sink.
            let sleep = tokio::time::sleep(self.config.interval);
            tokio::pin!(sleep);
            while !round.urgent {
                tokio::select! {
                    _ = &mut sleep => break,
                    ack = self.acks.recv() => match round.between(ack, id) {
                        Flow::Go => {}
                        Flow::End => return,
                    },
                }
            }
            if round.live.is_empty() {
                return;
            }
            round.urgent = false;
            id += 1;
            let started = Instant::now();
            self.trigger.send_replace(id);
            let mut pending = round.live.clone();
            let mut ops = std::mem::take(&mut round.carry);
            let mut keyed_bytes: BTreeMap<NodeId, u64> = BTreeMap::new();
            for ack in round.take_early(id) {
                round.during(Some(ack), id, &mut pending, &mut ops, &mut keyed_bytes);
            }
            let mut told = false;
            while !pending.is_empty() {
                let ack = tokio::select! {
                    ack = self.acks.recv() => ack,
                    _ = tokio::time::sleep(SLOW_CHECKPOINT), if !told => {
                        told = true;
                        let waiting: Vec<&str> = pending
                            .iter()
                            .filter_map(|p| participants.get(*p).map(String::as_str))
                            .collect();
                        tracing::warn!(checkpoint = id, "checkpoint {id} still waits for: {}", waiting.join(", "));
                        continue;
                    }
                };
                let flow = round.during(ack, id, &mut pending, &mut ops, &mut keyed_bytes);
                if flow == Flow::End {
                    tracing::info!(
                        checkpoint = id,
                        "the job is stopping: checkpoint {id} abandoned"
                    );
                    return;
                }
            }
            self.write(id, ops, keyed_bytes, started).await;
            if round.live.is_empty() {
                return;
            }
        }
    }

    /// `vigil_state_bytes{scope="Kind#node"}`: each node's state as the
    /// backend holds it (nodes that never stored any are left out).
    fn report_state_bytes(&self, bytes: &[u64]) {
        for (node, ((_, name), b)) in self.identities.iter().zip(bytes).enumerate() {
            if *b > 0 {
                self.metrics
                    .gauge(names::STATE_BYTES, &scope_label(name, node))
                    .set(*b);
            }
        }
    }

    /// Uploads the checkpoint `meta` describes, when checkpoints live on
    /// object storage, and lets go of those beyond the retained number.
    async fn upload(&mut self, meta: &CheckpointMeta) -> crate::Result<()> {
        let Some(remote) = self.config.remote.clone() else {
            return Ok(());
        };
        let dir = self.checkpoints.dir().join(format!("chk-{}", meta.id));
        let mut files = meta.files.clone();
        let metadata = tokio::fs::metadata(dir.join(METADATA_FILE))
            .await
            .map_err(|e| crate::EngineError::State(format!("checkpoint {}: {e}", meta.id)))?;
        files.insert(METADATA_FILE.to_string(), metadata.len());
        let manifest = remote
            .upload(meta.id, &dir, &files, self.uploaded.last())
            .await?;
        self.uploaded.push(manifest);
        let excess = self
            .uploaded
            .len()
            .saturating_sub(self.config.retained.max(1));
        self.uploaded.drain(..excess);
        if excess > 0 {
            remote.retain(&self.uploaded).await?;
        }
        Ok(())
    }

    /// Of a job running as several processes: returns once every process
    /// wrote its part of checkpoint `id` (a process that died never does:
    /// the membership change restarts this one meanwhile). The first
    /// completion of a generation removes the parts of earlier ones.
    async fn await_peers(&mut self, id: CheckpointId) -> crate::Result<()> {
        let Some(peers) = self.config.peers.clone() else {
            return Ok(());
        };
        let waiting = Instant::now();
        let mut told = false;
        loop {
            if !told && waiting.elapsed() > SLOW_CHECKPOINT {
                told = true;
                tracing::warn!(
                    checkpoint = id,
                    "checkpoint {id} still waits for the parts of the job's other processes"
                );
            }
            let written = match &peers.remote {
                Some(remote) => peers.all_uploaded(remote, id).await,
                None => {
                    let p = peers.clone();
                    tokio::task::spawn_blocking(move || p.all_written(id))
                        .await
                        .unwrap_or(false)
                }
            };
            if written {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Read after this process's part was written: a newer generation
        // either fenced this one before, or saw the checkpoint complete.
        if peers.fenced().await {
            return Err(crate::EngineError::State(format!(
                "checkpoint {id} does not complete: a newer generation of the job's processes took over from an earlier checkpoint (this process is a zombie and stops with the membership change)"
            )));
        }
        if peers.me.index == 0 && !self.peers_cleaned {
            self.peers_cleaned = true;
            peers.remove_older_generations().await;
        }
        Ok(())
    }

    /// Stores checkpoint `id` and announces its completion.
    async fn write(
        &mut self,
        id: CheckpointId,
        ops: Vec<StateOp>,
        keyed_bytes: BTreeMap<NodeId, u64>,
        started: Instant,
    ) {
        let (store, checkpoints, identities) = (
            self.store.clone(),
            self.checkpoints.clone(),
            self.identities.clone(),
        );
        let key_groups = self.config.key_groups;
        let written = tokio::task::spawn_blocking(move || {
            let uids: Vec<StateUid> = identities.iter().map(|(u, _)| *u).collect();
            let ops = ops
                .into_iter()
                .map(|op| op.under_uids(&uids))
                .collect::<crate::Result<Vec<_>>>()?;
            store.apply(ops)?;
            let meta = checkpoints.write(&store, id, &identities, key_groups)?;
            let mut bytes = store.bytes_by_uid(&uids);
            // Keyed state: the live data of each instance's database.
            for (node, b) in keyed_bytes {
                if let Some(total) = bytes.get_mut(node) {
                    *total += b;
                }
            }
            Ok::<_, crate::EngineError>((meta, bytes))
        })
        .await;
        if let Ok(Ok((_, bytes))) = &written {
            self.report_state_bytes(bytes);
        }
        let written = match written {
            Ok(Ok((meta, _))) => match self.upload(&meta).await {
                Ok(()) => match self.await_peers(id).await {
                    Ok(()) => Ok(Ok((meta, ()))),
                    Err(e) => Ok(Err(e)),
                },
                Err(e) => Ok(Err(e)),
            },
            Ok(Err(e)) => Ok(Err(e)),
            Err(e) => Err(e),
        };
        let m = &self.metrics;
        match written {
            Ok(Ok((meta, _))) => {
                let ms = started.elapsed().as_millis() as u64;
                m.counter(names::CHECKPOINTS_COMPLETED, "job").add(1);
                m.gauge(names::LAST_CHECKPOINT, "job").set(id);
                m.gauge(names::CHECKPOINT_DURATION_MS, "job").set(ms);
                m.gauge(names::CHECKPOINT_SIZE_BYTES, "job")
                    .set(meta.total_bytes());
                m.gauge(names::CHECKPOINT_INCREMENTAL_BYTES, "job")
                    .set(meta.incremental_bytes);
                tracing::info!(
                    checkpoint = id,
                    ms,
                    bytes = meta.total_bytes(),
                    incremental = meta.incremental_bytes,
                    "checkpoint completed"
                );
                self.completed.send_replace(id);
            }
            Ok(Err(e)) => {
                m.counter(names::CHECKPOINTS_FAILED, "job").add(1);
                tracing::warn!(checkpoint = id, "checkpoint failed: {e}");
            }
            Err(e) => {
                m.counter(names::CHECKPOINTS_FAILED, "job").add(1);
                tracing::warn!(checkpoint = id, "checkpoint failed: {e}");
            }
        }
    }
}

/// Whether the coordinator goes on.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Go,
    End,
}

/// Who is still running, and what finished participants left for the next checkpoint.
struct Round {
    live: BTreeSet<Participant>,
    /// Finished markers of participants that had acknowledged the checkpoint
    /// in flight when they finished: they belong to the next one.
    carry: Vec<StateOp>,
    /// A sink waits for a checkpoint to commit its last rows.
    urgent: bool,
    /// Snapshots of checkpoints not yet triggered here: of a job running as
    /// several processes, another's barrier can reach this one's exchange
    /// readers first (when this one's writers have ended).
    early: Vec<Ack>,
}

impl Round {
    /// An acknowledgement between checkpoints (`last` the newest triggered):
    /// a stale snapshot, an early one, or an end.
    fn between(&mut self, ack: Option<Ack>, last: CheckpointId) -> Flow {
        match ack {
            None | Some(Ack::Gone) => Flow::End,
            Some(early @ Ack::Snapshot { .. }) => {
                if matches!(early, Ack::Snapshot { id, .. } if id > last) {
                    // The others are at it already: catch up at once.
                    self.early.push(early);
                    self.urgent = true;
                }
                Flow::Go
            }
            Some(Ack::Finishing) => {
                self.urgent = true;
                Flow::Go
            }
            Some(Ack::Finished { from, ops }) => {
                self.live.remove(&from);
                self.carry.extend(ops);
                if self.live.is_empty() {
                    Flow::End
                } else {
                    Flow::Go
                }
            }
        }
    }

    /// The early snapshots of checkpoint `id` (those of later ones stay).
    fn take_early(&mut self, id: CheckpointId) -> Vec<Ack> {
        let (now, later) = std::mem::take(&mut self.early)
            .into_iter()
            .partition(|a| matches!(a, Ack::Snapshot { id: a, .. } if *a == id));
        self.early = later;
        now
    }

    /// An acknowledgement while checkpoint `id` waits for `pending`.
    fn during(
        &mut self,
        ack: Option<Ack>,
        id: CheckpointId,
        pending: &mut BTreeSet<Participant>,
        ops: &mut Vec<StateOp>,
        keyed_bytes: &mut BTreeMap<NodeId, u64>,
    ) -> Flow {
        match ack {
            None | Some(Ack::Gone) => return Flow::End,
            Some(Ack::Snapshot {
                id: a,
                from,
                ops: o,
                keyed_bytes: k,
            }) if a == id && pending.remove(&from) => {
                ops.extend(o);
                for (node, b) in k {
                    *keyed_bytes.entry(node).or_default() += b;
                }
            }
            Some(early @ Ack::Snapshot { .. }) => {
                if matches!(early, Ack::Snapshot { id: a, .. } if a > id) {
                    self.early.push(early);
                }
            }
            Some(Ack::Finishing) => self.urgent = true,
            Some(Ack::Finished { from, ops: o }) => {
                self.live.remove(&from);
                if pending.remove(&from) {
                    // It ended before this checkpoint's barrier reached it:
                    // everything it emitted is in this checkpoint.
                    ops.extend(o);
                } else {
                    self.carry.extend(o);
                }
            }
        }
        Flow::Go
    }
}
