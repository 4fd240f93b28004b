//! Plans a join of two streams as an interval join: the condition must bound
//! each side's time attribute by the other's on both sides (`l.t BETWEEN r.t -
//! INTERVAL ... AND r.t + INTERVAL ...`, a `<`/`<=` pair, or `l.t = r.t`), as
//! in Flink; equalities between the sides are its keys.

use datafusion::common::{Column, DFSchema, NullEquality, ScalarValue};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Join, JoinType, Operator};
use vigil_engine::join::window::WindowJoinKind;
use vigil_engine::join::{JoinKind, Side};
use vigil_engine::window::{ROWTIME_METADATA_KEY, WINDOW_METADATA_KEY};

use crate::window_node::window_role;

/// An interval join, as found in a DataFusion join.
#[derive(Debug, Clone)]
pub struct IntervalJoinPlan {
    /// Inner, left, right or full.
    pub kind: JoinKind,
    /// Key expressions over the left input, pairwise equal to `right_keys`.
    pub left_keys: Vec<Expr>,
    /// Key expressions over the right input.
    pub right_keys: Vec<Expr>,
    /// The time attributes' column indexes in each input.
    pub times: [usize; 2],
    /// Least `left.t - right.t`, in milliseconds (inclusive).
    pub lower: i64,
    /// Greatest `left.t - right.t`, in milliseconds (inclusive).
    pub upper: i64,
    /// `IS NOT DISTINCT FROM` keys (NULL equals NULL).
    pub null_equal: bool,
    /// The whole non-equality condition, checked on each pair.
    pub filter: Option<Expr>,
}

/// Why a join cannot run as an interval join, and what to write instead.
#[derive(Debug)]
pub struct NotInterval {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: &'static str,
}

/// A window join, as found in a DataFusion join.
#[derive(Debug, Clone)]
pub struct WindowJoinPlan {
    /// What it outputs.
    pub kind: WindowJoinKind,
    /// Key expressions over the left input, pairwise equal to `right_keys`.
    pub left_keys: Vec<Expr>,
    /// Key expressions over the right input.
    pub right_keys: Vec<Expr>,
    /// Each input's `window_start` and `window_end` column indexes.
    pub windows: [(usize, usize); 2],
    /// `IS NOT DISTINCT FROM` keys.
    pub null_equal: bool,
    /// The non-equality condition, checked on each pair.
    pub filter: Option<Expr>,
}

/// The window join `j` computes, if its condition equates both inputs'
/// windows (`L.window_start = R.window_start AND L.window_end = R.window_end`).
pub fn window_join(j: &Join) -> Result<Option<WindowJoinPlan>, NotInterval> {
    let (mut starts, mut ends) = (None, None);
    let (mut left_keys, mut right_keys) = (vec![], vec![]);
    for (l, r) in &j.on {
        match (
            window_role(j.left.schema(), l),
            window_role(j.right.schema(), r),
        ) {
            (Some((a, x)), Some((b, y))) if x == y && x == "start" => starts = Some((a, b)),
            (Some((a, x)), Some((b, y))) if x == y && x == "end" => ends = Some((a, b)),
            _ => {
                left_keys.push(l.clone());
                right_keys.push(r.clone());
            }
        }
    }
    let ((ls, rs), (le, re)) = match (starts, ends) {
        (Some(s), Some(e)) => (s, e),
        // As in Flink (`WindowJoinUtil.satisfyWindowJoin`), equating just
        // one of them makes a regular join.
        _ => return Ok(None),
    };
    let kind = match j.join_type {
        JoinType::Inner => WindowJoinKind::Inner,
        JoinType::Left => WindowJoinKind::Left,
        JoinType::Right => WindowJoinKind::Right,
        JoinType::Full => WindowJoinKind::Full,
        JoinType::LeftSemi => WindowJoinKind::Semi,
        JoinType::LeftAnti => WindowJoinKind::Anti,
        other => {
            return Err(NotInterval {
                message: format!("not supported yet: {other} window joins"),
                help: "write the subquery on the left: L WHERE L.k IN (SELECT ... FROM R ...)",
            })
        }
    };
    Ok(Some(WindowJoinPlan {
        kind,
        left_keys,
        right_keys,
        windows: [(ls, le), (rs, re)],
        null_equal: j.null_equality == NullEquality::NullEqualsNull,
        filter: j.filter.clone(),
    }))
}

const BOUNDS_HELP: &str = "bound both time attributes, e.g. ON a.id = b.id AND b.ts BETWEEN a.ts - INTERVAL '5' MINUTE AND a.ts + INTERVAL '5' MINUTE";

/// The kind of a join of two streams (interval or regular).
pub fn stream_join_kind(t: JoinType) -> Result<JoinKind, NotInterval> {
    match t {
        JoinType::Inner => Ok(JoinKind::Inner),
        JoinType::Left => Ok(JoinKind::Left),
        JoinType::Right => Ok(JoinKind::Right),
        JoinType::Full => Ok(JoinKind::Full),
        other => Err(NotInterval {
            message: format!("not supported yet: {other} joins of streams"),
            help: "use INNER, LEFT, RIGHT or FULL OUTER JOIN",
        }),
    }
}

/// The interval join `j` computes, if it is one.
pub fn interval_join(j: &Join) -> Result<IntervalJoinPlan, NotInterval> {
    let kind = stream_join_kind(j.join_type)?;
    // Time-like columns: time attributes, then a window aggregate's
    // window_end (when its row is emitted: no row of the window can come
    // after the watermark passes it). Not window_start: the rows of a window
    // come long after the watermark passed their start, so an equality on
    // window_start alone is a regular join, as in Flink.
    let times_of = |s: &DFSchema, side: &str| -> Result<Vec<(usize, Column)>, NotInterval> {
        let meta = |i: usize| s.field(i).metadata().clone();
        let mut cols: Vec<usize> = (0..s.fields().len())
            .filter(|&i| meta(i).contains_key(ROWTIME_METADATA_KEY))
            .collect();
        let windows: Vec<usize> = (0..s.fields().len())
            .filter(|&i| {
                !cols.contains(&i) && meta(i).get(WINDOW_METADATA_KEY).is_some_and(|r| r == "end")
            })
            .collect();
        cols.extend(windows);
        if cols.is_empty() {
            return Err(NotInterval {
                message: format!("not supported yet: a join of streams whose condition does not bound the {side} input's time attribute (only interval joins are supported)"),
                help: BOUNDS_HELP,
            });
        }
        Ok(cols
            .into_iter()
            .map(|i| {
                let (q, f) = s.qualified_field(i);
                (i, Column::new(q.cloned(), f.name()))
            })
            .collect())
    };
    let lefts = times_of(j.left.schema(), "left")?;
    let rights = times_of(j.right.schema(), "right")?;
    // The first pair of time columns the condition bounds on both sides
    // (else the first pair, to name in the error).
    let pairs = lefts
        .iter()
        .flat_map(|l| rights.iter().map(move |r| (l, r)));
    let mut first = None;
    let mut chosen = None;
    for ((lt, lcol), (rt, rcol)) in pairs {
        let found = (*lt, lcol, *rt, rcol, bounds_of(j, lcol, rcol));
        if found.4 .0.complete() {
            chosen = Some(found);
            break;
        }
        first.get_or_insert(found);
    }
    let Some((lt, lcol, rt, rcol, (bounds, left_keys, right_keys))) = chosen.or(first) else {
        return Err(NotInterval {
            message: "not supported yet: a join of streams without time attributes".into(),
            help: BOUNDS_HELP,
        });
    };
    if bounds.lower == i64::MIN || bounds.upper == i64::MAX {
        let which = if bounds.lower == i64::MIN && bounds.upper == i64::MAX {
            "no bound"
        } else if bounds.lower == i64::MIN {
            "no lower bound"
        } else {
            "no upper bound"
        };
        return Err(NotInterval {
            message: format!(
                "not supported yet: a join of streams whose condition puts {which} on {} against {} (only interval joins are supported)",
                lcol.flat_name(),
                rcol.flat_name()
            ),
            help: BOUNDS_HELP,
        });
    }
    Ok(IntervalJoinPlan {
        kind,
        left_keys,
        right_keys,
        times: [lt, rt],
        lower: bounds.lower,
        upper: bounds.upper,
        null_equal: j.null_equality == NullEquality::NullEqualsNull,
        filter: j.filter.clone(),
    })
}

/// The bounds `j`'s condition puts on `left - right`, and its keys (the
/// equalities between the sides other than `left = right`).
fn bounds_of(j: &Join, lcol: &Column, rcol: &Column) -> (Bounds, Vec<Expr>, Vec<Expr>) {
    let mut bounds = Bounds::default();
    let mut left_keys = vec![];
    let mut right_keys = vec![];
    for (l, r) in &j.on {
        match (l, r) {
            (Expr::Column(a), Expr::Column(b)) if a == lcol && b == rcol => bounds.add(0, 0),
            _ => {
                left_keys.push(l.clone());
                right_keys.push(r.clone());
            }
        }
    }
    if let Some(f) = &j.filter {
        for c in split_conjunction(f) {
            for (a, op, b) in comparisons(c) {
                let (Some((sa, oa)), Some((sb, ob))) =
                    (time_term(a, lcol, rcol), time_term(b, lcol, rcol))
                else {
                    continue;
                };
                // a + oa  op  b + ob, as left - right  op'  c.
                let (op, c) = match (sa, sb) {
                    (Side::Left, Side::Right) => (op, ob - oa),
                    (Side::Right, Side::Left) => (flip(op), oa - ob),
                    _ => continue,
                };
                match op {
                    Operator::GtEq => bounds.add(c, i64::MAX),
                    Operator::Gt => bounds.add(c.saturating_add(1), i64::MAX),
                    Operator::LtEq => bounds.add(i64::MIN, c),
                    Operator::Lt => bounds.add(i64::MIN, c.saturating_sub(1)),
                    Operator::Eq => bounds.add(c, c),
                    _ => {}
                }
            }
        }
    }
    (bounds, left_keys, right_keys)
}

/// `left.t - right.t` in `[lower, upper]`, narrowed by each condition.
struct Bounds {
    lower: i64,
    upper: i64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            lower: i64::MIN,
            upper: i64::MAX,
        }
    }
}

impl Bounds {
    /// Whether both bounds are set.
    fn complete(&self) -> bool {
        self.lower != i64::MIN && self.upper != i64::MAX
    }

    fn add(&mut self, lower: i64, upper: i64) {
        self.lower = self.lower.max(lower);
        self.upper = self.upper.min(upper);
    }
}

/// The comparisons a conjunct states: `a op b`, and BETWEEN as two.
fn comparisons(e: &Expr) -> Vec<(&Expr, Operator, &Expr)> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => vec![(left, *op, right)],
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => vec![(expr, Operator::GtEq, low), (expr, Operator::LtEq, high)],
        _ => vec![],
    }
}

/// The comparison with its sides swapped.
fn flip(op: Operator) -> Operator {
    match op {
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        other => other,
    }
}

/// A side's time attribute plus a constant interval (milliseconds).
fn time_term(e: &Expr, left: &Column, right: &Column) -> Option<(Side, i64)> {
    match e {
        Expr::Column(c) if c == left => Some((Side::Left, 0)),
        Expr::Column(c) if c == right => Some((Side::Right, 0)),
        Expr::Cast(c) => time_term(&c.expr, left, right),
        Expr::TryCast(c) => time_term(&c.expr, left, right),
        Expr::Alias(a) => time_term(&a.expr, left, right),
        Expr::BinaryExpr(BinaryExpr {
            left: base,
            op: op @ (Operator::Plus | Operator::Minus),
            right: amount,
        }) => {
            let (side, offset) = time_term(base, left, right)?;
            let ms = interval_ms(amount)?;
            let ms = if *op == Operator::Minus { -ms } else { ms };
            Some((side, offset.checked_add(ms)?))
        }
        _ => None,
    }
}

/// A constant interval in milliseconds (no months: their length varies).
fn interval_ms(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else {
        return None;
    };
    const DAY: i64 = 86_400_000;
    match v {
        ScalarValue::IntervalDayTime(Some(v)) => {
            Some(i64::from(v.days) * DAY + i64::from(v.milliseconds))
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Some(i64::from(v.days) * DAY + v.nanoseconds / 1_000_000)
        }
        ScalarValue::DurationMillisecond(Some(v)) => Some(*v),
        ScalarValue::DurationSecond(Some(v)) => v.checked_mul(1000),
        ScalarValue::DurationMicrosecond(Some(v)) => Some(v / 1000),
        ScalarValue::DurationNanosecond(Some(v)) => Some(v / 1_000_000),
        _ => None,
    }
}
