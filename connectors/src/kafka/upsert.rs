//! The `upsert-kafka` connector (Flink's), as a sink: the table's `PRIMARY
//! KEY ... NOT ENFORCED` columns are each record's key (`key.format`), the row
//! its value (`value.format`); an updating result writes each key's latest row
//! and a tombstone (a null value) when the row is deleted, so a compacted topic
//! holds the result table. Retractions of an update's old row (`-U`) are not
//! written, as in Flink. Delivery is the `kafka` sink's.

use std::collections::BTreeMap;

use vigil_engine::connector::{ConnectorFactory, Sink, Source, TableSpec};
use vigil_engine::metrics::Metrics;
use vigil_engine::Result;

use super::{options, sink};
use crate::error::connector_error;

/// The `upsert-kafka` connector.
pub struct UpsertKafkaConnector;

/// Options Flink's upsert-kafka accepts that change nothing here.
const IGNORED: [&str; 3] = [
    "sink.buffer-flush.max-rows",
    "sink.buffer-flush.interval",
    "sink.parallelism",
];

impl ConnectorFactory for UpsertKafkaConnector {
    fn name(&self) -> &'static str {
        "upsert-kafka"
    }

    fn create_source(&self, spec: &TableSpec, _metrics: &Metrics) -> Result<Box<dyn Source>> {
        Err(connector_error(
            "upsert-kafka",
            spec,
            "not supported yet: reading an upsert-kafka table (a changelog source); read the topic with 'connector' = 'kafka'",
        ))
    }

    fn accepts_updates(&self, _spec: &TableSpec) -> bool {
        true
    }

    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>> {
        if spec.primary_key.is_empty() {
            return Err(connector_error(
                "upsert-kafka",
                spec,
                "an upsert-kafka table needs a primary key, its records' key: add PRIMARY KEY (col, ...) NOT ENFORCED",
            ));
        }
        if spec.option("key.fields").is_some() {
            return Err(connector_error(
                "upsert-kafka",
                spec,
                "'key.fields' is not an upsert-kafka option: the key is the PRIMARY KEY",
            ));
        }
        for (required, formats) in [
            ("key.format", super::options::KEY_FORMATS),
            ("value.format", super::options::FORMATS),
        ] {
            if spec.option(required).is_none() {
                return Err(connector_error(
                    "upsert-kafka",
                    spec,
                    format!(
                        "missing required option '{required}'; supported: {}",
                        formats.join(", ")
                    ),
                ));
            }
        }
        // As a `kafka` sink keyed by the primary key.
        let mut options: BTreeMap<String, String> = spec
            .options
            .iter()
            .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        options.insert("connector".into(), "kafka".into());
        options.insert("key.fields".into(), spec.primary_key.join(";"));
        let keyed = TableSpec {
            options,
            ..spec.clone()
        };
        let opts = options::parse(&keyed, false)?;
        Ok(Box::new(sink::KafkaSink::new(&keyed, opts, metrics)?))
    }
}
