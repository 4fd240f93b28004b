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

/// Lists read back: their rows in one batch, each list's rows' own bytes.
pub type DecodedLists<'b> = (Arc<RecordBatch>, Vec<Vec<&'b [u8]>>);

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
        self.encode_lists(std::iter::once(rows), out, &mut vec![])
    }

    /// Appends each of `lists` to `out` as [`RowList::encode`] does, pushing
    /// where each ends to `ends`: the rows of all lists gathered and
    /// converted to Arrow's row format at once (an eviction writes thousands
    /// of lists of a row or two; one at a time, building their arrays costs
    /// more than the rows).
    pub fn encode_lists<'a, L>(
        &self,
        lists: impl Iterator<Item = L>,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()>
    where
        L: Iterator<Item = (&'a RowRef, &'a [u8])>,
    {
        let (mut refs, mut extras, mut lens) = (vec![], vec![], vec![]);
        for list in lists {
            let before = refs.len();
            for (r, e) in list {
                refs.push(Some(r));
                extras.push(e);
            }
            lens.push(refs.len() - before);
        }
        let columns = gather(&self.schema, &refs)?;
        let converted = self.rows.convert_columns(&columns).context("row state")?;
        let mut row = 0;
        for len in lens {
            out.extend_from_slice(&(len as u32).to_le_bytes());
            for extra in &extras[row..row + len] {
                put(out, extra);
                put(out, converted.row(row).data());
                row += 1;
            }
            ends.push(out.len());
        }
        Ok(())
    }

    /// Encodes `values` that are each a head of bytes of their own (what
    /// `head` appends) followed by a list of rows (`list`), the rows of all
    /// converted at once as [`RowList::encode_lists`] does; pushes where
    /// each ends to `ends`.
    pub fn encode_headed<'a, V, L>(
        &self,
        values: &'a [V],
        mut head: impl FnMut(&V, &mut Vec<u8>) -> Result<()>,
        list: impl Fn(&'a V) -> L,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()>
    where
        L: Iterator<Item = (&'a RowRef, &'a [u8])>,
    {
        let (mut rows, mut row_ends) = (vec![], vec![]);
        self.encode_lists(values.iter().map(list), &mut rows, &mut row_ends)?;
        let mut from = 0;
        for (v, to) in values.iter().zip(row_ends) {
            head(v, out)?;
            out.extend_from_slice(&rows[from..to]);
            ends.push(out.len());
            from = to;
        }
        Ok(())
    }

    /// The rows of `bytes` (as one batch) and each row's own bytes.
    pub fn decode<'b>(&self, bytes: &'b [u8]) -> Result<(Arc<RecordBatch>, Vec<&'b [u8]>)> {
        let (batch, mut extras) = self.decode_lists(std::iter::once(bytes))?;
        Ok((batch, extras.pop().unwrap_or_default()))
    }

    /// The rows of several stored lists as one batch (each list's rows after
    /// the previous list's) and each list's rows' own bytes: what a prefetch
    /// read, converted at once (a batch a list would cost more to build and
    /// to drop than its rows).
    pub fn decode_lists<'b>(
        &self,
        lists: impl Iterator<Item = &'b [u8]>,
    ) -> Result<DecodedLists<'b>> {
        let mut all_extras = vec![];
        let mut bodies = vec![];
        for bytes in lists {
            let (n, mut at) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
            let n = u32::from_le_bytes(*n) as usize;
            let mut extras = Vec::with_capacity(n);
            for _ in 0..n {
                extras.push(take(&mut at)?);
                bodies.push(take(&mut at)?);
            }
            all_extras.push(extras);
        }
        let parser = self.rows.parser();
        let columns = self
            .rows
            .convert_rows(bodies.into_iter().map(|b| parser.parse(b)))
            .context("restoring row state")?;
        let batch = Arc::new(batch_of(&self.schema, columns, "row state")?);
        Ok((batch, all_extras))
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
        self.encode_all(std::slice::from_mut(rows), out, &mut vec![])
    }

    fn encode_all(
        &mut self,
        lists: &mut [Vec<RowRef>],
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        let lists = lists.iter().map(|l| l.iter().map(|r| (r, &[][..])));
        self.encode_lists(lists, out, ends)
    }

    fn decode(&mut self, key: &[u8], bytes: &[u8]) -> Result<Vec<RowRef>> {
        let mut one = self.decode_all(&[(key, bytes)])?;
        Ok(one.pop().unwrap_or_default())
    }

    fn decode_all(&mut self, entries: &[(&[u8], &[u8])]) -> Result<Vec<Vec<RowRef>>> {
        let (batch, lists) = self.decode_lists(entries.iter().map(|(_, b)| *b))?;
        let mut at = 0;
        Ok(lists
            .into_iter()
            .map(|extras| {
                at += extras.len();
                (at - extras.len()..at)
                    .map(|i| (batch.clone(), i))
                    .collect()
            })
            .collect())
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

    #[test]
    fn lists_encoded_together_are_each_as_encoded_alone() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let batch = Arc::new(
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(vec![Some(7), None, Some(9)]))],
            )
            .expect("batch"),
        );
        let list = RowList::new(schema).expect("codec");
        let rows: Vec<RowRef> = (0..3).map(|i| (batch.clone(), i)).collect();
        let lists: Vec<Vec<(&RowRef, &[u8])>> = vec![
            vec![(&rows[2], b"a"), (&rows[0], b"")],
            vec![],
            vec![(&rows[1], b"bc")],
        ];
        let (mut out, mut ends) = (vec![], vec![]);
        list.encode_lists(lists.iter().map(|l| l.iter().copied()), &mut out, &mut ends)
            .expect("encode");
        assert_eq!(ends.len(), 3);
        let mut from = 0;
        for (l, end) in lists.iter().zip(&ends) {
            let mut alone = vec![];
            list.encode(l.iter().copied(), &mut alone).expect("encode");
            assert_eq!(&out[from..*end], &alone[..]);
            let (back, extras) = list.decode(&out[from..*end]).expect("decode");
            assert_eq!(back.num_rows(), l.len());
            assert_eq!(extras, l.iter().map(|(_, e)| *e).collect::<Vec<_>>());
            from = *end;
        }
    }
}
