//! Keyed exchanges through Kafka (`'execution.exchange' = 'kafka'`) against
//! Apache Kafka (support/broker.rs): a job killed mid-run resumes to the
//! rows of a straight run, and idleness travels through the exchange.

#[path = "support/broker.rs"]
mod broker;
#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/process.rs"]
mod process;

use std::time::{Duration, Instant};

use broker::Kafka;
use kafka::{create_topics, produce, Rec};
use process::{spawn_vigil, wait_until};

/// A keyed TUMBLE and a regular join over a 4-partition topic, their keyed
/// exchanges through Kafka (`'execution.exchange' = 'kafka'`) at
/// parallelism 2, written exactly-once: killed with SIGKILL once a checkpoint
/// has completed and run again from it, the job commits the rows of a
/// straight run, none missing and none twice. The killed run's exchange
/// records after its checkpoint are in the topics still; the resumed run
/// skips them (another generation) and writes them anew.
#[test]
fn a_job_with_a_kafka_exchange_killed_and_resumed_equals_a_straight_run() {
    let broker = Kafka::start();
    let bs = broker.bootstrap.clone();
    create_topics(&bs, &[("xin", 4), ("xout-straight", 1), ("xout-killed", 1)]);
    let records: Vec<Rec> = (0..60_000i64)
        .map(|i| {
            let row = format!(
                r#"{{"k":{},"v":{i},"ts":{}}}"#,
                i % 97,
                1_700_000_000_000 + i * 10
            );
            Rec::value(row).to((i % 4) as i32)
        })
        .collect();
    produce(&bs, "xin", &records);
    let script = |out: &str| {
        format!(
            "SET 'execution.checkpointing.interval' = '300 ms';
SET 'parallelism.default' = '2';
SET 'execution.exchange' = 'kafka';
SET 'execution.exchange.kafka.bootstrap-servers' = '{bs}';
SET 'execution.exchange.kafka.topic-prefix' = 'vigil-{out}';
CREATE TABLE t (k BIGINT, v BIGINT, ts BIGINT, rt AS TO_TIMESTAMP_LTZ(ts, 3), WATERMARK FOR rt AS rt - INTERVAL '1' SECOND)
  WITH ('connector' = 'kafka', 'topic' = 'xin', 'properties.bootstrap.servers' = '{bs}', 'properties.group.id' = '{out}',
        'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE o (k BIGINT, ws STRING, n BIGINT, s BIGINT, m BIGINT)
  WITH ('connector' = 'kafka', 'topic' = '{out}', 'properties.bootstrap.servers' = '{bs}', 'format' = 'json',
        'sink.delivery-guarantee' = 'exactly-once', 'sink.transactional-id-prefix' = '{out}');
CREATE VIEW w AS SELECT k, CAST(window_start AS STRING) AS ws, COUNT(*) AS n, SUM(v) AS s
  FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(rt), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end;
CREATE VIEW x AS SELECT k, CAST(window_start AS STRING) AS ws, MAX(v) AS m
  FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(rt), INTERVAL '20' SECOND)) GROUP BY k, window_start, window_end;
INSERT INTO o SELECT w.k, w.ws, w.n, w.s, x.m FROM w JOIN x ON w.k = x.k AND w.ws = x.ws;"
        )
    };
    let sorted = |topic: &str| {
        let mut v: Vec<String> = kafka::consume_all(&bs, topic)
            .into_iter()
            .map(|(_, _, v)| v)
            .collect();
        v.sort();
        v
    };
    let base = std::env::temp_dir().join(format!("vigil-exchange-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let straight = base.join("straight");
    let mut child = spawn_vigil(&script("xout-straight"), &straight);
    wait_until(
        Duration::from_secs(300),
        "the straight run did not end",
        &straight,
        || child.try_wait().expect("wait").is_some(),
    );
    let log = std::fs::read_to_string(straight.join("vigil.log")).unwrap_or_default();
    assert!(log.contains("keyed exchanges go through Kafka"), "{log}");
    let expected = sorted("xout-straight");
    assert!(expected.len() > 97, "{} rows\n{log}", expected.len());

    let killed = base.join("killed");
    let mut child = spawn_vigil(&script("xout-killed"), &killed);
    let checkpoints = killed.join("state").join("job").join("checkpoints");
    wait_until(
        Duration::from_secs(120),
        "no checkpoint completed",
        &killed,
        || {
            std::fs::read_dir(&checkpoints).is_ok_and(|d| {
                d.flatten().any(|e| {
                    e.file_name().to_string_lossy().starts_with("chk-")
                        && e.path().join("_metadata").exists()
                })
            })
        },
    );
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the job ended before it could be killed: make the input larger"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let before = sorted("xout-killed").len();
    let mut child = spawn_vigil(&script("xout-killed"), &killed);
    wait_until(
        Duration::from_secs(300),
        "the resumed run did not end",
        &killed,
        || child.try_wait().expect("wait").is_some(),
    );
    let log = std::fs::read_to_string(killed.join("vigil.log")).unwrap_or_default();
    assert!(log.contains("resumed from checkpoint"), "{log}");
    let got = sorted("xout-killed");
    assert!(
        got == expected,
        "{} rows after the resume ({before} before it), {} in the straight run\n{log}",
        got.len(),
        expected.len()
    );
    // The dead run's records past its checkpoint were there, and skipped.
    assert!(
        log.contains("exchange records of earlier runs skipped"),
        "{log}"
    );
    // What completed checkpoints no longer need was deleted from the
    // exchange topics.
    assert!(
        kafka::purged_records(&bs, "vigil-xout-killed-") > 0,
        "nothing purged from the exchange topics"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// Runs `vigil -v run --format json` on `script` until it has printed
/// `rows` rows or `within` has passed, then kills it: the rows printed, and
/// its log.
fn rows_within(
    dir: &std::path::Path,
    script: &str,
    rows: usize,
    within: Duration,
) -> (Vec<serde_json::Value>, String) {
    std::fs::create_dir_all(dir).expect("job dir");
    std::fs::write(dir.join("job.sql"), script).expect("write script");
    let out = dir.join("out.jsonl");
    let log = dir.join("vigil.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["-v", "run", "--format", "json"])
        .arg(dir.join("job.sql"))
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start vigil");
    let deadline = Instant::now() + within;
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    while read().len() < rows && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    (read(), std::fs::read_to_string(&log).unwrap_or_default())
}

/// Idleness through the exchange (test (e) of issue 22): a keyed TUMBLE at
/// parallelism 2 over a 2-partition topic whose partition 1 is silent fires
/// nothing; with `table.exec.source.idle-timeout` the silent partition stops
/// holding the watermark back, which reaches the windows through the
/// exchange topics, and the windows up to partition 0's watermark fire while
/// the job runs.
#[test]
fn an_idle_partition_is_released_through_the_kafka_exchange() {
    let broker = Kafka::start();
    let bs = broker.bootstrap.clone();
    create_topics(&bs, &[("idle-x", 2)]);
    let recs: Vec<Rec> = (0..30)
        .map(|i| Rec::value(format!(r#"{{"id":{i},"ts":"2024-01-01 10:00:{i:02}"}}"#)).to(0))
        .collect();
    produce(&bs, "idle-x", &recs);
    let job = |name: &str, set: &str| {
        format!(
            "{set}
SET 'parallelism.default' = '2';
SET 'execution.exchange' = 'kafka';
SET 'execution.exchange.kafka.bootstrap-servers' = '{bs}';
SET 'execution.exchange.kafka.topic-prefix' = 'vigil-{name}';
CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = 'idle-x',
  'properties.bootstrap.servers' = '{bs}', 'properties.group.id' = '{name}', 'scan.startup.mode' = 'earliest-offset', 'format' = 'json');
SELECT MOD(id, 3) AS k, window_start, COUNT(*) AS n
  FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY MOD(id, 3), window_start, window_end;"
        )
    };
    let base = std::env::temp_dir().join(format!("vigil-exchange-idle-{}", std::process::id()));
    let (rows, log) = rows_within(
        &base.join("held"),
        &job("x-held", ""),
        1,
        Duration::from_secs(8),
    );
    assert!(log.contains("keyed exchanges go through Kafka"), "{log}");
    assert!(
        rows.is_empty(),
        "no window may fire while partition 1 is silent: {rows:?}"
    );
    // Two windows, three keys each.
    let (rows, log) = rows_within(
        &base.join("idled"),
        &job(
            "x-idled",
            "SET 'table.exec.source.idle-timeout' = '500 ms';",
        ),
        6,
        Duration::from_secs(60),
    );
    let mut per_window = std::collections::BTreeMap::new();
    for r in &rows {
        let w = r["window_start"].as_str().unwrap_or_default().to_string();
        *per_window.entry(w).or_insert(0) += r["n"].as_i64().unwrap_or_default();
    }
    assert_eq!(
        per_window.values().copied().collect::<Vec<i64>>(),
        vec![10, 10],
        "[10:00:00, 10:00:10) and [10:00:10, 10:00:20) fire whole; [10:00:20, 10:00:30) waits: {rows:?}\n{log}"
    );
    let _ = std::fs::remove_dir_all(&base);
}
