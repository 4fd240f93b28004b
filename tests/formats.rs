//! Formats beside JSON: `raw` (a line is a record, the table's one column).

#[path = "support/kafka.rs"]
mod kafka;

use vigil::{OutputFormat, Vigil};

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
