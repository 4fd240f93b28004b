//! Runs a [`JobGraph`] on tokio. Each source runs in its own task; chains of
//! operators (and the sink at their end) are fused into one task, so a batch
//! passes through filter, projection and aggregation without a channel hop.
//! Bounded channels between tasks give backpressure.
//!
//! A keyed operator with `parallelism` above one runs as that many tasks, fed
//! through a keyed exchange (see [`exchange`]); each instance owns a range of
//! key groups.
//!
//! With checkpointing, the state of the newest complete checkpoint is restored
//! into every node before anything runs (keyed state to the instance owning
//! its key group, whatever the parallelism was when it was written), and a
//! coordinator task triggers the next checkpoints (see [`crate::checkpoint`]).

mod exchange;
mod inputs;
mod merge;
mod source;
mod state;
mod task;

use std::collections::BTreeMap;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::checkpoint::{CheckpointConfig, Coordinator, CONNECTOR_STATE_KEY, FINISHED_KEY};
use crate::control::StopSignal;
use crate::graph::{Instances, JobGraph, NodeId, NodeKind};
use crate::metrics::{names, Metrics};
use crate::operator::Operator;
use crate::state::checkpoints::CheckpointStore;
use crate::state::keyed::backend::Part;
use crate::state::{instance_of, StateEntry, DEFAULT_KEY_GROUPS, OPERATOR_STATE};
use crate::{EngineError, Result};
use exchange::{KeyRouter, Output};
use source::{run_source, SourceTask};
use state::StateSetup;
use task::{run_task, Task};

/// Messages buffered on an edge between two tasks.
const CHANNEL_CAPACITY: usize = 16;

enum Placement {
    Source(usize),
    Task(usize),
    /// The tasks of a parallel operator's instances.
    Parallel(Vec<usize>),
}

/// A source or task that emits a node's rows (one per instance of the node).
#[derive(Clone, Copy)]
enum Producer {
    Source(usize),
    Task(usize),
}

impl Placement {
    fn producers(&self) -> Vec<Producer> {
        match self {
            Placement::Source(s) => vec![Producer::Source(*s)],
            Placement::Task(t) => vec![Producer::Task(*t)],
            Placement::Parallel(ts) => ts.iter().map(|t| Producer::Task(*t)).collect(),
        }
    }
}

/// Adds `out` to the outputs of `p`.
fn add_output(p: Producer, out: Output, tasks: &mut [Task], sources: &mut [SourceTask]) {
    match p {
        Producer::Source(s) => sources[s].outputs.push(out),
        Producer::Task(t) => tasks[t].outputs.push(out),
    }
}

/// The extra instances (beyond the graph's own) of each parallel operator.
type Forks = BTreeMap<NodeId, Vec<Box<dyn Operator>>>;

/// Creates the extra instances of the operators that run as several
/// ([`JobGraph::instances`]).
fn fork_parallel(graph: &JobGraph) -> Result<Forks> {
    let mut forks = Forks::new();
    for (id, (node, runs)) in graph.nodes.iter().zip(graph.instances()).enumerate() {
        let parallelism = match runs {
            Instances::Many(p) | Instances::Each(p) => p,
            Instances::Once(_) => continue,
        };
        let NodeKind::Operator(op) = &node.kind else {
            continue;
        };
        let mut extra = vec![];
        for _ in 1..parallelism {
            match op.fork()? {
                Some(f) => extra.push(f),
                None => break,
            }
        }
        if extra.len() + 1 == parallelism {
            forks.insert(id, extra);
        }
    }
    Ok(forks)
}

/// Places the instances of keyed operator `node` (one task each, `ops`):
/// every upstream task or source routes its rows to them by key group.
#[allow(clippy::too_many_arguments)]
fn place_keyed(
    node: &crate::graph::Node,
    id: NodeId,
    ops: Vec<Box<dyn Operator>>,
    upstream: &[Producer],
    keys: Vec<std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    key_groups: u16,
    setup: &StateSetup,
    tasks: &mut Vec<Task>,
    sources: &mut [SourceTask],
) -> Result<Vec<usize>> {
    let n = ops.len();
    let mut inputs: Vec<Vec<mpsc::Receiver<crate::message::Message>>> =
        (0..n).map(|_| vec![]).collect();
    for &up in upstream {
        let mut senders = vec![];
        for ins in inputs.iter_mut() {
            let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
            senders.push(tx);
            ins.push(rx);
        }
        let out = Output::Keyed(KeyRouter::new(keys.clone(), key_groups), senders);
        add_output(up, out, tasks, sources);
    }
    let mut instances = vec![];
    for (i, (op, inputs)) in ops.into_iter().zip(inputs).enumerate() {
        tasks.push(Task {
            name: format!("{} [{}/{n}]", node.name, i + 1),
            inputs,
            ops: vec![setup.stage(id, node.uid, i, n, op)?],
            sink: None,
            outputs: vec![],
        });
        instances.push(tasks.len() - 1);
    }
    Ok(instances)
}

/// Runs the job until every source is exhausted and every sink has flushed, or
/// until a task fails (the first error is returned and the rest are cancelled).
pub async fn run_job(graph: JobGraph, metrics: Metrics) -> Result<()> {
    run_job_with(graph, metrics, StopSignal::never(), None).await
}

/// As [`run_job`], and also returns (after sinks have flushed) once `stop` fires:
/// sources stop reading, open windows stay unfired, sinks flush.
pub async fn run_job_until(graph: JobGraph, metrics: Metrics, stop: StopSignal) -> Result<()> {
    run_job_with(graph, metrics, stop, None).await
}

/// As [`run_job_until`], with checkpoints when `checkpoints` is set: the job
/// first resumes from its newest complete checkpoint (if any), then takes one
/// every interval. A job that reaches the end of its input removes its
/// checkpoints (it is finished, as in Flink); a stopped or failed one keeps them.
pub async fn run_job_with(
    mut graph: JobGraph,
    metrics: Metrics,
    stop: StopSignal,
    checkpoints: Option<CheckpointConfig>,
) -> Result<()> {
    let n = graph.nodes.len();
    for node in &graph.nodes {
        if let Some(i) = node.inputs.iter().find(|&&i| i >= n) {
            return Err(EngineError::Graph(format!(
                "node '{}' reads from unknown node {i}",
                node.name
            )));
        }
    }
    let consumers = graph.consumers();
    let key_groups = checkpoints
        .as_ref()
        .map_or(DEFAULT_KEY_GROUPS, |c| c.key_groups);
    let mut forks = fork_parallel(&graph)?;
    let (coordinator, setup) = match checkpoints {
        Some(config) => {
            let (c, keyed) = prepare_checkpoints(&mut graph, &mut forks, config, &metrics).await?;
            let working = c.checkpoints().keyed_working_dir();
            let setup = StateSetup::new(&graph.state, key_groups, Some(working), keyed);
            (Some(c), setup)
        }
        None => (
            None,
            StateSetup::new(&graph.state, key_groups, None, BTreeMap::new()),
        ),
    };
    let mut placement: Vec<Option<Placement>> = (0..n).map(|_| None).collect();
    let mut tasks: Vec<Task> = vec![];
    let mut sources: Vec<SourceTask> = vec![];
    for (id, mut node) in graph.nodes.into_iter().enumerate() {
        if consumers[id] == 0 && !matches!(node.kind, NodeKind::Sink(_)) {
            return Err(EngineError::Graph(format!(
                "'{}' has no consumer",
                node.name
            )));
        }
        // Fuse into the input's task when this node is that input's only consumer.
        let fused = match (&node.kind, node.inputs.as_slice()) {
            (NodeKind::Operator(_) | NodeKind::Sink(_), [input]) if consumers[*input] == 1 => {
                match placement[*input] {
                    Some(Placement::Task(t)) if tasks[t].sink.is_none() => Some(t),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(extra) = forks.remove(&id) {
            let NodeKind::Operator(op) = std::mem::replace(&mut node.kind, NodeKind::Union) else {
                return Err(EngineError::Graph(format!(
                    "'{}' is not an operator",
                    node.name
                )));
            };
            let upstream = match node.inputs.first().and_then(|i| placement[*i].as_ref()) {
                Some(p) => p.producers(),
                None => {
                    return Err(EngineError::Graph(format!(
                        "parallel '{}' has no input",
                        node.name
                    )))
                }
            };
            let ops: Vec<Box<dyn Operator>> = std::iter::once(op).chain(extra).collect();
            placement[id] = Some(match ops[0].key_exprs() {
                Some(keys) => {
                    let n = ops.len();
                    tracing::info!(operator = %node.name, instances = n, "running parallel instances, rows exchanged by key group");
                    let instances = place_keyed(
                        &node,
                        id,
                        ops,
                        &upstream,
                        keys,
                        key_groups,
                        &setup,
                        &mut tasks,
                        &mut sources,
                    )?;
                    Placement::Parallel(instances)
                }
                None => {
                    // A stateless step in each instance of its input.
                    let n = ops.len();
                    let mut ts = vec![];
                    for (i, (op, up)) in ops.into_iter().zip(&upstream).enumerate() {
                        let Producer::Task(t) = up else {
                            return Err(EngineError::Graph(format!(
                                "'{}' must follow parallel tasks",
                                node.name
                            )));
                        };
                        tasks[*t].ops.push(setup.stage(id, node.uid, i, n, op)?);
                        ts.push(*t);
                    }
                    Placement::Parallel(ts)
                }
            });
            continue;
        }
        if let NodeKind::Source(source) = node.kind {
            sources.push(SourceTask {
                node: id,
                name: node.name,
                source,
                outputs: vec![],
            });
            placement[id] = Some(Placement::Source(sources.len() - 1));
            continue;
        }
        let t = match fused {
            Some(t) => t,
            None => {
                let mut inputs = vec![];
                for &i in &node.inputs {
                    let Some(upstream) = placement[i].as_ref().map(Placement::producers) else {
                        return Err(EngineError::Graph(format!(
                            "node {i} is used before it is defined"
                        )));
                    };
                    for up in upstream {
                        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                        add_output(up, Output::Forward(tx), &mut tasks, &mut sources);
                        inputs.push(rx);
                    }
                }
                tasks.push(Task {
                    name: node.name.clone(),
                    inputs,
                    ops: vec![],
                    sink: None,
                    outputs: vec![],
                });
                tasks.len() - 1
            }
        };
        match node.kind {
            NodeKind::Operator(op) => tasks[t].ops.push(setup.stage(id, node.uid, 0, 1, op)?),
            NodeKind::Sink(sink) => tasks[t].sink = Some((id, sink)),
            NodeKind::Union | NodeKind::Source(_) => {}
        }
        placement[id] = Some(Placement::Task(t));
    }

    let mut set: JoinSet<Result<()>> = JoinSet::new();
    let participants = sources.len() + tasks.len();
    let first_task = sources.len();
    for (p, s) in sources.into_iter().enumerate() {
        let link = coordinator
            .as_ref()
            .map(|c| (c.source(s.node, p), c.task(p)));
        set.spawn(run_source(s, metrics.clone(), stop.clone(), link));
    }
    for (p, t) in tasks.into_iter().enumerate() {
        let link = coordinator.as_ref().map(|c| c.task(first_task + p));
        set.spawn(run_task(t, link, metrics.clone()));
    }
    let checkpoint_store = coordinator.as_ref().map(|c| c.checkpoints());
    let coordinator = coordinator.map(|c| tokio::spawn(c.run(participants)));
    let mut first_err = None;
    while let Some(joined) = set.join_next().await {
        let res = match joined {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(EngineError::Panic(e.to_string())),
        };
        if let Err(e) = res {
            if first_err.is_none() {
                first_err = Some(e);
                set.abort_all();
            }
        }
    }
    if let Some(c) = coordinator {
        // It returns once every task has let go of its link; a checkpoint
        // being written is finished first, so its files are whole.
        let _ = c.await;
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    if let Some(store) = checkpoint_store.filter(|_| !stop.is_stopped()) {
        tokio::task::spawn_blocking(move || store.clear())
            .await
            .map_err(|e| EngineError::State(e.to_string()))??;
    }
    Ok(())
}

/// Restores the newest complete checkpoint into the graph's nodes and returns
/// the coordinator for the checkpoints to come.
async fn prepare_checkpoints(
    graph: &mut JobGraph,
    forks: &mut Forks,
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
    let checkpoints = CheckpointStore::new(
        config.job_dir.clone(),
        config.checkpoints_dir.clone(),
        config.retained,
    );
    let (checkpoints, identities, restored) = tokio::task::spawn_blocking(move || {
        let r = checkpoints.restore_latest(&identities);
        (checkpoints, identities, r)
    })
    .await
    .map_err(|e| EngineError::State(e.to_string()))?;
    let (store, restored) = restored?;
    let mut last_id = 0;
    let mut keyed = BTreeMap::new();
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
        restore_nodes(graph, forks, r.entries, config.key_groups).await?;
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
    );
    Ok((coordinator, keyed))
}

async fn restore_nodes(
    graph: &mut JobGraph,
    forks: &mut Forks,
    mut entries: BTreeMap<NodeId, Vec<StateEntry>>,
    key_groups: u16,
) -> Result<()> {
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
        let connector_state = || {
            mine.iter()
                .find(|e| e.key_group == OPERATOR_STATE && e.key == CONNECTOR_STATE_KEY)
                .map(|e| e.value.clone())
        };
        let wrap =
            |e: EngineError| EngineError::State(format!("cannot restore '{}': {e}", node.name));
        match &mut node.kind {
            NodeKind::Source(s) if finished => *s = Box::new(source::Finished),
            NodeKind::Source(s) => {
                if let Some(state) = connector_state() {
                    s.restore(&state).map_err(wrap)?;
                }
            }
            NodeKind::Sink(s) => {
                if let Some(state) = connector_state() {
                    s.restore(&state).await.map_err(wrap)?;
                }
            }
            NodeKind::Operator(_) if finished => {}
            NodeKind::Operator(op) => match forks.get_mut(&id) {
                None => op.restore(mine).map_err(wrap)?,
                Some(extra) => {
                    // Keyed state to the instance owning its key group;
                    // operator-wide state (the watermark) to every instance.
                    let n = extra.len() + 1;
                    let mut parts: Vec<Vec<StateEntry>> = (0..n).map(|_| vec![]).collect();
                    for e in mine {
                        if e.key_group == OPERATOR_STATE {
                            for p in parts.iter_mut() {
                                p.push(e.clone());
                            }
                        } else {
                            parts[instance_of(e.key_group, n, key_groups)].push(e);
                        }
                    }
                    let mut parts = parts.into_iter();
                    op.restore(parts.next().unwrap_or_default()).map_err(wrap)?;
                    for (inst, part) in extra.iter_mut().zip(parts) {
                        inst.restore(part).map_err(wrap)?;
                    }
                }
            },
            NodeKind::Union => {}
        }
    }
    Ok(())
}
