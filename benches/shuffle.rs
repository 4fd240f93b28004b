//! The Kafka shuffle's cost (one job on several processes): bids
//! (../shared/bench/gen_bids.py) produced into a 4-partition topic of Apache
//! Kafka on loopback (tests/support/broker.rs), then a TUMBLE keyed by bidder
//! (not the input's partitioning, so every row crosses an exchange) run by
//! `vigil run` processes, each pinned to one core with `taskset`, in the same
//! run:
//!
//! 1. one process, the in-memory exchange (the baseline);
//! 2. one process, the exchange through Kafka (the cost of the broker hop);
//! 3. one process of a distributed job (membership, exchange through Kafka);
//! 4. two processes of a distributed job, on cores 0 and 1.
//!
//! Each line gives the wall time, the events a second, and the events per
//! process-CPU-second (user + system time of the processes, from bash's
//! `times`); the ratios compare 2 with 1, and the per-core rate of 4 (events
//! a second over 2 cores) with 3. The broker shares the machine's cores.
//!
//!     cargo bench --bench shuffle                  # 400 000 bids
//!     VIGIL_BENCH_ROWS=1000000 cargo bench --bench shuffle

#[path = "../tests/support/broker.rs"]
mod broker;
#[path = "../tests/support/kafka.rs"]
mod kafka;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

#[path = "support/bids.rs"]
mod bids;
#[path = "support/produce.rs"]
mod produce;
use bids::ensure_data;

const PARTITIONS: i32 = 4;

/// The job: `set` first, then a keyed TUMBLE over the whole topic.
fn script(bootstrap: &str, topic: &str, set: &str) -> String {
    format!(
        "SET 'parallelism.default' = '2';
SET 'pipeline.max-parallelism' = '16';
{set}
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` TIMESTAMP(3), extra STRING,
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '1' SECOND) WITH (
  'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}',
  'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', 'format' = 'json');
CREATE TABLE out (bidder BIGINT, n BIGINT, s BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT bidder, COUNT(*), SUM(price)
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
  GROUP BY bidder, window_start, window_end;"
    )
}

/// Starts `vigil run` of `script` as worker `name`, pinned to `core`; its
/// stdout ends with bash's `times` (the CPU time of the process).
fn start(dir: &Path, script: &str, name: &str, core: usize) -> Child {
    let path = dir.join(format!("{name}.sql"));
    std::fs::write(&path, script).expect("script");
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
    Command::new("bash")
        .arg("-c")
        .arg(r#"taskset -c "$1" "$2" -v run --worker-id "$3" "$4" > /dev/null || exit 1; times"#)
        .args([
            "bench",
            &core.to_string(),
            env!("CARGO_BIN_EXE_vigil"),
            name,
            &path.display().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start vigil")
}

/// Seconds of a `times` field such as `1m2.345s`.
fn seconds(field: &str) -> f64 {
    let (m, s) = field
        .trim_end_matches('s')
        .split_once('m')
        .unwrap_or(("0", "0"));
    m.parse::<f64>().unwrap_or(0.0) * 60.0 + s.parse::<f64>().unwrap_or(0.0)
}

/// Waits for `child`: the CPU seconds (user + system) of its `vigil`.
fn cpu_of(dir: &Path, name: &str, child: Child) -> f64 {
    let out = child.wait_with_output().expect("wait");
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    assert!(out.status.success(), "{name} failed:\n{log}");
    let text = String::from_utf8_lossy(&out.stdout);
    // The second line of `times`: the children's user and system time.
    let line = text.lines().nth(1).unwrap_or_default();
    line.split_whitespace().map(seconds).sum()
}

/// Runs `scripts` (one process each, process `i` on core `i`) to their
/// end, each of which must log `expect`: the wall seconds and the CPU
/// seconds of all of them.
fn measure(dir: &Path, label: &str, scripts: &[(String, String)], expect: &str) -> (f64, f64) {
    let start_at = Instant::now();
    let children: Vec<(String, Child)> = scripts
        .iter()
        .enumerate()
        .map(|(core, (name, s))| (name.clone(), start(dir, s, name, core)))
        .collect();
    let cpu: f64 = children
        .into_iter()
        .map(|(name, c)| cpu_of(dir, &name, c))
        .sum();
    let wall = start_at.elapsed().as_secs_f64();
    for (name, _) in scripts {
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        assert!(
            log.contains(expect),
            "{name} did not log '{expect}':\n{log}"
        );
    }
    eprintln!("{label}: {wall:.2} s wall, {cpu:.2} s CPU");
    (wall, cpu)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: u64 = std::env::var("VIGIL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    let data = ensure_data(rows);
    let broker = broker::Kafka::start();
    let bs = broker.bootstrap.clone();
    kafka::create_topics(&bs, &[("bids", PARTITIONS)]);
    let loaded = produce::load(&bs, "bids", &data, PARTITIONS);
    let dir = std::env::temp_dir().join(format!("vigil-shuffle-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let exchange = |prefix: &str| {
        format!(
            "SET 'execution.exchange.kafka.bootstrap-servers' = '{bs}';
SET 'execution.exchange.kafka.topic-prefix' = '{prefix}';"
        )
    };
    let kafka_hop = format!(
        "SET 'execution.exchange' = 'kafka';\n{}",
        exchange("bench-hop")
    );
    let distributed = |prefix: &str, n: usize| {
        format!(
            "SET 'execution.mode' = 'distributed';\nSET 'execution.distributed.min-workers' = '{n}';\n{}",
            exchange(prefix)
        )
    };
    let one = |name: &str, set: &str| vec![(name.to_string(), script(&bs, "bids", set))];
    let memory = measure(
        &dir,
        "1 process, memory exchange",
        &one("memory", ""),
        "running parallel instances",
    );
    let hop = measure(
        &dir,
        "1 process, Kafka exchange",
        &one("hop", &kafka_hop),
        "keyed exchanges go through Kafka",
    );
    let shared = "running this process's share of the job";
    let d1 = measure(
        &dir,
        "distributed, 1 process",
        &one("d1", &distributed("bench-d1", 1)),
        shared,
    );
    let two = script(&bs, "bids", &distributed("bench-d2", 2));
    let d2 = measure(
        &dir,
        "distributed, 2 processes",
        &[("d2a".into(), two.clone()), ("d2b".into(), two)],
        shared,
    );
    let n = loaded as f64;
    println!("shuffle bench: {loaded} bids, a TUMBLE keyed by bidder, each process on one core");
    for (label, (wall, cpu)) in [
        ("1 process, memory exchange", memory),
        ("1 process, Kafka exchange", hop),
        ("distributed, 1 process", d1),
        ("distributed, 2 processes", d2),
    ] {
        println!(
            "  {label:<28} {wall:>7.2} s  {:>10.0} events/s  {:>10.0} events/CPU-s",
            n / wall,
            n / cpu
        );
    }
    println!(
        "  Kafka exchange / memory exchange, 1 process: {:.2}x events/s, {:.2}x events/CPU-s",
        memory.0 / hop.0,
        memory.1 / hop.1
    );
    println!(
        "  2 processes per core / 1 process (distributed): {:.2}x (target >= 0.7x)",
        (n / d2.0 / 2.0) / (n / d1.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
