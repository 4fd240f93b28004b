//! The job graph: sources, operators, unions and sinks connected by edges.

use datafusion::arrow::datatypes::SchemaRef;

use crate::connector::{Sink, Source};
use crate::operator::Operator;

/// Index of a node in a [`JobGraph`].
pub type NodeId = usize;

/// A node's stable identity, under which its state is checkpointed: a hash of
/// what the node is (its kind, the table it reads or writes, its state-shaping
/// parameters, its schema) and of its inputs' identities, so that it survives
/// changes of connector addresses, paths, node order and expression printing,
/// and changes with anything that would make the stored state mean something
/// else (as Flink's operator uids, but derived from the query's structure).
pub type StateUid = u32;

/// What a node does.
pub enum NodeKind {
    /// Produces rows.
    Source(Box<dyn Source>),
    /// Transforms its input (or, as a join, its inputs: which one a batch
    /// came from is passed to [`Operator::on_input`]).
    Operator(Box<dyn Operator>),
    /// Merges several inputs of the same schema; its watermark is their minimum.
    Union,
    /// Consumes rows.
    Sink(Box<dyn Sink>),
}

/// A node of the graph.
pub struct Node {
    /// A short description for `explain` and logs.
    pub name: String,
    /// What the node does.
    pub kind: NodeKind,
    /// The nodes feeding this one.
    pub inputs: Vec<NodeId>,
    /// The schema of the rows this node emits (its input's, for a sink).
    pub schema: SchemaRef,
    /// Instances to run of a keyed operator (`parallelism.default`); other
    /// nodes run once. Not part of the plan a checkpoint is checked against:
    /// keyed state is stored by key group, so a job can resume at another
    /// parallelism.
    pub parallelism: usize,
    /// Its stable identity (see [`StateUid`]).
    pub uid: StateUid,
}

/// A dataflow graph, built by the SQL planner or by hand, run by [`crate::runtime`].
#[derive(Default)]
pub struct JobGraph {
    /// The nodes, each after its inputs.
    pub nodes: Vec<Node>,
    /// The instances the job asks for (`parallelism.default`; 0 or 1: one):
    /// `explain` says of each operator that runs once anyway why it does.
    pub parallelism: usize,
    /// Where and how much keyed state is cached and spilled.
    pub state: crate::state::keyed::StateSettings,
    /// Key groups (`pipeline.max-parallelism`; 0: the default) when the job
    /// does not checkpoint (a checkpointing job's come with its
    /// checkpoint configuration).
    pub key_groups: u16,
    /// The share of the job this process runs, when the job runs as several
    /// processes (`None`: all of it).
    pub share: Option<Share>,
}

/// The share of a job one process runs when the job runs as `count`
/// processes: of a node that runs as `w` instances, this process runs
/// instances `w * index / count .. w * (index + 1) / count` (the instance
/// numbers, and so the key groups, are the job's, not the process's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Which process this is, from 0.
    pub index: usize,
    /// How many processes run the job.
    pub count: usize,
    /// The membership generation these processes run in (names what a
    /// process writes in it apart from what zombies of older ones write).
    pub generation: u64,
}

impl Share {
    /// The instances of a node of `width` instances this process runs.
    pub fn range(&self, width: usize) -> std::ops::Range<usize> {
        let count = self.count.max(1);
        width * self.index / count..width * (self.index + 1) / count
    }
}

/// How many instances an operator runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instances {
    /// Its parallelism, one instance per range of key groups.
    Many(usize),
    /// One, for the reason given (`None`: a stateless step, which runs in
    /// its input's task).
    Once(Option<&'static str>),
    /// A stateless step in each of its input's parallel instances (fused
    /// into their tasks: no exchange).
    Each(usize),
}

impl Instances {
    /// How many instances run.
    pub fn width(&self) -> usize {
        match self {
            Instances::Many(p) | Instances::Each(p) => *p,
            Instances::Once(_) => 1,
        }
    }
}

impl JobGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(
        &mut self,
        name: String,
        signature: &str,
        kind: NodeKind,
        inputs: Vec<NodeId>,
        schema: SchemaRef,
    ) -> NodeId {
        // A sink's state (its pending commit) is its table's, whatever
        // computes its rows; every other node's depends on its inputs'.
        let hashed: &[NodeId] = if matches!(kind, NodeKind::Sink(_)) {
            &[]
        } else {
            &inputs
        };
        let uid = self.new_uid(signature, hashed, &schema);
        self.nodes.push(Node {
            name,
            kind,
            inputs,
            schema,
            parallelism: 1,
            uid,
        });
        self.nodes.len() - 1
    }

    /// The identity of a node with `signature`, `inputs` and `schema`; two
    /// nodes alike in all of them (two scans of one table) are told apart by
    /// their order.
    fn new_uid(&self, signature: &str, inputs: &[NodeId], schema: &SchemaRef) -> StateUid {
        let mut h = Fnv::new();
        h.write(signature.as_bytes());
        for f in schema.fields() {
            h.write(f.name().as_bytes());
            h.write(f.data_type().to_string().as_bytes());
        }
        for &i in inputs {
            h.write(&self.nodes[i].uid.to_be_bytes());
        }
        let mut uid = h.finish();
        while self.nodes.iter().any(|n| n.uid == uid) {
            let mut again = Fnv::new();
            again.write(&uid.to_be_bytes());
            uid = again.finish();
        }
        uid
    }

    /// Adds a source reading table `table` (its name in the script: the
    /// source's identity, whatever its connector's address) producing `schema`.
    pub fn add_source(
        &mut self,
        table: &str,
        source: Box<dyn Source>,
        schema: SchemaRef,
    ) -> NodeId {
        let name = source.describe();
        let signature = format!("source {} {table}", kind_of(&name));
        self.push(name, &signature, NodeKind::Source(source), vec![], schema)
    }

    /// Adds an operator after `input`, emitting `schema`.
    pub fn add_operator(
        &mut self,
        input: NodeId,
        op: Box<dyn Operator>,
        schema: SchemaRef,
    ) -> NodeId {
        self.add_operator_over(vec![input], op, schema)
    }

    /// Adds an operator reading `inputs` (a join: left, right), emitting
    /// `schema`; its batches are numbered by their input's place in `inputs`.
    pub fn add_operator_over(
        &mut self,
        inputs: Vec<NodeId>,
        op: Box<dyn Operator>,
        schema: SchemaRef,
    ) -> NodeId {
        let name = op.name();
        let signature = format!("operator {}", op.state_signature());
        self.push(name, &signature, NodeKind::Operator(op), inputs, schema)
    }

    /// Adds a union of `inputs`.
    pub fn add_union(&mut self, inputs: Vec<NodeId>, schema: SchemaRef) -> NodeId {
        self.push("Union".into(), "union", NodeKind::Union, inputs, schema)
    }

    /// Adds a sink writing table `table` (its identity, as for sources) after
    /// `input`.
    pub fn add_sink(&mut self, table: &str, input: NodeId, sink: Box<dyn Sink>) -> NodeId {
        let schema = self.nodes[input].schema.clone();
        let name = sink.describe();
        let signature = format!("sink {} {table}", kind_of(&name));
        self.push(name, &signature, NodeKind::Sink(sink), vec![input], schema)
    }

    /// Every node's identity and name, for a checkpoint's record of what
    /// its state belongs to.
    pub fn identities(&self) -> Vec<(StateUid, String)> {
        self.nodes.iter().map(|n| (n.uid, n.name.clone())).collect()
    }

    /// The schema emitted by `node`.
    pub fn schema(&self, node: NodeId) -> SchemaRef {
        self.nodes[node].schema.clone()
    }

    /// How many nodes read each node (by node index; inputs that name no
    /// node are not counted).
    pub fn consumers(&self) -> Vec<usize> {
        let mut consumers = vec![0usize; self.nodes.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                if let Some(c) = consumers.get_mut(i) {
                    *c += 1;
                }
            }
        }
        consumers
    }

    /// How many instances each node runs as (by node index; unions and
    /// sinks run once). A source that splits its input runs as
    /// `parallelism` subtasks. A keyed operator runs as several when it asks
    /// for more than one (every instance of its input routes rows to them
    /// by key group); a stateless step that can runs in each instance of a
    /// parallel input.
    pub fn instances(&self) -> Vec<Instances> {
        let mut out: Vec<Instances> = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let op = match &n.kind {
                NodeKind::Operator(op) => op,
                // A source that splits runs as one subtask per instance.
                NodeKind::Source(s) if s.splits() && self.parallelism > 1 => {
                    out.push(Instances::Many(self.parallelism));
                    continue;
                }
                _ => {
                    out.push(Instances::Once(None));
                    continue;
                }
            };
            let known = n.inputs.iter().all(|i| *i < out.len());
            let runs = if !known || n.inputs.is_empty() {
                Instances::Once(Some("its inputs are not known"))
            } else if op.key_exprs(0).is_none() {
                match n.inputs.as_slice() {
                    // A stateless step runs in each instance of its input
                    // (in its chain, or beside it when others read that
                    // input too).
                    [i] => {
                        let width = out[*i].width();
                        if op.runs_per_input() && width > 1 {
                            Instances::Each(width)
                        } else {
                            Instances::Once(op.unkeyed_reason())
                        }
                    }
                    _ => Instances::Once(op.unkeyed_reason().or(Some("it has no key"))),
                }
            } else if n.parallelism < 2 {
                Instances::Once(Some("planned as one instance"))
            } else {
                Instances::Many(n.parallelism)
            };
            out.push(runs);
        }
        out
    }

    /// A readable rendering of the graph, one node a line, sinks first, inputs
    /// indented below their consumer.
    pub fn explain(&self) -> String {
        let consumers = self.consumers();
        let instances = self.instances();
        let mut out = String::new();
        for (id, n) in consumers.iter().enumerate() {
            if *n == 0 {
                self.explain_node(id, 0, &instances, &mut out);
            }
        }
        out
    }

    fn explain_node(&self, id: NodeId, depth: usize, instances: &[Instances], out: &mut String) {
        let n = &self.nodes[id];
        let cols: Vec<String> = n
            .schema
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect();
        let runs = match instances[id] {
            Instances::Many(p) | Instances::Each(p) => format!(" x{p}"),
            Instances::Once(Some(why)) if self.parallelism > 1 => format!(" (runs once: {why})"),
            Instances::Once(_) => String::new(),
        };
        out.push_str(&format!(
            "{}{} [{}]{runs}\n",
            "  ".repeat(depth),
            n.name,
            cols.join(", ")
        ));
        for &i in &n.inputs {
            self.explain_node(i, depth + 1, instances, out);
        }
    }
}

/// The kind of a node from its name or description (`Kafka(topic=...)` is
/// `Kafka`): part of a connector's identity, unlike its options, and of the
/// labels of a node's metrics.
pub fn kind_of(name: &str) -> &str {
    name.split('(').next().unwrap_or(name).trim()
}

/// The `scope` label of a node's metrics: `Kind#node`.
pub fn scope_label(name: &str, node: NodeId) -> String {
    format!("{}#{node}", kind_of(name))
}

/// A stable hash of several byte strings (identities are stored in
/// checkpoints).
struct Fnv(u32);

impl Fnv {
    fn new() -> Self {
        Self(crate::state::FNV_OFFSET)
    }
    fn write(&mut self, bytes: &[u8]) {
        // A separator after each, so that ("ab", "c") and ("a", "bc") differ.
        self.0 = crate::state::fnv1a(self.0, bytes);
        self.0 = crate::state::fnv1a(self.0, &[0xff]);
    }
    fn finish(&self) -> StateUid {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;

    use super::*;
    use crate::memory::MemorySource;
    use crate::operator::Emitter;

    /// An operator whose name carries text that is not part of its state.
    struct Agg(&'static str);

    impl Operator for Agg {
        fn name(&self) -> String {
            format!("Agg({})", self.0)
        }
        fn on_batch(&mut self, _: RecordBatch, _: &mut Emitter) -> crate::Result<()> {
            Ok(())
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
    }

    /// A source of table `table` with `rows` rows (its description differs
    /// with them) and an aggregate named `expr` after it: their identities.
    fn job(table: &str, rows: i64, expr: &'static str) -> (StateUid, StateUid) {
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from_iter_values(0..rows))],
        )
        .expect("batch");
        let mut g = JobGraph::new();
        let s = g.add_source(
            table,
            Box::new(MemorySource::new(vec![batch], schema())),
            schema(),
        );
        let a = g.add_operator(s, Box::new(Agg(expr)), schema());
        (g.nodes[s].uid, g.nodes[a].uid)
    }

    #[test]
    fn identities_follow_structure_not_descriptions() {
        let base = job("t", 3, "x + 1");
        // Another description (address, path, expression text): the same.
        assert_eq!(job("t", 5, "x+1"), base);
        // Another table: both change (the operator's input changed).
        let other = job("u", 3, "x + 1");
        assert_ne!(other.0, base.0);
        assert_ne!(other.1, base.1);
    }

    #[test]
    fn twin_nodes_get_distinct_identities() {
        let mut g = JobGraph::new();
        let a = g.add_source("t", Box::new(MemorySource::new(vec![], schema())), schema());
        let b = g.add_source("t", Box::new(MemorySource::new(vec![], schema())), schema());
        assert_ne!(g.nodes[a].uid, g.nodes[b].uid);
        let ids = g.identities();
        assert_eq!(ids.len(), 2);
        assert!(ids[0].1.starts_with("MemorySource"), "{ids:?}");
    }
}
