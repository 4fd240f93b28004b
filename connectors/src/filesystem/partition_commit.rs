//! When a partition of a partitioned filesystem sink is done, and how that
//! is told (Flink's `sink.partition-commit.*` and
//! `partition.time-extractor.*` options): by partition time against the
//! watermark, or by processing time since the partition was created, each
//! after `sink.partition-commit.delay`; told by a success file.

use chrono::{NaiveDate, NaiveDateTime};
use vigil_engine::connector::TableSpec;
use vigil_engine::message::EventTime;
use vigil_engine::Result;

use crate::error::connector_error;

/// The options of partition commit Vigil reads.
pub const OPTIONS: &[&str] = &[
    "sink.partition-commit.trigger",
    "sink.partition-commit.delay",
    "sink.partition-commit.policy.kind",
    "sink.partition-commit.success-file.name",
    "sink.partition-commit.watermark-time-zone",
    "partition.time-extractor.kind",
    "partition.time-extractor.timestamp-pattern",
    "partition.time-extractor.timestamp-formatter",
    "partition.default-name",
    "sink.rolling-policy.file-size",
    "sink.rolling-policy.rollover-interval",
    "sink.rolling-policy.check-interval",
    "sink.rolling-policy.inactivity-interval",
];

/// What decides that a partition is done.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// The time its values name (extracted by `pattern`, parsed by
    /// `formatter`), plus the delay, is behind the watermark.
    PartitionTime {
        /// `$name` placeholders over the partition's values.
        pattern: Option<String>,
        /// A chrono format, or None for Flink's lenient default.
        formatter: Option<String>,
    },
    /// Its creation (first row, wall clock), plus the delay, is past.
    ProcessTime,
}

/// How and when partitions are committed.
#[derive(Debug, Clone)]
pub struct CommitPolicy {
    /// What decides it.
    pub trigger: Trigger,
    /// `sink.partition-commit.delay` in milliseconds.
    pub delay: i64,
    /// The success file's name, if the policy writes one.
    pub success_file: Option<String>,
}

impl CommitPolicy {
    /// The policy `spec`'s options set.
    pub fn from_spec(spec: &TableSpec) -> Result<Self> {
        let err = |m: String| connector_error("filesystem", spec, m);
        let delay = match spec.option("sink.partition-commit.delay") {
            None => 0,
            Some(v) => vigil_engine::time::parse_duration(v)
                .ok_or_else(|| {
                    err(format!(
                        "'sink.partition-commit.delay' must be a duration like '1 h', not '{v}'"
                    ))
                })?
                .as_millis() as i64,
        };
        let trigger = match spec.option("sink.partition-commit.trigger") {
            None | Some("process-time") => Trigger::ProcessTime,
            Some("partition-time") => {
                if let Some(k) = spec.option("partition.time-extractor.kind") {
                    if k != "default" {
                        return Err(err(format!("not supported yet: 'partition.time-extractor.kind' = '{k}'; only 'default'")));
                    }
                }
                Trigger::PartitionTime {
                    pattern: spec
                        .option("partition.time-extractor.timestamp-pattern")
                        .map(str::to_string),
                    formatter: spec
                        .option("partition.time-extractor.timestamp-formatter")
                        .map(java_to_chrono),
                }
            }
            Some(other) => {
                return Err(err(format!(
                "'sink.partition-commit.trigger' must be 'process-time' or 'partition-time', not '{other}'"
            )))
            }
        };
        if let Some(z) = spec.option("sink.partition-commit.watermark-time-zone") {
            if !matches!(z, "UTC" | "GMT" | "Z" | "+00:00") {
                return Err(err(format!("not supported yet: 'sink.partition-commit.watermark-time-zone' = '{z}'; partition times are read as UTC")));
            }
        }
        let mut success_file = None;
        if let Some(kinds) = spec.option("sink.partition-commit.policy.kind") {
            for kind in kinds.split(',').map(str::trim) {
                match kind {
                    "success-file" => {
                        success_file = Some(
                            spec.option("sink.partition-commit.success-file.name")
                                .unwrap_or("_SUCCESS")
                                .to_string(),
                        )
                    }
                    "metastore" => return Err(err("the 'metastore' commit policy needs a Hive metastore, which Vigil has not: use 'success-file'".into())),
                    other => return Err(err(format!("not supported yet: commit policy '{other}'; use 'success-file'"))),
                }
            }
        }
        Ok(Self {
            trigger,
            delay,
            success_file,
        })
    }

    /// The time (ms since the epoch, UTC) a partition's values name, for the
    /// partition-time trigger; None if they name none (the partition is
    /// then committed at the end of the input).
    pub fn partition_time(&self, keys: &[String], values: &[String]) -> Option<EventTime> {
        let Trigger::PartitionTime { pattern, formatter } = &self.trigger else {
            return None;
        };
        let text = match pattern {
            None => values.first()?.clone(),
            Some(p) => {
                // Longer names first, so that `$dt` does not eat `$dt2`.
                let mut order: Vec<usize> = (0..keys.len()).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(keys[i].len()));
                let mut t = p.clone();
                for i in order {
                    t = t.replace(&format!("${}", keys[i]), &values[i]);
                }
                t
            }
        };
        parse_time(&text, formatter.as_deref())
    }
}

/// A Java `DateTimeFormatter` pattern's usual letters as a chrono format.
fn java_to_chrono(pattern: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let spec = match (c, n) {
            ('y', _) | ('u', _) => Some("%Y"),
            ('M', _) => Some("%m"),
            ('d', _) => Some("%d"),
            ('H', _) => Some("%H"),
            ('m', _) => Some("%M"),
            ('s', _) => Some("%S"),
            ('S', _) => Some("%3f"),
            _ => None,
        };
        match spec {
            Some(s) => out.push_str(s),
            None => (0..n).for_each(|_| out.push(c)),
        }
        i += n;
    }
    out
}

/// Parses a partition time: with `formatter`, as a date-time or else a date;
/// without, Flink's lenient `yyyy-M-d[ H[:m[:s]]]`.
fn parse_time(text: &str, formatter: Option<&str>) -> Option<EventTime> {
    let text = text.trim();
    let formats: Vec<&str> = match formatter {
        Some(f) => vec![f],
        None => vec![
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
        ],
    };
    for f in &formats {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
            return Some(t.and_utc().timestamp_millis());
        }
        if let Ok(d) = NaiveDate::parse_from_str(text, f) {
            return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
        }
    }
    if formatter.is_none() {
        if let Some((date, hour)) = text.split_once(' ') {
            let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            let h: u32 = hour.parse().ok()?;
            return Some(d.and_hms_opt(h, 0, 0)?.and_utc().timestamp_millis());
        }
        let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    None
}

/// A partition value as a path segment, escaped as Flink's
/// `PartitionPathUtils.escapePathName` does (`12:00` -> `12%3A00`).
pub fn escape_path_name(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let escape = (c as u32) < 0x20
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\u{7f}'
                    | '{'
                    | '['
                    | ']'
                    | '^'
            );
        if escape {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn spec(options: &[(&str, &str)]) -> TableSpec {
        let options: BTreeMap<String, String> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TableSpec::new(
            "t",
            Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            options,
        )
    }

    fn ms(text: &str) -> EventTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn nexmark_q10s_partitions_are_dated_by_their_day_and_minute() {
        let p = CommitPolicy::from_spec(&spec(&[
            ("sink.partition-commit.trigger", "partition-time"),
            ("sink.partition-commit.delay", "1 min"),
            ("sink.partition-commit.policy.kind", "success-file"),
            ("partition.time-extractor.timestamp-pattern", "$dt $hm:00"),
        ]))
        .unwrap();
        assert_eq!(p.delay, 60_000);
        assert_eq!(p.success_file.as_deref(), Some("_SUCCESS"));
        let keys = ["dt".to_string(), "hm".to_string()];
        let t = p.partition_time(&keys, &["2015-07-15".into(), "00:01".into()]);
        assert_eq!(t, Some(ms("2015-07-15 00:01:00")));
    }

    #[test]
    fn a_formatter_is_read_as_java_writes_it_and_a_bare_date_is_midnight() {
        let p = CommitPolicy::from_spec(&spec(&[
            ("sink.partition-commit.trigger", "partition-time"),
            ("partition.time-extractor.timestamp-pattern", "$dt$hm"),
            (
                "partition.time-extractor.timestamp-formatter",
                "yyyyMMddHH:mm",
            ),
        ]))
        .unwrap();
        let keys = ["dt".to_string(), "hm".to_string()];
        let t = p.partition_time(&keys, &["20240301".into(), "13:45".into()]);
        assert_eq!(t, Some(ms("2024-03-01 13:45:00")));
        let p = CommitPolicy::from_spec(&spec(&[(
            "sink.partition-commit.trigger",
            "partition-time",
        )]))
        .unwrap();
        assert_eq!(
            p.partition_time(&["day".to_string()], &["2024-03-01".into()]),
            Some(ms("2024-03-01 00:00:00"))
        );
        assert_eq!(
            p.partition_time(&["day".to_string()], &["soon".into()]),
            None
        );
    }

    #[test]
    fn unknown_triggers_and_policies_are_refused_with_the_alternatives() {
        let e = CommitPolicy::from_spec(&spec(&[("sink.partition-commit.trigger", "eventually")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("'process-time' or 'partition-time'"),
            "{e}"
        );
        let e =
            CommitPolicy::from_spec(&spec(&[("sink.partition-commit.policy.kind", "metastore")]))
                .unwrap_err();
        assert!(e.to_string().contains("success-file"), "{e}");
    }

    #[test]
    fn partition_values_are_escaped_for_paths_as_flink_does() {
        assert_eq!(escape_path_name("12:00"), "12%3A00");
        assert_eq!(escape_path_name("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape_path_name("2015-07-15"), "2015-07-15");
    }
}
