//! Validation of `WITH (...)` options: unknown keys are an error, as in Flink.

use vigil_engine::connector::TableSpec;
use vigil_engine::Result;

use crate::error::connector_error;

/// Fails if `spec` has an option not in `allowed`, listing the supported ones.
pub fn check_options(connector: &str, spec: &TableSpec, allowed: &[&str]) -> Result<()> {
    let unknown: Vec<&str> = spec
        .options
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "connector" && !allowed.contains(k))
        // A source that takes dead letters takes every `dlq.*` option, a sink
        // every `sink.dlq.*` option.
        .filter(|k| !(allowed.contains(&"dlq.connector") && crate::dlq::is_dlq_option(k)))
        .filter(|k| !(allowed.contains(&"sink.dlq.connector") && crate::dlq::is_sink_dlq_option(k)))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut supported: Vec<&str> = allowed.to_vec();
    supported.sort_unstable();
    Err(connector_error(
        connector,
        spec,
        format!(
            "unsupported option(s) {}; supported options: connector, {}",
            unknown
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", "),
            supported.join(", ")
        ),
    ))
}

/// Checks that `'format'`, when given, is one of `formats`.
pub fn check_format(connector: &str, spec: &TableSpec, formats: &[&str]) -> Result<()> {
    match spec.option("format") {
        None => Err(connector_error(
            connector,
            spec,
            format!(
                "missing required option 'format'; supported: {}",
                formats.join(", ")
            ),
        )),
        Some(f) if formats.contains(&f) => Ok(()),
        Some(f) => Err(connector_error(
            connector,
            spec,
            format!(
                "not supported yet: format '{f}'; supported: {}",
                formats.join(", ")
            ),
        )),
    }
}
