//! The Kafka source's consumer thread: resolves start and stop offsets, assigns
//! the partitions, polls records into per-partition chunks of raw bytes, and
//! tracks idleness and the end of bounded reads. Decoding happens on the
//! source's task, so polling and decoding overlap.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{BinaryBuilder, MapBuilder, MapFieldNames, StringBuilder};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use vigil_engine::control::StopSignal;
use vigil_engine::message::{SplitEvent, SplitId};

use super::client::{client_config, topic_partitions, with_retries, Attempt, LogContext};
use super::options::{BoundedMode, KafkaOptions, StartupMode};
use crate::format::{cloudevents, record_at};

/// Records per chunk before it is handed over.
const CHUNK_ROWS: usize = 4096;
/// Bytes per chunk before it is handed over.
const CHUNK_BYTES: usize = 2 << 20;
/// A chunk is handed over at least this often while records trickle in.
const CHUNK_AGE: Duration = Duration::from_millis(50);
/// How long one poll waits.
const POLL: Duration = Duration::from_millis(50);

/// One assigned partition: split id, topic, partition, start offset and stop offset.
pub type Assignment = (SplitId, Arc<str>, i32, i64, Option<i64>);

/// What the consumer thread sends to the source task.
pub enum Item {
    /// The partitions it reads: split id, topic, partition, start offset and
    /// stop offset (sent once, first).
    Assigned(Vec<Assignment>),
    /// A split event for the watermark assigner.
    Event(SplitEvent),
    /// Raw records of one partition.
    Chunk(Box<RawChunk>),
}

/// Records of one partition, undecoded.
pub struct RawChunk {
    /// The split (topic-partition) they come from.
    pub split: SplitId,
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// Values, each followed by `\n`.
    pub values: Vec<u8>,
    /// The end of each value in `values`.
    pub value_ends: Vec<usize>,
    /// Keys (when read), each followed by `\n`; a missing key is
    /// [`Wants::missing_key`].
    pub keys: Vec<u8>,
    /// The end of each key in `keys`.
    pub key_ends: Vec<usize>,
    /// The records' offsets.
    pub offsets: Vec<i64>,
    /// The records' timestamps (ms), if they have one.
    pub timestamps: Vec<Option<i64>>,
    /// The timestamp types (when read).
    pub timestamp_types: Vec<&'static str>,
    /// The headers (when read).
    pub headers: Option<MapBuilder<StringBuilder, BinaryBuilder>>,
    /// Which values are missing (tombstones), when the format reads them as
    /// NULL (`raw`); empty otherwise.
    pub value_nulls: Vec<bool>,
    /// CloudEvents: the attributes of each binary-mode record (from its
    /// `ce_*` headers) as JSON members; empty for a structured record.
    pub event_attributes: Vec<u8>,
    /// The end of each record's attributes in `event_attributes`.
    pub event_attribute_ends: Vec<usize>,
}

impl RawChunk {
    /// The number of records.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The bytes of value `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        record_at(&self.values, &self.value_ends, i)
    }

    /// The binary-mode CloudEvents attributes of record `i` (empty if none).
    pub fn event_attributes(&self, i: usize) -> &[u8] {
        record_at(&self.event_attributes, &self.event_attribute_ends, i)
    }

    /// The bytes of key `i` (empty when keys are not read).
    pub fn key(&self, i: usize) -> &[u8] {
        record_at(&self.keys, &self.key_ends, i)
    }
}

/// What the consumer must collect per record.
#[derive(Debug, Clone, Copy)]
pub struct Wants {
    /// Keys, for key fields.
    pub keys: bool,
    /// The timestamp type.
    pub timestamp_types: bool,
    /// Headers.
    pub headers: bool,
    /// What a missing key is written as (`{}` for JSON keys).
    pub missing_key: &'static [u8],
    /// Tombstones as NULL values (the `raw` format) rather than skipped.
    pub tombstones: bool,
    /// CloudEvents: binary-mode attributes from `ce_*` headers.
    pub event_headers: bool,
}

struct SplitInfo {
    topic: Arc<str>,
    partition: i32,
    stop_at: Option<i64>,
    /// `scan.startup.mode` = `timestamp`: records before the first one at or
    /// after this time are skipped (the broker's ListOffsets answer is only a
    /// starting point: some brokers answer it coarsely).
    skip_before: Option<i64>,
    /// `scan.bounded.mode` = `timestamp`: the first record at or after this
    /// time ends the split.
    stop_time: Option<i64>,
    finished: bool,
    idle: bool,
    last_seen: Instant,
}

/// How often the consumer lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Sets each split's lag gauge: the partition's high watermark minus the
/// consumer's position (unknown positions are left as they were).
fn measure_lag(
    consumer: &BaseConsumer<LogContext>,
    splits: &[SplitInfo],
    gauges: &[vigil_engine::metrics::Gauge],
) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    for (s, g) in splits.iter().zip(gauges) {
        if s.finished {
            g.set(0);
            continue;
        }
        let pos = positions
            .find_partition(&s.topic, s.partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        let high = consumer
            .fetch_watermarks(&s.topic, s.partition, Duration::from_millis(500))
            .ok()
            .map(|(_, high)| high);
        if let (Some(pos), Some(high)) = (pos, high) {
            g.set((high - pos).max(0) as u64);
        }
    }
}

/// Offsets to commit to the consumer group: topic, partition, next offset.
pub type Commit = Vec<(Arc<str>, i32, i64)>;

/// Runs the consumer until the bounded end, a stop request, or the receiver
/// going away. Errors are definitive (missing topic, no committed offset).
///
/// With `commits` (the job checkpoints), offsets are committed only as the
/// source sends them, for completed checkpoints, and at the end of a bounded
/// read; a stop commits nothing more.
pub fn run(
    table: String,
    opts: KafkaOptions,
    wants: Wants,
    tx: mpsc::Sender<Item>,
    stop: StopSignal,
    commits: Option<std::sync::mpsc::Receiver<Commit>>,
    metrics: vigil_engine::metrics::Metrics,
) -> Result<(), String> {
    let tombstones = metrics.counter(vigil_engine::metrics::names::TOMBSTONES_SKIPPED, &table);
    let mut config = client_config(&opts.properties)?;
    // Offsets are stored once records are handed to the job, and committed
    // (when a group is set) at the end; Flink does not auto-commit either.
    config.set("enable.auto.offset.store", "false");
    if !opts.properties.contains_key("enable.auto.commit") {
        config.set("enable.auto.commit", "false");
    }
    config.set(
        "enable.partition.eof",
        if opts.bounded.is_some() {
            "true"
        } else {
            "false"
        },
    );
    if let Some(reset) = opts.properties.get("auto.offset.reset") {
        if reset == "none" {
            config.set("auto.offset.reset", "error");
        }
    }
    if opts.group_id().is_none() {
        // librdkafka needs a group id for a consumer handle even when nothing is committed.
        config.set("group.id", format!("vigil-{table}"));
    }
    let consumer: BaseConsumer<LogContext> = config
        .create_with_context(LogContext {
            table: table.clone(),
        })
        .map_err(|e| format!("invalid Kafka configuration: {e}"))?;
    let brokers = opts.bootstrap().to_string();
    let Some(plan) = with_retries("connecting to Kafka", &table, &stop, || {
        plan_assignment(&consumer, &opts, &brokers)
    })?
    else {
        return Ok(());
    };
    let mut tpl = TopicPartitionList::new();
    let mut splits: Vec<SplitInfo> = vec![];
    // Split ids by topic (a few, scanned) and partition; looked up per record
    // without allocating.
    let mut index: Vec<(Arc<str>, HashMap<i32, SplitId>)> = vec![];
    let skip_before = match opts.startup {
        StartupMode::Timestamp(ts) => Some(ts),
        _ => None,
    };
    let stop_time = match opts.bounded {
        Some(BoundedMode::Timestamp(ts)) => Some(ts),
        _ => None,
    };
    for (topic, partition, start, stop_at) in plan {
        let topic: Arc<str> = Arc::from(topic.as_str());
        tpl.add_partition_offset(&topic, partition, Offset::Offset(start))
            .map_err(|e| e.to_string())?;
        let id = splits.len() as SplitId;
        match index.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, parts)) => {
                parts.insert(partition, id);
            }
            None => index.push((topic.clone(), HashMap::from([(partition, id)]))),
        }
        let finished = stop_at.is_some_and(|s| start >= s);
        splits.push(SplitInfo {
            topic,
            partition,
            stop_at,
            skip_before,
            stop_time,
            finished,
            idle: false,
            last_seen: Instant::now(),
        });
        tracing::info!(%table, topic = %splits[id as usize].topic, partition, start, stop = ?stop_at, "assigned");
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("could not assign partitions: {e}"))?;
    let assigned = splits
        .iter()
        .enumerate()
        .map(|(id, s)| {
            let start = tpl
                .find_partition(&s.topic, s.partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(0);
            (
                id as SplitId,
                s.topic.clone(),
                s.partition,
                start,
                s.stop_at,
            )
        })
        .collect();
    if tx.blocking_send(Item::Assigned(assigned)).is_err() {
        return Ok(());
    }
    for (id, s) in splits.iter().enumerate() {
        let ev = if s.finished {
            SplitEvent::Finished(id as SplitId)
        } else {
            SplitEvent::Current(id as SplitId)
        };
        if tx.blocking_send(Item::Event(ev)).is_err() {
            return Ok(());
        }
    }

    let mut chunk: Option<RawChunk> = None;
    let mut chunk_started = Instant::now();
    let mut broker_trouble = false;
    let new_chunk = |split: SplitId, s: &SplitInfo| RawChunk {
        split,
        topic: s.topic.clone(),
        partition: s.partition,
        values: Vec::with_capacity(256 * 1024),
        value_ends: Vec::with_capacity(CHUNK_ROWS),
        keys: Vec::new(),
        key_ends: Vec::new(),
        offsets: Vec::with_capacity(CHUNK_ROWS),
        timestamps: Vec::with_capacity(CHUNK_ROWS),
        timestamp_types: Vec::new(),
        value_nulls: Vec::new(),
        event_attributes: Vec::new(),
        event_attribute_ends: Vec::new(),
        headers: wants.headers.then(|| {
            MapBuilder::new(
                Some(MapFieldNames {
                    entry: "entries".into(),
                    key: "key".into(),
                    value: "value".into(),
                }),
                StringBuilder::new(),
                BinaryBuilder::new(),
            )
        }),
    };
    let flush = |chunk: &mut Option<RawChunk>, consumer: &BaseConsumer<LogContext>| -> bool {
        let Some(c) = chunk.take() else { return true };
        if c.is_empty() {
            return true;
        }
        let last = c.offsets[c.len() - 1];
        let (topic, partition) = (c.topic.clone(), c.partition);
        if tx.blocking_send(Item::Chunk(Box::new(c))).is_err() {
            return false;
        }
        // librdkafka commits the stored offset + 1: the next record to read.
        if let Err(e) = consumer.store_offset(&topic, partition, last) {
            tracing::debug!("could not store offset: {e}");
        }
        true
    };
    let group = opts.group_id().is_some();
    // Consumer lag per partition, measured every few seconds.
    let lag: Vec<vigil_engine::metrics::Gauge> = splits
        .iter()
        .map(|s| {
            metrics.gauge(
                vigil_engine::metrics::names::KAFKA_CONSUMER_LAG,
                &format!("{table}/{}/{}", s.topic, s.partition),
            )
        })
        .collect();
    let mut next_lag = Instant::now() + LAG_EVERY / 5;
    loop {
        if Instant::now() >= next_lag {
            next_lag = Instant::now() + LAG_EVERY;
            measure_lag(&consumer, &splits, &lag);
        }
        if let Some(rx) = &commits {
            while let Ok(offsets) = rx.try_recv() {
                if group {
                    commit(&consumer, &table, &offsets);
                }
            }
        }
        if stop.is_stopped() {
            tracing::info!(%table, "stop requested");
            break;
        }
        if splits.iter().all(|s| s.finished) {
            break;
        }
        let polled = consumer.poll(POLL);
        match polled {
            None => {
                if !flush(&mut chunk, &consumer) {
                    return Ok(());
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if !flush(&mut chunk, &consumer) {
                    return Ok(());
                }
                // The end of the log: a bounded split whose position reached its stop is done.
                let positions = consumer.position().map_err(|e| e.to_string())?;
                for (id, s) in splits.iter_mut().enumerate() {
                    if s.partition != p || s.finished {
                        continue;
                    }
                    let pos =
                        positions
                            .find_partition(&s.topic, p)
                            .and_then(|e| match e.offset() {
                                Offset::Offset(o) => Some(o),
                                _ => None,
                            });
                    if let (Some(stop_at), Some(pos)) = (s.stop_at, pos) {
                        if pos >= stop_at {
                            s.finished = true;
                            if tx
                                .blocking_send(Item::Event(SplitEvent::Finished(id as SplitId)))
                                .is_err()
                            {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            Some(Err(e)) => {
                if !broker_trouble {
                    tracing::warn!(%table, "kafka consumer: {e}; retrying");
                }
                broker_trouble = true;
            }
            Some(Ok(msg)) => {
                if broker_trouble {
                    tracing::info!(%table, "kafka consumer: receiving again");
                    broker_trouble = false;
                }
                let topic = msg.topic();
                let Some(&id) = index
                    .iter()
                    .find(|(t, _)| t.as_ref() == topic)
                    .and_then(|(_, parts)| parts.get(&msg.partition()))
                else {
                    continue;
                };
                let s = &mut splits[id as usize];
                if s.finished {
                    continue;
                }
                let offset = msg.offset();
                let record_time = msg.timestamp().to_millis();
                if let (Some(t), Some(rt)) = (s.skip_before, record_time) {
                    if rt < t {
                        continue;
                    }
                }
                s.skip_before = None;
                let past_time =
                    matches!((s.stop_time, record_time), (Some(t), Some(rt)) if rt >= t);
                if let Some(stop_at) = s.stop_at {
                    if offset >= stop_at || past_time {
                        s.finished = true;
                        let mut p = TopicPartitionList::new();
                        let _ = p.add_partition(&s.topic, s.partition);
                        let _ = consumer.pause(&p);
                        if !flush(&mut chunk, &consumer)
                            || tx
                                .blocking_send(Item::Event(SplitEvent::Finished(id)))
                                .is_err()
                        {
                            return Ok(());
                        }
                        continue;
                    }
                }
                s.last_seen = Instant::now();
                if s.idle {
                    s.idle = false;
                }
                if chunk.as_ref().is_some_and(|c| c.split != id) && !flush(&mut chunk, &consumer) {
                    return Ok(());
                }
                let c = chunk.get_or_insert_with(|| {
                    chunk_started = Instant::now();
                    new_chunk(id, s)
                });
                let payload = match msg.payload() {
                    Some(p) => p,
                    // The raw format reads a tombstone as a NULL value, as Flink's.
                    None if wants.tombstones => &[],
                    None => {
                        // A tombstone has no value to decode; Flink's JSON format skips it too.
                        tombstones.add(1);
                        tracing::debug!(%table, topic = %s.topic, partition = s.partition, offset, "skipped a record with no value");
                        continue;
                    }
                };
                if wants.tombstones {
                    c.value_nulls.push(msg.payload().is_none());
                }
                if wants.event_headers {
                    if let Some(headers) = msg.headers() {
                        let pairs = || headers.iter().map(|h| (h.key, h.value));
                        if cloudevents::binary::is_binary(pairs()) {
                            cloudevents::binary::write_attributes(pairs(), &mut c.event_attributes);
                        }
                    }
                    c.event_attribute_ends.push(c.event_attributes.len());
                }
                c.values.extend_from_slice(payload);
                c.values.push(b'\n');
                c.value_ends.push(c.values.len());
                if wants.keys {
                    match msg.key() {
                        Some(k) if !k.is_empty() => c.keys.extend_from_slice(k),
                        _ => c.keys.extend_from_slice(wants.missing_key),
                    }
                    c.keys.push(b'\n');
                    c.key_ends.push(c.keys.len());
                }
                c.offsets.push(offset);
                let ts = msg.timestamp();
                c.timestamps.push(ts.to_millis());
                if wants.timestamp_types {
                    c.timestamp_types.push(match ts {
                        rdkafka::Timestamp::NotAvailable => "NoTimestampType",
                        rdkafka::Timestamp::CreateTime(_) => "CreateTime",
                        rdkafka::Timestamp::LogAppendTime(_) => "LogAppendTime",
                    });
                }
                if let Some(h) = c.headers.as_mut() {
                    if let Some(headers) = msg.headers() {
                        for header in headers.iter() {
                            h.keys().append_value(header.key);
                            match header.value {
                                Some(v) => h.values().append_value(v),
                                None => h.values().append_null(),
                            }
                        }
                    }
                    if let Err(e) = h.append(true) {
                        return Err(format!("could not collect headers: {e}"));
                    }
                }
                if (c.len() >= CHUNK_ROWS
                    || c.values.len() >= CHUNK_BYTES
                    || chunk_started.elapsed() >= CHUNK_AGE)
                    && !flush(&mut chunk, &consumer)
                {
                    return Ok(());
                }
            }
        }
        if let Some(timeout) = opts.idle_timeout {
            for (id, s) in splits.iter_mut().enumerate() {
                if !s.finished && !s.idle && s.last_seen.elapsed() >= timeout {
                    if chunk.as_ref().is_some_and(|c| c.split == id as SplitId)
                        && !flush(&mut chunk, &consumer)
                    {
                        return Ok(());
                    }
                    s.idle = true;
                    if tx
                        .blocking_send(Item::Event(SplitEvent::Idle(id as SplitId)))
                        .is_err()
                    {
                        return Ok(());
                    }
                }
            }
        }
    }
    if !flush(&mut chunk, &consumer) {
        return Ok(());
    }
    if commits.is_some() && stop.is_stopped() {
        // Only checkpointed positions are committed; the rest is read again.
        return Ok(());
    }
    if group {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!(%table, "committed offsets of the records read"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(%table, "could not commit offsets: {e}"),
        }
    }
    Ok(())
}

/// Commits the offsets of a completed checkpoint.
fn commit(consumer: &BaseConsumer<LogContext>, table: &str, offsets: &Commit) {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, next) in offsets {
        if tpl
            .add_partition_offset(topic, *partition, Offset::Offset(*next))
            .is_err()
        {
            return;
        }
    }
    match consumer.commit(&tpl, CommitMode::Async) {
        Ok(()) => tracing::debug!(%table, "committed checkpointed offsets"),
        Err(e) => tracing::warn!(%table, "could not commit checkpointed offsets: {e}"),
    }
}

/// `auto.offset.reset` for partitions without a committed offset.
fn reset_offset(
    opts: &KafkaOptions,
    topic: &str,
    partition: i32,
    low: i64,
    high: i64,
) -> Result<i64, Attempt> {
    match opts.properties.get("auto.offset.reset").map(String::as_str) {
        Some("earliest" | "smallest" | "beginning") => Ok(low),
        Some("latest" | "largest" | "end") => Ok(high),
        _ => Err(Attempt::Fatal(format!(
            "partition {partition} of topic '{topic}' has no committed offset for group '{}'; set 'properties.auto.offset.reset' = 'earliest' or 'latest', or choose another 'scan.startup.mode'",
            opts.group_id().unwrap_or_default()
        ))),
    }
}

/// Resolves (topic, partition, start offset, stop offset) for every partition.
#[allow(clippy::type_complexity)]
fn plan_assignment(
    consumer: &BaseConsumer<LogContext>,
    opts: &KafkaOptions,
    brokers: &str,
) -> Result<Vec<(String, i32, i64, Option<i64>)>, Attempt> {
    let timeout = Duration::from_secs(10);
    // This subtask's partitions only (all of them when the table is read once).
    let (me, subtasks) = opts.subtask;
    let topics: Vec<_> = topic_partitions(consumer, &opts.topics, brokers)?
        .into_iter()
        .map(|(topic, parts)| {
            let mine = parts
                .into_iter()
                .filter(|p| super::options::owner(&topic, *p, subtasks) == me)
                .collect::<Vec<_>>();
            (topic, mine)
        })
        .collect();
    let mut all = TopicPartitionList::new();
    let mut marks = HashMap::new();
    for (topic, parts) in &topics {
        for &p in parts {
            all.add_partition(topic, p);
            marks.insert(
                (topic.clone(), p),
                consumer.fetch_watermarks(topic, p, timeout)?,
            );
        }
    }
    let committed = if opts.group_id().is_some()
        && (matches!(
            opts.startup,
            StartupMode::GroupOffsets | StartupMode::Specific(_)
        ) || matches!(opts.bounded, Some(BoundedMode::GroupOffsets)))
    {
        Some(consumer.committed_offsets(all.clone(), timeout)?)
    } else {
        None
    };
    let committed_of = |topic: &str, p: i32| -> Option<i64> {
        committed
            .as_ref()
            .and_then(|c| c.find_partition(topic, p))
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
    };
    let by_time = |ts: i64| -> Result<TopicPartitionList, Attempt> {
        let mut q = TopicPartitionList::new();
        for (topic, parts) in &topics {
            for &p in parts {
                q.add_partition_offset(topic, p, Offset::Offset(ts))
                    .map_err(|e| Attempt::Fatal(e.to_string()))?;
            }
        }
        Ok(consumer.offsets_for_times(q, timeout)?)
    };
    let start_times = match opts.startup {
        StartupMode::Timestamp(ts) => Some(by_time(ts)?),
        _ => None,
    };
    let time_offset = |l: &Option<TopicPartitionList>, topic: &str, p: i32, high: i64| -> i64 {
        l.as_ref()
            .and_then(|l| l.find_partition(topic, p))
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if (0..=high).contains(&o) => Some(o),
                _ => None,
            })
            .unwrap_or(high)
    };
    let mut out = vec![];
    for (topic, parts) in &topics {
        for &p in parts {
            let (low, high) = marks[&(topic.clone(), p)];
            let stop_at = match &opts.bounded {
                None => None,
                Some(BoundedMode::Latest) => Some(high),
                // The first record at or after the time ends the split (checked
                // per record); the end at start bounds it when there is none.
                Some(BoundedMode::Timestamp(_)) => Some(high),
                Some(BoundedMode::GroupOffsets) => Some(committed_of(topic, p).unwrap_or(high)),
                Some(BoundedMode::Specific(m)) => Some(m.get(&p).copied().unwrap_or(high)),
            };
            if let Some(r) = opts
                .resume
                .iter()
                .find(|r| r.topic == *topic && r.partition == p)
            {
                // A resumed bounded read keeps the end it was started with; one
                // that followed the topic and is now bounded ends where the
                // topic ends now; an unbounded one follows the topic.
                let stop = match (&opts.bounded, r.stop) {
                    (None, _) => None,
                    (Some(_), Some(s)) => Some(s),
                    (Some(_), None) => stop_at,
                };
                out.push((topic.clone(), p, r.next.clamp(low, high.max(low)), stop));
                continue;
            }
            let group_start = || match committed_of(topic, p) {
                Some(o) => Ok(o),
                None => reset_offset(opts, topic, p, low, high),
            };
            let start = match &opts.startup {
                StartupMode::Earliest => low,
                StartupMode::Latest => high,
                StartupMode::GroupOffsets => group_start()?,
                StartupMode::Timestamp(_) => time_offset(&start_times, topic, p, high),
                StartupMode::Specific(m) => match m.get(&p) {
                    Some(o) => *o,
                    None => group_start()?,
                },
            };
            out.push((topic.clone(), p, start.clamp(low, high.max(low)), stop_at));
        }
    }
    Ok(out)
}
