//! The whole Nexmark suite as the nexmark repository writes it (tests/nexmark/:
//! `ddl_gen.sql`, `ddl_views.sql` and each `qN.sql` with its blackhole sink),
//! Vigil beside Apache Flink 2.3 in the same run, over the same events: the
//! `vigil nexmark --nested` file, which both engines read through their
//! filesystem connector into `ddl_gen.sql`'s `datagen` table (its WITH clause
//! the only change). Prints events/s of each engine, their ratio and Vigil's
//! peak memory (each engine in a process of its own).
//!
//!     cargo bench --bench nexmark_suite                        # 1M events, P=2
//!     VIGIL_BENCH_EVENTS=200000 cargo bench --bench nexmark_suite
//!     VIGIL_BENCH_QUERIES=q5,q7 VIGIL_BENCH_FLINK=0 cargo bench --bench nexmark_suite
//!
//! q14 runs with `count_char` spelled in built-in functions in both engines
//! (Flink's oracle has no Nexmark UDF jar). Flink cannot run q6 (its
//! validator refuses it) and runs q13 with its side input's current options
//! and a regular join (it reads neither the legacy options nor a
//! processing-time temporal join against a file); q10 writes its partitions
//! into a temporary directory per engine.

#[path = "support/measure.rs"]
mod measure;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use measure::{parse_result, peak_rss_mb};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const QUERIES: [&str; 24] = [
    "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q10", "q11", "q12", "q13", "q14",
    "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22", "q23",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    let path = root().join("tests/nexmark").join(format!("{name}.sql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The official script of `q` over the events file at `path`, at parallelism
/// `p`, for Vigil or (`flink`) for Flink; None if that engine cannot run it.
fn script(q: &str, path: &Path, p: usize, flink: bool) -> Option<String> {
    if flink && q == "q6" {
        return None;
    }
    let gen = read("ddl_gen");
    let with = gen.find(") WITH (").expect("ddl_gen.sql has a WITH clause");
    let gen = format!(
        "{}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
        &gen[..with],
        path.display()
    );
    let views = read("ddl_views").replace("${NEXMARK_TABLE}", "datagen");
    let mut body = read(q);
    if q == "q14" {
        let start = body
            .find("CREATE FUNCTION")
            .expect("q14 creates its function");
        let end = start + body[start..].find(';').expect("statement end") + 1;
        body.replace_range(start..end, "");
        body = body.replace(
            "count_char(extra, 'c')",
            "CHAR_LENGTH(extra) - CHAR_LENGTH(REPLACE(extra, 'c', ''))",
        );
    }
    if flink && q == "q13" {
        let start = body.find("'connector.type'").expect("q13's side input");
        let end = body[start..]
            .find("'format.type' = 'csv'")
            .expect("its format")
            + start;
        body.replace_range(
            start..end + "'format.type' = 'csv'".len(),
            "'connector' = 'filesystem', 'path' = '${FLINK_HOME}/data/side_input.txt', 'format' = 'csv'",
        );
        body = body.replace(" FOR SYSTEM_TIME AS OF B.p_time", "");
    }
    // Flink 2.3's parser refuses q23's unquoted A.dateTime (Vigil takes both).
    let body = body.replace("A.dateTime AS", "A.`dateTime` AS");
    let out = std::env::temp_dir().join(format!(
        "vigil-nexmark-bench-{}-{}",
        if flink { "flink" } else { "vigil" },
        std::process::id()
    ));
    let text = format!("SET 'parallelism.default' = '{p}';\n{gen}\n{views}\n{body}")
        .replace(
            "${FLINK_HOME}",
            &root().join("tests/nexmark").display().to_string(),
        )
        .replace("${NEXMARK_DIR}", &out.display().to_string())
        .replace("${SUBMIT_TIME}", q);
    Some(text)
}

/// The events file for `events` events, written on first use.
fn ensure_events(events: u64) -> PathBuf {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"))
        .join(format!("nexmark-{events}"));
    let file = dir.join("events.jsonl");
    if !file.exists() {
        let config = vigil_connectors::nexmark::NexmarkConfig {
            events,
            ..Default::default()
        };
        vigil_connectors::nexmark::write_files(
            &config,
            &dir,
            vigil_connectors::nexmark::Layout::Nested,
        )
        .expect("write the events");
    }
    file
}

fn parallelism() -> usize {
    std::env::var("VIGIL_BENCH_PARALLELISM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

async fn child(q: &str, path: &Path, events: u64) {
    let text = script(q, path, parallelism(), false).expect("vigil runs every query");
    let t0 = Instant::now();
    let summary = vigil::Vigil::new()
        .run_script(&text, vigil::OutputFormat::Json)
        .await
        .expect("vigil run");
    let s = t0.elapsed().as_secs_f64();
    assert!(summary.rows_read >= events, "vigil read every event");
    println!(
        "RESULT seconds={s:.3} events_per_s={:.0} peak_mb={:.0}",
        events as f64 / s,
        peak_rss_mb()
    );
}

/// Flink's events/s for `q`, through the oracle (JVM start-up excluded).
fn flink(py: &str, q: &str, path: &Path, events: u64) -> Option<f64> {
    let tmp = std::env::temp_dir().join(format!("vigil-nexmark-bench-{q}.sql"));
    std::fs::write(&tmp, script(q, path, parallelism(), true)?).ok()?;
    let oracle = root().join("../shared/flink-oracle/flink_run.py");
    let out = Command::new(py)
        .arg(oracle)
        .arg(&tmp)
        .args(["--time", "--parallelism", &parallelism().to_string()])
        .output()
        .ok()?;
    let seconds = parse_result(&String::from_utf8_lossy(&out.stderr), "seconds")?;
    Some(events as f64 / seconds)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let events: u64 = args[i + 3].parse().expect("events");
        rt.block_on(child(&args[i + 1], Path::new(&args[i + 2]), events));
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let events: u64 = std::env::var("VIGIL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let path = ensure_events(events);
    let chosen: Vec<&str> = match std::env::var("VIGIL_BENCH_QUERIES") {
        Ok(list) => QUERIES
            .iter()
            .copied()
            .filter(|q| list.split(',').any(|l| l.trim() == *q))
            .collect(),
        Err(_) => QUERIES.to_vec(),
    };
    let py = if std::env::var("VIGIL_BENCH_FLINK").as_deref() == Ok("0") {
        None
    } else {
        Command::new("bash")
            .arg(root().join("../shared/flink-oracle/setup.sh"))
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|p| !p.is_empty())
    };
    let exe = std::env::current_exe().expect("exe");
    println!(
        "{events} events from {} at parallelism {}",
        path.display(),
        parallelism()
    );
    println!(
        "{:<6} {:>14} {:>9} {:>14} {:>9}",
        "query", "vigil ev/s", "peak MB", "flink ev/s", "vs flink"
    );
    for q in chosen {
        let out = Command::new(&exe)
            .args([
                "--child",
                q,
                path.to_str().expect("path"),
                &events.to_string(),
            ])
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "vigil {q} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = parse_result(&text, "events_per_s").unwrap_or(0.0);
        let vm = parse_result(&text, "peak_mb").unwrap_or(0.0);
        let f = py.as_deref().and_then(|py| flink(py, q, &path, events));
        println!(
            "{:<6} {:>14.0} {:>9.0} {:>14} {:>9}",
            q,
            v,
            vm,
            f.map(|f| format!("{f:.0}")).unwrap_or_else(|| "-".into()),
            f.map(|f| format!("{:.2}x", v / f))
                .unwrap_or_else(|| "-".into()),
        );
    }
}
