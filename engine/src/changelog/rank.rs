//! Deduplication and Top-N over a stream (Flink's `RowTimeDeduplicateFunction`
//! and `AppendOnlyTopNFunction`), for append-only input; over an updating
//! input, see `rank_retract`.
//!
//! - Deduplication (`ROW_NUMBER() OVER (PARTITION BY k ORDER BY rowtime
//!   ASC|DESC) = 1`): keeping the first row, a row replaces the kept one only
//!   if its time is earlier; keeping the last, if it is not earlier. A
//!   replacement is `-U` old, `+U` new.
//! - Top-N (`... ORDER BY any) <= N`): each partition keeps its best N rows;
//!   a tie ranks after the rows already there. With the rank number in the
//!   output, a row entering at rank r shifts the rows below it: `-U`/`+U` at
//!   each rank from r to N, and `+I` at the first rank that was empty.
//!   Without it, the row pushed out is deleted (`-D`) and the new one
//!   inserted (`+I`); a top-1 emits the new row as an update (`+U`) of
//!   its partition's, as Flink's `FastTop1Function` does.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, Int8Array, RecordBatch, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};

use super::ttl::{now_ms, sweep, Ttl};
use super::RowKind;
use crate::error::ResultExt;
use crate::join::rows::{gather, RowRef};
use crate::operator::{Emitter, Operator};
use crate::operators::{batch_of, eval};
use crate::state::keyed::rows::RowList;
use crate::state::keyed::{KeyedTable, StateCodec, StateContext, StateTable};
use crate::Result;

/// Which rows a stream rank keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRankKind {
    /// One row per partition by the time attribute: the last (`keep_last`)
    /// or the first.
    Dedup {
        /// Keep the latest row rather than the earliest.
        keep_last: bool,
    },
    /// The best `n` rows per partition.
    TopN {
        /// How many.
        n: usize,
        /// Whether the output has the rank number (changes shift ranks).
        rank_number: bool,
    },
}

/// What a stream rank computes, as planned.
#[derive(Debug, Clone)]
pub struct StreamRankSpec {
    /// Deduplication or Top-N.
    pub kind: StreamRankKind,
    /// PARTITION BY.
    pub partition_by: Vec<Arc<dyn PhysicalExpr>>,
    /// Their types.
    pub key_types: Vec<DataType>,
    /// ORDER BY (for deduplication, the time attribute).
    pub order_by: Vec<PhysicalSortExpr>,
    /// The input's columns.
    pub input_schema: SchemaRef,
    /// The input's columns, the rank number, then `__row_kind`.
    pub output_schema: SchemaRef,
    /// `table.exec.state.ttl`.
    pub ttl: Option<Duration>,
    /// A top-1 also retracts the row it replaces (`-U` before `+U`), for a
    /// consumer that needs the old row (an OVER aggregation over its
    /// result); otherwise it upserts by the partition key as Flink's
    /// `FastTop1Function` does.
    pub update_before: bool,
    /// The input is updating: rows may be taken back, so every row is kept
    /// (see `rank_retract`).
    pub input_updating: bool,
    /// ROW_NUMBER, or RANK / DENSE_RANK (ties share a rank: see
    /// `rank_retract`).
    pub rank: crate::window::rank::RankFunc,
    /// The plan as text.
    pub describe: String,
}

/// A kept row and its sort key (bytes that compare as the ORDER BY does).
pub(super) struct Ranked {
    pub(super) sort: Box<[u8]>,
    pub(super) row: RowRef,
}

/// A partition's kept rows: best first; a tie after the rows it ties with.
pub(super) type Partition = Vec<Ranked>;

/// Stores a partition's rows with their sort keys.
pub(super) struct PartitionCodec {
    list: RowList,
}

impl StateCodec<Partition> for PartitionCodec {
    fn encode(&mut self, p: &mut Partition, out: &mut Vec<u8>) -> Result<()> {
        self.encode_all(std::slice::from_mut(p), out, &mut vec![])
    }

    fn encode_all(
        &mut self,
        partitions: &mut [Partition],
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        let lists = partitions
            .iter()
            .map(|p| p.iter().map(|r| (&r.row, &r.sort[..])));
        self.list.encode_lists(lists, out, ends)
    }

    fn decode(&mut self, _key: &[u8], bytes: &[u8]) -> Result<Partition> {
        let (batch, sorts) = self.list.decode(bytes)?;
        Ok(sorts
            .into_iter()
            .enumerate()
            .map(|(i, sort)| Ranked {
                sort: Box::from(sort),
                row: (batch.clone(), i),
            })
            .collect())
    }

    fn size(&self, p: &Partition) -> usize {
        p.iter()
            .map(|r| r.sort.len() + 32 + self.list.row_size())
            .sum()
    }
}

/// One emitted row: kind, the row, its rank.
pub(super) type Change = (RowKind, RowRef, u64);

/// Runs a deduplication or Top-N over an append-only stream. Each
/// partition's kept rows live in a declared keyed table.
pub struct StreamRank {
    pub(super) spec: StreamRankSpec,
    keys: RowConverter,
    sorts: RowConverter,
    pub(super) partitions: KeyedTable<Partition, PartitionCodec>,
    ttl: Option<Ttl>,
    /// The input's rows as bytes (over an updating input).
    pub(super) rows: RowConverter,
}

impl StreamRank {
    /// The operator for `spec`.
    pub fn new(spec: StreamRankSpec) -> Result<Self> {
        let keys = RowConverter::new(spec.key_types.iter().cloned().map(SortField::new).collect())
            .context("rank keys")?;
        let sort_fields = spec
            .order_by
            .iter()
            .map(|s| {
                Ok(SortField::new_with_options(
                    s.expr.data_type(&spec.input_schema)?,
                    s.options,
                ))
            })
            .collect::<datafusion::error::Result<Vec<_>>>()
            .context("rank order")?;
        let sorts = RowConverter::new(sort_fields).context("rank order")?;
        let ttl = spec.ttl.map(Ttl::new);
        let partitions = Self::declare(&spec, &mut StateContext::detached())?;
        let rows = super::row_converter(&spec.input_schema)?;
        Ok(Self {
            spec,
            keys,
            sorts,
            partitions,
            ttl,
            rows,
        })
    }

    fn declare(
        spec: &StreamRankSpec,
        ctx: &mut StateContext,
    ) -> Result<KeyedTable<Partition, PartitionCodec>> {
        let codec = PartitionCodec {
            list: RowList::new(spec.input_schema.clone())?,
        };
        ctx.table("partitions", codec, spec.ttl)
    }

    fn columns(
        &self,
        exprs: impl Iterator<Item = (Arc<dyn PhysicalExpr>, Option<DataType>)>,
        batch: &RecordBatch,
    ) -> Result<Vec<ArrayRef>> {
        exprs
            .map(|(e, t)| {
                let a = eval(e.as_ref(), batch, "rank key")?;
                match t {
                    Some(t) if a.data_type() != &t => cast(&a, &t).context("rank key"),
                    _ => Ok(a),
                }
            })
            .collect()
    }

    /// The rows' partition keys and sort keys in Arrow's row format (`None`:
    /// no such columns, every row's key is empty).
    pub(super) fn keys_of(&self, batch: &RecordBatch) -> Result<(Option<Rows>, Option<Rows>)> {
        let kcols = self.columns(
            self.spec
                .partition_by
                .iter()
                .cloned()
                .zip(self.spec.key_types.iter().cloned().map(Some)),
            batch,
        )?;
        let keys = if kcols.is_empty() {
            None
        } else {
            Some(self.keys.convert_columns(&kcols).context("rank key")?)
        };
        let scols = self.columns(
            self.spec.order_by.iter().map(|s| (s.expr.clone(), None)),
            batch,
        )?;
        let sorts = if scols.is_empty() {
            None
        } else {
            Some(self.sorts.convert_columns(&scols).context("rank order")?)
        };
        Ok((keys, sorts))
    }

    /// Ranks one arriving row within its partition.
    fn arrive(
        p: &mut Partition,
        kind: StreamRankKind,
        update_before: bool,
        sort: &[u8],
        row: RowRef,
        out: &mut Vec<Change>,
    ) {
        match kind {
            StreamRankKind::Dedup { keep_last } => {
                let replace = match p.first() {
                    None => None,
                    // Keeping the last: ORDER BY DESC, so a time not earlier
                    // sorts lower or equal.
                    Some(old) if keep_last && sort <= &old.sort[..] => Some(old.row.clone()),
                    // Keeping the first: ORDER BY ASC, so an earlier time sorts lower.
                    Some(old) if !keep_last && sort < &old.sort[..] => Some(old.row.clone()),
                    Some(_) => return,
                };
                match replace {
                    None => out.push((RowKind::Insert, row.clone(), 1)),
                    Some(old) => {
                        out.push((RowKind::UpdateBefore, old, 1));
                        out.push((RowKind::UpdateAfter, row.clone(), 1));
                    }
                }
                *p = vec![Ranked {
                    sort: Box::from(sort),
                    row,
                }];
            }
            StreamRankKind::TopN { n, rank_number } => {
                let full = p.len() >= n;
                if full && p.last().is_some_and(|w| sort >= &w.sort[..]) {
                    return;
                }
                // After every row it ties with.
                let at = p.partition_point(|r| &r.sort[..] <= sort);
                let before = p.len();
                p.insert(
                    at,
                    Ranked {
                        sort: Box::from(sort),
                        row: row.clone(),
                    },
                );
                if rank_number {
                    // Ranks at..n shift down by one.
                    let mut current = row;
                    let mut rank = at + 1;
                    for r in p[at + 1..].iter() {
                        if rank > n {
                            break;
                        }
                        out.push((RowKind::UpdateBefore, r.row.clone(), rank as u64));
                        out.push((RowKind::UpdateAfter, current, rank as u64));
                        current = r.row.clone();
                        rank += 1;
                    }
                    if rank <= n {
                        out.push((RowKind::Insert, current, rank as u64));
                    }
                } else if before >= n && n == 1 {
                    // Flink's top-1 (FastTop1Function) upserts by the
                    // partition key: the new row, without the old one
                    // unless a consumer needs it.
                    if update_before {
                        if let Some(old) = p.get(1) {
                            out.push((RowKind::UpdateBefore, old.row.clone(), 1));
                        }
                    }
                    out.push((RowKind::UpdateAfter, row, 1));
                } else if before >= n {
                    if let Some(last) = p.last() {
                        out.push((RowKind::Delete, last.row.clone(), n as u64));
                    }
                    out.push((RowKind::Insert, row, (at + 1) as u64));
                } else {
                    out.push((RowKind::Insert, row, (at + 1) as u64));
                }
                p.truncate(n);
            }
        }
    }

    pub(super) fn output(&self, changes: &[Change]) -> Result<RecordBatch> {
        let rows: Vec<Option<&RowRef>> = changes.iter().map(|c| Some(&c.1)).collect();
        let mut columns = gather(&self.spec.input_schema, &rows)?;
        columns.push(Arc::new(UInt64Array::from_iter_values(
            changes.iter().map(|c| c.2),
        )));
        columns.push(Arc::new(Int8Array::from_iter_values(
            changes.iter().map(|c| c.0 as i8),
        )));
        batch_of(&self.spec.output_schema, columns, "rank output")
    }

    /// Drops cached partitions untouched for the TTL (the table skips
    /// expired ones it reads back).
    fn expire(&mut self) {
        if sweep(&mut self.ttl).is_some() {
            self.partitions.expire(now_ms());
        }
    }
}

impl Operator for StreamRank {
    fn name(&self) -> String {
        format!("StreamRank({})", self.spec.describe)
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        self.expire();
        if self.spec.input_updating || self.spec.rank != crate::window::rank::RankFunc::RowNumber {
            return self.on_updating(batch, out);
        }
        let (keys, sorts) = self.keys_of(&batch)?;
        let batch = Arc::new(batch);
        let now = now_ms();
        let mut changes = vec![];
        for i in 0..batch.num_rows() {
            let key: &[u8] = keys.as_ref().map_or(&[], |k| k.row(i).data());
            let sort: &[u8] = sorts.as_ref().map_or(&[], |s| s.row(i).data());
            if let Some(p) = self.partitions.get_mut_or(key, now, || Ok(Some(vec![])))? {
                Self::arrive(
                    p,
                    self.spec.kind,
                    self.spec.update_before,
                    sort,
                    (batch.clone(), i),
                    &mut changes,
                );
            }
        }
        if !changes.is_empty() {
            out.batch(self.output(&changes)?);
        }
        Ok(())
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        self.partitions = Self::declare(&self.spec, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.partitions]
    }

    fn key_exprs(&self, _input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        (!self.spec.partition_by.is_empty()).then(|| self.spec.partition_by.clone())
    }

    fn unkeyed_reason(&self) -> Option<&'static str> {
        Some("no PARTITION BY: one instance ranks the whole stream")
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(StreamRank::new(self.spec.clone())?)))
    }
}

/// The output schema of a stream rank over `input` whose rank column is `rank`.
pub fn rank_output_schema(input: &Schema, rank: &Field) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(rank.clone());
    super::with_row_kind(&Schema::new(fields))
}
