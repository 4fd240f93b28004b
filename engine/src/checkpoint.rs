//! The checkpoint coordinator: triggers aligned barriers at the sources every
//! interval, collects what every source and task wrote at the barrier, stores it
//! as one checkpoint, and announces its completion (sinks commit, sources commit
//! their offsets).
//!
//! One checkpoint is in flight at a time. Once a source has ended, no further
//! checkpoint is started: the ended part of the graph could not acknowledge it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::graph::NodeId;
use crate::message::CheckpointId;
use crate::metrics::{names, Metrics};
use crate::state::checkpoints::CheckpointStore;
use crate::state::store::StateStore;
use crate::state::{store_key, StateOp, OPERATOR_STATE};

/// The key under which a source or sink keeps its state.
pub(crate) const CONNECTOR_STATE_KEY: &[u8] = b"connector";

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
}

/// What a source or task hands the coordinator.
pub(crate) enum Ack {
    /// Its writes for checkpoint `id` (sources and tasks acknowledge once each).
    Snapshot { id: CheckpointId, ops: Vec<StateOp> },
    /// A source ended: checkpoints stop.
    SourceEnded,
}

/// A source's link to the coordinator.
pub struct SourceCheckpoint {
    node: NodeId,
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
            store_key(self.node, OPERATOR_STATE, CONNECTOR_STATE_KEY),
            state,
        )];
        // The coordinator stops taking checkpoints once any source ends; in a
        // job with several sources another one may still answer a checkpoint
        // it had requested. That checkpoint is abandoned, not an error (tasks
        // ignore the same case).
        let _ = self.acks.send(Ack::Snapshot { id, ops });
    }

    pub(crate) fn completed(&self) -> watch::Receiver<CheckpointId> {
        self.completed.clone()
    }
}

/// A task's link to the coordinator.
#[derive(Clone)]
pub(crate) struct TaskCheckpoint {
    pub key_groups: u16,
    pub acks: mpsc::UnboundedSender<Ack>,
    pub completed: watch::Receiver<CheckpointId>,
}

/// The coordinator's end of the channels, before it runs.
pub(crate) struct Coordinator {
    config: CheckpointConfig,
    store: Arc<StateStore>,
    checkpoints: Arc<CheckpointStore>,
    plan: Arc<str>,
    trigger: watch::Sender<CheckpointId>,
    completed: watch::Sender<CheckpointId>,
    acks_tx: mpsc::UnboundedSender<Ack>,
    acks: mpsc::UnboundedReceiver<Ack>,
    last_id: CheckpointId,
    metrics: Metrics,
}

impl Coordinator {
    /// A coordinator whose next checkpoint follows `last_id` (the restored one).
    pub fn new(
        config: CheckpointConfig,
        store: StateStore,
        checkpoints: CheckpointStore,
        plan: String,
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
            plan: Arc::from(plan),
            trigger,
            completed,
            acks_tx,
            acks,
            last_id,
            metrics,
        }
    }

    pub fn source(&self, node: NodeId) -> SourceCheckpoint {
        SourceCheckpoint {
            node,
            trigger: self.trigger.subscribe(),
            completed: self.completed.subscribe(),
            acks: self.acks_tx.clone(),
            last: AtomicU64::new(self.last_id),
        }
    }

    pub fn task(&self) -> TaskCheckpoint {
        TaskCheckpoint {
            key_groups: self.config.key_groups,
            acks: self.acks_tx.clone(),
            completed: self.completed.subscribe(),
        }
    }

    pub fn checkpoints(&self) -> Arc<CheckpointStore> {
        self.checkpoints.clone()
    }

    /// Runs until a source ends or every participant is gone. `participants`
    /// is the number of acknowledgements a checkpoint needs.
    pub async fn run(mut self, participants: usize) {
        let count = self.metrics.counter(names::CHECKPOINTS_COMPLETED, "job");
        let failed = self.metrics.counter(names::CHECKPOINTS_FAILED, "job");
        let duration = self.metrics.gauge(names::CHECKPOINT_DURATION_MS, "job");
        let size = self.metrics.gauge(names::CHECKPOINT_SIZE_BYTES, "job");
        let incremental = self
            .metrics
            .gauge(names::CHECKPOINT_INCREMENTAL_BYTES, "job");
        drop(self.acks_tx);
        let mut id = self.last_id;
        loop {
            // Acks that arrive between checkpoints can only be stale or an end.
            let sleep = tokio::time::sleep(self.config.interval);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    ack = self.acks.recv() => match ack {
                        None | Some(Ack::SourceEnded) => return,
                        Some(Ack::Snapshot { .. }) => {}
                    },
                }
            }
            id += 1;
            let started = Instant::now();
            self.trigger.send_replace(id);
            let mut ops = vec![];
            let mut acked = 0;
            while acked < participants {
                match self.acks.recv().await {
                    None | Some(Ack::SourceEnded) => {
                        tracing::info!(
                            checkpoint = id,
                            "a source ended: checkpoint {id} abandoned, no further checkpoints"
                        );
                        return;
                    }
                    Some(Ack::Snapshot { id: a, ops: o }) if a == id => {
                        ops.extend(o);
                        acked += 1;
                    }
                    Some(Ack::Snapshot { .. }) => {}
                }
            }
            let (store, checkpoints, plan) = (
                self.store.clone(),
                self.checkpoints.clone(),
                self.plan.clone(),
            );
            let key_groups = self.config.key_groups;
            let written = tokio::task::spawn_blocking(move || {
                store.apply(ops)?;
                checkpoints.write(&store, id, &plan, key_groups)
            })
            .await;
            match written {
                Ok(Ok(meta)) => {
                    let ms = started.elapsed().as_millis() as u64;
                    count.add(1);
                    duration.set(ms);
                    size.set(meta.total_bytes());
                    incremental.set(meta.incremental_bytes);
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
                    failed.add(1);
                    tracing::warn!(checkpoint = id, "checkpoint failed: {e}");
                }
                Err(e) => {
                    failed.add(1);
                    tracing::warn!(checkpoint = id, "checkpoint failed: {e}");
                }
            }
        }
    }
}
