//! Behaviour whose expected output is reasoned out by hand rather than taken
//! from Flink: late rows (Flink's periodic watermarks make them timing-dependent),
//! malformed input, and DataFusion aggregates beyond Flink. Each test states why
//! its expectation holds.

#[path = "support/own.rs"]
mod own;

use own::{assert_rows, run, table};

#[test]
fn late_row_is_dropped_once_its_window_fired_and_counted() {
    // Delay 2 s. After the row at 00:00:12 the watermark is 00:00:10, so [0, 10)
    // fires with the rows at 1 s and 5 s; the row at 8 s then belongs to a fired
    // window and is dropped. The row at 12.5 s is behind the watermark (13 s after
    // the row at 15 s) but its window [10, 20) is still open, so it counts (as in
    // Flink, lateness is judged by the window, not the row).
    let sql = table("t", "ts TIMESTAMP(3), v BIGINT", "late.jsonl", "2")
        + "SELECT window_start, window_end, COUNT(*) AS n, SUM(v) AS s \
           FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;";
    let (out, err, ok) = run("late", &sql);
    assert!(ok, "{err}");
    assert_rows(
        &out,
        r#"{"window_start": "2024-01-01 00:00:00", "window_end": "2024-01-01 00:00:10", "n": 2, "s": 3}
{"window_start": "2024-01-01 00:00:10", "window_end": "2024-01-01 00:00:20", "n": 3, "s": 52}
{"window_start": "2024-01-01 00:00:20", "window_end": "2024-01-01 00:00:30", "n": 1, "s": 64}"#,
    );
    assert!(err.contains("dropped 1 late row"), "stderr: {err}");
}

#[test]
fn late_row_is_kept_when_the_delay_covers_it() {
    // The same input with a 5 s delay: when the row at 8 s arrives the watermark is
    // 7 s, [0, 10) is still open, so nothing is late.
    let sql = table("t", "ts TIMESTAMP(3), v BIGINT", "late.jsonl", "5")
        + "SELECT window_start, COUNT(*) AS n, SUM(v) AS s \
           FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;";
    let (out, err, ok) = run("late_kept", &sql);
    assert!(ok, "{err}");
    assert_rows(
        &out,
        r#"{"window_start": "2024-01-01 00:00:00", "n": 3, "s": 11}
{"window_start": "2024-01-01 00:00:10", "n": 3, "s": 52}
{"window_start": "2024-01-01 00:00:20", "n": 1, "s": 64}"#,
    );
    assert!(!err.contains("late row"), "stderr: {err}");
}

#[test]
fn late_row_after_its_session_closed_is_dropped() {
    // Gap 5 s, no delay. Rows at 1 s and 3 s form the session [1 s, 8 s), which
    // closes when the row at 20 s moves the watermark to 20 s. The row at 2 s
    // would form [2 s, 7 s): it overlaps no open session and 7 s - 1 ms is behind
    // the watermark, so it is late.
    let sql = table("t", "ts TIMESTAMP(3), k STRING", "session_late.jsonl", "0")
        + "SELECT k, window_start, window_end, COUNT(*) AS n \
           FROM TABLE(SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY k, window_start, window_end;";
    let (out, err, ok) = run("session_late", &sql);
    assert!(ok, "{err}");
    assert_rows(
        &out,
        r#"{"k": "a", "window_start": "2024-01-01 00:00:01", "window_end": "2024-01-01 00:00:08", "n": 2}
{"k": "a", "window_start": "2024-01-01 00:00:20", "window_end": "2024-01-01 00:00:25", "n": 1}"#,
    );
    assert!(err.contains("dropped 1 late row"), "stderr: {err}");
}

#[test]
fn malformed_lines_are_skipped_counted_and_reported_with_line_numbers() {
    // Lines 2 (bad timestamp), 3 (not JSON) and 5 (a string for a BIGINT) are
    // malformed; line 4 is empty and ignored; lines 1 and 6 are rows.
    let sql = table("t", "ts TIMESTAMP(3), v BIGINT", "malformed.jsonl", "0") + "SELECT v FROM t;";
    let (out, err, ok) = run("malformed", &sql);
    assert!(ok, "{err}");
    assert_rows(&out, "{\"v\": 1}\n{\"v\": 4}");
    for line in [":2:", ":3:", ":5:"] {
        assert!(
            err.contains(&format!("malformed.jsonl{line}")),
            "no report of line {line}: {err}"
        );
    }
    assert!(
        !err.contains("malformed.jsonl:4:"),
        "the empty line is not malformed: {err}"
    );
    assert!(
        err.contains("skipped 3 malformed record(s)"),
        "stderr: {err}"
    );
}

#[test]
fn approximate_aggregates_beyond_flink() {
    // Five rows in one window: distinct s = {a, b, c}; v = 1..5. On so few values
    // approx_distinct is exact, and approx_percentile_cont(v, 0.5) is the median 3.
    let sql = table("t", "ts TIMESTAMP(3), s STRING, v DOUBLE", "approx.jsonl", "0")
        + "SELECT approx_distinct(s) AS d, approx_percentile_cont(v, 0.5) AS p, median(v) AS m \
           FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end;";
    let (out, err, ok) = run("approx", &sql);
    assert!(ok, "{err}");
    assert_rows(&out, r#"{"d": 3, "p": 3.0, "m": 3.0}"#);
}

#[test]
fn insert_into_filesystem_sink_writes_json_lines() {
    // INSERT INTO a filesystem sink writes the rows (here the 7 input rows' v
    // values, doubled) as JSON lines into part-0.json of the sink directory.
    let dir = std::env::temp_dir().join(format!("vigil-own-sink-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sql = table("t", "ts TIMESTAMP(3), v BIGINT", "late.jsonl", "0")
        + &format!(
            "CREATE TABLE out (w BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n\
             INSERT INTO out SELECT v * 2 FROM t;",
            dir.display()
        );
    let (out, err, ok) = run("sink", &sql);
    assert!(ok, "{err}");
    assert!(out.is_empty(), "an INSERT prints nothing: {out}");
    let written = std::fs::read_to_string(dir.join("part-0.json")).expect("sink file");
    assert_rows(
        &written,
        "{\"w\":2}\n{\"w\":4}\n{\"w\":8}\n{\"w\":16}\n{\"w\":32}\n{\"w\":64}\n{\"w\":128}",
    );
}

#[test]
fn insert_with_a_column_list_fills_the_listed_columns_and_nulls_the_rest() {
    // Flink's target column list: the query's first column goes to the first
    // listed column (b), its second to a; c, not listed, is NULL. The input is
    // the 7 rows of late.jsonl, v = 1, 2, 4, ..., 64.
    let dir = std::env::temp_dir().join(format!("vigil-own-cols-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = |cols: &str| {
        table("t", "ts TIMESTAMP(3), v BIGINT", "late.jsonl", "0")
            + &format!(
                "CREATE TABLE out (a BIGINT, b STRING, c INT{cols}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
                dir.display()
            )
    };
    let (_, err, ok) = run(
        "cols",
        &(sink("") + "INSERT INTO out (b, a) SELECT 'x', v * 2 FROM t;"),
    );
    assert!(ok, "{err}");
    let written = std::fs::read_to_string(dir.join("part-0.json")).expect("sink file");
    let expected: Vec<String> = [2, 4, 8, 16, 32, 64, 128]
        .iter()
        .map(|a| format!("{{\"a\":{a},\"b\":\"x\",\"c\":null}}"))
        .collect();
    assert_rows(&written, &expected.join("\n"));
    // What cannot be meant is refused, at the statement.
    for (insert, message) in [
        (
            "INSERT INTO out (b, d) SELECT 'x', v FROM t;",
            "'out' has no column 'd'",
        ),
        (
            "INSERT INTO out (a, a) SELECT v, v FROM t;",
            "column 'a' is listed twice",
        ),
        (
            "INSERT INTO out (a) SELECT v, v FROM t;",
            "the query produces 2 columns but sink 'out' takes 1 (a)",
        ),
    ] {
        let (_, err, ok) = run("cols-bad", &(sink("") + insert));
        assert!(!ok && err.contains(message), "{insert}: {err}");
    }
    let (_, err, ok) = run(
        "cols-not-null",
        &(sink(", d INT NOT NULL") + "INSERT INTO out (a) SELECT v FROM t;"),
    );
    assert!(!ok && err.contains("column 'd' is NOT NULL"), "{err}");
}

#[test]
fn avg_over_integers_truncates_like_flink() {
    // Flink's AVG over BIGINT returns BIGINT, truncated toward zero (helper runs of
    // Flink 2.3 confirmed (-3, 2, -7) -> -2). With a 5 s delay nothing is late:
    // [0, 10) averages (1, 2, 8) = 3.67 -> 3; [10, 20) (4, 16, 32) = 17.3 -> 17;
    // [20, 30) 64. HAVING sees the truncated value, so only [0, 10) passes `= 3`.
    let sql = table("t", "ts TIMESTAMP(3), v BIGINT", "late.jsonl", "5")
        + "SELECT window_start, AVG(v) AS a, AVG(CAST(v AS DOUBLE)) AS d \
           FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
           GROUP BY window_start, window_end HAVING AVG(v) = 3;";
    let (out, err, ok) = run("avg_int", &sql);
    assert!(ok, "{err}");
    assert_rows(
        &out,
        r#"{"window_start": "2024-01-01 00:00:00", "a": 3, "d": 3.6666666666666665}"#,
    );
}

#[test]
fn current_watermark_drops_the_rows_behind_it() {
    // Delay 2 s over late.jsonl (1, 5, 12, 8, 15, 12.5, 25 s). The assigner
    // emits a watermark before a row that could be late (at or behind the
    // watermark the rows before it allow): before 8 s (10 s, from 12 s) and
    // before 12.5 s (13 s, from 15 s). So 1, 5 and 12 s see none (NULL, kept),
    // 8 s sees 10 s (dropped), 15 s 10 s (kept), 12.5 s 13 s (dropped), 25 s
    // 13 s (kept).
    let sql = table("t", "ts TIMESTAMP(3), v BIGINT", "late.jsonl", "2")
        + "SELECT v, CURRENT_WATERMARK(ts) AS wm FROM t \
           WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts);";
    let (out, err, ok) = run("current_watermark", &sql);
    assert!(ok, "{err}");
    assert_rows(
        &out,
        r#"{"v": 1, "wm": null}
{"v": 2, "wm": null}
{"v": 4, "wm": null}
{"v": 16, "wm": "2024-01-01 00:00:10"}
{"v": 64, "wm": "2024-01-01 00:00:13"}"#,
    );
}
