//! Which instances of every node run here: the extra instances of the
//! operators and the subtasks of the sources that run as several
//! ([`JobGraph::instances`]), and of a job running as several processes,
//! only this process's share of them.

use std::collections::BTreeMap;

use crate::connector::Source;
use crate::graph::{Instances, JobGraph, NodeId, NodeKind, Share};
use crate::operator::Operator;
use crate::{EngineError, Result};

/// The instances of a node that runs as several which this process runs:
/// the job's number of the first, of how many the node runs as, and the
/// instances beyond the graph's own node (which becomes the first).
pub(super) struct Fork<T> {
    pub first: usize,
    pub total: usize,
    pub extra: Vec<T>,
}

/// The instances of each parallel operator.
pub(super) type Forks = BTreeMap<NodeId, Fork<Box<dyn Operator>>>;

/// The subtasks of each source that runs as several.
pub(super) type SourceForks = BTreeMap<NodeId, Fork<Box<dyn Source>>>;

/// Keeps the `share` of `all` (the graph's node becomes the first kept).
fn keep_share<T>(all: Vec<T>, share: Option<Share>, name: &str) -> Result<(T, Fork<T>)> {
    let total = all.len();
    let range = share.map_or(0..total, |s| s.range(total));
    let first = range.start;
    let mut kept = all.into_iter().skip(range.start).take(range.len());
    let head = kept.next().ok_or_else(|| {
        EngineError::Graph(format!(
            "'{name}' runs as {total} instances, fewer than the job's processes"
        ))
    })?;
    Ok((
        head,
        Fork {
            first,
            total,
            extra: kept.collect(),
        },
    ))
}

/// Creates the extra instances of the operators, and the subtasks of the
/// sources, that run as several ([`JobGraph::instances`]); of a job that
/// runs as several processes, only this process's share of them.
pub(super) fn fork_parallel(graph: &mut JobGraph) -> Result<(Forks, SourceForks)> {
    let mut forks = Forks::new();
    let mut source_forks = SourceForks::new();
    let instances = graph.instances();
    let share = graph.share.filter(|s| s.count > 1);
    for (id, (node, runs)) in graph.nodes.iter_mut().zip(&instances).enumerate() {
        let parallelism = match *runs {
            Instances::Many(p) | Instances::Each(p) => p,
            Instances::Once(reason) => {
                if share.is_some() {
                    refuse_unshared(node, reason, &instances)?;
                }
                continue;
            }
        };
        if matches!(node.kind, NodeKind::Source(_)) {
            let NodeKind::Source(source) = std::mem::replace(&mut node.kind, NodeKind::Union)
            else {
                continue;
            };
            let subtasks = source.subtasks(parallelism)?;
            if subtasks.len() != parallelism {
                return Err(EngineError::Graph(format!(
                    "'{}' made {} subtasks of {parallelism}",
                    node.name,
                    subtasks.len()
                )));
            }
            let (first, fork) = keep_share(subtasks, share, &node.name)?;
            node.kind = NodeKind::Source(first);
            source_forks.insert(id, fork);
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
        if extra.len() + 1 != parallelism {
            if share.is_some() {
                return Err(EngineError::Graph(format!(
                    "'{}' cannot run as {parallelism} instances, so it cannot run across processes",
                    node.name
                )));
            }
            continue;
        }
        let NodeKind::Operator(op) = std::mem::replace(&mut node.kind, NodeKind::Union) else {
            continue;
        };
        let all: Vec<Box<dyn Operator>> = std::iter::once(op).chain(extra).collect();
        let (first, fork) = keep_share(all, share, &node.name)?;
        node.kind = NodeKind::Operator(first);
        forks.insert(id, fork);
    }
    Ok((forks, source_forks))
}

/// Of a job running as several processes, each runs its share of every
/// node: a node that runs once can only be a sink (each process writes its
/// share of the rows) or a step on inputs that run once too.
fn refuse_unshared(
    node: &crate::graph::Node,
    reason: Option<&'static str>,
    instances: &[Instances],
) -> Result<()> {
    let wide = node.inputs.iter().any(|i| instances[*i].width() > 1);
    match node.kind {
        NodeKind::Source(_) => Err(EngineError::Graph(format!(
            "'{}' cannot split its input, so the job cannot run across processes (read a Kafka topic or files)",
            node.name
        ))),
        NodeKind::Operator(_) if wide => Err(EngineError::Graph(format!(
            "'{}' runs once ({}), so the job cannot run across processes",
            node.name,
            reason.unwrap_or("it has no key")
        ))),
        _ => Ok(()),
    }
}
