//! `vigil serve` in process, driven through the CLI's client: jobs are
//! submitted, listed, stopped, show their results and errors (with line and
//! column), `/metrics` exposes window results, the token guards the API, and
//! a job running when the server stops resumes when it starts again.

#[path = "support/kafka.rs"]
mod kafka;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kafka::{produce, runtime, Rec};
use rdkafka::mocking::MockCluster;
use vigil::client::{Client, ClientError};
use vigil::server::jobs::JobState;
use vigil::server::{start, ServeConfig};
use vigil::Vigil;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(state: &std::path::Path, token: Option<&str>) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        state_dir: state.to_path_buf(),
        token: token.map(str::to_string),
        tls: None,
        insecure_no_tls: false,
    }
}

fn data(file: &str) -> String {
    format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// The bids of Flink's window examples, as table `Bid`.
fn bid_table() -> String {
    format!(
        "CREATE TABLE Bid (bidtime TIMESTAMP(3), price DECIMAL(10, 2), item STRING, supplier_id STRING,
           WATERMARK FOR bidtime AS bidtime - INTERVAL '1' SECOND)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
        data("bid_win.jsonl")
    )
}

/// Waits until job `name` is in `state`.
fn wait_state(c: &Client, name: &str, state: JobState) -> vigil::server::jobs::JobInfo {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = c.status(name).expect("status");
        if info.state == state || Instant::now() > deadline {
            assert_eq!(info.state, state, "{info:?}");
            return info;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    ureq_get(&format!("http://{addr}{path}"))
}

fn ureq_get(url: &str) -> String {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
        .get(url)
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .unwrap_or_default()
}

#[test]
fn jobs_are_submitted_listed_and_show_results_errors_and_metrics() {
    let rt = runtime();
    let state = temp("api");
    let server = rt
        .block_on(start(Vigil::new(), config(&state, None)))
        .expect("server starts");
    let c = Client::new(&format!("http://{}", server.addr), None);
    let script = bid_table()
        + "         CREATE TABLE revenue (supplier_id STRING, total DOUBLE, window_end TIMESTAMP(3))
         WITH ('connector' = 'metrics', 'metric.name' = 'test_supplier_revenue', 'labels' = 'supplier_id');
         INSERT INTO revenue SELECT supplier_id, CAST(SUM(price) AS DOUBLE), window_end
           FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES)) GROUP BY supplier_id, window_start, window_end;
         SELECT supplier_id, COUNT(*) AS n, window_end
           FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES)) GROUP BY supplier_id, window_start, window_end;";
    let info = c
        .submit("revenue", &script, "revenue.sql")
        .expect("submitted");
    assert_eq!(info.name, "revenue");
    let done = wait_state(&c, "revenue", JobState::Finished);
    // The two statements share one read of the file's 6 rows.
    assert_eq!(done.rows_read, 6);
    // The query's rows: two suppliers in each of two windows.
    let results = c.results("revenue").expect("results");
    assert_eq!(results.columns, vec!["supplier_id", "n", "window_end"]);
    assert_eq!(results.rows.len(), 4, "{results:?}");
    let table = vigil::client::results_table(&results);
    assert!(
        table.contains("supplier1") && table.contains("2020-04-15 08:20:00"),
        "{table}"
    );
    assert!(c
        .logs("revenue")
        .expect("logs")
        .iter()
        .any(|l| l.ends_with("finished")));
    assert_eq!(c.list().expect("list").len(), 1);
    // The metrics sink's latest window per supplier, and its window end.
    let metrics = http_get(server.addr, "/metrics");
    assert!(
        metrics.contains(r#"test_supplier_revenue{vigil_job="revenue",supplier_id="supplier1"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"test_supplier_revenue_window_end_timestamp_seconds{vigil_job="revenue",supplier_id="supplier2"} 1586938800"#
    ));
    assert!(metrics.contains(r#"vigil_source_rows_total{vigil_job="revenue",scope="Bid"} 6"#));
    assert!(metrics
        .contains(r#"vigil_operator_rows_in_total{vigil_job="revenue",scope="WindowAggregate#"#));
    assert_eq!(http_get(server.addr, "/healthz"), "ok\n");
    assert!(http_get(server.addr, "/").contains("<title>Vigil</title>"));
    // A script that does not plan: refused with its position, nothing runs.
    let bad = "CREATE TABLE t (a INT) WITH ('connector' = 'filesystem', 'path' = '/nonexistent', 'format' = 'json');\nSELECT b FROM t;";
    match c.submit("bad", bad, "bad.sql") {
        Err(ClientError::Refused(m)) => {
            assert!(m.contains("bad.sql:2:8"), "{m}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(c.status("bad"), Err(ClientError::Refused(_))));
    // A running job's name cannot be taken; an invalid name is refused.
    assert!(matches!(
        c.submit("no/slash", &script, "x.sql"),
        Err(ClientError::Refused(_))
    ));
    rt.block_on(server.shutdown()).expect("shutdown");
    let _ = std::fs::remove_dir_all(state);
}

#[test]
fn a_token_guards_the_api_and_is_required_off_loopback() {
    let rt = runtime();
    let state = temp("token");
    let mut open = config(&state, None);
    open.listen = "0.0.0.0:0".parse().expect("addr");
    let refused = rt.block_on(start(Vigil::new(), open));
    assert!(refused
        .err()
        .is_some_and(|e| e.contains("needs a bearer token")));
    let server = rt
        .block_on(start(Vigil::new(), config(&state, Some("s3cret"))))
        .expect("server starts");
    let url = format!("http://{}", server.addr);
    match Client::new(&url, None).list() {
        Err(ClientError::Refused(m)) => assert!(m.contains("token"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(Client::new(&url, Some("wrong".into())).list().is_err());
    assert!(Client::new(&url, Some("s3cret".into())).list().is_ok());
    // Metrics and health stay open to scrapers.
    assert_eq!(http_get(server.addr, "/healthz"), "ok\n");
    rt.block_on(server.shutdown()).expect("shutdown");
    let _ = std::fs::remove_dir_all(state);
}

#[test]
fn a_running_job_resumes_after_a_server_restart_and_a_stopped_one_does_not() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("clicks", 1, 1).expect("topic");
    let click = |i: usize| Rec::value(format!(r#"{{"user_id":"u{}","n":{i}}}"#, i % 3));
    produce(&bs, "clicks", &(0..30).map(click).collect::<Vec<_>>());
    let rt = runtime();
    let state = temp("restart");
    let script = format!(
        "SET 'execution.checkpointing.interval' = '100 ms';
         CREATE TABLE clicks (user_id STRING, n BIGINT) WITH ('connector' = 'kafka', 'topic' = 'clicks',
           'properties.bootstrap.servers' = '{bs}', 'properties.group.id' = 'serve-test',
           'scan.startup.mode' = 'earliest-offset', 'format' = 'json');
         SELECT user_id, COUNT(*) AS clicks FROM clicks GROUP BY user_id;"
    );
    let server = rt
        .block_on(start(Vigil::new(), config(&state, None)))
        .expect("server starts");
    let c = Client::new(&format!("http://{}", server.addr), None);
    c.submit("clicks", &script, "clicks.sql")
        .expect("submitted");
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.status("clicks").expect("status").checkpoints == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.status("clicks").expect("status").rows_read, 30);
    rt.block_on(server.shutdown()).expect("shutdown");

    // More clicks while the server is down; the resumed job counts on from
    // its checkpoint: 40 clicks in all.
    produce(&bs, "clicks", &(30..40).map(click).collect::<Vec<_>>());
    let server = rt
        .block_on(start(Vigil::new(), config(&state, None)))
        .expect("server starts again");
    let c = Client::new(&format!("http://{}", server.addr), None);
    wait_state(&c, "clicks", JobState::Running);
    assert!(c
        .logs("clicks")
        .expect("logs")
        .iter()
        .any(|l| l.contains("resumed")));
    let deadline = Instant::now() + Duration::from_secs(30);
    let total = || -> i64 {
        let r = c.results("clicks").expect("results");
        // The latest count per user, summed.
        let mut latest = std::collections::BTreeMap::new();
        for row in &r.rows {
            if row.get("_op").and_then(|o| o.as_str()) != Some("-U") {
                latest.insert(
                    row["user_id"].to_string(),
                    row["clicks"].as_i64().unwrap_or(0),
                );
            }
        }
        latest.values().sum()
    };
    while total() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(total(), 40, "the counts go on from the checkpoint");
    // Stopped, it stays stopped across a restart.
    c.stop("clicks").expect("stop");
    wait_state(&c, "clicks", JobState::Stopped);
    rt.block_on(server.shutdown()).expect("shutdown");
    let server = rt
        .block_on(start(Vigil::new(), config(&state, None)))
        .expect("server starts a third time");
    let c = Client::new(&format!("http://{}", server.addr), None);
    assert_eq!(c.status("clicks").expect("status").state, JobState::Stopped);
    rt.block_on(server.shutdown()).expect("shutdown");
    let _ = std::fs::remove_dir_all(state);
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn metrics_pass_promtool_and_a_prometheus_server_scrapes_them() {
    let rt = runtime();
    let state = temp("prometheus");
    let server = rt
        .block_on(start(Vigil::new(), config(&state, None)))
        .expect("server starts");
    let c = Client::new(&format!("http://{}", server.addr), None);
    let script = bid_table()
        + "         CREATE TABLE items (supplier_id STRING, items BIGINT, window_end TIMESTAMP(3))
         WITH ('connector' = 'metrics', 'metric.name' = 'scraped_items', 'labels' = 'supplier_id');
         INSERT INTO items SELECT supplier_id, COUNT(*), window_end
           FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES)) GROUP BY supplier_id, window_start, window_end;";
    c.submit("items", &script, "items.sql").expect("submitted");
    wait_state(&c, "items", JobState::Finished);
    let text = http_get(server.addr, "/metrics");
    // promtool (Debian package `prometheus`, installed by .ci/run) lints the exposition.
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (install the Debian package prometheus; .ci/run does)");
    use std::io::Write;
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = check.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A real Prometheus scrapes the server every 200 ms; its query API then
    // has the latest window's count for supplier2 (2 items in 08:10-08:20).
    let dir = temp("prometheus-tsdb");
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 200ms\nscrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: ['{}']\n",
            server.addr
        ),
    )
    .expect("config");
    let port = free_port();
    let _prometheus = Child(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus runs (Debian package prometheus; .ci/run installs it)"),
    );
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=scraped_items%7Bsupplier_id%3D%22supplier2%22%7D"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answer = String::new();
    while Instant::now() < deadline {
        answer = ureq_get(&query);
        if answer.contains("\"result\":[{") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(answer.contains(r#""vigil_job":"items""#), "{answer}");
    assert!(
        answer.contains(r#","2"]"#),
        "the count of the latest window: {answer}"
    );
    rt.block_on(server.shutdown()).expect("shutdown");
    let _ = std::fs::remove_dir_all(state);
    let _ = std::fs::remove_dir_all(dir);
}

/// The dashboard in headless Chromium (Debian package `chromium`, installed by
/// .ci/run): after its scripts ran, the page lists the running job and
/// charts the points of its metrics sink.
#[test]
fn the_dashboard_lists_a_running_job_and_charts_its_window_results() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("temps", 1, 1).expect("topic");
    // Four 1-second windows of sensor readings; the last stays open.
    let recs: Vec<Rec> = (0..40)
        .map(|i| {
            Rec::value(format!(
                r#"{{"sensor":"s1","temp":{},"ts":"2024-01-01 10:00:{:02}.{:03}"}}"#,
                20 + i % 4,
                i / 10,
                (i % 10) * 100
            ))
        })
        .collect();
    produce(&bs, "temps", &recs);
    let rt = runtime();
    let state = temp("dashboard");
    let server = rt
        .block_on(start(Vigil::new(), config(&state, None)))
        .expect("server starts");
    let c = Client::new(&format!("http://{}", server.addr), None);
    let script = format!(
        "CREATE TABLE temps (sensor STRING, temp DOUBLE, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
         WITH ('connector' = 'kafka', 'topic' = 'temps', 'properties.bootstrap.servers' = '{bs}',
               'scan.startup.mode' = 'earliest-offset', 'format' = 'json');
         CREATE TABLE avg_temp (sensor STRING, avg_temp DOUBLE, window_end TIMESTAMP(3))
         WITH ('connector' = 'metrics', 'metric.name' = 'dashboard_avg_temp', 'labels' = 'sensor');
         INSERT INTO avg_temp SELECT sensor, AVG(temp), window_end
           FROM TABLE(TUMBLE(TABLE temps, DESCRIPTOR(ts), INTERVAL '1' SECOND))
           GROUP BY sensor, window_start, window_end;"
    );
    c.submit("temps", &script, "temps.sql").expect("submitted");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_get(server.addr, "/metrics").contains("dashboard_avg_temp{")
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = temp("chromium-profile");
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=5000",
            "--dump-dom",
            &format!("http://{}/", server.addr),
        ])
        .output()
        .expect("chromium runs (Debian package chromium; .ci/run installs it)");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains(r#"<tr data-job="temps"><td>temps</td><td class="running">running</td>"#),
        "the job is listed as running:\n{dom}"
    );
    let chart = dom
        .split(r#"data-metric="dashboard_avg_temp""#)
        .nth(1)
        .expect("a chart of the metric");
    let points = chart
        .split("</svg>")
        .next()
        .unwrap_or("")
        .matches(r#"class="point""#)
        .count();
    assert!(
        points >= 3,
        "three closed windows charted, {points} points:\n{dom}"
    );
    c.stop("temps").expect("stop");
    rt.block_on(server.shutdown()).expect("shutdown");
    let _ = std::fs::remove_dir_all(state);
    let _ = std::fs::remove_dir_all(profile);
}
