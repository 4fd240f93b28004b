//! The crash harness: a windowed job reads a Kafka topic (tansu) and writes an
//! exactly-once filesystem sink and an at-least-once Kafka sink while events
//! keep arriving; `vigil run --state-dir` is killed with SIGKILL at random
//! moments and restarted each time. The committed files must equal the output
//! of one uninterrupted run (nothing lost, nothing duplicated), and so must
//! the Kafka topic once deduplicated by the records' `vigil-row-id` headers.
//!
//! The short version (10 kills) runs in `.ci/run`. The long version:
//! `VIGIL_CRASH_KILLS=100 cargo test --test crash -- --nocapture`
//! (`VIGIL_CRASH_SEED` replays a schedule).

#[path = "support/kafka.rs"]
mod kafka;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka::{consume_records, create_topics, produce, Rec, Tansu};

/// Events per partition; the topic has two.
const EVENTS: usize = 3000;
/// Event time between two events of a partition.
const STEP_MS: i64 = 20;
const KEYS: usize = 10;
/// 2026-01-01 00:00:00 UTC.
const BASE_MS: i64 = 1_767_225_600_000;

/// The columns of the job's results.
const RESULT_COLUMNS: &str =
    "(k STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), n BIGINT, total BIGINT)";

/// The job; with `alerts`, its results also go to that Kafka topic.
fn script(brokers: &str, topic: &str, out: &Path, bounded: bool, alerts: Option<&str>) -> String {
    let bounded = if bounded {
        "'scan.bounded.mode' = 'latest-offset',"
    } else {
        ""
    };
    let query = "SELECT k, window_start, window_end, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '2' SECOND))
GROUP BY k, window_start, window_end";
    let alerts = match alerts {
        None => String::new(),
        Some(t) => format!(
            "CREATE TABLE alerts {RESULT_COLUMNS} WITH (
  'connector' = 'kafka',
  'topic' = '{t}',
  'properties.bootstrap.servers' = '{brokers}',
  'format' = 'json'
);
INSERT INTO alerts {query};
"
        ),
    };
    format!(
        "SET 'execution.checkpointing.interval' = '300 ms';
CREATE TABLE events (
  k STRING,
  v BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '{topic}',
  'properties.bootstrap.servers' = '{brokers}',
  'properties.group.id' = 'crash',
  'scan.startup.mode' = 'earliest-offset',
  {bounded}
  'format' = 'json'
);
CREATE TABLE totals {RESULT_COLUMNS} WITH (
  'connector' = 'filesystem',
  'path' = '{}',
  'format' = 'json',
  'sink.delivery-guarantee' = 'exactly-once'
);
INSERT INTO totals {query};
{alerts}",
        out.display()
    )
}

fn ts(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let d = chrono::DateTime::from_timestamp(secs, (ms.rem_euclid(1000) * 1_000_000) as u32)
        .expect("timestamp");
    d.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn events(from: usize, to: usize) -> Vec<Rec> {
    let mut recs = vec![];
    for i in from..to {
        for p in 0..2 {
            let k = (i * 7 + p * 3) % KEYS;
            let v = (i * 13 + p) % 101;
            let t = BASE_MS + i as i64 * STEP_MS + p as i64;
            recs.push(
                Rec::value(format!(r#"{{"k":"key-{k}","v":{v},"ts":"{}"}}"#, ts(t))).to(p as i32),
            );
        }
    }
    recs
}

/// Committed output rows (hidden in-progress files excluded), sorted.
fn committed_rows(dir: &Path) -> Vec<String> {
    let mut rows = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).expect("read part");
        rows.extend(text.lines().map(str::to_string));
    }
    rows.sort();
    rows
}

/// The at-least-once Kafka sink's records, by row id.
#[derive(Default)]
struct Alerts {
    records: usize,
    distinct: BTreeMap<String, String>,
    /// (id, first value, other value) for ids seen with two different values.
    conflicts: Vec<(String, String, String)>,
}

impl Alerts {
    fn read(bootstrap: &str, topic: &str) -> Self {
        let mut a = Alerts::default();
        for r in consume_records(bootstrap, topic) {
            a.records += 1;
            let id = r
                .header("vigil-row-id")
                .unwrap_or_else(|| panic!("a record without a vigil-row-id header: {r:?}"))
                .to_string();
            match a.distinct.get(&id) {
                Some(v) if *v != r.value => a.conflicts.push((id, v.clone(), r.value)),
                Some(_) => {}
                None => {
                    a.distinct.insert(id, r.value);
                }
            }
        }
        a
    }
}

/// A small deterministic generator for the kill schedule.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

fn start(script: &Path, state: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["-v", "run", "--state-dir"])
        .arg(state)
        .arg(script)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start vigil")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn killed_and_restarted_job_equals_an_uninterrupted_run() {
    let kills: usize = std::env::var("VIGIL_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("VIGIL_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("crash harness: {kills} kills, VIGIL_CRASH_SEED={seed}");
    let mut rng = Lcg(seed);
    let broker = Tansu::start();
    create_topics(&broker.bootstrap, &[("events", 2), ("alerts", 1)]);
    let dir = temp_dir("run");
    let (out, state, log) = (dir.join("out"), dir.join("state"), dir.join("vigil.log"));
    let job = dir.join("crashy.sql");
    std::fs::write(
        &job,
        script(&broker.bootstrap, "events", &out, false, Some("alerts")),
    )
    .expect("script");

    // Events keep arriving while the job is killed and restarted.
    let bootstrap = broker.bootstrap.clone();
    let batches = kills.max(10);
    let producer = std::thread::spawn(move || {
        let per = EVENTS / batches;
        for b in 0..batches {
            let to = if b + 1 == batches {
                EVENTS
            } else {
                (b + 1) * per
            };
            produce(&bootstrap, "events", &events(b * per, to));
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let mut killed = 0;
    while killed < kills {
        let mut child = start(&job, &state, &log);
        std::thread::sleep(Duration::from_millis(rng.next(150, 1500)));
        match child.try_wait().expect("wait") {
            Some(status) => panic!(
                "vigil exited ({status}) before it was killed; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
            None => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                killed += 1;
            }
        }
    }
    producer.join().expect("producer");
    // One event per partition far ahead closes every window of the real events.
    let flush_at = BASE_MS + EVENTS as i64 * STEP_MS + 60_000;
    produce(
        &broker.bootstrap,
        "events",
        &[0, 1]
            .map(|p| Rec::value(format!(r#"{{"k":"flush","v":0,"ts":"{}"}}"#, ts(flush_at))).to(p)),
    );

    // The uninterrupted run: the same query over the whole topic, to its end.
    let ref_dir = temp_dir("reference");
    let ref_out = ref_dir.join("out");
    let ref_job = ref_dir.join("reference.sql");
    std::fs::write(
        &ref_job,
        script(&broker.bootstrap, "events", &ref_out, true, None),
    )
    .expect("script");
    let status = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--state-dir"])
        .arg(ref_dir.join("state"))
        .arg(&ref_job)
        .stdout(Stdio::null())
        .status()
        .expect("reference run");
    assert!(status.success(), "the reference run failed");
    let expected: Vec<String> = committed_rows(&ref_out)
        .into_iter()
        .filter(|r| !r.contains("\"flush\""))
        .collect();
    assert!(
        expected.len() > EVENTS * 2 * STEP_MS as usize / 2000,
        "the reference run wrote too few windows: {}",
        expected.len()
    );

    // The last restart runs until its committed output is complete.
    let mut child = start(&job, &state, &log);
    let deadline = Instant::now() + Duration::from_secs(90);
    let resumed = Instant::now();
    let mut actual = committed_rows(&out);
    while actual.len() < expected.len() && Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "vigil exited ({status}); log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
        actual = committed_rows(&out);
    }
    // The Kafka sink's results, deduplicated by row id, must be complete too.
    let mut alerts;
    loop {
        alerts = Alerts::read(&broker.bootstrap, "alerts");
        if alerts.distinct.len() >= expected.len() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let caught_up = resumed.elapsed();
    // A little longer: duplicates would show up as extra rows.
    std::thread::sleep(Duration::from_secs(1));
    actual = committed_rows(&out);
    alerts = Alerts::read(&broker.bootstrap, "alerts");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "vigil did not stop cleanly on SIGTERM");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let resumed = log_text.matches("resumed from checkpoint").count();
    eprintln!(
        "crash harness: {killed} kills, {resumed} restores from a checkpoint; final run caught up in {caught_up:?}; {} rows; Kafka: {} records, {} distinct row ids",
        actual.len(),
        alerts.records,
        alerts.distinct.len()
    );
    assert!(
        alerts.conflicts.is_empty(),
        "row ids shared by different rows: {:?}",
        &alerts.conflicts[..alerts.conflicts.len().min(5)]
    );
    let deduplicated: Vec<String> = {
        let mut rows: Vec<String> = alerts
            .distinct
            .values()
            .filter(|r| !r.contains("\"flush\""))
            .cloned()
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        deduplicated.len(),
        expected.len(),
        "the Kafka output deduplicated by row id has {} rows, the uninterrupted run {} (seed {seed})",
        deduplicated.len(),
        expected.len()
    );
    assert!(
        deduplicated == expected,
        "the Kafka output deduplicated by row id differs from the uninterrupted run (seed {seed})"
    );
    assert!(
        resumed > 0,
        "no run resumed from a checkpoint: the harness proved nothing"
    );

    if actual != expected {
        let count = |rows: &[String]| {
            let mut m: BTreeMap<String, i64> = BTreeMap::new();
            for r in rows {
                *m.entry(r.clone()).or_default() += 1;
            }
            m
        };
        let (e, a) = (count(&expected), count(&actual));
        let missing: Vec<_> = e
            .iter()
            .filter(|(r, n)| a.get(*r).copied().unwrap_or(0) < **n)
            .take(5)
            .collect();
        let extra: Vec<_> = a
            .iter()
            .filter(|(r, n)| e.get(*r).copied().unwrap_or(0) < **n)
            .take(5)
            .collect();
        panic!(
            "after {killed} kills the output differs from the uninterrupted run ({} rows vs {}, seed {seed}):\nmissing {missing:?}\nextra {extra:?}\nlog: {}",
            actual.len(),
            expected.len(),
            log.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&ref_dir);
}
