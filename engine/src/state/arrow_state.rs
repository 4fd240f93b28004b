//! Arrow batches as state values: Arrow IPC encoding, and splitting a batch of
//! keyed rows by key group.

use std::io::Cursor;

use datafusion::arrow::array::{Array, ArrayRef, ArrowPrimitiveType, AsArray, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type, UInt32Type, UInt64Type};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};

use super::key_group_of;
use crate::error::ResultExt;
use crate::{EngineError, Result};

/// Encodes a batch as an Arrow IPC stream.
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = StreamWriter::try_new(&mut buf, batch.schema_ref()).context("state encoding")?;
    w.write(batch).context("state encoding")?;
    w.finish().context("state encoding")?;
    drop(w);
    Ok(buf)
}

/// Decodes what [`encode_batch`] wrote.
pub fn decode_batch(bytes: &[u8]) -> Result<RecordBatch> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None).context("state decoding")?;
    let mut batches = vec![];
    for b in reader {
        batches.push(b.context("state decoding")?);
    }
    match batches.len() {
        1 => Ok(batches.remove(0)),
        n => Err(EngineError::State(format!(
            "a state value holds {n} batches, 1 expected"
        ))),
    }
}

/// The key group of each row's key (`keys`, in Arrow's row format), into `out`.
/// Checkpoints and the keyed exchange between parallel instances use this
/// same function, so a key's state and its rows meet in one instance.
pub fn key_groups_of(keys: &[ArrayRef], groups: u16, out: &mut Vec<u16>) -> Result<()> {
    out.clear();
    if let [key] = keys {
        if integer_key_groups(key, groups, out) {
            return Ok(());
        }
    }
    row_key_groups(keys, groups, out)
}

/// [`key_groups_of`] through Arrow's row converter (any key types).
fn row_key_groups(keys: &[ArrayRef], groups: u16, out: &mut Vec<u16>) -> Result<()> {
    let fields = keys
        .iter()
        .map(|k| SortField::new(k.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields).context("key groups")?;
    let rows = converter.convert_columns(keys).context("key groups")?;
    out.extend(rows.iter().map(|row| key_group_of(row.as_ref(), groups)));
    Ok(())
}

/// [`key_groups_of`] for one integer column, without a row converter: a
/// value's row-format bytes are a 1 (valid) and its big-endian bytes (the
/// sign bit flipped when signed), a NULL's are zeros, as `RowConverter`
/// writes them (ascending, nulls first). False for other types.
fn integer_key_groups(key: &ArrayRef, groups: u16, out: &mut Vec<u16>) -> bool {
    fn each<T: ArrowPrimitiveType, const N: usize>(
        key: &ArrayRef,
        groups: u16,
        out: &mut Vec<u16>,
        bytes: impl Fn(T::Native) -> [u8; N],
    ) {
        let a = key.as_primitive::<T>();
        let mut row = [0u8; 9];
        for i in 0..a.len() {
            let n = N + 1;
            if a.is_valid(i) {
                row[0] = 1;
                row[1..n].copy_from_slice(&bytes(a.value(i)));
            } else {
                row[..n].fill(0);
            }
            out.push(key_group_of(&row[..n], groups));
        }
    }
    match key.data_type() {
        DataType::Int64 => each::<Int64Type, 8>(key, groups, out, |v| (v ^ i64::MIN).to_be_bytes()),
        DataType::Int32 => each::<Int32Type, 4>(key, groups, out, |v| (v ^ i32::MIN).to_be_bytes()),
        DataType::UInt64 => each::<UInt64Type, 8>(key, groups, out, u64::to_be_bytes),
        DataType::UInt32 => each::<UInt32Type, 4>(key, groups, out, u32::to_be_bytes),
        _ => return false,
    }
    true
}

/// Splits `batch` by the key group of each row's key (`keys`, in Arrow's row
/// format); groups come out in increasing order.
pub fn split_by_key_group(
    batch: &RecordBatch,
    keys: &[ArrayRef],
    groups: u16,
) -> Result<Vec<(u16, RecordBatch)>> {
    if batch.num_rows() == 0 {
        return Ok(vec![]);
    }
    let mut rows_of: Vec<Vec<u32>> = vec![];
    if keys.is_empty() {
        return Ok(vec![(0, batch.clone())]);
    }
    let mut of_row = vec![];
    key_groups_of(keys, groups, &mut of_row)?;
    for (i, g) in of_row.into_iter().enumerate() {
        let g = g as usize;
        if rows_of.len() <= g {
            rows_of.resize(g + 1, vec![]);
        }
        rows_of[g].push(i as u32);
    }
    let mut out = vec![];
    for (g, rows) in rows_of.into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        let idx = UInt32Array::from(rows);
        out.push((
            g as u16,
            take_record_batch(batch, &idx).context("key groups")?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// The integer fast path hashes exactly the bytes Arrow's row converter
    /// writes, so key groups (stored in checkpoints) do not change with it.
    #[test]
    fn integer_keys_fall_in_the_groups_of_their_row_format() {
        use datafusion::arrow::array::{Int32Array, UInt32Array, UInt64Array};
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![
                Some(0),
                None,
                Some(-1),
                Some(i64::MIN),
                Some(i64::MAX),
                Some(42),
            ])),
            Arc::new(Int32Array::from(vec![
                Some(0),
                None,
                Some(-1),
                Some(i32::MIN),
                Some(i32::MAX),
                Some(42),
            ])),
            Arc::new(UInt64Array::from(vec![
                Some(0),
                None,
                Some(1),
                Some(u64::MAX),
                Some(7),
                Some(42),
            ])),
            Arc::new(UInt32Array::from(vec![
                Some(0),
                None,
                Some(1),
                Some(u32::MAX),
                Some(7),
                Some(42),
            ])),
        ];
        for c in columns {
            let (mut fast, mut rows) = (vec![], vec![]);
            assert!(integer_key_groups(&c, 128, &mut fast), "{}", c.data_type());
            row_key_groups(std::slice::from_ref(&c), 128, &mut rows).expect("row groups");
            assert_eq!(fast, rows, "{}", c.data_type());
        }
        // Another type takes the row converter.
        let s: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
        assert!(!integer_key_groups(&s, 128, &mut vec![]));
    }

    #[test]
    fn batches_round_trip_and_split_by_key() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let keys: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a", "c", "b"]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                keys.clone(),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])),
            ],
        )
        .expect("batch");
        let back = decode_batch(&encode_batch(&batch).expect("encode")).expect("decode");
        assert_eq!(back, batch);
        let parts = split_by_key_group(&batch, &[keys], 128).expect("split");
        let total: usize = parts.iter().map(|(_, b)| b.num_rows()).sum();
        assert_eq!(total, 5);
        // Rows of one key always land in one group.
        for (_, part) in &parts {
            let k = part
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("strings");
            let first = k.value(0);
            let mut seen_other_group = false;
            for (_, other) in &parts {
                if std::ptr::eq(other, part) {
                    continue;
                }
                let o = other
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("strings");
                seen_other_group |= o.iter().any(|v| v == Some(first));
            }
            assert!(!seen_other_group, "key {first} split across groups");
        }
    }
}
