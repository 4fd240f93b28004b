//! State larger than memory: a GROUP BY, a regular join and a MATCH_RECOGNIZE
//! (a partial match open per key until its key's second row) over many keys,
//! each run twice in a process of its own, with `state.backend.cache-size`
//! = 64 MB and with a cache large enough to hold everything; prints the
//! throughput, the peak RSS of each run and whether their results agree (an
//! order-independent fingerprint of the final result table, folded from the
//! changelog).
//!
//!     cargo bench --bench state_memory                      # 10M keys
//!     VIGIL_BENCH_KEYS=20000000 cargo bench --bench state_memory
//!     VIGIL_BENCH_STATE_QUERIES=pattern cargo bench --bench state_memory

#[path = "support/gen.rs"]
mod gen;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int8Type;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use vigil::engine::connector::Sink;
use vigil::engine::control::StopSignal;
use vigil::engine::metrics::Metrics;
use vigil::engine::Result;
use vigil::{RunOptions, Vigil};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The sum of the hashes of inserted rows minus those of retracted ones:
/// the fingerprint of the final table, whatever the order of changes.
static FINGERPRINT: AtomicU64 = AtomicU64::new(0);
static ROWS: AtomicU64 = AtomicU64::new(0);

struct Fingerprint;

#[async_trait]
impl Sink for Fingerprint {
    fn describe(&self) -> String {
        "Fingerprint".into()
    }
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_columns();
        let kinds = batch.column(n - 1).as_primitive_opt::<Int8Type>().cloned();
        let data = if kinds.is_some() { n - 1 } else { n };
        let fields = (0..data)
            .map(|c| SortField::new(batch.column(c).data_type().clone()))
            .collect();
        let conv = RowConverter::new(fields).expect("row converter");
        let rows = conv
            .convert_columns(&batch.columns()[..data])
            .expect("rows");
        let mut sum = 0u64;
        for i in 0..batch.num_rows() {
            let mut h = DefaultHasher::new();
            rows.row(i).data().hash(&mut h);
            let h = h.finish();
            // 0 +I, 1 -U, 2 +U, 3 -D.
            let retract = kinds.as_ref().is_some_and(|k| matches!(k.value(i), 1 | 3));
            sum = if retract {
                sum.wrapping_sub(h)
            } else {
                sum.wrapping_add(h)
            };
        }
        FINGERPRINT.fetch_add(sum, Ordering::Relaxed);
        ROWS.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(())
    }
    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

fn query(which: &str, keys: u64, cache: &str) -> String {
    let table = |name: &str| {
        format!(
            "CREATE TABLE {name} (k BIGINT, v BIGINT, ts TIMESTAMP(3))
WITH ('connector' = 'bench-gen', 'rows' = '{}', 'keys' = '{keys}', 'events-per-ms' = '100');\n",
            keys * 2
        )
    };
    let body = match which {
        "group-by" => "SELECT k, COUNT(*) AS n, SUM(v) AS total FROM a GROUP BY k;",
        "pattern" => {
            "SELECT * FROM p MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts
  MEASURES A.v AS av, B.v AS bv ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B) DEFINE B AS B.v >= 0);"
        }
        _ => "SELECT a.k, a.v, b.v FROM a JOIN b ON a.k = b.k;",
    };
    // The pattern's input needs event time; the others do without.
    let timed = table("p").replace(
        "ts TIMESTAMP(3))",
        "ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)",
    );
    format!(
        "SET 'state.backend.cache-size' = '{cache}';\n{}{}{timed}{body}\n",
        table("a"),
        table("b")
    )
}

/// Peak resident memory of this process, in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One run, in this (child) process: prints `fingerprint rows seconds rss`.
fn child(which: &str, keys: u64, cache: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut v = Vigil::new();
    v.registry_mut().register(Arc::new(gen::Gen));
    let text = query(which, keys, cache);
    let t = Instant::now();
    rt.block_on(v.run_script_into(
        &text,
        &|| Box::new(Fingerprint),
        &Metrics::new(),
        StopSignal::never(),
        &RunOptions::default(),
    ))
    .expect("run");
    println!(
        "{} {} {:.2} {:.0}",
        FINGERPRINT.load(Ordering::Relaxed),
        ROWS.load(Ordering::Relaxed),
        t.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let keys = args[i + 2].parse().expect("keys");
        return child(&args[i + 1], keys, &args[i + 3]);
    }
    let keys: u64 = std::env::var("VIGIL_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let exe = std::env::current_exe().expect("own path");
    // `VIGIL_BENCH_STATE_QUERIES=pattern` (comma-separated) picks some.
    let picked = std::env::var("VIGIL_BENCH_STATE_QUERIES").unwrap_or_default();
    for which in ["group-by", "join", "pattern"] {
        if !picked.is_empty() && !picked.split(',').any(|p| p.trim() == which) {
            continue;
        }
        println!("{which} over {keys} keys ({} rows per input)", keys * 2);
        let mut results = vec![];
        for cache in ["64 mb", "100 gb"] {
            let out = Command::new(&exe)
                .args(["--child", which, &keys.to_string(), cache])
                .output()
                .expect("run child");
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().last().unwrap_or_default().to_string();
            let f: Vec<&str> = line.split_whitespace().collect();
            if !out.status.success() || f.len() != 4 {
                println!(
                    "  cache {cache}: failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                continue;
            }
            let secs: f64 = f[2].parse().unwrap_or(f64::NAN);
            println!(
                "  cache {cache:>6}: {:>6.2} M input rows/s  {:>6.1} s  peak RSS {:>6} MB  {} result changes",
                (keys * 2 * if which == "join" { 2 } else { 1 }) as f64 / secs / 1e6,
                secs,
                f[3],
                f[1]
            );
            results.push((f[0].to_string(), secs));
        }
        if let [(a, sa), (b, sb)] = results.as_slice() {
            println!(
                "  results {}; 64 MB / in-memory throughput {:.2}",
                if a == b { "equal" } else { "DIFFER" },
                sb / sa
            );
        }
    }
}
