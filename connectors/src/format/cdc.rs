//! Change-data-capture formats, with Flink's names and options: a record is
//! one change of a database row, and becomes one or two rows of an updating
//! stream (Flink's changelog: `+I`, `-U`/`+U`, `-D`).
//!
//! - `debezium-json`: `{"before": {...}, "after": {...}, "op": "c"|"r"|"u"|"d"}`,
//!   wrapped in `{"schema": ..., "payload": {...}}` when
//!   `'debezium-json.schema-include' = 'true'`. A create or snapshot read is
//!   `+I` of `after`; an update is `-U` of `before` then `+U` of `after`; a
//!   delete is `-D` of `before`.
//!
//! Decoding is vectorised: arrow-json reads the envelopes of a whole chunk
//! into `before`/`after` struct columns, and the rows are interleaved out of
//! them by index.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int8Array, RecordBatch, StructArray, UInt32Array,
};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use vigil_engine::changelog::{with_row_kind, RowKind};

/// The CDC formats a table may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdcFormat {
    /// `debezium-json`; `schema_include`: envelopes wrapped in `payload`.
    Debezium {
        /// `'debezium-json.schema-include' = 'true'`.
        schema_include: bool,
    },
}

/// The rows a chunk of change records makes.
#[derive(Debug)]
pub struct Changes {
    /// The table's columns, then `__row_kind`.
    pub rows: RecordBatch,
    /// For each row, the index of the record it came from.
    pub records: UInt32Array,
}

/// How change records map onto a table's columns.
#[derive(Debug, Clone)]
pub struct CdcLayout {
    format: CdcFormat,
    /// The table's (value) columns.
    schema: SchemaRef,
    /// The columns and the row kind.
    out: SchemaRef,
    /// What arrow-json decodes each record into.
    pub decode_schema: SchemaRef,
}

impl CdcLayout {
    /// The layout of `format` records for rows of `schema`.
    pub fn new(format: CdcFormat, schema: &SchemaRef) -> Self {
        let image = DataType::Struct(Fields::from(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let envelope = vec![
            Field::new("before", image.clone(), true),
            Field::new("after", image, true),
            Field::new("op", DataType::Utf8, true),
        ];
        let decode_schema = match format {
            CdcFormat::Debezium {
                schema_include: true,
            } => Schema::new(vec![Field::new(
                "payload",
                DataType::Struct(envelope.into()),
                true,
            )]),
            CdcFormat::Debezium { .. } => Schema::new(envelope),
        };
        Self {
            format,
            schema: schema.clone(),
            out: with_row_kind(schema),
            decode_schema: Arc::new(decode_schema),
        }
    }

    /// The schema of the rows: the table's columns, then `__row_kind`.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.out
    }

    /// The envelope's `before`, `after` and `op` columns.
    fn envelope<'a>(&self, batch: &'a RecordBatch) -> Result<[&'a ArrayRef; 3], String> {
        let columns = match self.format {
            CdcFormat::Debezium {
                schema_include: true,
            } => batch
                .column(0)
                .as_struct_opt()
                .ok_or("'payload' is not an object")?
                .columns(),
            CdcFormat::Debezium { .. } => batch.columns(),
        };
        match columns {
            [before, after, op] => Ok([before, after, op]),
            _ => Err("unexpected envelope layout".into()),
        }
    }

    /// Why record `i` of a decoded chunk is not a change, if it is not.
    fn record_error(
        &self,
        i: usize,
        payload: Option<&StructArray>,
        [before, after, op]: [&ArrayRef; 3],
    ) -> Option<String> {
        if payload.is_some_and(|p| p.is_null(i)) {
            return Some(
                "the record has no 'payload' (is 'debezium-json.schema-include' right?)".into(),
            );
        }
        let op = op.as_string_opt::<i32>()?;
        if op.is_null(i) {
            return Some("the record has no 'op'".into());
        }
        let (needs_before, needs_after) = match op.value(i) {
            "c" | "r" => (false, true),
            "u" => (true, true),
            "d" => (true, false),
            other => {
                return Some(format!(
                    "unknown 'op' value '{other}' (expected c, r, u or d)"
                ))
            }
        };
        if needs_before && before.is_null(i) {
            return Some(format!(
                "the 'before' of a '{}' record is null (for a Postgres table, set REPLICA IDENTITY FULL)",
                op.value(i)
            ));
        }
        if needs_after && after.is_null(i) {
            return Some(format!("the 'after' of a '{}' record is null", op.value(i)));
        }
        None
    }

    /// The changes in `batch`, envelopes decoded with [`CdcLayout::decode_schema`].
    /// Fails on the first record that is not a valid change.
    pub fn changes(&self, batch: &RecordBatch) -> Result<Changes, String> {
        let envelope = self.envelope(batch)?;
        let payload = match self.format {
            CdcFormat::Debezium {
                schema_include: true,
            } => batch.column(0).as_struct_opt(),
            CdcFormat::Debezium { .. } => None,
        };
        let [before, after, op] = envelope;
        let ops = op.as_string_opt::<i32>().ok_or("'op' is not a string")?;
        // (image, record): image 0 is `before`, 1 is `after`.
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(batch.num_rows() + 8);
        let mut records = Vec::with_capacity(batch.num_rows() + 8);
        let mut kinds = Vec::with_capacity(batch.num_rows() + 8);
        for i in 0..batch.num_rows() {
            if let Some(e) = self.record_error(i, payload, envelope) {
                return Err(e);
            }
            let mut pick = |image: usize, kind: RowKind| {
                picks.push((image, i));
                records.push(i as u32);
                kinds.push(kind as i8);
            };
            match ops.value(i) {
                "c" | "r" => pick(1, RowKind::Insert),
                "u" => {
                    pick(0, RowKind::UpdateBefore);
                    pick(1, RowKind::UpdateAfter);
                }
                _ => pick(0, RowKind::Delete),
            }
        }
        let images = [
            before.as_struct_opt().ok_or("'before' is not an object")?,
            after.as_struct_opt().ok_or("'after' is not an object")?,
        ];
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.out.fields().len());
        for (c, field) in self.schema.fields().iter().enumerate() {
            let sources = [images[0].column(c).as_ref(), images[1].column(c).as_ref()];
            let column = interleave(&sources, &picks).map_err(|e| e.to_string())?;
            if !field.is_nullable() && column.null_count() > 0 {
                return Err(format!(
                    "column '{}' is NOT NULL but a change has it null",
                    field.name()
                ));
            }
            columns.push(column);
        }
        columns.push(Arc::new(Int8Array::from(kinds)));
        let rows = RecordBatch::try_new(self.out.clone(), columns).map_err(|e| e.to_string())?;
        Ok(Changes {
            rows,
            records: UInt32Array::from(records),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::decode::RecordDecoder;
    use crate::format::Format;
    use datafusion::arrow::datatypes::Int64Type;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    fn decode(records: &str, schema_include: bool) -> Result<Changes, String> {
        let format = Format::Cdc(CdcFormat::Debezium { schema_include });
        let d = RecordDecoder::for_format(format, schema());
        let mut ends = vec![];
        for (i, b) in records.bytes().enumerate() {
            if b == b'\n' {
                ends.push(i + 1);
            }
        }
        d.decode_changes(records.as_bytes(), &ends)
    }

    #[test]
    fn each_operation_becomes_its_rows() {
        let records = concat!(
            r#"{"before":null,"after":{"id":1,"name":"a"},"op":"c"}"#,
            "\n",
            r#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"},"op":"u"}"#,
            "\n",
            r#"{"before":{"id":1,"name":"b"},"after":null,"op":"d"}"#,
            "\n",
            r#"{"before":null,"after":{"id":2,"name":"c"},"op":"r"}"#,
            "\n",
        );
        let c = decode(records, false).unwrap();
        let kinds: Vec<i8> = c
            .rows
            .column(2)
            .as_primitive::<datafusion::arrow::datatypes::Int8Type>()
            .values()
            .to_vec();
        assert_eq!(kinds, vec![0, 1, 2, 3, 0]);
        let names: Vec<&str> = c
            .rows
            .column(1)
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap_or("-"))
            .collect();
        assert_eq!(names, vec!["a", "a", "b", "b", "c"]);
        let ids = c
            .rows
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        assert_eq!(ids, vec![1, 1, 1, 1, 2]);
        assert_eq!(c.records.values().to_vec(), vec![0, 1, 1, 2, 3]);
    }

    #[test]
    fn the_payload_wrapper_is_read_when_the_schema_is_included() {
        let records = concat!(
            r#"{"schema":{"type":"struct"},"payload":{"before":null,"after":{"id":7,"name":"x"},"op":"c"}}"#,
            "\n"
        );
        let c = decode(records, true).unwrap();
        assert_eq!(c.rows.num_rows(), 1);
        assert!(
            decode(records, false).is_err(),
            "without the option the envelope has no 'op'"
        );
    }

    #[test]
    fn records_that_are_not_changes_are_refused_with_the_reason() {
        let no_before =
            r#"{"before":null,"after":{"id":1,"name":"a"},"op":"u"}"#.to_string() + "\n";
        assert!(decode(&no_before, false)
            .unwrap_err()
            .contains("REPLICA IDENTITY"));
        let bad_op = r#"{"before":null,"after":{"id":1},"op":"x"}"#.to_string() + "\n";
        assert!(decode(&bad_op, false).unwrap_err().contains("unknown 'op'"));
        let null_key = r#"{"before":null,"after":{"name":"a"},"op":"c"}"#.to_string() + "\n";
        assert!(decode(&null_key, false).unwrap_err().contains("NOT NULL"));
    }
}
