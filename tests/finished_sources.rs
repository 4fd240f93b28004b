//! Checkpoints after part of a job has finished (Flink's FLIP-147): a bounded
//! file source ends while a Kafka source (the mock cluster) goes on; the job
//! keeps checkpointing, so the Kafka stream's exactly-once output keeps being
//! committed; resumed from a later checkpoint, the finished file source is not
//! read again. And a run stopped before its first checkpoint leaves no hidden
//! in-progress file once the next run has started.

#[path = "support/kafka.rs"]
mod kafka;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kafka::{produce, runtime, Rec};
use rdkafka::mocking::MockCluster;
use vigil::engine::control::{stop_channel, StopHandle};
use vigil::{OutputFormat, RunOptions, Vigil};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-finished-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The committed rows under `dir` (hidden in-progress files left out), sorted.
fn committed(dir: &Path) -> Vec<i64> {
    let mut ids = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        for l in std::fs::read_to_string(e.path())
            .unwrap_or_default()
            .lines()
        {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            ids.push(v["id"].as_i64().expect("id"));
        }
    }
    ids.sort_unstable();
    ids
}

/// The hidden in-progress files under `dir`.
fn in_progress(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.ends_with(".inprogress"))
        .collect()
}

fn ids(from: i64, to: i64) -> Vec<Rec> {
    (from..to)
        .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)))
        .collect()
}

/// A job running on a thread of its own.
struct Job {
    handle: StopHandle,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

/// Starts `script` in the background.
fn start(script: String, state: &Path) -> Job {
    let (handle, signal) = stop_channel();
    let opts = RunOptions {
        state_dir: Some(state.to_path_buf()),
        job_name: Some("finished".into()),
        ..Default::default()
    };
    let thread = std::thread::spawn(move || {
        runtime()
            .block_on(Vigil::new().run_script_with(&script, OutputFormat::Json, signal, &opts))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    Job { handle, thread }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(job: Job) {
    job.handle.stop();
    job.thread.join().expect("join").expect("the job failed");
}

#[test]
fn checkpoints_go_on_after_a_source_finishes_and_it_is_not_read_again() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("live", 1, 1).expect("topic");
    produce(&bs, "live", &ids(0, 10));
    let dir = temp("flip147");
    let file = dir.join("bounded.jsonl");
    std::fs::write(
        &file,
        (100..105)
            .map(|i| format!("{{\"id\":{i}}}\n"))
            .collect::<String>(),
    )
    .expect("file");
    let (out_f, out_k, state) = (dir.join("out-f"), dir.join("out-k"), dir.join("state"));
    let script = format!(
        "SET 'execution.checkpointing.interval' = '50 ms';
         CREATE TABLE f (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         CREATE TABLE k (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'live', 'properties.bootstrap.servers' = '{bs}',
           'scan.startup.mode' = 'earliest-offset', 'format' = 'json');
         CREATE TABLE out_f (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
           'sink.delivery-guarantee' = 'exactly-once');
         CREATE TABLE out_k (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
           'sink.delivery-guarantee' = 'exactly-once');
         INSERT INTO out_f SELECT id FROM f;
         INSERT INTO out_k SELECT id FROM k;",
        file.display(),
        out_f.display(),
        out_k.display()
    );
    let job = start(script.clone(), &state);
    wait_for("the file's rows were not committed", || {
        committed(&out_f).len() == 5
    });
    // The file source has finished; rows arriving now are committed only if
    // checkpoints go on.
    produce(&bs, "live", &ids(10, 20));
    wait_for("checkpoints stopped once the file source finished", || {
        committed(&out_k) == (0..20).collect::<Vec<_>>()
    });
    stop(job);

    produce(&bs, "live", &ids(20, 25));
    let job = start(script, &state);
    wait_for(
        "the resumed job did not go on with the Kafka stream",
        || committed(&out_k) == (0..25).collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(300));
    stop(job);
    assert_eq!(
        committed(&out_f),
        (100..105).collect::<Vec<_>>(),
        "the finished file source was read again"
    );
    assert_eq!(committed(&out_k), (0..25).collect::<Vec<_>>());
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_leaves_no_in_progress_file() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("live", 1, 1).expect("topic");
    produce(&bs, "live", &ids(0, 10));
    let dir = temp("orphans");
    let (out, state) = (dir.join("out"), dir.join("state"));
    let script = |interval: &str| {
        format!(
            "SET 'execution.checkpointing.interval' = '{interval}';
             CREATE TABLE k (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'live', 'properties.bootstrap.servers' = '{bs}',
               'scan.startup.mode' = 'earliest-offset', 'format' = 'json');
             CREATE TABLE out_k (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
               'sink.delivery-guarantee' = 'exactly-once');
             INSERT INTO out_k SELECT id FROM k;",
            out.display()
        )
    };
    let job = start(script("1 h"), &state);
    wait_for("the first run wrote no in-progress file", || {
        !in_progress(&out).is_empty()
    });
    std::thread::sleep(Duration::from_millis(200));
    stop(job);
    let orphans = in_progress(&out);
    assert!(
        !orphans.is_empty(),
        "the first run left nothing to clean up"
    );
    assert!(
        committed(&out).is_empty(),
        "rows were committed without a checkpoint"
    );

    let job = start(script("50 ms"), &state);
    wait_for("the second run committed no rows", || {
        committed(&out) == (0..10).collect::<Vec<_>>()
    });
    stop(job);
    let left: Vec<String> = in_progress(&out)
        .into_iter()
        .filter(|f| orphans.contains(f))
        .collect();
    assert!(
        left.is_empty(),
        "in-progress files of the first run remain: {left:?}"
    );
}
