//! The logical plan node of a MATCH_RECOGNIZE: its input, the expressions
//! over the input (partition keys, time, order keys, and the row-level
//! expressions navigation reads), and the navigation expressions of DEFINE
//! and MEASURES over their own small schemas.

use std::cmp::Ordering;
use std::fmt;

use datafusion::common::{DFSchemaRef, Result as DFResult};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use vigil_engine::pattern::ast::Pattern;
use vigil_engine::pattern::matcher::Skip;
use vigil_engine::pattern::nav::NavTerm;

/// A DEFINE condition or MEASURES expression over navigation terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogicalNav {
    /// The expression over the `__nav_<i>` columns of `schema`.
    pub expr: Expr,
    /// The terms, one per column.
    pub terms: Vec<NavTerm>,
    /// The terms' schema.
    pub schema: DFSchemaRef,
}

/// What `ALL ROWS PER MATCH` outputs besides the measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllRowsPlan {
    /// Empty matches output a row (not `OMIT EMPTY MATCHES`).
    pub show_empty: bool,
    /// `WITH UNMATCHED ROWS`.
    pub unmatched: bool,
    /// Variables only inside `{- -}`, as bits: their rows are not output.
    pub excluded: u64,
    /// The ORDER BY columns, by index in the input.
    pub order_columns: Vec<usize>,
    /// The other input columns (neither PARTITION BY nor ORDER BY), in order.
    pub rest_columns: Vec<usize>,
}

/// `input MATCH_RECOGNIZE (...)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchRecognizeNode {
    /// The input.
    pub input: LogicalPlan,
    /// PARTITION BY.
    pub partition_by: Vec<Expr>,
    /// The time attribute ordering the rows.
    pub time: Expr,
    /// Further ORDER BY keys, descending or not.
    pub order_by: Vec<(Expr, bool)>,
    /// Row-level expressions navigation reads.
    pub derived: Vec<Expr>,
    /// Pattern variables by index.
    pub vars: Vec<String>,
    /// DEFINE per variable.
    pub defines: Vec<Option<LogicalNav>>,
    /// MEASURES.
    pub measures: Vec<LogicalNav>,
    /// The pattern.
    pub pattern: Pattern,
    /// After-match skip.
    pub skip: Skip,
    /// WITHIN in milliseconds.
    pub within: Option<i64>,
    /// The variable of a trailing `NOT v` (absence); `pattern` is what comes
    /// before it.
    pub absent: Option<usize>,
    /// Report partial matches WITHIN expires (`WITH TIMEOUTS`).
    pub timeouts: bool,
    /// Rows PREV may reach before a match.
    pub lookback: u64,
    /// Rows NEXT in MEASURES may reach after a match.
    pub lookahead: u64,
    /// `ALL ROWS PER MATCH` (`None`: ONE ROW PER MATCH).
    pub all_rows: Option<AllRowsPlan>,
    /// ONE ROW PER MATCH: partition columns, then measures; ALL ROWS PER
    /// MATCH: partition columns, ORDER BY columns, measures, other columns.
    pub schema: DFSchemaRef,
}

impl PartialOrd for MatchRecognizeNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self == other).then_some(Ordering::Equal)
    }
}

impl UserDefinedLogicalNodeCore for MatchRecognizeNode {
    fn name(&self) -> &str {
        "MatchRecognize"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        let mut v = self.partition_by.clone();
        v.push(self.time.clone());
        v.extend(self.order_by.iter().map(|(e, _)| e.clone()));
        v.extend(self.derived.iter().cloned());
        v
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "MatchRecognize: pattern {}{} over [{}]",
            self.pattern,
            self.absent
                .map(|v| format!(" NOT {}", self.vars.get(v).map_or("?", String::as_str)))
                .unwrap_or_default(),
            self.vars.join(", ")
        )
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> DFResult<Self> {
        let mut node = self.clone();
        if let Some(input) = inputs.pop() {
            node.input = input;
        }
        let expected = self.partition_by.len() + 1 + self.order_by.len() + self.derived.len();
        if exprs.len() == expected {
            let mut it = exprs.into_iter();
            for p in node.partition_by.iter_mut() {
                *p = it.next().unwrap_or_else(|| p.clone());
            }
            node.time = it.next().unwrap_or_else(|| node.time.clone());
            for (o, _) in node.order_by.iter_mut() {
                *o = it.next().unwrap_or_else(|| o.clone());
            }
            for d in node.derived.iter_mut() {
                *d = it.next().unwrap_or_else(|| d.clone());
            }
        }
        Ok(node)
    }
}
