//! Behaviour whose expected output is reasoned out by hand rather than taken
//! from Flink: late rows (Flink's periodic watermarks make them timing-dependent),
//! malformed input, and DataFusion aggregates beyond Flink. Each test states why
//! its expectation holds.

#[path = "support/compare.rs"]
mod compare;

use std::path::PathBuf;
use std::process::Command;

fn own(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/own")
        .join(file)
        .to_str()
        .expect("utf-8")
        .to_string()
}

/// Runs `sql` with `vigil run --format json`; returns (stdout, stderr, success).
fn run(name: &str, sql: &str) -> (String, String, bool) {
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

fn assert_rows(actual: &str, expected: &str) {
    if let Some(diff) = compare::compare_jsonl(expected, actual).expect("valid JSON") {
        panic!("rows differ: {diff}\nactual:\n{actual}");
    }
}

fn table(name: &str, cols: &str, file: &str, delay: &str) -> String {
    format!(
        "CREATE TABLE {name} ({cols}, WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
        own(file)
    )
}

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

/// A MATCH_RECOGNIZE over `file` (columns `cols`, watermark 1 s behind `ts`).
fn match_recognize(file: &str, cols: &str, body: &str) -> String {
    table("t", cols, file, "1") + "SELECT * FROM t MATCH_RECOGNIZE (" + body + ");"
}

#[test]
fn absence_after_a_greedy_prefix_fires_at_its_deadline() {
    // Two or more failed logins with no success within a minute of the first.
    // ann: fails at 0, 10, 20 s; her success at 1:30 is too late, so the alert
    // holds all three (the greedy F{2,} ends where no F follows) and is timed
    // at the last instant of the minute. The matches starting at 10 s and 20 s
    // are within the first's rows, which SKIP PAST LAST ROW discards.
    // bob: fails at 21 and 22 s, success at 50 s: no alert.
    // cy: one fail then a success (F{2,} never completes); later two fails
    // and then the input ends: the final watermark passes the deadline.
    let sql = match_recognize(
        "mr_logins.jsonl",
        "user_name STRING, ok BOOLEAN, ts TIMESTAMP(3)",
        "PARTITION BY user_name ORDER BY ts \
         MEASURES FIRST(F.ts) AS first_fail, COUNT(F.ts) AS fails, MATCH_ROWTIME() AS alert_at \
         ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW \
         PATTERN (F{2,} NOT S) WITHIN INTERVAL '1' MINUTE \
         DEFINE F AS NOT F.ok, S AS S.ok",
    );
    let (out, err, ok) = run("logins", &sql);
    assert!(ok, "{err}");
    assert_rows(
        &out,
        r#"{"user_name":"ann","first_fail":"2026-01-01 00:00:00","fails":3,"alert_at":"2026-01-01 00:00:59.999"}
{"user_name":"cy","first_fail":"2026-01-01 00:03:00","fails":2,"alert_at":"2026-01-01 00:03:59.999"}"#,
    );
}

#[test]
fn timed_out_partial_matches_are_reported_with_timeouts() {
    // A B C within 10 s. id 1 completes. id 2 stops after A B: when the
    // watermark passes 00:00:10.999 it is reported with its rows so far. id 3's
    // A is followed by an x, which ends the partial match (not a timeout).
    // id 4's B comes 11 s after A: A alone times out. id 5's A is still open
    // when the input ends. Timed-out rows have no MATCH_NUMBER().
    let sql = match_recognize(
        "mr_timeouts.jsonl",
        "id BIGINT, kind STRING, ts TIMESTAMP(3)",
        "PARTITION BY id ORDER BY ts \
         MEASURES FIRST(A.ts) AS a_ts, LAST(B.ts) AS b_ts, MATCH_ROWTIME() AS t, \
                  MATCH_TIMED_OUT() AS timed_out, MATCH_NUMBER() AS n, CLASSIFIER() AS last_var \
         ONE ROW PER MATCH WITH TIMEOUTS AFTER MATCH SKIP PAST LAST ROW \
         PATTERN (A B C) WITHIN INTERVAL '10' SECOND \
         DEFINE A AS A.kind = 'a', B AS B.kind = 'b', C AS C.kind = 'c'",
    );
    let (out, err, ok) = run("timeouts", &sql);
    assert!(ok, "{err}");
    assert_rows(
        &out,
        r#"{"id":1,"a_ts":"2026-01-01 00:00:00","b_ts":"2026-01-01 00:00:02","t":"2026-01-01 00:00:04","timed_out":false,"n":1,"last_var":"C"}
{"id":2,"a_ts":"2026-01-01 00:00:01","b_ts":"2026-01-01 00:00:03","t":"2026-01-01 00:00:10.999","timed_out":true,"n":null,"last_var":"B"}
{"id":4,"a_ts":"2026-01-01 00:00:20","b_ts":null,"t":"2026-01-01 00:00:29.999","timed_out":true,"n":null,"last_var":"A"}
{"id":5,"a_ts":"2026-01-01 00:00:40","b_ts":null,"t":"2026-01-01 00:00:49.999","timed_out":true,"n":null,"last_var":"A"}"#,
    );
}

#[test]
fn a_greedy_last_element_ends_at_the_next_row_or_the_end_of_input() {
    // A B+ with B rising. id 1: 10 11 12 then 5 ends the first match (5 is not
    // a rise); 5 6 is still rising when the input ends, and is then complete.
    // id 2: 1 2 3, complete at the end of the input. (Flink refuses a greedy
    // last element.) MATCH_ROWTIME() is the time of the row that ended the
    // match (00:00:04 for the first: Flink stamps every match with the row it
    // processes), or the match's last row when the input ended.
    let sql = match_recognize(
        "mr_greedy_last.jsonl",
        "id BIGINT, price BIGINT, ts TIMESTAMP(3)",
        "PARTITION BY id ORDER BY ts \
         MEASURES FIRST(A.price) AS start_price, LAST(B.price) AS top, COUNT(B.price) AS ups, \
                  MATCH_ROWTIME() AS t \
         ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW \
         PATTERN (A B+) \
         DEFINE B AS B.price > PREV(B.price)",
    );
    let (out, err, ok) = run("greedy_last", &sql);
    assert!(ok, "{err}");
    assert_rows(
        &out,
        r#"{"id":1,"start_price":10,"top":12,"ups":2,"t":"2026-01-01 00:00:04"}
{"id":1,"start_price":5,"top":6,"ups":1,"t":"2026-01-01 00:00:05"}
{"id":2,"start_price":1,"top":3,"ups":2,"t":"2026-01-01 00:00:30"}"#,
    );
}

#[test]
fn skip_targets_follow_trino_including_union_variables() {
    // Trino's TestRowPatternMatching (T-TR-04 in cep-semantics.md §7.8), read
    // as ONE ROW PER MATCH: over 90 80 70 80 70 80, A B+ C+ D? (falling then
    // rising, D never) matches ids 1-4; SKIP TO NEXT ROW adds 2-4 and 4-6;
    // skipping to C, to the last B or to the union U = (C, D) resumes at id 4,
    // which starts 4-6.
    let run_skip_raw = |skip: &str| {
        let sql = match_recognize(
            "mr_trino_skip.jsonl",
            "id BIGINT, `value` BIGINT, ts TIMESTAMP(3)",
            &format!(
                "ORDER BY ts MEASURES MATCH_NUMBER() AS m, FIRST(id) AS first_id, LAST(id) AS last_id \
                 ONE ROW PER MATCH AFTER MATCH SKIP {skip} \
                 PATTERN (A B+ C+ D?) SUBSET U = (C, D) \
                 DEFINE B AS B.`value` < PREV(B.`value`), C AS C.`value` > PREV(C.`value`), D AS false"
            ),
        );
        run(&skip.replace(' ', "_"), &sql)
    };
    let run_skip = |skip: &str| {
        let (out, err, ok) = run_skip_raw(skip);
        assert!(ok, "{skip}: {err}");
        out
    };
    let first = r#"{"m":1,"first_id":1,"last_id":4}"#;
    let second = r#"{"m":2,"first_id":4,"last_id":6}"#;
    assert_rows(&run_skip("PAST LAST ROW"), first);
    assert_rows(
        &run_skip("TO NEXT ROW"),
        &format!("{first}\n{{\"m\":2,\"first_id\":2,\"last_id\":4}}\n{{\"m\":3,\"first_id\":4,\"last_id\":6}}"),
    );
    for skip in ["TO FIRST C", "TO LAST B", "TO B", "TO U"] {
        assert_rows(&run_skip(skip), &format!("{first}\n{second}"));
    }
    // Trino's runtime errors, word for word.
    for (skip, message) in [
        (
            "TO A",
            "AFTER MATCH SKIP failed: cannot skip to first row of match",
        ),
        (
            "TO D",
            "AFTER MATCH SKIP failed: pattern variable is not present in match",
        ),
    ] {
        let (_, err, ok) = run_skip_raw(skip);
        assert!(!ok && err.contains(message), "{skip}: {err}");
    }
}

#[test]
fn physical_navigation_reaches_rows_outside_the_match() {
    // Trino's TestRowPatternMatching (T-TR-05, "outside the match"): over
    // 10 20 30 30 40, A B with B equal to the row before matches ids 3-4.
    // PREV(B.value, n) goes back from id 4: 3 rows to 10, 2 to 20, 4 to no
    // row. NEXT(B.value, 1) is id 5 (40): the match waits for that row before
    // it is emitted; NEXT(B.value, 2) does not exist when the input ends.
    let sql = match_recognize(
        "mr_trino_nav.jsonl",
        "id BIGINT, `value` BIGINT, ts TIMESTAMP(3)",
        "ORDER BY ts MEASURES PREV(B.`value`, 4) AS p4, PREV(B.`value`, 3) AS p3, \
         PREV(B.`value`, 2) AS p2, NEXT(B.`value`, 1) AS n1, NEXT(B.`value`, 2) AS n2 \
         ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (A B) \
         DEFINE B AS B.`value` = PREV(B.`value`)",
    );
    let (out, err, ok) = run("trino_nav", &sql);
    assert!(ok, "{err}");
    assert_rows(&out, r#"{"p4":null,"p3":10,"p2":20,"n1":40,"n2":null}"#);
}

#[test]
fn classifier_of_a_union_variable() {
    // Trino's TestRowPatternMatching (T-TR-06), read as ONE ROW PER MATCH:
    // over 90 80 70 80, (L | H) A matches 90 (H) 80 (A) and 70 (L) 80 (A).
    // CLASSIFIER(U) names the variable of U = (L, H) that the match's last U
    // row has; CLASSIFIER(W), W = (A, L, H), that of its last row: A.
    let sql = match_recognize(
        "mr_trino_classifier.jsonl",
        "id BIGINT, `value` BIGINT, ts TIMESTAMP(3)",
        "ORDER BY ts MEASURES MATCH_NUMBER() AS m, CLASSIFIER(U) AS u, CLASSIFIER(W) AS w, \
         CLASSIFIER() AS c ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW \
         PATTERN ((L | H) A) SUBSET U = (L, H), W = (A, L, H) \
         DEFINE A AS A.`value` = 80, L AS L.`value` < 80, H AS H.`value` > 80",
    );
    let (out, err, ok) = run("trino_classifier", &sql);
    assert!(ok, "{err}");
    assert_rows(
        &out,
        r#"{"m":1,"u":"H","w":"A","c":"A"}
{"m":2,"u":"L","w":"A","c":"A"}"#,
    );
}
