//! Record formats, with Flink's names and options: `json`, `csv`, `raw`, and
//! `cloudevents` (CloudEvents 1.0, an extension). A format turns the bytes of
//! one record (a line of a file, a Kafka value or key) into a row and back;
//! [`decode`] and [`encode`] do it a batch at a time.

pub mod cdc;
pub mod cloudevents;
pub mod csv;
mod csv_nested;
pub mod decode;
pub mod encode;
#[doc(hidden)]
pub mod fuzzing;
pub mod raw;

use vigil_engine::connector::TableSpec;
use vigil_engine::Result;

use crate::error::connector_error;

/// A table's record format.
#[derive(Debug, Clone)]
pub enum Format {
    /// A JSON object per record.
    Json,
    /// The record is the value of the table's one STRING or BYTES column.
    Raw,
    /// A csv line per record.
    Csv(csv::CsvOptions),
    /// A CloudEvent per record. Sources take structured events, and Kafka
    /// sources binary-mode events (`ce_*` headers) too; `binary` asks a Kafka
    /// sink for binary mode (`'cloudevents.mode' = 'binary'`).
    CloudEvents {
        /// Attributes as `ce_*` headers, `data` as the value.
        binary: bool,
    },
    /// A change of a database row per record (`debezium-json`): a source
    /// of it is a changelog.
    Cdc(cdc::CdcFormat),
}

/// Which of a table's formats is meant: the only one (`format`), or a Kafka
/// record's value (`value.format`, or `format`) or key (`key.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A file's records.
    Table,
    /// A Kafka record's value.
    Value,
    /// A Kafka record's key.
    Key,
}

impl Part {
    /// The prefixes a format option of this part may carry, most specific first.
    fn prefixes(self) -> &'static [&'static str] {
        match self {
            Part::Table => &[""],
            Part::Value => &["value.", ""],
            Part::Key => &["key."],
        }
    }
}

/// Record `i` of records stored back to back in `buf`, record `i` ending at
/// `ends[i]` (empty when there are no ends: the part was not collected).
pub fn record_at<'a>(buf: &'a [u8], ends: &[usize], i: usize) -> &'a [u8] {
    let Some(&end) = ends.get(i) else {
        return &[];
    };
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &buf[start..end]
}

/// The options each format takes (without a `key.`/`value.` prefix).
pub const FORMAT_OPTIONS: &[&str] = &[
    "csv.field-delimiter",
    "csv.quote-character",
    "csv.null-literal",
    "cloudevents.mode",
    "cloudevents.source",
    "cloudevents.type",
    "debezium-json.schema-include",
    "debezium-json.ignore-parse-errors",
    "debezium-json.timestamp-format.standard",
];

/// Whether `key` is a format option for `part` (e.g. `key.csv.field-delimiter`).
pub fn is_format_option(key: &str, part: Part) -> bool {
    part.prefixes().iter().any(|p| {
        key.strip_prefix(p)
            .is_some_and(|rest| FORMAT_OPTIONS.contains(&rest))
    })
}

/// The value of format option `name` for `part` (`value.csv.x` before `csv.x`).
pub fn option<'a>(spec: &'a TableSpec, part: Part, name: &str) -> Option<&'a str> {
    part.prefixes()
        .iter()
        .find_map(|p| spec.option(&format!("{p}{name}")))
}

impl Format {
    /// Whether records of the format are changes (a changelog source).
    pub fn is_changelog(&self) -> bool {
        matches!(self, Format::Cdc(_))
    }

    /// The format's name, as tables spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Raw => "raw",
            Format::Csv(_) => "csv",
            Format::CloudEvents { .. } => "cloudevents",
            Format::Cdc(cdc::CdcFormat::Debezium { .. }) => "debezium-json",
        }
    }

    /// The format `spec` names for `part`, if it is one of `supported`.
    /// Returns None when the part names no format (a Kafka table without a key).
    pub fn from_spec(
        connector: &str,
        spec: &TableSpec,
        part: Part,
        supported: &[&str],
    ) -> Result<Option<Format>> {
        let key = match part {
            Part::Key => "key.format",
            Part::Value if spec.option("value.format").is_some() => "value.format",
            _ => "format",
        };
        let Some(name) = spec.option(key) else {
            return Ok(None);
        };
        let err = |m: String| connector_error(connector, spec, m);
        if !supported.contains(&name) {
            return Err(err(format!(
                "not supported: '{key}' = '{name}'; supported: {}",
                supported.join(", ")
            )));
        }
        Ok(Some(match name {
            "json" => Format::Json,
            "raw" => Format::Raw,
            "csv" => Format::Csv(csv::CsvOptions::from_spec(spec, part)?),
            "cloudevents" => Format::CloudEvents {
                binary: match option(spec, part, "cloudevents.mode") {
                    None | Some("structured") => false,
                    Some("binary") => true,
                    Some(other) => {
                        return Err(err(format!(
                            "'cloudevents.mode' = '{other}': use 'structured' or 'binary'"
                        )))
                    }
                },
            },
            "debezium-json" => Format::Cdc(cdc::CdcFormat::Debezium {
                schema_include: match option(spec, part, "debezium-json.schema-include") {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(other) => {
                        return Err(err(format!(
                            "'debezium-json.schema-include' = '{other}': use 'true' or 'false'"
                        )))
                    }
                },
            }),
            other => return Err(err(format!("unknown format '{other}'"))),
        }))
    }
}
