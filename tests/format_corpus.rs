//! Malformed input through every format, from a file and from Kafka:
//! truncated records, wrong types, invalid UTF-8, deep nesting, huge strings
//! and 10 MB records. No panic, the job goes on, and every record ends either
//! as a row of the output or as a dead letter, counted as malformed.

#[path = "support/collect.rs"]
mod collect;
#[path = "support/kafka.rs"]
mod kafka;

use kafka::{consume_records, produce_bytes, runtime};
use rdkafka::mocking::MockCluster;
use vigil::OutputFormat;

const MB: usize = 1 << 20;

/// Inputs every format gets, spelled as its records.
struct Corpus {
    format: &'static str,
    columns: &'static str,
    options: &'static str,
    records: Vec<Vec<u8>>,
    /// Records that must be dead letters (at least this many).
    min_dead: usize,
}

fn json() -> Corpus {
    let mut records: Vec<Vec<u8>> = vec![
        br#"{"id":1,"name":"ok"}"#.to_vec(),
        br#"{"id":2,"name":"trunc"#.to_vec(),
        br#"{"id":"three","name":"wrong type"}"#.to_vec(),
        br#"{"id":4,"name":5}"#.to_vec(),
        b"\xc3\x28\xa0\xa1 not utf-8".to_vec(),
        br#"[1,2,3]"#.to_vec(),
        br#"{"id":7,"name":null}"#.to_vec(),
        br#"{"id":8}"#.to_vec(),
        br#"{"id":9,"name":"x","extra":{"deep":[[[[[[1]]]]]]}}"#.to_vec(),
        b"{}".to_vec(),
        b"null".to_vec(),
        br#"{"id":12,"name":"\ud800"}"#.to_vec(),
        b"{\"id\":13,\"name\":\"tab\tinside\"}".to_vec(),
        br#"{"id":99999999999999999999,"name":"overflow"}"#.to_vec(),
    ];
    records.push(
        format!(
            "{{\"id\":15,\"name\":\"n\",\"x\":{}1{}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        )
        .into_bytes(),
    );
    records.push(format!("{{\"id\":16,\"name\":\"{}\"}}", "a".repeat(MB)).into_bytes());
    records.push(format!("{{\"id\":17,\"name\":\"{}\"", "b".repeat(10 * MB)).into_bytes());
    Corpus {
        format: "json",
        columns: "id BIGINT, name STRING",
        options: "",
        records,
        // The truncated, mistyped, non-UTF-8, array and 10 MB records.
        min_dead: 5,
    }
}

fn csv() -> Corpus {
    let mut records: Vec<Vec<u8>> = vec![
        b"1,ok".to_vec(),
        b"2,\"trunc".to_vec(),
        b"three,wrong type".to_vec(),
        b"4".to_vec(),
        b"5,a,extra".to_vec(),
        b"6,\xc3\x28\xa0\xa1".to_vec(),
        b"99999999999999999999,overflow".to_vec(),
        b"8,\"quote\"\"d\"".to_vec(),
    ];
    records.push(format!("9,{}", "[".repeat(5000)).into_bytes());
    records.push(format!("10,{}", "a".repeat(MB)).into_bytes());
    records.push(format!("11,\"{}", "b".repeat(10 * MB)).into_bytes());
    Corpus {
        format: "csv",
        columns: "id BIGINT, name STRING",
        options: "",
        records,
        min_dead: 4,
    }
}

fn raw() -> Corpus {
    let mut records: Vec<Vec<u8>> = vec![
        b"a line".to_vec(),
        b"\xc3\x28\xa0\xa1 not utf-8".to_vec(),
        br#"{"looks":"like json"#.to_vec(),
    ];
    records.push("[".repeat(5000).into_bytes());
    records.push("a".repeat(MB).into_bytes());
    records.push("b".repeat(10 * MB).into_bytes());
    Corpus {
        format: "raw",
        columns: "line STRING",
        options: "",
        records,
        min_dead: 1,
    }
}

fn cloudevents() -> Corpus {
    let event = |id: &str, data: &str| {
        format!(r#"{{"specversion":"1.0","id":"{id}","source":"/s","type":"t","data":{data}}}"#)
            .into_bytes()
    };
    let mut records: Vec<Vec<u8>> = vec![
        event("e1", r#"{"temp":1.5}"#),
        br#"{"specversion":"1.0","id":"e2","data":{"temp":"#.to_vec(),
        event("e3", r#"{"temp":"hot"}"#),
        event("e4", "5"),
        event("e5", r#"[1,2]"#),
        b"\xc3\x28\xa0\xa1 not utf-8".to_vec(),
        br#"[{"id":"e7"}]"#.to_vec(),
        br#"{"specversion":"1.0","id":"e8","source":"/s","type":"t"}"#.to_vec(),
    ];
    records.push(event(
        "e9",
        &format!(
            "{{\"temp\":2,\"x\":{}1{}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        ),
    ));
    records.push(event(
        "e10",
        &format!("{{\"temp\":3,\"note\":\"{}\"}}", "a".repeat(MB)),
    ));
    records.push(event(
        "e11",
        &format!("{{\"temp\":4,\"note\":\"{}", "b".repeat(10 * MB)),
    ));
    Corpus {
        format: "cloudevents",
        columns: "id STRING, temp DOUBLE",
        options: "",
        records,
        min_dead: 5,
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-corpus-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn check_totals(c: &Corpus, via: &str, good: usize, dead: usize, malformed: u64) {
    assert_eq!(
        good + dead,
        c.records.len(),
        "{} via {via}: {good} rows and {dead} dead letters",
        c.format
    );
    assert_eq!(malformed as usize, dead, "{} via {via}", c.format);
    assert!(
        dead >= c.min_dead,
        "{} via {via}: only {dead} dead letters",
        c.format
    );
}

/// The corpus as the lines of a file, dead letters to a file.
fn through_a_file(c: &Corpus) {
    let dir = temp(c.format);
    let input = dir.join("corpus.txt");
    let mut bytes = vec![];
    for r in &c.records {
        bytes.extend_from_slice(r);
        bytes.push(b'\n');
    }
    std::fs::write(&input, &bytes).expect("input");
    let dlq = dir.join("dead.jsonl");
    let name = format!("file_{}", c.format);
    let script = format!(
        "CREATE TABLE t ({cols}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = '{}'{},
           'dlq.connector' = 'filesystem', 'dlq.path' = '{}');
         CREATE TABLE out_t ({cols}) WITH ('connector' = 'collect', 'name' = '{name}');
         INSERT INTO out_t SELECT * FROM t;",
        input.display(),
        c.format,
        c.options,
        dlq.display(),
        cols = c.columns,
    );
    let summary = runtime()
        .block_on(collect::vigil().run_script(&script, OutputFormat::Json))
        .expect("the job goes on");
    let dead = std::fs::read_to_string(&dlq).map_or(0, |t| t.lines().count());
    check_totals(
        c,
        "a file",
        collect::rows(&name).len(),
        dead,
        summary.malformed_records,
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The corpus as Kafka values, dead letters to a topic. Records travel
/// compressed: the mock cluster passes no 10 MB fetch response, though the
/// records themselves stay 10 MB.
fn through_kafka(c: &Corpus) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("corpus", 1, 1).expect("topic");
    cluster.create_topic("corpus-dlq", 1, 1).expect("topic");
    let records: Vec<kafka::BytesRecord<'_>> = c
        .records
        .iter()
        .map(|r| (Some(r.clone()), vec![]))
        .collect();
    produce_bytes(&bs, "corpus", &records);
    assert_eq!(
        consume_records(&bs, "corpus").len(),
        records.len(),
        "the broker took every record"
    );
    let name = format!("kafka_{}", c.format);
    let script = format!(
        "CREATE TABLE t ({cols}) WITH ('connector' = 'kafka', 'topic' = 'corpus', 'properties.bootstrap.servers' = '{bs}',
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = '{}'{},
           'properties.max.partition.fetch.bytes' = '30000000', 'properties.fetch.max.bytes' = '60000000',
           'dlq.connector' = 'kafka', 'dlq.topic' = 'corpus-dlq', 'dlq.properties.bootstrap.servers' = '{bs}',
           'dlq.properties.compression.type' = 'lz4');
         CREATE TABLE out_t ({cols}) WITH ('connector' = 'collect', 'name' = '{name}');
         INSERT INTO out_t SELECT * FROM t;",
        c.format,
        c.options,
        cols = c.columns,
    );
    let summary = runtime()
        .block_on(collect::vigil().run_script(&script, OutputFormat::Json))
        .expect("the job goes on");
    let letters = consume_records(&bs, "corpus-dlq");
    for l in &letters {
        assert!(
            l.header("vigil-dlq-error").is_some_and(|e| !e.is_empty()),
            "a dead letter says why: {:?}",
            l.headers
        );
    }
    check_totals(
        c,
        "Kafka",
        collect::rows(&name).len(),
        letters.len(),
        summary.malformed_records,
    );
}

#[test]
fn json_corpus() {
    let c = json();
    through_a_file(&c);
    through_kafka(&c);
}

#[test]
fn csv_corpus() {
    let c = csv();
    through_a_file(&c);
    through_kafka(&c);
}

#[test]
fn raw_corpus() {
    let c = raw();
    through_a_file(&c);
    through_kafka(&c);
}

#[test]
fn cloudevents_corpus() {
    let c = cloudevents();
    through_a_file(&c);
    through_kafka(&c);
}
