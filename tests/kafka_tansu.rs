//! End to end against a real Kafka-protocol broker (tansu 0.6, started on a
//! free loopback port): golden cases produced into a topic, run Kafka -> Kafka
//! by `vigil run`, and the output topic compared with the rows Flink 2.3
//! produced for the same events and query (tests/golden/).

#[path = "support/compare.rs"]
mod compare;
#[path = "support/kafka.rs"]
mod kafka;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kafka::{create_topics, produce, Rec, Tansu};

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The query part of a golden script: everything from its last SELECT.
fn query_of(script: &str) -> String {
    let at = script.rfind("SELECT").expect("a SELECT");
    script[at..].trim().trim_end_matches(';').trim().to_string()
}

/// Runs `vigil run` on `script`, killing it after `limit`.
fn run_vigil(script: &str, limit: Duration) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("vigil-kafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!(
        "job-{}.sql",
        Instant::now().elapsed().as_nanos() ^ script.len() as u128
    ));
    std::fs::write(&path, script).expect("write script");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["-v", "run", path.to_str().expect("path")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vigil");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            return (
                status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            return (
                false,
                format!(
                    "timed out after {limit:?}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Produces the golden case's data into `partitions` partitions (round robin,
/// in file order), runs the Kafka version of its query, and compares the output
/// topic with Flink's rows.
fn golden_through_kafka(broker: &Tansu, case: &str, data: &str, partitions: i32) {
    let golden_sql =
        std::fs::read_to_string(tests_dir().join("queries").join(format!("{case}.sql")))
            .expect("golden query");
    let kafka_sql = std::fs::read_to_string(tests_dir().join("kafka").join(format!("{case}.sql")))
        .expect("kafka query");
    assert_eq!(
        query_of(&kafka_sql),
        query_of(&golden_sql),
        "tests/kafka/{case}.sql must run the golden query unchanged"
    );
    let input = format!("{case}-in-{partitions}");
    let output = format!("{case}-out-{partitions}");
    create_topics(&broker.bootstrap, &[(&input, partitions), (&output, 1)]);
    let lines = std::fs::read_to_string(tests_dir().join("data").join(data)).expect("data");
    let records: Vec<Rec> = lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| Rec::value(l).to(i as i32 % partitions))
        .collect();
    produce(&broker.bootstrap, &input, &records);
    let script = kafka_sql
        .replace("{{BROKERS}}", &broker.bootstrap)
        .replace("{{IN}}", &input)
        .replace("{{OUT}}", &output);
    let (ok, stderr) = run_vigil(&script, Duration::from_secs(120));
    assert!(
        ok,
        "{case} over {partitions} partition(s): vigil failed:\n{stderr}"
    );
    let actual: String = kafka::consume_all(&broker.bootstrap, &output)
        .into_iter()
        .map(|(_, _, v)| v + "\n")
        .collect();
    let expected =
        std::fs::read_to_string(tests_dir().join("golden").join(format!("{case}.jsonl")))
            .expect("golden rows");
    match compare::compare_jsonl(&expected, &actual) {
        Ok(None) => {}
        Ok(Some(diff)) => panic!("{case} over {partitions} partition(s) differs from Flink:\n{diff}\nvigil's log:\n{stderr}"),
        Err(e) => panic!("{case}: {e}"),
    }
}

#[test]
fn golden_windows_kafka_to_kafka_match_flink() {
    let broker = Tansu::start();
    golden_through_kafka(&broker, "tumble_out_of_order", "sensors.jsonl", 1);
    // Spread over three partitions: per-partition watermarks hold back no row here.
    golden_through_kafka(&broker, "tumble_out_of_order", "sensors.jsonl", 3);
    golden_through_kafka(&broker, "hop_partitioned_count", "sensors.jsonl", 1);
}

#[test]
fn a_missing_topic_fails_fast_with_its_name() {
    let broker = Tansu::start();
    let script = std::fs::read_to_string(tests_dir().join("kafka/tumble_out_of_order.sql"))
        .expect("script")
        .replace("{{BROKERS}}", &broker.bootstrap)
        .replace("{{IN}}", "not-created")
        .replace("{{OUT}}", "not-created-either");
    let (ok, stderr) = run_vigil(&script, Duration::from_secs(60));
    assert!(!ok);
    assert!(
        stderr.contains("topic 'not-created' does not exist") && stderr.contains(&broker.bootstrap),
        "{stderr}"
    );
}

#[test]
fn timestamp_startup_and_bounded_modes_select_by_record_time() {
    let broker = Tansu::start();
    create_topics(&broker.bootstrap, &[("timed", 1), ("timed-out", 1)]);
    let base = 1_700_000_000_000i64;
    let records: Vec<Rec> = (0..10)
        .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)).at(base + i * 1000))
        .collect();
    produce(&broker.bootstrap, "timed", &records);
    let script = format!(
        "CREATE TABLE t (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'timed', 'properties.bootstrap.servers' = '{bs}',
           'scan.startup.mode' = 'timestamp', 'scan.startup.timestamp-millis' = '{start}',
           'scan.bounded.mode' = 'timestamp', 'scan.bounded.timestamp-millis' = '{stop}', 'format' = 'json');
         CREATE TABLE o (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'timed-out', 'properties.bootstrap.servers' = '{bs}', 'format' = 'json');
         INSERT INTO o SELECT id FROM t;",
        bs = broker.bootstrap,
        start = base + 3000,
        stop = base + 7000,
    );
    let (ok, stderr) = run_vigil(&script, Duration::from_secs(60));
    assert!(ok, "{stderr}");
    let mut ids: Vec<String> = kafka::consume_all(&broker.bootstrap, "timed-out")
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![r#"{"id":3}"#, r#"{"id":4}"#, r#"{"id":5}"#, r#"{"id":6}"#],
        "vigil's log:\n{stderr}"
    );
}

/// An unbounded job stops on SIGTERM: the sink is flushed, the offsets of what
/// was read are committed to the group, and the exit status is 0; the next run
/// of the same group reads only what came after.
#[test]
fn sigterm_flushes_commits_and_exits_zero() {
    let broker = Tansu::start();
    create_topics(
        &broker.bootstrap,
        &[("live", 2), ("live-out", 1), ("live-out-2", 1)],
    );
    produce(
        &broker.bootstrap,
        "live",
        &(0..6)
            .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)).to(i % 2))
            .collect::<Vec<_>>(),
    );
    let script = |out: &str, bounded: &str| {
        format!(
            "CREATE TABLE t (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'live', 'properties.bootstrap.servers' = '{bs}',
               'properties.group.id' = 'sigterm', 'properties.auto.offset.reset' = 'earliest', 'format' = 'json'{bounded});
             CREATE TABLE o (id BIGINT) WITH ('connector' = 'kafka', 'topic' = '{out}', 'properties.bootstrap.servers' = '{bs}', 'format' = 'json');
             INSERT INTO o SELECT id FROM t;",
            bs = broker.bootstrap
        )
    };
    let dir = std::env::temp_dir().join(format!("vigil-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("live.sql");
    std::fs::write(&path, script("live-out", "")).expect("script");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", path.to_str().expect("path")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vigil");
    let deadline = Instant::now() + Duration::from_secs(30);
    while kafka::consume_all(&broker.bootstrap, "live-out").len() < 6 {
        assert!(
            Instant::now() < deadline,
            "the job did not copy the records within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "an unbounded job keeps running"
    );
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "vigil did not exit within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("output");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    produce(
        &broker.bootstrap,
        "live",
        &[
            Rec::value(r#"{"id":6}"#).to(0),
            Rec::value(r#"{"id":7}"#).to(1),
        ],
    );
    let (ok, stderr) = run_vigil(
        &script("live-out-2", ", 'scan.bounded.mode' = 'latest-offset'"),
        Duration::from_secs(60),
    );
    assert!(ok, "{stderr}");
    let mut second: Vec<String> = kafka::consume_all(&broker.bootstrap, "live-out-2")
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    second.sort();
    assert_eq!(
        second,
        vec![r#"{"id":6}"#, r#"{"id":7}"#],
        "the second run starts after the committed offsets\n{stderr}"
    );
}
