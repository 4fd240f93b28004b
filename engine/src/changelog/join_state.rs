//! The rows a regular join keeps for one key of one side, and how they are
//! stored in a keyed table: per row its partner count and last use, then the
//! rows in Arrow's row format. Rows read back share one batch of their own.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};

use crate::error::ResultExt;
use crate::join::rows::{gather, RowRef};
use crate::operators::batch_of;
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
    schema: SchemaRef,
    rows: RowConverter,
}

impl RowsCodec {
    /// A codec for rows of `schema`.
    pub fn new(schema: SchemaRef) -> Result<Self> {
        let rows = RowConverter::new(
            schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )
        .context("join state layout")?;
        Ok(Self { schema, rows })
    }
}

impl StateCodec<Vec<Entry>> for RowsCodec {
    fn encode(&mut self, entries: &mut Vec<Entry>, out: &mut Vec<u8>) -> Result<()> {
        let refs: Vec<Option<&RowRef>> = entries.iter().map(|e| Some(&e.row)).collect();
        let columns = gather(&self.schema, &refs)?;
        let rows = self.rows.convert_columns(&columns).context("join state")?;
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (i, e) in entries.iter().enumerate() {
            let row = rows.row(i);
            out.extend_from_slice(&e.partners.to_le_bytes());
            out.extend_from_slice(&e.touched.to_le_bytes());
            out.extend_from_slice(&(row.data().len() as u32).to_le_bytes());
            out.extend_from_slice(row.data());
        }
        Ok(())
    }

    fn decode(&mut self, _key: &[u8], bytes: &[u8]) -> Result<Vec<Entry>> {
        let corrupt = || EngineError::State("stored join rows are corrupt".into());
        let mut at = bytes;
        let mut take = |n: usize| -> Result<&[u8]> {
            let (head, rest) = at.split_at_checked(n).ok_or_else(corrupt)?;
            at = rest;
            Ok(head)
        };
        let u32_of = |b: &[u8]| -> Result<u32> {
            Ok(u32::from_le_bytes(b.try_into().map_err(|_| corrupt())?))
        };
        let n = u32_of(take(4)?)? as usize;
        let mut meta = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        for _ in 0..n {
            let partners = u32_of(take(4)?)?;
            let touched = u64::from_le_bytes(take(8)?.try_into().map_err(|_| corrupt())?);
            let len = u32_of(take(4)?)? as usize;
            bodies.push(take(len)?);
            meta.push((partners, touched));
        }
        let parser = self.rows.parser();
        let columns = self
            .rows
            .convert_rows(bodies.into_iter().map(|b| parser.parse(b)))
            .context("restoring join state")?;
        let batch = Arc::new(batch_of(&self.schema, columns, "join state")?);
        Ok(meta
            .into_iter()
            .enumerate()
            .map(|(i, (partners, touched))| Entry {
                row: (batch.clone(), i),
                partners,
                touched,
            })
            .collect())
    }

    fn size(&self, entries: &Vec<Entry>) -> usize {
        entries
            .iter()
            .map(|e| {
                let (b, _) = &e.row;
                std::mem::size_of::<Entry>() + b.get_array_memory_size() / b.num_rows().max(1)
            })
            .sum()
    }
}
