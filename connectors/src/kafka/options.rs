//! The Kafka connector's `WITH (...)` options, with Flink's names.

use std::collections::BTreeMap;
use std::time::Duration;

use vigil_engine::connector::TableSpec;
use vigil_engine::Result;

use crate::error::connector_error;
use crate::format::{is_format_option, Format, Part};

/// The formats of Kafka values.
pub const FORMATS: &[&str] = &["json", "csv", "raw", "cloudevents", "debezium-json"];
/// The formats of Kafka keys.
pub const KEY_FORMATS: &[&str] = &["json", "csv", "raw"];

/// Options this connector understands besides `properties.*` and `json.*`.
pub const OPTIONS: &[&str] = &[
    "topic",
    "format",
    "value.format",
    "key.format",
    "key.fields",
    "key.fields-prefix",
    "value.fields-include",
    "scan.startup.mode",
    "scan.startup.timestamp-millis",
    "scan.startup.specific-offsets",
    "scan.bounded.mode",
    "scan.bounded.timestamp-millis",
    "scan.bounded.specific-offsets",
    "scan.topic-partition-discovery.interval",
    "scan.parallelism",
    "sink.delivery-guarantee",
    "sink.partitioner",
    "sink.parallelism",
    "sink.transactional-id-prefix",
];

/// JSON format options accepted for the value and the key.
pub const JSON_OPTIONS: &[&str] = &[
    "json.ignore-parse-errors",
    "json.fail-on-missing-field",
    "json.timestamp-format.standard",
    "json.encode.decimal-as-plain-number",
    "json.map-null-key.mode",
    "json.map-null-key.literal",
];

/// Where reading starts (`scan.startup.mode`).
#[derive(Debug, Clone, PartialEq)]
pub enum StartupMode {
    /// The oldest retained record of each partition.
    Earliest,
    /// The end of each partition: only new records.
    Latest,
    /// The consumer group's committed offsets (Flink's default).
    GroupOffsets,
    /// The first record at or after this time (ms since the epoch).
    Timestamp(i64),
    /// Given offsets per partition; other partitions as group offsets.
    Specific(BTreeMap<i32, i64>),
}

/// Where a bounded read stops (`scan.bounded.mode`); unbounded when None.
#[derive(Debug, Clone, PartialEq)]
pub enum BoundedMode {
    /// The end of each partition when the job starts.
    Latest,
    /// The first record at or after this time (exclusive).
    Timestamp(i64),
    /// The consumer group's committed offsets.
    GroupOffsets,
    /// Given offsets per partition (exclusive).
    Specific(BTreeMap<i32, i64>),
}

/// Which columns the record's value holds (`value.fields-include`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFields {
    /// Every physical column, key columns included (Flink's default).
    All,
    /// Every physical column but the key columns.
    ExceptKey,
}

/// The parsed options of a Kafka table.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// The topics (`topic`, `;`-separated).
    pub topics: Vec<String>,
    /// `properties.*` with the prefix removed, for librdkafka.
    pub properties: BTreeMap<String, String>,
    /// `scan.startup.mode`.
    pub startup: StartupMode,
    /// `scan.bounded.mode`.
    pub bounded: Option<BoundedMode>,
    /// `key.fields` (empty when the key is not used).
    pub key_fields: Vec<String>,
    /// `key.fields-prefix`.
    pub key_prefix: String,
    /// `value.fields-include`.
    pub value_fields: ValueFields,
    /// The values' format (`value.format`, or `format`).
    pub value_format: Format,
    /// The keys' format (`key.format`), when the table has key fields.
    pub key_format: Option<Format>,
    /// `table.exec.source.idle-timeout`; None disables idleness.
    pub idle_timeout: Option<Duration>,
    /// Positions restored from a checkpoint; they override the startup and
    /// bounded modes for the partitions they name.
    pub resume: Vec<ResumePoint>,
    /// Which subtask of how many reads the table: it reads the partitions
    /// [`owner`] gives it.
    pub subtask: (usize, usize),
}

/// The subtask of `n` that reads `partition` of `topic`: Flink's
/// `KafkaSourceEnumerator.getSplitOwner` (a topic's partitions go round
/// the subtasks from a start its name's Java hash picks), so a job moved
/// from Flink spreads partitions as Flink did.
pub fn owner(topic: &str, partition: i32, n: usize) -> usize {
    let n = n.max(1) as i64;
    let start = (java_hash(topic).wrapping_mul(31) & 0x7FFF_FFFF) as i64 % n;
    ((start + partition as i64) % n) as usize
}

/// Java's `String.hashCode`: over UTF-16 code units, wrapping.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Where a partition resumes after a restore.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResumePoint {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to read.
    pub next: i64,
    /// Where a bounded read stops (as resolved by the first run).
    pub stop: Option<i64>,
}

impl KafkaOptions {
    /// The bootstrap servers as written (`embedded` for the in-process broker).
    pub fn bootstrap(&self) -> &str {
        self.properties
            .get("bootstrap.servers")
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The consumer group, if set.
    pub fn group_id(&self) -> Option<&str> {
        self.properties.get("group.id").map(String::as_str)
    }
}

fn parse_millis(spec: &TableSpec, key: &str) -> Result<i64> {
    let v = spec.required("kafka", key)?;
    v.trim().parse::<i64>().map_err(|_| {
        connector_error(
            "kafka",
            spec,
            format!("'{key}' must be milliseconds since the epoch, not '{v}'"),
        )
    })
}

/// Parses Flink's `partition:0,offset:42;partition:1,offset:300`.
fn parse_specific(spec: &TableSpec, key: &str) -> Result<BTreeMap<i32, i64>> {
    let v = spec.required("kafka", key)?;
    let bad = || {
        connector_error(
            "kafka",
            spec,
            format!(
                "'{key}' must look like 'partition:0,offset:42;partition:1,offset:300', not '{v}'"
            ),
        )
    };
    let mut out = BTreeMap::new();
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (p, o) = part.split_once(',').ok_or_else(bad)?;
        let p = p.trim().strip_prefix("partition:").ok_or_else(bad)?;
        let o = o.trim().strip_prefix("offset:").ok_or_else(bad)?;
        out.insert(
            p.trim().parse().map_err(|_| bad())?,
            o.trim().parse().map_err(|_| bad())?,
        );
    }
    Ok(out)
}

pub use vigil_engine::time::parse_duration;

/// Validates and parses the options of `spec`; `source` is false for a sink,
/// which ignores the scan options.
pub fn parse(spec: &TableSpec, source: bool) -> Result<KafkaOptions> {
    let unknown: Vec<&str> = spec
        .options
        .keys()
        .map(String::as_str)
        .filter(|k| {
            *k != "connector"
                && !OPTIONS.contains(k)
                && !k.starts_with("properties.")
                && !JSON_OPTIONS.contains(k)
                && !k
                    .strip_prefix("key.")
                    .or_else(|| k.strip_prefix("value."))
                    .is_some_and(|rest| JSON_OPTIONS.contains(&rest))
                && !is_format_option(k, Part::Value)
                && !is_format_option(k, Part::Key)
        })
        // Dead-letter options: `dlq.*` for the table as a source, `sink.dlq.*`
        // as a sink (one table may be both).
        .filter(|k| !crate::dlq::is_dlq_option(k) && !crate::dlq::is_sink_dlq_option(k))
        .collect();
    if !unknown.is_empty() {
        return Err(connector_error(
            "kafka",
            spec,
            format!(
                "unsupported option(s) {}; supported: connector, properties.*, {}, {}",
                unknown
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                OPTIONS.join(", "),
                JSON_OPTIONS.join(", ")
            ),
        ));
    }
    let err = |m: String| connector_error("kafka", spec, m);
    let topics: Vec<String> = spec
        .required("kafka", "topic")?
        .split(';')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if topics.is_empty() {
        return Err(err(
            "'topic' is empty; name one topic or several separated by ';'".into(),
        ));
    }
    let Some(value_format) = Format::from_spec("kafka", spec, Part::Value, FORMATS)? else {
        return Err(err(format!(
            "missing required option 'format' (or 'value.format'); supported: {}",
            FORMATS.join(", ")
        )));
    };
    let properties: BTreeMap<String, String> = spec
        .options
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("properties.")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    if !properties.contains_key("bootstrap.servers") {
        return Err(err("missing required option 'properties.bootstrap.servers' (host:port,... or 'embedded' for Vigil's in-process broker)".into()));
    }
    let startup = match spec.option("scan.startup.mode").unwrap_or("group-offsets") {
        "earliest-offset" => StartupMode::Earliest,
        "latest-offset" => StartupMode::Latest,
        "group-offsets" => StartupMode::GroupOffsets,
        "timestamp" => StartupMode::Timestamp(parse_millis(spec, "scan.startup.timestamp-millis")?),
        "specific-offsets" => StartupMode::Specific(parse_specific(spec, "scan.startup.specific-offsets")?),
        other => {
            return Err(err(format!(
                "invalid 'scan.startup.mode' = '{other}'; use earliest-offset, latest-offset, group-offsets, timestamp or specific-offsets"
            )))
        }
    };
    let bounded = match spec.option("scan.bounded.mode").unwrap_or("unbounded") {
        "unbounded" => None,
        "latest-offset" => Some(BoundedMode::Latest),
        "group-offsets" => Some(BoundedMode::GroupOffsets),
        "timestamp" => Some(BoundedMode::Timestamp(parse_millis(spec, "scan.bounded.timestamp-millis")?)),
        "specific-offsets" => Some(BoundedMode::Specific(parse_specific(spec, "scan.bounded.specific-offsets")?)),
        other => {
            return Err(err(format!(
                "invalid 'scan.bounded.mode' = '{other}'; use unbounded, latest-offset, group-offsets, timestamp or specific-offsets"
            )))
        }
    };
    let needs_group = matches!(
        startup,
        StartupMode::GroupOffsets | StartupMode::Specific(_)
    ) || matches!(bounded, Some(BoundedMode::GroupOffsets));
    if source && needs_group && !properties.contains_key("group.id") {
        return Err(err(
            "reading from group offsets needs 'properties.group.id'; set it, or set 'scan.startup.mode' = 'earliest-offset' or 'latest-offset'".into(),
        ));
    }
    let key_fields: Vec<String> = spec
        .option("key.fields")
        .map(|v| {
            v.split(';')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let key_format = Format::from_spec("kafka", spec, Part::Key, KEY_FORMATS)?;
    match (&key_format, key_fields.is_empty()) {
        (Some(_), false) | (None, true) => {}
        (Some(_), true) => {
            return Err(err(
                "'key.format' needs 'key.fields' (the columns that form the key, ';'-separated)"
                    .into(),
            ))
        }
        (None, false) => {
            return Err(err(format!(
                "'key.fields' needs 'key.format' ({})",
                KEY_FORMATS.join(", ")
            )))
        }
    }
    let value_fields = match spec.option("value.fields-include").unwrap_or("ALL") {
        "ALL" => ValueFields::All,
        "EXCEPT_KEY" => ValueFields::ExceptKey,
        other => {
            return Err(err(format!(
                "invalid 'value.fields-include' = '{other}'; use ALL or EXCEPT_KEY"
            )))
        }
    };
    match spec.option("sink.delivery-guarantee") {
        None | Some("at-least-once" | "none") => {}
        Some("exactly-once") => {
            if spec.option("sink.transactional-id-prefix").is_none() {
                return Err(err("'sink.delivery-guarantee' = 'exactly-once' needs 'sink.transactional-id-prefix' (a name unique to this sink, e.g. 'orders-alerts'): it names the Kafka transactions".into()));
            }
            if !spec
                .job_options
                .contains_key("execution.checkpointing.interval")
            {
                return Err(err("'sink.delivery-guarantee' = 'exactly-once' commits at checkpoints; turn them on with SET 'execution.checkpointing.interval' = '10 s' or run with --state-dir".into()));
            }
        }
        Some(g) => {
            return Err(err(format!(
                "invalid 'sink.delivery-guarantee' = '{g}'; use at-least-once, exactly-once or none"
            )))
        }
    }
    let idle_timeout = match spec.job_options.get("table.exec.source.idle-timeout") {
        None => None,
        Some(v) => {
            let d = parse_duration(v).ok_or_else(|| {
                err(format!("invalid 'table.exec.source.idle-timeout' = '{v}'; write it like '5 s' or '500 ms'"))
            })?;
            (!d.is_zero()).then_some(d)
        }
    };
    Ok(KafkaOptions {
        topics,
        properties,
        startup,
        bounded,
        key_prefix: spec
            .option("key.fields-prefix")
            .unwrap_or_default()
            .to_string(),
        key_fields,
        value_fields,
        value_format,
        key_format,
        idle_timeout,
        resume: vec![],
        subtask: (0, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_go_round_the_subtasks_from_where_the_topic_hash_says() {
        // Java prints 99162322 for "hello".hashCode(); "orders" wraps negative.
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash("orders"), -1_008_770_331);
        // ((-1008770331 * 31) & 0x7FFFFFFF) % 4 = 3: partition 0 goes to subtask 3.
        let owners: Vec<usize> = (0..8).map(|p| owner("orders", p, 4)).collect();
        assert_eq!(owners, vec![3, 0, 1, 2, 3, 0, 1, 2]);
        assert!((0..8).all(|p| owner("orders", p, 1) == 0));
    }

    #[test]
    fn durations_parse_as_flink_writes_them() {
        assert_eq!(parse_duration("5 s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1 min"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("250 ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 fortnights"), None);
    }
}
