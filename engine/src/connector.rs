//! The traits through which connectors plug into the engine. The engine defines
//! them; the `vigil-connectors` crate implements them; the root crate registers
//! the implementations in a [`ConnectorRegistry`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use crate::checkpoint::SourceCheckpoint;
use crate::control::StopSignal;
pub use crate::graph::Share;
use crate::message::{CheckpointId, EventTime, Message, SplitEvent};
use crate::metrics::Metrics;
use crate::{EngineError, Result};

/// A table as a connector sees it: its name, the physical columns it must
/// produce or accept, and its `WITH (...)` options.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// The table's name in the catalog.
    pub name: String,
    /// The physical columns to read or write, in order. For a source this may be
    /// a subset of the declared columns (projection push-down).
    pub schema: SchemaRef,
    /// The `WITH` options, keys as written.
    pub options: BTreeMap<String, String>,
    /// Columns of `schema` that are connector metadata (`METADATA FROM 'key'`),
    /// by column name, with their metadata key.
    pub metadata: BTreeMap<String, String>,
    /// The job's `SET` options (e.g. `table.exec.source.idle-timeout`).
    pub job_options: BTreeMap<String, String>,
    /// The declared `PRIMARY KEY ... NOT ENFORCED` columns (an upsert sink's key).
    pub primary_key: Vec<String>,
    /// The declared `PARTITIONED BY` columns (a filesystem sink writes a
    /// directory per value).
    pub partition_keys: Vec<String>,
}

impl TableSpec {
    /// The option `key`, if set.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// The option `key`, or an error naming the table and the missing key.
    pub fn required(&self, connector: &str, key: &str) -> Result<&str> {
        self.option(key).ok_or_else(|| EngineError::Connector {
            connector: connector.into(),
            table: self.name.clone(),
            message: format!("missing required option '{key}'; add 'key' = 'value' to WITH (...)"),
        })
    }

    /// A spec with no metadata columns and no job options.
    pub fn new(
        name: impl Into<String>,
        schema: SchemaRef,
        options: BTreeMap<String, String>,
    ) -> Self {
        Self {
            name: name.into(),
            schema,
            options,
            metadata: BTreeMap::new(),
            job_options: BTreeMap::new(),
            primary_key: vec![],
            partition_keys: vec![],
        }
    }
}

/// The position a source subtask reached at the end of its input (see
/// [`SourceContext::finished_at`]), shared with the runtime.
pub(crate) type FinalPosition = Arc<std::sync::Mutex<Option<Vec<u8>>>>;

/// Where a source sends its batches.
pub struct SourceContext {
    tx: mpsc::Sender<Message>,
    /// The job's metrics.
    pub metrics: Metrics,
    /// Fires when the job is asked to stop; an unbounded source then returns.
    pub stop: StopSignal,
    checkpoint: Option<SourceCheckpoint>,
    final_position: FinalPosition,
}

impl SourceContext {
    /// Wraps the channel to the first operator.
    pub fn new(tx: mpsc::Sender<Message>, metrics: Metrics, stop: StopSignal) -> Self {
        Self {
            tx,
            metrics,
            stop,
            checkpoint: None,
            final_position: FinalPosition::default(),
        }
    }

    /// Shares the slot in which [`SourceContext::finished_at`] leaves the
    /// final position with the runtime.
    pub(crate) fn with_final_position(mut self, slot: FinalPosition) -> Self {
        self.final_position = slot;
        self
    }

    /// Records the position at the end of the input, just before `run`
    /// returns: a subtask of a source that runs as several stores it with its
    /// "finished" marker, so that a restore (at any parallelism) does not
    /// read its splits again while the other subtasks go on.
    pub fn finished_at(&self, state: Vec<u8>) {
        if let Ok(mut slot) = self.final_position.lock() {
            *slot = Some(state);
        }
    }

    /// Tells downstream that this source has nothing to read for now (a
    /// subtask without splits): its watermark does not hold others back.
    pub async fn emit_idle(&self) -> Result<()> {
        self.send(Message::Idle).await
    }

    /// Attaches the job's checkpointing.
    pub fn with_checkpoints(mut self, checkpoint: Option<SourceCheckpoint>) -> Self {
        self.checkpoint = checkpoint;
        self
    }

    /// Whether the job takes checkpoints.
    pub fn checkpointing(&self) -> bool {
        self.checkpoint.is_some()
    }

    /// A checkpoint the source should inject a barrier for, if one is due. Check
    /// between batches, then call [`SourceContext::barrier`] with the position
    /// reached.
    pub fn checkpoint_due(&self) -> Option<CheckpointId> {
        self.checkpoint.as_ref().and_then(|c| c.due())
    }

    /// Completes when a checkpoint is due (never, without checkpointing); for
    /// sources that wait for input in a `select!`.
    pub async fn checkpoint_requested(&self) -> CheckpointId {
        match &self.checkpoint {
            Some(c) => c.requested().await,
            None => std::future::pending().await,
        }
    }

    /// Injects the barrier of checkpoint `id`: `state` is the source's position
    /// after everything emitted so far (handed back to
    /// [`Source::restore`] on recovery).
    pub async fn barrier(&self, id: CheckpointId, state: Vec<u8>) -> Result<()> {
        if let Some(c) = &self.checkpoint {
            c.acknowledge(id, state);
            self.send(Message::Barrier(id)).await?;
        }
        Ok(())
    }

    /// The id of the newest completed checkpoint, changing as checkpoints
    /// complete (None without checkpointing). A source commits the positions of
    /// a checkpoint to external systems once it completes.
    pub fn completed_checkpoints(&self) -> Option<tokio::sync::watch::Receiver<CheckpointId>> {
        self.checkpoint.as_ref().map(|c| c.completed())
    }

    /// Tells the watermark assigner about a split (see [`SplitEvent`]).
    pub async fn emit_split(&self, event: SplitEvent) -> Result<()> {
        self.send(Message::Split(event)).await
    }

    /// Sends any message downstream (waiting while downstream is busy).
    async fn send(&self, msg: Message) -> Result<()> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| EngineError::Graph("downstream of a source has stopped".into()))
    }

    /// Sends a batch downstream, waiting while downstream is busy (backpressure).
    /// Fails when the job is shutting down.
    pub async fn emit(&self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.tx
            .send(Message::Batch(batch))
            .await
            .map_err(|_| EngineError::Graph("downstream of a source has stopped".into()))
    }

    /// Sends a watermark of the source's own (most sources leave watermarks to the
    /// engine's watermark assigner).
    pub async fn emit_watermark(&self, wm: EventTime) -> Result<()> {
        self.tx
            .send(Message::Watermark(wm))
            .await
            .map_err(|_| EngineError::Graph("downstream of a source has stopped".into()))
    }
}

/// A source of rows. A bounded source returns once it is exhausted; the runtime
/// then sends `End` downstream.
#[async_trait]
pub trait Source: Send {
    /// Describes the source for `explain`.
    fn describe(&self) -> String;
    /// Reads until exhausted (or forever, for an unbounded source).
    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()>;
    /// Whether the source injects checkpoint barriers (see
    /// [`SourceContext::checkpoint_due`]) and can resume from its position.
    fn supports_checkpoints(&self) -> bool {
        false
    }
    /// Called before `run` with the positions the source stored at the
    /// checkpoint the job resumes from: one per subtask that stored one
    /// (union redistribution, as Flink's split state): every subtask gets
    /// them all and resumes the splits that are now its own.
    fn restore(&mut self, _states: &[Vec<u8>]) -> Result<()> {
        Ok(())
    }
    /// Whether the source can run as several subtasks
    /// ([`Source::subtasks`]), each reading its own splits.
    fn splits(&self) -> bool {
        false
    }
    /// The source as `n` subtasks reading disjoint splits of the input
    /// (Kafka partitions, parts of files), each in its own task. A subtask
    /// that finishes must call [`SourceContext::finished_at`]; one without
    /// splits of an unbounded input calls [`SourceContext::emit_idle`].
    /// Called only when [`Source::splits`] says it can.
    fn subtasks(self: Box<Self>, _n: usize) -> Result<Vec<Box<dyn Source>>> {
        Err(EngineError::Graph(format!(
            "{} cannot run as several subtasks",
            self.describe()
        )))
    }
}

/// A sink of rows.
#[async_trait]
pub trait Sink: Send {
    /// Describes the sink for `explain`.
    fn describe(&self) -> String;
    /// Writes a batch.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;
    /// Observes the watermark; the default ignores it.
    async fn on_watermark(&mut self, _wm: EventTime) -> Result<()> {
        Ok(())
    }
    /// Every input is idle (see [`Message::Idle`]); the default ignores it.
    async fn on_idle(&mut self) -> Result<()> {
        Ok(())
    }
    /// The input has ended: flush and close.
    async fn finish(&mut self) -> Result<()>;
    /// The job is being stopped before its input ended; by default as `finish`.
    /// A transactional sink leaves what is not yet committed to be replayed.
    async fn stop(&mut self) -> Result<()> {
        self.finish().await
    }
    /// A checkpoint barrier arrived: flush what was written before it, and
    /// return the state to store with the checkpoint (e.g. files awaiting commit).
    async fn pre_commit(&mut self, _id: CheckpointId) -> Result<Vec<u8>> {
        Ok(vec![])
    }
    /// Checkpoint `id` completed: make what was pre-committed up to it visible.
    async fn commit(&mut self, _id: CheckpointId) -> Result<()> {
        Ok(())
    }
    /// Called before the job runs with the states `pre_commit` returned at
    /// the checkpoint the job resumes from: finish that checkpoint's commits,
    /// discard anything written after it. A job of one process hands its one
    /// state; of a job running as several, each process takes the states of
    /// the shares that wrote them whose number is its own modulo the process
    /// count now, so that every pending commit is finished by exactly one.
    async fn restore(&mut self, _states: &[SinkState]) -> Result<()> {
        Ok(())
    }
    /// Of a job running as several processes, which share of the job's rows
    /// this sink writes, before `restore` and the first write: a sink whose
    /// files or transactional ids have names keeps the shares apart by it.
    fn assign(&mut self, _share: Share) -> Result<()> {
        Ok(())
    }
}

/// What one share of a sink pre-committed at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkState {
    /// The process that wrote it (0 for a job of one process).
    pub share: usize,
    /// What its `pre_commit` returned.
    pub bytes: Vec<u8>,
}

/// A reference table read whole, for lookup joins.
pub trait LookupTable: Send {
    /// Describes the table for logs.
    fn describe(&self) -> String;
    /// The table's rows if it changed since the last call (the first call
    /// loads it), `None` if it did not.
    fn reload(&mut self) -> Result<Option<RecordBatch>>;
    /// Another handle on the same table that has loaded nothing yet, for
    /// another parallel instance of the join (each instance keeps its own
    /// copy, as each Flink subtask keeps its own lookup cache).
    fn fork(&self) -> Result<Box<dyn LookupTable>>;
}

/// How the rows of a source change its table (Flink's `ChangelogMode` of a
/// scan). A source of a changelog emits its data columns followed by the
/// `__row_kind` column (see [`crate::changelog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChangelog {
    /// Every row is new (`+I` only).
    Append,
    /// Rows insert, update (`-U` old, `+U` new) and delete (`-D`) rows, each
    /// carrying the whole row (Debezium, Canal, Maxwell).
    Full,
    /// Rows are the primary key's latest row (`+I`) or its deletion (`-D`
    /// carrying only the key): the planner keeps each key's last row to
    /// make a full changelog of it.
    Upsert,
}

/// Creates sources and sinks for one `'connector' = '...'` name.
pub trait ConnectorFactory: Send + Sync {
    /// The connector name as written in `WITH ('connector' = ...)`.
    fn name(&self) -> &'static str;
    /// Creates a source, validating the options.
    fn create_source(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Source>>;
    /// Creates a sink, validating the options.
    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>>;
    /// The metadata keys a source can read (`METADATA FROM 'key'`), with the
    /// SQL type each has.
    fn readable_metadata(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Opens the table for lookup joins (`JOIN t FOR SYSTEM_TIME AS OF ...`);
    /// by default a connector cannot be looked up.
    fn create_lookup(&self, spec: &TableSpec, _metrics: &Metrics) -> Result<Box<dyn LookupTable>> {
        Err(EngineError::Connector {
            connector: self.name().into(),
            table: spec.name.clone(),
            message: "this connector cannot be the table of a lookup join (FOR SYSTEM_TIME AS OF); use a 'filesystem' table".into(),
        })
    }
    /// Whether a sink of this connector can write an updating result (rows
    /// that update or delete earlier ones); an append-only sink cannot.
    fn accepts_updates(&self, _spec: &TableSpec) -> bool {
        false
    }
    /// How the rows a source of `spec` reads change its table: appended
    /// rows (most connectors), a changelog whose rows carry their kind (a
    /// CDC format), or upserts by the primary key (`upsert-kafka`).
    fn source_changelog(&self, _spec: &TableSpec) -> Result<SourceChangelog> {
        Ok(SourceChangelog::Append)
    }
    /// The metadata keys a sink can write.
    fn writable_metadata(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

/// The connectors a job may use, by name.
#[derive(Clone, Default)]
pub struct ConnectorRegistry {
    factories: HashMap<String, Arc<dyn ConnectorFactory>>,
}

impl ConnectorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a factory under its name (replacing any of the same name).
    pub fn register(&mut self, factory: Arc<dyn ConnectorFactory>) {
        self.factories.insert(factory.name().to_string(), factory);
    }

    /// The factory for `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn ConnectorFactory>> {
        self.factories.get(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<_> = self.factories.keys().cloned().collect();
        v.sort();
        v
    }
}
