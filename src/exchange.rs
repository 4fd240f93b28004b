//! `SET 'execution.exchange' = 'kafka'`: the job's keyed exchanges go
//! through Kafka topics instead of memory (see [`vigil_engine::shuffle`]).

use std::collections::BTreeMap;

use vigil_connectors::kafka::shuffle::KafkaShuffle;
use vigil_engine::graph::JobGraph;
use vigil_engine::state::key_groups_setting;

use crate::checkpointing::{job_id, RunOptions};

const PREFIX: &str = "execution.exchange.kafka.";

/// Where a job's Kafka exchanges live (`execution.exchange.kafka.*`).
pub struct KafkaExchange {
    /// librdkafka's properties, with `bootstrap.servers`.
    pub properties: BTreeMap<String, String>,
    /// The prefix of the job's topics.
    pub prefix: String,
    /// The replication factor of the topics the job creates.
    pub replication: i32,
    /// Key groups: partitions of each exchange topic.
    pub key_groups: u16,
}

impl KafkaExchange {
    /// Cuts `graph` at its keyed exchanges, through `shuffle`; returns how
    /// many operators read through it.
    pub fn cut(&self, graph: &mut JobGraph, shuffle: &KafkaShuffle) -> Result<usize, String> {
        graph
            .cut_exchanges(shuffle, self.key_groups)
            .map_err(|e| e.to_string())
    }

    /// The exchanges of one run of the job.
    pub fn shuffle(&self) -> KafkaShuffle {
        KafkaShuffle::new(self.properties.clone(), &self.prefix, self.replication)
    }
}

/// Cuts `graph` at its keyed exchanges when the settings ask for the Kafka
/// exchange; returns how many operators read through it.
pub fn cut_exchanges(
    graph: &mut JobGraph,
    settings: &BTreeMap<String, String>,
    run: &RunOptions,
) -> Result<usize, String> {
    match kafka_exchange(settings, run, false)? {
        Some(x) => x.cut(graph, &x.shuffle()),
        None => Ok(0),
    }
}

/// The Kafka exchange the settings ask for (`None`: the in-memory one);
/// `required` when the job cannot run without it (as several processes).
pub fn kafka_exchange(
    settings: &BTreeMap<String, String>,
    run: &RunOptions,
    required: bool,
) -> Result<Option<KafkaExchange>, String> {
    let kind = settings
        .get("execution.exchange")
        .map(|s| s.trim().to_ascii_lowercase());
    match kind.as_deref() {
        None | Some("memory") if !required => return Ok(None),
        None => {}
        Some("memory") => {
            return Err("a job running as several processes exchanges rows through Kafka: remove 'execution.exchange' = 'memory'".into())
        }
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
            format!("the Kafka exchange needs the brokers: SET '{PREFIX}bootstrap-servers' = 'host:9092'")
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
    Ok(Some(KafkaExchange {
        properties,
        prefix,
        replication,
        key_groups,
    }))
}
