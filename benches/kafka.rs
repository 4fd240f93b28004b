//! Kafka throughput: bids (../shared/bench/gen_bids.py) produced into a topic
//! of Apache Kafka on loopback (tests/support/broker.rs), then read twice in the same run — by a bare rdkafka
//! consume loop (the baseline: poll and touch each payload) and by Vigil
//! (Kafka -> JSON decode -> the q2 filter/projection -> blackhole) — and the
//! ratio printed. The engine should keep at least 70% of the bare rate.
//!
//! It runs once against Apache Kafka and once against librdkafka's in-process
//! mock broker, which serves without a network hop, so the engine's own cost shows.
//!
//!     cargo bench --bench kafka                       # 1M bids
//!     VIGIL_BENCH_ROWS=200000 cargo bench --bench kafka

#[path = "../tests/support/broker.rs"]
mod broker;
#[path = "../tests/support/kafka.rs"]
mod kafka;

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

#[path = "support/bids.rs"]
mod bids;
#[path = "support/produce.rs"]
mod produce;
use bids::ensure_data;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 2;

/// The baseline: a bare consume loop over the whole topic.
fn bare(bootstrap: &str, topic: &str, rows: u64) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-bare")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let start = Instant::now();
    let (mut n, mut bytes) = (0u64, 0usize);
    while n < rows {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            bytes += m.payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(bytes > 0);
    rows as f64 / secs
}

fn vigil(bootstrap: &str, topic: &str, rows: u64) -> f64 {
    let script = format!(
        "CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` TIMESTAMP(3), extra STRING) WITH (
           'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}',
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
         CREATE TABLE out (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO out SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let summary = rt
        .block_on(vigil::Vigil::new().run_script(&script, vigil::OutputFormat::Json))
        .expect("vigil job");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(summary.rows_read, rows, "vigil read every record");
    rows as f64 / secs
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: u64 = std::env::var("VIGIL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let path = ensure_data(rows);
    let broker = broker::Kafka::start();
    kafka::create_topics(&broker.bootstrap, &[("bids", PARTITIONS)]);
    compare("kafka", &broker.bootstrap, &path);
    drop(broker);
    // librdkafka's in-process mock broker serves fetches without a network hop,
    // so the engine's own cost shows more.
    let mock = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    mock.create_topic("bids", PARTITIONS, 1).expect("topic");
    compare("mock", &mock.bootstrap_servers(), &path);
}

fn compare(broker: &str, bootstrap: &str, path: &Path) {
    let t = Instant::now();
    let n = produce::load(bootstrap, "bids", path, PARTITIONS);
    println!(
        "{broker}: loaded {n} bids in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (mut best_bare, mut best_vigil) = (0f64, 0f64);
    for round in 0..2 {
        let b = bare(bootstrap, "bids", n);
        let v = vigil(bootstrap, "bids", n);
        println!("{broker} round {round}: bare consumer {b:.0} events/s, vigil {v:.0} events/s");
        best_bare = best_bare.max(b);
        best_vigil = best_vigil.max(v);
    }
    println!(
        "kafka q2 via {broker}: bare rdkafka {best_bare:.0} events/s, vigil {best_vigil:.0} events/s, ratio {:.2}",
        best_vigil / best_bare
    );
}
