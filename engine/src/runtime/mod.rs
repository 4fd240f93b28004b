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

use crate::checkpoint::{
    is_connector_key, CheckpointConfig, Coordinator, CONNECTOR_STATE_KEY, FINISHED_KEY,
};
use crate::connector::Source;
use crate::control::StopSignal;
use crate::graph::{Instances, JobGraph, NodeId, NodeKind};
use crate::metrics::{names, Metrics};
use crate::operator::Operator;
use crate::state::checkpoints::CheckpointStore;
use crate::state::keyed::backend::Part;
use crate::state::{
    instance_of, store_key, StateEntry, StateOp, DEFAULT_KEY_GROUPS, OPERATOR_STATE,
};
use crate::{EngineError, Result};
use exchange::{KeyRouter, Output};
use source::{run_source, SourceTask};
use state::StateSetup;
use task::{run_task, Task};

/// Messages buffered on an edge between two tasks.
const CHANNEL_CAPACITY: usize = 16;

enum Placement {
    Source(usize),
    /// The tasks of a source's subtasks.
    Sources(Vec<usize>),
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
            Placement::Sources(ss) => ss.iter().map(|s| Producer::Source(*s)).collect(),
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

/// The extra subtasks (beyond the graph's own) of each source that runs as several.
type SourceForks = BTreeMap<NodeId, Vec<Box<dyn Source>>>;

/// Creates the extra instances of the operators, and the subtasks of the
/// sources, that run as several ([`JobGraph::instances`]).
fn fork_parallel(graph: &mut JobGraph) -> Result<(Forks, SourceForks)> {
    let mut forks = Forks::new();
    let mut source_forks = SourceForks::new();
    let instances = graph.instances();
    for (id, (node, runs)) in graph.nodes.iter_mut().zip(instances).enumerate() {
        let parallelism = match runs {
            Instances::Many(p) | Instances::Each(p) => p,
            Instances::Once(_) => continue,
        };
        if matches!(node.kind, NodeKind::Source(_)) {
            let NodeKind::Source(source) = std::mem::replace(&mut node.kind, NodeKind::Union)
            else {
                continue;
            };
            let mut subtasks = source.subtasks(parallelism)?.into_iter();
            let (Some(first), rest) = (subtasks.next(), subtasks.collect::<Vec<_>>()) else {
                return Err(EngineError::Graph(format!(
                    "'{}' made no subtask",
                    node.name
                )));
            };
            if rest.len() + 1 != parallelism {
                return Err(EngineError::Graph(format!(
                    "'{}' made {} subtasks of {parallelism}",
                    node.name,
                    rest.len() + 1
                )));
            }
            node.kind = NodeKind::Source(first);
            source_forks.insert(id, rest);
            continue;
        }
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
    Ok((forks, source_forks))
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
    let (mut forks, mut source_forks) = fork_parallel(&mut graph)?;
    let (coordinator, setup) = match checkpoints {
        Some(config) => {
            let mut forked = (&mut forks, &mut source_forks);
            let (c, keyed) = prepare_checkpoints(&mut graph, &mut forked, config, &metrics).await?;
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
                    // A stateless step in each instance of its input (after
                    // a source's subtask: in a task of its own).
                    let n = ops.len();
                    let mut ts = vec![];
                    for (i, (op, up)) in ops.into_iter().zip(&upstream).enumerate() {
                        let t = match *up {
                            Producer::Task(t) => t,
                            Producer::Source(s) => {
                                let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                                sources[s].outputs.push(Output::Forward(tx));
                                tasks.push(Task {
                                    name: format!("{} [{}/{n}]", node.name, i + 1),
                                    inputs: vec![rx],
                                    ops: vec![],
                                    sink: None,
                                    outputs: vec![],
                                });
                                tasks.len() - 1
                            }
                        };
                        tasks[t].ops.push(setup.stage(id, node.uid, i, n, op)?);
                        ts.push(t);
                    }
                    Placement::Parallel(ts)
                }
            });
            continue;
        }
        if let NodeKind::Source(source) = node.kind {
            let Some(extra) = source_forks.remove(&id) else {
                sources.push(SourceTask {
                    node: id,
                    name: node.name,
                    source,
                    outputs: vec![],
                    subtask: None,
                });
                placement[id] = Some(Placement::Source(sources.len() - 1));
                continue;
            };
            let n = extra.len() + 1;
            tracing::info!(source = %node.name, subtasks = n, "reading in parallel subtasks");
            let mut placed = vec![];
            for (i, source) in std::iter::once(source).chain(extra).enumerate() {
                sources.push(SourceTask {
                    node: id,
                    name: format!("{} [{}/{n}]", node.name, i + 1),
                    source,
                    outputs: vec![],
                    subtask: Some((i, n)),
                });
                placed.push(sources.len() - 1);
            }
            placement[id] = Some(Placement::Sources(placed));
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
            .map(|c| (c.source(s.node, s.subtask.map(|(i, _)| i), p), c.task(p)));
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
    .with_first(first);
    Ok((coordinator, keyed))
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
        .filter_map(|e| {
            let i = std::str::from_utf8(e.key.strip_prefix(b"finished/")?)
                .ok()?
                .parse()
                .ok()?;
            Some((i, u32::from_be_bytes(e.value.as_slice().try_into().ok()?)))
        })
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
        .filter(|e| is_connector_key(&e.key) || e.key.starts_with(b"finished/"))
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
            NodeKind::Source(s) => {
                let cleanup = restore_source(id, s, source_forks.get_mut(&id), &mine);
                first.extend(cleanup.map_err(wrap)?);
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
    Ok(first)
}
