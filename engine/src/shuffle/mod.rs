//! Keyed exchanges through an external log (a Kafka topic, say) instead of
//! the in-memory channels of one process: the step toward running one job
//! on several processes, which share nothing but the log.
//!
//! [`JobGraph::cut_exchanges`] cuts the graph in front of every keyed
//! operator: its input goes to an exchange *writer* (a sink that sends each
//! row to the partition of its key group, as one log partition per key
//! group), and the operator reads an exchange *reader* (a source whose
//! subtask `i` reads the key groups that instance `i` owns). Watermarks,
//! idleness, checkpoint barriers and the end of input travel in band, after
//! the rows they follow, to every key group; a reader merges the watermarks
//! of all producers and partitions, and injects a barrier once it has read it
//! on every one (aligned barriers, as Flink's network exchange). Its
//! checkpointed position is where each partition's barrier was, so a restored
//! job reads what came after it.
//!
//! Every record carries the *generation* of the run that wrote it: a reader
//! takes only its own generation's, so the records a failed (or zombie) run
//! wrote after the checkpoint it is restored from are ignored, and the
//! replay rewrites them. Exactly-once without transactions.
//!
//! The engine knows no log: a connector crate provides the
//! [`ShuffleService`].

mod cut;
pub mod reader;
pub mod record;
mod sink;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::connector::Source;
use crate::message::{CheckpointId, EventTime};
use crate::Result;

pub use sink::ExchangeSink;

/// One exchange: the rows of one input of one keyed operator.
#[derive(Debug, Clone)]
pub struct ExchangeSpec {
    /// Stable across runs of the job (derived from the operator's identity
    /// and the input's place), so that a restored job finds its log.
    pub name: String,
    /// The rows' schema.
    pub schema: SchemaRef,
    /// Key groups, one log partition each.
    pub key_groups: u16,
    /// Which writer this is, of how many write the exchange.
    pub producer: u32,
    /// How many writers the exchange has (a reader waits for the end of
    /// input from all of them).
    pub producers: u32,
}

/// What a writer sends in band to every key group of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The writer's watermark.
    Watermark(EventTime),
    /// The writer's input is idle.
    Idle,
    /// Checkpoint barrier.
    Barrier(CheckpointId),
    /// The writer's input has ended.
    End,
}

/// Writes one producer's share of an exchange.
#[async_trait]
pub trait ShuffleWriter: Send {
    /// Describes it for `explain` and errors.
    fn describe(&self) -> String;
    /// Sends the rows of key group `group`.
    async fn rows(&mut self, group: u16, batch: &RecordBatch) -> Result<()>;
    /// Sends `marker` to every key group, after the rows sent so far.
    async fn marker(&mut self, marker: Marker) -> Result<()>;
    /// Returns once everything sent is stored in the log.
    async fn flush(&mut self) -> Result<()>;
}

/// Makes the two ends of exchanges (a connector crate's, e.g. Kafka's).
pub trait ShuffleService: Send + Sync {
    /// Describes the service (`explain`, logs).
    fn describe(&self) -> String;
    /// The writer of producer `spec.producer`.
    fn writer(&self, spec: &ExchangeSpec) -> Result<Box<dyn ShuffleWriter>>;
    /// The reader: a source that splits into subtasks, subtask `i` of `n`
    /// reading the key groups `g` with `instance_of(g, n, key_groups) == i`
    /// ([`crate::state::instance_of`]).
    fn reader(&self, spec: &ExchangeSpec) -> Result<Box<dyn Source>>;
}
