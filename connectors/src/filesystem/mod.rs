//! The `filesystem` connector: a bounded source reading records of a format
//! from a file or a directory of files, a sink writing them into a directory
//! (a directory per partition for a `PARTITIONED BY` table), and a table for
//! lookup joins, reloaded when it changes.

pub mod lookup;
pub mod partition_commit;
pub mod partitioned;
pub mod sink;
#[cfg(test)]
mod sink_shares;
pub mod source;
pub mod splits;

use std::path::PathBuf;

use vigil_engine::connector::{
    ConnectorFactory, LookupTable, Sink, Source, SourceChangelog, TableSpec,
};
use vigil_engine::metrics::Metrics;
use vigil_engine::Result;

use crate::error::connector_error;
use crate::format::{Format, Part};
use crate::options::{check_format, check_options};

/// Options Vigil accepts for the filesystem connector (Flink's names).
const OPTIONS: &[&str] = &[
    "path",
    "format",
    "json.ignore-parse-errors",
    "json.fail-on-missing-field",
    "json.timestamp-format.standard",
    "source.decode-parallelism",
    "source.split-size",
    "sink.delivery-guarantee",
    "lookup.join.cache.ttl",
    "dlq.connector",
    "sink.dlq.connector",
    "csv.field-delimiter",
    "csv.quote-character",
    "csv.null-literal",
    "cloudevents.source",
    "cloudevents.type",
    "debezium-json.schema-include",
    "debezium-json.ignore-parse-errors",
    "debezium-json.timestamp-format.standard",
];

/// The formats a filesystem source reads.
const SOURCE_FORMATS: &[&str] = &["json", "raw", "cloudevents", "csv", "debezium-json"];
/// The formats a lookup join reads (a table read whole, not a changelog).
const LOOKUP_FORMATS: &[&str] = &["json", "raw", "cloudevents", "csv"];
/// The formats a filesystem sink writes.
const SINK_FORMATS: &[&str] = &["json", "raw", "cloudevents", "csv"];

/// Factory for `'connector' = 'filesystem'`.
pub struct FilesystemConnector;

/// The `'path'` option as a local path (`file://` URIs accepted).
pub fn local_path(spec: &TableSpec) -> Result<PathBuf> {
    let raw = spec.required("filesystem", "path")?;
    let path = raw.strip_prefix("file://").unwrap_or(raw);
    if path.contains("://") {
        return Err(connector_error(
            "filesystem",
            spec,
            format!(
                "not supported yet: path '{raw}'; only local paths and file:// URIs are supported"
            ),
        ));
    }
    Ok(PathBuf::from(path))
}

/// The data files at `path`: the file itself, or a directory's files in name
/// order (names starting with `.` or `_` are skipped, as in Flink).
pub fn data_files(path: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = vec![];
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || n.starts_with('_'));
        if p.is_file() && !hidden {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

impl ConnectorFactory for FilesystemConnector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn create_source(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Source>> {
        if !spec.partition_keys.is_empty() {
            return Err(connector_error(
                "filesystem",
                spec,
                "not supported yet: reading a PARTITIONED BY table (Vigil writes them); declare the table without PARTITIONED BY over one partition's directory",
            ));
        }
        check_options("filesystem", spec, OPTIONS)?;
        check_format("filesystem", spec, SOURCE_FORMATS)?;
        if spec.option("format") == Some("raw") {
            crate::format::raw::check_schema("filesystem", spec, &spec.schema)?;
        }
        Ok(Box::new(source::FileSource::new(spec, metrics)?))
    }

    fn create_lookup(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn LookupTable>> {
        check_options("filesystem", spec, OPTIONS)?;
        check_format("filesystem", spec, LOOKUP_FORMATS)?;
        Ok(Box::new(lookup::FileLookup::new(spec, metrics)?))
    }

    fn source_changelog(&self, spec: &TableSpec) -> Result<SourceChangelog> {
        let format = Format::from_spec("filesystem", spec, Part::Table, SOURCE_FORMATS)?;
        Ok(match format {
            Some(f) if f.is_changelog() => SourceChangelog::Full,
            _ => SourceChangelog::Append,
        })
    }

    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>> {
        let options: Vec<&str> = OPTIONS
            .iter()
            .chain(partition_commit::OPTIONS)
            .copied()
            .collect();
        check_options("filesystem", spec, &options)?;
        check_format("filesystem", spec, SINK_FORMATS)?;
        if spec.option("format") == Some("raw") {
            crate::format::raw::check_schema("filesystem", spec, &spec.schema)?;
        }
        if !spec.partition_keys.is_empty() {
            return Ok(Box::new(partitioned::PartitionedFileSink::new(
                spec, metrics,
            )?));
        }
        Ok(Box::new(sink::FileSink::new(spec, metrics)?))
    }
}
