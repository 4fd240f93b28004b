//! Where every node of the graph runs: each source (or source subtask) in
//! a task of its own; an operator or sink fused into its input's task when it
//! is that input's only consumer, else in a task fed by channels; the
//! instances of a keyed operator each in a task fed through a keyed exchange
//! (see [`super::exchange`]); a stateless step in each instance of its input.

use std::sync::Arc;

use datafusion::physical_expr::PhysicalExpr;
use tokio::sync::mpsc;

use super::exchange::{KeyRouter, Output};
use super::fork::{Fork, Forks, SourceForks};
use super::source::SourceTask;
use super::state::StateSetup;
use super::task::Task;
use super::CHANNEL_CAPACITY;
use crate::connector::Source;
use crate::graph::{Node, NodeId, NodeKind};
use crate::operator::Operator;
use crate::{EngineError, Result};

/// Where a node's rows come from once it is placed.
pub(super) enum Placement {
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

/// An input of a keyed operator: the sources or tasks emitting its rows, and
/// the key expressions over them.
type KeyedInput = (Vec<Producer>, Vec<Arc<dyn PhysicalExpr>>);

/// Places the instances of keyed operator `node` (one task each, `ops`):
/// every task or source of each of its inputs (`upstream`, with the key
/// expressions over that input's rows) routes its rows to them by key group.
#[allow(clippy::too_many_arguments)]
fn place_keyed(
    node: &Node,
    id: NodeId,
    (ops, first, total): (Vec<Box<dyn Operator>>, usize, usize),
    upstream: Vec<KeyedInput>,
    key_groups: u16,
    setup: &StateSetup,
    tasks: &mut Vec<Task>,
    sources: &mut [SourceTask],
) -> Result<Vec<usize>> {
    let n = ops.len();
    let mut inputs: Vec<Vec<mpsc::Receiver<crate::message::Message>>> =
        (0..n).map(|_| vec![]).collect();
    let mut sides = vec![];
    for (side, (producers, keys)) in upstream.into_iter().enumerate() {
        for up in producers {
            let mut senders = vec![];
            for ins in inputs.iter_mut() {
                let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                senders.push(tx);
                ins.push(rx);
            }
            sides.push(side);
            let router = KeyRouter::new(keys.clone(), key_groups, first, total);
            let out = Output::Keyed(router, senders);
            add_output(up, out, tasks, sources);
        }
    }
    let mut instances = vec![];
    for (i, (op, inputs)) in ops.into_iter().zip(inputs).enumerate() {
        let i = first + i;
        tasks.push(Task {
            name: format!("{} [{}/{total}]", node.name, i + 1),
            inputs,
            sides: sides.clone(),
            ops: vec![setup.stage(id, node.uid, i, total, op)?],
            sink: None,
            outputs: vec![],
        });
        instances.push(tasks.len() - 1);
    }
    Ok(instances)
}

/// For each input of `node`, the sources or tasks that emit its rows, with
/// the key expressions `op` routes that input's rows by.
fn keyed_upstream(
    node: &Node,
    op: &dyn Operator,
    placement: &[Option<Placement>],
) -> Result<Vec<KeyedInput>> {
    node.inputs
        .iter()
        .enumerate()
        .map(|(side, i)| {
            let producers = placement[*i].as_ref().map(Placement::producers);
            match (producers, op.key_exprs(side)) {
                (Some(p), Some(keys)) => Ok((p, keys)),
                _ => Err(EngineError::Graph(format!(
                    "parallel '{}' has no key or no placed input {side}",
                    node.name
                ))),
            }
        })
        .collect()
}

/// Places source `id` (its `extra` subtasks too, when it runs as several).
fn place_source(
    id: NodeId,
    name: String,
    source: Box<dyn Source>,
    fork: Option<Fork<Box<dyn Source>>>,
    sources: &mut Vec<SourceTask>,
) -> Placement {
    let Some(Fork {
        first,
        total,
        extra,
    }) = fork
    else {
        sources.push(SourceTask {
            node: id,
            name,
            source,
            outputs: vec![],
            subtask: None,
        });
        return Placement::Source(sources.len() - 1);
    };
    tracing::info!(source = %name, subtasks = extra.len() + 1, of = total, "reading in parallel subtasks");
    let mut placed = vec![];
    for (i, source) in std::iter::once(source).chain(extra).enumerate() {
        let i = first + i;
        sources.push(SourceTask {
            node: id,
            name: format!("{name} [{}/{total}]", i + 1),
            source,
            outputs: vec![],
            subtask: Some((i, total)),
        });
        placed.push(sources.len() - 1);
    }
    Placement::Sources(placed)
}

/// The placement under way: what each node placed so far runs as.
struct Placer<'a> {
    placement: Vec<Option<Placement>>,
    tasks: Vec<Task>,
    sources: Vec<SourceTask>,
    /// How many nodes read each node.
    consumers: &'a [usize],
    key_groups: u16,
    setup: &'a StateSetup,
}

/// Places every node of the graph (`nodes`, read by `consumers`), with the
/// instances `forks` made: the tasks and the sources to run.
pub(super) fn place_graph(
    nodes: Vec<Node>,
    consumers: &[usize],
    (forks, source_forks): (&mut Forks, &mut SourceForks),
    key_groups: u16,
    setup: &StateSetup,
) -> Result<(Vec<Task>, Vec<SourceTask>)> {
    let mut p = Placer {
        placement: (0..nodes.len()).map(|_| None).collect(),
        tasks: vec![],
        sources: vec![],
        consumers,
        key_groups,
        setup,
    };
    for (id, node) in nodes.into_iter().enumerate() {
        if consumers[id] == 0 && !matches!(node.kind, NodeKind::Sink(_)) {
            return Err(EngineError::Graph(format!(
                "'{}' has no consumer",
                node.name
            )));
        }
        let placed = if let Some(fork) = forks.remove(&id) {
            p.forked(id, node, fork)?
        } else if let NodeKind::Source(source) = node.kind {
            let extra = source_forks.remove(&id);
            place_source(id, node.name, source, extra, &mut p.sources)
        } else {
            p.single(id, node)?
        };
        p.placement[id] = Some(placed);
    }
    Ok((p.tasks, p.sources))
}

impl Placer<'_> {
    /// The instances of an operator that runs as several.
    fn forked(
        &mut self,
        id: NodeId,
        mut node: Node,
        fork: Fork<Box<dyn Operator>>,
    ) -> Result<Placement> {
        let Fork {
            first,
            total,
            extra,
        } = fork;
        let NodeKind::Operator(op) = std::mem::replace(&mut node.kind, NodeKind::Union) else {
            return Err(EngineError::Graph(format!(
                "'{}' is not an operator",
                node.name
            )));
        };
        let ops: Vec<Box<dyn Operator>> = std::iter::once(op).chain(extra).collect();
        if ops[0].key_exprs(0).is_none() {
            return self.each(id, &node, ops, first, total);
        }
        let upstream = keyed_upstream(&node, ops[0].as_ref(), &self.placement)?;
        let n = ops.len();
        tracing::info!(operator = %node.name, instances = n, "running parallel instances, rows exchanged by key group");
        let instances = place_keyed(
            &node,
            id,
            (ops, first, total),
            upstream,
            self.key_groups,
            self.setup,
            &mut self.tasks,
            &mut self.sources,
        )?;
        Ok(Placement::Parallel(instances))
    }

    /// A stateless step in each instance of its input (instances `first..`
    /// of `total`; after a source's subtask: in a task of its own).
    fn each(
        &mut self,
        id: NodeId,
        node: &Node,
        ops: Vec<Box<dyn Operator>>,
        first: usize,
        total: usize,
    ) -> Result<Placement> {
        let upstream = match node.inputs.as_slice() {
            [i] => self.placement[*i].as_ref().map(Placement::producers),
            _ => None,
        };
        let Some(upstream) = upstream else {
            return Err(EngineError::Graph(format!(
                "'{}' runs in each instance of an input it does not have",
                node.name
            )));
        };
        // Fused into its input's instance, unless others read that input
        // too (a scan shared by several queries): then each instance is a
        // task of its own, fed by its input's instance alone.
        let alone = node.inputs.iter().all(|i| self.consumers[*i] == 1);
        let mut ts = vec![];
        for (i, (op, up)) in ops.into_iter().zip(&upstream).enumerate() {
            let i = first + i;
            let t = match *up {
                Producer::Task(t) if alone && self.tasks[t].sink.is_none() => t,
                up => {
                    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                    add_output(up, Output::Forward(tx), &mut self.tasks, &mut self.sources);
                    self.tasks.push(Task {
                        name: format!("{} [{}/{total}]", node.name, i + 1),
                        inputs: vec![rx],
                        sides: vec![0],
                        ops: vec![],
                        sink: None,
                        outputs: vec![],
                    });
                    self.tasks.len() - 1
                }
            };
            self.tasks[t]
                .ops
                .push(self.setup.stage(id, node.uid, i, total, op)?);
            ts.push(t);
        }
        Ok(Placement::Parallel(ts))
    }

    /// An operator, union or sink that runs once: fused into its input's
    /// task when it is that input's only consumer, else a task of its own.
    fn single(&mut self, id: NodeId, node: Node) -> Result<Placement> {
        let fused = match (&node.kind, node.inputs.as_slice()) {
            (NodeKind::Operator(_) | NodeKind::Sink(_), [input]) if self.consumers[*input] == 1 => {
                match self.placement[*input] {
                    Some(Placement::Task(t)) if self.tasks[t].sink.is_none() => Some(t),
                    _ => None,
                }
            }
            _ => None,
        };
        let t = match fused {
            Some(t) => t,
            None => self.task_for(&node)?,
        };
        match node.kind {
            NodeKind::Operator(op) => {
                let stage = self.setup.stage(id, node.uid, 0, 1, op)?;
                self.tasks[t].ops.push(stage);
            }
            NodeKind::Sink(sink) => self.tasks[t].sink = Some((id, sink)),
            NodeKind::Union | NodeKind::Source(_) => {}
        }
        Ok(Placement::Task(t))
    }

    /// A new task for `node`, fed by a channel from every instance of each
    /// of its inputs.
    fn task_for(&mut self, node: &Node) -> Result<usize> {
        let mut inputs = vec![];
        // Which of the node's inputs each channel brings (for an operator of
        // several; a union's are all one stream).
        let mut sides = vec![];
        for (side, &i) in node.inputs.iter().enumerate() {
            let Some(upstream) = self.placement[i].as_ref().map(Placement::producers) else {
                return Err(EngineError::Graph(format!(
                    "node {i} is used before it is defined"
                )));
            };
            for up in upstream {
                let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                add_output(up, Output::Forward(tx), &mut self.tasks, &mut self.sources);
                inputs.push(rx);
                sides.push(match node.kind {
                    NodeKind::Operator(_) => side,
                    _ => 0,
                });
            }
        }
        self.tasks.push(Task {
            name: node.name.clone(),
            inputs,
            sides,
            ops: vec![],
            sink: None,
            outputs: vec![],
        });
        Ok(self.tasks.len() - 1)
    }
}
