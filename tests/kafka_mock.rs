//! The Kafka connector against librdkafka's in-process mock cluster, which
//! speaks the real protocol: start and stop offsets, metadata columns, keys,
//! malformed records, per-partition watermarks, idle partitions, a missing
//! topic, brokers down at start and mid-run, and offsets committed on stop.

#[path = "support/collect.rs"]
mod collect;
#[path = "support/kafka.rs"]
mod kafka;

use std::time::{Duration, Instant};

use kafka::{produce, runtime, Rec};
use rdkafka::mocking::MockCluster;
use serde_json::{json, Value};
use vigil::engine::control::stop_channel;
use vigil::{OutputFormat, RunSummary};

fn run(script: &str) -> Result<RunSummary, String> {
    runtime().block_on(async {
        collect::vigil()
            .run_script(script, OutputFormat::Json)
            .await
            .map_err(|e| e.to_string())
    })
}

/// A source table over `topic` with extra WITH options.
fn table(name: &str, columns: &str, bootstrap: &str, topic: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE {name} ({columns}) WITH ('connector' = 'kafka', 'topic' = '{topic}', \
         'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'json'{extra});\n"
    )
}

fn sink(name: &str, columns: &str) -> String {
    format!(
        "CREATE TABLE {name}_out ({columns}) WITH ('connector' = 'collect', 'name' = '{name}');\n"
    )
}

fn ids(rows: &[Value]) -> Vec<i64> {
    let mut v: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().expect("id")).collect();
    v.sort_unstable();
    v
}

#[test]
fn bounded_read_with_keys_metadata_and_headers() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("keyed", 2, 1).expect("topic");
    produce(
        &bs,
        "keyed",
        &[
            Rec::value(r#"{"name":"a"}"#)
                .key(r#"{"id":1}"#)
                .to(0)
                .at(1_600_000_000_000)
                .header("source", "x"),
            Rec::value(r#"{"name":"b"}"#)
                .key(r#"{"id":2}"#)
                .to(1)
                .at(1_600_000_001_000),
            Rec::value(r#"{"name":"c"}"#)
                .key(r#"{"id":3}"#)
                .to(0)
                .at(1_600_000_002_000),
        ],
    );
    let script = table(
        "t",
        "id BIGINT, name STRING, part INT METADATA FROM 'partition' VIRTUAL, off BIGINT METADATA FROM 'offset' VIRTUAL, \
         ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp', topic STRING METADATA VIRTUAL, headers MAP<STRING, BYTES> METADATA",
        &bs,
        "keyed",
        ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'key.format' = 'json', \
         'key.fields' = 'id', 'value.fields-include' = 'EXCEPT_KEY'",
    ) + &sink("keyed", "id BIGINT, name STRING, part INT, off BIGINT, ts TIMESTAMP(3), topic STRING, source STRING")
        + "INSERT INTO keyed_out SELECT id, name, part, off, CAST(ts AS TIMESTAMP(3)), topic, CAST(headers['source'] AS STRING) FROM t;";
    let summary = run(&script).expect("job runs");
    assert_eq!(summary.rows_read, 3);
    let mut rows = collect::rows("keyed");
    rows.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["name"], json!("a"));
    assert_eq!(
        (rows[0]["part"].clone(), rows[0]["off"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(
        (rows[1]["part"].clone(), rows[1]["off"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(
        (rows[2]["part"].clone(), rows[2]["off"].clone()),
        (json!(0), json!(1))
    );
    assert!(
        rows[1]["ts"]
            .as_str()
            .is_some_and(|t| t.starts_with("2020-09-13T12:26:41")),
        "{:?}",
        rows[1]
    );
    assert_eq!(rows[2]["topic"], json!("keyed"));
    assert_eq!(rows[0]["source"], json!("x"));
    assert_eq!(
        rows[1].get("source"),
        None,
        "no header on the second record: {:?}",
        rows[1]
    );
}

#[test]
fn startup_and_bounded_modes_select_the_range() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("range", 1, 1).expect("topic");
    let recs: Vec<Rec> = (0..10)
        .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)))
        .collect();
    produce(&bs, "range", &recs);
    let job = |name: &str, extra: &str| {
        table(name, "id BIGINT", &bs, "range", extra)
            + &sink(name, "id BIGINT")
            + &format!("INSERT INTO {name}_out SELECT id FROM {name};")
    };
    // (Timestamp modes need ListOffsets by time, which the mock cluster lacks: see kafka_tansu.rs.)
    run(&job("specific", ", 'scan.startup.mode' = 'specific-offsets', 'scan.startup.specific-offsets' = 'partition:0,offset:7', 'properties.group.id' = 'g-specific', 'scan.bounded.mode' = 'latest-offset'")).expect("specific start");
    assert_eq!(ids(&collect::rows("specific")), vec![7, 8, 9]);
    run(&job("until", ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'specific-offsets', 'scan.bounded.specific-offsets' = 'partition:0,offset:3'")).expect("specific stop");
    assert_eq!(ids(&collect::rows("until")), vec![0, 1, 2]);
    run(&job(
        "latest",
        ", 'scan.startup.mode' = 'latest-offset', 'scan.bounded.mode' = 'latest-offset'",
    ))
    .expect("latest start");
    assert_eq!(ids(&collect::rows("latest")), Vec::<i64>::new());

    // Group offsets: none committed yet and no reset policy is an error, as in Flink.
    let err = run(&job(
        "group0",
        ", 'properties.group.id' = 'g1', 'scan.bounded.mode' = 'latest-offset'",
    ))
    .expect_err("no committed offset");
    assert!(
        err.contains("no committed offset for group 'g1'") && err.contains("auto.offset.reset"),
        "{err}"
    );
    // With a reset policy the first run reads everything and commits; the next reads only what is new.
    run(&job("group1", ", 'properties.group.id' = 'g1', 'properties.auto.offset.reset' = 'earliest', 'scan.bounded.mode' = 'latest-offset'")).expect("group run 1");
    assert_eq!(ids(&collect::rows("group1")).len(), 10);
    produce(
        &bs,
        "range",
        &[Rec::value(r#"{"id":10}"#), Rec::value(r#"{"id":11}"#)],
    );
    run(&job(
        "group2",
        ", 'properties.group.id' = 'g1', 'scan.bounded.mode' = 'latest-offset'",
    ))
    .expect("group run 2");
    assert_eq!(ids(&collect::rows("group2")), vec![10, 11]);
}

#[test]
fn malformed_records_are_skipped_and_counted() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("dirty", 1, 1).expect("topic");
    produce(
        &bs,
        "dirty",
        &[
            Rec::value(r#"{"id":1,"v":"ok"}"#),
            Rec::value(r#"{"id":"#),
            Rec::value("42"),
            Rec::value(r#"{"id":"not a number"}"#),
            Rec::default(),
            Rec::value(r#"{"id":2,"v":"ok"}"#),
        ],
    );
    let script = table(
        "d",
        "id BIGINT, v STRING",
        &bs,
        "dirty",
        ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'",
    ) + &sink("dirty", "id BIGINT, v STRING")
        + "INSERT INTO dirty_out SELECT id, v FROM d;";
    let summary = run(&script).expect("job runs");
    assert_eq!(ids(&collect::rows("dirty")), vec![1, 2]);
    assert_eq!(summary.malformed_records, 3);
}

#[test]
fn a_missing_topic_is_an_error_naming_it_and_the_brokers() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    let script = table(
        "m",
        "id BIGINT",
        &bs,
        "no-such-topic",
        ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'",
    ) + &sink("missing", "id BIGINT")
        + "INSERT INTO missing_out SELECT id FROM m;";
    let err = run(&script).expect_err("missing topic");
    assert!(
        err.contains("'no-such-topic' does not exist") && err.contains(&bs),
        "{err}"
    );
}

/// Watermarks are per partition: a row that is late relative to another
/// partition's progress but not to its own partition's is kept, as in Flink.
#[test]
fn watermarks_are_per_partition() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("wm", 2, 1).expect("topic");
    produce(
        &bs,
        "wm",
        &[
            Rec::value(r#"{"id":1,"ts":"2024-01-01 10:00:20"}"#).to(0),
            Rec::value(r#"{"id":2,"ts":"2024-01-01 10:00:21"}"#).to(0),
        ],
    );
    produce(
        &bs,
        "wm",
        &[Rec::value(r#"{"id":3,"ts":"2024-01-01 10:00:03"}"#).to(1)],
    );
    let script = table("w", "id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts", &bs, "wm", ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'")
        + &sink("wm", "window_start TIMESTAMP(3), n BIGINT")
        + "INSERT INTO wm_out SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE w, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;";
    let summary = run(&script).expect("job runs");
    assert_eq!(summary.late_rows_dropped, 0);
    let mut rows = collect::rows("wm");
    rows.sort_by(|a, b| a["window_start"].as_str().cmp(&b["window_start"].as_str()));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0]["window_start"]
            .as_str()
            .is_some_and(|s| s.starts_with("2024-01-01T10:00:00")),
        "{rows:?}"
    );
    assert_eq!(rows[0]["n"], json!(1));
    assert_eq!(rows[1]["n"], json!(2));
}

/// Runs `script` unbounded in the background; returns a stop handle and the join handle.
fn spawn(
    script: String,
) -> (
    vigil::engine::control::StopHandle,
    std::thread::JoinHandle<Result<RunSummary, String>>,
) {
    let (handle, signal) = stop_channel();
    let join = std::thread::spawn(move || {
        runtime().block_on(async {
            collect::vigil()
                .run_script_until(&script, OutputFormat::Json, signal)
                .await
                .map_err(|e| e.to_string())
        })
    });
    (handle, join)
}

fn wait_for(name: &str, n: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let got = collect::rows(name).len();
        if got >= n || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_idle_partition_stops_holding_back_the_watermark() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("idle", 2, 1).expect("topic");
    let recs: Vec<Rec> = (0..30)
        .map(|i| Rec::value(format!(r#"{{"id":{i},"ts":"2024-01-01 10:00:{i:02}"}}"#)).to(0))
        .collect();
    produce(&bs, "idle", &recs);
    let job = |name: &str, set: &str| {
        format!("{set}\n")
            + &table(name, "id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts", &bs, "idle", ", 'scan.startup.mode' = 'earliest-offset'")
            + &sink(name, "window_start TIMESTAMP(3), n BIGINT")
            + &format!("INSERT INTO {name}_out SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE {name}, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;")
    };
    // Without an idle timeout the silent partition 1 holds every window back.
    let (stop, join) = spawn(job("held", ""));
    assert_eq!(
        wait_for("held", 1, Duration::from_secs(3)),
        0,
        "no window may fire while partition 1 is silent"
    );
    stop.stop();
    join.join().expect("join").expect("job");
    assert!(
        collect::rows("held").is_empty(),
        "a stop does not fire open windows"
    );
    // With one, windows up to the watermark of partition 0 fire while the job runs.
    let (stop, join) = spawn(job(
        "idled",
        "SET 'table.exec.source.idle-timeout' = '500 ms';",
    ));
    let got = wait_for("idled", 2, Duration::from_secs(15));
    stop.stop();
    join.join().expect("join").expect("job");
    assert_eq!(got, 2, "windows [10:00:00, 10:00:10) and [10:00:10, 10:00:20) fire; [10:00:20, 10:00:30) waits for a row at 10:00:30");
    assert!(collect::rows("idled").iter().all(|r| r["n"] == json!(10)));
}

#[test]
fn a_broker_down_for_10_seconds_loses_nothing_and_duplicates_nothing() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("flaky", 2, 1).expect("topic");
    produce(
        &bs,
        "flaky",
        &(0..500)
            .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)).to(i % 2))
            .collect::<Vec<_>>(),
    );
    let script = table(
        "f",
        "id BIGINT",
        &bs,
        "flaky",
        ", 'scan.startup.mode' = 'earliest-offset'",
    ) + &sink("flaky", "id BIGINT")
        + "INSERT INTO flaky_out SELECT id FROM f;";
    let (stop, join) = spawn(script);
    assert_eq!(wait_for("flaky", 500, Duration::from_secs(20)), 500);
    cluster.broker_down(1).expect("broker down");
    // Records produced while the broker is down wait in the producer and arrive when it is back.
    let bs2 = bs.clone();
    let producer = std::thread::spawn(move || {
        produce(
            &bs2,
            "flaky",
            &(500..1000)
                .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)).to(i % 2))
                .collect::<Vec<_>>(),
        )
    });
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        collect::rows("flaky").len(),
        500,
        "nothing can arrive while the broker is down"
    );
    cluster.broker_up(1).expect("broker up");
    producer.join().expect("producer");
    let got = wait_for("flaky", 1000, Duration::from_secs(30));
    stop.stop();
    join.join().expect("join").expect("job");
    assert_eq!(got, 1000);
    assert_eq!(
        ids(&collect::rows("flaky")),
        (0..1000).collect::<Vec<i64>>()
    );
}

#[test]
fn a_broker_down_at_start_is_retried() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("late-broker", 1, 1).expect("topic");
    produce(
        &bs,
        "late-broker",
        &(0..20)
            .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)))
            .collect::<Vec<_>>(),
    );
    cluster.broker_down(1).expect("broker down");
    let script = table(
        "l",
        "id BIGINT",
        &bs,
        "late-broker",
        ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'",
    ) + &sink("late", "id BIGINT")
        + "INSERT INTO late_out SELECT id FROM l;";
    let (_stop, join) = spawn(script);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!join.is_finished(), "the job waits for the broker");
    cluster.broker_up(1).expect("broker up");
    join.join()
        .expect("join")
        .expect("job completes once the broker is back");
    assert_eq!(ids(&collect::rows("late")), (0..20).collect::<Vec<i64>>());
}

#[test]
fn a_stop_commits_the_offsets_of_what_was_read() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("commits", 1, 1).expect("topic");
    produce(
        &bs,
        "commits",
        &(0..5)
            .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)))
            .collect::<Vec<_>>(),
    );
    let job = |name: &str, extra: &str| {
        table(name, "id BIGINT", &bs, "commits", &format!(", 'properties.group.id' = 'committer', 'properties.auto.offset.reset' = 'earliest'{extra}"))
            + &sink(name, "id BIGINT")
            + &format!("INSERT INTO {name}_out SELECT id FROM {name};")
    };
    let (stop, join) = spawn(job("first", ""));
    assert_eq!(wait_for("first", 5, Duration::from_secs(20)), 5);
    stop.stop();
    join.join().expect("join").expect("job");
    produce(
        &bs,
        "commits",
        &(5..8)
            .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)))
            .collect::<Vec<_>>(),
    );
    run(&job("second", ", 'scan.bounded.mode' = 'latest-offset'")).expect("second run");
    assert_eq!(ids(&collect::rows("second")), vec![5, 6, 7]);
}

#[test]
fn the_kafka_sink_writes_json_values_and_keys() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("src", 1, 1).expect("topic");
    cluster.create_topic("dst", 1, 1).expect("topic");
    produce(
        &bs,
        "src",
        &[
            Rec::value(r#"{"id":1,"v":"a"}"#),
            Rec::value(r#"{"id":2,"v":"b"}"#),
        ],
    );
    let script = table("s", "id BIGINT, v STRING", &bs, "src", ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'")
        + &format!("CREATE TABLE d (id BIGINT, v STRING) WITH ('connector' = 'kafka', 'topic' = 'dst', 'properties.bootstrap.servers' = '{bs}', 'format' = 'json', 'key.format' = 'json', 'key.fields' = 'id');\n")
        + "INSERT INTO d SELECT id, UPPER(v) FROM s;";
    run(&script).expect("job runs");
    let out = kafka::consume_all(&bs, "dst");
    let got: Vec<(Option<String>, Value)> = out
        .into_iter()
        .map(|(_, k, v)| (k, serde_json::from_str(&v).expect("json value")))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(r#"{"id":1}"#.to_string()), json!({"id": 1, "v": "A"})),
            (Some(r#"{"id":2}"#.to_string()), json!({"id": 2, "v": "B"})),
        ]
    );
}

#[test]
fn the_embedded_broker_needs_no_kafka() {
    let bs = vigil_connectors::kafka::embedded::bootstrap_servers().expect("embedded broker");
    vigil_connectors::kafka::embedded::create_topic("embedded-events", 1).expect("topic");
    produce(&bs, "embedded-events", &[Rec::value(r#"{"id":7}"#)]);
    let script = table(
        "e",
        "id BIGINT",
        "embedded",
        "embedded-events",
        ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'",
    ) + &sink("embedded", "id BIGINT")
        + "INSERT INTO embedded_out SELECT id FROM e;";
    run(&script).expect("job runs");
    assert_eq!(ids(&collect::rows("embedded")), vec![7]);
}

/// An updating result into `upsert-kafka`: each record's key is the primary
/// key, an update overwrites it, a deleted row leaves a tombstone (a record
/// without a value), and `-U` rows are not written; folding the topic by key
/// gives the result table.
#[test]
fn upsert_kafka_writes_the_latest_row_per_key_and_tombstones() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("clicks", 1, 1).expect("topic");
    cluster.create_topic("by_count", 1, 1).expect("topic");
    // Per user 3, 3 and 1 clicks: a count of 2 is passed through and left,
    // so its row ends deleted.
    let users = ["a", "c", "a", "b", "c", "a", "c"];
    let recs: Vec<Rec> = users
        .iter()
        .map(|u| Rec::value(format!(r#"{{"user_id":"{u}"}}"#)))
        .collect();
    produce(&bs, "clicks", &recs);
    let script = table("clicks", "user_id STRING", &bs, "clicks", ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'")
        + &format!("CREATE TABLE by_count (n BIGINT, users BIGINT, PRIMARY KEY (n) NOT ENFORCED) WITH ('connector' = 'upsert-kafka', 'topic' = 'by_count', 'properties.bootstrap.servers' = '{bs}', 'key.format' = 'json', 'value.format' = 'json');\n")
        + "INSERT INTO by_count SELECT n, COUNT(*) FROM (SELECT user_id, COUNT(*) AS n FROM clicks GROUP BY user_id) GROUP BY n;";
    run(&script).expect("job runs");
    let records = kafka::consume_all(&bs, "by_count");
    let mut folded: std::collections::BTreeMap<String, Value> = Default::default();
    let mut tombstones = 0;
    for (_, key, value) in &records {
        let key = key.clone().expect("every record has a key");
        if value.is_empty() {
            tombstones += 1;
            folded.remove(&key);
        } else {
            let v: Value = serde_json::from_str(value).expect("json value");
            folded.insert(key, v);
        }
    }
    assert!(tombstones >= 1, "no tombstone among {records:?}");
    assert_eq!(
        folded.into_iter().collect::<Vec<_>>(),
        vec![
            (r#"{"n":1}"#.to_string(), json!({"n": 1, "users": 1})),
            (r#"{"n":3}"#.to_string(), json!({"n": 3, "users": 2})),
        ]
    );
    // Without a primary key the sink is refused before anything runs.
    let no_key = table("clicks", "user_id STRING", &bs, "clicks", ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'")
        + &format!("CREATE TABLE t (n BIGINT) WITH ('connector' = 'upsert-kafka', 'topic' = 'x', 'properties.bootstrap.servers' = '{bs}', 'key.format' = 'json', 'value.format' = 'json');\n")
        + "INSERT INTO t SELECT COUNT(*) FROM clicks;";
    let err = run(&no_key).expect_err("refused");
    assert!(err.contains("needs a primary key"), "{err}");
}

/// A lookup join reads its file table when the job starts and again once
/// the file changes (its processing-time timer checks while no row comes):
/// rows joined before the change keep the old values, rows after it see the
/// new ones.
#[test]
fn a_lookup_table_is_reloaded_when_its_file_changes() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("orders", 1, 1).expect("topic");
    let dir = std::env::temp_dir().join(format!("vigil-lookup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let users = dir.join("users.jsonl");
    std::fs::write(
        &users,
        "{\"id\":1,\"tier\":\"gold\"}\n{\"id\":2,\"tier\":\"basic\"}\n",
    )
    .expect("write");
    let order = |n: i64, user: i64| Rec::value(format!(r#"{{"n":{n},"user_id":{user}}}"#));
    produce(&bs, "orders", &[order(1, 1), order(2, 2), order(3, 3)]);
    let script = table("orders", "n BIGINT, user_id BIGINT, proc AS PROCTIME()", &bs, "orders", ", 'scan.startup.mode' = 'earliest-offset'")
        + &format!("CREATE TABLE users (id BIGINT, tier STRING) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'lookup.join.cache.ttl' = '100 ms');\n", users.display())
        + &sink("lookup", "n BIGINT, tier STRING")
        + "INSERT INTO lookup_out SELECT o.n, u.tier FROM orders AS o LEFT JOIN users FOR SYSTEM_TIME AS OF o.proc AS u ON o.user_id = u.id;";
    let (stop, join) = spawn(script);
    assert_eq!(wait_for("lookup", 3, Duration::from_secs(15)), 3);
    // Replaced by a rename, as a writer should, so no half-written file is read.
    let next = dir.join(".users.tmp");
    std::fs::write(
        &next,
        "{\"id\":1,\"tier\":\"platinum\"}\n{\"id\":3,\"tier\":\"new\"}\n",
    )
    .expect("write");
    // A modification time distinct from the first file's, however coarse the clock.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::rename(&next, &users).expect("rename");
    std::thread::sleep(Duration::from_millis(300));
    produce(&bs, "orders", &[order(4, 1), order(5, 2), order(6, 3)]);
    let got = wait_for("lookup", 6, Duration::from_secs(15));
    stop.stop();
    join.join().expect("join").expect("job");
    assert_eq!(got, 6);
    let mut rows: Vec<(i64, Value)> = collect::rows("lookup")
        .into_iter()
        .map(|r| (r["n"].as_i64().expect("n"), r["tier"].clone()))
        .collect();
    rows.sort_by_key(|r| r.0);
    assert_eq!(
        rows,
        vec![
            (1, json!("gold")),
            (2, json!("basic")),
            (3, Value::Null),
            (4, json!("platinum")),
            (5, Value::Null),
            (6, json!("new")),
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `table.exec.state.ttl`: a group untouched for the TTL is forgotten without
/// a word, so its next row starts it afresh (`+I` with a count of 1) where a
/// group still kept is updated (`-U`/`+U`).
#[test]
fn state_ttl_forgets_idle_groups() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("visits", 1, 1).expect("topic");
    let visit = |u: &str| Rec::value(format!(r#"{{"u":"{u}"}}"#));
    produce(&bs, "visits", &[visit("a"), visit("b")]);
    let script = "SET 'table.exec.state.ttl' = '2 s';\n".to_string()
        + &table(
            "visits",
            "u STRING",
            &bs,
            "visits",
            ", 'scan.startup.mode' = 'earliest-offset'",
        )
        + &sink("ttl", "u STRING, n BIGINT")
        + "INSERT INTO ttl_out SELECT u, COUNT(*) FROM visits GROUP BY u;";
    let (stop, join) = spawn(script);
    assert_eq!(wait_for("ttl", 2, Duration::from_secs(15)), 2);
    // `b` stays in use (a visit every ~0.4 s); `a` goes idle past the TTL.
    let start = Instant::now();
    let mut b_visits = 1;
    while start.elapsed() < Duration::from_millis(3000) {
        std::thread::sleep(Duration::from_millis(400));
        produce(&bs, "visits", &[visit("b")]);
        b_visits += 1;
    }
    produce(&bs, "visits", &[visit("a")]);
    let expected = 2 + 2 * (b_visits - 1) + 1;
    let got = wait_for("ttl", expected, Duration::from_secs(15));
    stop.stop();
    join.join().expect("join").expect("job");
    assert_eq!(got, expected, "{:?}", collect::rows("ttl"));
    let rows = collect::rows("ttl");
    let a: Vec<(i64, i64)> = rows
        .iter()
        .filter(|r| r["u"] == json!("a"))
        .map(|r| {
            (
                r["n"].as_i64().expect("n"),
                r["__row_kind"].as_i64().expect("kind"),
            )
        })
        .collect();
    assert_eq!(a, vec![(1, 0), (1, 0)], "a starts afresh: {rows:?}");
    let last_b = rows.iter().rev().find(|r| r["u"] == json!("b")).expect("b");
    assert_eq!(
        (last_b["n"].clone(), last_b["__row_kind"].clone()),
        (json!(b_visits), json!(2)),
        "b, in use, kept its count"
    );
}
