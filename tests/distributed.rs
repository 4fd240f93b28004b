//! One job as several processes (`'execution.mode' = 'distributed'`)
//! against Apache Kafka (support/broker.rs): the processes meet in the job's
//! consumer group, each runs its share of every operator, and the rows of
//! the job are those of the job run as one process.

#[path = "support/broker.rs"]
mod broker;
#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use broker::Kafka;
use kafka::{create_topics, produce, Rec};

/// Runs the tests of this file one at a time: each starts a broker and
/// several processes, which together would crowd 2 cores past the group's
/// session timeout.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A keyed TUMBLE and a regular join over `topic`, printed as JSON rows by
/// every process of `workers`.
fn script(bs: &str, topic: &str, name: &str, workers: usize) -> String {
    job(
        bs,
        topic,
        name,
        workers,
        "",
        "'scan.bounded.mode' = 'latest-offset'",
    )
}

/// The job of [`script`], after `set`, reading `topic` up to `bounded`.
fn job(bs: &str, topic: &str, name: &str, workers: usize, set: &str, bounded: &str) -> String {
    format!(
        "{set}
SET 'execution.mode' = 'distributed';
SET 'execution.distributed.min-workers' = '{workers}';
SET 'execution.exchange.kafka.bootstrap-servers' = '{bs}';
SET 'execution.exchange.kafka.topic-prefix' = 'vigil-{name}';
SET 'pipeline.max-parallelism' = '16';
CREATE TABLE t (k BIGINT, v BIGINT, ts BIGINT, rt AS TO_TIMESTAMP_LTZ(ts, 3), WATERMARK FOR rt AS rt - INTERVAL '1' SECOND)
  WITH ('connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bs}',
        'scan.startup.mode' = 'earliest-offset', {bounded}, 'format' = 'json');
SELECT 'tumble' AS q, k, CAST(window_start AS STRING) AS ws, COUNT(*) AS n, SUM(v) AS s
  FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(rt), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end;
SELECT 'join' AS q, a.v AS v, a.k AS ka, b.k AS kb FROM t AS a JOIN t AS b ON a.v = b.v + 1000;"
    )
}

/// Starts worker `name` of `script` in `dir`, its JSON rows to
/// `<name>.jsonl` and its log to `<name>.log`.
fn start_worker(dir: &Path, script: &str, name: &str) -> Child {
    start_worker_with(dir, script, name, &[])
}

/// As [`start_worker`], with more arguments for `vigil run`.
fn start_worker_with(dir: &Path, script: &str, name: &str, args: &[String]) -> Child {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("job.sql");
    std::fs::write(&path, script).expect("script");
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["-v", "run", "--format", "json", "--worker-id", name])
        .args(args)
        .arg(&path)
        .stdout(std::fs::File::create(dir.join(format!("{name}.jsonl"))).expect("out"))
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).expect("log"))
        .spawn()
        .expect("start vigil")
}

fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p: PathBuf = e.path();
        if p.extension().is_some_and(|x| x == "log") {
            out.push_str(&format!("--- {}\n", p.display()));
            out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    out
}

/// Runs `workers` processes of the job to their end (within `within`):
/// each one's rows, sorted.
fn run_workers(dir: &Path, script: &str, workers: usize, within: Duration) -> Vec<Vec<String>> {
    let names: Vec<String> = (0..workers).map(|i| format!("w{i}")).collect();
    let mut children: Vec<Child> = names.iter().map(|n| start_worker(dir, script, n)).collect();
    wait_all(dir, &mut children, within);
    names.iter().map(|n| rows_of(dir, n)).collect()
}

/// The rows worker `name` printed, sorted.
fn rows_of(dir: &Path, name: &str) -> Vec<String> {
    let mut rows: Vec<String> = std::fs::read_to_string(dir.join(format!("{name}.jsonl")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    rows.sort();
    rows
}

/// Waits for `children` to end successfully within `within` (killing them
/// all if they do not).
fn wait_all(dir: &Path, children: &mut [Child], within: Duration) {
    let deadline = Instant::now() + within;
    for i in 0..children.len() {
        loop {
            if let Some(status) = children[i].try_wait().expect("wait") {
                assert!(status.success(), "a worker failed:\n{}", logs(dir));
                break;
            }
            if Instant::now() > deadline {
                for c in children.iter_mut() {
                    let _ = c.kill();
                }
                panic!("the workers did not end within {within:?}:\n{}", logs(dir));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Fails with what differs unless the sorted `got` equals `expected`.
fn assert_same(got: &[String], expected: &[String], what: &str, log: &str) {
    if got != expected {
        let missing = expected
            .iter()
            .filter(|r| got.binary_search(r).is_err())
            .count();
        let extra = got
            .iter()
            .filter(|r| expected.binary_search(r).is_err())
            .count();
        panic!(
            "{} {what}, {} expected: {missing} missing, {extra} not expected\n{log}",
            got.len(),
            expected.len()
        );
    }
}

/// Test (a) of issue 22: the job run as 3 processes prints, over all of
/// them, the multiset of rows it prints as 1 process; every process printed
/// some of them (each owned key groups), and every process ran a third.
#[test]
fn a_job_run_as_three_processes_equals_the_job_run_as_one() {
    let _one_at_a_time = serial();
    let broker = Kafka::start();
    let bs = broker.bootstrap.clone();
    create_topics(&bs, &[("din", 4)]);
    produce(&bs, "din", &records(0..20_000));
    let base = std::env::temp_dir().join(format!("vigil-distributed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    let one = base.join("one");
    let alone = run_workers(
        &one,
        &script(&bs, "din", "one", 1),
        1,
        Duration::from_secs(300),
    );
    let expected = alone.concat();
    // 31 keys over 200 s of event time in 10 s windows, and 19 000 joined pairs.
    assert!(
        expected.len() > 19_000,
        "{} rows\n{}",
        expected.len(),
        logs(&one)
    );

    let three = base.join("three");
    let shares = run_workers(
        &three,
        &script(&bs, "din", "three", 3),
        3,
        Duration::from_secs(300),
    );
    let log = logs(&three);
    for (i, rows) in shares.iter().enumerate() {
        assert!(!rows.is_empty(), "worker {i} printed nothing\n{log}");
    }
    assert_eq!(
        log.matches("running this process's share of the job")
            .count(),
        3,
        "each worker runs once, with all three present\n{log}"
    );
    let mut got = shares.concat();
    got.sort();
    assert_same(&got, &expected, "printed by 3 processes", &log);
    let _ = std::fs::remove_dir_all(&base);
}

/// Records `range` of the tests' input: 31 keys, 10 ms apart in event
/// time, dealt round the 4 partitions.
fn records(range: std::ops::Range<i64>) -> Vec<Rec> {
    range
        .map(|i| {
            let row = format!(
                r#"{{"k":{},"v":{i},"ts":{}}}"#,
                i % 31,
                1_700_000_000_000 + i * 10
            );
            Rec::value(row).to((i % 4) as i32)
        })
        .collect()
}

/// Input bounded at 10 000 records a partition: the checkpointed tests
/// produce the first half, change the processes, then produce the rest.
const HALF_BOUNDED: &str = "'scan.bounded.mode' = 'specific-offsets', 'scan.bounded.specific-offsets' = \
    'partition:0,offset:10000;partition:1,offset:10000;partition:2,offset:10000;partition:3,offset:10000'";

/// The queries of [`job`] again, into sinks that write exactly once across
/// processes: the windows into files under `files`, the join into topic
/// `<topic>-out` in Kafka transactions.
fn exactly_once_sinks(bs: &str, topic: &str, files: &Path) -> String {
    format!(
        "CREATE TABLE fout (q STRING, k BIGINT, ws STRING, n BIGINT, s BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'sink.delivery-guarantee' = 'exactly-once');
INSERT INTO fout SELECT 'tumble', k, CAST(window_start AS STRING), COUNT(*), SUM(v)
  FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(rt), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end;
CREATE TABLE kout (q STRING, v BIGINT, ka BIGINT, kb BIGINT)
  WITH ('connector' = 'kafka', 'topic' = '{topic}-out', 'properties.bootstrap.servers' = '{bs}', 'format' = 'json',
        'sink.delivery-guarantee' = 'exactly-once', 'sink.transactional-id-prefix' = '{topic}-tx');
INSERT INTO kout SELECT 'join', a.v, a.k, b.k FROM t AS a JOIN t AS b ON a.v = b.v + 1000;",
        files.display()
    )
}

/// `rows` (JSON objects, a line each) with their keys in one order, sorted.
fn normalised<'a>(rows: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = rows
        .into_iter()
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            let v: serde_json::Value =
                serde_json::from_str(r).unwrap_or_else(|e| panic!("not JSON ({e}): {r}"));
            v.to_string()
        })
        .collect();
    out.sort();
    out
}

/// The committed rows of the file sink under `dir` (in-progress files are
/// hidden from readers).
fn committed_files(dir: &Path) -> Vec<String> {
    let mut text = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("part-") {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            text.push('\n');
        }
    }
    normalised(text.lines())
}

/// A checkpointed job of several processes over half of its input.
struct Checkpointed {
    _broker: Kafka,
    /// Checkpoints on S3: each worker then has a local state directory of
    /// its own.
    s3: Option<s3::Moto>,
    bs: String,
    topic: String,
    base: PathBuf,
    /// The workers' directory (scripts, rows, logs).
    dir: PathBuf,
    script: String,
}

impl Checkpointed {
    fn new(topic: &str, min_workers: usize) -> Self {
        Self::with(topic, min_workers, None)
    }

    /// Checkpointing into `s3://vigil/checkpoints` on a moto server.
    fn on_s3(topic: &str, min_workers: usize) -> Self {
        let s3 = s3::Moto::start();
        s3.create_bucket("vigil");
        Self::with(topic, min_workers, Some(s3))
    }

    fn with(topic: &str, min_workers: usize, s3: Option<s3::Moto>) -> Self {
        let broker = Kafka::start();
        let bs = broker.bootstrap.clone();
        create_topics(&bs, &[(topic, 4)]);
        produce(&bs, topic, &records(0..20_000));
        let base = std::env::temp_dir().join(format!("vigil-{topic}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let place = match &s3 {
            None => format!(
                "SET 'state.checkpoints.dir' = 'file://{}';",
                base.join("shared").display()
            ),
            Some(s3) => format!(
                "SET 'state.checkpoints.dir' = 's3://vigil/checkpoints';
SET 's3.endpoint' = '{}';
SET 's3.access-key' = 'test';
SET 's3.secret-key' = 'test';
SET 's3.path.style.access' = 'true';",
                s3.endpoint()
            ),
        };
        let set = format!("SET 'execution.checkpointing.interval' = '300 ms';\n{place}");
        create_topics(&bs, &[(&format!("{topic}-out"), 4)]);
        let script = format!(
            "{}\n{}",
            job(&bs, topic, topic, min_workers, &set, HALF_BOUNDED),
            exactly_once_sinks(&bs, topic, &base.join("files"))
        );
        Self {
            _broker: broker,
            s3,
            bs,
            topic: topic.to_string(),
            dir: base.join("workers"),
            base,
            script,
        }
    }

    fn start(&self, name: &str) -> Child {
        self.start_with(name, vec![])
    }

    /// As [`Self::start`], with more arguments for `vigil run`.
    fn start_with(&self, name: &str, more: Vec<String>) -> Child {
        let mut args = match self.s3 {
            Some(_) => vec![
                "--state-dir".to_string(),
                self.base
                    .join(format!("state-{name}"))
                    .display()
                    .to_string(),
            ],
            None => vec![],
        };
        args.extend(more);
        start_worker_with(&self.dir, &self.script, name, &args)
    }

    fn log_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Waits until `name` has logged `what` `times` times.
    fn wait_log(&self, name: &str, what: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.log_of(name).matches(what).count() < times {
            assert!(
                Instant::now() < deadline,
                "{name} did not log '{what}' {times} times:\n{}",
                logs(&self.dir)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The rest of the input.
    fn produce_rest(&self) {
        produce(&self.bs, &self.topic, &records(20_000..40_000));
    }

    /// Every distinct row `workers` printed equals, as a set, the rows of the
    /// job run straight as one process (rows printed again after a restart
    /// from a checkpoint are the at-least-once of printing).
    fn assert_rows_of_one_process(&self, workers: &[&str]) {
        let mut got: Vec<String> = workers.iter().flat_map(|w| rows_of(&self.dir, w)).collect();
        got.sort();
        let printed = got.len();
        got.dedup();
        let one = self.base.join("one");
        let name = format!("{}-one", self.topic);
        let script = job(&self.bs, &self.topic, &name, 1, "", HALF_BOUNDED);
        let mut expected = run_workers(&one, &script, 1, Duration::from_secs(300)).concat();
        expected.dedup();
        assert!(
            expected.len() > 39_000,
            "{} rows\n{}",
            expected.len(),
            logs(&one)
        );
        let what = format!("distinct rows printed ({printed} in all)");
        let log = logs(&self.dir);
        assert_same(&got, &expected, &what, &log);
        // The exactly-once sinks hold each row once: no row missing, none twice.
        let of = |q: &str| {
            normalised(
                expected
                    .iter()
                    .map(String::as_str)
                    .filter(|r| r.contains(q)),
            )
        };
        for q in [r#""q":"tumble""#, r#""q":"join""#] {
            assert!(of(q).len() > 1_000, "few rows of {q}\n{log}");
        }
        let files = committed_files(&self.base.join("files"));
        assert_same(
            &files,
            &of(r#""q":"tumble""#),
            "window rows in committed files",
            &log,
        );
        let committed = kafka::consume_records(&self.bs, &format!("{}-out", self.topic));
        let topic = normalised(committed.iter().map(|r| r.value.as_str()));
        assert_same(
            &topic,
            &of(r#""q":"join""#),
            "join rows committed to Kafka",
            &log,
        );
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Test (b) of issue 22, with rows printed (at least once): 3 processes
/// checkpoint into a shared directory; once a checkpoint completed, one is
/// killed with SIGKILL. The other two notice (the group's session timeout),
/// start again as 2 from the last complete checkpoint, merged from the
/// three processes' parts, and finish the input. Every row of the job run
/// as 1 process was printed by one of them, and no other row.
#[test]
fn a_killed_process_is_taken_over_from_the_last_complete_checkpoint() {
    let _one_at_a_time = serial();
    kill_one_of_three(&Checkpointed::new("dkill", 3));
}

/// Test (b) with the checkpoints on S3 (a moto server), each process with
/// a local directory of its own: the survivors download the dead one's part
/// of the last complete checkpoint. Each part was uploaded under its
/// generation's name, and the finished processes left their marker.
#[test]
fn a_killed_process_is_taken_over_from_checkpoints_on_s3() {
    let _one_at_a_time = serial();
    let job = Checkpointed::on_s3("ds3kill", 3);
    kill_one_of_three(&job);
    let s3 = job.s3.as_ref().expect("moto");
    let keys = s3.keys("vigil", "checkpoints/job/");
    assert!(
        keys.iter()
            .any(|k| k.contains("-of-2/chk-") && k.ends_with("/_manifest")),
        "parts of the two survivors' generation: {keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.ends_with("-of-2/_finished"))
            .count(),
        2,
        "{keys:?}"
    );
}

/// Kills one of three processes of `job` after a checkpoint; the others
/// finish the input from the last complete checkpoint.
fn kill_one_of_three(job: &Checkpointed) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = vec!["--listen".to_string(), format!("127.0.0.1:{port}")];
    let mut children: Vec<Child> = vec![
        job.start_with("w0", listen),
        job.start("w1"),
        job.start("w2"),
    ];
    for i in 0..3 {
        job.wait_log(&format!("w{i}"), "checkpoint completed", 1);
    }
    // w0 shows its membership on /api/members and labels its metrics.
    let get = |path: &str| {
        ureq::get(&format!("http://127.0.0.1:{port}{path}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_string()
            .expect("body")
    };
    let api: serde_json::Value = serde_json::from_str(&get("/api/members")).expect("JSON");
    assert_eq!(api["worker"], "w0", "{api}");
    let workers: Vec<&str> = api["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["worker"].as_str())
        .collect();
    assert_eq!(workers.len(), 3, "{api}");
    assert!(api["last_checkpoint"].as_u64().is_some(), "{api}");
    let metrics = get("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("vigil_checkpoints_completed_total{")
                && l.contains(r#"worker="w0""#)),
        "{metrics}"
    );
    // `vigil members` shows the three and a complete checkpoint.
    let members = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("members")
        .arg(job.dir.join("job.sql"))
        .output()
        .expect("vigil members");
    let shown = String::from_utf8_lossy(&members.stdout);
    assert!(
        members.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&members.stderr)
    );
    assert!(shown.contains("(Stable), 3 worker(s)"), "{shown}");
    for w in ["w0", "w1", "w2"] {
        assert!(shown.contains(&format!("  {w}  key groups ")), "{shown}");
    }
    assert!(shown.contains("last complete checkpoint: "), "{shown}");
    let mut dead = children.pop().expect("three workers");
    dead.kill().expect("SIGKILL");
    let killed = Instant::now();
    dead.wait().expect("reap");
    job.produce_rest();
    // Recovery, for the record: from the kill to the first row w0 prints
    // after it resumed from the checkpoint.
    job.wait_log("w0", "resumed from checkpoint", 1);
    let resumed = killed.elapsed();
    let before = rows_of(&job.dir, "w0").len();
    while rows_of(&job.dir, "w0").len() == before && killed.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "recovery: resumed {:.1} s after the SIGKILL, first new row after {:.1} s",
        resumed.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    wait_all(&job.dir, &mut children, Duration::from_secs(300));
    for w in ["w0", "w1"] {
        let own = job.log_of(w);
        assert!(
            own.contains("starting again with the new shares"),
            "{w} did not restart\n{own}"
        );
        assert!(
            own.contains("resumed from checkpoint"),
            "{w} did not resume\n{own}"
        );
        // From S3, each survivor downloaded the keyed state of the key
        // groups it owns now, not the others'.
        assert!(
            job.s3.is_none() || own.contains("of key groups other processes own on object storage"),
            "{w} downloaded every part whole\n{own}"
        );
    }
    job.assert_rows_of_one_process(&["w0", "w1", "w2"]);
}

/// Test (c) of issue 22: rescaling while running, 2 -> 3 -> 1. Two
/// processes checkpoint; a third joins and all three start again as 3 from
/// the last checkpoint; two are stopped (SIGTERM: they leave the group) and
/// the last starts again alone from the last checkpoint of the three, and
/// finishes the input. Every row of the job run as 1 process was printed,
/// and no other.
#[test]
fn a_job_rescaled_from_two_processes_to_three_to_one_keeps_its_rows() {
    let _one_at_a_time = serial();
    let job = Checkpointed::new("dscale", 2);
    let mut w0 = job.start("w0");
    let mut w1 = job.start("w1");
    job.wait_log("w0", "checkpoint completed", 1);
    job.wait_log("w1", "checkpoint completed", 1);
    let mut w2 = job.start("w2");
    job.wait_log("w2", "checkpoint completed", 1);
    for w in ["w0", "w1", "w2"] {
        assert!(
            job.log_of(w).contains("of=3"),
            "{w} did not run as one of 3\n{}",
            job.log_of(w)
        );
    }
    for c in [&mut w1, &mut w2] {
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        assert!(c.wait().expect("reap").success(), "{}", logs(&job.dir));
    }
    job.wait_log("w0", "of=1", 1);
    job.produce_rest();
    wait_all(
        &job.dir,
        std::slice::from_mut(&mut w0),
        Duration::from_secs(300),
    );
    let own = job.log_of("w0");
    // Once as one of 3, once alone (and maybe once as one of 2 between
    // the two stops).
    assert!(own.matches("resumed from checkpoint").count() >= 2, "{own}");
    job.assert_rows_of_one_process(&["w0", "w1", "w2"]);
}

/// Sends `signal` (`-STOP`, `-CONT`, `-TERM`) to `child`.
fn signal(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success(), "kill {signal}");
}

/// Test (d) of issue 22: a process frozen (SIGSTOP) past its session
/// timeout is dropped from the group and the others go on as 2 from the
/// last checkpoint; thawed (SIGCONT), the zombie goes on for a moment in
/// its old generation, whose exchange records the others ignore, until it
/// learns it was dropped and all three start again. The rows printed equal,
/// as a set, those of the job run as 1 process: the zombie's late writes
/// changed no result.
#[test]
fn a_frozen_process_is_dropped_and_its_late_writes_are_ignored() {
    let _one_at_a_time = serial();
    let job = Checkpointed::new("dfreeze", 3);
    let mut children: Vec<Child> = (0..3).map(|i| job.start(&format!("w{i}"))).collect();
    for i in 0..3 {
        job.wait_log(&format!("w{i}"), "checkpoint completed", 1);
    }
    signal(&children[2], "-STOP");
    job.wait_log("w0", "of=2", 1);
    job.produce_rest();
    signal(&children[2], "-CONT");
    wait_all(&job.dir, &mut children, Duration::from_secs(300));
    let zombie = job.log_of("w2");
    assert!(
        zombie.contains("starting again with the new shares"),
        "{zombie}"
    );
    job.assert_rows_of_one_process(&["w0", "w1", "w2"]);
}
