//! `SET 'execution.exchange' = 'kafka'`: the job's keyed exchanges go
//! through Kafka topics instead of memory (see [`vigil_engine::shuffle`]).

use std::collections::BTreeMap;

use vigil_connectors::kafka::shuffle::KafkaShuffle;
use vigil_engine::graph::JobGraph;
use vigil_engine::state::key_groups_setting;

use crate::checkpointing::{job_id, RunOptions};

const PREFIX: &str = "execution.exchange.kafka.";

/// Cuts `graph` at its keyed exchanges when the settings ask for the Kafka
/// exchange; returns how many operators read through it.
pub fn cut_exchanges(
    graph: &mut JobGraph,
    settings: &BTreeMap<String, String>,
    run: &RunOptions,
) -> Result<usize, String> {
    let kind = settings
        .get("execution.exchange")
        .map(|s| s.trim().to_ascii_lowercase());
    match kind.as_deref() {
        None | Some("memory") => return Ok(0),
        Some("kafka") => {}
        Some(other) => {
            return Err(format!(
                "invalid 'execution.exchange' = '{other}'; write 'memory' (the default) or 'kafka'"
            ))
        }
    }
    let bootstrap = settings
        .get(&format!("{PREFIX}bootstrap-servers"))
        .ok_or_else(|| {
            format!("'execution.exchange' = 'kafka' needs the brokers: SET '{PREFIX}bootstrap-servers' = 'host:9092'")
        })?;
    let mut properties: BTreeMap<String, String> = settings
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(PREFIX)
                .and_then(|k| k.strip_prefix("properties."))
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    properties.insert("bootstrap.servers".into(), bootstrap.clone());
    let prefix = settings
        .get(&format!("{PREFIX}topic-prefix"))
        .cloned()
        .unwrap_or_else(|| format!("vigil-{}", job_id(settings, run)));
    let replication = match settings.get(&format!("{PREFIX}replication-factor")) {
        Some(v) => v
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!(
                    "invalid '{PREFIX}replication-factor' = '{v}'; it must be a positive integer"
                )
            })?,
        None => 1,
    };
    let key_groups =
        key_groups_setting(settings.get("pipeline.max-parallelism").map(String::as_str))?;
    let service = KafkaShuffle::new(properties, &prefix, replication);
    graph
        .cut_exchanges(&service, key_groups)
        .map_err(|e| e.to_string())
}
