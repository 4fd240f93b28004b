//! Throughput benchmark over Nexmark-style bids (../shared/bench/gen_bids.py):
//! q0 (projection), q2 (filter), a keyed 10-second TUMBLE, Nexmark q5 (a
//! window join), q7 (an interval join), q15 (a GROUP BY without a window with
//! COUNT DISTINCT and FILTER, mini-batch on in both engines) and the Nexmark
//! CEP queries cep1 (`A+ B` with AVG in DEFINE) and cep3 (`A B* C` WITHIN 5 s),
//! each from the JSON file into a blackhole sink. Beside Vigil it measures, in
//! the same run: DataFusion's batch execution of the same SELECT over the same
//! file (the JSON-decode floor; not for the CEP queries) and Apache Flink 2.3
//! (../shared/bench/flink_bench.py, and benches/support/flink_more.py for the
//! queries it lacks). `VIGIL_BENCH_QUERIES=q2,cep1` picks some.
//!
//!     cargo bench --bench nexmark                  # 1M bids, generated on first use
//!     VIGIL_BENCH_ROWS=200000 cargo bench --bench nexmark
//!     VIGIL_BENCH_FLINK=0 cargo bench --bench nexmark   # skip Flink
//!     VIGIL_BENCH_PARALLELISM=1 cargo bench --bench nexmark  # Vigil at P=1 (default 2)
//!
//!     VIGIL_BENCH_EXCHANGE=127.0.0.1:9092 cargo bench --bench nexmark   # also through the Kafka exchange
//!
//! With `VIGIL_BENCH_EXCHANGE` (a Kafka broker's address), each query runs a
//! second time with its keyed exchanges through that broker
//! (`'execution.exchange' = 'kafka'`): the cost of the broker hop, as a
//! ratio to the in-memory exchange of the same run.
//!
//! Each engine runs in a child process so that its peak memory (VmHWM) is its own.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::{JsonReadOptions, SessionContext};

#[path = "support/bids.rs"]
mod bids;
#[path = "support/measure.rs"]
mod measure;
use bids::ensure_data;
use measure::{parse_result, peak_rss_mb};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const QUERIES: [&str; 8] = ["q0", "q2", "tumble", "q5", "q7", "q15", "cep1", "cep3"];

/// The queries to run: `VIGIL_BENCH_QUERIES` (comma-separated) or all.
fn queries() -> Vec<&'static str> {
    match std::env::var("VIGIL_BENCH_QUERIES") {
        Ok(list) => QUERIES
            .iter()
            .copied()
            .filter(|q| list.split(',').any(|l| l.trim() == *q))
            .collect(),
        Err(_) => QUERIES.to_vec(),
    }
}

fn vigil_sql(q: &str) -> &'static str {
    match q {
        "q0" => "SELECT auction, bidder, price, `dateTime`, extra FROM bid",
        "q2" => "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
        "cep1" => "SELECT * FROM bid MATCH_RECOGNIZE (PARTITION BY auction, bidder ORDER BY `dateTime` \
              MEASURES FIRST(A.`dateTime`) AS start_ts, LAST(A.`dateTime`) AS end_ts, AVG(A.price) AS avgp \
              ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (A+ B) DEFINE A AS AVG(A.price) < 10000) MR",
        // Nexmark q5 (hot items, a window join) and q7 (highest bid, an
        // interval join), as in ../shared/bench/flink_bench.py.
        "q5" => "SELECT AuctionBids.auction, AuctionBids.num FROM ( \
              SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime \
              FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
              GROUP BY auction, window_start, window_end) AS AuctionBids \
              JOIN (SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime FROM ( \
              SELECT count(*) AS num, window_start AS starttime, window_end AS endtime \
              FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
              GROUP BY auction, window_start, window_end) AS CountBids \
              GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids \
              ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime AND AuctionBids.num >= MaxBids.maxn",
        "q7" => "SELECT B.auction, B.price, B.bidder, B.`dateTime`, B.extra FROM bid B \
              JOIN (SELECT MAX(price) AS maxprice, window_end AS `dateTime` FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND)) \
              GROUP BY window_start, window_end) B1 \
              ON B.price = B1.maxprice WHERE B.`dateTime` BETWEEN B1.`dateTime` - INTERVAL '10' SECOND AND B1.`dateTime`",
        "q15" => "SELECT DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') AS `day`, count(*) AS total_bids, \
              count(*) FILTER (WHERE price < 10000) AS rank1_bids, \
              count(*) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bids, \
              count(*) FILTER (WHERE price >= 1000000) AS rank3_bids, \
              count(DISTINCT bidder) AS total_bidders, \
              count(DISTINCT bidder) FILTER (WHERE price < 10000) AS rank1_bidders, \
              count(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bidders, \
              count(DISTINCT bidder) FILTER (WHERE price >= 1000000) AS rank3_bidders, \
              count(DISTINCT auction) AS total_auctions, \
              count(DISTINCT auction) FILTER (WHERE price < 10000) AS rank1_auctions, \
              count(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_auctions, \
              count(DISTINCT auction) FILTER (WHERE price >= 1000000) AS rank3_auctions \
              FROM bid GROUP BY DATE_FORMAT(`dateTime`, 'yyyy-MM-dd')",
        "cep3" => "SELECT * FROM bid MATCH_RECOGNIZE (PARTITION BY auction, bidder ORDER BY `dateTime` \
              MEASURES C.`dateTime` AS drop_time, A.price - C.price AS drop_diff \
              ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (A B* C) WITHIN INTERVAL '5' SECOND \
              DEFINE B AS B.price > A.price - 50, C AS C.price < A.price - 50) MR",
        _ => "SELECT auction, window_start, window_end, COUNT(*) AS n, MAX(price) AS top, AVG(price) AS avgp \
              FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND)) GROUP BY auction, window_start, window_end",
    }
}

fn sink_columns(q: &str) -> &'static str {
    match q {
        "q0" => "auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` TIMESTAMP(3), extra STRING",
        "q2" => "auction BIGINT, price BIGINT",
        "cep1" => "auction BIGINT, bidder BIGINT, start_ts TIMESTAMP(3), end_ts TIMESTAMP(3), avgp BIGINT",
        "cep3" => "auction BIGINT, bidder BIGINT, drop_time TIMESTAMP(3), drop_diff BIGINT",
        "q5" => "auction BIGINT, num BIGINT",
        "q7" => "auction BIGINT, price BIGINT, bidder BIGINT, `dateTime` TIMESTAMP(3), extra STRING",
        "q15" => "`day` STRING, total_bids BIGINT, rank1_bids BIGINT, rank2_bids BIGINT, rank3_bids BIGINT, \
              total_bidders BIGINT, rank1_bidders BIGINT, rank2_bidders BIGINT, rank3_bidders BIGINT, \
              total_auctions BIGINT, rank1_auctions BIGINT, rank2_auctions BIGINT, rank3_auctions BIGINT",
        _ => "auction BIGINT, window_start TIMESTAMP(3), window_end TIMESTAMP(3), n BIGINT, top BIGINT, avgp BIGINT",
    }
}

fn datafusion_sql(q: &str) -> &'static str {
    match q {
        "q0" => "SELECT auction, bidder, price, \"dateTime\", extra FROM bid",
        "q2" => "SELECT auction, price FROM bid WHERE auction % 123 = 0",
        _ => "SELECT auction, date_bin(INTERVAL '10 seconds', \"dateTime\") AS window_start, COUNT(*) AS n, MAX(price) AS top, AVG(price) AS avgp \
              FROM bid GROUP BY auction, date_bin(INTERVAL '10 seconds', \"dateTime\")",
    }
}

async fn child(engine: &str, q: &str, path: &str, rows: u64) {
    let t0 = Instant::now();
    match engine {
        "vigil" | "vigil-kafka" => {
            // Two instances of keyed operators, as Flink's runs (parallelism
            // 2); mini-batch where Flink's run has it.
            let mini_batch = if q == "q15" {
                "SET 'table.exec.mini-batch.enabled' = 'true';\n\
                 SET 'table.exec.mini-batch.allow-latency' = '2 s';\n\
                 SET 'table.exec.mini-batch.size' = '5000';\n"
            } else {
                ""
            };
            let parallelism =
                std::env::var("VIGIL_BENCH_PARALLELISM").unwrap_or_else(|_| "2".into());
            let exchange = match std::env::var("VIGIL_BENCH_EXCHANGE") {
                Ok(bs) if engine == "vigil-kafka" => format!(
                    "SET 'execution.exchange' = 'kafka';\n\
                     SET 'execution.exchange.kafka.bootstrap-servers' = '{bs}';\n\
                     SET 'execution.exchange.kafka.topic-prefix' = 'bench-{q}-{}';\n",
                    std::process::id()
                ),
                _ => String::new(),
            };
            let script = format!(
                "{exchange}{mini_batch}SET 'parallelism.default' = '{parallelism}';\n\
                 CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, \
                 `dateTime` TIMESTAMP(3), extra STRING, WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND) \
                 WITH ('connector'='filesystem','path'='{path}','format'='json');\n\
                 CREATE TABLE sink ({}) WITH ('connector'='blackhole');\n\
                 INSERT INTO sink {};",
                sink_columns(q),
                vigil_sql(q)
            );
            let summary = vigil::Vigil::new()
                .run_script(&script, vigil::OutputFormat::Json)
                .await
                .expect("vigil run");
            // q5 and q7 read the bids twice (both sides of their join);
            // events/s counts the bids once, as Flink's figure does.
            let scans = if q == "q5" || q == "q7" { 2 } else { 1 };
            assert_eq!(summary.rows_read, rows * scans, "vigil read every row");
        }
        _ => {
            let ctx = SessionContext::new();
            let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
            let schema = Schema::new(vec![
                Field::new("auction", DataType::Int64, true),
                Field::new("bidder", DataType::Int64, true),
                Field::new("price", DataType::Int64, true),
                Field::new("channel", DataType::Utf8, true),
                Field::new("url", DataType::Utf8, true),
                Field::new("dateTime", ts, true),
                Field::new("extra", DataType::Utf8, true),
            ]);
            let opts = JsonReadOptions::default()
                .schema(&schema)
                .file_extension(".jsonl");
            ctx.register_json("bid", path, opts)
                .await
                .expect("register");
            let df = ctx.sql(datafusion_sql(q)).await.expect("plan");
            let batches = df.collect().await.expect("run");
            let n: usize = batches.iter().map(|b| b.num_rows()).sum();
            eprintln!("datafusion {q}: {n} rows out");
        }
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "RESULT seconds={s:.3} events_per_s={:.0} peak_mb={:.0}",
        rows as f64 / s,
        peak_rss_mb()
    );
}

/// Flink's figures: the shared benchmark script for the queries it has, the
/// repository's own for the others.
fn flink(path: &Path) -> Vec<(String, f64)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let setup = root.join("../shared/flink-oracle/setup.sh");
    let Ok(out) = Command::new("bash").arg(&setup).output() else {
        return vec![];
    };
    let py = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if py.is_empty() {
        return vec![];
    }
    let (more, shared): (Vec<&str>, Vec<&str>) = queries().into_iter().partition(|q| *q == "q15");
    let mut results = vec![];
    for (script, qs) in [
        (root.join("../shared/bench/flink_bench.py"), shared),
        (root.join("benches/support/flink_more.py"), more),
    ] {
        if qs.is_empty() {
            continue;
        }
        if let Ok(out) = Command::new(&py).arg(&script).arg(path).args(&qs).output() {
            results.extend(flink_results(&String::from_utf8_lossy(&out.stdout)));
        }
    }
    results
}

fn flink_results(out: &str) -> Vec<(String, f64)> {
    out.lines()
        .filter_map(|l| {
            Some((
                l.split_whitespace().next()?.to_string(),
                parse_result(l, "events_per_s")?,
            ))
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let rows: u64 = args[i + 4].parse().expect("rows");
        rt.block_on(child(&args[i + 1], &args[i + 2], &args[i + 3], rows));
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let rows: u64 = std::env::var("VIGIL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let path = ensure_data(rows);
    let exe = std::env::current_exe().expect("exe");
    let flink = if std::env::var("VIGIL_BENCH_FLINK").as_deref() == Ok("0") {
        vec![]
    } else {
        flink(&path)
    };
    println!("{rows} bids from {}", path.display());
    println!(
        "{:<8} {:>14} {:>9} {:>14} {:>9} {:>14} {:>10} {:>10}",
        "query",
        "vigil ev/s",
        "peak MB",
        "datafusion",
        "peak MB",
        "flink ev/s",
        "vs flink",
        "vs DF"
    );
    for q in queries() {
        let run = |engine: &str| {
            let out = Command::new(&exe)
                .args([
                    "--child",
                    engine,
                    q,
                    path.to_str().expect("path"),
                    &rows.to_string(),
                ])
                .output()
                .expect("child");
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{engine} {q} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (
                parse_result(&text, "events_per_s").unwrap_or(0.0),
                parse_result(&text, "peak_mb").unwrap_or(0.0),
            )
        };
        let (v, vm) = run("vigil");
        // DataFusion has no MATCH_RECOGNIZE, its joins are not streaming,
        // and it has no DISTINCT aggregate with FILTER.
        let (d, dm) = if q.starts_with("cep") || q == "q5" || q == "q7" || q == "q15" {
            (f64::NAN, f64::NAN)
        } else {
            run("datafusion")
        };
        if std::env::var("VIGIL_BENCH_EXCHANGE").is_ok() && !matches!(q, "q0" | "q2") {
            let (k, km) = run("vigil-kafka");
            println!(
                "{q:<8} through the Kafka exchange: {k:.0} ev/s, peak {km:.0} MB: {:.2}x of the in-memory exchange",
                k / v
            );
        }
        let f = flink.iter().find(|(n, _)| n == q).map(|(_, e)| *e);
        println!(
            "{:<8} {:>14.0} {:>9.0} {:>14.0} {:>9.0} {:>14} {:>10} {:>10.2}",
            q,
            v,
            vm,
            d,
            dm,
            f.map(|f| format!("{f:.0}")).unwrap_or_else(|| "-".into()),
            f.map(|f| format!("{:.2}x", v / f))
                .unwrap_or_else(|| "-".into()),
            v / d
        );
    }
}
