//! The rows a regular join keeps for one key of one side, and how they are
//! stored in a keyed table: per row its partner count and last use, with the
//! row (see [`RowList`]).

use datafusion::arrow::datatypes::SchemaRef;

use crate::join::rows::RowRef;
use crate::state::keyed::rows::RowList;
use crate::state::keyed::StateCodec;
use crate::{EngineError, Result};

/// One kept row.
pub struct Entry {
    /// The row.
    pub row: RowRef,
    /// Partners found so far (an outer row with none is out null-padded).
    pub partners: u32,
    /// Processing time of its last use (for the state TTL).
    pub touched: u64,
}

/// Stores the kept rows of one key of one side.
pub struct RowsCodec {
    list: RowList,
}

impl RowsCodec {
    /// A codec for rows of `schema`.
    pub fn new(schema: SchemaRef) -> Result<Self> {
        Ok(Self {
            list: RowList::new(schema)?,
        })
    }
}

/// A row's own stored bytes: its partner count and time of last touch.
fn meta_of(e: &Entry) -> [u8; 12] {
    let mut m = [0u8; 12];
    m[..4].copy_from_slice(&e.partners.to_le_bytes());
    m[4..].copy_from_slice(&e.touched.to_le_bytes());
    m
}

impl StateCodec<Vec<Entry>> for RowsCodec {
    fn encode(&mut self, entries: &mut Vec<Entry>, out: &mut Vec<u8>) -> Result<()> {
        self.encode_all(std::slice::from_mut(entries), out, &mut vec![])
    }

    fn encode_all(
        &mut self,
        lists: &mut [Vec<Entry>],
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        let meta: Vec<[u8; 12]> = lists.iter().flatten().map(meta_of).collect();
        let mut at = 0;
        let lists = lists.iter().map(|l| {
            let metas = &meta[at..at + l.len()];
            at += l.len();
            l.iter().map(|e| &e.row).zip(metas.iter().map(|m| &m[..]))
        });
        self.list.encode_lists(lists, out, ends)
    }

    fn decode(&mut self, key: &[u8], bytes: &[u8]) -> Result<Vec<Entry>> {
        let mut one = self.decode_all(&[(key, bytes)])?;
        Ok(one.pop().unwrap_or_default())
    }

    /// All lists a prefetch read, their rows in one batch.
    fn decode_all(&mut self, entries: &[(&[u8], &[u8])]) -> Result<Vec<Vec<Entry>>> {
        let corrupt = || EngineError::State("stored join rows are corrupt".into());
        let (batch, lists) = self.list.decode_lists(entries.iter().map(|(_, b)| *b))?;
        let mut row = 0;
        lists
            .into_iter()
            .map(|metas| {
                metas
                    .into_iter()
                    .map(|m| {
                        let m: &[u8; 12] = m.try_into().map_err(|_| corrupt())?;
                        let (p, t) = m.split_at(4);
                        row += 1;
                        Ok(Entry {
                            row: (batch.clone(), row - 1),
                            partners: u32::from_le_bytes(p.try_into().unwrap_or_default()),
                            touched: u64::from_le_bytes(t.try_into().unwrap_or_default()),
                        })
                    })
                    .collect()
            })
            .collect()
    }

    fn size(&self, entries: &Vec<Entry>) -> usize {
        entries.len() * (std::mem::size_of::<Entry>() + self.list.row_size())
    }
}
