//! MATCH_RECOGNIZE beyond Flink, checked against expectations reasoned out by
//! hand or taken from Trino's TestRowPatternMatching (T-TR-* in
//! ../shared/reference/cep-semantics.md §7.8): absence, timeouts, greedy
//! tails, the standard's pattern syntax, ALL ROWS PER MATCH and its output
//! modes. Flink has none of these, so its oracle cannot produce goldens.

#[path = "support/own.rs"]
mod own;

use own::{assert_rows, match_recognize, run};

/// Columns of the Trino inputs: (id, value), one second apart.
const TRINO_COLS: &str = "id BIGINT, `value` BIGINT, ts TIMESTAMP(3)";

/// Runs `body` over a Trino input with `SELECT columns`; its rows (compared
/// as multisets: the order of rows from separate batches is not fixed once
/// stateless operators run in parallel).
fn trino(name: &str, file: &str, columns: &str, body: &str) -> String {
    let sql = match_recognize(file, TRINO_COLS, body).replacen(
        "SELECT *",
        &format!("SELECT {columns}"),
        1,
    );
    let (out, err, ok) = run(name, &sql);
    assert!(ok, "{name}: {err}");
    out
}

/// Trino's usual measures, ALL ROWS PER MATCH, SKIP PAST LAST ROW, with
/// `pattern` and `define`: rows (id, m, val, label) in order.
fn trino_all_rows(file: &str, pattern: &str, define: &str) -> String {
    let body = format!(
        "ORDER BY ts MEASURES MATCH_NUMBER() AS m, RUNNING LAST(`value`) AS val, CLASSIFIER() AS label \
         ALL ROWS PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN {pattern} {define}"
    );
    let name: String = pattern
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    trino(
        &format!("all-{name}-{}", define.len()),
        file,
        "id, m, val, label",
        &body,
    )
}

/// An output row of Trino's tests: (id, match number, value, label).
type Row<'a> = (i64, Option<i64>, Option<i64>, Option<&'a str>);

/// (id, m, val, label) rows as JSON lines.
fn rows(rs: &[Row<'_>]) -> String {
    let j = |v: Option<i64>| v.map_or("null".to_string(), |v| v.to_string());
    rs.iter()
        .map(|(id, m, val, label)| {
            let label = label.map_or("null".to_string(), |l| format!("\"{l}\""));
            format!(
                r#"{{"id":{id},"m":{},"val":{},"label":{label}}}"#,
                j(*m),
                j(*val)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn all_rows_per_match_shows_each_row_with_running_measures() {
    // T-TR-01: a V shape, A B+ C+; the greedy C+ ends where a row does not
    // rise (id 6), then 6-8 matches until the input ends.
    let out = trino_all_rows(
        "mr_trino_vshape.jsonl",
        "(A B+ C+)",
        "DEFINE B AS B.`value` < PREV(B.`value`), C AS C.`value` > PREV(C.`value`)",
    );
    let expected = rows(&[
        (1, Some(1), Some(90), Some("A")),
        (2, Some(1), Some(80), Some("B")),
        (3, Some(1), Some(70), Some("B")),
        (4, Some(1), Some(80), Some("C")),
        (5, Some(1), Some(90), Some("C")),
        (6, Some(2), Some(50), Some("A")),
        (7, Some(2), Some(40), Some("B")),
        (8, Some(2), Some(60), Some("C")),
    ]);
    assert_rows(&out, &expected);
}

#[test]
fn excluded_rows_are_matched_but_not_shown() {
    // The V shape again with the falling rows excluded: {- B+ -} still has to
    // match, and the rising rows' running LAST still sees the whole prefix.
    let out = trino_all_rows(
        "mr_trino_vshape.jsonl",
        "(A {- B+ -} C+)",
        "DEFINE B AS B.`value` < PREV(B.`value`), C AS C.`value` > PREV(C.`value`)",
    );
    let expected = rows(&[
        (1, Some(1), Some(90), Some("A")),
        (4, Some(1), Some(80), Some("C")),
        (5, Some(1), Some(90), Some("C")),
        (6, Some(2), Some(50), Some("A")),
        (8, Some(2), Some(60), Some("C")),
    ]);
    assert_rows(&out, &expected);
}

#[test]
fn pattern_syntax_of_the_standard() {
    // T-TR-02 over 90 80 70 70: empty patterns, anchors, alternation (leftmost
    // preferred), PERMUTE (lexicographic), greedy and reluctant quantifiers
    // that may match empty. An empty match shows its row with NULL measures
    // and still takes a MATCH_NUMBER.
    let file = "mr_trino_4.jsonl";
    let empty_1_to_4 = rows(&[
        (1, Some(1), None, None),
        (2, Some(2), None, None),
        (3, Some(3), None, None),
        (4, Some(4), None, None),
    ]);
    let a_true = "DEFINE A AS true";
    let le = "DEFINE B AS B.`value` <= PREV(B.`value`)";
    let cases: Vec<(&str, &str, String)> = vec![
        ("(() | A)", a_true, empty_1_to_4.clone()),
        ("(^A)", a_true, rows(&[(1, Some(1), Some(90), Some("A"))])),
        ("(A$)", a_true, rows(&[(4, Some(1), Some(70), Some("A"))])),
        ("(A^)", a_true, String::new()),
        ("(^A^)", a_true, String::new()),
        ("($A)", a_true, String::new()),
        ("($A $)", a_true, String::new()),
        (
            "(A B C)",
            "DEFINE B AS B.`value` < PREV(B.`value`), C AS C.`value` = PREV(C.`value`)",
            rows(&[
                (2, Some(1), Some(80), Some("A")),
                (3, Some(1), Some(70), Some("B")),
                (4, Some(1), Some(70), Some("C")),
            ]),
        ),
        (
            "(B | C | A)",
            "DEFINE B AS B.`value` < PREV(B.`value`), C AS C.`value` <= PREV(C.`value`)",
            rows(&[
                (1, Some(1), Some(90), Some("A")),
                (2, Some(2), Some(80), Some("B")),
                (3, Some(3), Some(70), Some("B")),
                (4, Some(4), Some(70), Some("C")),
            ]),
        ),
        (
            "(PERMUTE(B, C))",
            "DEFINE B AS B.`value` < PREV(B.`value`), C AS C.`value` < PREV(C.`value`)",
            rows(&[
                (2, Some(1), Some(80), Some("B")),
                (3, Some(1), Some(70), Some("C")),
            ]),
        ),
        (
            "(B*)",
            le,
            rows(&[
                (1, Some(1), None, None),
                (2, Some(2), Some(80), Some("B")),
                (3, Some(2), Some(70), Some("B")),
                (4, Some(2), Some(70), Some("B")),
            ]),
        ),
        ("(B*?)", le, empty_1_to_4.clone()),
        (
            "(B+?)",
            le,
            rows(&[
                (2, Some(1), Some(80), Some("B")),
                (3, Some(2), Some(70), Some("B")),
                (4, Some(3), Some(70), Some("B")),
            ]),
        ),
        ("(B??)", le, empty_1_to_4.clone()),
        (
            "(B{2,}?)",
            le,
            rows(&[
                (2, Some(1), Some(80), Some("B")),
                (3, Some(1), Some(70), Some("B")),
            ]),
        ),
        (
            "(B{,2})",
            le,
            rows(&[
                (1, Some(1), None, None),
                (2, Some(2), Some(80), Some("B")),
                (3, Some(2), Some(70), Some("B")),
                (4, Some(3), Some(70), Some("B")),
            ]),
        ),
    ];
    let mut failures = vec![];
    for (pattern, define, expected) in cases {
        let out = trino_all_rows(file, pattern, define);
        // As multisets: rows of separate batches may come in either order
        // after parallel stateless operators.
        let parse = |s: &str| -> Vec<String> {
            let mut v: Vec<String> = s
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .expect("valid JSON")
                        .to_string()
                })
                .collect();
            v.sort();
            v
        };
        if parse(&out) != parse(&expected) {
            failures.push(format!("{pattern}:\n got\n{out}\n want\n{expected}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn output_modes_one_row_all_rows_omit_empty_unmatched() {
    // T-TR-03 over 90 80 70 70 with B falling: rows (m, val, label).
    let run_mode = |mode: &str, pattern: &str| {
        let body = format!(
            "ORDER BY ts MEASURES MATCH_NUMBER() AS m, RUNNING LAST(`value`) AS val, CLASSIFIER() AS label \
             {mode} AFTER MATCH SKIP PAST LAST ROW PATTERN {pattern} \
             DEFINE B AS B.`value` < PREV(B.`value`)"
        );
        let name: String = format!("{mode}{pattern}")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        trino(&name, "mr_trino_4.jsonl", "m, val, label", &body)
    };
    let r = |m: Option<i64>, val: Option<i64>, label: Option<&str>| {
        let j = |v: Option<i64>| v.map_or("null".to_string(), |v| v.to_string());
        let label = label.map_or("null".to_string(), |l| format!("\"{l}\""));
        format!(r#"{{"m":{},"val":{},"label":{label}}}"#, j(m), j(val))
    };
    let (null, b) = (None, Some("B"));
    assert_rows(
        &run_mode("ONE ROW PER MATCH", "(B*)"),
        &[
            r(Some(1), None, null),
            r(Some(2), Some(70), b),
            r(Some(3), None, null),
        ]
        .join("\n"),
    );
    assert_rows(
        &run_mode("ONE ROW PER MATCH", "(B+)"),
        &r(Some(1), Some(70), b),
    );
    assert_rows(
        &run_mode("ALL ROWS PER MATCH", "(B*)"),
        &[
            r(Some(1), None, null),
            r(Some(2), Some(80), b),
            r(Some(2), Some(70), b),
            r(Some(3), None, null),
        ]
        .join("\n"),
    );
    assert_rows(
        &run_mode("ALL ROWS PER MATCH OMIT EMPTY MATCHES", "(B*)"),
        &[r(Some(2), Some(80), b), r(Some(2), Some(70), b)].join("\n"),
    );
    assert_rows(
        &run_mode("ALL ROWS PER MATCH WITH UNMATCHED ROWS", "(B+)"),
        &[
            r(None, None, null),
            r(Some(1), Some(80), b),
            r(Some(1), Some(70), b),
            r(None, None, null),
        ]
        .join("\n"),
    );
}

#[test]
fn running_and_final_navigation_per_row() {
    // T-TR-05 over 10 20 30, A+ with A always true, ALL ROWS PER MATCH: each
    // row's measures as of that row (RUNNING, the default) or of the whole
    // match (FINAL). FIRST counts over the whole match, as in Trino.
    let body =
        "ORDER BY ts MEASURES `value` AS v, LAST(`value`) AS l, RUNNING LAST(`value`) AS rl, \
                FINAL LAST(`value`) AS fl, FIRST(`value`) AS f, FINAL FIRST(`value`) AS ff, \
                FINAL LAST(`value`, 2) AS fl2, FIRST(`value`, 2) AS f2, LAST(`value`, 10) AS l10, \
                PREV(`value`) AS p, NEXT(`value`) AS n, NEXT(FIRST(`value`), 2) AS nf2, \
                RUNNING SUM(`value`) AS rs, FINAL SUM(`value`) AS fs \
                ALL ROWS PER MATCH PATTERN (A+) DEFINE A AS true";
    let out = trino(
        "nav-all-rows",
        "mr_trino_3.jsonl",
        "id, v, l, rl, fl, f, ff, fl2, f2, l10, p, n, nf2, rs, fs",
        body,
    );
    let expected = [
        r#"{"id":1,"v":10,"l":10,"rl":10,"fl":30,"f":10,"ff":10,"fl2":10,"f2":30,"l10":null,"p":null,"n":20,"nf2":30,"rs":10,"fs":60}"#,
        r#"{"id":2,"v":20,"l":20,"rl":20,"fl":30,"f":10,"ff":10,"fl2":10,"f2":30,"l10":null,"p":10,"n":30,"nf2":30,"rs":30,"fs":60}"#,
        r#"{"id":3,"v":30,"l":30,"rl":30,"fl":30,"f":10,"ff":10,"fl2":10,"f2":30,"l10":null,"p":20,"n":null,"nf2":30,"rs":60,"fs":60}"#,
    ]
    .join("\n");
    assert_rows(&out, &expected);
}

#[test]
fn union_variable_classifier_per_row() {
    // T-TR-06 over 90 80 70 80: (L | H) A with U = (L, H), W = (A, L, H).
    let body = "ORDER BY ts MEASURES MATCH_NUMBER() AS m, RUNNING LAST(`value`) AS val, \
                CLASSIFIER(U) AS cu, CLASSIFIER(W) AS cw \
                ALL ROWS PER MATCH PATTERN ((L | H) A) SUBSET U = (L, H), W = (A, L, H) \
                DEFINE A AS A.`value` = 80, L AS L.`value` < 80, H AS H.`value` > 80";
    let out = trino(
        "classifier-all-rows",
        "mr_trino_classifier.jsonl",
        "id, m, val, cu, cw",
        body,
    );
    let expected = [
        r#"{"id":1,"m":1,"val":90,"cu":"H","cw":"H"}"#,
        r#"{"id":2,"m":1,"val":80,"cu":"H","cw":"A"}"#,
        r#"{"id":3,"m":2,"val":70,"cu":"L","cw":"L"}"#,
        r#"{"id":4,"m":2,"val":80,"cu":"L","cw":"A"}"#,
    ]
    .join("\n");
    assert_rows(&out, &expected);
}

#[test]
fn unmatched_rows_with_skip_to_next_row() {
    // T-TR-07 over 100 100 90 80 70 100: A B{2} with B falling, SKIP TO NEXT
    // ROW, so matches overlap (ids 2-4, then 3-5); ids 1 and 6 belong to no
    // match and come with NULL measures, in order.
    let body = "ORDER BY ts MEASURES MATCH_NUMBER() AS m, CLASSIFIER() AS label \
                ALL ROWS PER MATCH WITH UNMATCHED ROWS AFTER MATCH SKIP TO NEXT ROW \
                PATTERN (A B{2}) DEFINE B AS B.`value` < PREV(B.`value`)";
    let out = trino(
        "unmatched",
        "mr_trino_unmatched.jsonl",
        "id, m, `value`, label",
        body,
    );
    let expected = [
        r#"{"id":1,"m":null,"value":100,"label":null}"#,
        r#"{"id":2,"m":1,"value":100,"label":"A"}"#,
        r#"{"id":3,"m":1,"value":90,"label":"B"}"#,
        r#"{"id":4,"m":1,"value":80,"label":"B"}"#,
        r#"{"id":3,"m":2,"value":90,"label":"A"}"#,
        r#"{"id":4,"m":2,"value":80,"label":"B"}"#,
        r#"{"id":5,"m":2,"value":70,"label":"B"}"#,
        r#"{"id":6,"m":null,"value":100,"label":null}"#,
    ]
    .join("\n");
    assert_rows(&out, &expected);
}

#[test]
fn all_rows_output_columns_follow_the_standard() {
    // Partition columns, ORDER BY columns, measures, then the rest of the
    // input in its order (SQL:2016 via Calcite's CALCITE-1909 quote).
    let sql = match_recognize(
        "mr_trino_4.jsonl",
        TRINO_COLS,
        "ORDER BY ts MEASURES MATCH_NUMBER() AS m ALL ROWS PER MATCH PATTERN (A) DEFINE A AS A.id = 2",
    );
    let (out, err, ok) = run("all-rows-columns", &sql);
    assert!(ok, "{err}");
    let line = out.lines().next().expect("one row");
    let keys: Vec<&str> = ["\"ts\"", "\"m\"", "\"id\"", "\"value\""]
        .into_iter()
        .filter(|k| line.contains(k))
        .collect();
    assert_eq!(keys.len(), 4, "{line}");
    let at = |k: &str| line.find(k).expect("key");
    assert!(
        at("\"ts\"") < at("\"m\"") && at("\"m\"") < at("\"id\"") && at("\"id\"") < at("\"value\""),
        "{line}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
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
