//! The body of the SQL fuzz target in `fuzz/` (also run on stable by
//! `tests/fuzz_smoke.rs`): any text, planned as a script, gives a plan or an
//! error that renders with its position inside the script — never a panic.

use vigil_engine::metrics::Metrics;

/// A table the fuzzed statements can use, so that inputs reach the planner.
pub const PRELUDE: &str = "CREATE TABLE t (id BIGINT, name STRING, v DOUBLE, ts TIMESTAMP(3), \
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'filesystem', \
    'path' = '/nonexistent/vigil-fuzz', 'format' = 'json');\n";

/// Plans `data` (as text, after [`PRELUDE`]); panics if an error points
/// outside the script.
pub fn check_script(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let script = format!("{PRELUDE}{text}");
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(r) => r,
        Err(_) => return,
    };
    let vigil = crate::Vigil::new();
    let result = runtime.block_on(vigil.plan(&script, &Metrics::new()));
    if let Err(e) = result {
        if let Some(pos) = e.pos {
            let lines = script.lines().count().max(1) as u64;
            assert!(
                pos.line >= 1 && pos.line <= lines + 1,
                "error at line {} of a {lines}-line script: {e}",
                pos.line
            );
        }
        let rendered = e.render("fuzz.sql", &script);
        assert!(!rendered.is_empty());
    }
}
