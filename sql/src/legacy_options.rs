//! Flink's legacy connector options (`'connector.type' = 'filesystem'`,
//! `'connector.path'`, `'format.type'`, ...), which older scripts (Nexmark
//! q13 among them) still write and Flink 2.x no longer reads: translated to
//! the current keys, so that such a table runs as its current spelling does.

use std::collections::BTreeMap;

use crate::error::{Pos, Result, SqlError};

/// Legacy keys with a current name of their own.
const RENAMED: &[(&str, &str)] = &[
    ("connector.type", "connector"),
    ("connector.path", "path"),
    ("connector.topic", "topic"),
    ("connector.startup-mode", "scan.startup.mode"),
    ("connector.sink-partitioner", "sink.partitioner"),
    ("connector.url", "url"),
    ("connector.table", "table-name"),
    ("connector.username", "username"),
    ("connector.password", "password"),
    ("format.type", "format"),
];

/// Legacy keys that said what the current connectors no longer need.
const DROPPED: &[&str] = &[
    "connector.version",
    "connector.property-version",
    "format.property-version",
    "format.derive-schema",
    "update-mode",
];

/// Rewrites the legacy keys of `options` (those of a table with
/// `'connector.type'` and no `'connector'`) to the current ones: renamed
/// keys, `connector.properties.*` to `properties.*`, `format.*` to the
/// format's own prefix (`format.field-delimiter` to `csv.field-delimiter`).
/// A table in the current spelling is left as it is.
pub fn modernize(options: &mut BTreeMap<String, String>, at: Pos) -> Result<()> {
    if options.contains_key("connector") || !options.contains_key("connector.type") {
        return Ok(());
    }
    if options.get("update-mode").is_some_and(|m| m != "append") {
        return Err(SqlError::at(
            at,
            "the legacy option 'update-mode' other than 'append' has no current equivalent",
        )
        .with_help(
            "declare the table with 'connector' = 'upsert-kafka' and a PRIMARY KEY instead",
        ));
    }
    let format = options.get("format.type").cloned();
    let legacy = std::mem::take(options);
    for (key, value) in legacy {
        if DROPPED.contains(&key.as_str()) {
            continue;
        }
        let new_key = if let Some((_, to)) = RENAMED.iter().find(|(from, _)| *from == key) {
            to.to_string()
        } else if let Some(rest) = key.strip_prefix("connector.properties.") {
            format!("properties.{rest}")
        } else if let (Some(rest), Some(f)) = (key.strip_prefix("format."), &format) {
            format!("{f}.{rest}")
        } else {
            key
        };
        options.insert(new_key, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nexmark_q13s_side_input_reads_as_a_current_filesystem_table() {
        let mut o = options(&[
            ("connector.type", "filesystem"),
            ("connector.path", "file:///data/side_input.txt"),
            ("format.type", "csv"),
            ("format.field-delimiter", ";"),
        ]);
        modernize(&mut o, Pos { line: 1, column: 1 }).unwrap();
        assert_eq!(
            o,
            options(&[
                ("connector", "filesystem"),
                ("path", "file:///data/side_input.txt"),
                ("format", "csv"),
                ("csv.field-delimiter", ";"),
            ])
        );
    }

    #[test]
    fn a_legacy_kafka_table_gets_the_current_keys_and_loses_the_version() {
        let mut o = options(&[
            ("connector.type", "kafka"),
            ("connector.version", "universal"),
            ("connector.topic", "bids"),
            ("connector.properties.bootstrap.servers", "localhost:9092"),
            ("connector.startup-mode", "earliest-offset"),
            ("format.type", "json"),
            ("update-mode", "append"),
        ]);
        modernize(&mut o, Pos { line: 1, column: 1 }).unwrap();
        assert_eq!(
            o,
            options(&[
                ("connector", "kafka"),
                ("topic", "bids"),
                ("properties.bootstrap.servers", "localhost:9092"),
                ("scan.startup.mode", "earliest-offset"),
                ("format", "json"),
            ])
        );
    }

    #[test]
    fn current_options_are_left_alone_and_upsert_mode_is_refused() {
        let mut o = options(&[("connector", "kafka"), ("format.type", "x")]);
        let before = o.clone();
        modernize(&mut o, Pos { line: 1, column: 1 }).unwrap();
        assert_eq!(o, before);
        let mut o = options(&[("connector.type", "kafka"), ("update-mode", "upsert")]);
        let err = modernize(&mut o, Pos { line: 1, column: 1 }).unwrap_err();
        assert!(err.to_string().contains("update-mode"), "{err}");
    }
}
