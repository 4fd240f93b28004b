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

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;

use super::steps::{in_vars, Step, Steps};
use crate::error::ResultExt;
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
    /// The variable the last row is mapped to.
    Classifier,
    /// The match's number in its partition, from 1 (NULL for a timed-out
    /// partial match).
    MatchNumber,
    /// Whether the row reports a partial match WITHIN timed out
    /// (`MATCH_TIMED_OUT()`).
    TimedOut,
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
    /// The value of derived column `column` at row `seq`, if the row exists.
    fn value(&self, seq: u64, column: usize) -> Result<Option<ScalarValue>>;
    /// The event time of row `seq`.
    fn time(&self, seq: u64) -> Option<i64>;
    /// The variable names, for CLASSIFIER().
    fn var_name(&self, var: usize) -> &str;
}

/// One candidate: the rows of a (partial) match, plus in a DEFINE the row
/// being tested, and where its partition's rows are.
pub struct Candidate<'a> {
    /// The rows mapped so far and their variables.
    pub steps: &'a Steps,
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
    /// Every row of the (running) match, in order.
    fn all(&self) -> impl DoubleEndedIterator<Item = Step> + '_ {
        self.steps.iter().chain(self.current)
    }

    /// The last row of the (running) match.
    fn last(&self) -> Option<Step> {
        self.current.or_else(|| self.steps.last())
    }
}

/// The row a row navigation lands on.
fn row_of(nav: &Nav, c: &Candidate<'_>) -> Option<u64> {
    match nav {
        Nav::Last { vars, offset } => c.steps.nth_back(vars, *offset, c.current),
        Nav::First { vars, offset } => c.steps.nth(vars, *offset, c.current),
        Nav::Physical { base, offset } => {
            let r = row_of(base, c)? as i64 + offset;
            (r >= 0 && r as u64 <= c.last_row).then_some(r as u64)
        }
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
    let rows = c.rows;
    let mut count: i64 = 0;
    let mut acc: Option<ScalarValue> = None;
    for s in c.all().filter(|s| in_vars(vars, s.var)) {
        let Some(col) = column else {
            count += 1;
            continue;
        };
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

/// The value of `term` for candidate `c`.
pub fn term_value(term: &NavTerm, c: &Candidate<'_>) -> Result<ScalarValue> {
    let t = &term.data_type;
    let rows = c.rows;
    match &term.nav {
        Nav::Agg { func, vars } => aggregate(*func, vars, term.column, t, c),
        Nav::MatchRowtime => Ok(ScalarValue::TimestampMillisecond(
            c.rowtime
                .or_else(|| c.last().and_then(|s| rows.time(s.row))),
            None,
        )),
        Nav::Classifier => Ok(ScalarValue::Utf8(
            c.last().map(|s| rows.var_name(s.var).to_string()),
        )),
        Nav::MatchNumber => Ok(ScalarValue::Int64(
            (c.match_number > 0).then_some(c.match_number as i64),
        )),
        Nav::TimedOut => Ok(ScalarValue::Boolean(Some(c.timed_out))),
        nav => {
            let (Some(row), Some(col)) = (row_of(nav, c), term.column) else {
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

/// Evaluates `e` for each candidate, vectorised: one row per candidate.
pub fn evaluate(e: &NavExpr, candidates: &[Candidate<'_>]) -> Result<ArrayRef> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(e.terms.len());
    for term in &e.terms {
        let values = candidates
            .iter()
            .map(|c| term_value(term, c))
            .collect::<Result<Vec<_>>>()?;
        let array = if values.is_empty() {
            datafusion::arrow::array::new_empty_array(&term.data_type)
        } else {
            ScalarValue::iter_to_array(values).context("pattern navigation")?
        };
        columns.push(array);
    }
    let options =
        datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(candidates.len()));
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
