//! End to end against Apache Kafka (a KRaft node started from Maven Central's
//! jars on loopback, see support/broker.rs): golden cases produced into a
//! topic, run Kafka -> Kafka by `vigil run`, and the output topic compared with
//! the rows Flink 2.3 produced for the same events and query (tests/golden/);
//! startup and bounded modes through real ListOffsets; consumer-group offsets
//! committed with completed checkpoints and on stop.

#[path = "support/broker.rs"]
mod broker;
#[path = "support/compare.rs"]
mod compare;
#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/process.rs"]
mod process;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker::Kafka;
use kafka::{create_topics, produce, Rec};
use process::{spawn_vigil, wait_until};

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The query part of a golden script: everything from its last SELECT.
fn query_of(script: &str) -> String {
    let at = script.rfind("SELECT").expect("a SELECT");
    script[at..].trim().trim_end_matches(';').trim().to_string()
}

/// Runs `vigil run` on `script`, killing it after `limit`: whether it
/// succeeded, and its log.
fn run_vigil(script: &str, limit: Duration) -> (bool, String) {
    let (ok, _, stderr) = run_vigil_rows(script, limit);
    (ok, stderr)
}

/// Runs `vigil run --format json` on `script`, killing it after `limit`:
/// whether it succeeded, the rows it printed, and its log.
fn run_vigil_rows(script: &str, limit: Duration) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!("vigil-kafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!(
        "job-{}.sql",
        Instant::now().elapsed().as_nanos() ^ script.len() as u128
    ));
    std::fs::write(&path, script).expect("write script");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "-v",
            "run",
            "--format",
            "json",
            path.to_str().expect("path"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vigil");
    // Read both pipes while the job runs, so that neither fills up.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let (ok, note) = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break (status.success(), String::new());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break (false, format!("timed out after {limit:?}\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let rows = out.join().unwrap_or_default();
    let log = note + &err.join().unwrap_or_default();
    (ok, rows, log)
}

/// Produces the golden case's data into `partitions` partitions (round robin,
/// in file order), runs the Kafka version of its query, and compares the output
/// topic with Flink's rows.
fn golden_through_kafka(broker: &Kafka, case: &str, data: &str, partitions: i32) {
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
    let broker = Kafka::start();
    golden_through_kafka(&broker, "tumble_out_of_order", "sensors.jsonl", 1);
    // Spread over three partitions: per-partition watermarks hold back no row here.
    golden_through_kafka(&broker, "tumble_out_of_order", "sensors.jsonl", 3);
    golden_through_kafka(&broker, "hop_partitioned_count", "sensors.jsonl", 1);
}

#[test]
fn a_missing_topic_fails_fast_with_its_name() {
    let broker = Kafka::start();
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
    let broker = Kafka::start();
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
    let broker = Kafka::start();
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

/// With checkpointing, a source commits its group's offsets when a checkpoint
/// completes, never for records merely read: a job whose first checkpoint is
/// an hour away has copied every record yet committed nothing when it is
/// killed; with a checkpoint every 200 ms the group's offsets reach the end of
/// each partition while the job still runs.
#[test]
fn group_offsets_are_committed_only_with_completed_checkpoints() {
    let broker = Kafka::start();
    let bs = broker.bootstrap.clone();
    create_topics(&bs, &[("ck", 2), ("ck-out", 1), ("ck-out-2", 1)]);
    produce(
        &bs,
        "ck",
        &(0..40)
            .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)).to(i % 2))
            .collect::<Vec<_>>(),
    );
    let script = |out: &str, interval: &str| {
        format!(
            "SET 'execution.checkpointing.interval' = '{interval}';
             CREATE TABLE t (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'ck', 'properties.bootstrap.servers' = '{bs}',
               'properties.group.id' = 'ck-group', 'properties.auto.offset.reset' = 'earliest', 'format' = 'json');
             CREATE TABLE o (id BIGINT) WITH ('connector' = 'kafka', 'topic' = '{out}', 'properties.bootstrap.servers' = '{bs}', 'format' = 'json');
             INSERT INTO o SELECT id FROM t;"
        )
    };
    let base = std::env::temp_dir().join(format!("vigil-group-offsets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    let first = base.join("no-checkpoint");
    let mut child = spawn_vigil(&script("ck-out", "1 h"), &first);
    wait_until(
        Duration::from_secs(60),
        "the job did not copy 40 records",
        &first,
        || kafka::consume_all(&bs, "ck-out").len() >= 40,
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the job keeps running"
    );
    assert_eq!(
        kafka::committed_offsets(&bs, "ck-group", "ck", 2),
        vec![None, None],
        "offsets were committed without a completed checkpoint"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(
        kafka::committed_offsets(&bs, "ck-group", "ck", 2),
        vec![None, None]
    );

    let second = base.join("checkpointing");
    let mut child = spawn_vigil(&script("ck-out-2", "200 ms"), &second);
    wait_until(
        Duration::from_secs(60),
        "the group's offsets did not reach the end with checkpoints",
        &second,
        || kafka::committed_offsets(&bs, "ck-group", "ck", 2) == vec![Some(20), Some(20)],
    );
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the job keeps running"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(kafka::consume_all(&bs, "ck-out-2").len(), 40);
    let _ = std::fs::remove_dir_all(&base);
}

/// The upsert-kafka cases (tests/kafka/upsert_*.sql): the records of
/// tests/data/upsert_rates.jsonl (a key, a value and a timestamp each, a
/// null value a tombstone) produced into a one-partition topic, read as a changelog by
/// Vigil, equal the rows Flink 2.3 made of the same records
/// (tests/golden/kafka/, by tests/kafka/regen_upsert.py).
#[test]
fn upsert_kafka_sources_match_flink() {
    let broker = Kafka::start();
    let topic = "upsert-rates";
    create_topics(&broker.bootstrap, &[(topic, 1)]);
    let data = std::fs::read_to_string(tests_dir().join("data").join("upsert_rates.jsonl"))
        .expect("records");
    let records: Vec<Rec> = data
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let rec: serde_json::Value = serde_json::from_str(l).expect("a record");
            let key = rec["key"].to_string();
            let at = rec["timestamp"].as_i64().expect("a timestamp");
            match &rec["value"] {
                serde_json::Value::Null => Rec::default().key(key).at(at),
                value => Rec::value(value.to_string()).key(key).at(at),
            }
        })
        .collect();
    produce(&broker.bootstrap, topic, &records);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(tests_dir().join("kafka"))
        .expect("tests/kafka")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("upsert_") && n.ends_with(".sql"))
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "the upsert-kafka cases: {cases:?}");
    for case in cases {
        let name = case.file_stem().and_then(|n| n.to_str()).expect("name");
        let text = std::fs::read_to_string(&case).expect("case");
        let script = text
            .replace("{{BROKERS}}", &broker.bootstrap)
            .replace("{{TOPIC}}", topic)
            .replace("{{DATA}}", tests_dir().join("data").to_str().expect("path"));
        let (ok, rows, log) = run_vigil_rows(&script, Duration::from_secs(120));
        assert!(ok, "{name}: vigil failed:\n{log}");
        let expected = std::fs::read_to_string(
            tests_dir()
                .join("golden")
                .join("kafka")
                .join(format!("{name}.jsonl")),
        )
        .expect("golden rows");
        let compared = if text.contains("-- compare: final") {
            match (
                compare::final_table(&expected, None),
                compare::final_table(&rows, None),
            ) {
                (Ok(e), Ok(a)) => compare::compare_jsonl(&e, &a),
                (e, a) => Err(format!("{e:?} / {a:?}")),
            }
        } else {
            compare::compare_jsonl(&expected, &rows)
        };
        match compared {
            Ok(None) => {}
            Ok(Some(diff)) => panic!("{name} differs from Flink:\n{diff}\nvigil's log:\n{log}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}
