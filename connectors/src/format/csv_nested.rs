//! ARRAY and ROW columns in the `csv` format, as Flink's csv format writes
//! them: an array's elements, or a row's fields, in one field separated by
//! `csv.array-element-delimiter` (default `;`). An empty field is an empty
//! array, or a NULL row. arrow-csv reads neither, so such columns are read
//! as text and converted here, and turned back into text to be written.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, NullBufferBuilder, StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast, cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

/// Whether csv holds a `t` column as delimited text.
pub fn is_nested(t: &DataType) -> bool {
    matches!(t, DataType::List(_) | DataType::Struct(_))
}

/// `schema` with its nested columns read as text.
pub fn as_text(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if is_nested(f.data_type()) {
                f.as_ref().clone().with_data_type(DataType::Utf8)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Text values cast to `t`, failing on a value that does not convert.
fn parse(values: &StringArray, t: &DataType) -> Result<ArrayRef, String> {
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(values, t, &strict).map_err(|e| e.to_string())
}

/// The text column `text` read as `t` (an ARRAY or a ROW).
fn read_column(
    text: &StringArray,
    t: &DataType,
    delimiter: &str,
    null_literal: bool,
) -> Result<ArrayRef, String> {
    match t {
        DataType::List(item) => {
            let mut lengths = Vec::with_capacity(text.len());
            let mut nulls = NullBufferBuilder::new(text.len());
            let mut elements = StringBuilder::new();
            for i in 0..text.len() {
                if text.is_null(i) && null_literal {
                    lengths.push(0);
                    nulls.append_null();
                    continue;
                }
                nulls.append_non_null();
                let v = if text.is_null(i) { "" } else { text.value(i) };
                let parts: Vec<&str> = if v.is_empty() {
                    vec![]
                } else {
                    v.split(delimiter).collect()
                };
                lengths.push(parts.len());
                for p in parts {
                    elements.append_value(p);
                }
            }
            let values = parse(&elements.finish(), item.data_type())?;
            let list = ListArray::try_new(
                item.clone(),
                OffsetBuffer::from_lengths(lengths),
                values,
                nulls.finish(),
            )
            .map_err(|e| e.to_string())?;
            Ok(Arc::new(list))
        }
        DataType::Struct(fields) => {
            let mut columns: Vec<StringBuilder> =
                fields.iter().map(|_| StringBuilder::new()).collect();
            let mut nulls = NullBufferBuilder::new(text.len());
            for i in 0..text.len() {
                let v = (!text.is_null(i))
                    .then(|| text.value(i))
                    .filter(|v| !v.is_empty());
                let Some(v) = v else {
                    nulls.append_null();
                    columns.iter_mut().for_each(|c| c.append_null());
                    continue;
                };
                let parts: Vec<&str> = v.split(delimiter).collect();
                if parts.len() != fields.len() {
                    return Err(format!(
                        "a ROW of {} fields written with {}: '{v}'",
                        fields.len(),
                        parts.len()
                    ));
                }
                nulls.append_non_null();
                for (c, p) in columns.iter_mut().zip(parts) {
                    c.append_value(p);
                }
            }
            let children = columns
                .iter_mut()
                .zip(fields.iter())
                .map(|(c, f)| parse(&c.finish(), f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            let row = StructArray::try_new(fields.clone(), children, nulls.finish())
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(row))
        }
        other => parse(text, other),
    }
}

/// A batch read with [`as_text`]'s schema, its nested columns converted to
/// `schema`'s types.
pub fn read_nested(
    batch: RecordBatch,
    schema: &SchemaRef,
    delimiter: &str,
    null_literal: bool,
) -> Result<RecordBatch, String> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if !is_nested(f.data_type()) {
                return Ok(c.clone());
            }
            let text = c
                .as_string_opt::<i32>()
                .ok_or_else(|| format!("column {} was not read as text", f.name()))?;
            read_column(text, f.data_type(), delimiter, null_literal)
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// `batch` with its ARRAY and ROW columns as delimited text, to be written.
pub fn write_nested(batch: &RecordBatch, delimiter: &str) -> Result<RecordBatch, String> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let schema = as_text(batch.schema_ref());
    let columns = batch
        .columns()
        .iter()
        .map(|c| {
            if is_nested(c.data_type()) {
                Ok(Arc::new(column_text(c, delimiter)?) as ArrayRef)
            } else {
                Ok(c.clone())
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
}

/// Each value of a nested column as its delimited text.
fn column_text(c: &ArrayRef, delimiter: &str) -> Result<StringArray, String> {
    let parts_of = |i: usize| -> Result<Option<Vec<ArrayRef>>, String> {
        if c.is_null(i) {
            return Ok(None);
        }
        Ok(Some(match c.data_type() {
            DataType::List(_) => vec![c.as_list::<i32>().value(i)],
            DataType::Struct(_) => c
                .as_struct()
                .columns()
                .iter()
                .map(|f| f.slice(i, 1))
                .collect(),
            _ => vec![c.slice(i, 1)],
        }))
    };
    let mut out = StringBuilder::new();
    for i in 0..c.len() {
        let Some(parts) = parts_of(i)? else {
            out.append_null();
            continue;
        };
        let mut texts: Vec<String> = vec![];
        for p in parts {
            let t = cast(&p, &DataType::Utf8).map_err(|e| e.to_string())?;
            let t = t.as_string::<i32>();
            texts.extend((0..t.len()).map(|k| {
                if t.is_null(k) {
                    String::new()
                } else {
                    t.value(k).to_string()
                }
            }));
        }
        out.append_value(texts.join(delimiter));
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::Fields;

    #[test]
    fn arrays_and_rows_read_from_and_write_to_delimited_text() {
        let row = DataType::Struct(Fields::from(vec![
            Field::new("n", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("a", list, true),
            Field::new("r", row, true),
        ]));
        let text = RecordBatch::try_new(
            as_text(&schema),
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("1;2;3"), Some("")])),
                Arc::new(StringArray::from(vec![Some("7;x"), Some("")])),
            ],
        )
        .expect("batch");
        let read = read_nested(text.clone(), &schema, ";", false).expect("reads");
        assert_eq!(read.column(1).as_list::<i32>().value(0).len(), 3);
        assert_eq!(read.column(1).as_list::<i32>().value(1).len(), 0);
        assert!(read.column(2).is_null(1), "an empty field is a NULL row");
        let written = write_nested(&read, ";").expect("writes");
        assert_eq!(written.column(1).as_string::<i32>().value(0), "1;2;3");
        assert_eq!(written.column(2).as_string::<i32>().value(0), "7;x");
        let bad = RecordBatch::try_new(
            as_text(&schema),
            vec![
                Arc::new(Int32Array::from(vec![1])),
                Arc::new(StringArray::from(vec![Some("1;z")])),
                Arc::new(StringArray::from(vec![Some("7;x")])),
            ],
        )
        .expect("batch");
        assert!(
            read_nested(bad, &schema, ";", false).is_err(),
            "'z' is not an INT"
        );
    }
}
