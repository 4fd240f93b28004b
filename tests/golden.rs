//! The golden suite: every `tests/queries/<name>.sql` runs through
//! `vigil run --format json`, and its rows must equal `tests/golden/<name>.jsonl`,
//! which Apache Flink 2.3 produced on the same script and data (see
//! tests/golden/README.md). Every `tests/queries/errors/<name>.sql` must fail
//! with the message and position in `tests/golden/errors/<name>.err`.

#[path = "support/broker.rs"]
mod broker;
#[path = "support/compare.rs"]
mod compare;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// Writes the script with `{{DATA}}` replaced by the data directory.
fn materialise(sql: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(sql).expect("read query");
    let data = root().join("data");
    let text = text.replace("{{DATA}}", data.to_str().expect("utf-8 path"));
    let out = dir.join(sql.file_name().expect("file name"));
    std::fs::write(&out, text).expect("write query");
    out
}

fn vigil(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil")
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list queries")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    v.sort();
    v
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-golden-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs each query (with `settings` put before it) and compares its rows with
/// Flink's; returns the failures. With `must_log`, vigil runs with `-v` and
/// its log must contain that text.
fn check_golden(queries: &[PathBuf], settings: &str, must_log: Option<&str>) -> Vec<String> {
    check_golden_as(queries, settings, must_log, false)
}

/// As [`check_golden`]; with `fold`, every result is compared as the table its
/// changes leave (parallel instances interleave their changes differently
/// from one run to the next, as Flink's do, while the final table does not).
fn check_golden_as(
    queries: &[PathBuf],
    settings: &str,
    must_log: Option<&str>,
    fold: bool,
) -> Vec<String> {
    // A directory per call: the tests run at once and write the same names.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = tmpdir(&format!("run{call}"));
    let mut failures = vec![];
    for q in queries {
        let name = q
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let golden = root().join("golden").join(format!("{name}.jsonl"));
        let expected = match std::fs::read_to_string(&golden) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: no golden file {}: {e}", golden.display()));
                continue;
            }
        };
        let script = materialise(q, &tmp);
        if !settings.is_empty() {
            let text = std::fs::read_to_string(&script).expect("read script");
            std::fs::write(&script, format!("{settings}{text}")).expect("write script");
        }
        let path = script.to_str().expect("path");
        let args: &[&str] = match must_log {
            Some(_) => &["-v", "run", "--format", "json", path],
            None => &["run", "--format", "json", path],
        };
        let out = vigil(args);
        if !out.status.success() {
            failures.push(format!(
                "{name}: vigil failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        if let Some(text) = must_log {
            if !String::from_utf8_lossy(&out.stderr).contains(text) {
                failures.push(format!("{name}: the log lacks {text:?}"));
            }
        }
        let mut actual = String::from_utf8_lossy(&out.stdout).to_string();
        let mut expected = expected;
        // Results whose changelog depends on how streams interleave compare
        // as the tables they leave (`-- compare: final`, or upserted by key:
        // `-- compare: upsert(col, ...)`).
        let text = std::fs::read_to_string(q).unwrap_or_default();
        let upsert_key: Option<Vec<String>> = text
            .lines()
            .find_map(|l| l.strip_prefix("-- compare: upsert(")?.strip_suffix(')'))
            .map(|k| k.split(',').map(|c| c.trim().to_string()).collect());
        if fold || text.contains("-- compare: final") || upsert_key.is_some() {
            let key = upsert_key.as_deref();
            match (
                compare::final_table(&expected, key),
                compare::final_table(&actual, key),
            ) {
                (Ok(e), Ok(a)) => (expected, actual) = (e, a),
                (Err(e), _) => {
                    failures.push(format!("{name}: golden: {e}"));
                    continue;
                }
                (_, Err(e)) => {
                    failures.push(format!("{name}: vigil's changelog: {e}"));
                    continue;
                }
            }
        }
        // An ORDER BY's rows compare in order (`-- compare: ordered`).
        let compared = if text.contains("-- compare: ordered") {
            compare::compare_jsonl_ordered(&expected, &actual)
        } else {
            compare::compare_jsonl(&expected, &actual)
        };
        match compared {
            Ok(None) => {}
            Ok(Some(diff)) => failures.push(format!("{name}: {diff}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    failures
}

#[test]
fn golden_queries_match_flink() {
    let queries = cases(&root().join("queries"));
    assert!(
        queries.len() >= 25,
        "expected at least 25 golden cases, found {}",
        queries.len()
    );
    let failures = check_golden(&queries, "", None);
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}

/// The TUMBLE, HOP and CUMULATE aggregation cases.
fn window_aggregation_cases() -> Vec<PathBuf> {
    let queries: Vec<PathBuf> = cases(&root().join("queries"))
        .into_iter()
        .filter(|q| {
            let text = std::fs::read_to_string(q).unwrap_or_default();
            text.contains("GROUP BY")
                && ["TUMBLE(", "HOP(", "CUMULATE("]
                    .iter()
                    .any(|w| text.contains(w))
        })
        .collect();
    assert!(
        queries.len() >= 10,
        "expected at least 10 window cases, found {}",
        queries.len()
    );
    queries
}

fn assert_none_failed(failures: &[String], of: usize, what: &str) {
    assert!(
        failures.is_empty(),
        "{} of {of} {what} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The window aggregations again with a window-state cache of one byte:
/// every batch spills every open window to RocksDB, and the rows must still
/// be Flink's.
#[test]
fn window_golden_queries_match_flink_when_state_spills() {
    let queries = window_aggregation_cases();
    let failures = check_golden(
        &queries,
        "SET 'state.backend.cache-size' = '1';\n",
        Some("spilling to RocksDB"),
    );
    assert_none_failed(&failures, queries.len(), "window cases with spilling");
}

/// Every case again with a one-byte state cache (every group, kept row and
/// open window is written to RocksDB and read back when next used) and three
/// instances of every keyed operator: the result tables must still be
/// Flink's.
#[test]
fn golden_queries_match_flink_with_a_one_byte_cache_in_parallel() {
    let queries = cases(&root().join("queries"));
    let failures = check_golden_as(
        &queries,
        "SET 'state.backend.cache-size' = '1';\nSET 'parallelism.default' = '3';\n",
        None,
        true,
    );
    assert_none_failed(
        &failures,
        queries.len(),
        "cases with a one-byte cache at parallelism 3",
    );
}

/// The window aggregations again with three parallel instances per
/// aggregation (rows exchanged by key group): the rows must still be Flink's.
/// (GROUPING SETS, CUBE and ROLLUP run as one instance: a row has a key per set.)
#[test]
fn window_golden_queries_match_flink_in_parallel() {
    let queries: Vec<PathBuf> = window_aggregation_cases()
        .into_iter()
        .filter(|q| {
            let text = std::fs::read_to_string(q).unwrap_or_default();
            !["GROUPING SETS", "CUBE", "ROLLUP"]
                .iter()
                .any(|g| text.contains(g))
        })
        .collect();
    let failures = check_golden(
        &queries,
        "SET 'parallelism.default' = '3';\n",
        Some("running parallel instances"),
    );
    assert_none_failed(&failures, queries.len(), "window cases at parallelism 3");
}

/// The MATCH_RECOGNIZE cases with PARTITION BY again over three parallel
/// instances (partitions split by key): the same rows as Flink's.
#[test]
fn pattern_golden_queries_match_flink_in_parallel() {
    let queries: Vec<PathBuf> = cases(&root().join("queries"))
        .into_iter()
        .filter(|q| {
            let text = std::fs::read_to_string(q).unwrap_or_default();
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect();
            code.contains("MATCH_RECOGNIZE") && code.contains("PARTITION BY")
        })
        .collect();
    assert!(
        queries.len() >= 10,
        "expected at least 10 pattern cases, found {}",
        queries.len()
    );
    let failures = check_golden(
        &queries,
        "SET 'parallelism.default' = '3';\n",
        Some("running parallel instances"),
    );
    assert_none_failed(&failures, queries.len(), "pattern cases at parallelism 3");
}

/// Keyed cases of every kind of stateful operator: windows, joins (regular,
/// interval, window, temporal), ranks, dedup, OVER, patterns.
const KAFKA_EXCHANGE_CASES: &[&str] = &[
    "tumble_count_sum",
    "hop_partitioned_count",
    "session_partitioned",
    "cumulate_partitioned",
    "tumble_multi_keys",
    "ij01_inner",
    "ij03_full",
    "wj_inner",
    "wj_full",
    "wj_anti_not_exists",
    "cl_join_inner",
    "cl_join_full_aggregates",
    "cl_group_count",
    "cl_topn_rownum",
    "cl_dedup_last",
    "cl_distinct",
    "temporal_join_inner",
    "temporal_join_left",
    "over_rows_bounded",
    "over_range_interval",
    "wtopn_per_supplier",
    "cl_topn_over_aggregate",
    "mr01_vshape_skip_to_last",
    "mr11_multikey_partition",
    "mr_absence_one_stream",
    "nexmark_q5_hot_items",
    "nexmark_q8_new_users",
];

/// The keyed cases again at parallelism 3 with every keyed exchange
/// through Kafka (`'execution.exchange' = 'kafka'`, a real broker): rows go
/// to a topic partition per key group (16 of them, so that the broker holds
/// few partitions) and come back with the watermarks in
/// band, and the results are still Flink's.
#[test]
fn keyed_golden_queries_match_flink_through_the_kafka_exchange() {
    let broker = broker::Kafka::start();
    let queries: Vec<PathBuf> = cases(&root().join("queries"))
        .into_iter()
        .filter(|q| {
            q.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| KAFKA_EXCHANGE_CASES.contains(&s))
        })
        .collect();
    assert_eq!(
        queries.len(),
        KAFKA_EXCHANGE_CASES.len(),
        "every case exists"
    );
    let settings = format!(
        "SET 'parallelism.default' = '3';\nSET 'pipeline.max-parallelism' = '16';\nSET 'execution.exchange' = 'kafka';\nSET 'execution.exchange.kafka.bootstrap-servers' = '{}';\n",
        broker.bootstrap
    );
    let failures = check_golden_as(
        &queries,
        &settings,
        Some("keyed exchanges go through Kafka"),
        true,
    );
    assert_none_failed(&failures, queries.len(), "cases through the Kafka exchange");
}

#[test]
fn error_cases_report_message_and_position() {
    let tmp = tmpdir("err");
    let queries = cases(&root().join("queries").join("errors"));
    assert!(!queries.is_empty());
    let mut failures = vec![];
    for q in &queries {
        let name = q
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let expect_file = root()
            .join("golden")
            .join("errors")
            .join(format!("{name}.err"));
        let expected = std::fs::read_to_string(&expect_file)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_file.display()));
        let script = materialise(q, &tmp);
        let out = vigil(&["run", "--format", "json", script.to_str().expect("path")]);
        let stderr =
            String::from_utf8_lossy(&out.stderr).replace(script.to_str().expect("path"), "SCRIPT");
        if out.status.success() {
            failures.push(format!("{name}: succeeded, expected an error"));
            continue;
        }
        if !out.stdout.is_empty() {
            failures.push(format!(
                "{name}: printed rows although planning should fail first"
            ));
        }
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            if !stderr.contains(line.trim()) {
                failures.push(format!(
                    "{name}: stderr lacks {:?}; it was:\n{stderr}",
                    line.trim()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
