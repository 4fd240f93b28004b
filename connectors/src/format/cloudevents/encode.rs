//! Encoding rows as CloudEvents: the attributes of each row as text, and its
//! `data` as a JSON object, from which a sink writes a structured event or
//! (Kafka) binary-mode headers and value.

use std::ops::Range;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use vigil_engine::changelog;
use vigil_engine::connector::TableSpec;
use vigil_engine::Result;

use super::ATTRIBUTES;
use crate::error::connector_error;
use crate::format::Part;
use crate::json::encode::{encode_json_lines, write_json_string, NonFinite, RowError};
use crate::row_id::{job_name, RowIds};

const ID: usize = 0;
const SOURCE: usize = 1;
const TYPE: usize = 2;
const SPECVERSION: usize = 5;
const DATACONTENTTYPE: usize = 6;

/// Turns rows of one table into events.
#[derive(Debug, Clone)]
pub struct EventEncoder {
    /// The column of each attribute, if the table has one.
    columns: [Option<usize>; ATTRIBUTES.len()],
    /// The columns that form `data`.
    data_cols: Vec<usize>,
    data_schema: SchemaRef,
    source: String,
    kind: String,
    ids: RowIds,
}

/// Encoded events: attribute values and `data` objects in one text.
#[derive(Debug, Default)]
pub struct Events {
    text: String,
    rows: Vec<Event>,
    /// Rows that make no valid event, with the error, in row order.
    failed: Vec<RowError>,
}

/// Where one event's parts are in [`Events::text`].
#[derive(Debug, Clone)]
struct Event {
    data: Range<usize>,
    attributes: [Option<Range<usize>>; ATTRIBUTES.len()],
}

impl EventEncoder {
    /// The encoder for rows of `spec`'s table (`part` tells which options
    /// apply: a Kafka value's may be prefixed with `value.`); ids are the
    /// rows' ids for the job and table (see [`RowIds`]).
    pub fn new(spec: &TableSpec, part: Part) -> Result<Self> {
        let width = changelog::data_width(&spec.schema);
        let mut columns = [None; ATTRIBUTES.len()];
        let mut data_cols = vec![];
        for (i, f) in spec.schema.fields()[..width].iter().enumerate() {
            match ATTRIBUTES.iter().position(|a| a == f.name()) {
                Some(a) => columns[a] = Some(i),
                None => data_cols.push(i),
            }
        }
        // As the webhook sink's events: `vigil/<job>` and `vigil.<table>`.
        let job = job_name(spec);
        let source = crate::format::option(spec, part, "cloudevents.source")
            .map_or_else(|| format!("vigil/{job}"), str::to_string);
        let kind = crate::format::option(spec, part, "cloudevents.type")
            .map_or_else(|| format!("vigil.{}", spec.name), str::to_string);
        let data_schema = std::sync::Arc::new(
            spec.schema
                .project(&data_cols)
                .map_err(|e| connector_error("cloudevents", spec, e.to_string()))?,
        );
        Ok(Self {
            columns,
            data_cols,
            data_schema,
            source,
            kind,
            ids: RowIds::new(job, &spec.name),
        })
    }

    /// Encodes the rows of `batch` into `out` (cleared first).
    pub fn encode(&self, batch: &RecordBatch, out: &mut Events) -> Result<(), String> {
        out.text.clear();
        out.rows.clear();
        out.failed.clear();
        let n = batch.num_rows();
        let data = RecordBatch::try_new(
            self.data_schema.clone(),
            self.data_cols
                .iter()
                .map(|i| batch.column(*i).clone())
                .collect(),
        )
        .map_err(|e| e.to_string())?;
        out.failed = encode_json_lines(&data, &mut out.text, NonFinite::Quoted)
            .map_err(|e| e.to_string())?;
        let mut failed = out.failed.iter().map(|(row, _)| *row).peekable();
        let mut lines = memchr::memchr_iter(b'\n', out.text.as_bytes());
        let mut start = 0;
        for row in 0..n {
            // A row whose data failed wrote no line: its event stays empty.
            if failed.next_if_eq(&row).is_some() {
                out.rows.push(Event {
                    data: start..start,
                    attributes: Default::default(),
                });
                continue;
            }
            let end = lines
                .next()
                .ok_or_else(|| format!("encoded fewer events than the {n} rows"))?;
            out.rows.push(Event {
                data: start..end,
                attributes: Default::default(),
            });
            start = end + 1;
        }
        let options = FormatOptions::default();
        for (attr, col) in self.columns.iter().enumerate() {
            let Some(col) = col else { continue };
            let array = batch.column(*col);
            if let DataType::Timestamp(_, _) = array.data_type() {
                let ms = cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))
                    .map_err(|e| e.to_string())?;
                let ms = ms.as_primitive::<TimestampMillisecondType>();
                for (row, event) in out.rows.iter_mut().enumerate() {
                    if ms.is_valid(row) {
                        let s = out.text.len();
                        if !rfc3339(ms.value(row), &mut out.text) {
                            out.failed.push((
                                row,
                                format!("attribute '{}': the timestamp {} ms since 1970 is out of range", ATTRIBUTES[attr], ms.value(row)),
                            ));
                        }
                        event.attributes[attr] = Some(s..out.text.len());
                    }
                }
                continue;
            }
            let array: &ArrayRef = array;
            let f = ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| e.to_string())?;
            for (row, event) in out.rows.iter_mut().enumerate() {
                if array.is_valid(row) {
                    use std::fmt::Write;
                    let s = out.text.len();
                    let _ = write!(out.text, "{}", f.value(row));
                    event.attributes[attr] = Some(s..out.text.len());
                }
            }
        }
        // Defaults, after the columns: an id derived from everything else.
        for event in out.rows.iter_mut() {
            for (attr, value) in [
                (SPECVERSION, Some("1.0")),
                (DATACONTENTTYPE, Some("application/json")),
                (SOURCE, Some(self.source.as_str())),
                (TYPE, Some(self.kind.as_str())),
            ] {
                if let (None, Some(v)) = (&event.attributes[attr], value) {
                    let s = out.text.len();
                    out.text.push_str(v);
                    event.attributes[attr] = Some(s..out.text.len());
                }
            }
            if event.attributes[ID].is_none() {
                let mut parts: [&[u8]; ATTRIBUTES.len() + 1] = [&[]; ATTRIBUTES.len() + 1];
                parts[0] = out.text[event.data.clone()].as_bytes();
                for (p, a) in parts[1..].iter_mut().zip(&event.attributes) {
                    if let Some(r) = a {
                        *p = out.text[r.clone()].as_bytes();
                    }
                }
                let mut buf = [0u8; 32];
                let id = self.ids.id(&parts, &mut buf).to_string();
                let s = out.text.len();
                out.text.push_str(&id);
                event.attributes[ID] = Some(s..out.text.len());
            }
        }
        // CloudEvents 1.0: id, source, type and specversion are non-empty strings.
        for (row, event) in out.rows.iter().enumerate() {
            for attr in [ID, SOURCE, TYPE, SPECVERSION] {
                if event.attributes[attr]
                    .as_ref()
                    .is_some_and(|r| r.is_empty())
                {
                    out.failed.push((
                        row,
                        format!(
                            "attribute '{}' is empty; a CloudEvent needs a non-empty id, source, type and specversion",
                            ATTRIBUTES[attr]
                        ),
                    ));
                }
            }
        }
        out.failed.sort_by_key(|(row, _)| *row);
        out.failed.dedup_by_key(|(row, _)| *row);
        Ok(())
    }
}

/// `ms` since the epoch as RFC 3339 in UTC, with milliseconds; false
/// (nothing written) for an instant no calendar date holds.
fn rfc3339(ms: i64, out: &mut String) -> bool {
    use std::fmt::Write;
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => {
            let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
            true
        }
        None => false,
    }
}

impl Events {
    /// The rows that make no valid event, with the error, in row order.
    pub fn failed(&self) -> &[RowError] {
        &self.failed
    }

    /// The number of events.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Event `i`'s `data`, a JSON object.
    pub fn data(&self, i: usize) -> &str {
        &self.text[self.rows[i].data.clone()]
    }

    /// Event `i`'s attributes that have a value, with their names.
    pub fn attributes(&self, i: usize) -> impl Iterator<Item = (&'static str, &str)> {
        self.rows[i]
            .attributes
            .iter()
            .zip(ATTRIBUTES)
            .filter_map(|(r, name)| r.as_ref().map(|r| (name, &self.text[r.clone()])))
    }

    /// Appends event `i` in structured mode (a JSON object) to `out`.
    pub fn write_structured(&self, i: usize, out: &mut String) {
        out.push('{');
        for (name, value) in self.attributes(i) {
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            write_json_string(value, out);
            out.push(',');
        }
        out.push_str("\"data\":");
        out.push_str(self.data(i));
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, StringArray, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn spec(schema: Schema, options: &[(&str, &str)]) -> TableSpec {
        let options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        TableSpec::new("alerts", Arc::new(schema), options)
    }

    #[test]
    fn attribute_columns_become_attributes_and_the_rest_data() {
        let schema = Schema::new(vec![
            Field::new("subject", DataType::Utf8, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new("temp", DataType::Float64, true),
        ]);
        let spec = spec(
            schema.clone(),
            &[
                ("cloudevents.source", "/sensors"),
                ("cloudevents.type", "alert"),
            ],
        );
        let enc = EventEncoder::new(&spec, Part::Table).unwrap();
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![Some("s\"1"), None])),
                Arc::new(TimestampMillisecondArray::from(vec![1_000, 61_500])),
                Arc::new(Float64Array::from(vec![81.5, 90.0])),
            ],
        )
        .unwrap();
        let mut events = Events::default();
        enc.encode(&batch, &mut events).unwrap();
        assert_eq!(events.len(), 2);
        let mut s = String::new();
        events.write_structured(1, &mut s);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["source"], "/sensors");
        assert_eq!(v["type"], "alert");
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["time"], "1970-01-01T00:01:01.500Z");
        assert_eq!(v["data"]["temp"], 90.0);
        assert!(v.get("subject").is_none(), "a NULL attribute is left out");
        assert_eq!(v["id"].as_str().map(str::len), Some(32));
        let mut first = String::new();
        events.write_structured(0, &mut first);
        let first: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(first["subject"], "s\"1");
        assert_ne!(first["id"], v["id"], "distinct rows get distinct ids");
    }

    #[test]
    fn source_and_type_default_as_the_webhook_s() {
        let schema = Schema::new(vec![Field::new("temp", DataType::Float64, true)]);
        let spec = spec(schema.clone(), &[]);
        let enc = EventEncoder::new(&spec, Part::Table).unwrap();
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Float64Array::from(vec![1.0]))],
        )
        .unwrap();
        let mut events = Events::default();
        enc.encode(&batch, &mut events).unwrap();
        let attrs: Vec<(&str, &str)> = events.attributes(0).collect();
        assert!(attrs.contains(&("source", "vigil/vigil")), "{attrs:?}");
        assert!(attrs.contains(&("type", "vigil.alerts")), "{attrs:?}");
    }
}
