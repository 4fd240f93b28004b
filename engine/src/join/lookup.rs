//! The lookup join (Flink's `FOR SYSTEM_TIME AS OF proctime` join): each row
//! of the stream is joined, when it arrives, with the reference table's rows
//! of equal keys as the table is at that moment. The table comes from a
//! connector ([`LookupTable`]), is indexed by key in memory, and is checked
//! for changes (a file's modification time) at most once per interval and
//! reloaded when it changed. Rows already joined are not revised: the output
//! is append-only (or carries the stream's own change kinds through).

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::HashMap;
use datafusion::physical_expr::PhysicalExpr;

use super::keys::JoinKeys;
use super::rows::{gather, RowRef};
use crate::changelog;
use crate::connector::LookupTable;
use crate::error::ResultExt;
use crate::operator::{Emitter, Operator};
use crate::operators::{batch_of, eval};
use crate::{EngineError, Result};

/// A step from the table's rows as loaded to the joined side's rows.
#[derive(Debug, Clone)]
pub enum LookupStep {
    /// Keeps the rows where the predicate holds.
    Filter(Arc<dyn PhysicalExpr>),
    /// Computes these columns, of this schema.
    Project(Vec<Arc<dyn PhysicalExpr>>, SchemaRef),
}

/// What a lookup join computes, as planned.
#[derive(Debug, Clone)]
pub struct LookupJoinSpec {
    /// LEFT (unmatched stream rows padded with NULLs) or INNER.
    pub left_outer: bool,
    /// The stream's columns (without a `__row_kind` column).
    pub stream_schema: SchemaRef,
    /// The table side's columns, after `steps`.
    pub table_schema: SchemaRef,
    /// From the loaded rows to the table side's.
    pub steps: Vec<LookupStep>,
    /// The equality keys over the stream's and the table side's columns.
    pub keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    /// The keys' common types.
    pub key_types: Vec<datafusion::arrow::datatypes::DataType>,
    /// The rest of the condition, over stream columns then table columns.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Stream columns then table columns, all nullable.
    pub pair_schema: SchemaRef,
    /// The pair schema (plus `__row_kind` when the stream is updating).
    pub output_schema: SchemaRef,
    /// How often the table is checked for changes.
    pub check_every: Duration,
    /// The plan as text.
    pub describe: String,
}

/// Runs a lookup join.
pub struct LookupJoin {
    spec: LookupJoinSpec,
    table: Box<dyn LookupTable>,
    keys: JoinKeys,
    /// The table side's rows by key.
    index: HashMap<Box<[u8]>, Vec<usize>>,
    rows: Option<Arc<RecordBatch>>,
    checked: Option<Instant>,
}

impl LookupJoin {
    /// The operator for `spec` over `table`.
    pub fn new(spec: LookupJoinSpec, table: Box<dyn LookupTable>) -> Result<Self> {
        let keys = JoinKeys::new(spec.key_types.clone(), false)?;
        Ok(Self {
            spec,
            table,
            keys,
            index: HashMap::new(),
            rows: None,
            checked: None,
        })
    }

    /// Reloads the table if the interval has passed and it changed (on the
    /// task's processing-time timer, never per batch).
    fn refresh(&mut self) -> Result<()> {
        if self
            .checked
            .is_some_and(|t| t.elapsed() < self.spec.check_every)
        {
            return Ok(());
        }
        self.checked = Some(Instant::now());
        let Some(mut batch) = self.table.reload()? else {
            return Ok(());
        };
        for step in &self.spec.steps {
            batch = match step {
                LookupStep::Filter(p) => {
                    let v = eval(p.as_ref(), &batch, "lookup table filter")?;
                    let mask = v.as_boolean_opt().ok_or_else(|| {
                        EngineError::Graph("a lookup table filter is not boolean".into())
                    })?;
                    filter_record_batch(&batch, mask).context("lookup table filter")?
                }
                LookupStep::Project(exprs, schema) => {
                    let cols = exprs
                        .iter()
                        .map(|e| eval(e.as_ref(), &batch, "lookup table columns"))
                        .collect::<Result<Vec<_>>>()?;
                    batch_of(schema, cols, "lookup table columns")?
                }
            };
        }
        let batch = batch_of(
            &self.spec.table_schema,
            batch.columns().to_vec(),
            "lookup table",
        )?;
        let keys = self.keys.of(&self.spec.keys[1], &batch)?;
        self.index.clear();
        for (i, k) in keys.into_iter().enumerate() {
            if let Some(k) = k {
                self.index.entry(k).or_default().push(i);
            }
        }
        tracing::info!(table = %self.table.describe(), rows = batch.num_rows(), "lookup table loaded");
        self.rows = Some(Arc::new(batch));
        Ok(())
    }

    /// Whether each candidate (stream row, table row) pair meets the rest of
    /// the condition.
    fn check(&self, pairs: &[(RowRef, RowRef)]) -> Result<Vec<bool>> {
        let Some(filter) = &self.spec.filter else {
            return Ok(vec![true; pairs.len()]);
        };
        if pairs.is_empty() {
            return Ok(vec![]);
        }
        let l: Vec<Option<&RowRef>> = pairs.iter().map(|p| Some(&p.0)).collect();
        let r: Vec<Option<&RowRef>> = pairs.iter().map(|p| Some(&p.1)).collect();
        let mut columns = gather(&self.spec.stream_schema, &l)?;
        columns.extend(gather(&self.spec.table_schema, &r)?);
        let batch = batch_of(&self.spec.pair_schema, columns, "lookup join condition")?;
        let v = eval(filter.as_ref(), &batch, "lookup join condition")?;
        let b = v
            .as_boolean_opt()
            .ok_or_else(|| EngineError::Graph("the join condition is not boolean".into()))?;
        Ok((0..b.len()).map(|k| b.is_valid(k) && b.value(k)).collect())
    }
}

impl Operator for LookupJoin {
    fn name(&self) -> String {
        format!("LookupJoin({})", self.spec.describe)
    }

    /// Joining keeps no keyed state (the table is the connector's): the
    /// join runs in each parallel instance of its input, with its own copy
    /// of the table, as Flink's lookup join runs in each subtask.
    fn runs_per_input(&self) -> bool {
        true
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(LookupJoin::new(
            self.spec.clone(),
            self.table.fork()?,
        )?)))
    }

    /// Loads the table before the first row comes.
    fn open(&mut self, _state: &mut crate::state::keyed::StateContext) -> Result<()> {
        self.refresh()
    }

    /// Checks the table for changes every `lookup.join.cache.ttl`.
    fn processing_interval(&self) -> Option<std::time::Duration> {
        Some(self.spec.check_every)
    }

    fn on_processing_time(&mut self, _out: &mut Emitter) -> Result<()> {
        self.refresh()
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        if self.checked.is_none() {
            // Used without the runtime (never opened): load it now.
            self.refresh()?;
        }
        let kinds = changelog::kinds(&batch).cloned();
        let width = self.spec.stream_schema.fields().len();
        let stream = Arc::new(batch_of(
            &self.spec.stream_schema,
            batch.columns()[..width].to_vec(),
            "lookup join input",
        )?);
        let keys = self.keys.of(&self.spec.keys[0], &stream)?;
        let mut pairs: Vec<(RowRef, RowRef)> = vec![];
        let mut owner: Vec<usize> = vec![];
        if let Some(rows) = &self.rows {
            for (i, k) in keys.iter().enumerate() {
                if let Some(matches) = k.as_ref().and_then(|k| self.index.get(k)) {
                    for &j in matches {
                        pairs.push(((stream.clone(), i), (rows.clone(), j)));
                        owner.push(i);
                    }
                }
            }
        }
        let pass = self.check(&pairs)?;
        // Pairs in stream order; an unmatched row of a LEFT join padded in its place.
        let mut left: Vec<Option<RowRef>> = vec![];
        let mut right: Vec<Option<RowRef>> = vec![];
        let mut row_kinds: Vec<i8> = vec![];
        let mut at = 0;
        for i in 0..stream.num_rows() {
            let mut matched = false;
            while at < pairs.len() && owner[at] == i {
                if pass[at] {
                    left.push(Some(pairs[at].0.clone()));
                    right.push(Some(pairs[at].1.clone()));
                    row_kinds.push(changelog::kind_at(kinds.as_ref(), i) as i8);
                    matched = true;
                }
                at += 1;
            }
            if !matched && self.spec.left_outer {
                left.push(Some((stream.clone(), i)));
                right.push(None);
                row_kinds.push(changelog::kind_at(kinds.as_ref(), i) as i8);
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        let l: Vec<Option<&RowRef>> = left.iter().map(Option::as_ref).collect();
        let r: Vec<Option<&RowRef>> = right.iter().map(Option::as_ref).collect();
        let mut columns = gather(&self.spec.stream_schema, &l)?;
        columns.extend(gather(&self.spec.table_schema, &r)?);
        if changelog::is_updating(&self.spec.output_schema) {
            columns.push(Arc::new(datafusion::arrow::array::Int8Array::from(
                row_kinds,
            )));
        }
        out.batch(batch_of(
            &self.spec.output_schema,
            columns,
            "lookup join output",
        )?);
        Ok(())
    }

    fn state_size(&self) -> u64 {
        self.rows
            .as_ref()
            .map_or(0, |r| r.get_array_memory_size() as u64)
    }
}
