//! What a webhook request carries: rows as JSON objects, as CloudEvents 1.0
//! (structured mode; a batch as `application/cloudevents-batch+json`), or
//! rendered through a template with `{{column}}` placeholders.

use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};
use vigil_engine::changelog::{self, RowKind};

use crate::json::encode::encode_json_lines;
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
    /// The row as a JSON object.
    pub row: Map<String, Value>,
}

/// The rows of `batch` as JSON objects with their ids (`-U` rows of an
/// updating result are skipped: a webhook is told the new row).
pub fn encode_rows(batch: &RecordBatch, ids: &RowIds) -> Result<Vec<Encoded>, String> {
    let mut text = String::new();
    encode_json_lines(batch, &mut text).map_err(|e| e.to_string())?;
    let kinds = changelog::kinds(batch);
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if changelog::kind_at(kinds, i) == RowKind::UpdateBefore {
            continue;
        }
        let Value::Object(row) = serde_json::from_str(line).map_err(|e| e.to_string())? else {
            continue;
        };
        let mut buf = [0u8; 32];
        let id = ids.id(&[line.as_bytes()], &mut buf).to_string();
        out.push(Encoded { id, row });
    }
    Ok(out)
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

impl Body {
    /// The body of a request carrying `rows`, and its content type.
    pub fn make(&self, rows: &[Encoded]) -> (String, &'static str) {
        match self {
            Body::Json if rows.len() == 1 => (
                Value::Object(rows[0].row.clone()).to_string(),
                "application/json",
            ),
            Body::Json => (
                Value::Array(rows.iter().map(|r| Value::Object(r.row.clone())).collect())
                    .to_string(),
                "application/json",
            ),
            Body::CloudEvents { source, kind } => {
                let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let event = |r: &Encoded| {
                    serde_json::json!({
                        "specversion": "1.0",
                        "id": r.id,
                        "source": source,
                        "type": kind,
                        "time": time,
                        "datacontenttype": "application/json",
                        "data": Value::Object(r.row.clone()),
                    })
                };
                if rows.len() == 1 {
                    (event(&rows[0]).to_string(), "application/cloudevents+json")
                } else {
                    (
                        Value::Array(rows.iter().map(event).collect()).to_string(),
                        "application/cloudevents-batch+json",
                    )
                }
            }
            Body::Template(t) => (
                rows.iter()
                    .map(|r| render(t, &r.row))
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
