//! Loads a file of JSON lines into a Kafka topic for the benchmarks, one
//! record a line, dealt round `partitions`.

use std::path::Path;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// Produces every line of `path` into `topic`: the number of records.
pub fn load(bootstrap: &str, topic: &str, path: &Path, partitions: i32) -> u64 {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let text = std::fs::read_to_string(path).expect("bids");
    let mut n = 0u64;
    for (i, line) in text.lines().enumerate() {
        let mut rec = BaseRecord::<(), str>::to(topic)
            .payload(line)
            .partition(i as i32 % partitions);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        n += 1;
    }
    producer.flush(Duration::from_secs(300)).expect("flush");
    n
}
