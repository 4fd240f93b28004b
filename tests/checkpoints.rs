//! Checkpoints in process, against rdkafka's mock cluster: a job stopped after
//! a checkpoint and resumed from it writes exactly what a straight run writes
//! (golden smoke test in Arroyo's manner), a changed plan is refused, and a
//! finished job leaves no checkpoint behind. Every stop-and-resume test runs
//! its stopped job twice (see [`VARIANTS`]): as written, and at parallelism 3
//! with a one-byte state cache.

#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kafka::{produce, Rec};
use rdkafka::mocking::MockCluster;
use vigil::engine::control::stop_channel;
use vigil::{OutputFormat, RunOptions, RunSummary, Vigil};

use kafka::runtime;

const EVENTS: usize = 40_000;

/// The settings every stop-and-resume test runs its stopped and resumed job
/// under, each against the same straight run (default settings): as they
/// are, and with three instances of every keyed operator and a one-byte
/// state cache (every key read back from RocksDB).
const VARIANTS: [(&str, &str); 2] = [
    ("", ""),
    (
        "-p3-spill",
        "SET 'parallelism.default' = '3';\nSET 'state.backend.cache-size' = '1';\n",
    ),
];

fn script(bootstrap: &str, out: &Path, window: &str) -> String {
    script_with(bootstrap, out, window, "")
}

/// The job with extra `SET` statements first.
fn script_with(bootstrap: &str, out: &Path, window: &str, settings: &str) -> String {
    format!(
        "{settings}SET 'execution.checkpointing.interval' = '20 ms';
CREATE TABLE ev (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'kafka', 'topic' = 'ev', 'properties.bootstrap.servers' = '{bootstrap}',
      'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE out_t (k STRING, window_end TIMESTAMP(3), n BIGINT, total BIGINT, hi BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out_t
SELECT k, window_end, COUNT(*), SUM(v), MAX(v)
FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '{window}' SECOND))
GROUP BY k, window_start, window_end;
",
        out.display()
    )
}

fn rows(dir: &Path) -> Vec<String> {
    let mut rows = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).expect("read");
        rows.extend(text.lines().map(str::to_string));
    }
    rows.sort();
    rows
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The id of the newest complete checkpoint in `state` (0: none).
fn newest_checkpoint(state: &Path) -> u64 {
    let dir = state.join("resume").join("checkpoints");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("_metadata").exists())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
        .max()
        .unwrap_or(0)
}

fn produce_events(bs: &str) {
    produce_event_range(bs, "ev", 0..EVENTS);
}

/// Events `range` of the job's input (in time order) into `topic`.
fn produce_event_range(bs: &str, topic: &str, range: std::ops::Range<usize>) {
    produce_event_range_into(bs, topic, range, 2);
}

/// As [`produce_event_range`], over `partitions` partitions of `topic`.
fn produce_event_range_into(
    bs: &str,
    topic: &str,
    range: std::ops::Range<usize>,
    partitions: usize,
) {
    let base = 1_767_225_600_000i64;
    let recs: Vec<Rec> = range
        .map(|i| {
            let t = chrono::DateTime::from_timestamp_millis(base + i as i64 * 5)
                .expect("time")
                .format("%Y-%m-%d %H:%M:%S%.3f");
            Rec::value(format!(
                r#"{{"k":"k{}","v":{},"ts":"{t}"}}"#,
                i % 17,
                i % 1000
            ))
            .to((i % partitions) as i32)
        })
        .collect();
    produce(bs, topic, &recs);
}

/// A new topic `name` holding the first half of the events only: a job
/// reading it cannot get to the end before it is stopped, however fast it
/// runs (or however slow its checkpoints are). [`release`] adds the rest.
fn held_back_topic(cluster: &Cluster, bs: &str, name: &str) {
    cluster.create_topic(name, 2, 1).expect("topic");
    produce_event_range(bs, name, 0..EVENTS / 2);
}

/// The second half of the events into a [`held_back_topic`].
fn release(bs: &str, name: &str) {
    produce_event_range(bs, name, EVENTS / 2..EVENTS);
}

/// `text` reading topic `name` instead of `ev`.
fn on_topic(text: &str, name: &str) -> String {
    let read = text.replace("'topic' = 'ev'", &format!("'topic' = '{name}'"));
    assert_ne!(read, text, "the script reads topic ev");
    read
}

type Cluster = MockCluster<'static, rdkafka::producer::DefaultProducerContext>;

/// A mock cluster (kept alive by the caller) whose topic `ev` holds the events.
fn cluster_with_events() -> (Cluster, String) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("ev", 2, 1).expect("topic");
    produce_events(&bs);
    (cluster, bs)
}

fn opts(state: &Path) -> RunOptions {
    RunOptions {
        state_dir: Some(state.to_path_buf()),
        job_name: Some("resume".into()),
        ..Default::default()
    }
}

/// Runs `text` with state in `state` until a checkpoint newer than those
/// there at its start is complete, then stops it.
fn run_until_checkpoint(
    rt: &tokio::runtime::Runtime,
    vigil: &Vigil,
    text: &str,
    state: &Path,
) -> RunSummary {
    run_until_checkpoint_with_output(rt, vigil, text, state, None)
}

/// As [`run_until_checkpoint`]; with `out`, waits until a checkpoint has also
/// committed rows there (so the job was mid-stream when it stopped).
fn run_until_checkpoint_with_output(
    rt: &tokio::runtime::Runtime,
    vigil: &Vigil,
    text: &str,
    state: &Path,
    out: Option<&Path>,
) -> RunSummary {
    let (handle, signal) = stop_channel();
    let before = newest_checkpoint(state);
    let summary = rt.block_on(async {
        let o = opts(state);
        let job = vigil.run_script_with(text, OutputFormat::Json, signal, &o);
        tokio::pin!(job);
        // Generous: with a one-byte cache at parallelism 3 under a loaded
        // test run, the batches queued ahead of the first barrier take a
        // while (every row goes to RocksDB and back); the job stops as soon
        // as it is ready.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            tokio::select! {
                r = &mut job => break r,
                _ = tokio::time::sleep(Duration::from_millis(2)) => {
                    let ready = newest_checkpoint(state) > before && out.is_none_or(|o| !rows(o).is_empty());
                    if ready || Instant::now() > deadline {
                        handle.stop();
                    }
                }
            }
        }
    });
    let summary = summary.expect("first part");
    assert!(summary.checkpoints >= 1, "no checkpoint completed");
    assert!(
        newest_checkpoint(state) > before,
        "the job finished before it could be stopped; give it more events"
    );
    summary
}

fn run_to_end(rt: &tokio::runtime::Runtime, vigil: &Vigil, text: &str, state: &Path) -> RunSummary {
    let o = opts(state);
    let job = vigil.run_script_with(
        text,
        OutputFormat::Json,
        vigil::engine::control::StopSignal::never(),
        &o,
    );
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(120), job).await })
        .expect("the job ends within 2 minutes")
        .expect("run to the end")
}

/// The error with which `text` refuses to resume from the checkpoint in `state`.
fn refused(rt: &tokio::runtime::Runtime, vigil: &Vigil, text: &str, state: &Path) -> String {
    rt.block_on(vigil.run_script_with(
        text,
        OutputFormat::Json,
        vigil::engine::control::StopSignal::never(),
        &opts(state),
    ))
    .expect_err("the stored state is refused")
    .to_string()
}

/// The job run straight through (in memory): its rows, output and state dirs.
fn straight_run(
    rt: &tokio::runtime::Runtime,
    vigil: &Vigil,
    bs: &str,
    name: &str,
) -> (Vec<String>, PathBuf, PathBuf) {
    let (out, state) = (temp(&format!("{name}-out")), temp(&format!("{name}-state")));
    run_to_end(rt, vigil, &script(bs, &out, "1"), &state);
    let expected = rows(&out);
    assert!(expected.len() > 17 * 150, "{} rows", expected.len());
    assert!(
        !state.join("resume").join("checkpoints").exists(),
        "a finished job removes its checkpoints"
    );
    (expected, out, state)
}

#[test]
fn stopped_and_resumed_job_equals_a_straight_run() {
    let (cluster, bs) = cluster_with_events();
    let (rt, vigil) = (runtime(), Vigil::new());

    let (expected, straight_out, straight_state) = straight_run(&rt, &vigil, &bs, "straight");

    for (variant, settings) in VARIANTS {
        // Stopped once its first checkpoint is complete, with half the
        // events in its topic (the job cannot have seen the end).
        let (out, state, topic) = (
            temp(&format!("resumed{variant}-out")),
            temp(&format!("resumed{variant}-state")),
            format!("held{variant}"),
        );
        held_back_topic(&cluster, &bs, &topic);
        let text = on_topic(&script_with(&bs, &out, "1", settings), &topic);
        let checkpoints =
            run_until_checkpoint_with_output(&rt, &vigil, &unbounded(&text), &state, Some(&out))
                .checkpoints;
        let partial = rows(&out).len();
        eprintln!(
            "{variant}: stopped after {checkpoints} checkpoint(s) with {partial} of {} rows committed",
            expected.len()
        );
        assert!(partial < expected.len(), "stopped before the end");

        // A changed plan cannot take the stored state.
        let msg = refused(
            &rt,
            &vigil,
            &on_topic(&script_with(&bs, &out, "3", settings), &topic),
            &state,
        );
        assert!(msg.contains("different plan"), "{msg}");
        assert!(msg.contains("--state-dir"), "{msg}");

        // Resumed to the end.
        release(&bs, &topic);
        run_to_end(&rt, &vigil, &text, &state);
        assert_eq!(rows(&out), expected, "{variant}");
        for d in [out, state] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    for d in [straight_out, straight_state] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// State is restored by operator identity, not by the plan's text: the
/// broker's address spelled differently and a new statement in front (which
/// shifts every node) still resume the job to the straight run's rows; a
/// changed window size is refused, naming the window aggregation.
#[test]
fn a_resumed_job_keeps_its_state_when_addresses_and_statement_order_change() {
    let (cluster, bs) = cluster_with_events();
    let (rt, vigil) = (runtime(), Vigil::new());
    let (expected, straight_out, straight_state) = straight_run(&rt, &vigil, &bs, "ids");

    let (out, state) = (temp("ids-out"), temp("ids-state"));
    held_back_topic(&cluster, &bs, "held-ids");
    let first = on_topic(&script(&bs, &out, "1"), "held-ids");
    run_until_checkpoint_with_output(&rt, &vigil, &unbounded(&first), &state, Some(&out));
    let partial = rows(&out).len();
    assert!(partial < expected.len(), "stopped before the end");

    let moved = if bs.contains("127.0.0.1") {
        bs.replace("127.0.0.1", "localhost")
    } else {
        bs.replace("localhost", "127.0.0.1")
    };
    assert_ne!(moved, bs, "the address is spelled differently");
    // A second reader of the topic, planned before the job's own nodes.
    let extra = format!(
        "CREATE TABLE ev2 (v BIGINT) WITH ('connector' = 'kafka', 'topic' = 'ev',
  'properties.bootstrap.servers' = '{moved}', 'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE unused (v BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO unused SELECT v FROM ev2;
"
    );
    // After the SET line, before the job's own statements.
    let with_extra = |window: &str| {
        let text = on_topic(&script(&moved, &out, window), "held-ids");
        let (set, rest) = text.split_once('\n').expect("a SET line first");
        format!("{set}\n{extra}{rest}")
    };
    // A changed window size is refused.
    let msg = refused(&rt, &vigil, &with_extra("3"), &state);
    assert!(msg.contains("operator WindowAggregate"), "{msg}");

    release(&bs, "held-ids");
    run_to_end(&rt, &vigil, &with_extra("1"), &state);
    assert_eq!(rows(&out), expected);
    for d in [straight_out, straight_state, out, state] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// With a cache of one byte every window spills after every batch: the
/// spilled parts go into the checkpoint and come back on restore, and the
/// output equals the in-memory straight run's.
#[test]
fn spilled_window_state_survives_a_stop_and_resume() {
    let (_cluster, bs) = cluster_with_events();
    let (rt, vigil) = (runtime(), Vigil::new());
    let spill = "SET 'state.backend.cache-size' = '1';\n";

    let (expected, straight_out, straight_state) = straight_run(&rt, &vigil, &bs, "spill-straight");

    let (out, state) = (temp("spill-out"), temp("spill-state"));
    let text = script_with(&bs, &out, "1", spill);
    let first = run_until_checkpoint(&rt, &vigil, &text, &state);
    assert!(first.state_spilled_bytes > 0, "nothing spilled");
    let resumed = run_to_end(&rt, &vigil, &text, &state);
    assert!(
        resumed.state_spilled_bytes > 0,
        "the resumed run spilled nothing"
    );
    assert_eq!(rows(&out), expected);
    for d in [straight_out, straight_state, out, state] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// `--state-dir` without `SET 'execution.checkpointing.interval'` still turns
/// checkpointing on, and sinks see it when they are created: the filesystem
/// sink commits its parts in two phases (`part-<run>-<n>.json`) instead of
/// writing `part-0.json` straight away.
#[test]
fn state_dir_alone_makes_the_file_sink_transactional() {
    let dir = temp("state-dir-alone");
    let out = dir.join("out");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/orders.jsonl");
    let script = format!(
        "CREATE TABLE orders (order_id BIGINT, customer STRING)
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out_t (order_id BIGINT, customer STRING)
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out_t SELECT order_id, customer FROM orders;
",
        data.display(),
        out.display()
    );
    let run = RunOptions {
        state_dir: Some(dir.join("state")),
        job_name: Some("alone".into()),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(Vigil::new().run_script_with(
        &script,
        OutputFormat::Json,
        vigil::engine::control::StopSignal::never(),
        &run,
    ))
    .expect("run");
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("output directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.is_empty(), "no output file");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("part-") && n != "part-0.json" && !n.ends_with(".inprogress")),
        "the sink did not commit in two phases: {names:?}"
    );
    let input_rows = std::fs::read_to_string(&data)
        .expect("data")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(rows(&out).len(), input_rows);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keyed state is stored by key group, so a checkpoint taken with the window
/// aggregation split over two instances resumes over three, and one taken
/// over three resumes as a single instance; both equal the straight run.
#[test]
fn a_checkpoint_resumes_at_another_parallelism() {
    resumes_at_another_parallelism("par", |bs, out, settings| {
        script_with(bs, out, "1", settings)
    });
}

/// Runs `script` straight, then for (2, 3) and (3, 1) instances of its keyed
/// operators: stopped at a checkpoint with the first number and resumed with
/// the second, the output must equal the straight run's.
fn resumes_at_another_parallelism(name: &str, script: impl Fn(&str, &Path, &str) -> String) {
    let (_cluster, bs) = cluster_with_events();
    let (rt, vigil) = (runtime(), Vigil::new());
    let (straight_out, straight_state) = (
        temp(&format!("{name}-straight-out")),
        temp(&format!("{name}-straight-state")),
    );
    run_to_end(
        &rt,
        &vigil,
        &script(&bs, &straight_out, ""),
        &straight_state,
    );
    let expected = rows(&straight_out);
    let par = |n: usize| format!("SET 'parallelism.default' = '{n}';\n");
    let mut dirs = vec![straight_out, straight_state];
    for (before, after) in [(2, 3), (3, 1)] {
        let (out, state) = (
            temp(&format!("{name}-{before}-{after}-out")),
            temp(&format!("{name}-{before}-{after}-state")),
        );
        let first = run_until_checkpoint_with_output(
            &rt,
            &vigil,
            &unbounded(&script(&bs, &out, &par(before))),
            &state,
            Some(&out),
        );
        // Following the topic, the first part may have emitted every row
        // already; what it held in its checkpoint is what must carry over.
        let partial = rows(&out).len();
        assert!(
            partial <= expected.len(),
            "more rows than the straight run ({first:?})"
        );
        run_to_end(&rt, &vigil, &script(&bs, &out, &par(after)), &state);
        let actual = rows(&out);
        let missing: Vec<&String> = expected
            .iter()
            .filter(|r| !actual.contains(r))
            .take(3)
            .collect();
        let extra: Vec<&String> = actual
            .iter()
            .filter(|r| !expected.contains(r))
            .take(3)
            .collect();
        assert!(
            actual == expected,
            "checkpoint at parallelism {before}, resumed at {after}: {} rows vs {}; missing {missing:?}, extra {extra:?}",
            actual.len(),
            expected.len()
        );
        dirs.extend([out, state]);
    }
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A MATCH_RECOGNIZE job over `ev` writing `columns` (after `k`) from the
/// clause `body`.
fn pattern_script(bootstrap: &str, out: &Path, columns: &str, body: &str) -> String {
    let text = format!(
        "SET 'execution.checkpointing.interval' = '20 ms';
CREATE TABLE ev (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'kafka', 'topic' = 'ev', 'properties.bootstrap.servers' = '{bootstrap}',
      'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE runs (k STRING, {columns})
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO runs SELECT * FROM ev MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts {body});
",
        out.display()
    );
    text
}

/// `text` reading the topic without end, so it is stopped mid-stream however
/// fast it runs.
fn unbounded(text: &str) -> String {
    text.replace("'scan.bounded.mode' = 'latest-offset', ", "")
}

/// Per key, a rising run and the row that breaks it. Runs are long, so
/// partial matches (and rows waiting for the watermark) are in every checkpoint.
fn match_script(bootstrap: &str, out: &Path) -> String {
    pattern_script(
        bootstrap,
        out,
        "first_v BIGINT, top_v BIGINT, rises BIGINT, drop_v BIGINT, end_ts TIMESTAMP(3)",
        "MEASURES A.v AS first_v, LAST(B.v) AS top_v, COUNT(B.v) AS rises, C.v AS drop_v, MATCH_ROWTIME() AS end_ts
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B+ C)
  DEFINE B AS B.v > LAST(B.v, 1) OR (LAST(B.v, 1) IS NULL AND B.v > A.v),
         C AS C.v < LAST(B.v)",
    )
}

/// Per key, an A then a B with no C for 300 ms, and the partial matches that
/// time out: absences wait across checkpoints.
fn absence_script(bootstrap: &str, out: &Path) -> String {
    pattern_script(
        bootstrap,
        out,
        "a_v BIGINT, b_v BIGINT, at_ts TIMESTAMP(3), timed_out BOOLEAN",
        "MEASURES A.v AS a_v, B.v AS b_v, MATCH_ROWTIME() AS at_ts, MATCH_TIMED_OUT() AS timed_out
  ONE ROW PER MATCH WITH TIMEOUTS
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B NOT C) WITHIN INTERVAL '300' MILLISECOND
  DEFINE A AS A.v % 10 < 3, B AS B.v > A.v, C AS C.v % 7 = 0",
    )
}

/// Runs `script` straight, then stopped at a checkpoint and resumed; the
/// outputs must be equal. The straight run's rows must include each of `kinds`.
fn stop_and_resume_equals_straight(
    name: &str,
    script: fn(&str, &Path) -> String,
    min_rows: usize,
    kinds: &[&str],
) {
    stop_and_resume(name, script, min_rows, kinds, true)
}

/// As [`stop_and_resume_equals_straight`]; `pattern` asks that partial
/// matches were open when the first part stopped.
fn stop_and_resume(
    name: &str,
    script: fn(&str, &Path) -> String,
    min_rows: usize,
    kinds: &[&str],
    pattern: bool,
) {
    let (_cluster, bs) = cluster_with_events();
    let (rt, vigil) = (runtime(), Vigil::new());
    let (straight_out, straight_state) = (
        temp(&format!("{name}-straight-out")),
        temp(&format!("{name}-straight-state")),
    );
    run_to_end(&rt, &vigil, &script(&bs, &straight_out), &straight_state);
    let expected = rows(&straight_out);
    assert!(expected.len() > min_rows, "{} matches", expected.len());
    for kind in kinds {
        assert!(
            expected.iter().any(|r| r.contains(kind)),
            "no row with {kind}"
        );
    }
    for (variant, settings) in VARIANTS {
        let (out, state) = (
            temp(&format!("{name}{variant}-out")),
            temp(&format!("{name}{variant}-state")),
        );
        let text = format!("{settings}{}", script(&bs, &out));
        // A pattern job is stopped once it has committed matches, so that
        // its matcher has taken rows in (a first checkpoint can come before
        // any row reaches it, with no partial match open yet).
        let wait_for = pattern.then_some(out.as_path());
        let first =
            run_until_checkpoint_with_output(&rt, &vigil, &unbounded(&text), &state, wait_for);
        assert!(
            !pattern || first.partial_matches > 0,
            "{variant}: partial matches were open when the job stopped, the gauge says none ({first:?}, {} rows out)",
            rows(&out).len()
        );
        // The first part follows the topic, so it may have emitted every match
        // before it stopped; the partial matches it held (above) are what the
        // restore must carry.
        let partial = rows(&out).len();
        assert!(partial <= expected.len(), "more rows than the straight run");
        run_to_end(&rt, &vigil, &text, &state);
        let actual = rows(&out);
        let diff: Vec<_> = actual
            .iter()
            .filter(|r| !expected.contains(r))
            .take(3)
            .collect();
        let gone: Vec<_> = expected
            .iter()
            .filter(|r| !actual.contains(r))
            .take(3)
            .collect();
        assert!(
            actual == expected,
            "{variant}: {} matches after a resume, {} straight (first committed part: {partial}); new {diff:?} gone {gone:?}",
            actual.len(),
            expected.len()
        );
        for d in [out, state] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    for d in [straight_out, straight_state] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_pattern_job_stopped_and_resumed_equals_a_straight_run() {
    stop_and_resume_equals_straight("mr", match_script, 17 * 30, &[]);
}

/// Partitions of a pattern are stored by key group: a job stopped with its
/// partial matches split over two instances resumes over three, and one
/// stopped over three resumes as a single instance; both equal the straight
/// run.
#[test]
fn a_pattern_checkpoint_resumes_at_another_parallelism() {
    resumes_at_another_parallelism("mrpar", |bs, out, settings| {
        format!("{settings}{}", match_script(bs, out))
    });
}

#[test]
fn an_absence_job_stopped_and_resumed_equals_a_straight_run() {
    stop_and_resume_equals_straight(
        "absence",
        absence_script,
        17 * 10,
        &[r#""timed_out":false"#, r#""timed_out":true"#],
    );
}

/// A left interval join of the events with the later events of their key
/// (within 200 ms, smaller values): kept rows and unmatched left rows waiting
/// for their bound are in every checkpoint.
fn join_script(bootstrap: &str, out: &Path) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '20 ms';
CREATE TABLE ev (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'kafka', 'topic' = 'ev', 'properties.bootstrap.servers' = '{bootstrap}',
      'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE pairs (k STRING, av BIGINT, bv BIGINT, bts TIMESTAMP(3))
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO pairs SELECT a.k, a.v, b.v, b.ts FROM ev a LEFT JOIN ev b
  ON a.k = b.k AND b.ts BETWEEN a.ts + INTERVAL '1' MILLISECOND AND a.ts + INTERVAL '200' MILLISECOND
  AND b.v < a.v;
",
        out.display()
    )
}

#[test]
fn an_interval_join_stopped_and_resumed_equals_a_straight_run() {
    stop_and_resume("join", join_script, 1000, &[r#""bv":null"#], false);
}

/// OVER aggregations per key over the last 3 rows and the last 200 ms:
/// rows waiting for the watermark, accumulators and the rows inside each
/// frame are in every checkpoint.
fn over_script(bootstrap: &str, out: &Path) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '20 ms';
CREATE TABLE ev (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'kafka', 'topic' = 'ev', 'properties.bootstrap.servers' = '{bootstrap}',
      'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE sums (k STRING, v BIGINT, ts TIMESTAMP(3), s3 BIGINT, n BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO sums SELECT k, v, ts,
  SUM(v) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
  COUNT(*) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '200' MILLISECOND PRECEDING AND CURRENT ROW)
FROM ev;
",
        out.display()
    )
}

#[test]
fn an_over_aggregation_stopped_and_resumed_equals_a_straight_run() {
    stop_and_resume("over", over_script, 1000, &[r#""n":3"#], false);
}

/// A window join of the events with themselves (100 ms windows, per key, the
/// smaller values as partners) plus window Top-2 per key: rows wait in
/// windows across checkpoints.
fn window_join_script(bootstrap: &str, out: &Path) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '20 ms';
CREATE TABLE ev (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'kafka', 'topic' = 'ev', 'properties.bootstrap.servers' = '{bootstrap}',
      'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE pairs (k STRING, av BIGINT, bv BIGINT, ws TIMESTAMP(3), rn BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE VIEW w AS SELECT * FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '100' MILLISECOND));
INSERT INTO pairs SELECT k, av, bv, ws, rn FROM (
  SELECT a.k, a.v AS av, b.v AS bv, a.window_start AS ws, a.window_end AS we,
    ROW_NUMBER() OVER (PARTITION BY a.window_start, a.window_end, a.k ORDER BY a.v DESC, b.v DESC) AS rn
  FROM w a LEFT JOIN w b
    ON a.k = b.k AND a.window_start = b.window_start AND a.window_end = b.window_end AND b.v < a.v
) WHERE rn <= 2;
",
        out.display()
    )
}

#[test]
fn a_window_join_and_top_n_stopped_and_resumed_equal_a_straight_run() {
    stop_and_resume(
        "window-join",
        window_join_script,
        1000,
        &[r#""rn":2"#],
        false,
    );
}

/// ALL ROWS PER MATCH: each row of a rising run, with running and final
/// measures; rows of open matches (all input columns) are in every checkpoint.
fn all_rows_script(bootstrap: &str, out: &Path) -> String {
    pattern_script(
        bootstrap,
        out,
        "ts TIMESTAMP(3), m BIGINT, label STRING, top_so_far BIGINT, top BIGINT, v BIGINT",
        "MEASURES MATCH_NUMBER() AS m, CLASSIFIER() AS label, RUNNING MAX(v) AS top_so_far, FINAL MAX(v) AS top
  ALL ROWS PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B+ C)
  DEFINE B AS B.v > LAST(B.v, 1) OR (LAST(B.v, 1) IS NULL AND B.v > A.v),
         C AS C.v < LAST(B.v)",
    )
}

#[test]
fn an_all_rows_pattern_job_stopped_and_resumed_equals_a_straight_run() {
    stop_and_resume_equals_straight("all-rows", all_rows_script, 17 * 90, &[r#""label":"C""#]);
}

/// Updating results into `upsert-kafka` topics suffixed `sfx`: a GROUP BY, a
/// regular join then a GROUP BY, a Top-3 with row numbers, a
/// deduplication, a join of two GROUP BYs and a Top-3 over a GROUP BY (both
/// over updating inputs), and an OVER aggregation over a Top-3's result —
/// their groups, join rows, ranked rows and OVER partitions are in every
/// checkpoint.
fn updating_script(bootstrap: &str, sfx: &str) -> String {
    let sink = |name: &str, cols: &str, key: &str| {
        // The OVER's transient rows depend on how its input was batched,
        // which a resumed run does not repeat: only rows of completed
        // checkpoints may reach its topic (exactly-once), or a stopped run's
        // last transient rows would stay there.
        let delivery = if name == "over_top" {
            format!(", 'sink.delivery-guarantee' = 'exactly-once', 'sink.transactional-id-prefix' = 'over-top{sfx}'")
        } else {
            String::new()
        };
        format!(
            "CREATE TABLE {name} ({cols}, PRIMARY KEY ({key}) NOT ENFORCED) WITH ('connector' = 'upsert-kafka', 'topic' = '{name}{sfx}', 'properties.bootstrap.servers' = '{bootstrap}', 'key.format' = 'json', 'value.format' = 'json'{delivery});\n"
        )
    };
    format!(
        "SET 'execution.checkpointing.interval' = '20 ms';
CREATE TABLE ev (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'kafka', 'topic' = 'ev', 'properties.bootstrap.servers' = '{bootstrap}',
      'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE ev_one (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'kafka', 'topic' = 'ev_one', 'properties.bootstrap.servers' = '{bootstrap}',
      'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
{}{}{}{}{}{}{}INSERT INTO agg SELECT k, COUNT(*), SUM(v), MAX(v) FROM ev GROUP BY k;
INSERT INTO joined SELECT a.k, COUNT(*) FROM ev a JOIN ev b ON a.k = b.k AND a.v = b.v AND a.ts < b.ts GROUP BY a.k;
INSERT INTO top3 SELECT k, rn, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC, ts ASC) AS rn FROM ev) WHERE rn <= 3;
INSERT INTO latest SELECT k, v, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM ev) WHERE rn = 1;
INSERT INTO agg_pairs SELECT a.k, a.n, b.hi FROM (SELECT k, COUNT(*) AS n FROM ev GROUP BY k) a JOIN (SELECT k, MAX(v) AS hi FROM ev WHERE v > 3 GROUP BY k) b ON a.k = b.k;
INSERT INTO top_totals SELECT rn, k, total FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY total DESC, k) AS rn FROM (SELECT k, SUM(v) AS total FROM ev GROUP BY k)) WHERE rn <= 3;
INSERT INTO over_top SELECT k, ts, SUM(v) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM (SELECT k, v, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM ev_one) WHERE rn <= 3);
",
        sink("agg", "k STRING, n BIGINT, total BIGINT, hi BIGINT", "k"),
        sink("joined", "k STRING, pairs BIGINT", "k"),
        sink("top3", "k STRING, rn BIGINT, v BIGINT", "k, rn"),
        sink("latest", "k STRING, v BIGINT, ts TIMESTAMP(3)", "k"),
        sink("agg_pairs", "k STRING, n BIGINT, hi BIGINT", "k"),
        sink("top_totals", "rn BIGINT, k STRING, total BIGINT", "rn"),
        sink("over_top", "k STRING, ts TIMESTAMP(3), s BIGINT", "k, ts"),
    )
}

const UPDATING_SINKS: [&str; 7] = [
    "agg",
    "joined",
    "top3",
    "latest",
    "agg_pairs",
    "top_totals",
    "over_top",
];

/// Each upsert topic folded by key: the result table it holds.
fn folded_tables(bs: &str, sfx: &str) -> Vec<Vec<(String, String)>> {
    UPDATING_SINKS
        .iter()
        .map(|t| {
            let mut table = std::collections::BTreeMap::new();
            for (_, key, value) in kafka::consume_all(bs, &format!("{t}{sfx}")) {
                let key = key.expect("an upsert record has a key");
                if value.is_empty() {
                    table.remove(&key);
                } else {
                    table.insert(key, value);
                }
            }
            table.into_iter().collect()
        })
        .collect()
}

/// The events' cluster with a topic per updating sink and suffix.
fn cluster_with_updating_topics(
    suffixes: &[&str],
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let (cluster, bs) = cluster_with_events();
    // The OVER over a Top-3 reads the events from one partition: its
    // transient rows (in the top 3 for a while) depend on the order rows
    // arrive in, so a resumed run must see them in the first run's order
    // to take back the rows that run wrote after its last checkpoint
    // (the upsert sink is at-least-once).
    cluster.create_topic("ev_one", 1, 1).expect("topic");
    produce_event_range_into(&bs, "ev_one", 0..EVENTS, 1);
    for t in UPDATING_SINKS {
        for sfx in suffixes {
            cluster
                .create_topic(&format!("{t}{sfx}"), 1, 1)
                .expect("topic");
        }
    }
    (cluster, bs)
}

#[test]
fn updating_results_stopped_and_resumed_equal_a_straight_run() {
    let (_cluster, bs) = cluster_with_updating_topics(&["_straight", "_resumed", "_resumed_p3"]);
    let (rt, vigil) = (runtime(), Vigil::new());
    let straight_state = temp("updating-straight-state");
    run_to_end(
        &rt,
        &vigil,
        &updating_script(&bs, "_straight"),
        &straight_state,
    );
    let expected = folded_tables(&bs, "_straight");
    assert_eq!(expected[0].len(), 17, "one row per key: {:?}", expected[0]);
    assert_eq!(expected[2].len(), 17 * 3, "three ranks per key");
    assert!(
        !expected[4].is_empty(),
        "the join of two aggregates has rows"
    );
    assert_eq!(expected[5].len(), 3, "three ranks of totals");
    assert_eq!(expected[6].len(), 17 * 3, "an OVER row per key's top 3");
    for ((variant, settings), sfx) in VARIANTS.into_iter().zip(["_resumed", "_resumed_p3"]) {
        let state = temp(&format!("updating{variant}-state"));
        let text = format!("{settings}{}", updating_script(&bs, sfx));
        run_until_checkpoint(&rt, &vigil, &unbounded(&text), &state);
        run_to_end(&rt, &vigil, &text, &state);
        let actual = folded_tables(&bs, sfx);
        for ((name, e), a) in UPDATING_SINKS.iter().zip(&expected).zip(&actual) {
            assert!(
                e == a,
                "{name}{variant}: after a resume\n{a:?}\nstraight\n{e:?}"
            );
        }
        let _ = std::fs::remove_dir_all(state);
    }
    let _ = std::fs::remove_dir_all(straight_state);
}

/// The keyed state of the GROUP BY, the regular join and the ranks is in
/// per-instance databases by key group: a checkpoint taken with one instance
/// each resumes with three, and theirs with two, all with a one-byte cache
/// (every key read back from RocksDB), and the result tables still equal a
/// straight run's.
#[test]
fn updating_results_rescaled_one_three_two_with_a_one_byte_cache_equal_a_straight_run() {
    let (_cluster, bs) = cluster_with_updating_topics(&["_plain", "_rescaled"]);
    let (rt, vigil) = (runtime(), Vigil::new());
    let straight_state = temp("rescaled-straight-state");
    run_to_end(
        &rt,
        &vigil,
        &updating_script(&bs, "_plain"),
        &straight_state,
    );
    let expected = folded_tables(&bs, "_plain");
    let state = temp("rescaled-state");
    let text = updating_script(&bs, "_rescaled");
    let with = |p: usize| {
        format!("SET 'parallelism.default' = '{p}';\nSET 'state.backend.cache-size' = '1';\n{text}")
    };
    run_until_checkpoint(&rt, &vigil, &unbounded(&text), &state);
    run_until_checkpoint(&rt, &vigil, &unbounded(&with(3)), &state);
    run_to_end(&rt, &vigil, &with(2), &state);
    let actual = folded_tables(&bs, "_rescaled");
    for ((name, e), a) in UPDATING_SINKS.iter().zip(&expected).zip(&actual) {
        assert!(e == a, "{name}: after 1 -> 3 -> 2\n{a:?}\nstraight\n{e:?}");
    }
    for d in [straight_state, state] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// `vigil_state_bytes{scope}` reports each node's state as the backend holds
/// it after a checkpoint (here: the window aggregation's open windows).
#[test]
fn state_bytes_are_measured_per_operator_from_the_backend() {
    let (_cluster, bs) = cluster_with_events();
    let rt = runtime();
    let (out, state) = (temp("bytes-out"), temp("bytes-state"));
    let metrics = vigil::engine::metrics::Metrics::new();
    let (vigil, text, o) = (Vigil::new(), script(&bs, &out, "1"), opts(&state));
    let job = vigil.run_script_into(
        &text,
        &|| Box::new(vigil::StdoutSink::new(OutputFormat::Json)),
        &metrics,
        vigil::engine::control::StopSignal::never(),
        &o,
    );
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(120), job).await })
        .expect("the job ends within 2 minutes")
        .expect("run to the end");
    let snapshot = metrics.snapshot();
    let bytes = |kind: &str| {
        snapshot
            .iter()
            .find(|(k, _)| k.starts_with(&format!("vigil_state_bytes{{{kind}#")))
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no state bytes of {kind}: {snapshot:?}"))
    };
    assert!(bytes("WindowAggregate") > 0);
    // RocksDB's estimate is by block: a few bytes of offsets may read as 0.
    // Each node's figure is from the last checkpoint it took part in (one
    // that finished early keeps an earlier, larger one), so the bound is
    // the input's size, not the last checkpoint's files (a figure of
    // memory, or of all ever written, would exceed it).
    let total: u64 = snapshot
        .iter()
        .filter(|(k, _)| k.starts_with("vigil_state_bytes{"))
        .map(|(_, v)| *v)
        .sum();
    let rows: u64 = snapshot
        .iter()
        .filter(|(k, _)| k.starts_with("vigil_source_rows_total"))
        .map(|(_, v)| *v)
        .sum();
    assert!(rows > 0, "{snapshot:?}");
    assert!(
        total <= rows * 512,
        "{total} bytes of state for {rows} rows of input: {snapshot:?}"
    );
    for d in [out, state] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Lines of the file read in splits: `k`, `v` (the line's index, so each
/// window's sum is its own) and `ts` (10 ms apart).
const FILE_LINES: usize = 90_000;

/// A file of [`FILE_LINES`] events (about 5 MB: ten splits of 512 KB) and the
/// windows a one-second TUMBLE per key makes of it, computed here: (k,
/// count, sum) sorted.
fn split_file(dir: &Path) -> (PathBuf, Vec<(String, i64, i64)>) {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("events.jsonl");
    let mut text = String::with_capacity(FILE_LINES * 60);
    let mut windows: std::collections::BTreeMap<(String, usize), (i64, i64)> = Default::default();
    for i in 0..FILE_LINES {
        let ms = i * 10;
        let k = format!("k{}", i % 7);
        text.push_str(&format!(
            "{{\"k\":\"{k}\",\"v\":{i},\"ts\":\"2026-01-01 {:02}:{:02}:{:02}.{:03}\"}}\n",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        ));
        let w = windows.entry((k, ms / 1000)).or_default();
        w.0 += 1;
        w.1 += i as i64;
    }
    std::fs::write(&path, text).expect("write");
    let mut expected: Vec<(String, i64, i64)> = windows
        .into_iter()
        .map(|((k, _), (n, total))| (k, n, total))
        .collect();
    expected.sort();
    (path, expected)
}

/// The rows of a filesystem sink as (k, n, total), sorted.
fn windows_out(dir: &Path) -> Vec<(String, i64, i64)> {
    let mut out: Vec<(String, i64, i64)> = rows(dir)
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r).expect("json row");
            (
                v["k"].as_str().unwrap_or_default().to_string(),
                v["n"].as_i64().unwrap_or(-1),
                v["total"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    out.sort();
    out
}

/// A file read by three subtasks, its splits dealt round them, gives the
/// windows of the whole file; stopped at a checkpoint and resumed by two
/// subtasks (the stored splits dealt out again), it gives them again.
#[test]
fn a_file_read_in_splits_resumes_at_another_parallelism() {
    let dir = temp("file-splits");
    let (data, expected) = split_file(&dir.join("in"));
    let script = |p: usize, out: &Path| {
        format!(
            "SET 'parallelism.default' = '{p}';
SET 'execution.checkpointing.interval' = '20 ms';
CREATE TABLE ev (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'source.decode-parallelism' = '1',
      'source.split-size' = '512 kb');
CREATE TABLE out_t (k STRING, window_end TIMESTAMP(3), n BIGINT, total BIGINT)
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out_t SELECT k, window_end, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
",
            data.display(),
            out.display()
        )
    };
    let (rt, vigil) = (runtime(), Vigil::new());
    let (out, state) = (dir.join("straight-out"), dir.join("straight-state"));
    let text = script(3, &out);
    let metrics = vigil::engine::metrics::Metrics::new();
    let plan = rt
        .block_on(vigil.plan(&text, &metrics))
        .expect("plans")
        .graph
        .explain();
    assert!(
        plan.contains("FileSource(ev") && plan.contains("x3"),
        "{plan}"
    );
    run_to_end(&rt, &vigil, &text, &state);
    assert_eq!(windows_out(&out), expected, "three subtasks, straight");

    let (out, state) = (dir.join("resumed-out"), dir.join("resumed-state"));
    let first = run_until_checkpoint(&rt, &vigil, &script(3, &out), &state);
    eprintln!("stopped after {} checkpoint(s)", first.checkpoints);
    run_to_end(&rt, &vigil, &script(2, &out), &state);
    assert_eq!(windows_out(&out), expected, "three subtasks, then two");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An event-time temporal join of the events with themselves as a versioned
/// table (PRIMARY KEY k: each event a new version of its key): each event's
/// version is itself, joined when its value is a multiple of 3; probe rows
/// waiting for the watermark and the kept versions are in every checkpoint.
fn temporal_join_script(bootstrap: &str, out: &Path) -> String {
    let table = |name: &str, key: &str| {
        format!(
            "CREATE TABLE {name} (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND{key})
WITH ('connector' = 'kafka', 'topic' = 'ev', 'properties.bootstrap.servers' = '{bootstrap}',
      'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');\n"
        )
    };
    format!(
        "SET 'execution.checkpointing.interval' = '20 ms';
{}{}CREATE TABLE joined (k STRING, v BIGINT, rv BIGINT, ts TIMESTAMP(3))
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO joined SELECT o.k, o.v, r.v, o.ts
FROM ev AS o LEFT JOIN versions FOR SYSTEM_TIME AS OF o.ts AS r ON o.k = r.k AND MOD(r.v, 3) = 0;
",
        table("ev", ""),
        table("versions", ", PRIMARY KEY (k) NOT ENFORCED"),
        out.display()
    )
}

#[test]
fn a_temporal_join_stopped_and_resumed_equals_a_straight_run() {
    // Each event's version is itself (a version at the probe's own time
    // counts), whatever order the partitions arrive in.
    let (_cluster, bs) = cluster_with_events();
    let (rt, vigil) = (runtime(), Vigil::new());
    let (out, state) = (
        temp("temporal-join-check-out"),
        temp("temporal-join-check-state"),
    );
    run_to_end(&rt, &vigil, &temporal_join_script(&bs, &out), &state);
    let wrong: Vec<String> = rows(&out)
        .into_iter()
        .filter(|l| {
            let r: serde_json::Value = serde_json::from_str(l).expect("json row");
            let v = r["v"].as_i64().expect("v");
            let expected = if v % 3 == 0 {
                serde_json::json!(v)
            } else {
                serde_json::Value::Null
            };
            r["rv"] != expected
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} rows without their own version, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    for d in [out, state] {
        let _ = std::fs::remove_dir_all(d);
    }
    stop_and_resume(
        "temporal-join",
        temporal_join_script,
        1000,
        &[r#""rv":null"#, r#""rv":3,"#],
        false,
    );
}

/// Committed rows of a partitioned file sink: each data file's lines under
/// its partition directory's name (dot files, in-progress parts and
/// `_SUCCESS` markers left out), sorted.
fn partitioned_rows(dir: &Path) -> Vec<String> {
    let mut rows = vec![];
    for part in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = part.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !part.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(part.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let f = file.file_name().to_string_lossy().into_owned();
            if f.starts_with('.') || f == "_SUCCESS" {
                continue;
            }
            let text = std::fs::read_to_string(file.path()).expect("read");
            rows.extend(text.lines().map(|l| format!("{name} {l}")));
        }
    }
    rows.sort();
    rows
}

/// The windowed job writing into a `PARTITIONED BY` file sink (Nexmark
/// q10's kind of sink), each partition marked `_SUCCESS` when committed.
fn partitioned_script(bootstrap: &str, out: &Path) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '20 ms';
CREATE TABLE ev (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'kafka', 'topic' = 'ev', 'properties.bootstrap.servers' = '{bootstrap}',
      'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE out_p (window_end TIMESTAMP(3), n BIGINT, total BIGINT, k STRING)
PARTITIONED BY (k)
WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
      'sink.partition-commit.policy.kind' = 'success-file');
INSERT INTO out_p
SELECT window_end, COUNT(*), SUM(v), k
FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY k, window_start, window_end;
",
        out.display()
    )
}

/// A `PARTITIONED BY` file sink stopped at a checkpoint and resumed commits
/// exactly the straight run's rows into the same partitions: parts written
/// before the stop are committed once, none is lost or doubled.
#[test]
fn a_partitioned_file_sink_stopped_and_resumed_equals_a_straight_run() {
    let (cluster, bs) = cluster_with_events();
    let (rt, vigil) = (runtime(), Vigil::new());
    let (straight_out, straight_state) = (temp("partitioned-out"), temp("partitioned-state"));
    run_to_end(
        &rt,
        &vigil,
        &partitioned_script(&bs, &straight_out),
        &straight_state,
    );
    let expected = partitioned_rows(&straight_out);
    assert!(expected.len() > 17 * 150, "{} rows", expected.len());
    assert!(
        straight_out.join("k=k0").join("_SUCCESS").exists(),
        "a partition is committed"
    );
    let (out, state) = (
        temp("partitioned-resumed-out"),
        temp("partitioned-resumed-state"),
    );
    held_back_topic(&cluster, &bs, "held_partitioned");
    let text = on_topic(&partitioned_script(&bs, &out), "held_partitioned");
    run_until_checkpoint(&rt, &vigil, &unbounded(&text), &state);
    let partial = partitioned_rows(&out).len();
    eprintln!(
        "stopped with {partial} of {} rows committed",
        expected.len()
    );
    assert!(
        partial < expected.len(),
        "stopped before the end ({partial} rows)"
    );
    release(&bs, "held_partitioned");
    run_to_end(&rt, &vigil, &text, &state);
    assert_eq!(partitioned_rows(&out), expected);
    for d in [straight_out, straight_state, out, state] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Checkpoints on object storage (S3, a local moto server): a job stopped
/// once a checkpoint is uploaded, whose machine then loses its local state
/// altogether, resumes from the bucket and ends with the straight run's
/// rows; each retained checkpoint is there with its manifest, and the
/// finished job leaves nothing behind.
#[test]
fn checkpoints_on_s3_outlive_the_local_state() {
    let s3 = s3::Moto::start();
    s3.create_bucket("vigil");
    let (cluster, bs) = cluster_with_events();
    let (rt, vigil) = (runtime(), Vigil::new());
    let (expected, straight_out, straight_state) = straight_run(&rt, &vigil, &bs, "s3-straight");
    let settings = format!(
        "SET 'state.checkpoints.dir' = 's3://vigil/checkpoints';
SET 's3.endpoint' = '{}';
SET 's3.access-key' = 'test';
SET 's3.secret-key' = 'test';
SET 's3.path.style.access' = 'true';
SET 'state.checkpoints.num-retained' = '2';
",
        s3.endpoint()
    );
    let (out, state) = (temp("s3-out"), temp("s3-state"));
    held_back_topic(&cluster, &bs, "held_s3");
    let text = on_topic(&script_with(&bs, &out, "1", &settings), "held_s3");
    run_until_checkpoint_with_output(&rt, &vigil, &unbounded(&text), &state, Some(&out));
    let partial = rows(&out).len();
    assert!(partial < expected.len(), "stopped before the end");
    let keys = s3.keys("vigil", "checkpoints/resume/");
    let manifests: Vec<&String> = keys.iter().filter(|k| k.ends_with("/_manifest")).collect();
    assert!(!manifests.is_empty(), "a checkpoint is on S3: {keys:?}");
    assert!(
        manifests.len() <= 2,
        "two checkpoints are retained: {manifests:?}"
    );
    assert!(
        keys.iter().any(|k| k.ends_with(".sst")),
        "keyed state's files are uploaded: {keys:?}"
    );
    // The machine is gone: a new one resumes from the bucket alone.
    std::fs::remove_dir_all(&state).expect("lose the local state");
    let elsewhere = temp("s3-state-elsewhere");
    release(&bs, "held_s3");
    run_to_end(&rt, &vigil, &text, &elsewhere);
    assert_eq!(rows(&out), expected);
    assert_eq!(
        s3.keys("vigil", "checkpoints/resume/"),
        Vec::<String>::new(),
        "a finished job removes its checkpoints"
    );
    for d in [straight_out, straight_state, out, elsewhere] {
        let _ = std::fs::remove_dir_all(d);
    }
}
