//! What the Kafka source and sink share: client configuration, logging of
//! librdkafka's events into `tracing`, and the wait for topic metadata with
//! retries while the brokers are unreachable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use vigil_engine::control::StopSignal;

use super::embedded;

/// Routes librdkafka's log lines and errors to `tracing`, tagged with the table.
#[derive(Debug, Clone)]
pub struct LogContext {
    /// The table the client serves.
    pub table: String,
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let table = &self.table;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(%table, "kafka {fac}: {log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(%table, "kafka {fac}: {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(%table, "kafka {fac}: {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(%table, "kafka {fac}: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // The end of a partition is an event the consumer handles, not a failure.
        if matches!(error, KafkaError::PartitionEOF(_))
            || matches!(&error, KafkaError::Global(c) if *c == RDKafkaErrorCode::PartitionEOF)
        {
            return;
        }
        // Broker connection failures arrive here; librdkafka retries them itself.
        tracing::warn!(table = %self.table, "kafka: {error}: {reason}");
    }
}

impl ConsumerContext for LogContext {}

/// Counts failed deliveries (after librdkafka's own retries).
pub struct DeliveryContext {
    /// Logs for the table.
    pub log: LogContext,
    /// Failed deliveries so far.
    pub failed: AtomicU64,
    /// The last failure.
    pub last_error: Mutex<Option<String>>,
}

impl DeliveryContext {
    /// A context logging for `table`, no failure yet.
    pub fn new(table: &str) -> Self {
        Self {
            log: LogContext {
                table: table.to_string(),
            },
            failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        self.log.log(level, fac, msg);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(e.to_string());
            }
        }
    }
}

/// A librdkafka configuration from `properties.*`, with `embedded` resolved.
pub fn client_config(properties: &BTreeMap<String, String>) -> Result<ClientConfig, String> {
    let mut config = ClientConfig::new();
    for (k, v) in properties {
        config.set(k, v);
    }
    let bootstrap = properties
        .get("bootstrap.servers")
        .map(String::as_str)
        .unwrap_or_default();
    config.set("bootstrap.servers", embedded::resolve(bootstrap)?);
    // librdkafka's logs go through the context at their own level.
    config.set_log_level(RDKafkaLogLevel::Warning);
    Ok(config)
}

/// Whether an error is worth retrying (the brokers may come back).
pub fn is_transient(e: &KafkaError) -> bool {
    let code = match e {
        KafkaError::MetadataFetch(c)
        | KafkaError::OffsetFetch(c)
        | KafkaError::MessageConsumption(c)
        | KafkaError::MessageProduction(c)
        | KafkaError::ConsumerCommit(c)
        | KafkaError::Global(c) => *c,
        _ => return false,
    };
    matches!(
        code,
        RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::CoordinatorLoadInProgress
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::QueueFull
    )
}

/// An attempt's failure: retry (with backoff) or give up.
#[derive(Debug)]
pub enum Attempt {
    /// The brokers may come back: log and try again.
    Retry(String),
    /// A definitive error (missing topic, bad configuration).
    Fatal(String),
}

impl From<KafkaError> for Attempt {
    fn from(e: KafkaError) -> Self {
        if is_transient(&e) {
            Attempt::Retry(e.to_string())
        } else {
            Attempt::Fatal(e.to_string())
        }
    }
}

/// Runs `f` until it succeeds, fails definitively or the job is stopped (None),
/// backing off from 250 ms to 10 s between attempts and logging each failure.
pub fn with_retries<T>(
    what: &str,
    table: &str,
    stop: &StopSignal,
    mut f: impl FnMut() -> Result<T, Attempt>,
) -> Result<Option<T>, String> {
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        match f() {
            Ok(v) => return Ok(Some(v)),
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Retry(e)) => {
                tracing::warn!(%table, attempt, "{what} failed: {e}; retrying in {backoff:?}");
            }
        }
        let deadline = std::time::Instant::now() + backoff;
        while std::time::Instant::now() < deadline {
            if stop.is_stopped() {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
        attempt += 1;
    }
}

/// The partitions of each topic, failing (definitively) for a topic that does
/// not exist.
pub fn topic_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topics: &[String],
    brokers: &str,
) -> Result<Vec<(String, Vec<i32>)>, Attempt> {
    let mut out = vec![];
    for topic in topics {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            return Err(Attempt::Retry(format!(
                "no metadata for topic '{topic}' yet"
            )));
        };
        match t.error() {
            None => {}
            Some(e) => {
                let code: RDKafkaErrorCode = e.into();
                if code == RDKafkaErrorCode::UnknownTopicOrPartition {
                    return Err(Attempt::Fatal(format!(
                        "topic '{topic}' does not exist on brokers '{brokers}'; Vigil does not create input topics: create it first"
                    )));
                }
                if code == RDKafkaErrorCode::LeaderNotAvailable {
                    return Err(Attempt::Retry(format!("topic '{topic}': {code}")));
                }
                return Err(Attempt::Fatal(format!(
                    "topic '{topic}' on brokers '{brokers}': {code}"
                )));
            }
        }
        if t.partitions().is_empty() {
            return Err(Attempt::Fatal(format!(
                "topic '{topic}' does not exist on brokers '{brokers}' (no partitions); Vigil does not create input topics: create it first"
            )));
        }
        let mut parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        parts.sort_unstable();
        out.push((topic.clone(), parts));
    }
    Ok(out)
}

/// Waits until every record `producer` sent is acknowledged (or failed),
/// logging while it waits.
pub fn flush_producer(producer: &ThreadedProducer<DeliveryContext>) {
    while producer.flush(Duration::from_secs(5)).is_err() {
        tracing::warn!(
            table = %producer.context().log.table,
            in_flight = producer.in_flight_count(),
            "waiting for Kafka to acknowledge records"
        );
    }
}
