//! The operator trait: a synchronous step applied to the messages of one edge.
//! Stateless and stateful operators alike; chains of them run in one task.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::message::{EventTime, Message, SplitEvent};
use crate::state::keyed::{StateContext, StateTable};
use crate::state::{StateEntry, StateWriter};
use crate::Result;

/// Collects what an operator emits, in order.
#[derive(Debug, Default)]
pub struct Emitter {
    out: Vec<Message>,
}

impl Emitter {
    /// An empty emitter.
    pub fn new() -> Self {
        Self::default()
    }
    /// Emits a batch (empty batches are dropped).
    pub fn batch(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.out.push(Message::Batch(batch));
        }
    }
    /// Emits a watermark.
    pub fn watermark(&mut self, wm: EventTime) {
        self.out.push(Message::Watermark(wm));
    }
    /// Emits a split event.
    pub fn split(&mut self, event: SplitEvent) {
        self.out.push(Message::Split(event));
    }
    /// Emits that the whole input is idle.
    pub fn idle(&mut self) {
        self.out.push(Message::Idle);
    }
    /// Takes what was emitted so far.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Message> {
        self.out.drain(..)
    }
    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }
}

/// One step of a pipeline. The runtime calls it with the messages of its input in
/// order; watermarks it receives are non-decreasing.
pub trait Operator: Send {
    /// A short name for logs and `explain`.
    fn name(&self) -> String;

    /// What shapes the operator's state, for its identity
    /// ([`crate::graph::StateUid`]): by default its kind (its name up to the
    /// first parenthesis). An operator whose stored state means something
    /// only under its parameters (a window's size, an aggregate's functions,
    /// a pattern) adds them; never expression text or connector options.
    fn state_signature(&self) -> String {
        crate::graph::kind_of(&self.name()).to_string()
    }

    /// Processes a batch (of its only input).
    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()>;

    /// Processes a batch of input `input` (the index of the node's input it
    /// came from, as in Flink's two-input operators: a join's left input is
    /// 0, its right 1). The default is [`Operator::on_batch`], for operators
    /// of one input; an operator of several overrides this instead.
    fn on_input(&mut self, input: usize, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        debug_assert_eq!(input, 0, "{} has one input", self.name());
        self.on_batch(batch, out)
    }

    /// Processes a watermark; the default forwards it.
    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        out.watermark(wm);
        Ok(())
    }

    /// A source's split event; the default forwards it (only the watermark
    /// assigner acts on them).
    fn on_split(&mut self, event: SplitEvent, out: &mut Emitter) -> Result<()> {
        out.split(event);
        Ok(())
    }

    /// The input went idle; the default forwards it.
    fn on_idle(&mut self, out: &mut Emitter) -> Result<()> {
        out.idle();
        Ok(())
    }

    /// How often the task calls [`Operator::on_processing_time`]: timers of
    /// wall-clock time are an engine service, so an operator neither reads
    /// the clock nor does I/O in `on_batch` for them. `None`: never.
    fn processing_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Processing time passed (at least [`Operator::processing_interval`]
    /// since the last call; called between messages, also while no input
    /// comes): work that must not wait for input, such as reloading a
    /// table or firing what a wall-clock deadline closed. What it emits goes
    /// down the chain as what `on_batch` emits does.
    fn on_processing_time(&mut self, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    /// The input has ended: flush what is left. The runtime forwards `End` afterwards.
    /// (On `Stop` it is not called: open state stays unfired.)
    fn on_end(&mut self, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    /// Called once before the job runs (after a restore has placed its
    /// checkpointed keyed state): declares the operator's keyed tables.
    fn open(&mut self, _state: &mut StateContext) -> Result<()> {
        Ok(())
    }

    /// Every table [`Operator::open`] declared, for the runtime to flush at
    /// each checkpoint barrier (what changed is tracked by the tables).
    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![]
    }

    /// A checkpoint barrier reached the operator: write what changed in its
    /// state kept outside declared tables since the previous checkpoint
    /// (stateless operators write nothing).
    fn snapshot(&mut self, _state: &mut StateWriter<'_>) -> Result<()> {
        Ok(())
    }

    /// The bytes of state the operator holds in memory (for metrics).
    fn state_size(&self) -> u64 {
        0
    }

    /// Called once before the job runs, with what the operator wrote at the
    /// checkpoint the job resumes from.
    fn restore(&mut self, _entries: Vec<StateEntry>) -> Result<()> {
        Ok(())
    }

    /// For a keyed operator that can run as parallel instances: the
    /// expressions over the rows of its input `input` whose values are the
    /// key (rows are sent to the instance owning the key's key group; an
    /// operator of two inputs gives keys of one type for both, so that equal
    /// keys meet). `None` runs it once.
    fn key_exprs(&self, _input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        None
    }

    /// Why a stateful operator's [`Operator::key_exprs`] is `None`, for
    /// `explain`; `None` for a stateless step (it runs in its input's task).
    fn unkeyed_reason(&self) -> Option<&'static str> {
        None
    }

    /// Another instance with the same configuration and empty state (for
    /// operators that return [`Operator::key_exprs`], and stateless steps
    /// that [`Operator::runs_per_input`]).
    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(None)
    }

    /// A step that keeps no keyed state (each batch on its own, or state of
    /// its input's instance alone, as a watermark assigner's per-split
    /// watermarks) that may run in every parallel instance of its input,
    /// [`Operator::fork`]ed once per instance, instead of once after them.
    fn runs_per_input(&self) -> bool {
        false
    }
}
