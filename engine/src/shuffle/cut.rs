//! Cutting a job graph at its keyed exchanges (see the module's docs).

use super::{ExchangeSink, ExchangeSpec, ShuffleService};
use crate::graph::{JobGraph, NodeId, NodeKind};
use crate::Result;

impl JobGraph {
    /// Sends the input rows of every keyed operator (one that says how its
    /// every input is keyed) through an exchange of `service`, spread over
    /// `key_groups`: the input feeds a writer sink, the operator reads the
    /// exchange's reader. Nodes keep their identities; the new ones get
    /// identities of their own, derived from the operator's. Returns how many
    /// operators were cut off their inputs.
    pub fn cut_exchanges(
        &mut self,
        service: &dyn ShuffleService,
        key_groups: u16,
    ) -> Result<usize> {
        let old = std::mem::take(&mut self.nodes);
        // Where each old node went.
        let mut moved: Vec<NodeId> = Vec::with_capacity(old.len());
        let mut cut = 0;
        // Each process of a job running as several writes every exchange.
        let (producer, producers) = self
            .share
            .map_or((0, 1), |s| (s.index as u32, s.count as u32));
        for mut node in old {
            node.inputs = node.inputs.iter().map(|i| moved[*i]).collect();
            let keys = match &node.kind {
                NodeKind::Operator(op) if !node.inputs.is_empty() => (0..node.inputs.len())
                    .map(|side| op.key_exprs(side))
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            };
            if let Some(keys) = keys {
                let mut readers = vec![];
                for (side, (&input, keys)) in node.inputs.iter().zip(keys).enumerate() {
                    let schema = self.nodes[input].schema.clone();
                    let spec = ExchangeSpec {
                        name: format!("x{:08x}-{side}", node.uid),
                        schema: schema.clone(),
                        key_groups,
                        producer,
                        producers,
                    };
                    let writer = ExchangeSink::new(keys, key_groups, service.writer(&spec)?);
                    let name = crate::connector::Sink::describe(&writer);
                    self.push(
                        name,
                        &format!("exchange writer {}", spec.name),
                        NodeKind::Sink(Box::new(writer)),
                        vec![input],
                        schema.clone(),
                    );
                    let reader = service.reader(&spec)?;
                    readers.push(self.push(
                        reader.describe(),
                        &format!("exchange reader {}", spec.name),
                        NodeKind::Source(reader),
                        vec![],
                        schema,
                    ));
                }
                node.inputs = readers;
                cut += 1;
            }
            self.nodes.push(node);
            moved.push(self.nodes.len() - 1);
        }
        Ok(cut)
    }
}
