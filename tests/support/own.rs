#![allow(dead_code)]
//! Helpers of the tests whose expectations are reasoned out by hand: run a
//! script through `vigil run --format json` over data in tests/own, and
//! compare its rows.

#[path = "compare.rs"]
mod compare;

use std::path::PathBuf;
use std::process::Command;

/// The path of `file` in tests/own.
pub fn own(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/own")
        .join(file)
        .to_str()
        .expect("utf-8")
        .to_string()
}

/// Runs `sql` with `vigil run --format json`; returns (stdout, stderr, success).
pub fn run(name: &str, sql: &str) -> (String, String, bool) {
    let path = std::env::temp_dir().join(format!("vigil-own-{}-{name}.sql", std::process::id()));
    std::fs::write(&path, sql).expect("write script");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--format", "json", path.to_str().expect("path")])
        .output()
        .expect("run vigil");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// The rows are the same, in any order.
pub fn assert_rows(actual: &str, expected: &str) {
    if let Some(diff) = compare::compare_jsonl(expected, actual).expect("valid JSON") {
        panic!("rows differ: {diff}\nactual:\n{actual}");
    }
}

/// A table over tests/own/`file` whose watermark trails `ts` by `delay` seconds.
pub fn table(name: &str, cols: &str, file: &str, delay: &str) -> String {
    format!(
        "CREATE TABLE {name} ({cols}, WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
        own(file)
    )
}

/// `SELECT * FROM t MATCH_RECOGNIZE (body)` over tests/own/`file`.
pub fn match_recognize(file: &str, cols: &str, body: &str) -> String {
    table("t", cols, file, "1") + "SELECT * FROM t MATCH_RECOGNIZE (" + body + ");"
}
