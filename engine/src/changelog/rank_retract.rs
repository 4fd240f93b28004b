//! Top-N over an updating input (Flink's `RetractableTopNFunction`): any
//! row may be taken back, and a row below the top N then moves up, so each
//! partition keeps all its current rows in order, not only the best N. A
//! change emits what it does to the top N: with the rank number, each rank
//! whose row changes is updated (`-U` old, `+U` new), a rank filled is
//! inserted and a rank emptied deleted; without it, a row leaving the top
//! N is deleted (`-D`) and a row entering it inserted (`+I`).
//!
//! RANK and DENSE_RANK Top-Ns (ties share a rank, so the top N may hold
//! more than N rows) run here over any input: after each change, the rows
//! whose rank or presence changed are deleted at their old rank and
//! inserted at their new one. Over an append-only input, rows ranked out
//! are dropped, as they can never come back.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::row::RowConverter;

use super::rank::{Change, Partition, Ranked, StreamRank};
use super::ttl::now_ms;
use super::{kind_at, kinds, RowKind};
use crate::error::ResultExt;
use crate::join::rows::{gather, RowRef};
use crate::operator::Emitter;
use crate::operators::batch_of;
use crate::window::rank::RankFunc;
use crate::{EngineError, Result};

impl StreamRank {
    /// Ranks a batch of an updating input, row by row in its order.
    pub(super) fn on_updating(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        let row_kinds = kinds(&batch).cloned();
        let width = self.spec.input_schema.fields().len();
        if self.spec.input_updating && batch.num_columns() <= width {
            return Err(EngineError::Graph("rank input lost its row kinds".into()));
        }
        let data = batch_of(
            &self.spec.input_schema,
            batch.columns()[..width].to_vec(),
            "rank input",
        )?;
        let (keys, sorts) = self.keys_of(&data)?;
        let data = Arc::new(data);
        let (n, rank_number) = match self.spec.kind {
            super::rank::StreamRankKind::TopN { n, rank_number } => (n, rank_number),
            super::rank::StreamRankKind::Dedup { .. } => (1, true),
        };
        let by_rank = self.spec.rank != RankFunc::RowNumber;
        let now = now_ms();
        let mut changes = vec![];
        for i in 0..data.num_rows() {
            let key: &[u8] = keys.as_ref().map_or(&[], |k| k.row(i).data());
            let sort: &[u8] = sorts.as_ref().map_or(&[], |s| s.row(i).data());
            let row: RowRef = (data.clone(), i);
            let Some(p) = self.partitions.get_mut_or(key, now, || Ok(Some(vec![])))? else {
                continue;
            };
            let before = by_rank.then(|| ranked(p, n, self.spec.rank));
            if kind_at(row_kinds.as_ref(), i).is_retraction() {
                let Some(at) = find(&self.rows, &self.spec.input_schema, p, sort, &row)? else {
                    // Inserted before the state's TTL dropped it, or never.
                    continue;
                };
                let gone = p.remove(at);
                if !by_rank {
                    removed(p, n, rank_number, at, gone.row, &mut changes);
                }
            } else {
                // After every row it ties with, as the append-only Top-N.
                let at = p.partition_point(|r| &r.sort[..] <= sort);
                p.insert(
                    at,
                    Ranked {
                        sort: Box::from(sort),
                        row,
                    },
                );
                if !by_rank {
                    inserted(p, n, rank_number, at, &mut changes);
                }
            }
            if let Some(before) = before {
                let after = ranked(p, n, self.spec.rank);
                rank_changes(&before, &after, &mut changes);
                if !self.spec.input_updating {
                    // Over an append-only input a row ranked out never
                    // comes back.
                    p.truncate(after.len());
                }
            }
        }
        if !changes.is_empty() {
            out.batch(self.output(&changes)?);
        }
        Ok(())
    }
}

/// The rows of `p` (in order) that `rank` ranks within the top `n`, with
/// their ranks: RANK counts the rows before a tie group, DENSE_RANK the tie
/// groups before it.
fn ranked(p: &Partition, n: usize, rank: RankFunc) -> Vec<(RowRef, u64)> {
    let mut out = vec![];
    let mut groups = 0u64;
    let mut group_start = 0usize;
    for (i, r) in p.iter().enumerate() {
        if i == 0 || r.sort != p[i - 1].sort {
            groups += 1;
            group_start = i;
        }
        let k = match rank {
            RankFunc::DenseRank => groups,
            RankFunc::Rank => group_start as u64 + 1,
            RankFunc::RowNumber => i as u64 + 1,
        };
        if k > n as u64 {
            break;
        }
        out.push((r.row.clone(), k));
    }
    out
}

/// The same row at the same rank.
fn same(a: &(RowRef, u64), b: &(RowRef, u64)) -> bool {
    a.1 == b.1 && a.0 .1 == b.0 .1 && Arc::ptr_eq(&a.0 .0, &b.0 .0)
}

/// What turns the ranked rows `before` into `after`: `-D` for each row (at
/// its rank) no longer there, `+I` for each new one.
fn rank_changes(before: &[(RowRef, u64)], after: &[(RowRef, u64)], out: &mut Vec<Change>) {
    for b in before {
        if !after.iter().any(|a| same(a, b)) {
            out.push((RowKind::Delete, b.0.clone(), b.1));
        }
    }
    for a in after {
        if !before.iter().any(|b| same(a, b)) {
            out.push((RowKind::Insert, a.0.clone(), a.1));
        }
    }
}

/// Where in `p` a row equal to `row` (whose sort key is `sort`) is.
fn find(
    rows: &RowConverter,
    schema: &datafusion::arrow::datatypes::SchemaRef,
    p: &Partition,
    sort: &[u8],
    row: &RowRef,
) -> Result<Option<usize>> {
    let lo = p.partition_point(|r| &r.sort[..] < sort);
    let hi = p.partition_point(|r| &r.sort[..] <= sort);
    if lo == hi {
        return Ok(None);
    }
    let mut refs: Vec<Option<&RowRef>> = vec![Some(row)];
    refs.extend(p[lo..hi].iter().map(|r| Some(&r.row)));
    let bytes = rows
        .convert_columns(&gather(schema, &refs)?)
        .context("rank rows")?;
    let wanted = bytes.row(0);
    Ok((1..bytes.num_rows())
        .find(|&j| bytes.row(j) == wanted)
        .map(|j| lo + j - 1))
}

/// The changes to the top `n` after a row was inserted at `at` of `p`.
fn inserted(p: &Partition, n: usize, rank_number: bool, at: usize, out: &mut Vec<Change>) {
    if at >= n {
        return;
    }
    if !rank_number {
        if let Some(pushed) = p.get(n) {
            out.push((RowKind::Delete, pushed.row.clone(), n as u64));
        }
        out.push((RowKind::Insert, p[at].row.clone(), (at + 1) as u64));
        return;
    }
    // Ranks at+1..=n now hold the row that was one rank above.
    for r in at..n.min(p.len()) {
        let rank = (r + 1) as u64;
        match p.get(r + 1) {
            Some(before) => {
                out.push((RowKind::UpdateBefore, before.row.clone(), rank));
                out.push((RowKind::UpdateAfter, p[r].row.clone(), rank));
            }
            None => out.push((RowKind::Insert, p[r].row.clone(), rank)),
        }
    }
}

/// The changes to the top `n` after the row `gone` left position `at` of `p`.
fn removed(
    p: &Partition,
    n: usize,
    rank_number: bool,
    at: usize,
    gone: RowRef,
    out: &mut Vec<Change>,
) {
    if at >= n {
        return;
    }
    if !rank_number {
        out.push((RowKind::Delete, gone, (at + 1) as u64));
        if let Some(promoted) = p.get(n - 1) {
            out.push((RowKind::Insert, promoted.row.clone(), n as u64));
        }
        return;
    }
    // Ranks at+1..=n now hold the row that was one rank below; the last
    // rank the partition filled is emptied.
    let mut before = gone;
    for r in at..n.min(p.len() + 1) {
        let rank = (r + 1) as u64;
        match p.get(r) {
            Some(now) => {
                out.push((RowKind::UpdateBefore, before, rank));
                out.push((RowKind::UpdateAfter, now.row.clone(), rank));
                before = now.row.clone();
            }
            None => {
                out.push((RowKind::Delete, before, rank));
                return;
            }
        }
    }
}
