//! The job graph: sources, operators, unions and sinks connected by edges.

use datafusion::arrow::datatypes::SchemaRef;

use crate::connector::{Sink, Source};
use crate::operator::Operator;

/// Index of a node in a [`JobGraph`].
pub type NodeId = usize;

/// What a node does.
pub enum NodeKind {
    /// Produces rows.
    Source(Box<dyn Source>),
    /// Transforms its single input.
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
}

/// A dataflow graph, built by the SQL planner or by hand, run by [`crate::runtime`].
#[derive(Default)]
pub struct JobGraph {
    /// The nodes, each after its inputs.
    pub nodes: Vec<Node>,
}

impl JobGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(
        &mut self,
        name: String,
        kind: NodeKind,
        inputs: Vec<NodeId>,
        schema: SchemaRef,
    ) -> NodeId {
        self.nodes.push(Node {
            name,
            kind,
            inputs,
            schema,
            parallelism: 1,
        });
        self.nodes.len() - 1
    }

    /// Adds a source producing `schema`.
    pub fn add_source(&mut self, source: Box<dyn Source>, schema: SchemaRef) -> NodeId {
        let name = source.describe();
        self.push(name, NodeKind::Source(source), vec![], schema)
    }

    /// Adds an operator after `input`, emitting `schema`.
    pub fn add_operator(
        &mut self,
        input: NodeId,
        op: Box<dyn Operator>,
        schema: SchemaRef,
    ) -> NodeId {
        let name = op.name();
        self.push(name, NodeKind::Operator(op), vec![input], schema)
    }

    /// Adds a union of `inputs`.
    pub fn add_union(&mut self, inputs: Vec<NodeId>, schema: SchemaRef) -> NodeId {
        self.push("Union".into(), NodeKind::Union, inputs, schema)
    }

    /// Adds a sink after `input`.
    pub fn add_sink(&mut self, input: NodeId, sink: Box<dyn Sink>) -> NodeId {
        let schema = self.nodes[input].schema.clone();
        let name = sink.describe();
        self.push(name, NodeKind::Sink(sink), vec![input], schema)
    }

    /// The schema emitted by `node`.
    pub fn schema(&self, node: NodeId) -> SchemaRef {
        self.nodes[node].schema.clone()
    }

    /// A readable rendering of the graph, one node a line, sinks first, inputs
    /// indented below their consumer.
    pub fn explain(&self) -> String {
        let mut consumers = vec![0usize; self.nodes.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                consumers[i] += 1;
            }
        }
        let mut out = String::new();
        for (id, n) in consumers.iter().enumerate() {
            if *n == 0 {
                self.explain_node(id, 0, &mut out);
            }
        }
        out
    }

    fn explain_node(&self, id: NodeId, depth: usize, out: &mut String) {
        let n = &self.nodes[id];
        let cols: Vec<String> = n
            .schema
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect();
        out.push_str(&format!(
            "{}{} [{}]\n",
            "  ".repeat(depth),
            n.name,
            cols.join(", ")
        ));
        for &i in &n.inputs {
            self.explain_node(i, depth + 1, out);
        }
    }
}
