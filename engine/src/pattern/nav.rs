//! Pattern navigation: the values a DEFINE condition or a MEASURES expression
//! reads from a (partial) match — `A.price`, `LAST(A.price, 1)`,
//! `FIRST(price)`, `PREV(price, 2)`, `SUM(A.price)`, `MATCH_ROWTIME()`,
//! `CLASSIFIER()`, `MATCH_NUMBER()`.
//!
//! The planner rewrites every such term of an expression into a column of a
//! small batch with one row per candidate (a partial match and the row it
//! tries to take), so the rest of the expression is evaluated by DataFusion,
//! vectorised over all candidates of a step. What a navigation reads inside a
//! row (`price`, `price + tax`) is a derived column computed once per input
//! batch.

use std::sync::Arc;

use datafusion::arrow::array::{
    new_empty_array, Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;

use super::steps::{in_vars, Step, Steps};
use crate::error::ResultExt;
use crate::operators::gather_cells;
use crate::Result;

/// An aggregate over the rows of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggFunc {
    /// `SUM`.
    Sum,
    /// `COUNT(x)` (non-null values) or `COUNT(*)` (rows).
    Count,
    /// `AVG` (over integers an integer, as in Flink).
    Avg,
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
}

/// Which rows of the match a term reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Nav {
    /// The `offset`-th row from the end among the rows mapped to `vars`
    /// (every row of the match when empty): `A.x` is `Last { [A], 0 }`.
    Last {
        /// The variables (several for a SUBSET union variable).
        vars: Vec<usize>,
        /// Rows back from the last.
        offset: u64,
    },
    /// The `offset`-th row from the start among the rows mapped to `vars`.
    First {
        /// The variables.
        vars: Vec<usize>,
        /// Rows on from the first.
        offset: u64,
    },
    /// The row `offset` rows after (negative: before) the row `base` reads,
    /// in the partition, inside or outside the match.
    Physical {
        /// The row navigated from.
        base: Box<Nav>,
        /// Rows after (negative: before).
        offset: i64,
    },
    /// An aggregate over the rows mapped to `vars` (all rows when empty).
    Agg {
        /// The function.
        func: AggFunc,
        /// The variables.
        vars: Vec<usize>,
    },
    /// The time of the last row of the match.
    MatchRowtime,
    /// The variable the last row mapped to one of `vars` is mapped to (the
    /// last row of the match when empty): `CLASSIFIER()`, `CLASSIFIER(U)`.
    Classifier {
        /// The variables (a union variable's members).
        vars: Vec<usize>,
    },
    /// The match's number in its partition, from 1 (NULL for a timed-out
    /// partial match).
    MatchNumber,
    /// Whether the row reports a partial match WITHIN timed out
    /// (`MATCH_TIMED_OUT()`).
    TimedOut,
    /// `FINAL nav`: read over the whole match rather than up to the current
    /// row (they differ only for ALL ROWS PER MATCH).
    Final(Box<Nav>),
}

/// A navigation term of an expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NavTerm {
    /// Which rows.
    pub nav: Nav,
    /// The derived column read at those rows (`None` for `COUNT(*)` and the
    /// match functions).
    pub column: Option<usize>,
    /// The term's type (its column in the candidate batch).
    pub data_type: DataType,
}

/// A DEFINE condition or a MEASURES expression: DataFusion evaluates `expr`
/// over a batch whose columns are the `terms`' values.
#[derive(Debug, Clone)]
pub struct NavExpr {
    /// The expression over the terms' columns.
    pub expr: Arc<dyn PhysicalExpr>,
    /// The terms, in column order.
    pub terms: Vec<NavTerm>,
    /// The candidate batch's schema.
    pub schema: SchemaRef,
}

impl NavExpr {
    /// An expression over `terms`.
    pub fn new(expr: Arc<dyn PhysicalExpr>, terms: Vec<NavTerm>) -> Self {
        let fields: Vec<Field> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("__nav_{i}"), t.data_type.clone(), true))
            .collect();
        Self {
            expr,
            terms,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

/// What navigation reads rows through: the partition's rows by sequence number.
pub trait RowSource {
    /// Derived column `column` and the index in it of row `seq`, if the row
    /// exists.
    fn column(&self, seq: u64, column: usize) -> Option<(&ArrayRef, usize)>;
    /// The event time of row `seq`.
    fn time(&self, seq: u64) -> Option<i64>;
    /// The variable names, for CLASSIFIER().
    fn var_name(&self, var: usize) -> &str;

    /// The value of derived column `column` at row `seq`, if the row exists.
    fn value(&self, seq: u64, column: usize) -> Result<Option<ScalarValue>> {
        match self.column(seq, column) {
            None => Ok(None),
            Some((a, i)) => ScalarValue::try_from_array(a, i)
                .map(Some)
                .context("pattern navigation"),
        }
    }
}

/// One candidate: the rows of a (partial) match, plus in a DEFINE the row
/// being tested, and where its partition's rows are.
#[derive(Clone, Copy)]
pub struct Candidate<'a> {
    /// The rows mapped so far (RUNNING: up to the output row under ALL ROWS
    /// PER MATCH) and their variables.
    pub steps: &'a Steps,
    /// The whole match (FINAL), which may extend past `steps`.
    pub full: &'a Steps,
    /// In a DEFINE condition, the row being tested and its variable.
    pub current: Option<Step>,
    /// MATCH_NUMBER().
    pub match_number: u64,
    /// Rows after this one do not exist yet (NEXT in DEFINE is null).
    pub last_row: u64,
    /// MATCH_ROWTIME() when not the last row's time (an absence, a timeout).
    pub rowtime: Option<i64>,
    /// A timed-out partial match.
    pub timed_out: bool,
    /// The partition's rows.
    pub rows: &'a dyn RowSource,
}

impl Candidate<'_> {
    /// The candidate seen with FINAL semantics: the whole match.
    fn finalized(&self) -> Self {
        Self {
            steps: self.full,
            current: None,
            ..*self
        }
    }

    /// Every row of the (running) match, in order.
    fn all(&self) -> impl DoubleEndedIterator<Item = Step> + '_ {
        self.steps.iter().chain(self.current)
    }

    /// The last row of the (running) match.
    fn last(&self) -> Option<Step> {
        self.current.or_else(|| self.steps.last())
    }

    /// MATCH_ROWTIME(): the time given, or the last row's.
    fn rowtime(&self) -> Option<i64> {
        self.rowtime
            .or_else(|| self.last().and_then(|s| self.rows.time(s.row)))
    }
}

/// The row a row navigation lands on.
fn row_of(nav: &Nav, c: &Candidate<'_>) -> Option<u64> {
    match nav {
        Nav::Last { vars, offset } => c.steps.nth_back(vars, *offset, c.current),
        // As in Trino, FIRST counts from the match's start over the whole
        // match even under RUNNING semantics (only LAST stops at the row).
        Nav::First { vars, offset } => c.full.nth(vars, *offset, c.current),
        Nav::Physical { base, offset } => {
            let r = row_of(base, c)? as i64 + offset;
            (r >= 0 && r as u64 <= c.last_row).then_some(r as u64)
        }
        Nav::Final(inner) => row_of(inner, &c.finalized()),
        _ => None,
    }
}

fn null_of(t: &DataType) -> Result<ScalarValue> {
    ScalarValue::try_from(t).context("pattern navigation")
}

fn aggregate(
    func: AggFunc,
    vars: &[usize],
    column: Option<usize>,
    t: &DataType,
    c: &Candidate<'_>,
) -> Result<ScalarValue> {
    let Some(col) = column else {
        let n = c.all().filter(|s| in_vars(vars, s.var)).count();
        return Ok(ScalarValue::Int64(Some(n as i64)));
    };
    if let Some(v) = aggregate_primitive(func, vars, col, t, c)? {
        return Ok(v);
    }
    let rows = c.rows;
    let mut count: i64 = 0;
    let mut acc: Option<ScalarValue> = None;
    for s in c.all().filter(|s| in_vars(vars, s.var)) {
        let Some(v) = rows.value(s.row, col)? else {
            continue;
        };
        if v.is_null() {
            continue;
        }
        count += 1;
        acc = Some(match (func, acc) {
            (_, None) => v,
            (AggFunc::Sum | AggFunc::Avg, Some(a)) => a.add(&v).context("SUM in a pattern")?,
            (AggFunc::Min, Some(a)) => {
                if v.partial_cmp(&a) == Some(std::cmp::Ordering::Less) {
                    v
                } else {
                    a
                }
            }
            (AggFunc::Max, Some(a)) => {
                if v.partial_cmp(&a) == Some(std::cmp::Ordering::Greater) {
                    v
                } else {
                    a
                }
            }
            (AggFunc::Count, Some(a)) => a,
        });
    }
    match func {
        AggFunc::Count => Ok(ScalarValue::Int64(Some(count))),
        AggFunc::Avg => match acc {
            None => null_of(t),
            Some(sum) => {
                let n = ScalarValue::Int64(Some(count))
                    .cast_to(&sum.data_type())
                    .context("AVG in a pattern")?;
                sum.div(&n)
                    .and_then(|v| v.cast_to(t))
                    .context("AVG in a pattern")
            }
        },
        _ => match acc {
            None => null_of(t),
            Some(v) => v.cast_to(t).context("aggregate in a pattern"),
        },
    }
}

/// An aggregate over a BIGINT or DOUBLE column without a `ScalarValue` per
/// row (`None`: another type; the general path handles it). Same results:
/// SUM wraps on overflow and AVG over integers truncates, as in Flink.
fn aggregate_primitive(
    func: AggFunc,
    vars: &[usize],
    col: usize,
    t: &DataType,
    c: &Candidate<'_>,
) -> Result<Option<ScalarValue>> {
    let mut rows = c.all().filter(|s| in_vars(vars, s.var));
    let Some(first) = rows.next() else {
        return Ok(None);
    };
    let Some((a, _)) = c.rows.column(first.row, col) else {
        return Ok(None);
    };
    let result = match a.data_type() {
        DataType::Int64 => {
            let (mut n, mut sum, mut lo, mut hi) = (0i64, 0i64, i64::MAX, i64::MIN);
            for s in std::iter::once(first).chain(rows) {
                let Some((a, i)) = c.rows.column(s.row, col) else {
                    continue;
                };
                let Some(a) = a.as_primitive_opt::<Int64Type>() else {
                    return Ok(None);
                };
                if a.is_valid(i) {
                    let v = a.value(i);
                    n += 1;
                    sum = sum.wrapping_add(v);
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            let v = (n > 0).then(|| match func {
                AggFunc::Sum => sum,
                AggFunc::Avg => sum / n,
                AggFunc::Min => lo,
                AggFunc::Max => hi,
                AggFunc::Count => n,
            });
            ScalarValue::Int64(if func == AggFunc::Count { Some(n) } else { v })
        }
        DataType::Float64 => {
            let (mut n, mut sum, mut lo, mut hi) = (0i64, 0f64, f64::INFINITY, f64::NEG_INFINITY);
            for s in std::iter::once(first).chain(rows) {
                let Some((a, i)) = c.rows.column(s.row, col) else {
                    continue;
                };
                let Some(a) = a.as_primitive_opt::<Float64Type>() else {
                    return Ok(None);
                };
                if a.is_valid(i) {
                    let v = a.value(i);
                    n += 1;
                    sum += v;
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            if func == AggFunc::Count {
                ScalarValue::Int64(Some(n))
            } else {
                ScalarValue::Float64((n > 0).then(|| match func {
                    AggFunc::Avg => sum / n as f64,
                    AggFunc::Min => lo,
                    AggFunc::Max => hi,
                    _ => sum,
                }))
            }
        }
        _ => return Ok(None),
    };
    if result.data_type() == *t {
        Ok(Some(result))
    } else {
        result
            .cast_to(t)
            .map(Some)
            .context("aggregate in a pattern")
    }
}

/// The value of `term` for candidate `c`.
pub fn term_value(term: &NavTerm, c: &Candidate<'_>) -> Result<ScalarValue> {
    nav_value(&term.nav, term.column, &term.data_type, c)
}

/// The value of navigation `nav` reading derived column `column` (of type
/// `t`) for candidate `c`.
fn nav_value(
    nav: &Nav,
    column: Option<usize>,
    t: &DataType,
    c: &Candidate<'_>,
) -> Result<ScalarValue> {
    let rows = c.rows;
    match nav {
        Nav::Final(inner) => nav_value(inner, column, t, &c.finalized()),
        Nav::Agg { func, vars } => aggregate(*func, vars, column, t, c),
        Nav::MatchRowtime => Ok(ScalarValue::TimestampMillisecond(c.rowtime(), None)),
        Nav::Classifier { vars } => {
            let row = c.steps.nth_back(vars, 0, c.current);
            let var = row.and_then(|r| match c.current {
                Some(s) if s.row == r => Some(s.var),
                _ => c.steps.var_at(r),
            });
            Ok(ScalarValue::Utf8(var.map(|v| rows.var_name(v).to_string())))
        }
        Nav::MatchNumber => Ok(ScalarValue::Int64(
            (c.match_number > 0).then_some(c.match_number as i64),
        )),
        Nav::TimedOut => Ok(ScalarValue::Boolean(Some(c.timed_out))),
        nav => {
            let (Some(row), Some(col)) = (row_of(nav, c), column) else {
                return null_of(t);
            };
            match rows.value(row, col)? {
                Some(v) if v.data_type() == *t => Ok(v),
                Some(v) => v.cast_to(t).context("pattern navigation"),
                None => null_of(t),
            }
        }
    }
}

/// The values of `term` for all candidates, as an array.
fn term_array(term: &NavTerm, candidates: &[Candidate<'_>]) -> Result<ArrayRef> {
    let t = &term.data_type;
    if candidates.is_empty() {
        return Ok(new_empty_array(t));
    }
    if let Nav::Final(inner) = &term.nav {
        let whole: Vec<Candidate<'_>> = candidates.iter().map(Candidate::finalized).collect();
        let term = NavTerm {
            nav: inner.as_ref().clone(),
            ..term.clone()
        };
        return term_array(&term, &whole);
    }
    let row_nav = matches!(
        term.nav,
        Nav::Last { .. } | Nav::First { .. } | Nav::Physical { .. }
    );
    match (row_nav, term.column) {
        (true, Some(col)) => gather(&term.nav, col, t, candidates),
        (_, _) if term.nav == Nav::MatchRowtime => {
            let times: TimestampMillisecondArray =
                candidates.iter().map(Candidate::rowtime).collect();
            Ok(Arc::new(times))
        }
        _ => {
            let values = candidates
                .iter()
                .map(|c| term_value(term, c))
                .collect::<Result<Vec<_>>>()?;
            ScalarValue::iter_to_array(values).context("pattern navigation")
        }
    }
}

/// A row navigation's values, gathered from the rows' batches in one
/// `interleave` (no value per candidate).
fn gather(nav: &Nav, col: usize, t: &DataType, candidates: &[Candidate<'_>]) -> Result<ArrayRef> {
    let cells = candidates
        .iter()
        .map(|c| row_of(nav, c).and_then(|r| c.rows.column(r, col)));
    if let Some(a) = gather_cells(t, cells)? {
        return Ok(a);
    }
    // Rare (a navigation typed apart from its column): cast per value.
    let t = NavTerm {
        nav: nav.clone(),
        column: Some(col),
        data_type: t.clone(),
    };
    let values = candidates
        .iter()
        .map(|c| term_value(&t, c))
        .collect::<Result<Vec<_>>>()?;
    ScalarValue::iter_to_array(values).context("pattern navigation")
}

/// Evaluates `e` for each candidate, vectorised: one row per candidate.
pub fn evaluate(e: &NavExpr, candidates: &[Candidate<'_>]) -> Result<ArrayRef> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(e.terms.len());
    for term in &e.terms {
        columns.push(term_array(term, candidates)?);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(candidates.len()));
    let batch = RecordBatch::try_new_with_options(e.schema.clone(), columns, &options)
        .context("pattern expression")?;
    e.expr
        .evaluate(&batch)
        .and_then(|v| v.into_array(candidates.len()))
        .context("pattern expression")
}

/// The event-time type of MATCH_ROWTIME().
pub fn rowtime_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}
