//! The `filesystem` connector with `'format' = 'json'`: a bounded source reading
//! JSON lines from a file or a directory of files, and a sink writing JSON lines
//! into a directory.

pub mod sink;
pub mod source;

use std::path::PathBuf;

use vigil_engine::connector::{ConnectorFactory, Sink, Source, TableSpec};
use vigil_engine::metrics::Metrics;
use vigil_engine::Result;

use crate::error::connector_error;
use crate::options::{check_format, check_options};

/// Options Vigil accepts for the filesystem connector (Flink's names).
const OPTIONS: &[&str] = &[
    "path",
    "format",
    "json.ignore-parse-errors",
    "json.fail-on-missing-field",
    "json.timestamp-format.standard",
    "source.decode-parallelism",
    "sink.delivery-guarantee",
];

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

impl ConnectorFactory for FilesystemConnector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn create_source(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Source>> {
        check_options("filesystem", spec, OPTIONS)?;
        check_format("filesystem", spec, &["json"])?;
        Ok(Box::new(source::FileSource::new(spec, metrics)?))
    }

    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>> {
        check_options("filesystem", spec, OPTIONS)?;
        check_format("filesystem", spec, &["json"])?;
        Ok(Box::new(sink::FileSink::new(spec, metrics)?))
    }
}
