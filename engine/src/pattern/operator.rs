//! The MATCH_RECOGNIZE operator: buffers rows until the watermark passes them,
//! sorts them by event time (then the further ORDER BY keys), runs each
//! partition's matcher over them in order and emits one row per match
//! (partition columns, then measures).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{
    concat_batches, filter_record_batch, lexsort_to_indices, max, min, not, take_record_batch,
    SortColumn, SortOptions,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMillisecondType};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::HashMap;
use datafusion::physical_expr::PhysicalExpr;

use super::matcher::{Match, MatchConfig, Matcher, Skip, Step, Work};
use super::nav::{evaluate, Candidate, NavExpr, RowSource};
use super::nfa::Nfa;
use super::state::PartitionCodec;
use crate::error::ResultExt;
use crate::message::EventTime;
use crate::metrics::{Counter, Gauge};
use crate::operator::{Emitter, Operator};
use crate::operators::watermark::to_millis;
use crate::operators::{batch_of, eval};
use crate::state::keyed::{KeyedTable, StateContext, StateTable, Timers};
use crate::state::{StateEntry, StateWriter};
use crate::time::MIN_WATERMARK;
use crate::{EngineError, Result};

/// What a MATCH_RECOGNIZE computes, as planned.
#[derive(Debug, Clone)]
pub struct MatchSpec {
    /// `PARTITION BY` expressions over the input.
    pub partition_by: Vec<Arc<dyn PhysicalExpr>>,
    /// The time attribute (first ORDER BY key) over the input.
    pub time: Arc<dyn PhysicalExpr>,
    /// Further ORDER BY keys and whether each is descending.
    pub order_by: Vec<(Arc<dyn PhysicalExpr>, bool)>,
    /// Row-level expressions navigation reads (`price`, `price + tax`).
    pub derived: Vec<Arc<dyn PhysicalExpr>>,
    /// The pattern variables' names, by index.
    pub vars: Vec<String>,
    /// Each variable's DEFINE condition (`None`: always true).
    pub defines: Vec<Option<NavExpr>>,
    /// MEASURES, in output order.
    pub measures: Vec<NavExpr>,
    /// The compiled pattern.
    pub nfa: Nfa,
    /// After-match skip.
    pub skip: Skip,
    /// WITHIN, in milliseconds.
    pub within: Option<i64>,
    /// The variable of a trailing `NOT v` (absence).
    pub absent: Option<usize>,
    /// Report partial matches WITHIN expires (`ONE ROW PER MATCH WITH TIMEOUTS`).
    pub timeouts: bool,
    /// Rows kept before a partial match's first row for PREV.
    pub lookback: u64,
    /// Rows after a match's last row its MEASURES read (NEXT).
    pub lookahead: u64,
    /// `ALL ROWS PER MATCH` (`None`: ONE ROW PER MATCH).
    pub all_rows: Option<AllRows>,
    /// ONE ROW PER MATCH: partition columns, then measures. ALL ROWS PER
    /// MATCH: partition columns, ORDER BY columns, measures, then the other
    /// input columns (the standard's order).
    pub output_schema: SchemaRef,
    /// The pattern, skip, WITHIN and conditions as text, for `explain` and
    /// the plan a checkpoint is checked against.
    pub describe: String,
}

/// What `ALL ROWS PER MATCH` outputs: a row per row of each match, with its
/// input columns and the measures as of that row (RUNNING) or of the whole
/// match (FINAL).
#[derive(Debug, Clone)]
pub struct AllRows {
    /// An empty match outputs one row, at the row where it was found (`SHOW
    /// EMPTY MATCHES`, the default) or none (`OMIT EMPTY MATCHES`).
    pub show_empty: bool,
    /// Rows no match covers output a row with NULL measures (`WITH UNMATCHED
    /// ROWS`).
    pub unmatched: bool,
    /// Variables whose rows are left out of the output (`{- ... -}`), as bits.
    pub excluded: u64,
    /// The input's column types (all are kept with the rows).
    pub input_types: Vec<DataType>,
    /// Input columns output after the partition columns (the ORDER BY
    /// columns).
    pub order_columns: Vec<usize>,
    /// Input columns output after the measures.
    pub rest_columns: Vec<usize>,
}

impl MatchSpec {
    /// What the matcher needs of the spec.
    pub(super) fn config(&self) -> MatchConfig<'_> {
        MatchConfig {
            nfa: &self.nfa,
            skip: self.skip,
            within: self.within,
            absent: self.absent,
            timeouts: self.timeouts,
            lookahead: self.lookahead,
            unmatched: self.all_rows.as_ref().is_some_and(|a| a.unmatched),
            standard_end: self.all_rows.is_some(),
        }
    }

    /// Whether a partition's state must outlive its partial matches: `^`
    /// needs to know where it began, MATCH_NUMBER() how many matches it had.
    pub(super) fn keeps_partitions(&self) -> bool {
        let numbered = self
            .measures
            .iter()
            .flat_map(|m| &m.terms)
            .any(|t| t.nav == super::nav::Nav::MatchNumber);
        numbered || self.nfa.anchored_at_start()
    }
}

/// Rows of a partition that partial matches may still read.
#[derive(Default)]
pub(super) struct Rows {
    /// (sequence number, batch, row) of retained rows, in order.
    pub(super) rows: std::collections::VecDeque<(u64, Arc<RecordBatch>, usize)>,
    pub(super) next_seq: u64,
}

impl Rows {
    /// The batch holding row `seq` and its index there, if it is retained.
    pub(super) fn cell(&self, seq: u64) -> Option<(&Arc<RecordBatch>, usize)> {
        let first = self.rows.front()?.0;
        let (_, batch, i) = self.rows.get(seq.checked_sub(first)? as usize)?;
        Some((batch, *i))
    }
}

pub(super) struct Partition {
    /// The key in Arrow's row format.
    pub(super) key_bytes: Arc<[u8]>,
    pub(super) matcher: Matcher,
    pub(super) rows: Rows,
    pub(super) matches: u64,
    /// The WITHIN deadline it is registered under, if any.
    pub(super) armed: Option<i64>,
    /// What it last counted toward the gauges: partial matches, their runs,
    /// retained rows.
    pub(super) counted: (usize, usize, usize),
}

impl Partition {
    /// MATCH_NUMBER() for `m`, counting it if it is a match (0 for a
    /// timed-out partial match or an unmatched row).
    pub(super) fn number(&mut self, m: &Match) -> u64 {
        if m.timed_out || m.unmatched {
            return 0;
        }
        self.matches += 1;
        self.matches
    }

    /// A partition of `key` in the state given.
    pub(super) fn new(key_bytes: Arc<[u8]>, matcher: Matcher, rows: Rows, matches: u64) -> Self {
        Self {
            key_bytes,
            matcher,
            rows,
            matches,
            armed: None,
            counted: (0, 0, 0),
        }
    }
}

/// The layout of a released batch: time, then derived columns.
pub(super) const TIME_COL: usize = 0;

/// A partition's rows as navigation reads them.
pub(super) struct PartitionRows<'a> {
    pub(super) rows: &'a Rows,
    pub(super) vars: &'a [String],
}

impl RowSource for PartitionRows<'_> {
    fn column(&self, seq: u64, column: usize) -> Option<(&ArrayRef, usize)> {
        let (batch, i) = self.rows.cell(seq)?;
        Some((batch.column(1 + column), i))
    }

    fn time(&self, seq: u64) -> Option<i64> {
        let (batch, i) = self.rows.cell(seq)?;
        let t = batch
            .column(TIME_COL)
            .as_primitive::<TimestampMillisecondType>();
        t.is_valid(i).then(|| t.value(i))
    }

    fn var_name(&self, var: usize) -> &str {
        self.vars.get(var).map(String::as_str).unwrap_or("")
    }
}

/// Runs MATCH_RECOGNIZE.
pub struct MatchRecognize {
    pub(super) spec: MatchSpec,
    /// Rows waiting for the watermark: batches with their earliest and
    /// latest times.
    pub(super) staged: Vec<(RecordBatch, i64, i64)>,
    pub(super) staged_schema: SchemaRef,
    pub(super) keys: RowConverter,
    /// The partitions a watermark works on, taken out of `table` while it
    /// does (and put back after), and where each is by key.
    pub(super) partitions: Vec<Partition>,
    pub(super) index: HashMap<Arc<[u8]>, usize>,
    /// Every partition with state, by key.
    pub(super) table: KeyedTable<Partition, PartitionCodec>,
    /// How many partitions have state (`None`: unknown, after a restore), so
    /// that the end of the input reads the table only when some are not in
    /// the working set (a full read walks every deleted entry too).
    pub(super) live: Option<usize>,
    pub(super) watermark: EventTime,
    pub(super) late: Counter,
    /// Open partial matches, and state bytes per open partial match.
    pub(super) gauges: (Gauge, Gauge),
    /// WITHIN deadlines of partitions with partial matches, so a watermark
    /// visits only the partitions it expires.
    pub(super) deadlines: Timers,
    /// Partitions a step or an expiry touched since the last upkeep.
    pub(super) touched: Vec<usize>,
    /// Partial matches, their runs and retained rows, over all partitions.
    pub(super) totals: (usize, usize, usize),
    /// The open partial matches last added to the shared gauge.
    pub(super) reported: u64,
    /// The key, ORDER BY and derived column types (for another instance).
    types: (Vec<DataType>, Vec<DataType>, Vec<DataType>),
    /// Key groups whose waiting rows were written at the last checkpoint.
    pub(super) stored_groups: Vec<u16>,
}

/// The keyed tables of the operator.
const TABLES: [&str; 2] = ["partitions", "deadlines"];

impl MatchRecognize {
    /// The operator for `spec`; `key_types` are the PARTITION BY types and
    /// `derived_types` the derived columns' types.
    pub fn new(
        spec: MatchSpec,
        key_types: Vec<DataType>,
        order_types: Vec<DataType>,
        derived_types: Vec<DataType>,
        late: Counter,
        gauges: (Gauge, Gauge),
    ) -> Result<Self> {
        let mut fields = vec![Field::new("__time", super::nav::rowtime_type(), true)];
        for (i, t) in derived_types.iter().enumerate() {
            fields.push(Field::new(format!("__d{i}"), t.clone(), true));
        }
        for (i, t) in key_types.iter().enumerate() {
            fields.push(Field::new(format!("__k{i}"), t.clone(), true));
        }
        for (i, t) in order_types.iter().enumerate() {
            fields.push(Field::new(format!("__o{i}"), t.clone(), true));
        }
        for (i, t) in spec
            .all_rows
            .iter()
            .flat_map(|a| &a.input_types)
            .enumerate()
        {
            fields.push(Field::new(format!("__in{i}"), t.clone(), true));
        }
        let types = (
            key_types.clone(),
            order_types.clone(),
            derived_types.clone(),
        );
        let keys = RowConverter::new(key_types.into_iter().map(SortField::new).collect())
            .context("MATCH_RECOGNIZE partition keys")?;
        let staged_schema = Arc::new(Schema::new(fields));
        let (table, deadlines) = Self::declare(&staged_schema, &mut StateContext::detached())?;
        Ok(Self {
            spec,
            staged: vec![],
            staged_schema,
            keys,
            partitions: vec![],
            index: HashMap::new(),
            table,
            live: Some(0),
            watermark: MIN_WATERMARK,
            late,
            gauges,
            deadlines,
            touched: vec![],
            totals: (0, 0, 0),
            reported: 0,
            types,
            stored_groups: vec![],
        })
    }

    fn declare(
        schema: &SchemaRef,
        ctx: &mut StateContext,
    ) -> Result<(KeyedTable<Partition, PartitionCodec>, Timers)> {
        let table = ctx.table(TABLES[0], PartitionCodec::new(schema.clone())?, None)?;
        Ok((table, ctx.timers(TABLES[1])?))
    }

    /// The working-set index of the partition of `key`: taken from the
    /// table, or new when `create` (else `None` if it has no state).
    pub(super) fn fetch(&mut self, key: &[u8], create: bool) -> Result<Option<usize>> {
        if let Some(&p) = self.index.get(key) {
            return Ok(Some(p));
        }
        let part = match self.table.take(key, 0)? {
            Some(p) => p,
            None if create => {
                if let Some(live) = &mut self.live {
                    *live += 1;
                }
                Partition::new(Arc::from(key), Matcher::new(), Rows::default(), 0)
            }
            None => return Ok(None),
        };
        self.index
            .insert(part.key_bytes.clone(), self.partitions.len());
        self.partitions.push(part);
        Ok(Some(self.partitions.len() - 1))
    }

    /// Puts the working set back into the table (the partitions upkeep
    /// dropped are gone already).
    pub(super) fn park(&mut self) -> Result<()> {
        self.index.clear();
        for p in std::mem::take(&mut self.partitions) {
            let key = p.key_bytes.clone();
            self.table.insert(&key, p, 0)?;
        }
        Ok(())
    }

    pub(super) fn key_start(&self) -> usize {
        1 + self.spec.derived.len()
    }

    fn order_start(&self) -> usize {
        self.key_start() + self.spec.partition_by.len()
    }

    /// Where the input's own columns start in a staged batch (ALL ROWS PER
    /// MATCH keeps them).
    pub(super) fn input_start(&self) -> usize {
        self.order_start() + self.spec.order_by.len()
    }

    /// Keeps `batch` until the watermark passes its rows, with its earliest
    /// and latest times.
    pub(super) fn stage(&mut self, batch: RecordBatch) {
        let times = batch
            .column(TIME_COL)
            .as_primitive::<TimestampMillisecondType>();
        if let (Some(lo), Some(hi)) = (min(times), max(times)) {
            self.staged.push((batch, lo, hi));
        }
    }

    /// Feeds the staged rows at or before `wm`, in order, to their partitions.
    fn release(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        // Only batches that straddle the watermark are split; the others are
        // wholly due or wholly waiting (rows wait seconds, across many
        // watermarks, so they must not be copied at each).
        let mut due = vec![];
        for (batch, lo, hi) in std::mem::take(&mut self.staged) {
            if hi <= wm {
                due.push(batch);
            } else if lo > wm {
                self.staged.push((batch, lo, hi));
            } else {
                let times = batch
                    .column(TIME_COL)
                    .as_primitive::<TimestampMillisecondType>();
                // Staged rows never have a NULL time (on_batch drops those as late).
                let now: BooleanArray = times
                    .iter()
                    .map(|t| Some(t.is_some_and(|t| t <= wm)))
                    .collect();
                let keep = not(&now).context("MATCH_RECOGNIZE")?;
                self.stage(filter_record_batch(&batch, &keep).context("MATCH_RECOGNIZE")?);
                due.push(filter_record_batch(&batch, &now).context("MATCH_RECOGNIZE")?);
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        let ready = concat_batches(&self.staged_schema, &due).context("MATCH_RECOGNIZE")?;
        if ready.num_rows() == 0 {
            return Ok(());
        }
        let mut sort = vec![SortColumn {
            values: ready.column(TIME_COL).clone(),
            options: None,
        }];
        for (i, (_, desc)) in self.spec.order_by.iter().enumerate() {
            sort.push(SortColumn {
                values: ready.column(self.order_start() + i).clone(),
                options: Some(SortOptions {
                    descending: *desc,
                    nulls_first: !*desc,
                }),
            });
        }
        let order = lexsort_to_indices(&sort, None).context("MATCH_RECOGNIZE sort")?;
        let sorted = Arc::new(take_record_batch(&ready, &order).context("MATCH_RECOGNIZE sort")?);
        let key_cols: Vec<ArrayRef> = (0..self.spec.partition_by.len())
            .map(|i| sorted.column(self.key_start() + i).clone())
            .collect();
        // Without PARTITION BY every row is in one partition (the empty key).
        let key_rows = if key_cols.is_empty() {
            None
        } else {
            Some(
                self.keys
                    .convert_columns(&key_cols)
                    .context("MATCH_RECOGNIZE partition keys")?,
            )
        };
        // Each row's partition; rows of one partition stay in time order.
        let times = sorted
            .column(TIME_COL)
            .as_primitive::<TimestampMillisecondType>()
            .clone();
        // Each row's partition, then the rows grouped by partition (a
        // counting sort: rows of one partition stay in time order).
        let n = sorted.num_rows();
        let mut list_of: Vec<usize> = vec![usize::MAX; self.partitions.len()];
        let mut parts_of_list: Vec<usize> = vec![];
        let mut row_list: Vec<usize> = Vec::with_capacity(n);
        if let Some(k) = &key_rows {
            // Partitions that spilled come back in one read.
            let outside = (0..n)
                .map(|i| k.row(i).data())
                .filter(|key| !self.index.contains_key(*key));
            self.table.prefetch(outside, 0)?;
        }
        for i in 0..n {
            let key: &[u8] = key_rows.as_ref().map_or(&[], |k| k.row(i).data());
            let p = self.fetch(key, true)?.ok_or_else(|| {
                EngineError::State("MATCH_RECOGNIZE: a partition vanished".into())
            })?;
            if list_of.len() < self.partitions.len() {
                list_of.resize(self.partitions.len(), usize::MAX);
            }
            if list_of[p] == usize::MAX {
                list_of[p] = parts_of_list.len();
                parts_of_list.push(p);
            }
            row_list.push(list_of[p]);
        }
        let mut starts = vec![0usize; parts_of_list.len() + 1];
        for &l in &row_list {
            starts[l + 1] += 1;
        }
        for l in 0..parts_of_list.len() {
            starts[l + 1] += starts[l];
        }
        let mut fill = starts.clone();
        let mut order = vec![0usize; n];
        for (i, &l) in row_list.iter().enumerate() {
            order[fill[l]] = i;
            fill[l] += 1;
        }
        let len_of = |l: usize| starts[l + 1] - starts[l];
        // Longest first, so round k visits only the lists that reach it.
        let mut by_len: Vec<usize> = (0..parts_of_list.len()).collect();
        by_len.sort_unstable_by_key(|&l| std::cmp::Reverse(len_of(l)));
        // Round k takes the k-th row of every partition: the conditions of
        // one round are evaluated together, one batch per variable.
        let rounds = by_len.first().map_or(0, |&l| len_of(l));
        let cfg = self.spec.config();
        let mut matched: Vec<(usize, Match, u64)> = vec![];
        let mut requests: Vec<(usize, usize, usize)> = vec![];
        let mut active: Vec<(usize, u64, usize)> = vec![];
        let mut scratch: Vec<(usize, usize)> = vec![];
        let mut timed_out: Vec<Match> = vec![];
        let mut work = Work::default();
        for k in 0..rounds {
            requests.clear();
            active.clear();
            for &l in &by_len {
                if len_of(l) <= k {
                    break;
                }
                let (p, i) = (&parts_of_list[l], order[starts[l] + k]);
                let part = &mut self.partitions[*p];
                let seq = part.rows.next_seq;
                part.rows.next_seq += 1;
                part.rows.rows.push_back((seq, sorted.clone(), i));
                scratch.clear();
                part.matcher
                    .prepare(&cfg, seq, times.value(i), &mut scratch, &mut timed_out);
                matched.extend(timed_out.drain(..).map(|m| (*p, m, 0)));
                let from = requests.len();
                let a = active.len();
                requests.extend(scratch.iter().map(|(t, v)| (a, *t, *v)));
                active.push((*p, seq, from));
            }
            let answers = self.answer(&requests, &active)?;
            for (n, &(p, seq, from)) in active.iter().enumerate() {
                let to = active.get(n + 1).map_or(requests.len(), |a| a.2);
                let mine = &requests[from..to];
                let got = &answers[from..to];
                let part = &mut self.partitions[p];
                // Requests come grouped by partial match, in order: an
                // answer is found by a binary search, then among a few (the
                // partition's list may be long with matches waiting their
                // turn, which ask nothing).
                let holds = |t: usize, v: usize| {
                    let lo = mine.partition_point(|r| r.1 < t);
                    mine[lo..]
                        .iter()
                        .take_while(|r| r.1 == t)
                        .position(|r| r.2 == v)
                        .is_some_and(|k| got[lo + k])
                };
                let mut found = vec![];
                part.matcher
                    .apply(&cfg, seq, &holds, &mut work, &mut found)?;
                for m in found {
                    let number = part.number(&m);
                    matched.push((p, m, number));
                }
            }
        }
        self.emit_matches(matched, out)?;
        for p in parts_of_list {
            self.touched.push(p);
            self.arm(p)?;
        }
        self.upkeep();
        Ok(())
    }

    /// Evaluates the DEFINE conditions `requests` lists ((index into
    /// `active`, partial match, variable); `active` holds each partition's
    /// row), one batch per variable.
    fn answer(
        &self,
        requests: &[(usize, usize, usize)],
        active: &[(usize, u64, usize)],
    ) -> Result<Vec<bool>> {
        let mut answers = vec![true; requests.len()];
        let sources: Vec<PartitionRows<'_>> = active
            .iter()
            .map(|a| PartitionRows {
                rows: &self.partitions[a.0].rows,
                vars: &self.spec.vars,
            })
            .collect();
        let mut which: Vec<usize> = vec![];
        for (var, cond) in self.spec.defines.iter().enumerate() {
            let Some(cond) = cond else { continue };
            which.clear();
            which.extend((0..requests.len()).filter(|&j| requests[j].2 == var));
            if which.is_empty() {
                continue;
            }
            let candidates: Vec<Candidate<'_>> = which
                .iter()
                .map(|&j| {
                    let (a, t, v) = requests[j];
                    let (p, row, _) = active[a];
                    let steps = self.partitions[p].matcher.steps_of(t);
                    Candidate {
                        steps,
                        full: steps,
                        current: Some(Step { row, var: v }),
                        match_number: 0,
                        last_row: row,
                        rowtime: None,
                        timed_out: false,
                        rows: &sources[a],
                    }
                })
                .collect();
            let result = evaluate(cond, &candidates)?;
            let b: &BooleanArray = result
                .as_boolean_opt()
                .ok_or_else(|| EngineError::Graph("a DEFINE condition is not boolean".into()))?;
            for (n, &j) in which.iter().enumerate() {
                answers[j] = b.is_valid(n) && b.value(n);
            }
        }
        Ok(answers)
    }
}

impl Operator for MatchRecognize {
    /// Partial matches are states of the compiled pattern: a different
    /// pattern cannot continue them. (`keyed`: partitions in keyed tables;
    /// checkpoints of the whole-state layout before it are not read.)
    fn state_signature(&self) -> String {
        let s = &self.spec;
        format!(
            "MatchRecognize[keyed](vars={:?}, nfa={:?} from {}, skip={:?}, within={:?}, absent={:?})",
            s.vars, s.nfa.states, s.nfa.start, s.skip, s.within, s.absent
        )
    }

    fn name(&self) -> String {
        format!(
            "MatchRecognize(vars=[{}], {})",
            self.spec.vars.join(", "),
            self.spec.describe
        )
    }

    fn on_batch(&mut self, batch: RecordBatch, _out: &mut Emitter) -> Result<()> {
        let n = batch.num_rows();
        let time = to_millis(
            &eval(self.spec.time.as_ref(), &batch, "ORDER BY time")?,
            "ORDER BY time",
        )?;
        let mut columns = vec![time.clone()];
        for d in &self.spec.derived {
            columns.push(eval(d.as_ref(), &batch, "pattern expression")?);
        }
        for k in &self.spec.partition_by {
            columns.push(eval(k.as_ref(), &batch, "PARTITION BY")?);
        }
        for (o, _) in &self.spec.order_by {
            columns.push(eval(o.as_ref(), &batch, "ORDER BY")?);
        }
        if self.spec.all_rows.is_some() {
            columns.extend(batch.columns().iter().cloned());
        }
        let staged = batch_of(&self.staged_schema, columns, "MATCH_RECOGNIZE")?;
        // Rows at or behind the watermark are late, as in Flink.
        let times = time.as_primitive::<TimestampMillisecondType>();
        let on_time: BooleanArray = times
            .iter()
            .map(|t| Some(t.is_some_and(|t| t > self.watermark)))
            .collect();
        let kept = filter_record_batch(&staged, &on_time).context("MATCH_RECOGNIZE")?;
        let late = n - kept.num_rows();
        if late > 0 {
            self.late.add(late as u64);
        }
        if kept.num_rows() > 0 {
            self.stage(kept);
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        if wm > self.watermark {
            self.watermark = wm;
            self.release(wm, out)?;
            self.expire(wm, out)?;
            self.upkeep();
            self.park()?;
            self.report();
        }
        out.watermark(wm);
        Ok(())
    }

    fn on_end(&mut self, out: &mut Emitter) -> Result<()> {
        // As in Flink, matches still held back by an earlier partial match
        // when the input ends are not emitted (the Nexmark CEP goldens show it).
        self.release(EventTime::MAX, out)?;
        self.park()
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        (self.table, self.deadlines) = Self::declare(&self.staged_schema, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.table, &mut self.deadlines]
    }

    fn snapshot(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        self.save(w)
    }

    fn restore(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        self.load(entries)
    }

    /// Partitions are independent: instances split them by key.
    fn key_exprs(&self, _input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        (!self.spec.partition_by.is_empty()).then(|| self.spec.partition_by.clone())
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        let (keys, order, derived) = self.types.clone();
        Ok(Some(Box::new(MatchRecognize::new(
            self.spec.clone(),
            keys,
            order,
            derived,
            self.late.clone(),
            self.gauges.clone(),
        )?)))
    }

    fn state_size(&self) -> u64 {
        let staged: usize = self
            .staged
            .iter()
            .map(|b| b.0.get_array_memory_size())
            .sum();
        let rows: usize = self.partitions.iter().map(|p| p.rows.rows.len() * 24).sum();
        (staged + rows) as u64
    }
}
