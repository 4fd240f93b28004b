//! Dead letters: records a source cannot decode go unchanged, with the error
//! and their position, to the table's dead-letter output (a file or a Kafka
//! topic) while the job goes on with the good ones.

#[path = "support/collect.rs"]
mod collect;
#[path = "support/kafka.rs"]
mod kafka;

use kafka::{produce, runtime, Rec};
use rdkafka::mocking::MockCluster;
use serde_json::{json, Value};
use vigil::OutputFormat;

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-dlq-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

#[test]
fn bad_lines_of_a_file_go_to_a_dead_letter_file_with_their_line_and_error() {
    let dir = temp("file");
    let input = dir.join("in.jsonl");
    // Line 2 is truncated, line 4 has a string where a number goes, line 5 is
    // not UTF-8; lines 1, 3 and 6 are good.
    let mut bytes =
        b"{\"id\":1,\"v\":10}\n{\"id\":2,\"v\":\n{\"id\":3,\"v\":30}\n{\"id\":4,\"v\":\"forty\"}\n"
            .to_vec();
    bytes.extend_from_slice(b"{\"id\":5,\"v\":\xff}\n{\"id\":6,\"v\":60}\n");
    std::fs::write(&input, &bytes).expect("input");
    let dlq = dir.join("dead.jsonl");
    let script = format!(
        "CREATE TABLE t (id BIGINT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
           'dlq.connector' = 'filesystem', 'dlq.path' = '{}');
         CREATE TABLE out_t (id BIGINT, v BIGINT) WITH ('connector' = 'collect', 'name' = 'file_good');
         INSERT INTO out_t SELECT id, v FROM t;",
        input.display(),
        dlq.display()
    );
    let summary = runtime()
        .block_on(collect::vigil().run_script(&script, OutputFormat::Json))
        .expect("the job goes on");
    assert_eq!(summary.malformed_records, 3);
    let mut good: Vec<i64> = collect::rows("file_good")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    good.sort_unstable();
    assert_eq!(good, vec![1, 3, 6]);
    let letters: Vec<Value> = std::fs::read_to_string(&dlq)
        .expect("dead letters written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(letters.len(), 3, "{letters:?}");
    let lines: Vec<i64> = letters
        .iter()
        .map(|l| l["position"]["line"].as_i64().expect("line"))
        .collect();
    assert_eq!(lines, vec![2, 4, 5]);
    assert!(letters.iter().all(|l| l["source"] == json!("t")));
    assert!(letters
        .iter()
        .all(|l| !l["error"].as_str().unwrap_or("").is_empty()));
    // Unchanged: as text when it is text, in base64 when it is not.
    assert_eq!(letters[0]["record"], json!("{\"id\":2,\"v\":"));
    assert_eq!(letters[1]["record"], json!("{\"id\":4,\"v\":\"forty\"}"));
    assert_eq!(letters[2]["record_base64"], json!("eyJpZCI6NSwidiI6/30="));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_kafka_records_go_to_a_dead_letter_topic_with_their_offset_and_error() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("events", 1, 1).expect("topic");
    cluster.create_topic("events-dlq", 1, 1).expect("topic");
    produce(
        &bs,
        "events",
        &[
            Rec::value(r#"{"id":1}"#),
            Rec::value("not json").key("k2"),
            Rec::value(r#"{"id":3}"#),
            Rec::value(r#"{"id":"four"}"#),
        ],
    );
    let script = format!(
        "CREATE TABLE t (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'events',
           'properties.bootstrap.servers' = '{bs}', 'scan.startup.mode' = 'earliest-offset',
           'scan.bounded.mode' = 'latest-offset', 'format' = 'json',
           'dlq.connector' = 'kafka', 'dlq.topic' = 'events-dlq', 'dlq.properties.bootstrap.servers' = '{bs}');
         CREATE TABLE out_t (id BIGINT) WITH ('connector' = 'collect', 'name' = 'kafka_good');
         INSERT INTO out_t SELECT id FROM t;"
    );
    let summary = runtime()
        .block_on(collect::vigil().run_script(&script, OutputFormat::Json))
        .expect("the job goes on");
    assert_eq!(summary.malformed_records, 2);
    assert_eq!(collect::rows("kafka_good").len(), 2);
    let letters = kafka::consume_records(&bs, "events-dlq");
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0].value, "not json");
    assert_eq!(letters[0].header("vigil-dlq-position"), Some("events/0@1"));
    assert_eq!(letters[0].header("vigil-dlq-source"), Some("t"));
    assert!(letters[0]
        .header("vigil-dlq-error")
        .is_some_and(|e| !e.is_empty()));
    assert_eq!(letters[1].value, r#"{"id":"four"}"#);
    assert_eq!(letters[1].header("vigil-dlq-position"), Some("events/0@3"));
}

/// A `debezium-json` topic: the good change events become their changelog
/// rows (an update two rows, each with its record's metadata), a Debezium
/// tombstone is skipped, and records that are no changes (not JSON, an
/// unknown `op`, an update without `before`) are dead letters with their
/// offset and reason.
#[test]
fn bad_change_events_go_to_the_dead_letters_and_good_ones_become_changes() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("cdc", 1, 1).expect("topic");
    cluster.create_topic("cdc-dlq", 1, 1).expect("topic");
    produce(
        &bs,
        "cdc",
        &[
            Rec::value(r#"{"before":null,"after":{"id":1,"v":"a"},"op":"c"}"#),
            Rec::value("not json"),
            Rec::value(r#"{"before":{"id":1,"v":"a"},"after":{"id":1,"v":"b"},"op":"u"}"#),
            Rec::value(r#"{"before":null,"after":{"id":2,"v":"x"},"op":"t"}"#),
            Rec::value(r#"{"before":null,"after":{"id":1,"v":"c"},"op":"u"}"#),
            Rec::default().key("1"),
            Rec::value(r#"{"before":{"id":1,"v":"b"},"after":null,"op":"d"}"#),
        ],
    );
    let script = format!(
        "CREATE TABLE t (id BIGINT, v STRING, off BIGINT METADATA FROM 'offset') WITH (
           'connector' = 'kafka', 'topic' = 'cdc', 'properties.bootstrap.servers' = '{bs}',
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
           'format' = 'debezium-json',
           'dlq.connector' = 'kafka', 'dlq.topic' = 'cdc-dlq', 'dlq.properties.bootstrap.servers' = '{bs}');
         CREATE TABLE out_t (id BIGINT, v STRING, off BIGINT) WITH ('connector' = 'collect', 'name' = 'cdc_good');
         INSERT INTO out_t SELECT id, v, off FROM t;"
    );
    let summary = runtime()
        .block_on(collect::vigil().run_script(&script, OutputFormat::Json))
        .expect("the job goes on");
    assert_eq!(summary.malformed_records, 3);
    let rows: Vec<(String, i64, i64)> = collect::rows("cdc_good")
        .iter()
        .map(|r| {
            (
                r["v"].as_str().expect("v").to_string(),
                r["off"].as_i64().expect("off"),
                r["__row_kind"].as_i64().expect("kind"),
            )
        })
        .collect();
    let expected = [("a", 0, 0), ("a", 2, 1), ("b", 2, 2), ("b", 6, 3)];
    let expected: Vec<(String, i64, i64)> = expected
        .iter()
        .map(|(v, o, k)| (v.to_string(), *o, *k))
        .collect();
    assert_eq!(rows, expected);
    let letters = kafka::consume_records(&bs, "cdc-dlq");
    let positions: Vec<Option<&str>> = letters
        .iter()
        .map(|l| l.header("vigil-dlq-position"))
        .collect();
    assert_eq!(
        positions,
        vec![Some("cdc/0@1"), Some("cdc/0@3"), Some("cdc/0@4")]
    );
    let errors: Vec<&str> = letters
        .iter()
        .map(|l| l.header("vigil-dlq-error").unwrap_or(""))
        .collect();
    assert!(errors[1].contains("unknown 'op'"), "{errors:?}");
    assert!(errors[2].contains("'before'"), "{errors:?}");
}

/// The README's alert pipeline (Kafka to a webhook, dead letters on both
/// ends) plans as written.
#[test]
fn the_alert_pipeline_example_plans() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/alert_pipeline.sql");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["explain", example])
        .output()
        .expect("vigil");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(plan.starts_with("Webhook(pager)"), "{plan}");
    assert!(plan.contains("Kafka(topics=sensor-readings"), "{plan}");
}
