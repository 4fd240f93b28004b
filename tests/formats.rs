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
