//! The `kafka` connector, with Flink's options: a source reading one or more
//! topics (start and optional stop offsets, per-partition watermarks, idle
//! partitions, metadata columns, JSON key and value) and a sink, at-least-once
//! with deterministic row ids or exactly-once with transactions.
//! `'properties.bootstrap.servers' = 'embedded'` uses an in-process broker.

pub mod changes;
pub mod client;
pub mod consumer;
pub mod embedded;
pub mod layout;
pub mod membership;
pub mod options;
pub mod shuffle;
pub mod sink;
pub mod source;
pub mod transactional;
pub mod upsert;

use vigil_engine::connector::{ConnectorFactory, Sink, Source, SourceChangelog, TableSpec};
use vigil_engine::metrics::Metrics;
use vigil_engine::Result;

/// The `kafka` connector.
pub struct KafkaConnector;

impl ConnectorFactory for KafkaConnector {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn create_source(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Source>> {
        let opts = options::parse(spec, true)?;
        Ok(Box::new(source::KafkaSource::new(spec, opts, metrics)?))
    }

    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>> {
        let opts = options::parse(spec, false)?;
        if opts.value_format.is_changelog() {
            return Err(crate::error::connector_error(
                "kafka",
                spec,
                format!(
                    "not supported yet: writing '{}'; write 'json' or 'upsert-kafka'",
                    opts.value_format.name()
                ),
            ));
        }
        Ok(Box::new(sink::KafkaSink::new(spec, opts, metrics)?))
    }

    fn source_changelog(&self, spec: &TableSpec) -> Result<SourceChangelog> {
        let opts = options::parse(spec, true)?;
        Ok(if opts.value_format.is_changelog() {
            SourceChangelog::Full
        } else {
            SourceChangelog::Append
        })
    }

    fn readable_metadata(&self) -> &'static [(&'static str, &'static str)] {
        layout::READABLE
    }

    fn writable_metadata(&self) -> &'static [(&'static str, &'static str)] {
        layout::WRITABLE
    }
}
