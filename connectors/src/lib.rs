//! Vigil's connectors: sources, sinks and formats.
//!
//! - `filesystem`: bounded source (a file or a directory of files) and sink, a
//!   record a line, as Flink's filesystem connector.
//! - formats ([`format`]): `json`, `csv`, `raw` and CloudEvents, for files and
//!   Kafka values and keys.
//! - dead letters ([`dlq`]) for records a source cannot decode.
//! - `print`: writes rows to stdout as Flink's print connector does.
//! - `blackhole`: discards rows (for benchmarks).
//! - `nexmark`: the Nexmark benchmark's events, with Flink's options and schema.
//! - `kafka`: topics as sources and sinks, with Flink's options; `upsert-kafka`.
//! - `metrics`: window results as Prometheus gauges (see [`metrics`]).

pub mod blackhole;
pub mod dlq;
pub mod error;
pub mod filesystem;
pub mod format;
pub mod json;
pub mod kafka;
pub mod metrics;
pub mod nexmark;
pub mod options;
pub mod print;
pub mod row_id;
pub mod sink_rejects;
pub mod webhook;

use std::sync::Arc;

use vigil_engine::connector::ConnectorRegistry;

/// A registry with every connector of this crate.
pub fn default_registry() -> ConnectorRegistry {
    let mut r = ConnectorRegistry::new();
    r.register(Arc::new(filesystem::FilesystemConnector));
    r.register(Arc::new(print::PrintConnector));
    r.register(Arc::new(blackhole::BlackholeConnector));
    r.register(Arc::new(nexmark::NexmarkConnector));
    r.register(Arc::new(kafka::KafkaConnector));
    r.register(Arc::new(kafka::upsert::UpsertKafkaConnector));
    r.register(Arc::new(metrics::MetricsConnector));
    r.register(Arc::new(webhook::WebhookConnector));
    r
}
