//! Deduplication and Top-N over a stream (Flink's `RowTimeDeduplicateFunction`
//! and `AppendOnlyTopNFunction`), for append-only input.
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
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::HashMap;
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};

use super::ttl::{now_ms, sweep, Ttl};
use super::RowKind;
use crate::error::ResultExt;
use crate::join::rows::{gather, RowRef};
use crate::operator::{Emitter, Operator};
use crate::operators::{batch_of, eval};
use crate::state::arrow_state::{decode_batch, encode_batch};
use crate::state::{key_group_of, StateEntry, StateWriter};
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
    /// The plan as text.
    pub describe: String,
}

/// A kept row and its sort key (bytes that compare as the ORDER BY does).
struct Ranked {
    sort: Box<[u8]>,
    row: RowRef,
}

#[derive(Default)]
struct Partition {
    /// Best first; a tie after the rows it ties with.
    rows: Vec<Ranked>,
    touched: u64,
}

/// A key in Arrow's row format.
type Key = Box<[u8]>;

/// One emitted row: kind, the row, its rank.
type Change = (RowKind, RowRef, u64);

/// Runs a deduplication or Top-N over an append-only stream.
pub struct StreamRank {
    spec: StreamRankSpec,
    keys: RowConverter,
    sorts: RowConverter,
    partitions: HashMap<Box<[u8]>, Partition>,
    dirty: std::collections::HashSet<Box<[u8]>>,
    ttl: Option<Ttl>,
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
        Ok(Self {
            spec,
            keys,
            sorts,
            partitions: HashMap::new(),
            dirty: Default::default(),
            ttl,
        })
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

    /// Each row's partition key and sort key.
    fn keys_of(&self, batch: &RecordBatch) -> Result<(Vec<Key>, Vec<Key>)> {
        let n = batch.num_rows();
        let kcols = self.columns(
            self.spec
                .partition_by
                .iter()
                .cloned()
                .zip(self.spec.key_types.iter().cloned().map(Some)),
            batch,
        )?;
        let keys = if kcols.is_empty() {
            vec![Box::from(&[][..]); n]
        } else {
            let rows = self.keys.convert_columns(&kcols).context("rank key")?;
            (0..n).map(|i| Box::from(rows.row(i).data())).collect()
        };
        let scols = self.columns(
            self.spec.order_by.iter().map(|s| (s.expr.clone(), None)),
            batch,
        )?;
        let sorts = if scols.is_empty() {
            vec![Box::from(&[][..]); n]
        } else {
            let rows = self.sorts.convert_columns(&scols).context("rank order")?;
            (0..n).map(|i| Box::from(rows.row(i).data())).collect()
        };
        Ok((keys, sorts))
    }

    /// Ranks one arriving row within its partition.
    fn arrive(
        p: &mut Partition,
        kind: StreamRankKind,
        sort: Box<[u8]>,
        row: RowRef,
        out: &mut Vec<Change>,
    ) {
        match kind {
            StreamRankKind::Dedup { keep_last } => {
                let replace = match p.rows.first() {
                    None => None,
                    // Keeping the last: ORDER BY DESC, so a time not earlier
                    // sorts lower or equal.
                    Some(old) if keep_last && sort <= old.sort => Some(old.row.clone()),
                    // Keeping the first: ORDER BY ASC, so an earlier time sorts lower.
                    Some(old) if !keep_last && sort < old.sort => Some(old.row.clone()),
                    Some(_) => return,
                };
                match replace {
                    None => out.push((RowKind::Insert, row.clone(), 1)),
                    Some(old) => {
                        out.push((RowKind::UpdateBefore, old, 1));
                        out.push((RowKind::UpdateAfter, row.clone(), 1));
                    }
                }
                p.rows = vec![Ranked { sort, row }];
            }
            StreamRankKind::TopN { n, rank_number } => {
                let full = p.rows.len() >= n;
                if full && p.rows.last().is_some_and(|w| sort >= w.sort) {
                    return;
                }
                // After every row it ties with.
                let at = p.rows.partition_point(|r| r.sort <= sort);
                let before = p.rows.len();
                p.rows.insert(
                    at,
                    Ranked {
                        sort,
                        row: row.clone(),
                    },
                );
                if rank_number {
                    // Ranks at..n shift down by one.
                    let mut current = row;
                    let mut rank = at + 1;
                    for r in p.rows[at + 1..].iter() {
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
                    // partition key: the new row, without the old one.
                    out.push((RowKind::UpdateAfter, row, 1));
                } else if before >= n {
                    if let Some(last) = p.rows.last() {
                        out.push((RowKind::Delete, last.row.clone(), n as u64));
                    }
                    out.push((RowKind::Insert, row, (at + 1) as u64));
                } else {
                    out.push((RowKind::Insert, row, (at + 1) as u64));
                }
                p.rows.truncate(n);
            }
        }
    }

    fn output(&self, changes: &[Change]) -> Result<RecordBatch> {
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

    fn expire(&mut self) {
        let Some(expired) = sweep(&mut self.ttl) else {
            return;
        };
        let dirty = &mut self.dirty;
        self.partitions.retain(|k, p| {
            let live = !expired(p.touched);
            if !live {
                dirty.insert(k.clone());
            }
            live
        });
    }
}

impl Operator for StreamRank {
    fn name(&self) -> String {
        format!("StreamRank({})", self.spec.describe)
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        self.expire();
        let (keys, sorts) = self.keys_of(&batch)?;
        let batch = Arc::new(batch);
        let now = now_ms();
        let mut changes = vec![];
        for (i, (key, sort)) in keys.into_iter().zip(sorts).enumerate() {
            let p = self.partitions.entry(key.clone()).or_default();
            p.touched = now;
            Self::arrive(p, self.spec.kind, sort, (batch.clone(), i), &mut changes);
            self.dirty.insert(key);
        }
        if !changes.is_empty() {
            out.batch(self.output(&changes)?);
        }
        Ok(())
    }

    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        let kgs = w.key_groups();
        let dirty: std::collections::HashSet<u16> =
            self.dirty.drain().map(|k| key_group_of(&k, kgs)).collect();
        if dirty.is_empty() {
            return Ok(());
        }
        let mut by_group: HashMap<u16, Vec<&RowRef>> = HashMap::new();
        for (k, p) in &self.partitions {
            let kg = key_group_of(k, kgs);
            if dirty.contains(&kg) {
                by_group
                    .entry(kg)
                    .or_default()
                    .extend(p.rows.iter().map(|r| &r.row));
            }
        }
        for kg in dirty {
            match by_group.get(&kg) {
                Some(rows) => {
                    // Rows in rank order per partition; ranks are rebuilt on restore.
                    let refs: Vec<Option<&RowRef>> = rows.iter().map(|r| Some(*r)).collect();
                    let columns = gather(&self.spec.input_schema, &refs)?;
                    let batch = batch_of(&self.spec.input_schema, columns, "rank state")?;
                    w.put(kg, b"rows", encode_batch(&batch)?);
                }
                None => w.delete(kg, b"rows"),
            }
        }
        Ok(())
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        let now = now_ms();
        for e in entries.into_iter().filter(|e| e.key == b"rows") {
            let batch = decode_batch(&e.value)?;
            let batch = batch_of(
                &self.spec.input_schema,
                batch.columns().to_vec(),
                "rank state",
            )?;
            let (keys, sorts) = self.keys_of(&batch)?;
            let batch = Arc::new(batch);
            for (i, (key, sort)) in keys.into_iter().zip(sorts).enumerate() {
                let p = self.partitions.entry(key).or_default();
                p.touched = now;
                p.rows.push(Ranked {
                    sort,
                    row: (batch.clone(), i),
                });
            }
        }
        Ok(())
    }

    fn state_size(&self) -> u64 {
        self.partitions
            .values()
            .map(|p| p.rows.iter().map(|r| r.sort.len() + 16).sum::<usize>() as u64)
            .sum()
    }

    fn key_exprs(&self) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
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
