//! Formats beside JSON — `raw` (a record is the table's one column), `csv`,
//! CloudEvents (structured, and Kafka binary mode) — in files and in Kafka.

#[path = "support/kafka.rs"]
mod kafka;

use kafka::{consume_records, produce_bytes};
use rdkafka::mocking::MockCluster;
use serde_json::{json, Value};
use vigil::{OutputFormat, Vigil};

fn run(script: &str) -> vigil::RunSummary {
    kafka::runtime()
        .block_on(Vigil::new().run_script(script, OutputFormat::Json))
        .expect("the job runs")
}

fn kafka_table(name: &str, columns: &str, bs: &str, topic: &str, with: &str) -> String {
    format!(
        "CREATE TABLE {name} ({columns}) WITH ('connector' = 'kafka', 'topic' = '{topic}',
           'properties.bootstrap.servers' = '{bs}', 'scan.startup.mode' = 'earliest-offset',
           'scan.bounded.mode' = 'latest-offset', {with});\n"
    )
}

/// Kafka values as csv with a raw key, out as raw values with a csv key: a
/// tombstone read as raw is a NULL row and is written back as a tombstone;
/// a csv value with a bad number is malformed.
#[test]
fn kafka_values_and_keys_in_csv_and_raw() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    for t in ["csv_in", "raw_in", "raw_out", "csv_out"] {
        cluster.create_topic(t, 1, 1).expect("topic");
    }
    let csv_records: Vec<kafka::BytesRecord<'_>> =
        ["1|a,b|2.5", "2|plain|", "x|bad|1", "3|\"multi\nline\"|4"]
            .iter()
            .map(|v| (Some(v.as_bytes().to_vec()), vec![]))
            .collect();
    produce_bytes(&bs, "csv_in", &csv_records);
    produce_bytes(
        &bs,
        "raw_in",
        &[
            (Some(b"line one".to_vec()), vec![]),
            (None, vec![]),
            (Some(b"two\nlines".to_vec()), vec![]),
        ],
    );
    let script = kafka_table("c", "id BIGINT, name STRING, v DOUBLE", &bs, "csv_in", "'format' = 'csv', 'csv.field-delimiter' = '|'")
        + &kafka_table("r", "line STRING", &bs, "raw_in", "'format' = 'raw'")
        + &format!("CREATE TABLE ro (line STRING) WITH ('connector' = 'kafka', 'topic' = 'raw_out', 'properties.bootstrap.servers' = '{bs}', 'format' = 'raw');\n")
        + &format!("CREATE TABLE co (k STRING, id BIGINT, v DOUBLE) WITH ('connector' = 'kafka', 'topic' = 'csv_out', 'properties.bootstrap.servers' = '{bs}', 'value.format' = 'csv', 'key.format' = 'raw', 'key.fields' = 'k', 'value.fields-include' = 'EXCEPT_KEY');\n")
        + "INSERT INTO ro SELECT UPPER(line) FROM r;\n"
        + "INSERT INTO co SELECT name, id, v FROM c;";
    let summary = run(&script);
    assert_eq!(summary.malformed_records, 1, "the csv value with a bad id");
    let raw = consume_records(&bs, "raw_out");
    let got: Vec<(bool, &str)> = raw
        .iter()
        .map(|r| (r.tombstone, r.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![(false, "LINE ONE"), (true, ""), (false, "TWO\nLINES")]
    );
    let csv = consume_records(&bs, "csv_out");
    let got: Vec<(Option<&str>, &str)> = csv
        .iter()
        .map(|r| (r.key.as_deref(), r.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("a,b"), "1,2.5"),
            (Some("plain"), "2,"),
            (Some("multi\nline"), "3,4.0"),
        ]
    );
}

/// CloudEvents over Kafka: a source reads binary-mode events (attributes in
/// `ce_*` headers, data in the value) and structured ones from one topic; a
/// sink writes binary mode, and a file sink structured events that read
/// back the same.
#[test]
fn kafka_cloudevents_in_binary_and_structured_mode() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    for t in ["events", "alerts", "events-dlq"] {
        cluster.create_topic(t, 1, 1).expect("topic");
    }
    let binary = |id: &'static str, data: &str| {
        (
            Some(data.as_bytes().to_vec()),
            vec![
                ("ce_specversion", "1.0"),
                ("ce_id", id),
                ("ce_source", "/sensors/7"),
                ("ce_type", "reading"),
                ("ce_time", "2024-01-01T10:00:00Z"),
                ("content-type", "application/json"),
            ],
        )
    };
    produce_bytes(
        &bs,
        "events",
        &[
            binary("b1", r#"{"temp": 91.5}"#),
            (
                Some(br#"{"specversion":"1.0","id":"s2","source":"/sensors/8","type":"reading","time":"2024-01-01T10:00:01Z","subject":"hall","data":{"temp":95.0}}"#.to_vec()),
                vec![],
            ),
            binary("b3", "not json"),
            binary("b4", r#"{"temp": 20.0}"#),
        ],
    );
    let dir = std::env::temp_dir().join(format!("vigil-ce-kafka-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let script = kafka_table(
        "readings",
        "id STRING, source STRING, `time` TIMESTAMP(3), subject STRING, temp DOUBLE",
        &bs,
        "events",
        &format!("'format' = 'cloudevents', 'dlq.connector' = 'kafka', 'dlq.topic' = 'events-dlq', 'dlq.properties.bootstrap.servers' = '{bs}'"),
    ) + &format!(
        "CREATE TABLE alerts (subject STRING, `time` TIMESTAMP(3), reading_id STRING, temp DOUBLE) WITH ('connector' = 'kafka', 'topic' = 'alerts',
           'properties.bootstrap.servers' = '{bs}', 'format' = 'cloudevents', 'cloudevents.mode' = 'binary',
           'cloudevents.source' = '/vigil/alerts', 'cloudevents.type' = 'overheat');
         INSERT INTO alerts SELECT COALESCE(subject, source), `time`, id, temp FROM readings WHERE temp > 90;"
    );
    let summary = run(&script);
    assert_eq!(
        summary.malformed_records, 1,
        "the binary event whose data is not JSON"
    );
    let letters = consume_records(&bs, "events-dlq");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].value, "not json");
    assert_eq!(
        letters[0].header("ce_id"),
        Some("b3"),
        "the dead letter keeps its ce_* headers"
    );
    let alerts = consume_records(&bs, "alerts");
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    for (a, (subject, reading, time, temp)) in alerts.iter().zip([
        ("/sensors/7", "b1", "2024-01-01T10:00:00.000Z", 91.5),
        ("hall", "s2", "2024-01-01T10:00:01.000Z", 95.0),
    ]) {
        assert_eq!(a.header("ce_specversion"), Some("1.0"));
        assert_eq!(a.header("ce_source"), Some("/vigil/alerts"));
        assert_eq!(a.header("ce_type"), Some("overheat"));
        assert_eq!(a.header("ce_subject"), Some(subject));
        assert_eq!(a.header("ce_time"), Some(time));
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(
            a.header("ce_id").map(str::len),
            Some(32),
            "a deterministic id: {a:?}"
        );
        let data: Value = serde_json::from_str(&a.value).expect("data is JSON");
        assert_eq!(data, json!({"reading_id": reading, "temp": temp}));
    }
    // The binary-mode alerts into a file of structured events (ids kept),
    // which reads back through the cloudevents source.
    let to_file = kafka_table(
        "a",
        "id STRING, source STRING, `type` STRING, `time` TIMESTAMP(3), subject STRING, reading_id STRING, temp DOUBLE",
        &bs,
        "alerts",
        "'format' = 'cloudevents'",
    ) + &format!(
        "CREATE TABLE alert_file (id STRING, source STRING, `type` STRING, `time` TIMESTAMP(3), subject STRING, reading_id STRING, temp DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'cloudevents');
         INSERT INTO alert_file SELECT * FROM a;",
        dir.display()
    );
    run(&to_file);
    let back = format!(
        "CREATE TABLE f (id STRING, `type` STRING, subject STRING, reading_id STRING, temp DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'cloudevents');
         CREATE TABLE o (id STRING, `type` STRING, subject STRING, reading_id STRING, temp DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         INSERT INTO o SELECT * FROM f;",
        dir.display(),
        dir.join("back").display()
    );
    run(&back);
    let mut rows: Vec<Value> = std::fs::read_dir(dir.join("back"))
        .expect("out")
        .flatten()
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .expect("read")
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("json"))
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort_by_key(|r| r["reading_id"].as_str().map(str::to_string));
    let ids: Vec<&str> = alerts.iter().filter_map(|a| a.header("ce_id")).collect();
    assert_eq!(
        rows,
        vec![
            json!({"id": ids[0], "type": "overheat", "subject": "/sensors/7", "reading_id": "b1", "temp": 91.5}),
            json!({"id": ids[1], "type": "overheat", "subject": "hall", "reading_id": "s2", "temp": 95.0}),
        ],
        "the same deterministic ids in the file as in Kafka"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn raw_lines_in_and_out_with_a_bad_line_counted() {
    let dir = std::env::temp_dir().join(format!("vigil-raw-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let input = dir.join("log.txt");
    // A log of free text; the third line is not UTF-8.
    std::fs::write(
        &input,
        b"GET /a 200\nPOST /b {\"x\": 1}\n\xff\xfe\nGET /c 500\n",
    )
    .expect("input");
    let out = dir.join("out");
    let script = format!(
        "CREATE TABLE logs (line STRING) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'raw');
         CREATE TABLE errors (line STRING) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'raw');
         INSERT INTO errors SELECT UPPER(line) FROM logs WHERE line NOT LIKE '% 200';",
        input.display(),
        out.display()
    );
    let summary = kafka::runtime()
        .block_on(Vigil::new().run_script(&script, OutputFormat::Json))
        .expect("runs");
    assert_eq!(summary.malformed_records, 1);
    let mut text = String::new();
    for e in std::fs::read_dir(&out).expect("out").flatten() {
        text.push_str(&std::fs::read_to_string(e.path()).expect("read"));
    }
    assert_eq!(text, "POST /B {\"X\": 1}\nGET /C 500\n");
    // A raw table has one STRING or BYTES column.
    let bad = format!(
        "CREATE TABLE t (a STRING, b STRING) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'raw');
         SELECT * FROM t;",
        input.display()
    );
    let err = kafka::runtime()
        .block_on(Vigil::new().run_script(&bad, OutputFormat::Json))
        .expect_err("refused");
    assert!(
        err.to_string().contains("exactly one physical column"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// CloudEvents in structured JSON mode: attribute columns take the event's
/// attributes (`time` as a timestamp), the others come from `data`; an event
/// without `data` has NULLs there; a record that is not an event is malformed.
#[test]
fn cloudevents_map_attributes_and_data_to_columns() {
    let dir = std::env::temp_dir().join(format!("vigil-ce-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let input = dir.join("events.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"specversion":"1.0","id":"e1","source":"/sensors","type":"reading","time":"2024-01-01T10:00:00Z","subject":"s1","data":{"temp":21.5,"ok":true}}"#, "\n",
            r#"{"specversion":"1.0","id":"e2","source":"/sensors","type":"reading","time":"2024-01-01T10:00:05Z","data":{"temp":85.0}}"#, "\n",
            r#"{"specversion":"1.0","id":"e3","source":"/sensors","type":"heartbeat","time":"2024-01-01T10:00:06Z"}"#, "\n",
            "not an event\n",
        ),
    )
    .expect("input");
    let script = format!(
        "CREATE TABLE readings (id STRING, `type` STRING, `time` TIMESTAMP(3), subject STRING, temp DOUBLE, ok BOOLEAN)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'cloudevents');
         SELECT * FROM readings;",
        input.display()
    );
    let exe = env!("CARGO_BIN_EXE_vigil");
    let path = dir.join("q.sql");
    std::fs::write(&path, script).expect("script");
    let out = std::process::Command::new(exe)
        .args(["run", "--format", "json", path.to_str().expect("path")])
        .output()
        .expect("vigil");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"id": "e1", "type": "reading", "time": "2024-01-01 10:00:00", "subject": "s1", "temp": 21.5, "ok": true}),
            serde_json::json!({"id": "e2", "type": "reading", "time": "2024-01-01 10:00:05", "subject": null, "temp": 85.0, "ok": null}),
            serde_json::json!({"id": "e3", "type": "heartbeat", "time": "2024-01-01 10:00:06", "subject": null, "temp": null, "ok": null}),
        ]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1 malformed record"));
    let _ = std::fs::remove_dir_all(dir);
}

/// csv in and out with Flink's option names: a custom delimiter, quoted
/// fields, a null literal; a line with too few fields or a bad number is
/// malformed.
#[test]
fn csv_in_and_out() {
    let dir = std::env::temp_dir().join(format!("vigil-csv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let input = dir.join("in.csv");
    std::fs::write(
        &input,
        "1;\"a;b\";2.5\n2;plain;N/A\nthree;x;1\n4;short\n5;\"q\"\"uote\";7\n",
    )
    .expect("input");
    let out = dir.join("out");
    let script = format!(
        "CREATE TABLE t (id BIGINT, name STRING, v DOUBLE) WITH ('connector' = 'filesystem', 'path' = '{}',
           'format' = 'csv', 'csv.field-delimiter' = ';', 'csv.null-literal' = 'N/A');
         CREATE TABLE o (id BIGINT, name STRING, v DOUBLE) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO o SELECT id * 10, name, v FROM t;",
        input.display(),
        out.display()
    );
    let summary = kafka::runtime()
        .block_on(Vigil::new().run_script(&script, OutputFormat::Json))
        .expect("runs");
    assert_eq!(summary.malformed_records, 2);
    let mut text = String::new();
    for e in std::fs::read_dir(&out).expect("out").flatten() {
        text.push_str(&std::fs::read_to_string(e.path()).expect("read"));
    }
    assert_eq!(text, "10,a;b,2.5\n20,plain,\n50,\"q\"\"uote\",7.0\n");
    let _ = std::fs::remove_dir_all(dir);
}

/// ARRAY and ROW columns written to csv are the lines Flink 2.3 writes for
/// the same INSERT (`tests/data/nested_csv_written_by_flink.csv`: Flink's
/// file sink over `tests/data/nested.csv`, through the oracle's
/// `flink_run.py`); an element that does not convert is a malformed record.
#[test]
fn csv_arrays_and_rows_are_written_as_flink_writes_them() {
    let dir = std::env::temp_dir().join(format!("vigil-csv-nested-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let input = dir.join("in.csv");
    let mut lines = std::fs::read_to_string(format!("{data}/nested.csv")).expect("input");
    lines.push_str("5,g,1;x,oops\n6,h,z;x,\n");
    std::fs::write(&input, lines).expect("input");
    let out = dir.join("out");
    let columns = "id INT, tags ARRAY<STRING>, r ROW<n INT, s STRING>, xs ARRAY<DOUBLE>";
    let script = format!(
        "CREATE TABLE t ({columns}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE o ({columns}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO o SELECT id, tags, r, xs FROM t;",
        input.display(),
        out.display()
    );
    let summary = run(&script);
    assert_eq!(
        summary.malformed_records, 2,
        "'oops' is no DOUBLE, 'z' no INT"
    );
    let mut written: Vec<String> = vec![];
    for e in std::fs::read_dir(&out).expect("out").flatten() {
        let text = std::fs::read_to_string(e.path()).expect("read");
        written.extend(text.lines().map(str::to_string));
    }
    let flink = std::fs::read_to_string(format!("{data}/nested_csv_written_by_flink.csv"))
        .expect("Flink's file");
    let mut expected: Vec<String> = flink.lines().map(str::to_string).collect();
    written.sort();
    expected.sort();
    assert_eq!(written, expected);
    let _ = std::fs::remove_dir_all(dir);
}

/// ROW, ARRAY and MAP columns of a CloudEvent are its `data`'s nested JSON,
/// read and written (CloudEvents is Vigil's format: no Flink golden).
#[test]
fn cloudevents_data_holds_nested_rows_arrays_and_maps() {
    let dir = std::env::temp_dir().join(format!("vigil-ce-nested-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let input = dir.join("events.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"specversion":"1.0","id":"e1","source":"/s","type":"r","data":{"device":{"site":"a","floor":2},"tags":["x","y"],"attrs":{"k":"v"}}}"#,
            "\n",
            r#"{"specversion":"1.0","id":"e2","source":"/s","type":"r","data":{"device":null,"tags":[],"attrs":{}}}"#,
            "\n",
        ),
    )
    .expect("input");
    let out = dir.join("out");
    let columns = "id STRING, device ROW<site STRING, floor INT>, tags ARRAY<STRING>, attrs MAP<STRING, STRING>";
    let script = format!(
        "CREATE TABLE ev ({columns}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'cloudevents');
         CREATE TABLE o ({columns}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'cloudevents');
         INSERT INTO o SELECT id, device, tags, attrs FROM ev;",
        input.display(),
        out.display()
    );
    let summary = run(&script);
    assert_eq!(summary.malformed_records, 0);
    let mut data: Vec<Value> = vec![];
    for e in std::fs::read_dir(&out).expect("out").flatten() {
        for line in std::fs::read_to_string(e.path()).expect("read").lines() {
            let event: Value = serde_json::from_str(line).expect("an event");
            data.push(json!({"id": event["id"], "data": event["data"]}));
        }
    }
    data.sort_by_key(|v| v["id"].to_string());
    assert_eq!(
        data,
        vec![
            json!({"id": "e1", "data": {"device": {"site": "a", "floor": 2}, "tags": ["x", "y"], "attrs": {"k": "v"}}}),
            json!({"id": "e2", "data": {"device": null, "tags": [], "attrs": {}}}),
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}
