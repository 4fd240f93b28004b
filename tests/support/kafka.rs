//! Kafka helpers for tests: producing and consuming records and creating
//! topics through the admin API (brokers: `broker.rs`, or rdkafka's mock cluster).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// A multi-threaded Tokio runtime for tests that run jobs or sinks.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub struct Rec {
    pub partition: Option<i32>,
    pub key: Option<String>,
    pub value: Option<String>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, String)>,
    /// The value as bytes (instead of `value`).
    pub bytes: Option<Vec<u8>>,
}

impl Rec {
    pub fn value(v: impl Into<String>) -> Self {
        Self {
            value: Some(v.into()),
            ..Default::default()
        }
    }
    pub fn to(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
    pub fn key(mut self, k: impl Into<String>) -> Self {
        self.key = Some(k.into());
        self
    }
    pub fn at(mut self, ts: i64) -> Self {
        self.timestamp = Some(ts);
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// Produces `records` to `topic` and waits until all are acknowledged.
pub fn produce(bootstrap: &str, topic: &str, records: &[Rec]) {
    produce_with(bootstrap, topic, records, false);
}

fn produce_with(bootstrap: &str, topic: &str, records: &[Rec], large: bool) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "1");
    if large {
        config
            .set("message.max.bytes", "20000000")
            .set("compression.type", "lz4");
    }
    let producer: ThreadedProducer<FailureContext> = config
        .create_with_context(FailureContext::default())
        .expect("producer");
    for r in records {
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic);
        if let Some(p) = r.partition {
            rec = rec.partition(p);
        }
        if let Some(k) = &r.key {
            rec = rec.key(k.as_bytes());
        }
        if let Some(v) = r.bytes.as_deref().or(r.value.as_deref().map(str::as_bytes)) {
            rec = rec.payload(v);
        }
        if let Some(ts) = r.timestamp {
            rec = rec.timestamp(ts);
        }
        if !r.headers.is_empty() {
            let mut h = OwnedHeaders::new();
            for (k, v) in &r.headers {
                h = h.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            rec = rec.headers(h);
        }
        let mut rec = rec;
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    let failed = producer.context().0.lock().expect("lock").clone();
    assert!(failed.is_empty(), "records not delivered: {failed:?}");
}

/// A record's value as bytes (`None`: a tombstone) and its headers.
pub type BytesRecord<'a> = (Option<Vec<u8>>, Vec<(&'a str, &'a str)>);

/// Produces records given as bytes (`None`: a tombstone) with headers, in
/// partition 0, allowing records up to 20 MB (compressed with lz4).
pub fn produce_bytes(bootstrap: &str, topic: &str, records: &[BytesRecord<'_>]) {
    let recs: Vec<Rec> = records
        .iter()
        .map(|(value, headers)| Rec {
            partition: Some(0),
            bytes: value.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .collect();
    produce_with(bootstrap, topic, &recs, true);
}

/// Keeps the delivery errors of a producer.
#[derive(Default)]
struct FailureContext(std::sync::Mutex<Vec<String>>);

impl rdkafka::ClientContext for FailureContext {}

impl rdkafka::producer::ProducerContext for FailureContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if let Ok(mut f) = self.0.lock() {
                f.push(e.to_string());
            }
        }
    }
}

/// Creates topics through the admin API (the test brokers create none by themselves).
pub fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let res = rt
        .block_on(admin.create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("create topics");
    for r in res {
        r.expect("topic created");
    }
}

/// Every record of `topic` (all partitions, from the beginning to the end of
/// each partition), as (partition, key, value).
pub fn consume_all(bootstrap: &str, topic: &str) -> Vec<(i32, Option<String>, String)> {
    consume_records(bootstrap, topic)
        .into_iter()
        .map(|r| (r.partition, r.key, r.value))
        .collect()
}

/// A consumed record.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub key: Option<String>,
    pub value: String,
    /// The record has no value at all.
    pub tombstone: bool,
    pub headers: Vec<(String, String)>,
}

impl Consumed {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every committed record of `topic` with its headers, read to the end of each
/// partition (`read_committed`: records of open or aborted transactions are not
/// returned).
pub fn consume_records(bootstrap: &str, topic: &str) -> Vec<Consumed> {
    consume_isolated(bootstrap, topic, "read_committed")
}

/// As [`consume_records`], also returning records of open and aborted transactions.
pub fn consume_uncommitted(bootstrap: &str, topic: &str) -> Vec<Consumed> {
    consume_isolated(bootstrap, topic, "read_uncommitted")
}

fn consume_isolated(bootstrap: &str, topic: &str, isolation: &str) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "vigil-test-reader")
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        // The mock cluster returns nothing larger than the fetch limits.
        .set("max.partition.fetch.bytes", "30000000")
        .set("fetch.max.bytes", "60000000")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = vec![];
    let mut ended = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ended.len() < parts.len() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(Consumed {
                partition: m.partition(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                tombstone: m.payload().is_none(),
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            _ => {}
        }
    }
    out
}

/// The offsets `group` committed for partitions `0..partitions` of `topic`
/// (`None` where it committed none).
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect()
}

/// The records deleted from the fronts of the partitions of every topic
/// whose name starts with `prefix` (the sum of their low watermarks).
pub fn purged_records(bootstrap: &str, prefix: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let mut purged = 0;
    for t in md.topics().iter().filter(|t| t.name().starts_with(prefix)) {
        for p in t.partitions() {
            let (low, _) = consumer
                .fetch_watermarks(t.name(), p.id(), Duration::from_secs(10))
                .expect("watermarks");
            purged += low;
        }
    }
    purged
}
