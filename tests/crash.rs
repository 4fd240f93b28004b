//! The crash harness: a windowed job reads a Kafka topic (Apache Kafka, see
//! support/broker.rs) and writes an exactly-once filesystem sink, an
//! at-least-once Kafka sink and an exactly-once (transactional) Kafka sink
//! while events keep arriving; `vigil run --state-dir` is killed with SIGKILL at
//! random moments and restarted each time, and once the broker itself is
//! killed and restarted mid-run. The committed files must equal the output of
//! one uninterrupted run (nothing lost, nothing duplicated); so must what a
//! `read_committed` consumer reads of the exactly-once topic, as it is; and so
//! must the at-least-once topic once deduplicated by the records'
//! `vigil-row-id` headers. The harness runs twice: with the job as written,
//! and with it at parallelism 3 and a one-byte state cache.
//!
//! The short version (10 kills) runs in `.ci/run`. The long version:
//! `VIGIL_CRASH_KILLS=100 cargo test --test crash -- --nocapture`
//! (`VIGIL_CRASH_SEED` replays a schedule).

#[path = "support/broker.rs"]
mod broker;
#[path = "support/kafka.rs"]
mod kafka;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use broker::Kafka;
use kafka::{consume_records, create_topics, produce, Rec};

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

/// The at-least-once and exactly-once Kafka output topics.
const ALERTS: &str = "alerts";
const ALERTS_EO: &str = "alerts-eo";

/// The job; with `to_kafka`, its results also go to [`ALERTS`] (at least
/// once) and [`ALERTS_EO`] (exactly once).
fn script(brokers: &str, topic: &str, out: &Path, bounded: bool, to_kafka: bool) -> String {
    let bounded = if bounded {
        "'scan.bounded.mode' = 'latest-offset',"
    } else {
        ""
    };
    let query = "SELECT k, window_start, window_end, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '2' SECOND))
GROUP BY k, window_start, window_end";
    let alerts = if to_kafka {
        format!(
            "CREATE TABLE alerts {RESULT_COLUMNS} WITH (
  'connector' = 'kafka',
  'topic' = '{ALERTS}',
  'properties.bootstrap.servers' = '{brokers}',
  'format' = 'json'
);
INSERT INTO alerts {query};
CREATE TABLE alerts_eo {RESULT_COLUMNS} WITH (
  'connector' = 'kafka',
  'topic' = '{ALERTS_EO}',
  'properties.bootstrap.servers' = '{brokers}',
  'format' = 'json',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'crash-alerts'
);
INSERT INTO alerts_eo {query};
"
        )
    } else {
        String::new()
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

/// Counts a row list by row.
fn counted(rows: &[String]) -> BTreeMap<&str, i64> {
    let mut m: BTreeMap<&str, i64> = BTreeMap::new();
    for r in rows {
        *m.entry(r.as_str()).or_default() += 1;
    }
    m
}

/// Fails with the rows missing from and added to `expected`, if they differ.
fn assert_same_rows(what: &str, actual: &[String], expected: &[String], seed: u64, log: &Path) {
    if actual == expected {
        return;
    }
    let (e, a) = (counted(expected), counted(actual));
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
        "{what} differs from the uninterrupted run ({} rows vs {}, seed {seed}):\nmissing {missing:?}\nextra {extra:?}\nlog: {}",
        actual.len(),
        expected.len(),
        log.display()
    );
}

/// The rows a `read_committed` consumer reads of the exactly-once topic,
/// sorted, without the flush rows.
fn exactly_once_rows(bootstrap: &str) -> Vec<String> {
    let mut rows: Vec<String> = consume_records(bootstrap, ALERTS_EO)
        .into_iter()
        .map(|r| r.value)
        .filter(|r| !r.contains("\"flush\""))
        .collect();
    rows.sort();
    rows
}

fn seed() -> u64 {
    std::env::var("VIGIL_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// The job's runs: started, killed, restarted; exits of its own are counted.
struct Runs {
    job: PathBuf,
    state: PathBuf,
    log: PathBuf,
    child: Child,
    /// Runs that failed by themselves (allowed only once the broker was killed).
    failed: usize,
}

impl Runs {
    fn start(job: PathBuf, state: PathBuf, log: PathBuf) -> Self {
        let child = start(&job, &state, &log);
        Runs {
            job,
            state,
            log,
            child,
            failed: 0,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Restarts the job if it exited by itself; panics unless `may_fail`.
    fn supervise(&mut self, may_fail: bool) {
        if let Some(status) = self.child.try_wait().expect("wait") {
            assert!(
                may_fail,
                "vigil exited ({status}) before it was killed; log: {}",
                self.log_text()
            );
            self.failed += 1;
            self.child = start(&self.job, &self.state, &self.log);
        }
    }

    fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        self.child.wait().expect("reap");
        self.child = start(&self.job, &self.state, &self.log);
    }
}

/// Kills the broker under the running job (events keep being produced, into
/// the producer's queue), starts it again after `down`, and returns how long
/// after the restart the job's exactly-once output grew again: the rows of
/// events produced meanwhile committed through a new transaction.
fn broker_outage(broker: &mut Kafka, runs: &mut Runs, down: Duration) -> Duration {
    let before = exactly_once_rows(&broker.bootstrap).len();
    broker.kill(0);
    std::thread::sleep(down);
    broker.restart(0);
    let back = Instant::now();
    loop {
        runs.supervise(true);
        if exactly_once_rows(&broker.bootstrap).len() > before {
            return back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "no new exactly-once output within 120 s of the broker's restart; log: {}",
            runs.log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The harnesses run one at a time: each starts a broker and a job that keeps
/// both cores busy, and their timeouts assume the machine to themselves.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn killed_and_restarted_job_equals_an_uninterrupted_run() {
    harness("run", "");
}

/// The same, with three instances of the window aggregation and a one-byte
/// state cache: every window is read back from RocksDB, and every restore
/// hands each instance its key groups.
#[test]
fn killed_and_restarted_job_at_parallelism_three_with_a_one_byte_cache_equals_an_uninterrupted_run()
{
    harness(
        "p3-spill",
        "SET 'parallelism.default' = '3';\nSET 'state.backend.cache-size' = '1';\n",
    );
}

/// Kills and restarts the job (written with `settings` first) while events
/// arrive; its outputs must equal the reference run's (default settings).
fn harness(name: &str, settings: &str) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let kills: usize = std::env::var("VIGIL_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed = seed();
    eprintln!("crash harness {name}: {kills} kills, VIGIL_CRASH_SEED={seed}");
    let mut rng = Lcg(seed);
    let mut broker = Kafka::start();
    create_topics(
        &broker.bootstrap,
        &[("events", 2), (ALERTS, 1), (ALERTS_EO, 2)],
    );
    let dir = temp_dir(name);
    let (out, state, log) = (dir.join("out"), dir.join("state"), dir.join("vigil.log"));
    let job = dir.join("crashy.sql");
    let text = script(&broker.bootstrap, "events", &out, false, true);
    std::fs::write(&job, format!("{settings}{text}")).expect("script");

    // Events keep arriving while the job is killed and restarted, and while
    // the broker is down (its restart comes half-way through the kills).
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
            std::thread::sleep(Duration::from_millis(800));
        }
    });
    let mut runs = Runs::start(job.clone(), state, log.clone());
    let outage_at = kills / 2;
    let mut recovery = None;
    for killed in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.next(150, 1500)));
        if killed == outage_at {
            recovery = Some(broker_outage(
                &mut broker,
                &mut runs,
                Duration::from_secs(3),
            ));
        }
        runs.supervise(recovery.is_some());
        runs.kill_and_restart();
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
    let expected = reference_run(&broker.bootstrap);

    // The last run goes on until every output is complete.
    let resumed = Instant::now();
    let deadline = resumed + Duration::from_secs(120);
    let complete = |actual: &[String], alerts: &Alerts, eo: &[String]| {
        actual.len() >= expected.len()
            && alerts.distinct.len() >= expected.len()
            && eo.len() >= expected.len()
    };
    loop {
        runs.supervise(true);
        let (actual, alerts, eo) = (
            committed_rows(&out),
            Alerts::read(&broker.bootstrap, ALERTS),
            exactly_once_rows(&broker.bootstrap),
        );
        if complete(&actual, &alerts, &eo) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let caught_up = resumed.elapsed();
    // A little longer: duplicates would show up as extra rows.
    std::thread::sleep(Duration::from_secs(2));
    let actual = committed_rows(&out);
    let alerts = Alerts::read(&broker.bootstrap, ALERTS);
    let eo = exactly_once_rows(&broker.bootstrap);
    let _ = Command::new("kill")
        .args(["-TERM", &runs.child.id().to_string()])
        .status();
    let status = runs.child.wait().expect("wait");
    assert!(status.success(), "vigil did not stop cleanly on SIGTERM");
    let restores = runs.log_text().matches("resumed from checkpoint").count();
    let eo_duplicates = eo.len() as i64 - counted(&eo).len() as i64;
    let eo_rows = counted(&eo);
    let missing = expected
        .iter()
        .filter(|r| !eo_rows.contains_key(r.as_str()))
        .count();
    eprintln!(
        "crash harness {name}: {kills} kills, 1 broker kill+restart (new exactly-once output {:?} after the broker was back), {} runs failed by themselves, {restores} restores from a checkpoint; final run caught up in {caught_up:?}; {} rows; exactly-once topic: {} records, {eo_duplicates} duplicates, {missing} missing; at-least-once topic: {} records, {} distinct row ids",
        recovery.unwrap_or_default(),
        runs.failed,
        expected.len(),
        eo.len(),
        alerts.records,
        alerts.distinct.len()
    );
    assert!(
        restores > 0,
        "no run resumed from a checkpoint: the harness proved nothing"
    );
    assert_same_rows("the committed files", &actual, &expected, seed, &log);
    assert_same_rows(
        "the exactly-once Kafka topic (read_committed)",
        &eo,
        &expected,
        seed,
        &log,
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
    assert_same_rows(
        "the at-least-once Kafka topic deduplicated by row id",
        &deduplicated,
        &expected,
        seed,
        &log,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The uninterrupted run: the same query over the whole topic, to its end;
/// its committed rows without the flush rows, sorted.
fn reference_run(bootstrap: &str) -> Vec<String> {
    let ref_dir = temp_dir("reference");
    let ref_out = ref_dir.join("out");
    let ref_job = ref_dir.join("reference.sql");
    std::fs::write(&ref_job, script(bootstrap, "events", &ref_out, true, false)).expect("script");
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
    let _ = std::fs::remove_dir_all(&ref_dir);
    expected
}
