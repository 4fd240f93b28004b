//! The `csv` format (Flink's option names): one record a line, fields in the
//! table's column order, no header. `csv.field-delimiter` (default `,`),
//! `csv.quote-character` (default `"`), `csv.null-literal` (default: none),
//! `csv.array-element-delimiter` (default `;`, between an ARRAY's elements
//! or a ROW's fields, see `csv_nested`).
//! Decoded with arrow-csv in one pass; a chunk that fails is decoded line by
//! line to find the malformed records, as JSON is.

use datafusion::arrow::csv::reader::ReaderBuilder;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use vigil_engine::connector::TableSpec;
use vigil_engine::Result;

use super::{csv_nested, Part};
use crate::error::connector_error;
use crate::format::decode::{BadRecord, Decoded};

/// The csv options a table may set.
pub const CSV_OPTIONS: &[&str] = &[
    "csv.field-delimiter",
    "csv.quote-character",
    "csv.null-literal",
    "csv.array-element-delimiter",
];

/// How a table's csv is written.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    delimiter: u8,
    quote: u8,
    null: Option<String>,
    elements: String,
}

fn one_byte(spec: &TableSpec, part: Part, key: &str, default: u8) -> Result<u8> {
    match super::option(spec, part, key) {
        None => Ok(default),
        Some("\\t") => Ok(b'\t'),
        Some(v) if v.len() == 1 => Ok(v.as_bytes()[0]),
        Some(v) => Err(connector_error(
            "csv",
            spec,
            format!("'{key}' must be one character, not '{v}'"),
        )),
    }
}

impl Default for CsvOptions {
    /// Flink's defaults: `,` between fields, `"` around them, no null literal.
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
            null: None,
            elements: ";".into(),
        }
    }
}

impl CsvOptions {
    /// The csv options of `spec` for `part` (`key.csv.*` for a Kafka key).
    pub fn from_spec(spec: &TableSpec, part: Part) -> Result<Self> {
        Ok(Self {
            delimiter: one_byte(spec, part, "csv.field-delimiter", b',')?,
            quote: one_byte(spec, part, "csv.quote-character", b'"')?,
            null: super::option(spec, part, "csv.null-literal").map(str::to_string),
            elements: super::option(spec, part, "csv.array-element-delimiter")
                .unwrap_or(";")
                .to_string(),
        })
    }

    /// Decodes whole csv lines (no line may be bad).
    pub fn decode_all(
        &self,
        schema: &SchemaRef,
        bytes: &[u8],
    ) -> Result<Option<RecordBatch>, String> {
        let nested = schema
            .fields()
            .iter()
            .any(|f| csv_nested::is_nested(f.data_type()));
        if nested {
            let text = self.decode_all(&csv_nested::as_text(schema), bytes)?;
            return text
                .map(|b| csv_nested::read_nested(b, schema, &self.elements, self.null.is_some()))
                .transpose();
        }
        let mut builder = ReaderBuilder::new(schema.clone())
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote)
            .with_batch_size(bytes.len().max(1));
        if let Some(n) = &self.null {
            let pattern = regex_lite_escape(n);
            builder = builder.with_null_regex(
                regex::Regex::new(&format!("^{pattern}$")).map_err(|e| e.to_string())?,
            );
        }
        let mut decoder = builder.build_decoder();
        let mut rest = bytes;
        let mut batches = vec![];
        while !rest.is_empty() {
            let used = decoder.decode(rest).map_err(|e| e.to_string())?;
            if used == 0 {
                match decoder.flush().map_err(|e| e.to_string())? {
                    Some(b) => batches.push(b),
                    None => break,
                }
            }
            rest = &rest[used..];
        }
        if let Some(b) = decoder.flush().map_err(|e| e.to_string())? {
            batches.push(b);
        }
        match batches.len() {
            0 => Ok(None),
            1 => Ok(batches.pop()),
            _ => datafusion::arrow::compute::concat_batches(schema, &batches)
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }

    /// Decodes `chunk`, whole lines whose first is `first_line`.
    pub fn decode_chunk(&self, schema: &SchemaRef, chunk: &[u8], first_line: u64) -> Decoded {
        // One record a line: a quote left open would swallow the lines after
        // it into one field, so the row count must match the line count.
        let lines = chunk
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        if let Ok(batch) = self.decode_all(schema, chunk) {
            if batch.as_ref().map_or(0, |b| b.num_rows()) == lines {
                return Decoded { batch, bad: vec![] };
            }
        }
        let mut good: Vec<u8> = vec![];
        let mut bad = vec![];
        for (i, line) in chunk.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let mut record = line.to_vec();
            record.push(b'\n');
            let reason = match self.decode_all(schema, &record) {
                Ok(Some(b)) if b.num_rows() == 1 => None,
                Ok(_) => Some("not one csv record (a quote left open?)".to_string()),
                Err(reason) => Some(reason),
            };
            match reason {
                None => {
                    good.extend_from_slice(line);
                    good.push(b'\n');
                }
                Some(reason) => bad.push(BadRecord {
                    line: first_line + i as u64,
                    reason,
                    excerpt: String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned(),
                    raw: line.to_vec(),
                }),
            }
        }
        let batch = self.decode_all(schema, &good).ok().flatten();
        Decoded { batch, bad }
    }

    /// Appends `batch` as csv lines to `out`.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), String> {
        let batch = &csv_nested::write_nested(batch, &self.elements)?;
        let mut w = WriterBuilder::new()
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote)
            .with_null(self.null.clone().unwrap_or_default())
            .with_timestamp_format("%Y-%m-%d %H:%M:%S%.3f".to_string())
            .build(out);
        w.write(batch).map_err(|e| e.to_string())
    }
}

/// `text` with regex metacharacters escaped.
fn regex_lite_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn decodes_and_finds_bad_lines() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let o = CsvOptions {
            delimiter: b';',
            quote: b'"',
            null: None,
            elements: ";".into(),
        };
        let ok = o.decode_all(&schema, b"1;a\n2;b\n");
        assert_eq!(ok.map(|b| b.map(|b| b.num_rows())), Ok(Some(2)));
        let d = o.decode_chunk(&schema, b"1;a\nx;b\n3\n", 1);
        assert_eq!(d.batch.map(|b| b.num_rows()), Some(1));
        assert_eq!(d.bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![2, 3]);
    }
}
