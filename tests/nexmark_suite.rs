//! The official Nexmark suite as the nexmark repository writes it
//! (tests/nexmark/: `ddl_gen.sql` with the `nexmark` connector and ROW
//! columns, `ddl_views.sql`, and each query's blackhole sink and INSERT),
//! with the placeholders the repository's runner fills in set to the suite's
//! options below.
//!
//! - Each query's rows (its INSERT's SELECT) equal Flink's on the same events
//!   (tests/golden/nexmark/qN.jsonl, from tests/nexmark/regen.sh: Flink reads
//!   the events `vigil nexmark --nested` writes through its filesystem
//!   connector into the same `datagen` table).
//! - Each script also runs unchanged, INSERT into the blackhole included.
//! - The Kafka variant, on a real Kafka broker: `insert_kafka.sql` writes the
//!   generator's events into the topic of `ddl_kafka.sql` as nested JSON, and
//!   each query reads them back through that table, with the same rows.
//! - q14, whose `CREATE FUNCTION` names a Java class, runs in a program that
//!   registers the Rust `count_char` under that name (examples/udf/); its
//!   golden comes from Flink with the UDF spelled in built-in functions.

#[path = "support/broker.rs"]
mod broker;
#[path = "support/compare.rs"]
mod compare;
#[path = "support/kafka.rs"]
mod kafka;

#[path = "../examples/udf/count_char.rs"]
mod count_char;

use std::path::PathBuf;
use std::process::Command;

/// The runner's placeholders (keep equal to tests/nexmark/regen.sh): 100 s of
/// event time.
const SUITE: &[(&str, &str)] = &[
    ("TPS", "50"),
    ("EVENTS_NUM", "5000"),
    ("PERSON_PROPORTION", "1"),
    ("AUCTION_PROPORTION", "3"),
    ("BID_PROPORTION", "46"),
    ("NEXMARK_TABLE", "datagen"),
];

/// The queries whose rows equal Flink's golden (q6's comes from Flink's
/// batch mode, as Flink refuses it on a stream, and Vigil's updating result
/// is compared as the table it leaves; q13's from Flink with the side
/// input's current options and a regular join, see regen.sh; q10 and q12
/// are checked on their own below).
const SUPPORTED: &[&str] = &[
    "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q11", "q13", "q15", "q16", "q17",
    "q18", "q19", "q20", "q21", "q22", "q23",
];

/// The queries that run as written without a golden of their rows: q10
/// writes a partitioned file table (its files are compared below), q12's
/// processing-time windows close by the wall clock.
const RUN_AS_WRITTEN_TOO: &[&str] = &["q10", "q12"];

/// Top-1 queries, whose changelog (Flink's as Vigil's) updates a key's row
/// with `+U` alone: their results fold by that key.
const UPSERT_KEYS: &[(&str, &[&str])] = &[("q9", &["id"]), ("q18", &["bidder", "auction"])];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn read(name: &str) -> String {
    let path = dir().join("nexmark").join(format!("{name}.sql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// ddl_gen + ddl_views + the query, placeholders filled; with `rows`, the
/// query's INSERT INTO line is dropped so that its SELECT prints its rows.
fn script(query: &str, rows: bool) -> String {
    let mut text = format!("{}\n{}\n", read("ddl_gen"), read("ddl_views"));
    let body = read(query);
    if rows {
        let kept: Vec<&str> = body
            .lines()
            .filter(|l| !l.trim_start().starts_with("INSERT INTO"))
            .collect();
        text.push_str(&kept.join("\n"));
    } else {
        text.push_str(&body);
    }
    fill(text)
}

/// The suite's placeholders, and the runner's directories: FLINK_HOME holds
/// q13's `data/side_input.txt`, NEXMARK_DIR is where q10 writes.
fn fill(mut text: String) -> String {
    for (k, v) in SUITE {
        text = text.replace(&format!("${{{k}}}"), v);
    }
    text.replace(
        "${FLINK_HOME}",
        &dir().join("nexmark").display().to_string(),
    )
    .replace("${NEXMARK_DIR}", &nexmark_dir().display().to_string())
    .replace("${SUBMIT_TIME}", "suite")
}

/// The directory q10's output goes under, one per test process.
fn nexmark_dir() -> PathBuf {
    std::env::temp_dir().join(format!("vigil-nexmark-dir-{}", std::process::id()))
}

/// Whether `actual` (JSON lines, a changelog) leaves the table Flink's golden
/// of `q` leaves; the difference otherwise.
fn differs_from_flink(q: &str, actual: &str) -> Option<String> {
    let golden = dir()
        .join("golden")
        .join("nexmark")
        .join(format!("{q}.jsonl"));
    let expected =
        std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    // Updating results compare as the tables their changes leave: how
    // updates interleave depends on batching, in Flink as in Vigil.
    let key: Option<Vec<String>> = UPSERT_KEYS
        .iter()
        .find(|(name, _)| *name == q)
        .map(|(_, k)| k.iter().map(|c| c.to_string()).collect());
    let (expected, actual) = match (
        compare::final_table(&expected, key.as_deref()),
        compare::final_table(actual, key.as_deref()),
    ) {
        (Ok(e), Ok(a)) => (e, a),
        (e, a) => return Some(format!("{q}: cannot fold: {:?} {:?}", e.err(), a.err())),
    };
    assert!(!expected.is_empty(), "{q}: Flink's result is empty");
    match compare::compare_jsonl(&expected, &actual) {
        Ok(None) => None,
        Ok(Some(diff)) => Some(format!("{q}: {diff}")),
        Err(e) => Some(format!("{q}: {e}")),
    }
}

/// The Kafka variant's script for `query` on the broker at `bootstrap`:
/// ddl_kafka + ddl_views over it + the query, its rows printed. The topic is
/// read up to its end at the start ('scan.bounded.mode', the one addition),
/// so that the run ends and closes its last windows as the file-based
/// golden's run does.
fn kafka_script(query: &str, bootstrap: &str) -> String {
    let table = read("ddl_kafka").replace(
        "'format' = 'json'",
        "'format' = 'json',\n    'scan.bounded.mode' = 'latest-offset'",
    );
    let views = read("ddl_views").replace("${NEXMARK_TABLE}", "kafka");
    let text = read(query);
    let body: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("INSERT INTO"))
        .collect();
    fill(format!("{table}\n{views}\n{}", body.join("\n")))
        .replace("${BOOTSTRAP_SERVERS}", bootstrap)
}

fn run(name: &str, text: &str) -> std::process::Output {
    let tmp = std::env::temp_dir().join(format!("vigil-nexmark-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let path = tmp.join(format!("{name}.sql"));
    std::fs::write(&path, text).expect("write script");
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--format", "json"])
        .arg(&path)
        .output()
        .expect("run vigil")
}

#[test]
fn every_supported_query_returns_flinks_rows() {
    let mut failures = vec![];
    for q in SUPPORTED {
        let out = run(q, &script(q, true));
        if !out.status.success() {
            failures.push(format!(
                "{q}: vigil failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let actual = String::from_utf8_lossy(&out.stdout).to_string();
        failures.extend(differs_from_flink(q, &actual));
    }
    assert!(
        failures.is_empty(),
        "{} of {} Nexmark queries differ from Flink:\n{}",
        failures.len(),
        SUPPORTED.len(),
        failures.join("\n")
    );
}

#[test]
fn every_supported_script_runs_unchanged() {
    for q in SUPPORTED.iter().chain(RUN_AS_WRITTEN_TOO) {
        let out = run(&format!("{q}-insert"), &script(q, false));
        assert!(
            out.status.success(),
            "{q} as written failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Collects a query's rows as JSON lines.
struct JsonLines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[async_trait::async_trait]
impl vigil::engine::connector::Sink for JsonLines {
    fn describe(&self) -> String {
        "JsonLines".into()
    }
    async fn write(
        &mut self,
        batch: datafusion::arrow::record_batch::RecordBatch,
    ) -> vigil::engine::Result<()> {
        let mut buf = self.0.lock().expect("lock");
        let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut *buf);
        w.write(&batch).expect("encode rows");
        w.finish().expect("encode rows");
        Ok(())
    }
    async fn finish(&mut self) -> vigil::engine::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q14_runs_with_a_rust_function_bound_by_create_function() {
    let mut vigil = vigil::Vigil::new();
    vigil.register_udf(count_char::udf());
    let rows = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
    let sink_rows = rows.clone();
    let (_handle, stop) = vigil::engine::control::stop_channel();
    vigil
        .run_script_into(
            &script("q14", true),
            &move || Box::new(JsonLines(sink_rows.clone())),
            &vigil::engine::metrics::Metrics::new(),
            stop,
            &vigil::RunOptions::default(),
        )
        .await
        .expect("q14 runs");
    let actual = String::from_utf8(rows.lock().expect("lock").clone()).expect("utf-8");
    if let Some(diff) = differs_from_flink("q14", &actual) {
        panic!("{diff}");
    }
}

#[test]
fn a_function_bound_to_an_unregistered_class_is_refused_with_what_to_do() {
    let out = run("q14-alone", &script("q14", true));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no function is registered as 'com.github.nexmark.flink.udf.CountChar'")
            && err.contains("Vigil::register_udf"),
        "{err}"
    );
}

#[test]
fn the_kafka_variant_reads_the_events_back_from_a_topic_with_flinks_rows() {
    let broker = broker::Kafka::start();
    kafka::create_topics(&broker.bootstrap, &[("nexmark", 3)]);
    // The repository's runner: the generator's events into the topic.
    let mut load = format!(
        "{}\n{}\n{}",
        read("ddl_gen"),
        read("ddl_kafka"),
        read("insert_kafka")
    );
    for (k, v) in SUITE {
        load = load.replace(&format!("${{{k}}}"), v);
    }
    let load = load.replace("${BOOTSTRAP_SERVERS}", &broker.bootstrap);
    let out = run("kafka-load", &load);
    assert!(
        out.status.success(),
        "insert_kafka.sql failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(kafka::consume_all(&broker.bootstrap, "nexmark").len(), 5000);
    let mut failures = vec![];
    for q in SUPPORTED {
        let out = run(&format!("{q}-kafka"), &kafka_script(q, &broker.bootstrap));
        if !out.status.success() {
            failures.push(format!(
                "{q}: vigil failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        failures.extend(differs_from_flink(q, &String::from_utf8_lossy(&out.stdout)));
    }
    assert!(
        failures.is_empty(),
        "{} of {} Nexmark queries over Kafka differ from Flink:\n{}",
        failures.len(),
        SUPPORTED.len(),
        failures.join("\n")
    );
}

/// Reads a partitioned csv table's files back as JSON lines, the partition
/// values from the directory names (unescaped) under `names`.
fn read_partitioned(root: &std::path::Path, names: &[&str]) -> (String, Vec<PathBuf>) {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("bidder", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new("dateTime", DataType::Utf8, true),
        Field::new("extra", DataType::Utf8, true),
    ]));
    let unescape = |s: &str| s.replace("%3A", ":");
    let mut out = String::new();
    let mut partitions = vec![];
    for dt in std::fs::read_dir(root).expect("output directory") {
        let dt = dt.expect("entry").path();
        for hm in std::fs::read_dir(&dt).expect("partition directory") {
            let hm = hm.expect("entry").path();
            partitions.push(hm.clone());
            let value = |p: &std::path::Path| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                unescape(name.split_once('=').expect("k=v").1)
            };
            let (dt_value, hm_value) = (value(&dt), value(&hm));
            for f in std::fs::read_dir(&hm).expect("files") {
                let f = f.expect("entry").path();
                let name = f.file_name().unwrap().to_string_lossy().to_string();
                if name.starts_with('.') || name.starts_with('_') {
                    continue;
                }
                let reader = datafusion::arrow::csv::ReaderBuilder::new(schema.clone())
                    .build(std::fs::File::open(&f).expect("open part"))
                    .expect("csv reader");
                for batch in reader {
                    let mut buf = vec![];
                    let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
                    w.write(&batch.expect("csv part")).expect("encode");
                    w.finish().expect("encode");
                    for line in String::from_utf8(buf).expect("utf-8").lines() {
                        let mut row: serde_json::Map<String, serde_json::Value> =
                            serde_json::from_str(line).expect("json row");
                        row.insert(names[0].into(), dt_value.clone().into());
                        row.insert(names[1].into(), hm_value.clone().into());
                        out.push_str(&serde_json::Value::Object(row).to_string());
                        out.push('\n');
                    }
                }
            }
        }
    }
    (out, partitions)
}

#[test]
fn q10_writes_flinks_rows_into_committed_minute_partitions() {
    let own = std::env::temp_dir().join(format!("vigil-q10-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&own);
    let text = script("q10", false).replace(
        &nexmark_dir().display().to_string(),
        &own.display().to_string(),
    );
    let out = run("q10-files", &text);
    assert!(
        out.status.success(),
        "q10 failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = own.join("data/output/suite/bid");
    // Flink names the unaliased partition expressions EXPR$5 and EXPR$6.
    let (actual, partitions) = read_partitioned(&root, &["EXPR$5", "EXPR$6"]);
    // 100 s of event time from 00:00: the minutes 00:00 and 00:01.
    assert!(partitions.len() >= 2, "{partitions:?}");
    for p in &partitions {
        assert!(
            p.join("_SUCCESS").exists(),
            "{} is not committed",
            p.display()
        );
        assert!(
            p.display().to_string().contains("/dt=2015-07-15/hm=00%3A0"),
            "{}",
            p.display()
        );
    }
    if let Some(diff) = differs_from_flink("q10", &actual) {
        panic!("{diff}");
    }
    std::fs::remove_dir_all(&own).expect("clean up");
}

#[test]
fn processing_time_windows_close_by_the_wall_clock_and_open_ones_are_not_fired_at_the_end() {
    // 1500 events paced at 500 a second: three seconds of wall clock, in
    // windows of one second of processing time.
    let text = "CREATE TABLE datagen (event_type INT, bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, `dateTime` TIMESTAMP(3), extra VARCHAR>) WITH ('connector' = 'nexmark', 'first-event.rate' = '500', 'next-event.rate' = '500', 'events.num' = '1500', 'rate.limited' = 'true');
CREATE VIEW B AS SELECT bid.bidder AS bidder, PROCTIME() AS p_time FROM datagen;
SELECT count(*) AS n, window_start, window_end FROM TABLE(TUMBLE(TABLE B, DESCRIPTOR(p_time), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;";
    let started = chrono::Utc::now().timestamp_millis();
    let out = run("proctime-windows", text);
    let ended = chrono::Utc::now().timestamp_millis();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json row"))
        .collect();
    assert!(!rows.is_empty(), "no window closed in three seconds");
    let ms = |v: &serde_json::Value| {
        chrono::NaiveDateTime::parse_from_str(v.as_str().expect("time"), "%Y-%m-%d %H:%M:%S%.f")
            .expect("timestamp")
            .and_utc()
            .timestamp_millis()
    };
    let mut total = 0;
    for r in &rows {
        let (start, end) = (ms(&r["window_start"]), ms(&r["window_end"]));
        assert_eq!(end - start, 1000, "{r}");
        assert_eq!(start % 1000, 0, "aligned to the second: {r}");
        assert!(
            start >= started - 1000 && end <= ended,
            "a window of this run's wall clock: {r}"
        );
        total += r["n"].as_i64().expect("count");
    }
    assert!(
        total > 0 && total < 1500,
        "the window open when the input ended is not fired (as in Flink): {total} of 1500"
    );
}
