//! The rows MATCH_RECOGNIZE outputs: one per match (partition columns, then
//! measures), or under ALL ROWS PER MATCH one per row of each match
//! (partition columns, ORDER BY columns, measures as of that row, the other
//! input columns), plus the rows of empty matches and unmatched rows asked for.

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::compute::nullif;
use datafusion::arrow::datatypes::DataType;

use super::matcher::{Match, Steps};
use super::nav::{evaluate, Candidate};
use super::operator::{AllRows, MatchRecognize, PartitionRows};
use crate::error::ResultExt;
use crate::operator::Emitter;
use crate::operators::{batch_of, gather_cells};
use crate::{EngineError, Result};

/// An output row of ALL ROWS PER MATCH.
struct OutRow {
    /// Index into the matches.
    m: usize,
    /// The input row it shows.
    row: u64,
    /// The match up to and including that row (RUNNING semantics).
    running: Steps,
}

impl MatchRecognize {
    /// Evaluates the measures of `matched` ((partition, match, MATCH_NUMBER))
    /// and emits their rows.
    pub(super) fn emit_matches(
        &self,
        matched: Vec<(usize, Match, u64)>,
        out: &mut Emitter,
    ) -> Result<()> {
        if matched.is_empty() {
            return Ok(());
        }
        if let Some(all) = &self.spec.all_rows {
            return self.emit_all_rows(all, &matched, out);
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.spec.output_schema.fields().len());
        // The key is read from each match's first row (retained until the
        // match is emitted), so a partition keeps no copy of it.
        let at_first: Vec<(usize, u64)> = matched
            .iter()
            .map(|(p, m, _)| (*p, m.steps.first_row()))
            .collect();
        for k in 0..self.spec.partition_by.len() {
            columns.push(self.column_at(self.key_start() + k, &at_first)?);
        }
        let sources = self.sources(&matched);
        let candidates: Vec<Candidate<'_>> = matched
            .iter()
            .zip(&sources)
            .map(|((_, m, number), rows)| Candidate {
                steps: &m.steps,
                full: &m.steps,
                current: None,
                match_number: *number,
                // MEASURES may read rows after the match (NEXT), which it
                // waited for; those not retained read NULL.
                last_row: u64::MAX,
                rowtime: m.rowtime,
                timed_out: m.timed_out,
                rows,
            })
            .collect();
        for measure in &self.spec.measures {
            columns.push(evaluate(measure, &candidates)?);
        }
        let batch = batch_of(&self.spec.output_schema, columns, "MATCH_RECOGNIZE output")?;
        out.batch(batch);
        Ok(())
    }

    /// ALL ROWS PER MATCH: a row per row of each match (excluded rows left
    /// out), one per empty match when shown, one per unmatched row.
    fn emit_all_rows(
        &self,
        all: &AllRows,
        matched: &[(usize, Match, u64)],
        out: &mut Emitter,
    ) -> Result<()> {
        let mut rows: Vec<OutRow> = vec![];
        for (m, (_, found, _)) in matched.iter().enumerate() {
            if found.timed_out {
                continue;
            }
            if found.steps.is_empty() {
                if found.unmatched || all.show_empty {
                    rows.push(OutRow {
                        m,
                        row: found.steps.first_row(),
                        running: Steps::starting_at(found.steps.first_row()),
                    });
                }
                continue;
            }
            for (k, step) in found.steps.iter().enumerate() {
                if all.excluded & (1u64 << step.var.min(63)) != 0 {
                    continue;
                }
                rows.push(OutRow {
                    m,
                    row: step.row,
                    running: found.steps.prefix(k + 1),
                });
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let at: Vec<(usize, u64)> = rows.iter().map(|r| (matched[r.m].0, r.row)).collect();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.spec.output_schema.fields().len());
        for k in 0..self.spec.partition_by.len() {
            columns.push(self.column_at(self.key_start() + k, &at)?);
        }
        for &c in &all.order_columns {
            columns.push(self.column_at(self.input_start() + c, &at)?);
        }
        let sources = self.sources(matched);
        let candidates: Vec<Candidate<'_>> = rows
            .iter()
            .map(|r| {
                let (_, m, number) = &matched[r.m];
                Candidate {
                    steps: &r.running,
                    full: &m.steps,
                    current: None,
                    match_number: *number,
                    last_row: u64::MAX,
                    rowtime: m.rowtime,
                    timed_out: false,
                    rows: &sources[r.m],
                }
            })
            .collect();
        // An unmatched row's measures are all NULL.
        let unmatched: BooleanArray = rows
            .iter()
            .map(|r| Some(matched[r.m].1.unmatched))
            .collect();
        let any_unmatched = unmatched.true_count() > 0;
        for measure in &self.spec.measures {
            let values = evaluate(measure, &candidates)?;
            columns.push(if any_unmatched {
                nullif(&values, &unmatched).context("MATCH_RECOGNIZE output")?
            } else {
                values
            });
        }
        for &c in &all.rest_columns {
            columns.push(self.column_at(self.input_start() + c, &at)?);
        }
        let batch = batch_of(&self.spec.output_schema, columns, "MATCH_RECOGNIZE output")?;
        out.batch(batch);
        Ok(())
    }

    /// Staged column `col` at the rows `at` ((partition, row)), which are
    /// retained until emitted.
    fn column_at(&self, col: usize, at: &[(usize, u64)]) -> Result<ArrayRef> {
        let t: &DataType = self.staged_schema.field(col).data_type();
        let cells = at.iter().map(|&(p, row)| {
            let (batch, i) = self.partitions.get(p)?.rows.cell(row)?;
            Some((batch.column(col), i))
        });
        gather_cells(t, cells)?.ok_or_else(|| {
            EngineError::Graph("MATCH_RECOGNIZE: an input column changed type".into())
        })
    }

    /// The rows of each match's partition.
    fn sources(&self, matched: &[(usize, Match, u64)]) -> Vec<PartitionRows<'_>> {
        matched
            .iter()
            .map(|(p, _, _)| PartitionRows {
                rows: &self.partitions[*p].rows,
                vars: &self.spec.vars,
            })
            .collect()
    }
}
