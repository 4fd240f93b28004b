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
mod restore;
mod source;
mod state;
mod task;

use std::collections::BTreeMap;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::checkpoint::CheckpointConfig;
use crate::connector::Source;
use crate::control::StopSignal;
use crate::graph::{Instances, JobGraph, NodeId, NodeKind};
use crate::metrics::Metrics;
use crate::operator::Operator;
use crate::state::DEFAULT_KEY_GROUPS;
use crate::{EngineError, Result};
use exchange::{KeyRouter, Output};
use restore::prepare_checkpoints;
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

/// Places source `id` (its `extra` subtasks too, when it runs as several).
fn place_source(
    id: NodeId,
    name: String,
    source: Box<dyn Source>,
    extra: Option<Vec<Box<dyn Source>>>,
    sources: &mut Vec<SourceTask>,
) -> Placement {
    let Some(extra) = extra else {
        sources.push(SourceTask {
            node: id,
            name,
            source,
            outputs: vec![],
            subtask: None,
        });
        return Placement::Source(sources.len() - 1);
    };
    let n = extra.len() + 1;
    tracing::info!(source = %name, subtasks = n, "reading in parallel subtasks");
    let mut placed = vec![];
    for (i, source) in std::iter::once(source).chain(extra).enumerate() {
        sources.push(SourceTask {
            node: id,
            name: format!("{name} [{}/{n}]", i + 1),
            source,
            outputs: vec![],
            subtask: Some((i, n)),
        });
        placed.push(sources.len() - 1);
    }
    Placement::Sources(placed)
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
            let extra = source_forks.remove(&id);
            placement[id] = Some(place_source(id, node.name, source, extra, &mut sources));
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::arrow::record_batch::RecordBatch;

    use super::*;
    use crate::connector::{Sink, SourceContext};
    use crate::operator::Emitter;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
    }

    /// One row, then nothing for a while, then the end.
    struct Quiet;

    #[async_trait]
    impl Source for Quiet {
        fn describe(&self) -> String {
            "Quiet".into()
        }
        async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
            let batch = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(vec![1]))])
                .map_err(|e| EngineError::Graph(e.to_string()))?;
            ctx.emit(batch).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(())
        }
    }

    /// Counts its processing-time calls.
    struct Ticking(Arc<AtomicUsize>);

    impl Operator for Ticking {
        fn name(&self) -> String {
            "Ticking".into()
        }
        fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
            out.batch(batch);
            Ok(())
        }
        fn processing_interval(&self) -> Option<Duration> {
            Some(Duration::from_millis(20))
        }
        fn on_processing_time(&mut self) -> Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    struct Discard;

    #[async_trait]
    impl Sink for Discard {
        fn describe(&self) -> String {
            "Discard".into()
        }
        async fn write(&mut self, _batch: RecordBatch) -> Result<()> {
            Ok(())
        }
        async fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_operator_gets_processing_time_while_no_input_comes() {
        let ticks = Arc::new(AtomicUsize::new(0));
        let mut g = JobGraph::new();
        let s = g.add_source("t", Box::new(Quiet), schema());
        let o = g.add_operator(s, Box::new(Ticking(ticks.clone())), schema());
        g.add_sink("out", o, Box::new(Discard));
        run_job(g, Metrics::new()).await.expect("runs");
        // 500 ms without input at a 20 ms interval: called (about 25 times
        // on an idle machine; only "called at all" is asserted, as a loaded
        // machine may delay ticks).
        let n = ticks.load(Ordering::SeqCst);
        assert!(n >= 1, "no processing-time call while no input came");
    }
}
