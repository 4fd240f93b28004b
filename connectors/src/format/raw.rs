//! The `raw` format (Flink's): a table of one physical column, STRING or
//! BYTES, whose value is the whole record — a line of a file. Decoding never
//! fails for BYTES; for STRING a line that is not UTF-8 is a malformed
//! record. A NULL value is written as an empty line.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use vigil_engine::connector::TableSpec;
use vigil_engine::Result;

use crate::error::connector_error;
use crate::format::decode::{BadRecord, Decoded};

/// Fails unless `schema` (`spec`'s columns, or those of its Kafka value) has
/// exactly one column, of type STRING or BYTES.
pub fn check_schema(connector: &str, spec: &TableSpec, schema: &Schema) -> Result<()> {
    let fields = schema.fields();
    let ok = fields.len() == 1
        && matches!(
            fields[0].data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary
        );
    if ok {
        return Ok(());
    }
    Err(connector_error(
        connector,
        spec,
        format!(
            "'format' = 'raw' needs exactly one physical column of type STRING or BYTES; the table has {}",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// Each line of `chunk` (whose first line is `first_line`) as a row.
pub fn decode_lines(schema: &SchemaRef, chunk: &[u8], first_line: u64) -> Decoded {
    if chunk.is_empty() {
        return Decoded::default();
    }
    // Every line is a value, an empty one too.
    let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
    let text = is_text(schema);
    let mut bad = vec![];
    let column: ArrayRef = if text {
        let mut values: Vec<&str> = vec![];
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match std::str::from_utf8(line) {
                Ok(s) => values.push(s),
                Err(e) => bad.push(BadRecord {
                    line: first_line + i as u64,
                    reason: format!("not UTF-8: {e}"),
                    excerpt: String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned(),
                    raw: line.to_vec(),
                }),
            }
        }
        Arc::new(StringArray::from(values))
    } else {
        let values: Vec<&[u8]> = body
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        Arc::new(BinaryArray::from(values))
    };
    let column =
        datafusion::arrow::compute::cast(&column, schema.field(0).data_type()).unwrap_or(column);
    let batch = RecordBatch::try_new(schema.clone(), vec![column]).ok();
    Decoded { batch, bad }
}

/// The records of `buf`, each followed by a `\n` and ending at `ends[i]`,
/// as rows, unchanged (a record may hold newlines); `nulls[i]` (if given)
/// makes row `i` NULL. Fails if a STRING record is not UTF-8.
pub fn decode_records(
    schema: &SchemaRef,
    buf: &[u8],
    ends: &[usize],
    nulls: &[bool],
) -> Result<RecordBatch, String> {
    let records = (0..ends.len()).map(|i| {
        let record = super::record_at(buf, ends, i);
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        (!nulls.get(i).copied().unwrap_or(false)).then_some(record)
    });
    let column: ArrayRef = if is_text(schema) {
        let mut values = Vec::with_capacity(ends.len());
        for r in records {
            values.push(match r {
                Some(r) => Some(std::str::from_utf8(r).map_err(|e| format!("not UTF-8: {e}"))?),
                None => None,
            });
        }
        Arc::new(StringArray::from(values))
    } else {
        Arc::new(BinaryArray::from(records.collect::<Vec<_>>()))
    };
    let column = datafusion::arrow::compute::cast(&column, schema.field(0).data_type())
        .map_err(|e| e.to_string())?;
    RecordBatch::try_new(schema.clone(), vec![column]).map_err(|e| e.to_string())
}

/// Why `record` cannot be a row, or None.
pub fn record_error(schema: &SchemaRef, record: &[u8]) -> Option<String> {
    if !is_text(schema) {
        return None;
    }
    std::str::from_utf8(record)
        .err()
        .map(|e| format!("not UTF-8: {e}"))
}

fn is_text(schema: &SchemaRef) -> bool {
    matches!(
        schema.field(0).data_type(),
        DataType::Utf8 | DataType::LargeUtf8
    )
}

/// Appends row `i`'s value of `column` to `out` (nothing for NULL).
pub fn encode_value(column: &dyn Array, i: usize, out: &mut Vec<u8>) {
    if column.is_null(i) {
        return;
    }
    match column.data_type() {
        DataType::Utf8 => out.extend_from_slice(column.as_string::<i32>().value(i).as_bytes()),
        DataType::LargeUtf8 => out.extend_from_slice(column.as_string::<i64>().value(i).as_bytes()),
        DataType::Binary => out.extend_from_slice(column.as_binary::<i32>().value(i)),
        DataType::LargeBinary => out.extend_from_slice(column.as_binary::<i64>().value(i)),
        _ => {}
    }
}

/// Appends each row's value and a newline to `out`.
pub fn encode_lines(batch: &RecordBatch, out: &mut Vec<u8>) {
    let column = batch.column(0);
    for i in 0..batch.num_rows() {
        encode_value(column, i, out);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn lines_round_trip_and_non_utf8_is_a_bad_record() {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("line", DataType::Utf8, true)]));
        let d = decode_lines(&schema, b"a b\n\xff\n{\"not\": json\n", 7);
        let batch = d.batch.unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].line, 8);
        let mut out = vec![];
        encode_lines(&batch, &mut out);
        assert_eq!(out, b"a b\n{\"not\": json\n");
    }
}
