//! The `upsert-kafka` connector (Flink's): the table's `PRIMARY KEY ... NOT
//! ENFORCED` columns are each record's key (`key.format`), the row its value
//! (`value.format`).
//!
//! - As a sink, an updating result writes each key's latest row and a
//!   tombstone (a null value) when the row is deleted, so a compacted topic
//!   holds the result table. Retractions of an update's old row (`-U`) are
//!   not written, as in Flink. Delivery is the `kafka` sink's.
//! - As a source, the topic is read from its earliest offset as a changelog:
//!   a record is its key's row now, a tombstone deletes it (see
//!   `changes`); the planner normalises that by the key, so a GROUP BY, a
//!   join or a temporal join (a versioned table) sees `-U`/`+U` and `-D`.

use std::collections::BTreeMap;

use vigil_engine::connector::{ConnectorFactory, Sink, Source, SourceChangelog, TableSpec};
use vigil_engine::metrics::Metrics;
use vigil_engine::Result;

use super::{options, sink, source};
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

    fn create_source(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Source>> {
        let keyed = as_keyed_kafka(spec)?;
        let mut options = keyed.options.clone();
        if let Some(mode) = spec.option("scan.startup.mode") {
            return Err(connector_error(
                "upsert-kafka",
                spec,
                format!("'scan.startup.mode' = '{mode}' is not an upsert-kafka option: an upsert table is read from the earliest offset, as in Flink"),
            ));
        }
        options.insert("scan.startup.mode".into(), "earliest-offset".into());
        let keyed = TableSpec { options, ..keyed };
        let opts = options::parse(&keyed, true)?;
        Ok(Box::new(source::KafkaSource::upsert(
            &keyed, opts, metrics,
        )?))
    }

    fn source_changelog(&self, _spec: &TableSpec) -> Result<SourceChangelog> {
        Ok(SourceChangelog::Upsert)
    }

    fn accepts_updates(&self, _spec: &TableSpec) -> bool {
        true
    }

    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>> {
        let keyed = as_keyed_kafka(spec)?;
        let opts = options::parse(&keyed, false)?;
        Ok(Box::new(sink::KafkaSink::new(&keyed, opts, metrics)?))
    }

    fn readable_metadata(&self) -> &'static [(&'static str, &'static str)] {
        super::layout::READABLE
    }
}

/// `spec` as a `kafka` table keyed by its primary key, after checking the
/// options upsert-kafka needs.
fn as_keyed_kafka(spec: &TableSpec) -> Result<TableSpec> {
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
    if spec.option("value.format") == Some("debezium-json") {
        return Err(connector_error(
            "upsert-kafka",
            spec,
            "'value.format' = 'debezium-json' is a changelog of its own: read it with 'connector' = 'kafka'",
        ));
    }
    // As a `kafka` table keyed by the primary key.
    let mut options: BTreeMap<String, String> = spec
        .options
        .iter()
        .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    options.insert("connector".into(), "kafka".into());
    options.insert("key.fields".into(), spec.primary_key.join(";"));
    Ok(TableSpec {
        options,
        ..spec.clone()
    })
}
