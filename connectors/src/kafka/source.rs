//! The Kafka source: a consumer thread hands raw chunks of one partition to
//! this task, which decodes them into Arrow batches (vectorised, in the table's format), adds the
//! metadata columns, and emits them with the split they came from.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, filter, take};
use datafusion::arrow::datatypes::SchemaRef;
use tokio::sync::mpsc;
use vigil_engine::changelog::with_row_kind;
use vigil_engine::connector::{Source, SourceContext, TableSpec};
use vigil_engine::message::{CheckpointId, SplitEvent};
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::{EngineError, Result};

use super::changes::{key_schema, ChangeMode, UpsertKeys};
use super::consumer::{self, Commit, Item, RawChunk, Wants};
use super::layout::{Layout, Meta, Origin};
use super::options::{KafkaOptions, ResumePoint};
use crate::error::connector_error;
use crate::format::cloudevents;
use crate::format::decode::RecordDecoder;
use crate::format::Format;

/// The next completed checkpoint (pends forever without checkpointing).
async fn next_completed(
    rx: &mut Option<tokio::sync::watch::Receiver<CheckpointId>>,
) -> CheckpointId {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => *r.borrow_and_update(),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Malformed records logged at `warn` before the rest go to `debug`.
const WARN_LIMIT: u64 = 100;

/// A chunk's record without the newline the chunk puts after it.
/// A decoded chunk's rows, and its bad records (index, error).
type Decoded = (Option<RecordBatch>, Vec<(usize, String)>);

fn trim_nl(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

/// The structured events of a chunk holding binary-mode CloudEvents (None
/// if it holds none): each value wrapped with its record's attributes.
fn envelopes(chunk: &RawChunk) -> Option<(Vec<u8>, Vec<usize>)> {
    if chunk.event_attributes.is_empty() {
        return None;
    }
    let mut buf = Vec::with_capacity(chunk.values.len() + chunk.event_attributes.len() * 2);
    let mut ends = Vec::with_capacity(chunk.len());
    for i in 0..chunk.len() {
        let attributes = chunk.event_attributes(i);
        if attributes.is_empty() {
            buf.extend_from_slice(chunk.value(i));
        } else {
            cloudevents::binary::envelope(attributes, trim_nl(chunk.value(i)), &mut buf);
        }
        ends.push(buf.len());
    }
    Some((buf, ends))
}

/// The `ce_*` headers a binary-mode event came with, for its dead letter.
fn event_headers(attributes: &[u8]) -> Vec<(&'static str, String)> {
    if attributes.is_empty() {
        return vec![];
    }
    let mut object = Vec::with_capacity(attributes.len() + 2);
    object.push(b'{');
    object.extend_from_slice(attributes.strip_suffix(b",").unwrap_or(attributes));
    object.push(b'}');
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&object) else {
        return vec![];
    };
    map.into_iter()
        .filter_map(|(k, v)| {
            let header = cloudevents::binary::header_name(&k)?;
            Some((header, v.as_str().unwrap_or_default().to_string()))
        })
        .collect()
}

/// The offsets stored by every subtask, as one list: a partition stored
/// twice resumes from the furthest position.
fn merged_offsets(states: &[Vec<u8>]) -> std::result::Result<Vec<ResumePoint>, String> {
    let mut resume: Vec<ResumePoint> = vec![];
    for state in states {
        let points: Vec<ResumePoint> = serde_json::from_slice(state).map_err(|e| e.to_string())?;
        for p in points {
            match resume
                .iter_mut()
                .find(|r| r.topic == p.topic && r.partition == p.partition)
            {
                Some(r) if r.next >= p.next => {}
                Some(r) => *r = p,
                None => resume.push(p),
            }
        }
    }
    Ok(resume)
}

#[path = "source_decode.rs"]
mod decode;

/// Reads one or more Kafka topics.
pub struct KafkaSource {
    table: String,
    opts: KafkaOptions,
    layout: Layout,
    value: RecordDecoder,
    key: Option<RecordDecoder>,
    rows: Counter,
    malformed: Counter,
    /// Where records that cannot be decoded go, if the table names a place
    /// (one for all subtasks).
    dlq: Option<Arc<tokio::sync::Mutex<crate::dlq::DeadLetters>>>,
    /// What it was made from, to make its subtasks.
    spec: TableSpec,
    metrics: Metrics,
    /// How records change the table.
    changes: ChangeMode,
    /// The batches it emits: the table's columns, and the row kind for a changelog.
    out_schema: SchemaRef,
}

impl KafkaSource {
    /// A source for `spec` with parsed options.
    pub fn new(spec: &TableSpec, opts: KafkaOptions, metrics: &Metrics) -> Result<Self> {
        let dlq = crate::dlq::DeadLetters::from_spec(spec, metrics)?
            .map(|d| Arc::new(tokio::sync::Mutex::new(d)));
        Self::with_dead_letters(spec, opts, metrics, dlq, false)
    }

    /// An `upsert-kafka` source: records are upserts of their key's row,
    /// tombstones its deletion.
    pub fn upsert(spec: &TableSpec, opts: KafkaOptions, metrics: &Metrics) -> Result<Self> {
        let dlq = crate::dlq::DeadLetters::from_spec(spec, metrics)?
            .map(|d| Arc::new(tokio::sync::Mutex::new(d)));
        Self::with_dead_letters(spec, opts, metrics, dlq, true)
    }

    fn with_dead_letters(
        spec: &TableSpec,
        opts: KafkaOptions,
        metrics: &Metrics,
        dlq: Option<Arc<tokio::sync::Mutex<crate::dlq::DeadLetters>>>,
        upsert: bool,
    ) -> Result<Self> {
        let layout = Layout::new(spec, &opts)?;
        let changes = if upsert {
            let (schema, columns) = key_schema(&spec.schema, &spec.primary_key)
                .map_err(|e| connector_error("upsert-kafka", spec, e))?;
            let format = opts.key_format.clone().ok_or_else(|| {
                connector_error("upsert-kafka", spec, "missing required option 'key.format'")
            })?;
            ChangeMode::Upsert(UpsertKeys {
                decoder: RecordDecoder::for_format(format, schema),
                columns,
            })
        } else if opts.value_format.is_changelog() {
            ChangeMode::Changelog
        } else {
            ChangeMode::Append
        };
        let out_schema = if changes.is_updating() {
            with_row_kind(&layout.schema)
        } else {
            layout.schema.clone()
        };
        if matches!(opts.value_format, Format::Raw) {
            crate::format::raw::check_schema("kafka", spec, &layout.value_schema)?;
        }
        Ok(Self {
            table: spec.name.clone(),
            value: RecordDecoder::for_format(
                opts.value_format.clone(),
                layout.value_schema.clone(),
            ),
            key: match (&layout.key_schema, &opts.key_format) {
                (Some(schema), Some(format)) => {
                    Some(RecordDecoder::for_format(format.clone(), schema.clone()))
                }
                _ => None,
            },
            layout,
            opts,
            rows: metrics.counter(names::SOURCE_ROWS, &spec.name),
            malformed: metrics.counter(names::MALFORMED_RECORDS, &spec.name),
            dlq,
            spec: spec.clone(),
            metrics: metrics.clone(),
            changes,
            out_schema,
        })
    }

    fn error(&self, message: impl Into<String>) -> EngineError {
        EngineError::Connector {
            connector: "kafka".into(),
            table: self.table.clone(),
            message: message.into(),
        }
    }

    /// Sends the `dead` records of `chunk` to the dead-letter output, if any.
    async fn dead_letters(&self, chunk: &RawChunk, dead: &[(usize, String)]) -> Result<()> {
        let (Some(dlq), false) = (&self.dlq, dead.is_empty()) else {
            return Ok(());
        };
        let letters: Vec<crate::dlq::DeadLetter<'_>> = dead
            .iter()
            .map(|(i, reason)| crate::dlq::DeadLetter {
                position: crate::dlq::Position::Offset {
                    topic: chunk.topic.to_string(),
                    partition: chunk.partition,
                    offset: chunk.offsets[*i],
                },
                error: reason,
                // Keys are at hand when the table reads them.
                key: Some(trim_nl(chunk.key(*i))).filter(|k| !k.is_empty() && *k != b"{}"),
                record: trim_nl(chunk.value(*i)),
                headers: event_headers(chunk.event_attributes(*i)),
            })
            .collect();
        dlq.lock().await.send(&letters).await
    }

    fn assemble(
        &self,
        chunk: &RawChunk,
        value: &RecordBatch,
        key: Option<&RecordBatch>,
        keep: Option<&BooleanArray>,
        expand: Option<&UInt32Array>,
    ) -> Result<RecordBatch> {
        let n = chunk.len();
        // A record's columns, repeated for each row a change record makes.
        let expanded = |a: ArrayRef| -> Result<ArrayRef> {
            match expand {
                Some(idx) => take(&a, idx, None).map_err(|e| self.error(e.to_string())),
                None => Ok(a),
            }
        };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.layout.origins.len());
        for (origin, field) in self.layout.origins.iter().zip(self.layout.schema.fields()) {
            let col = match origin {
                Origin::Value(i) => value.column(*i).clone(),
                Origin::Key(i) => match key {
                    Some(k) => expanded(k.column(*i).clone())?,
                    None => return Err(self.error("key columns without a key decoder")),
                },
                Origin::Meta(m) => {
                    let raw: ArrayRef = match m {
                        Meta::Topic => Arc::new(StringArray::from_iter_values(
                            std::iter::repeat_n(chunk.topic.as_ref(), n),
                        )),
                        Meta::Partition => Arc::new(Int32Array::from_value(chunk.partition, n)),
                        Meta::Offset => Arc::new(Int64Array::from(chunk.offsets.clone())),
                        Meta::Timestamp => Arc::new(
                            TimestampMillisecondArray::from(chunk.timestamps.clone())
                                .with_timezone("UTC"),
                        ),
                        Meta::TimestampType => Arc::new(StringArray::from_iter_values(
                            chunk.timestamp_types.iter().copied(),
                        )),
                        Meta::Headers => match &chunk.headers {
                            Some(h) => Arc::new(h.finish_cloned()),
                            None => return Err(self.error("headers were not collected")),
                        },
                    };
                    let raw = match keep {
                        Some(k) => filter(&raw, k).map_err(|e| self.error(e.to_string()))?,
                        None => raw,
                    };
                    let raw = expanded(raw)?;
                    if raw.data_type() == field.data_type() {
                        raw
                    } else {
                        cast(&raw, field.data_type()).map_err(|e| {
                            self.error(format!(
                                "metadata column '{}' cannot be {}: {e}",
                                field.name(),
                                field.data_type()
                            ))
                        })?
                    }
                }
            };
            columns.push(col);
        }
        RecordBatch::try_new(self.layout.schema.clone(), columns)
            .map_err(|e| self.error(format!("could not assemble a batch: {e}")))
    }
}

#[async_trait]
impl Source for KafkaSource {
    /// Where the read ends is left out: it is not part of the state, and a
    /// job stopped while following a topic may be resumed to catch up to its
    /// end (or the reverse) from the same checkpoint.
    fn describe(&self) -> String {
        format!(
            "Kafka(topics={}, brokers={}, startup={:?})",
            self.opts.topics.join(";"),
            self.opts.bootstrap(),
            self.opts.startup,
        )
    }

    fn supports_checkpoints(&self) -> bool {
        true
    }

    /// Every subtask's stored offsets: each subtask resumes those of the
    /// partitions it now owns (a partition named twice resumes from the
    /// furthest position).
    fn restore(&mut self, states: &[Vec<u8>]) -> Result<()> {
        self.opts.resume = merged_offsets(states)
            .map_err(|e| self.error(format!("cannot read the stored offsets: {e}")))?;
        Ok(())
    }

    fn splits(&self) -> bool {
        true
    }

    /// One consumer per subtask, each assigned the partitions
    /// [`super::options::owner`] gives it.
    fn subtasks(self: Box<Self>, n: usize) -> Result<Vec<Box<dyn Source>>> {
        (0..n)
            .map(|i| {
                let mut opts = self.opts.clone();
                opts.subtask = (i, n);
                let dlq = self.dlq.clone();
                let upsert = matches!(self.changes, ChangeMode::Upsert(_));
                let sub =
                    KafkaSource::with_dead_letters(&self.spec, opts, &self.metrics, dlq, upsert)?;
                Ok(Box::new(sub) as Box<dyn Source>)
            })
            .collect()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let (tx, mut rx) = mpsc::channel::<Item>(4);
        let wants = Wants {
            keys: self.key.is_some() || self.changes.reads_keys(),
            timestamp_types: self.layout.needs(Meta::TimestampType),
            headers: self.layout.needs(Meta::Headers),
            missing_key: match self.opts.key_format {
                Some(Format::Json) => b"{}",
                _ => b"",
            },
            tombstones: matches!(self.opts.value_format, Format::Raw)
                || matches!(self.changes, ChangeMode::Upsert(_)),
            event_headers: matches!(self.opts.value_format, Format::CloudEvents { .. }),
        };
        let (table, opts, stop) = (self.table.clone(), self.opts.clone(), ctx.stop.clone());
        let (commit_tx, commit_rx) = std::sync::mpsc::channel::<Commit>();
        let commits = ctx.checkpointing().then_some(commit_rx);
        let thread = std::thread::Builder::new()
            .name(format!("kafka-{}-{}", self.table, self.opts.subtask.0))
            .spawn({
                let metrics = ctx.metrics.clone();
                move || consumer::run(table, opts, wants, tx, stop, commits, metrics)
            })
            .map_err(|e| self.error(format!("could not start the consumer thread: {e}")))?;
        let mut current = None;
        // Per split: topic, partition, next offset, stop offset.
        let mut positions: Vec<ResumePoint> = vec![];
        // Positions of checkpoints not yet complete, to commit when they are.
        let mut uncommitted: Vec<(CheckpointId, Commit)> = vec![];
        let mut completed = ctx.completed_checkpoints();
        let mut assigned = false;
        loop {
            let item = tokio::select! {
                item = rx.recv() => match item {
                    Some(item) => item,
                    None => break,
                },
                id = ctx.checkpoint_requested(), if assigned => {
                    let state = serde_json::to_vec(&positions)
                        .map_err(|e| self.error(format!("cannot encode offsets: {e}")))?;
                    let commit = positions
                        .iter()
                        .map(|p| (Arc::from(p.topic.as_str()), p.partition, p.next))
                        .collect();
                    uncommitted.push((id, commit));
                    ctx.barrier(id, state).await?;
                    continue;
                }
                id = next_completed(&mut completed) => {
                    // Offsets go to the consumer group only once their checkpoint is complete.
                    if let Some(i) = uncommitted.iter().rposition(|(c, _)| *c <= id) {
                        let (_, commit) = uncommitted.swap_remove(i);
                        uncommitted.retain(|(c, _)| *c > id);
                        let _ = commit_tx.send(commit);
                    }
                    continue;
                }
            };
            match item {
                Item::Assigned(splits) => {
                    assigned = true;
                    if splits.is_empty() && self.opts.bounded.is_none() {
                        // More subtasks than partitions: this one reads
                        // nothing and must not hold the watermark back.
                        tracing::info!(table = %self.table, subtask = self.opts.subtask.0, "no partition to read: idle");
                        ctx.emit_idle().await?;
                    }
                    positions = splits
                        .into_iter()
                        .map(|(_, topic, partition, next, stop)| ResumePoint {
                            topic: topic.to_string(),
                            partition,
                            next,
                            stop,
                        })
                        .collect();
                }
                Item::Event(ev) => {
                    if let SplitEvent::Current(s) = ev {
                        current = Some(s);
                    }
                    ctx.emit_split(ev).await?;
                }
                Item::Chunk(chunk) => {
                    if current != Some(chunk.split) {
                        current = Some(chunk.split);
                        ctx.emit_split(SplitEvent::Current(chunk.split)).await?;
                    }
                    let (batch, dead) = self.decode(&chunk)?;
                    self.dead_letters(&chunk, &dead).await?;
                    if let Some(batch) = batch {
                        self.rows.add(batch.num_rows() as u64);
                        ctx.emit(batch).await?;
                    }
                    if let (Some(p), Some(last)) = (
                        positions.get_mut(chunk.split as usize),
                        chunk.offsets.last(),
                    ) {
                        p.next = last + 1;
                    }
                }
            }
        }
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| self.error(format!("consumer thread: {e}")))?;
        if !ctx.stop.is_stopped() {
            let state = serde_json::to_vec(&positions)
                .map_err(|e| self.error(format!("cannot encode offsets: {e}")))?;
            ctx.finished_at(state);
        }
        match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(self.error("the consumer thread panicked")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(partition: i32, next: i64) -> ResumePoint {
        ResumePoint {
            topic: "t".into(),
            partition,
            next,
            stop: Some(100),
        }
    }

    #[test]
    fn every_subtask_resumes_from_the_union_of_stored_offsets() {
        let json = |p: &[ResumePoint]| serde_json::to_vec(p).expect("json");
        let states = [
            json(&[point(0, 10), point(2, 30)]),
            json(&[point(1, 20), point(2, 25)]),
        ];
        let mut merged = merged_offsets(&states).expect("merged");
        merged.sort_by_key(|p| p.partition);
        assert_eq!(merged, vec![point(0, 10), point(1, 20), point(2, 30)]);
        assert!(merged_offsets(&[b"not json".to_vec()]).is_err());
    }
}
