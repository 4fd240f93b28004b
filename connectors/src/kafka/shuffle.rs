//! Keyed exchanges through Kafka (`'execution.exchange' = 'kafka'`): each
//! exchange is a topic of the job's with one partition per key group, which
//! the job creates. Writers produce each key group's rows (Arrow IPC) and the
//! in-band markers with idempotence on, so a partition keeps their order;
//! readers take their key groups' partitions from explicit offsets (no
//! consumer group commits: positions live in the job's checkpoints), and
//! delete (DeleteRecords) what no retained checkpoint needs any more. See
//! [`vigil_engine::shuffle`] for what the records mean.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use vigil_engine::checkpoint::next_completed;
use vigil_engine::connector::{Source, SourceContext};
use vigil_engine::message::CheckpointId;
use vigil_engine::shuffle::reader::{decode_positions, encode_positions, Emit, ExchangeReader};
use vigil_engine::shuffle::record::{encode_marker, encode_rows};
use vigil_engine::shuffle::{ExchangeSpec, Marker, ShuffleService, ShuffleWriter};
use vigil_engine::state::instance_of;
use vigil_engine::{EngineError, Result};

use super::client::{client_config, flush_producer, DeliveryContext, LogContext};

/// How long creating a topic or reading its offsets may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

fn error(topic: &str, message: impl std::fmt::Display) -> EngineError {
    EngineError::Graph(format!("Kafka exchange '{topic}': {message}"))
}

/// The exchanges of one run of a job, on one Kafka cluster.
pub struct KafkaShuffle {
    properties: BTreeMap<String, String>,
    prefix: String,
    replication: i32,
    /// This run's generation: readers take only its records.
    generation: u64,
    /// Whether other processes write the exchanges too: a fresh run then
    /// reads from the start of each log (skipping other generations'
    /// records), since their writers may start before this process plans.
    shared: bool,
    created: Mutex<BTreeSet<String>>,
}

impl KafkaShuffle {
    /// Exchanges on the cluster of `properties` (librdkafka's, with
    /// `bootstrap.servers`), in topics named `<prefix>-<exchange>`.
    pub fn new(properties: BTreeMap<String, String>, prefix: &str, replication: i32) -> Self {
        // Unique to the run (readers take records of their own generation
        // only, so the order of generations does not matter).
        let generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self {
            properties,
            prefix: prefix.to_string(),
            replication,
            generation,
            shared: false,
            created: Mutex::new(BTreeSet::new()),
        }
    }

    /// The exchanges of a job running as several processes, which share
    /// `generation` (their membership's).
    pub fn shared(mut self, generation: u64) -> Self {
        self.generation = generation;
        self.shared = true;
        self
    }

    /// This run's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn topic(&self, spec: &ExchangeSpec) -> String {
        format!("{}-{}", self.prefix, spec.name)
    }

    /// Creates `topic` with a partition per key group, unless it exists with
    /// them already.
    fn ensure_topic(&self, topic: &str, partitions: u16) -> Result<()> {
        if self.created.lock().is_ok_and(|c| c.contains(topic)) {
            return Ok(());
        }
        ensure_topic(&self.properties, topic, partitions, self.replication)?;
        if let Ok(mut c) = self.created.lock() {
            c.insert(topic.to_string());
        }
        Ok(())
    }

    /// Where each partition ends now (a fresh run reads from there), or
    /// where it begins, when other processes write the exchange too.
    fn start_offsets(&self, topic: &str, partitions: u16) -> Result<BTreeMap<u16, i64>> {
        let config = client_config(&self.properties).map_err(|e| error(topic, e))?;
        let consumer: BaseConsumer = config
            .create()
            .map_err(|e| error(topic, format!("invalid Kafka configuration: {e}")))?;
        let mut out = BTreeMap::new();
        let deadline = Instant::now() + ADMIN_TIMEOUT;
        for g in 0..partitions {
            // A new topic's partitions may have no leader for a moment.
            let high = loop {
                match consumer.fetch_watermarks(topic, i32::from(g), Duration::from_secs(5)) {
                    Ok((low, high)) => break if self.shared { low } else { high },
                    Err(e) if Instant::now() > deadline => {
                        return Err(error(
                            topic,
                            format!("cannot read the end of partition {g}: {e}"),
                        ))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            };
            out.insert(g, high);
        }
        Ok(out)
    }
}

/// Creates `topic` with `partitions` partitions (one per key group) on the
/// cluster of `properties`, unless it exists with them already.
pub(super) fn ensure_topic(
    properties: &BTreeMap<String, String>,
    topic: &str,
    partitions: u16,
    replication: i32,
) -> Result<()> {
    let config = client_config(properties).map_err(|e| error(topic, e))?;
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(|e| error(topic, format!("invalid Kafka configuration: {e}")))?;
    let new = NewTopic::new(
        topic,
        i32::from(partitions),
        TopicReplication::Fixed(replication),
    );
    let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = futures::executor::block_on(admin.create_topics([&new], &opts))
        .map_err(|e| error(topic, format!("cannot create the topic: {e}")))?;
    let mut existed = false;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => existed = true,
            Err((_, code)) => return Err(error(topic, format!("cannot create the topic: {code}"))),
        }
    }
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| error(topic, format!("invalid Kafka configuration: {e}")))?;
    let deadline = Instant::now() + ADMIN_TIMEOUT;
    loop {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(|e| error(topic, e))?;
        let found = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        if found == usize::from(partitions) {
            break;
        }
        if found > 0 && existed {
            return Err(error(
                topic,
                format!("the topic has {found} partitions and the job {partitions} key groups ('pipeline.max-parallelism'); delete the topic or set them equal"),
            ));
        }
        if Instant::now() > deadline {
            return Err(error(
                topic,
                "the topic was created but has no partitions yet",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

impl ShuffleService for KafkaShuffle {
    fn describe(&self) -> String {
        format!("Kafka exchange (topics '{}-*')", self.prefix)
    }

    fn writer(&self, spec: &ExchangeSpec) -> Result<Box<dyn ShuffleWriter>> {
        let topic = self.topic(spec);
        self.ensure_topic(&topic, spec.key_groups)?;
        let mut config = client_config(&self.properties).map_err(|e| error(&topic, e))?;
        // Idempotence keeps each partition's records in the order sent, so
        // a marker never overtakes the rows before it.
        config
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("batch.size", "1000000");
        let producer: ThreadedProducer<DeliveryContext> = config
            .create_with_context(DeliveryContext::new(&topic))
            .map_err(|e| error(&topic, format!("invalid Kafka configuration: {e}")))?;
        Ok(Box::new(KafkaShuffleWriter {
            producer,
            topic,
            generation: self.generation,
            producer_index: spec.producer,
            key_groups: spec.key_groups,
        }))
    }

    fn reader(&self, spec: &ExchangeSpec) -> Result<Box<dyn Source>> {
        let topic = self.topic(spec);
        self.ensure_topic(&topic, spec.key_groups)?;
        let start = self.start_offsets(&topic, spec.key_groups)?;
        Ok(Box::new(KafkaShuffleReader {
            properties: self.properties.clone(),
            topic,
            generation: self.generation,
            producers: spec.producers,
            key_groups: spec.key_groups,
            groups: (0..spec.key_groups).collect(),
            start,
        }))
    }
}

/// One producer's writer of an exchange topic.
struct KafkaShuffleWriter {
    producer: ThreadedProducer<DeliveryContext>,
    topic: String,
    generation: u64,
    producer_index: u32,
    key_groups: u16,
}

impl KafkaShuffleWriter {
    async fn send(&self, partition: u16, payload: &[u8]) -> Result<()> {
        let mut record: BaseRecord<'_, (), [u8]> = BaseRecord::to(&self.topic)
            .partition(i32::from(partition))
            .payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // librdkafka's queue is full: let it deliver (backpressure).
                    record = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(error(&self.topic, format!("cannot produce: {e}"))),
            }
        }
    }

    fn check_failures(&self) -> Result<()> {
        let ctx = self.producer.context();
        match ctx.failed.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => {
                let last = ctx.last_error.lock().ok().and_then(|l| l.clone());
                Err(error(
                    &self.topic,
                    format!(
                        "{n} record(s) could not be delivered: {}",
                        last.unwrap_or_default()
                    ),
                ))
            }
        }
    }
}

#[async_trait]
impl ShuffleWriter for KafkaShuffleWriter {
    fn describe(&self) -> String {
        format!("KafkaExchangeWriter({})", self.topic)
    }

    async fn rows(&mut self, group: u16, batch: &RecordBatch) -> Result<()> {
        let payload = encode_rows(self.generation, self.producer_index, batch)?;
        self.send(group, &payload).await
    }

    async fn marker(&mut self, marker: Marker) -> Result<()> {
        let payload = encode_marker(self.generation, self.producer_index, marker);
        for g in 0..self.key_groups {
            self.send(g, &payload).await?;
        }
        self.check_failures()
    }

    async fn flush(&mut self) -> Result<()> {
        flush_producer(&self.producer);
        self.check_failures()
    }
}

/// The reader of an exchange topic: the partitions of its key groups.
struct KafkaShuffleReader {
    properties: BTreeMap<String, String>,
    topic: String,
    generation: u64,
    producers: u32,
    key_groups: u16,
    groups: Vec<u16>,
    /// Where to start each partition (the end at planning, or the
    /// restored checkpoint's positions).
    start: BTreeMap<u16, i64>,
}

impl KafkaShuffleReader {
    fn consumer(&self) -> Result<StreamConsumer<LogContext>> {
        let mut config = client_config(&self.properties).map_err(|e| error(&self.topic, e))?;
        config
            .set("group.id", format!("{}-reader", self.topic))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", "10");
        let consumer: StreamConsumer<LogContext> = config
            .create_with_context(LogContext {
                table: self.topic.clone(),
            })
            .map_err(|e| error(&self.topic, format!("invalid Kafka configuration: {e}")))?;
        let mut tpl = TopicPartitionList::new();
        for g in &self.groups {
            let at = self.start.get(g).copied().unwrap_or(0);
            tpl.add_partition_offset(&self.topic, i32::from(*g), Offset::Offset(at))
                .map_err(|e| error(&self.topic, e))?;
        }
        consumer.assign(&tpl).map_err(|e| error(&self.topic, e))?;
        Ok(consumer)
    }
}

#[async_trait]
impl Source for KafkaShuffleReader {
    fn describe(&self) -> String {
        format!("KafkaExchangeReader({})", self.topic)
    }

    fn supports_checkpoints(&self) -> bool {
        true
    }

    fn splits(&self) -> bool {
        true
    }

    fn subtasks(self: Box<Self>, n: usize) -> Result<Vec<Box<dyn Source>>> {
        Ok((0..n)
            .map(|i| {
                let groups = self
                    .groups
                    .iter()
                    .copied()
                    .filter(|g| instance_of(*g, n, self.key_groups) == i)
                    .collect();
                Box::new(KafkaShuffleReader {
                    properties: self.properties.clone(),
                    topic: self.topic.clone(),
                    generation: self.generation,
                    producers: self.producers,
                    key_groups: self.key_groups,
                    groups,
                    start: self.start.clone(),
                }) as Box<dyn Source>
            })
            .collect())
    }

    fn restore(&mut self, states: &[Vec<u8>]) -> Result<()> {
        for s in states {
            for (g, at) in decode_positions(s)? {
                self.start.insert(g, at);
            }
        }
        Ok(())
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        if self.groups.is_empty() {
            return Ok(());
        }
        let starts: Vec<i64> = self
            .groups
            .iter()
            .map(|g| self.start.get(g).copied().unwrap_or(0))
            .collect();
        let mut reader = ExchangeReader::new(
            self.generation,
            self.producers,
            self.groups.clone(),
            &starts,
        );
        let consumer = self.consumer()?;
        let mut stop = ctx.stop.clone();
        let mut completed = ctx.completed_checkpoints();
        let mut purger = match completed {
            Some(_) => Some(Purger::new(&self.properties, &self.topic)?),
            None => None,
        };
        let mut out = vec![];
        while !reader.finished() {
            let msg = tokio::select! {
                _ = stop.stopped() => break,
                done = next_completed(&mut completed) => {
                    if let Some(p) = purger.as_mut() {
                        p.completed(done).await;
                    }
                    continue;
                }
                m = consumer.recv() => m.map_err(|e| error(&self.topic, e))?,
            };
            let group = u16::try_from(msg.partition())
                .map_err(|_| error(&self.topic, format!("partition {}", msg.partition())))?;
            reader.on_record(
                group,
                msg.offset(),
                msg.payload().unwrap_or_default(),
                &mut out,
            )?;
            drop(msg);
            for e in out.drain(..) {
                match e {
                    Emit::Rows(b) => ctx.emit(b).await?,
                    Emit::Watermark(wm) => ctx.emit_watermark(wm).await?,
                    Emit::Idle => ctx.emit_idle().await?,
                    Emit::Barrier(id, positions) => {
                        ctx.barrier(id, encode_positions(&positions)).await?;
                        if let Some(p) = purger.as_mut() {
                            p.taken.push_back((id, positions));
                        }
                    }
                }
            }
        }
        if reader.skipped > 0 {
            tracing::info!(topic = %self.topic, skipped = reader.skipped, "exchange records of earlier runs skipped");
        }
        Ok(())
    }
}

/// Deletes what a reader's partitions hold before the positions of the
/// checkpoint before the newest completed one (DeleteRecords): a restore
/// starts at the newest, or falls back to the one before it.
struct Purger {
    admin: AdminClient<DefaultClientContext>,
    topic: String,
    /// The positions of the barriers emitted, oldest first, from the
    /// newest completed checkpoint's on.
    taken: VecDeque<(CheckpointId, Vec<(u16, i64)>)>,
}

impl Purger {
    fn new(properties: &BTreeMap<String, String>, topic: &str) -> Result<Self> {
        let admin = client_config(properties)
            .map_err(|e| error(topic, e))?
            .create()
            .map_err(|e| error(topic, format!("invalid Kafka configuration: {e}")))?;
        Ok(Self {
            admin,
            topic: topic.to_string(),
            taken: VecDeque::new(),
        })
    }

    /// Checkpoint `done` completed. Purging is housekeeping: a failure is
    /// logged, and the next completion tries again.
    async fn completed(&mut self, done: CheckpointId) {
        let completed = self.taken.iter().take_while(|(id, _)| *id <= done).count();
        if completed < 2 {
            return;
        }
        // The one before the newest completed is the bound; older ones go.
        let mut older: Vec<_> = self.taken.drain(..completed - 1).collect();
        let Some((_, positions)) = older.pop() else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        for (g, at) in positions.iter().filter(|(_, at)| *at > 0) {
            if tpl
                .add_partition_offset(&self.topic, i32::from(*g), Offset::Offset(*at))
                .is_err()
            {
                return;
            }
        }
        if tpl.count() == 0 {
            return;
        }
        let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        if let Err(e) = self.admin.delete_records(&tpl, &opts).await {
            tracing::warn!(topic = %self.topic, "cannot purge exchange records: {e}");
        }
    }
}
