//! Checks made when a script is planned rather than when it runs: the types
//! of metadata columns against the connector's (Flink's rule: the metadata
//! type must cast to a source column's type, a sink column's type to the
//! metadata type), with the line and column of the offending `METADATA`.

use vigil::engine::metrics::Metrics;

/// Plans `script`; the error's message with its help, line and column.
fn plan_error(script: &str) -> (String, u64, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(vigil::Vigil::new().plan(script, &Metrics::new())) {
        Ok(_) => panic!("planned, but should not have:\n{script}"),
        Err(e) => {
            let pos = e.pos.expect("an error position");
            (
                format!("{e}\nhelp: {}", e.help.clone().unwrap_or_default()),
                pos.line,
                pos.column,
            )
        }
    }
}

fn plans(script: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = rt.block_on(vigil::Vigil::new().plan(script, &Metrics::new())) {
        panic!("{e}\n{script}");
    }
}

const KAFKA: &str = "'connector' = 'kafka', 'topic' = 't', 'properties.bootstrap.servers' = '127.0.0.1:9', 'scan.startup.mode' = 'earliest-offset', 'format' = 'json'";

#[test]
fn a_source_metadata_column_must_be_castable_from_the_metadata_type() {
    let script = format!(
        "CREATE TABLE s (id BIGINT,\n  ts BOOLEAN METADATA FROM 'timestamp') WITH ({KAFKA});\n\
         CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole');\n\
         INSERT INTO o SELECT id FROM s WHERE ts;"
    );
    let (msg, line, column) = plan_error(&script);
    assert!(
        msg.contains("metadata column 'ts' of table 's'")
            && msg.contains("'BOOLEAN'")
            && msg.contains("castable from metadata type 'TIMESTAMP_LTZ(3)'"),
        "{msg}"
    );
    assert_eq!((line, column), (2, 14), "{msg}");
    assert!(
        msg.contains("TIMESTAMP_LTZ(3) METADATA FROM 'timestamp'"),
        "help: {msg}"
    );
}

#[test]
fn a_sink_metadata_column_must_be_castable_to_the_metadata_type() {
    let script = format!(
        "CREATE TABLE s (id BIGINT) WITH ({KAFKA});\n\
         CREATE TABLE o (id BIGINT, h STRING METADATA FROM 'headers') WITH ({KAFKA});\n\
         INSERT INTO o SELECT id, 'x' FROM s;"
    );
    let (msg, line, _) = plan_error(&script);
    assert!(
        msg.contains("metadata column 'h' of table 'o'")
            && msg.contains("castable to metadata type 'MAP<STRING, BYTES>'"),
        "{msg}"
    );
    assert_eq!(line, 2, "{msg}");
}

/// As in Flink, a type that casts is accepted: a STRING read from the
/// timestamp, a STRING written to it, headers with STRING values.
#[test]
fn castable_metadata_types_are_accepted_both_ways() {
    plans(&format!(
        "CREATE TABLE s (id BIGINT, ts STRING METADATA FROM 'timestamp', p BIGINT METADATA FROM 'partition' VIRTUAL,\n\
           h MAP<STRING, STRING> METADATA FROM 'headers') WITH ({KAFKA});\n\
         CREATE TABLE o (id BIGINT, ts STRING METADATA FROM 'timestamp', headers MAP<STRING, STRING> METADATA) WITH ({KAFKA});\n\
         INSERT INTO o SELECT id + p, ts, h FROM s;"
    ));
}

/// The `explain` text of `queries` over an `ev` table of the orders file,
/// planned with `parallelism.default` = 2.
fn explain_at_parallelism_two(queries: &str) -> String {
    plan_at_parallelism_two(queries).explain()
}

/// The job graph of `queries` over an `ev` table of the orders file, planned
/// with `parallelism.default` = 2.
fn plan_at_parallelism_two(queries: &str) -> vigil::engine::graph::JobGraph {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/orders.jsonl");
    let script = format!(
        "SET 'parallelism.default' = '2';
CREATE TABLE ev (k STRING, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{data}', 'format' = 'json');
{queries}"
    );
    let job = rt
        .block_on(vigil::Vigil::new().plan(&script, &Metrics::new()))
        .expect("plans");
    job.graph
}

/// With `parallelism.default` above one, `explain` shows how many instances
/// each operator runs as, and says of one that runs once why it does.
#[test]
fn explain_says_which_operators_run_in_parallel_and_why_others_do_not() {
    let text = explain_at_parallelism_two(
        "SELECT k, COUNT(*) AS n FROM ev WHERE v > 0 GROUP BY k;
SELECT COUNT(*) AS n FROM ev;",
    );
    let line = |kind: &str, nth: usize| {
        text.lines()
            .filter(|l| l.trim_start().starts_with(kind))
            .nth(nth)
            .unwrap_or_else(|| panic!("no {kind} #{nth} in:\n{text}"))
            .to_string()
    };
    let keyed = line("GroupAggregate", 0);
    assert!(keyed.ends_with(" x2"), "{keyed}");
    let global = line("GroupAggregate", 1);
    assert!(
        global.contains("(runs once: no GROUP BY key: one instance sees the whole stream)"),
        "{global}"
    );
    // A stateless step runs in its input's task: nothing to say.
    let filter = line("Filter", 0);
    assert!(!filter.contains("runs once"), "{filter}");
    // The source reads in two subtasks (its file's splits dealt round them),
    // each with its watermark assigner and filter.
    for kind in ["FileSource", "WatermarkAssigner", "Filter"] {
        let l = line(kind, 0);
        assert!(l.ends_with(" x2"), "{l}");
    }
}

/// Keyed stages follow each other in parallel (each exchange routes from
/// every instance of the stage before), and a stateless step after a
/// parallel stage runs in each of its instances rather than once.
#[test]
fn explain_shows_consecutive_keyed_stages_and_their_stateless_steps_in_parallel() {
    let text = explain_at_parallelism_two(
        "SELECT n, COUNT(*) AS keys FROM (
  SELECT k, COUNT(*) AS n FROM ev GROUP BY k
) WHERE n > 1 GROUP BY n;",
    );
    let aggs: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("GroupAggregate"))
        .collect();
    assert_eq!(aggs.len(), 2, "{text}");
    for a in &aggs {
        assert!(a.ends_with(" x2"), "{a}\n{text}");
    }
    let filter = text
        .lines()
        .find(|l| l.trim_start().starts_with("Filter"))
        .unwrap_or_else(|| panic!("no filter in:\n{text}"));
    assert!(filter.ends_with(" x2"), "{filter}\n{text}");
}

/// A join is a two-input operator: both inputs feed it directly (no union
/// of side-tagged, NULL-padded rows), each through its own exchange, and it
/// runs in parallel by its equality key; without one it says why it runs once.
#[test]
fn a_join_reads_its_two_inputs_directly_and_runs_in_parallel_by_its_key() {
    let text = explain_at_parallelism_two(
        "SELECT a.k, a.v, b.v AS w FROM ev a JOIN ev b ON a.k = b.k;
SELECT a.k, b.v AS w FROM ev a JOIN ev b ON a.v < b.v;",
    );
    let joins: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("RegularJoin"))
        .collect();
    assert_eq!(joins.len(), 2, "{text}");
    assert!(joins[0].ends_with(" x2"), "{}\n{text}", joins[0]);
    assert!(
        joins[1].contains("(runs once: no equality key"),
        "{}\n{text}",
        joins[1]
    );
    assert!(!text.contains("Union"), "{text}");
    assert!(!text.contains("__side"), "{text}");
    // Each join's two inputs are listed right below it.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("RegularJoin"))
        .expect("a join");
    let depth = |l: &str| l.len() - l.trim_start().len();
    let children = lines[at + 1..]
        .iter()
        .take_while(|l| depth(l) > depth(lines[at]))
        .filter(|l| depth(l) == depth(lines[at]) + 2)
        .count();
    assert_eq!(children, 2, "{text}");
}

/// A lookup join keeps no keyed state: it runs in each subtask of its
/// parallel input (each with its own copy of the table, as a Flink subtask
/// keeps its own lookup cache), not once behind them.
#[test]
fn a_lookup_join_runs_in_each_subtask_of_its_input() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let script = format!(
        "SET 'parallelism.default' = '2';
CREATE TABLE o (order_id BIGINT, user_id STRING, ts TIMESTAMP(3), proc AS PROCTIME())
  WITH ('connector' = 'filesystem', 'path' = '{data}/orders_cl.jsonl', 'format' = 'json');
CREATE TABLE u (user_id STRING, name STRING)
  WITH ('connector' = 'filesystem', 'path' = '{data}/users_cl.jsonl', 'format' = 'json');
SELECT o.order_id, u.name FROM o JOIN u FOR SYSTEM_TIME AS OF o.proc AS u ON o.user_id = u.user_id;"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let job = rt
        .block_on(vigil::Vigil::new().plan(&script, &Metrics::new()))
        .expect("plans");
    let text = job.graph.explain();
    let join = text
        .lines()
        .find(|l| l.trim_start().starts_with("LookupJoin"))
        .unwrap_or_else(|| panic!("no lookup join in:\n{text}"));
    assert!(join.ends_with(" x2"), "{join}\n{text}");
}

#[test]
fn a_window_tvf_reads_only_the_columns_its_query_uses() {
    // `v` is read by no one: neither decoded nor copied into each window.
    let text = explain_at_parallelism_two(
        "SELECT k, COUNT(*) AS n, window_end FROM TABLE(HOP(TABLE ev, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end;",
    );
    let line = |kind: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} in:\n{text}"))
            .to_string()
    };
    let source = line("FileSource");
    assert!(
        source.contains("k: Utf8") && source.contains("ts: Timestamp"),
        "{source}"
    );
    assert!(
        !source.contains("v: Int64"),
        "the source decodes `v`:\n{text}"
    );
    assert!(!line("WindowAssign").contains("v: Int64"), "{text}");
}

const STATEMENT_SET: &str = "CREATE TABLE a (k STRING, n BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE b (v BIGINT) WITH ('connector' = 'blackhole');
EXECUTE STATEMENT SET BEGIN
INSERT INTO a SELECT k, COUNT(*) FROM ev GROUP BY k;
INSERT INTO b SELECT v FROM ev WHERE v > 3;
END;
SELECT k, window_end FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY k, window_start, window_end;";

/// A script's queries share each table's scan, as Flink's statement sets
/// reuse a source: one source reads the file once, one watermark assigner
/// serves both INSERTs and the SELECT, each projecting the columns it uses.
#[test]
fn the_queries_of_a_statement_set_read_a_table_once() {
    let text = explain_at_parallelism_two(STATEMENT_SET);
    // `explain` prints a node under each of its consumers: count the nodes.
    let graph = plan_at_parallelism_two(STATEMENT_SET);
    let count = |kind: &str| {
        graph
            .nodes
            .iter()
            .filter(|n| n.name.starts_with(kind))
            .count()
    };
    assert_eq!(count("FileSource"), 1, "{text}");
    assert_eq!(count("WatermarkAssigner"), 1, "{text}");
    // Each query's steps still run in each of the source's two subtasks.
    for step in ["Filter(v@0 > 3)", "WatermarkAssigner"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(step))
            .unwrap_or_default();
        assert!(line.ends_with(" x2"), "{step}: {text}");
    }
    let source = text
        .lines()
        .find(|l| l.trim_start().starts_with("FileSource"))
        .unwrap_or_default();
    assert!(
        source.contains("k: Utf8")
            && source.contains("v: Int64")
            && source.contains("ts: Timestamp"),
        "the shared scan reads every column: {source}"
    );
}
