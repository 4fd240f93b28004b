//! Lists of rows as keyed-state values: operators keep rows by reference
//! into the batches they arrived in ([`RowRef`]); stored, a list is each
//! row's own bytes (a join's partner count, a rank's sort key) and the row
//! in Arrow's row format. Rows read back share one batch of their own.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};

use crate::error::ResultExt;
use crate::join::rows::{gather, RowRef};
use crate::operators::batch_of;
use crate::state::keyed::StateCodec;
use crate::{EngineError, Result};

/// Encodes and decodes lists of rows of one schema.
pub struct RowList {
    schema: SchemaRef,
    rows: RowConverter,
    /// What a kept row takes in memory, estimated from the schema.
    row_bytes: usize,
}

fn corrupt() -> EngineError {
    EngineError::State("stored rows are corrupt".into())
}

/// Reads a length-prefixed slice off the front of `at`.
fn take<'a>(at: &mut &'a [u8]) -> Result<&'a [u8]> {
    let (len, rest) = at.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let (head, rest) = rest
        .split_at_checked(u32::from_le_bytes(*len) as usize)
        .ok_or_else(corrupt)?;
    *at = rest;
    Ok(head)
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

impl RowList {
    /// A codec for rows of `schema`.
    pub fn new(schema: SchemaRef) -> Result<Self> {
        let rows = RowConverter::new(
            schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )
        .context("row state layout")?;
        // Fixed-width values at their width, others at a typical string's
        // (a cached value's size is asked at every write: it must be cheap).
        let row_bytes = schema
            .fields()
            .iter()
            .map(|f| f.data_type().primitive_width().unwrap_or(24) + 1)
            .sum();
        Ok(Self {
            schema,
            rows,
            row_bytes,
        })
    }

    /// Appends `rows`, each with its own bytes from `extra`, to `out`.
    pub fn encode<'a>(
        &self,
        rows: impl Iterator<Item = (&'a RowRef, &'a [u8])>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let (refs, extras): (Vec<Option<&RowRef>>, Vec<&[u8]>) =
            rows.map(|(r, e)| (Some(r), e)).unzip();
        let columns = gather(&self.schema, &refs)?;
        let converted = self.rows.convert_columns(&columns).context("row state")?;
        out.extend_from_slice(&(refs.len() as u32).to_le_bytes());
        for (i, extra) in extras.iter().enumerate() {
            put(out, extra);
            put(out, converted.row(i).data());
        }
        Ok(())
    }

    /// The rows of `bytes` (as one batch) and each row's own bytes.
    pub fn decode<'b>(&self, bytes: &'b [u8]) -> Result<(Arc<RecordBatch>, Vec<&'b [u8]>)> {
        let (n, mut at) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let n = u32::from_le_bytes(*n) as usize;
        let mut extras = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        for _ in 0..n {
            extras.push(take(&mut at)?);
            bodies.push(take(&mut at)?);
        }
        let parser = self.rows.parser();
        let columns = self
            .rows
            .convert_rows(bodies.into_iter().map(|b| parser.parse(b)))
            .context("restoring row state")?;
        let batch = Arc::new(batch_of(&self.schema, columns, "row state")?);
        Ok((batch, extras))
    }

    /// The approximate memory a kept row holds (from the schema, not
    /// measured: measuring a batch walks all its buffers).
    pub fn row_size(&self) -> usize {
        self.row_bytes
    }
}

/// A plain list of rows (nothing of their own besides).
impl StateCodec<Vec<RowRef>> for RowList {
    fn encode(&mut self, rows: &mut Vec<RowRef>, out: &mut Vec<u8>) -> Result<()> {
        RowList::encode(self, rows.iter().map(|r| (r, &[][..])), out)
    }

    fn decode(&mut self, _key: &[u8], bytes: &[u8]) -> Result<Vec<RowRef>> {
        let (batch, extras) = RowList::decode(self, bytes)?;
        Ok((0..extras.len()).map(|i| (batch.clone(), i)).collect())
    }

    fn size(&self, rows: &Vec<RowRef>) -> usize {
        rows.len() * (16 + self.row_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn rows_and_their_bytes_round_trip() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let batch = Arc::new(
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
                    Arc::new(Int64Array::from(vec![1, 2, 3])),
                ],
            )
            .expect("batch"),
        );
        let list = RowList::new(schema).expect("codec");
        let (r0, r2) = ((batch.clone(), 0), (batch.clone(), 2));
        let mut out = vec![];
        list.encode([(&r2, &b"x"[..]), (&r0, &b""[..])].into_iter(), &mut out)
            .expect("encode");
        let (back, extras) = list.decode(&out).expect("decode");
        assert_eq!(extras, vec![&b"x"[..], &b""[..]]);
        assert_eq!(back.num_rows(), 2);
        let v = back
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("v");
        assert_eq!(v.values().to_vec(), vec![3, 1]);
        assert!(list.decode(&out[..out.len() - 1]).is_err(), "truncated");
    }
}
