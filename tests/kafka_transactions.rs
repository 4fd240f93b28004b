//! The Kafka sink's exactly-once protocol against Apache Kafka (support/broker.rs),
//! read back by `read_committed` consumers: rows become visible only when
//! their checkpoint commits, a crash between pre-commit and commit is resolved
//! by the next run's restore (the rows appear once), a second restore of the
//! same checkpoint adds nothing, rows after the last checkpoint are dropped on
//! stop (they are replayed); a sink that starts fences the producer of the run
//! before it, whose open transaction is aborted and never seen; and Vigil's
//! Kafka source reads only committed records. The end-to-end
//! no-loss/no-duplicate proof under kill -9 is the crash harness (tests/crash.rs).

#[path = "support/broker.rs"]
mod broker;
#[path = "support/collect.rs"]
mod collect;
#[path = "support/kafka.rs"]
mod kafka;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use rdkafka::mocking::MockCluster;
use vigil::connectors::kafka::KafkaConnector;
use vigil::engine::connector::{ConnectorFactory, Share, Sink, SinkState, TableSpec};
use vigil::engine::metrics::Metrics;

use broker::Kafka;
use kafka::runtime;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use std::time::Duration;

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn rows(from: i64, to: i64) -> RecordBatch {
    let ids: Vec<i64> = (from..to).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .expect("batch")
}

fn spec(bootstrap: &str, extra: &[(&str, &str)], checkpointing: bool) -> TableSpec {
    let mut options: BTreeMap<String, String> = [
        ("connector", "kafka"),
        ("topic", "out"),
        ("properties.bootstrap.servers", bootstrap),
        ("format", "json"),
        ("sink.delivery-guarantee", "exactly-once"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        options.insert(k.to_string(), v.to_string());
    }
    let mut spec = TableSpec::new("out", schema(), options);
    if checkpointing {
        spec.job_options
            .insert("execution.checkpointing.interval".into(), "1 s".into());
    }
    spec
}

fn sink(bootstrap: &str) -> Box<dyn Sink> {
    sink_with_prefix(bootstrap, "alerts")
}

fn sink_with_prefix(bootstrap: &str, prefix: &str) -> Box<dyn Sink> {
    match KafkaConnector.create_sink(
        &spec(bootstrap, &[("sink.transactional-id-prefix", prefix)], true),
        &Metrics::new(),
    ) {
        Ok(s) => s,
        Err(e) => panic!("sink: {e}"),
    }
}

/// The state a job of one process restores.
fn own(bytes: Vec<u8>) -> Vec<SinkState> {
    vec![SinkState { share: 0, bytes }]
}

/// The ids a `read_committed` consumer sees in topic `out`, sorted.
fn ids_in_topic(bootstrap: &str) -> Vec<i64> {
    ids_of(kafka::consume_records(bootstrap, "out"))
}

/// The ids of every record written to `out`, committed or not, sorted.
fn ids_written(bootstrap: &str) -> Vec<i64> {
    ids_of(kafka::consume_uncommitted(bootstrap, "out"))
}

fn ids_of(records: Vec<kafka::Consumed>) -> Vec<i64> {
    let mut ids: Vec<i64> = records
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.value).expect("json")["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// A transactional producer with the sink's transactional id (`<prefix>-0`),
/// standing for the process of a run that died mid-transaction.
fn predecessor(
    bootstrap: &str,
    prefix: &str,
) -> ThreadedProducer<rdkafka::producer::DefaultProducerContext> {
    let p: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", format!("{prefix}-0"))
        .create()
        .expect("producer");
    p.init_transactions(Duration::from_secs(30)).expect("init");
    p
}

#[test]
fn rows_appear_when_their_checkpoint_commits_and_a_crash_before_commit_is_resolved_once() {
    let broker = Kafka::start();
    let bs = broker.bootstrap.clone();
    kafka::create_topics(&bs, &[("out", 1)]);
    runtime().block_on(async {
        // Run 1: checkpoint 1 commits; checkpoint 2 is pre-committed, then the
        // process dies before the commit notification.
        let mut s = sink(&bs);
        s.write(rows(0, 10)).await.expect("write");
        s.pre_commit(1).await.expect("pre-commit 1");
        assert!(
            ids_written(&bs).is_empty(),
            "rows were written before their checkpoint completed"
        );
        s.commit(1).await.expect("commit 1");
        assert_eq!(ids_in_topic(&bs), (0..10).collect::<Vec<_>>());
        s.write(rows(10, 25)).await.expect("write");
        let state2 = s.pre_commit(2).await.expect("pre-commit 2");
        s.write(rows(25, 30))
            .await
            .expect("write after the barrier");
        drop(s);
        assert_eq!(ids_written(&bs).len(), 10, "pre-committed rows leaked");

        // Run 2 resumes from checkpoint 2: its pre-committed rows commit now;
        // rows after the barrier are not written (the job replays them).
        let mut s = sink(&bs);
        s.restore(&own(state2.clone())).await.expect("restore");
        assert_eq!(ids_in_topic(&bs), (0..25).collect::<Vec<_>>());
        // Dies again before its first checkpoint.
        s.write(rows(25, 40)).await.expect("write");
        s.stop().await.expect("stop");
        drop(s);

        // Run 3 resumes from checkpoint 2 as well: already committed, so
        // nothing is written twice.
        let mut s = sink(&bs);
        s.restore(&own(state2)).await.expect("restore again");
        s.write(rows(25, 40)).await.expect("write");
        s.pre_commit(3).await.expect("pre-commit 3");
        s.commit(3).await.expect("commit 3");
        // The input ends: the rest is final.
        s.write(rows(40, 45)).await.expect("write");
        s.finish().await.expect("finish");
    });
    assert_eq!(ids_in_topic(&bs), (0..45).collect::<Vec<_>>());
    assert_eq!(
        ids_written(&bs),
        (0..45).collect::<Vec<_>>(),
        "no transaction was aborted"
    );
}

/// A run that died inside a transaction leaves it open. The next run's sink,
/// as soon as it starts writing, takes over its transactional id: the old
/// producer is fenced (its commit fails), its records stay invisible to
/// `read_committed` readers, and only the new run's rows are seen.
#[test]
fn a_starting_sink_fences_its_predecessor_whose_open_transaction_is_never_visible() {
    let broker = Kafka::start();
    let bs = broker.bootstrap.clone();
    kafka::create_topics(&bs, &[("out", 1)]);
    let zombie = predecessor(&bs, "fenced");
    zombie.begin_transaction().expect("begin");
    for id in 100..105 {
        let value = format!(r#"{{"id":{id},"name":"zombie"}}"#);
        zombie
            .send(BaseRecord::<(), str>::to("out").payload(&value))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    zombie.flush(Duration::from_secs(30)).expect("flush");
    assert_eq!(ids_written(&bs), (100..105).collect::<Vec<_>>());
    assert!(
        ids_in_topic(&bs).is_empty(),
        "an open transaction was visible"
    );
    runtime().block_on(async {
        let mut s = sink_with_prefix(&bs, "fenced");
        s.write(rows(0, 10)).await.expect("write");
        // The new run's first write fenced the old producer.
        let err = zombie
            .commit_transaction(Duration::from_secs(30))
            .expect_err("the fenced producer committed");
        assert!(
            err.to_string().to_lowercase().contains("fenced"),
            "the old producer failed for another reason: {err}"
        );
        s.pre_commit(1).await.expect("pre-commit");
        s.commit(1).await.expect("commit");
    });
    assert_eq!(ids_in_topic(&bs), (0..10).collect::<Vec<_>>());
}

/// A job of two processes rescales to one: each process's pending rows (its
/// transactional id `<prefix>-<i>`, its marker) are committed once by the
/// process that takes them over, which fences the old producer of each
/// share, so a zombie of the old generation can no longer commit; a second
/// restore of the same checkpoint adds nothing.
#[test]
fn after_a_rescale_every_share_pending_rows_commit_once_and_old_producers_are_fenced() {
    let broker = Kafka::start();
    let bs = broker.bootstrap.clone();
    kafka::create_topics(&bs, &[("out", 1)]);
    runtime().block_on(async {
        let share = |index| Share {
            index,
            count: 2,
            generation: 7,
        };
        let mut a = sink_with_prefix(&bs, "two");
        let mut b = sink_with_prefix(&bs, "two");
        a.assign(share(0)).expect("assign 0");
        b.assign(share(1)).expect("assign 1");
        a.write(rows(0, 5)).await.expect("write");
        b.write(rows(5, 10)).await.expect("write");
        a.pre_commit(1).await.expect("pre-commit");
        b.pre_commit(1).await.expect("pre-commit");
        // Both shares committed checkpoint 1; checkpoint 2 completes, but
        // only share 0 commits it before the processes go away.
        a.commit(1).await.expect("commit");
        b.commit(1).await.expect("commit");
        a.write(rows(10, 15)).await.expect("write");
        b.write(rows(15, 20)).await.expect("write");
        let sa = a.pre_commit(2).await.expect("pre-commit");
        let sb = b.pre_commit(2).await.expect("pre-commit");
        a.commit(2).await.expect("commit");
        drop(a);
        assert_eq!(ids_in_topic(&bs), (0..15).collect::<Vec<_>>());
        // One process now: it takes over both shares' states.
        let states = vec![
            SinkState {
                share: 0,
                bytes: sa.clone(),
            },
            SinkState {
                share: 1,
                bytes: sb.clone(),
            },
        ];
        let mut one = sink_with_prefix(&bs, "two");
        one.restore(&states).await.expect("restore");
        assert_eq!(ids_in_topic(&bs), (0..20).collect::<Vec<_>>());
        // The zombie of share 1 was fenced by the takeover.
        let err = b.commit(2).await.expect_err("the zombie committed");
        assert!(
            err.to_string().to_lowercase().contains("fenc"),
            "the zombie failed for another reason: {err}"
        );
        drop(one);
        let mut again = sink_with_prefix(&bs, "two");
        again.restore(&states).await.expect("restore again");
        again.write(rows(20, 22)).await.expect("write");
        again.finish().await.expect("finish");
    });
    assert_eq!(ids_in_topic(&bs), (0..22).collect::<Vec<_>>());
}

/// Vigil's Kafka source reads only committed records: of a topic holding an
/// aborted transaction, a committed one and plain records, it sees the last two.
#[test]
fn the_source_skips_aborted_transactions() {
    let broker = Kafka::start();
    let bs = broker.bootstrap.clone();
    kafka::create_topics(&bs, &[("mixed", 1)]);
    let p = predecessor(&bs, "writer");
    let send = |ids: std::ops::Range<i64>| {
        for id in ids {
            let value = format!(r#"{{"id":{id}}}"#);
            p.send(BaseRecord::<(), str>::to("mixed").payload(&value))
                .map_err(|(e, _)| e)
                .expect("send");
        }
    };
    p.begin_transaction().expect("begin");
    send(0..5);
    p.abort_transaction(Duration::from_secs(30)).expect("abort");
    p.begin_transaction().expect("begin");
    send(5..8);
    p.commit_transaction(Duration::from_secs(30))
        .expect("commit");
    kafka::produce(&bs, "mixed", &[kafka::Rec::value(r#"{"id":8}"#)]);
    let script = format!(
        "CREATE TABLE t (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'mixed', 'properties.bootstrap.servers' = '{bs}',
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
         CREATE TABLE o (id BIGINT) WITH ('connector' = 'collect', 'name' = 'committed_only');
         INSERT INTO o SELECT id FROM t;"
    );
    runtime()
        .block_on(collect::vigil().run_script(&script, vigil::OutputFormat::Json))
        .expect("run");
    let mut ids: Vec<i64> = collect::rows("committed_only")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![5, 6, 7, 8]);
}

#[test]
fn exactly_once_needs_a_prefix_and_checkpoints() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    let no_prefix = KafkaConnector
        .create_sink(&spec(&bs, &[], true), &Metrics::new())
        .err()
        .expect("refused without a prefix")
        .to_string();
    assert!(
        no_prefix.contains("'sink.transactional-id-prefix'"),
        "{no_prefix}"
    );
    let no_checkpoints = KafkaConnector
        .create_sink(
            &spec(&bs, &[("sink.transactional-id-prefix", "p")], false),
            &Metrics::new(),
        )
        .err()
        .expect("refused without checkpoints")
        .to_string();
    assert!(
        no_checkpoints.contains("execution.checkpointing.interval"),
        "{no_checkpoints}"
    );
}
