//! The Kafka sink's exactly-once protocol against librdkafka's mock cluster:
//! rows become visible only when their checkpoint commits, a crash between
//! pre-commit and commit is resolved by the next run's restore (the rows
//! appear once), a second restore of the same checkpoint adds nothing, and
//! rows after the last checkpoint are dropped on stop (they are replayed).
//!
//! The mock cluster accepts the transaction calls but does not hide aborted
//! records from `read_committed` readers, so these tests only commit; the
//! end-to-end no-loss/no-duplicate proof is the crash harness (tests/crash.rs).

#[path = "support/kafka.rs"]
mod kafka;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use rdkafka::mocking::MockCluster;
use vigil::connectors::kafka::KafkaConnector;
use vigil::engine::connector::{ConnectorFactory, Sink, TableSpec};
use vigil::engine::metrics::Metrics;

use kafka::runtime;

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
    match KafkaConnector.create_sink(
        &spec(
            bootstrap,
            &[("sink.transactional-id-prefix", "alerts")],
            true,
        ),
        &Metrics::new(),
    ) {
        Ok(s) => s,
        Err(e) => panic!("sink: {e}"),
    }
}

fn ids_in_topic(bootstrap: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = kafka::consume_all(bootstrap, "out")
        .iter()
        .map(|(_, _, v)| {
            serde_json::from_str::<serde_json::Value>(v).expect("json")["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn rows_appear_when_their_checkpoint_commits_and_a_crash_before_commit_is_resolved_once() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("out", 1, 1).expect("topic");
    runtime().block_on(async {
        // Run 1: checkpoint 1 commits; checkpoint 2 is pre-committed, then the
        // process dies before the commit notification.
        let mut s = sink(&bs);
        s.write(rows(0, 10)).await.expect("write");
        s.pre_commit(1).await.expect("pre-commit 1");
        assert!(
            ids_in_topic(&bs).is_empty(),
            "rows were visible before their checkpoint completed"
        );
        s.commit(1).await.expect("commit 1");
        assert_eq!(ids_in_topic(&bs), (0..10).collect::<Vec<_>>());
        s.write(rows(10, 25)).await.expect("write");
        let state2 = s.pre_commit(2).await.expect("pre-commit 2");
        s.write(rows(25, 30))
            .await
            .expect("write after the barrier");
        drop(s);
        assert_eq!(ids_in_topic(&bs).len(), 10, "pre-committed rows leaked");

        // Run 2 resumes from checkpoint 2: its pre-committed rows commit now;
        // rows after the barrier are not written (the job replays them).
        let mut s = sink(&bs);
        s.restore(&state2).await.expect("restore");
        assert_eq!(ids_in_topic(&bs), (0..25).collect::<Vec<_>>());
        // Dies again before its first checkpoint.
        s.write(rows(25, 40)).await.expect("write");
        s.stop().await.expect("stop");
        drop(s);

        // Run 3 resumes from checkpoint 2 as well: already committed, so
        // nothing is written twice.
        let mut s = sink(&bs);
        s.restore(&state2).await.expect("restore again");
        s.write(rows(25, 40)).await.expect("write");
        s.pre_commit(3).await.expect("pre-commit 3");
        s.commit(3).await.expect("commit 3");
        // The input ends: the rest is final.
        s.write(rows(40, 45)).await.expect("write");
        s.finish().await.expect("finish");
    });
    assert_eq!(ids_in_topic(&bs), (0..45).collect::<Vec<_>>());
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
