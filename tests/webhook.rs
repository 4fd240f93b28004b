//! The webhook sink against a receiver that fails: 5xx, timeouts (after it
//! took the request, so a retry duplicates it), 429 with Retry-After, and a
//! 400 for a poisoned row, while a job emitting 10,000 alerts is stopped at a
//! checkpoint and resumed twice. After dropping duplicates by CloudEvents id,
//! every alert arrived exactly once, and the rejected one is a dead letter.

#[path = "support/kafka.rs"]
mod kafka;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kafka::{produce, runtime, Rec};
use rdkafka::mocking::MockCluster;
use vigil::engine::control::{stop_channel, StopSignal};
use vigil::{OutputFormat, RunOptions, Vigil};

const ALERTS: usize = 10_000;

#[derive(Default)]
struct Receiver {
    requests: AtomicU64,
    /// CloudEvents ids and the alert ids in their data, as received (with duplicates).
    events: Mutex<Vec<(String, i64)>>,
    keys: Mutex<BTreeSet<String>>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Arc<Receiver>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let n = r.requests.fetch_add(1, Ordering::SeqCst);
    let events: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
    if events
        .iter()
        .any(|e| e["data"]["id"] == serde_json::json!(4242))
    {
        return (StatusCode::BAD_REQUEST, "poisoned").into_response();
    }
    match n % 41 {
        3 | 17 => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        9 => return (StatusCode::TOO_MANY_REQUESTS, [("Retry-After", "1")]).into_response(),
        _ => {}
    }
    let keep = |events: &[serde_json::Value]| {
        let mut got = r.events.lock().expect("lock");
        for e in events {
            got.push((
                e["id"].as_str().unwrap_or_default().to_string(),
                e["data"]["id"].as_i64().unwrap_or(-1),
            ));
        }
    };
    if let Some(k) = headers.get("Idempotency-Key").and_then(|v| v.to_str().ok()) {
        r.keys.lock().expect("lock").insert(k.to_string());
    }
    keep(&events);
    if n % 41 == 29 {
        // Taken, but answered after the client gave up: it will send again.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    StatusCode::OK.into_response()
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-webhook-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn has_checkpoint(state: &Path) -> bool {
    std::fs::read_dir(state.join("alerts").join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("_metadata").exists())
}

fn opts(state: &Path) -> RunOptions {
    RunOptions {
        state_dir: Some(state.to_path_buf()),
        job_name: Some("alerts".into()),
        ..Default::default()
    }
}

#[test]
fn every_alert_arrives_exactly_once_after_dedup_through_failures_and_restarts() {
    let rt = runtime();
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, app).await });

    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("readings", 1, 1).expect("topic");
    let recs: Vec<Rec> = (0..ALERTS)
        .map(|i| Rec::value(format!(r#"{{"id":{i},"sensor":"s{}"}}"#, i % 7)))
        .collect();
    produce(&bs, "readings", &recs);
    let state = temp("state");
    let dead = temp("dead");
    let script = |bounded: bool| {
        format!(
            "SET 'execution.checkpointing.interval' = '30 ms';
             CREATE TABLE readings (id BIGINT, sensor STRING) WITH ('connector' = 'kafka', 'topic' = 'readings',
               'properties.bootstrap.servers' = '{bs}', 'scan.startup.mode' = 'earliest-offset', {}'format' = 'json');
             CREATE TABLE hook (id BIGINT, sensor STRING) WITH ('connector' = 'webhook', 'url' = 'http://{addr}/hook',
               'format' = 'cloudevents', 'sink.batch.size' = '20', 'timeout' = '300 ms', 'sink.retry.max-backoff' = '100 ms',
               'sink.dlq.connector' = 'filesystem', 'sink.dlq.path' = '{}/');
             INSERT INTO hook SELECT id, sensor FROM readings;",
            if bounded { "'scan.bounded.mode' = 'latest-offset', " } else { "" },
            dead.display()
        )
    };
    let vigil = Vigil::new();
    // Twice: run until a checkpoint is complete and some alerts arrived, then stop.
    for part in 1..=2 {
        let (handle, signal) = stop_channel();
        let before = receiver.requests.load(Ordering::SeqCst);
        let text = script(false);
        let run_opts = opts(&state);
        let run = rt.block_on(async {
            let job = vigil.run_script_with(&text, OutputFormat::Json, signal, &run_opts);
            tokio::pin!(job);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                tokio::select! {
                    r = &mut job => break r,
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {
                        let progressed = receiver.requests.load(Ordering::SeqCst) > before + 40 * part;
                        if (has_checkpoint(&state) && progressed) || Instant::now() > deadline {
                            handle.stop();
                        }
                    }
                }
            }
        });
        run.unwrap_or_else(|e| panic!("part {part}: {e}"));
    }
    let arrived_early = receiver.events.lock().expect("lock").len();
    assert!(
        arrived_early < ALERTS,
        "the job was stopped mid-stream ({arrived_early} arrived)"
    );
    let (last, run_opts) = (script(true), opts(&state));
    rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(240),
            vigil.run_script_with(&last, OutputFormat::Json, StopSignal::never(), &run_opts),
        )
        .await
    })
    .expect("the job ends within 4 minutes")
    .expect("the last part runs to the end");

    let events = receiver.events.lock().expect("lock").clone();
    let mut by_event: BTreeMap<String, i64> = BTreeMap::new();
    for (ce, id) in &events {
        if let Some(old) = by_event.insert(ce.clone(), *id) {
            assert_eq!(old, *id, "one CloudEvents id, one alert");
        }
    }
    let ids: BTreeSet<i64> = by_event.values().copied().collect();
    // The batch holding the poisoned row was refused with a 400: a dead
    // letter, unchanged, with its status (a replay may have batched it anew).
    let letters = std::fs::read_to_string(dead.join("hook.dlq.jsonl")).expect("dead letters");
    let mut dead_ids = BTreeSet::new();
    for line in letters.lines() {
        let letter: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(letter["position"]["status"], serde_json::json!(400));
        let events: Vec<serde_json::Value> =
            serde_json::from_str(letter["record"].as_str().expect("record")).expect("events");
        dead_ids.extend(events.iter().filter_map(|e| e["data"]["id"].as_i64()));
    }
    assert!(
        dead_ids.contains(&4242) && dead_ids.len() < 60,
        "{dead_ids:?}"
    );
    let expected: BTreeSet<i64> = (0..ALERTS as i64)
        .filter(|i| !dead_ids.contains(i))
        .collect();
    let missing: Vec<&i64> = expected.difference(&ids).take(10).collect();
    assert!(missing.is_empty(), "alerts never delivered: {missing:?}");
    assert!(!ids.contains(&4242));
    assert!(
        events.len() > by_event.len(),
        "retries and restarts sent duplicates, as expected"
    );
    for d in [state, dead] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The delivery task belongs to its job: a job stopped while its receiver
/// keeps failing stops calling the receiver (it used to retry for ever in the
/// background, from a server whose job was stopped).
#[test]
fn a_stopped_job_stops_calling_a_failing_receiver() {
    let rt = runtime();
    let calls = Arc::new(AtomicU64::new(0));
    let app = {
        let calls = calls.clone();
        axum::Router::new().route(
            "/down",
            axum::routing::post(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::SERVICE_UNAVAILABLE }
            }),
        )
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, app).await });
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("down", 1, 1).expect("topic");
    produce(&bs, "down", &[Rec::value(r#"{"id":1}"#)]);
    let script = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'down',
           'properties.bootstrap.servers' = '{bs}', 'scan.startup.mode' = 'earliest-offset', 'format' = 'json');
         CREATE TABLE hook (id BIGINT) WITH ('connector' = 'webhook', 'url' = 'http://{addr}/down',
           'sink.retry.max-backoff' = '50 ms');
         INSERT INTO hook SELECT id FROM src;"
    );
    let (handle, signal) = stop_channel();
    rt.block_on(async {
        let vigil = Vigil::new();
        let job = vigil.run_script_until(&script, OutputFormat::Json, signal);
        tokio::pin!(job);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            tokio::select! {
                r = &mut job => break r,
                _ = tokio::time::sleep(Duration::from_millis(10)) => {
                    if calls.load(Ordering::SeqCst) >= 3 || Instant::now() > deadline {
                        handle.stop();
                    }
                }
            }
        }
    })
    .expect("the job stops");
    assert!(calls.load(Ordering::SeqCst) >= 3, "the receiver was called");
    let after_stop = calls.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1000));
    let later = calls.load(Ordering::SeqCst);
    assert!(
        later <= after_stop + 1,
        "the receiver was called {} more times after the job stopped",
        later - after_stop
    );
}
