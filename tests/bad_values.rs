//! No job dies of one bad value, and no alert of its batch is lost: values a
//! sink's format can carry the way Flink's format writes them (NaN and
//! ±Infinity as JSON strings, as Jackson does) are written so; a row a format
//! cannot carry (an empty CloudEvents `source`, a timestamp no calendar
//! holds, a Kafka `timestamp` that is not a timestamp) goes to the sink's
//! `sink.dlq.*` output with the error, and every other row of its batch is
//! delivered.

#[path = "support/kafka.rs"]
mod kafka;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rdkafka::mocking::MockCluster;
use serde_json::{json, Value};
use vigil::{OutputFormat, Vigil};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-bad-values-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Four readings; `b`'s value is 0, so `1.0 / v` is +Infinity there.
fn readings(dir: &Path) -> PathBuf {
    let path = dir.join("readings.jsonl");
    std::fs::write(
        &path,
        "{\"k\":\"a\",\"v\":1}\n{\"k\":\"b\",\"v\":0}\n{\"k\":\"c\",\"v\":2}\n{\"k\":\"d\",\"v\":4}\n",
    )
    .expect("input");
    path
}

fn source(path: &Path) -> String {
    format!(
        "CREATE TABLE src (k STRING, v INT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
        path.display()
    )
}

fn run(script: &str) {
    kafka::runtime()
        .block_on(Vigil::new().run_script(script, OutputFormat::Json))
        .unwrap_or_else(|e| panic!("the job failed: {e}\n{script}"));
}

/// Every JSON line of the files in `dir` (hidden files left out).
fn lines_in(dir: &Path) -> Vec<Value> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).expect("read");
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            out.push(serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")));
        }
    }
    out
}

/// The issue's case: `SELECT k, 1.0 / v` with a zero `v` into a webhook used
/// to fail the job (the sink re-parsed the bare `Infinity` it had written) and
/// lose the other alerts of the batch. Now every alert arrives, as strict
/// JSON, the non-finite values spelled as Flink's json format spells them.
#[test]
fn a_division_by_zero_reaches_the_webhook_with_every_other_alert() {
    let dir = temp("webhook");
    let input = readings(&dir);
    let rt = kafka::runtime();
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = {
        let bodies = bodies.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let bodies = bodies.clone();
                async move {
                    bodies.lock().expect("lock").push(body);
                    "ok"
                }
            }),
        )
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, app).await });
    let script = format!(
        "{}CREATE TABLE hook (k STRING, r DOUBLE, n DOUBLE, m DOUBLE) WITH ('connector' = 'webhook',
           'url' = 'http://{addr}/hook', 'sink.batch.size' = '4');
         INSERT INTO hook SELECT k, 1.0 / v, (v * 1.0) / v, -1.0 / v FROM src;",
        source(&input)
    );
    rt.block_on(Vigil::new().run_script(&script, OutputFormat::Json))
        .unwrap_or_else(|e| panic!("the job failed: {e}"));
    let bodies = bodies.lock().expect("lock").clone();
    let mut rows: Vec<Value> = vec![];
    for b in &bodies {
        match serde_json::from_str::<Value>(b) {
            Ok(Value::Array(items)) => rows.extend(items),
            Ok(v) => rows.push(v),
            Err(e) => panic!("the webhook got a body that is not JSON ({e}): {b}"),
        }
    }
    rows.sort_by_key(|r| r["k"].as_str().unwrap_or_default().to_string());
    assert_eq!(rows.len(), 4, "{bodies:?}");
    assert_eq!(rows[0], json!({"k": "a", "r": 1.0, "n": 1.0, "m": -1.0}));
    assert_eq!(
        rows[1],
        json!({"k": "b", "r": "Infinity", "n": "NaN", "m": "-Infinity"})
    );
    assert_eq!(rows[3]["r"], json!(0.25));
}

/// A CloudEvent needs a non-empty `source`: the row whose `source` column is
/// empty is a dead letter (with the error, shown as Flink prints rows); the
/// other three events are written.
#[test]
fn a_row_that_makes_no_cloudevent_is_a_dead_letter_and_the_rest_are_written() {
    let dir = temp("cloudevents");
    let input = readings(&dir);
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    run(&format!(
        "{}CREATE TABLE ev (source STRING, k STRING, v INT) WITH ('connector' = 'filesystem', 'path' = '{}/',
           'format' = 'cloudevents', 'sink.dlq.connector' = 'filesystem', 'sink.dlq.path' = '{}/');
         INSERT INTO ev SELECT CASE WHEN v = 0 THEN '' ELSE 'sensors' END, k, v FROM src;",
        source(&input),
        out.display(),
        dead.display()
    ));
    let mut events: Vec<String> = lines_in(&out)
        .iter()
        .map(|e| {
            assert_eq!(e["source"], json!("sensors"), "{e}");
            e["data"]["k"].as_str().expect("k").to_string()
        })
        .collect();
    events.sort();
    assert_eq!(events, vec!["a", "c", "d"]);
    let letters = lines_in(&dead);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["source"], json!("ev"));
    assert_eq!(letters[0]["position"], json!({"sink": "ev"}));
    assert_eq!(letters[0]["record"], json!("+I[, b, 0]"));
    let error = letters[0]["error"].as_str().expect("error");
    assert!(error.contains("'source' is empty"), "{error}");
}

/// A timestamp beyond any calendar (year 290,000) cannot be written as
/// `yyyy-MM-dd HH:mm:ss`; it used to be written as a bare number in a
/// timestamp field. Its row is a dead letter; the rest are written.
#[test]
fn a_timestamp_out_of_range_is_a_dead_letter_not_a_number_in_its_field() {
    let dir = temp("timestamp");
    let input = readings(&dir);
    let (out, dead) = (dir.join("out"), dir.join("dead"));
    run(&format!(
        "{}CREATE TABLE o (k STRING, t TIMESTAMP_LTZ(3)) WITH ('connector' = 'filesystem', 'path' = '{}/',
           'format' = 'json', 'sink.dlq.connector' = 'filesystem', 'sink.dlq.path' = '{}/');
         INSERT INTO o SELECT k, CASE WHEN v = 0 THEN TO_TIMESTAMP_LTZ(9000000000000000, 3) ELSE TO_TIMESTAMP_LTZ(v, 3) END FROM src;",
        source(&input),
        out.display(),
        dead.display()
    ));
    let mut rows: Vec<(String, String)> = lines_in(&out)
        .iter()
        .map(|r| {
            (
                r["k"].as_str().expect("k").to_string(),
                r["t"].as_str().expect("t is a string").to_string(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("a".to_string(), "1970-01-01 00:00:00.001".to_string()),
            ("c".to_string(), "1970-01-01 00:00:00.002".to_string()),
            ("d".to_string(), "1970-01-01 00:00:00.004".to_string()),
        ]
    );
    let letters = lines_in(&dead);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let error = letters[0]["error"].as_str().expect("error");
    assert!(
        error.contains("column 't'") && error.contains("out of range"),
        "{error}"
    );
}

/// A STRING column written as Kafka's `timestamp` metadata is cast as Flink
/// casts it; a value that is no timestamp makes its row a dead letter (in
/// Kafka, with the error in a header) instead of failing the job.
#[test]
fn a_kafka_timestamp_that_does_not_parse_is_a_dead_letter() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    for t in ["out", "out-dlq"] {
        cluster.create_topic(t, 1, 1).expect("topic");
    }
    let dir = temp("kafka");
    let input = readings(&dir);
    run(&format!(
        "{}CREATE TABLE o (k STRING, ts STRING METADATA FROM 'timestamp') WITH ('connector' = 'kafka', 'topic' = 'out',
           'properties.bootstrap.servers' = '{bs}', 'format' = 'json',
           'sink.dlq.connector' = 'kafka', 'sink.dlq.topic' = 'out-dlq', 'sink.dlq.properties.bootstrap.servers' = '{bs}');
         INSERT INTO o SELECT k, CASE WHEN v = 0 THEN 'yesterday' ELSE '2026-01-0' || CAST(v AS STRING) || ' 00:00:00' END FROM src;",
        source(&input)
    ));
    let mut keys: Vec<String> = kafka::consume_records(&bs, "out")
        .into_iter()
        .map(|r| r.value)
        .collect();
    keys.sort();
    assert_eq!(keys, vec![r#"{"k":"a"}"#, r#"{"k":"c"}"#, r#"{"k":"d"}"#]);
    let letters = kafka::consume_records(&bs, "out-dlq");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].value, "+I[b, yesterday]");
    let error = letters[0].header("vigil-dlq-error").expect("error header");
    assert!(error.contains("'yesterday' is not a timestamp"), "{error}");
}

/// A number that does not fit the sink's DECIMAL(5, 2) is written as NULL, as
/// Flink's cast makes it (tests/golden/decimal_overflow_is_null.jsonl holds
/// Flink's rows for the same cast); it used to fail the job in the projection
/// before the sink, losing every row.
#[test]
fn a_decimal_beyond_the_sink_column_is_null_and_the_rest_are_written() {
    let dir = temp("decimal");
    let input = readings(&dir);
    let out = dir.join("out");
    run(&format!(
        "{}CREATE TABLE o (k STRING, d DECIMAL(5, 2)) WITH ('connector' = 'filesystem', 'path' = '{}/', 'format' = 'json');
         INSERT INTO o SELECT k, CAST(v AS DECIMAL(10, 2)) * 300 FROM src;",
        source(&input),
        out.display()
    ));
    let mut rows = lines_in(&out);
    rows.sort_by_key(|r| r["k"].as_str().unwrap_or_default().to_string());
    assert_eq!(
        rows,
        vec![
            json!({"k": "a", "d": 300.0}),
            json!({"k": "b", "d": 0.0}),
            json!({"k": "c", "d": 600.0}),
            json!({"k": "d", "d": null}),
        ]
    );
}
