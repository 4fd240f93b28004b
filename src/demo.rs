//! `vigil demo`: starts the embedded Kafka broker, produces realistic synthetic
//! events into it in real time (IoT sensor readings with a failing sensor,
//! logins with brute-force bursts, orders and payments with some unpaid), and
//! runs the pipelines of `examples/demo/` over them, printing alerts as they
//! fire. The last minute of events is produced at once so alerts appear at once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use vigil_connectors::kafka::embedded;
use vigil_engine::control::StopSignal;
use vigil_engine::time::format_event_time;

use crate::{Error, OutputFormat, Vigil};

/// The demo's pipelines: (name, SQL), as in `examples/demo/`.
pub const PIPELINES: &[(&str, &str)] = &[
    (
        "overheating sensors",
        include_str!("../examples/demo/sensors.sql"),
    ),
    (
        "brute-force logins",
        include_str!("../examples/demo/logins.sql"),
    ),
    ("unpaid orders", include_str!("../examples/demo/orders.sql")),
];

/// The topics the generator writes, with their partition counts.
pub const TOPICS: &[(&str, i32)] = &[
    ("sensor-readings", 2),
    ("logins", 2),
    ("orders", 2),
    ("payments", 2),
];

/// How much event time is produced at once when the demo starts.
const BACKFILL_MS: i64 = 60_000;
/// The generator's step.
const TICK_MS: i64 = 100;

/// A small deterministic generator (xorshift), so runs look alike.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The event generator: one step of `TICK_MS` event time at a time.
struct Generator {
    rng: Rng,
    next_order: u64,
    /// Payments due: (event time, order id, amount).
    pending: BTreeMap<(i64, u64), f64>,
}

const USERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank"];
const SENSORS: usize = 8;

impl Generator {
    fn new() -> Self {
        Self {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            next_order: 1000,
            pending: BTreeMap::new(),
        }
    }

    /// The events of the step starting at `t`: (topic, key, JSON value).
    fn step(&mut self, t: i64, out: &mut Vec<(&'static str, String, String)>) {
        let ts = format_event_time(t);
        let second = t.div_euclid(1000);
        if t % 500 == 0 {
            for s in 1..=SENSORS {
                let failing = s == 3 && second.rem_euclid(40) >= 20;
                let base = if failing { 88.0 } else { 21.0 + s as f64 };
                let temp = base + self.rng.unit() * 6.0 - 3.0;
                let id = format!("sensor-{s}");
                out.push((
                    "sensor-readings",
                    id.clone(),
                    format!(r#"{{"sensor_id":"{id}","temperature":{temp:.1},"ts":"{ts}"}}"#),
                ));
            }
        }
        if t % 1000 == 0 {
            let user = USERS[self.rng.below(USERS.len() as u64) as usize];
            let ok = self.rng.unit() < 0.9;
            let ip = format!("10.0.0.{}", 1 + self.rng.below(50));
            out.push((
                "logins",
                user.to_string(),
                format!(r#"{{"user_name":"{user}","ip":"{ip}","success":{ok},"ts":"{ts}"}}"#),
            ));
        }
        // A brute-force burst: many failed logins to one account within seconds.
        if second.rem_euclid(30) < 4 && t % 300 == 0 {
            let ip = format!("203.0.113.{}", 1 + self.rng.below(200));
            out.push((
                "logins",
                "admin".into(),
                format!(r#"{{"user_name":"admin","ip":"{ip}","success":false,"ts":"{ts}"}}"#),
            ));
        }
        if t % 1000 == 0 {
            let id = self.next_order;
            self.next_order += 1;
            let amount = 5.0 + (self.rng.below(20_000) as f64) / 100.0;
            let customer = USERS[self.rng.below(USERS.len() as u64) as usize];
            out.push(("orders", id.to_string(), format!(r#"{{"order_id":{id},"customer":"{customer}","amount":{amount:.2},"ts":"{ts}"}}"#)));
            // Most orders are paid a few seconds later; some never are.
            if self.rng.unit() < 0.85 {
                let due = t + 1000 + self.rng.below(6) as i64 * 1000;
                self.pending.insert((due, id), amount);
            }
        }
        while let Some(entry) = self.pending.first_entry() {
            let (due, id) = *entry.key();
            if due > t {
                break;
            }
            let amount = entry.remove();
            out.push((
                "payments",
                id.to_string(),
                format!(r#"{{"order_id":{id},"amount":{amount:.2},"ts":"{ts}"}}"#),
            ));
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Creates the topics on the embedded broker and produces events until `stop`,
/// in real time after a backfill of the last minute.
fn produce(stop: StopSignal) -> Result<(), String> {
    let servers = embedded::bootstrap_servers()?;
    let producer: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("linger.ms", "5")
        .create()
        .map_err(|e| format!("demo producer: {e}"))?;
    let mut generator = Generator::new();
    let mut events = Vec::new();
    let mut t = (now_ms() - BACKFILL_MS).div_euclid(TICK_MS) * TICK_MS;
    while !stop.is_stopped() {
        let now = now_ms();
        if t > now {
            std::thread::sleep(Duration::from_millis((t - now) as u64));
            continue;
        }
        generator.step(t, &mut events);
        for (topic, key, value) in events.drain(..) {
            let mut record = BaseRecord::to(topic).key(&key).payload(&value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) => {
                        tracing::debug!("demo producer: {e}; retrying");
                        record = r;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        }
        t += TICK_MS;
    }
    let _ = producer.flush(Duration::from_secs(5));
    Ok(())
}

/// Runs the demo until `stop` fires.
pub async fn run(vigil: &Vigil, stop: StopSignal) -> Result<(), String> {
    embedded::bootstrap_servers()?;
    for (topic, partitions) in TOPICS {
        embedded::create_topic(topic, *partitions)?;
    }
    let producer_stop = stop.clone();
    let producer = std::thread::Builder::new()
        .name("demo-producer".into())
        .spawn(move || produce(producer_stop))
        .map_err(|e| format!("cannot start the demo producer: {e}"))?;
    let mut banner = String::new();
    let _ = writeln!(banner, "Vigil demo: an embedded Kafka broker with live synthetic events; pipelines from examples/demo/:");
    for (name, _) in PIPELINES {
        let _ = writeln!(banner, "  - {name}");
    }
    let _ = writeln!(
        banner,
        "Alerts print below as their windows close. Ctrl-C stops."
    );
    eprint!("{banner}");
    let jobs = PIPELINES.iter().map(|(name, sql)| {
        let stop = stop.clone();
        async move {
            vigil
                .run_script_until(sql, OutputFormat::Table, stop)
                .await
                .map_err(|e| match e {
                    Error::Sql(e) => e.render(&format!("examples/demo ({name})"), sql),
                    Error::Engine(e) => format!("error in pipeline '{name}': {e}"),
                    Error::Options(e) => format!("error in pipeline '{name}': {e}"),
                })
        }
    });
    let results = futures::future::join_all(jobs).await;
    let produced = tokio::task::spawn_blocking(move || producer.join())
        .await
        .map_err(|e| e.to_string())?;
    for r in results {
        r?;
    }
    match produced {
        Ok(r) => r,
        Err(_) => Err("the demo producer panicked".into()),
    }
}
