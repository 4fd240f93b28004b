//! What a webhook request carries: rows as JSON objects, as CloudEvents 1.0
//! (structured mode; a batch as `application/cloudevents-batch+json`), or
//! rendered through a template with `{{column}}` placeholders.

use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};
use vigil_engine::changelog::{self, RowKind};

use crate::json::encode::{encode_json_lines, write_json_string, NonFinite, RowError};
use crate::row_id::RowIds;

/// How rows become a request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// A JSON object per row (an array for a batch).
    Json,
    /// A CloudEvent per row, `data` the row.
    CloudEvents {
        /// The events' `source`.
        source: String,
        /// The events' `type`.
        kind: String,
    },
    /// `{{column}}` placeholders replaced by the row's values (JSON-escaped,
    /// as templates are usually JSON payloads); a batch joins rows with newlines.
    Template(String),
}

/// One row, encoded, with its idempotency id.
pub struct Encoded {
    /// The row's deterministic id.
    pub id: String,
    /// The row as a JSON object (strict JSON: NaN and infinities as strings,
    /// as Flink's `json` format writes them).
    pub json: String,
}

/// The rows of `batch` as JSON objects with their ids (`-U` rows of an
/// updating result are skipped: a webhook is told the new row), and the
/// rows that could not be encoded, with the error.
pub fn encode_rows(
    batch: &RecordBatch,
    ids: &RowIds,
) -> Result<(Vec<Encoded>, Vec<RowError>), String> {
    let mut text = String::new();
    let failed =
        encode_json_lines(batch, &mut text, NonFinite::Quoted).map_err(|e| e.to_string())?;
    let kinds = changelog::kinds(batch);
    let mut skip = failed.iter().map(|(row, _)| *row).peekable();
    let mut lines = text.lines();
    let mut out = vec![];
    for i in 0..batch.num_rows() {
        if skip.next_if_eq(&i).is_some() {
            continue;
        }
        let Some(line) = lines.next() else { break };
        if changelog::kind_at(kinds, i) == RowKind::UpdateBefore {
            continue;
        }
        let mut buf = [0u8; 32];
        let id = ids.id(&[line.as_bytes()], &mut buf).to_string();
        out.push(Encoded {
            id,
            json: line.to_string(),
        });
    }
    Ok((out, failed))
}

fn render(template: &str, row: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match row.get(name) {
            Some(Value::String(s)) => {
                // JSON-escaped, without the quotes.
                let q = Value::String(s.clone()).to_string();
                out.push_str(&q[1..q.len() - 1]);
            }
            Some(Value::Null) | None => out.push_str("null"),
            Some(v) => out.push_str(&v.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Appends a structured CloudEvent carrying `row` (its JSON spliced in as `data`).
fn write_event(row: &Encoded, source: &str, kind: &str, time: &str, out: &mut String) {
    out.push_str("{\"specversion\":\"1.0\",\"id\":");
    write_json_string(&row.id, out);
    out.push_str(",\"source\":");
    write_json_string(source, out);
    out.push_str(",\"type\":");
    write_json_string(kind, out);
    out.push_str(",\"time\":");
    write_json_string(time, out);
    out.push_str(",\"datacontenttype\":\"application/json\",\"data\":");
    out.push_str(&row.json);
    out.push('}');
}

/// Writes `rows` as one JSON value: the element alone, or an array of them.
fn one_or_array(rows: &[Encoded], mut write: impl FnMut(&Encoded, &mut String)) -> String {
    let mut out = String::new();
    if rows.len() == 1 {
        write(&rows[0], &mut out);
        return out;
    }
    out.push('[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(r, &mut out);
    }
    out.push(']');
    out
}

impl Body {
    /// The body of a request carrying `rows`, and its content type.
    pub fn make(&self, rows: &[Encoded]) -> (String, &'static str) {
        match self {
            Body::Json => (
                one_or_array(rows, |r, out| out.push_str(&r.json)),
                "application/json",
            ),
            Body::CloudEvents { source, kind } => {
                let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let body = one_or_array(rows, |r, out| write_event(r, source, kind, &time, out));
                let content_type = if rows.len() == 1 {
                    "application/cloudevents+json"
                } else {
                    "application/cloudevents-batch+json"
                };
                (body, content_type)
            }
            Body::Template(t) => (
                rows.iter()
                    .map(|r| {
                        // The encoded row is strict JSON, so it parses back.
                        let row: Map<String, Value> =
                            serde_json::from_str(&r.json).unwrap_or_default();
                        render(t, &row)
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                "application/json",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_takes_column_values_json_escaped() {
        let row: Map<String, Value> =
            serde_json::from_str(r#"{"sensor":"s\"1","t":81.5,"x":null}"#).unwrap();
        assert_eq!(
            render(
                r#"{"text": "{{sensor}} at {{ t }} ({{x}}, {{missing}}) {{"#,
                &row
            ),
            r#"{"text": "s\"1 at 81.5 (null, null) {{"#
        );
    }
}
