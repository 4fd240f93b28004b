//! Dead letters: records a source cannot decode go, unchanged, to a
//! dead-letter output named by the source table's `dlq.*` options, with the
//! error, the source and the position (file and line, or topic, partition
//! and offset); they are counted in `vigil_dead_letters_total`, and the job
//! goes on. Without a dead-letter output they are logged and counted as
//! malformed, never dropped silently.
//!
//! Sinks have the same output under `sink.dlq.*` (so one table can have
//! both): a row a sink's format cannot carry (a CloudEvent without a
//! source, a timestamp no calendar holds, a string that is no timestamp for
//! Kafka's `timestamp` metadata) goes there, shown as Flink prints rows, as
//! does a request a webhook refused; the other rows are delivered.
//!
//! - `'dlq.connector' = 'filesystem'`, `'dlq.path' = '/dir/or/file.jsonl'`: one
//!   JSON object per line: `{"source", "position", "error", "record"}` (the
//!   record as text, or `"record_base64"` when it is not UTF-8).
//! - `'dlq.connector' = 'kafka'`, `'dlq.topic'`, `'dlq.properties.bootstrap.servers'`
//!   (and any `dlq.properties.*`): the record's value (and its key, when the
//!   table reads keys), with the error, source and position in `vigil-dlq-*`
//!   headers.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use vigil_engine::connector::TableSpec;
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::{EngineError, Result};

use crate::error::connector_error;

/// The options a source table may carry for its dead letters.
pub const DLQ_OPTIONS: &[&str] = &["dlq.connector", "dlq.path", "dlq.topic"];

/// The prefix of a sink's dead-letter options (`sink.dlq.connector`, ...).
pub const SINK_PREFIX: &str = "sink.";

/// Whether `key` is a source's dead-letter option (for a connector's option check).
pub fn is_dlq_option(key: &str) -> bool {
    DLQ_OPTIONS.contains(&key) || key.starts_with("dlq.properties.")
}

/// Whether `key` is a sink's dead-letter option (`sink.dlq.*`).
pub fn is_sink_dlq_option(key: &str) -> bool {
    key.strip_prefix(SINK_PREFIX).is_some_and(is_dlq_option)
}

/// Where a bad record was.
#[derive(Debug, Clone)]
pub enum Position {
    /// A line of a file.
    Line {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
    },
    /// A request a webhook refused (status 0: retries ran out).
    Request {
        /// Where it was sent.
        url: String,
        /// The answer's status.
        status: u16,
    },
    /// A row a sink could not encode.
    Row {
        /// The sink table.
        sink: String,
    },
    /// A Kafka record.
    Offset {
        /// Its topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
    },
}

impl Position {
    fn json(&self) -> serde_json::Value {
        match self {
            Position::Line { file, line } => serde_json::json!({"file": file, "line": line}),
            Position::Request { url, status } => serde_json::json!({"url": url, "status": status}),
            Position::Row { sink } => serde_json::json!({ "sink": sink }),
            Position::Offset {
                topic,
                partition,
                offset,
            } => serde_json::json!({"topic": topic, "partition": partition, "offset": offset}),
        }
    }

    fn text(&self) -> String {
        match self {
            Position::Line { file, line } => format!("{file}:{line}"),
            Position::Request { url, status } => format!("{url} ({status})"),
            Position::Row { sink } => format!("sink {sink}"),
            Position::Offset {
                topic,
                partition,
                offset,
            } => format!("{topic}/{partition}@{offset}"),
        }
    }
}

/// A record that could not be decoded.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    /// Where it was.
    pub position: Position,
    /// Why it was rejected.
    pub error: &'a str,
    /// Its key (Kafka), unchanged.
    pub key: Option<&'a [u8]>,
    /// The record (a Kafka value, a file's line), unchanged.
    pub record: &'a [u8],
    /// Headers that belong to the record (a binary-mode CloudEvent's `ce_*`).
    pub headers: Vec<(&'static str, String)>,
}

enum Target {
    File {
        path: PathBuf,
        out: Option<std::io::BufWriter<std::fs::File>>,
    },
    Kafka {
        topic: String,
        config: rdkafka::ClientConfig,
        /// Created at the first dead letter (most jobs never have one).
        producer: Option<FutureProducer>,
    },
}

/// A source's dead-letter output.
pub struct DeadLetters {
    table: String,
    target: Target,
    count: Counter,
}

impl DeadLetters {
    /// The output a source's `dlq.*` options ask for, if any.
    pub fn from_spec(spec: &TableSpec, metrics: &Metrics) -> Result<Option<Self>> {
        Self::with_prefix(spec, metrics, "")
    }

    /// The output a sink's `sink.dlq.*` options ask for, if any.
    pub fn for_sink(spec: &TableSpec, metrics: &Metrics) -> Result<Option<Self>> {
        Self::with_prefix(spec, metrics, SINK_PREFIX)
    }

    fn with_prefix(spec: &TableSpec, metrics: &Metrics, prefix: &str) -> Result<Option<Self>> {
        let key = |k: &str| format!("{prefix}dlq.{k}");
        let option = |k: &str| spec.option(&key(k));
        let Some(connector) = option("connector") else {
            let ours = |k: &String| k.strip_prefix(prefix).is_some_and(is_dlq_option);
            if spec.options.keys().any(ours) {
                return Err(connector_error(
                    "dlq",
                    spec,
                    format!(
                        "'{prefix}dlq.*' options need '{}' = 'filesystem' or 'kafka'",
                        key("connector")
                    ),
                ));
            }
            return Ok(None);
        };
        let err = |m: String| connector_error("dlq", spec, m);
        let target = match connector {
            "filesystem" => {
                let raw = option("path").ok_or_else(|| {
                    err(format!(
                        "'{}' = 'filesystem' needs '{}'",
                        key("connector"),
                        key("path")
                    ))
                })?;
                let mut path = PathBuf::from(raw.strip_prefix("file://").unwrap_or(raw));
                if path.is_dir() || raw.ends_with('/') {
                    path = path.join(format!("{}.dlq.jsonl", spec.name));
                }
                Target::File { path, out: None }
            }
            "kafka" => {
                let topic = option("topic")
                    .ok_or_else(|| {
                        err(format!(
                            "'{}' = 'kafka' needs '{}'",
                            key("connector"),
                            key("topic")
                        ))
                    })?
                    .to_string();
                let mut config = rdkafka::ClientConfig::new();
                let mut servers = false;
                let properties = key("properties.");
                for (k, v) in &spec.options {
                    if let Some(p) = k.strip_prefix(properties.as_str()) {
                        servers |= p == "bootstrap.servers";
                        config.set(p, v);
                    }
                }
                if !servers {
                    return Err(err(format!(
                        "'{}' = 'kafka' needs '{}bootstrap.servers'",
                        key("connector"),
                        properties
                    )));
                }
                config.set("acks", "all");
                // A dead letter is the record unchanged, however large the
                // source let it be; the broker's own limit still applies.
                if !spec
                    .options
                    .contains_key(&format!("{properties}message.max.bytes"))
                {
                    config.set("message.max.bytes", "1000000000");
                }
                Target::Kafka {
                    topic,
                    config,
                    producer: None,
                }
            }
            other => {
                return Err(err(format!(
                    "'{}' = '{other}' is not supported; use 'filesystem' or 'kafka'",
                    key("connector")
                )))
            }
        };
        Ok(Some(Self {
            table: spec.name.clone(),
            target,
            count: metrics.counter(names::DEAD_LETTERS, &spec.name),
        }))
    }

    /// Writes `letters` and waits until they are stored (a failure to store
    /// a dead letter fails the job: it must not vanish). Kafka's
    /// acknowledgements are awaited, not blocked on, so a source's task goes
    /// on serving its runtime meanwhile.
    pub async fn send(&mut self, letters: &[DeadLetter<'_>]) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let table = self.table.clone();
        match &mut self.target {
            Target::File { path, out } => {
                if out.is_none() {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir).map_err(|e| EngineError::Connector {
                            connector: "dlq".into(),
                            table: table.clone(),
                            message: format!("cannot create '{}': {e}", dir.display()),
                        })?;
                    }
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&*path)
                        .map_err(|e| EngineError::Connector {
                            connector: "dlq".into(),
                            table: table.clone(),
                            message: format!("cannot open '{}': {e}", path.display()),
                        })?;
                    *out = Some(std::io::BufWriter::new(f));
                }
                let Some(w) = out.as_mut() else {
                    return Ok(());
                };
                for l in letters {
                    let mut obj = serde_json::json!({
                        "source": table,
                        "position": l.position.json(),
                        "error": l.error,
                    });
                    match std::str::from_utf8(l.record) {
                        Ok(s) => obj["record"] = s.into(),
                        Err(_) => obj["record_base64"] = base64(l.record).into(),
                    }
                    if let Some(k) = l.key {
                        obj["key"] = String::from_utf8_lossy(k).into_owned().into();
                    }
                    if !l.headers.is_empty() {
                        obj["headers"] = l
                            .headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_str())))
                            .collect::<serde_json::Map<_, _>>()
                            .into();
                    }
                    writeln!(w, "{obj}").map_err(|e| EngineError::Connector {
                        connector: "dlq".into(),
                        table: table.clone(),
                        message: format!("cannot write '{}': {e}", path.display()),
                    })?;
                }
                w.flush().map_err(|e| EngineError::Connector {
                    connector: "dlq".into(),
                    table: table.clone(),
                    message: format!("cannot write '{}': {e}", path.display()),
                })?;
            }
            Target::Kafka {
                topic,
                config,
                producer,
            } => {
                if producer.is_none() {
                    *producer = Some(config.create().map_err(|e| EngineError::Connector {
                        connector: "dlq".into(),
                        table: table.clone(),
                        message: format!("invalid dead-letter Kafka configuration: {e}"),
                    })?);
                }
                let Some(producer) = producer.as_ref() else {
                    return Ok(());
                };
                let fail = |message: String| EngineError::Connector {
                    connector: "dlq".into(),
                    table: table.clone(),
                    message,
                };
                let mut deliveries = Vec::with_capacity(letters.len());
                for l in letters {
                    let position = l.position.text();
                    let mut headers = OwnedHeaders::new_with_capacity(3 + l.headers.len());
                    for (k, v) in &l.headers {
                        headers = headers.insert(Header {
                            key: k,
                            value: Some(v.as_str()),
                        });
                    }
                    let headers = headers
                        .insert(Header {
                            key: "vigil-dlq-error",
                            value: Some(l.error),
                        })
                        .insert(Header {
                            key: "vigil-dlq-source",
                            value: Some(table.as_str()),
                        })
                        .insert(Header {
                            key: "vigil-dlq-position",
                            value: Some(position.as_str()),
                        });
                    let mut record = FutureRecord::<[u8], [u8]>::to(topic)
                        .payload(l.record)
                        .headers(headers);
                    if let Some(k) = l.key {
                        record = record.key(k);
                    }
                    loop {
                        match producer.send_result(record) {
                            Ok(delivery) => {
                                deliveries.push(delivery);
                                break;
                            }
                            Err((
                                rdkafka::error::KafkaError::MessageProduction(
                                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                                ),
                                r,
                            )) => {
                                record = r;
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            Err((e, _)) => {
                                return Err(fail(format!(
                                    "cannot send a dead letter to '{topic}': {e}"
                                )))
                            }
                        }
                    }
                }
                for delivery in deliveries {
                    match tokio::time::timeout(Duration::from_secs(30), delivery).await {
                        Ok(Ok(Ok(_))) => {}
                        Ok(Ok(Err((e, _)))) => {
                            return Err(fail(format!(
                                "a dead letter was not stored in '{topic}': {e}"
                            )))
                        }
                        Ok(Err(_)) => {
                            return Err(fail(format!("a dead letter to '{topic}' was cancelled")))
                        }
                        Err(_) => {
                            return Err(fail(format!(
                                "dead letters were not acknowledged by '{topic}' within 30 s"
                            )))
                        }
                    }
                }
            }
        }
        self.count.add(letters.len() as u64);
        Ok(())
    }
}

/// Standard base64 (for records that are not text).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
    }
}
