//! The cost of checkpoints: a TUMBLE aggregation over 1M distinct keys, run
//! with checkpointing off and with a checkpoint every 10 s, in the same
//! process; prints the throughput ratio, checkpoint durations and sizes. Then
//! the recovery time of about 1 GB of window state: a job holding it is
//! stopped after a checkpoint, and restarted from it.
//!
//!     cargo bench --bench checkpoint
//!     VIGIL_BENCH_ROWS=50000000 VIGIL_BENCH_STATE_KEYS=5000000 cargo bench --bench checkpoint
//!
//! Events come from an in-process generator (no decoding), so the figures show
//! the engine's own cost.

#[path = "support/gen.rs"]
mod gen;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gen::{Gen, HOLDING};
use vigil::engine::control::{stop_channel, StopSignal};
use vigil::{OutputFormat, RunOptions, Vigil};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn script(
    rows: u64,
    keys: u64,
    per_ms: u64,
    window: &str,
    interval: Option<&str>,
    hold: bool,
) -> String {
    let set = interval
        .map(|i| format!("SET 'execution.checkpointing.interval' = '{i}';\n"))
        .unwrap_or_default();
    format!(
        "{set}CREATE TABLE gen (k BIGINT, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
WITH ('connector' = 'bench-gen', 'rows' = '{rows}', 'keys' = '{keys}', 'events-per-ms' = '{per_ms}', 'hold' = '{hold}');
CREATE TABLE sink (k BIGINT, window_end TIMESTAMP(3), n BIGINT, total BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO sink SELECT k, window_end, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE gen, DESCRIPTOR(ts), INTERVAL '{window}))
GROUP BY k, window_start, window_end;
"
    )
}

fn vigil() -> Vigil {
    let mut v = Vigil::new();
    v.registry_mut().register(Arc::new(Gen));
    v
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        total += if path.is_dir() {
            dir_size(&path)
        } else {
            e.metadata().map(|m| m.len()).unwrap_or(0)
        };
    }
    total
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn env(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let v = vigil();
    let rows = env("VIGIL_BENCH_ROWS", 60_000_000);
    let keys = 1_000_000;
    // 100 events per ms: a 10 s window holds 1M events, so every key.
    let per_ms = 100;

    println!("TUMBLE(10 s) over {keys} distinct keys, {rows} rows from a generator");
    let mut rates = vec![];
    for interval in [None, Some("10 s")] {
        let state = temp("tumble");
        let opts = RunOptions {
            state_dir: interval.map(|_| state.clone()),
            job_name: Some("tumble".into()),
            ..Default::default()
        };
        let text = script(rows, keys, per_ms, "10' SECOND", interval, false);
        let t = Instant::now();
        let summary = rt
            .block_on(v.run_script_with(&text, OutputFormat::Json, StopSignal::never(), &opts))
            .expect("run");
        let secs = t.elapsed().as_secs_f64();
        let rate = rows as f64 / secs;
        rates.push(rate);
        println!(
            "  checkpoints {:<6} {:>6.2} M ev/s  {:>6.1} s  {} checkpoint(s), last took {} ms and added {:.1} MB",
            interval.unwrap_or("off"),
            rate / 1e6,
            secs,
            summary.checkpoints,
            summary.last_checkpoint_ms,
            summary.last_checkpoint_incremental_bytes as f64 / 1e6
        );
        let _ = std::fs::remove_dir_all(&state);
    }
    println!(
        "  with / without checkpoints: {:.3} (cost {:.1}%)",
        rates[1] / rates[0],
        (1.0 - rates[1] / rates[0]) * 100.0
    );

    // Checkpoint duration and size, and recovery: a job holding a large open
    // window (it never fires) is stopped after its first checkpoint.
    let state_keys = env("VIGIL_BENCH_STATE_KEYS", 25_000_000);
    let state = temp("recovery");
    let opts = RunOptions {
        state_dir: Some(state.clone()),
        job_name: Some("big".into()),
        ..Default::default()
    };
    let text = script(state_keys, state_keys, per_ms, "1' DAY", Some("1 s"), true);
    let (handle, signal) = stop_channel();
    let chk = state.join("big").join("checkpoints");
    let summary = rt.block_on(async {
        let job = v.run_script_with(&text, OutputFormat::Json, signal, &opts);
        tokio::pin!(job);
        // Stop at the first checkpoint that starts after every row was read.
        let mut before = None;
        loop {
            tokio::select! {
                r = &mut job => break r,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if !HOLDING.load(Ordering::SeqCst) {
                        continue;
                    }
                    let now = completed(&chk);
                    match before {
                        None => before = Some(now),
                        Some(b) if now > b => handle.stop(),
                        Some(_) => {}
                    }
                }
            }
        }
    });
    let summary = summary.expect("stateful run");
    let bytes = dir_size(&chk);
    println!(
        "state of {state_keys} keys: {} checkpoint(s); last checkpoint {:.0} MB on disk, took {} ms; {:.0} MB spilled beyond the cache",
        summary.checkpoints,
        bytes as f64 / 1e6,
        summary.last_checkpoint_ms,
        summary.state_spilled_bytes as f64 / 1e6
    );
    // The restore's own peak: the process's peak RSS is reset first (Linux:
    // 5 to clear_refs), and the job is stopped as soon as it has restored.
    let rss_before = rss_mb("VmRSS:");
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let t = Instant::now();
    let (handle, signal) = stop_channel();
    handle.stop();
    let restored = rt
        .block_on(v.run_script_with(&text, OutputFormat::Json, signal, &opts))
        .expect("restore");
    println!(
        "recovery: restored {:.0} MB of checkpoint in {:.1} s (whole restart {:.1} s); RSS {:.0} MB before, peak {:.0} MB during the restore{}",
        bytes as f64 / 1e6,
        restored.restore_ms as f64 / 1000.0,
        t.elapsed().as_secs_f64(),
        rss_before,
        rss_mb("VmHWM:"),
        if reset { "" } else { " (the peak could not be reset: the whole run's)" }
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// A `/proc/self/status` figure in MB (`VmRSS:` now, `VmHWM:` the peak).
fn rss_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The newest complete checkpoint's id (0 if none).
fn completed(chk: &Path) -> u64 {
    std::fs::read_dir(chk)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("_metadata").exists())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("chk-"))
                .and_then(|n| n.parse().ok())
        })
        .max()
        .unwrap_or(0)
}
