//! `JOIN t FOR SYSTEM_TIME AS OF o.time AS x`, which the SQL parser does not
//! read: the script splitter turns it into `JOIN <marker> AS x`, a name
//! that says which table or view and which time ([`marker`]); before a
//! query is planned, each marker it names is registered as a view of that
//! table or view under an [`AsOfNode`]. The translator then finds the node
//! on the right of a join: over a processing time (`PROCTIME()` or a column
//! it computed) a lookup join reads the table as it is when each row
//! arrives; over an event time attribute, a temporal join joins each row
//! with the version of the versioned table at the row's time.
//!
//! So that the planner keeps the `AS OF` column of the other side (which
//! the query may not select), [`guard_conditions`] adds
//! `AND as_of_guard(o.time, x.rowtime)` to the join's ON condition, the
//! versioned table's time attribute on the right: TRUE, and removed again
//! by the translator ([`strip_guards`]).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchemaRef, Result as DFResult, TableReference};
use datafusion::datasource::ViewTable;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// What every marker starts with.
const PREFIX: &str = "__as_of__";
/// Between the time column and the table in a marker.
const SEPARATOR: char = '\u{1f}';

/// The marker of `table` read as of `time` (a column of the other side, as
/// written: `o.time`; empty for `PROCTIME()` or another expression:
/// processing time).
pub fn marker(time: &str, table: &str) -> String {
    format!("{PREFIX}{time}{SEPARATOR}{table}")
}

/// The time column and the table a marker names.
pub fn parse_marker(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix(PREFIX)?.split_once(SEPARATOR)
}

/// The table or view of a join read `FOR SYSTEM_TIME AS OF` a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsOfNode {
    /// The table or view.
    pub input: LogicalPlan,
    /// The other side's time column named by `AS OF`, as written (`o.t`);
    /// empty for `PROCTIME()` (processing time).
    pub time: String,
}

impl AsOfNode {
    /// The name of the `AS OF` column (its path's last part).
    pub fn column(&self) -> &str {
        self.time.rsplit('.').next().unwrap_or("")
    }

    /// Whether the `AS OF` column is an event time attribute of the join's
    /// other side, `left` (otherwise the table is read by processing time:
    /// a lookup join).
    pub fn is_event_time(&self, left: &datafusion::common::DFSchema) -> bool {
        let column = self.column();
        !column.is_empty()
            && left.fields().iter().any(|f| {
                f.name() == column
                    && f.metadata()
                        .contains_key(vigil_engine::window::ROWTIME_METADATA_KEY)
                    && !f
                        .metadata()
                        .contains_key(vigil_engine::window::PROCTIME_METADATA_KEY)
            })
    }
}

impl PartialOrd for AsOfNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self == other).then_some(Ordering::Equal)
    }
}

impl UserDefinedLogicalNodeCore for AsOfNode {
    fn name(&self) -> &str {
        "AsOf"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "AsOf: {}", self.time)
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> DFResult<Self> {
        Ok(Self {
            input: inputs.pop().unwrap_or_else(|| self.input.clone()),
            time: self.time.clone(),
        })
    }
}

/// The node under `plan` (through filters, projections and aliases), and the
/// filters and projections above it, top first.
pub fn as_of_node(plan: &LogicalPlan) -> Option<(&AsOfNode, Vec<&LogicalPlan>)> {
    find_below(plan, &|p| match p {
        LogicalPlan::Extension(e) => e.node.as_any().downcast_ref::<AsOfNode>(),
        _ => None,
    })
}

/// The first node under `plan` that `pick` takes, going down through
/// filters, projections and aliases, and the filters and projections above
/// it, top first.
pub fn find_below<'a, T>(
    plan: &'a LogicalPlan,
    pick: &dyn Fn(&'a LogicalPlan) -> Option<T>,
) -> Option<(T, Vec<&'a LogicalPlan>)> {
    let mut above = vec![];
    let mut at = plan;
    loop {
        if let Some(found) = pick(at) {
            return Some((found, above));
        }
        match at {
            LogicalPlan::Filter(f) => {
                above.push(at);
                at = &f.input;
            }
            LogicalPlan::Projection(p) => {
                above.push(at);
                at = &p.input;
            }
            LogicalPlan::SubqueryAlias(a) => at = &a.input,
            _ => return None,
        }
    }
}

/// Registers, for each marker among `tokens` not registered yet, a view of
/// its table or view under an [`AsOfNode`]. An unknown table is left to the
/// planner, which reports it where the query names it.
pub async fn register_markers(ctx: &SessionContext, tokens: &[TokenWithSpan]) -> DFResult<()> {
    for t in tokens {
        let Token::Word(w) = &t.token else { continue };
        // Names are read as written (the planner does not fold case).
        let name = w.value.clone();
        let Some((time, table)) = parse_marker(&name) else {
            continue;
        };
        let reference = TableReference::bare(name.clone());
        if ctx.table_exist(reference.clone())? {
            continue;
        }
        let Ok(input) = ctx.table(TableReference::bare(table)).await else {
            continue;
        };
        let node = AsOfNode {
            input: input.into_unoptimized_plan(),
            time: time.to_string(),
        };
        let plan = LogicalPlan::Extension(Extension {
            node: Arc::new(node),
        });
        let view: Arc<dyn TableProvider> = Arc::new(ViewTable::new(plan, None));
        ctx.register_table(reference, view)?;
    }
    Ok(())
}

/// The name of the guard function (see the module documentation).
pub const GUARD: &str = "as_of_guard";

/// Keywords that end a join's ON condition.
const AFTER_ON: &[&str] = &[
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "FULL",
    "CROSS",
    "WHERE",
    "GROUP",
    "HAVING",
    "ORDER",
    "LIMIT",
    "UNION",
    "WINDOW",
    "EXCEPT",
    "INTERSECT",
    "QUALIFY",
];

fn is_kw(t: &TokenWithSpan, kw: &str) -> bool {
    matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn word_token(value: &str, like: &TokenWithSpan) -> TokenWithSpan {
    TokenWithSpan::new(
        Token::Word(datafusion::sql::sqlparser::tokenizer::Word {
            value: value.to_string(),
            quote_style: None,
            keyword: datafusion::sql::sqlparser::keywords::Keyword::NoKeyword,
        }),
        like.span,
    )
}

/// Adds the guard to the ON condition after each marker of an event time
/// (`rowtime_of(marker)` names the versioned side's time attribute; a
/// marker it has none for is left alone).
pub fn guard_conditions(
    tokens: &[TokenWithSpan],
    rowtime_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<TokenWithSpan> {
    let mut out = tokens.to_vec();
    let mut m = 0;
    while m < out.len() {
        let Token::Word(w) = &out[m].token else {
            m += 1;
            continue;
        };
        let Some((time, _)) = parse_marker(&w.value) else {
            m += 1;
            continue;
        };
        let Some(rowtime) = (!time.is_empty()).then(|| rowtime_of(&w.value)).flatten() else {
            m += 1;
            continue;
        };
        let time = time.to_string();
        // The right side's name: its alias, or the marker itself.
        let mut j = m + 1;
        let alias = if out.get(j).is_some_and(|t| is_kw(t, "AS")) {
            j += 2;
            out.get(j - 1).cloned()
        } else if out
            .get(j)
            .is_some_and(|t| matches!(&t.token, Token::Word(_)) && !is_kw(t, "ON"))
        {
            j += 1;
            out.get(j - 1).cloned()
        } else {
            Some(out[m].clone())
        };
        let (Some(alias), true) = (alias, out.get(j).is_some_and(|t| is_kw(t, "ON"))) else {
            m += 1;
            continue;
        };
        let start = j + 1;
        let mut depth = 0i32;
        let mut end = out.len();
        for (k, t) in out.iter().enumerate().skip(start) {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => {
                    end = k;
                    break;
                }
                Token::RParen => depth -= 1,
                _ if depth == 0 && AFTER_ON.iter().any(|kw| is_kw(t, kw)) => {
                    end = k;
                    break;
                }
                _ => {}
            }
        }
        let at = &out[m];
        let tok = |t: Token| TokenWithSpan::new(t, at.span);
        let mut guard = vec![tok(Token::LParen)];
        guard.extend_from_slice(&out[start..end]);
        guard.extend([
            tok(Token::RParen),
            TokenWithSpan::new(
                Token::Word(datafusion::sql::sqlparser::tokenizer::Word {
                    value: "AND".into(),
                    quote_style: None,
                    keyword: datafusion::sql::sqlparser::keywords::Keyword::AND,
                }),
                at.span,
            ),
            word_token(GUARD, at),
            tok(Token::LParen),
        ]);
        for (k, part) in time.split('.').enumerate() {
            if k > 0 {
                guard.push(tok(Token::Period));
            }
            guard.push(word_token(part, at));
        }
        guard.extend([
            tok(Token::Comma),
            alias,
            tok(Token::Period),
            word_token(&rowtime, at),
            tok(Token::RParen),
        ]);
        let added = guard.len();
        out.splice(start..end, guard);
        m = start + added;
    }
    out
}

/// Adds the guards of the markers among `tokens` (see [`guard_conditions`]),
/// the versioned side's time attribute read from the registered marker.
pub async fn guard_markers(ctx: &SessionContext, tokens: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    let mut rowtimes = std::collections::HashMap::new();
    for t in tokens {
        let Token::Word(w) = &t.token else { continue };
        if parse_marker(&w.value).is_none() || rowtimes.contains_key(&w.value) {
            continue;
        }
        let rowtime = match ctx.table(TableReference::bare(w.value.clone())).await {
            Ok(df) => df
                .schema()
                .fields()
                .iter()
                .find(|f| {
                    f.metadata()
                        .contains_key(vigil_engine::window::ROWTIME_METADATA_KEY)
                })
                .map(|f| f.name().clone()),
            Err(_) => None,
        };
        rowtimes.insert(w.value.clone(), rowtime);
    }
    guard_conditions(tokens, &|m| rowtimes.get(m).cloned().flatten())
}

/// `filter` without its guard conjuncts (None if nothing else is left), and
/// its held conditions as written.
pub fn strip_guards(filter: Option<&Expr>) -> Option<Expr> {
    let f = filter?;
    let kept: Vec<Expr> = datafusion::logical_expr::utils::split_conjunction(f)
        .into_iter()
        .filter(|e| !matches!(e, Expr::ScalarFunction(s) if s.name() == GUARD))
        .map(|e| match e {
            Expr::ScalarFunction(s) if s.name() == HOLD && !s.args.is_empty() => s.args[0].clone(),
            other => other.clone(),
        })
        .collect();
    datafusion::logical_expr::utils::conjunction(kept)
}

/// The name of the function that holds a condition on the versioned side in
/// the join (see [`HoldVersionConditions`]).
pub const HOLD: &str = "as_of_hold";

/// Keeps the conditions of an event-time `FOR SYSTEM_TIME AS OF` join's ON clause that
/// read only the table's side in the join: the optimizer would push them
/// into that side, which for a temporal join filters the versions before
/// one is chosen, where Flink checks the chosen version (a row whose version
/// fails them gets NULLs under LEFT JOIN). Each becomes
/// `as_of_hold(condition, <a column of the other side>)`, which the
/// translator reads back as the condition.
#[derive(Debug, Default)]
pub struct HoldVersionConditions;

impl datafusion::optimizer::AnalyzerRule for HoldVersionConditions {
    fn analyze(
        &self,
        plan: LogicalPlan,
        _config: &datafusion::common::config::ConfigOptions,
    ) -> DFResult<LogicalPlan> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        plan.transform_up(|p| {
            let LogicalPlan::Join(mut j) = p else {
                return Ok(Transformed::no(p));
            };
            // Event time only: a lookup join filters the table's rows before
            // joining them, as Flink's does.
            let event_time =
                as_of_node(&j.right).is_some_and(|(n, _)| n.is_event_time(j.left.schema()));
            let (Some(filter), true) = (j.filter.clone(), event_time) else {
                return Ok(Transformed::no(LogicalPlan::Join(j)));
            };
            let Some((q, f)) = j.left.schema().iter().next() else {
                return Ok(Transformed::no(LogicalPlan::Join(j)));
            };
            let anchor = Expr::Column(datafusion::common::Column::new(q.cloned(), f.name()));
            let (left, right) = (j.left.schema().clone(), j.right.schema().clone());
            let hold = datafusion::logical_expr::ScalarUDF::from(AsOfGuard::hold());
            let mut changed = false;
            let conjuncts: Vec<Expr> = datafusion::logical_expr::utils::split_conjunction(&filter)
                .into_iter()
                .map(|c| {
                    let refs = c.column_refs();
                    let right_only = !refs.is_empty()
                        && refs
                            .iter()
                            .all(|col| right.has_column(col) && !left.has_column(col));
                    if right_only {
                        changed = true;
                        hold.call(vec![c.clone(), anchor.clone()])
                    } else {
                        c.clone()
                    }
                })
                .collect();
            if !changed {
                return Ok(Transformed::no(LogicalPlan::Join(j)));
            }
            j.filter = datafusion::logical_expr::utils::conjunction(conjuncts);
            Ok(Transformed::yes(LogicalPlan::Join(j)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "hold_version_conditions"
    }
}

/// `as_of_guard(a, b)`: TRUE (see the module documentation); or
/// `as_of_hold(condition, anchor)`: the condition.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AsOfGuard {
    signature: datafusion::logical_expr::Signature,
    hold: bool,
}

impl Default for AsOfGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl AsOfGuard {
    /// The guard.
    pub fn new() -> Self {
        Self {
            signature: datafusion::logical_expr::Signature::any(
                2,
                datafusion::logical_expr::Volatility::Immutable,
            ),
            hold: false,
        }
    }

    /// The hold.
    pub fn hold() -> Self {
        Self {
            hold: true,
            ..Self::new()
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for AsOfGuard {
    fn name(&self) -> &str {
        if self.hold {
            HOLD
        } else {
            GUARD
        }
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        _args: &[datafusion::arrow::datatypes::DataType],
    ) -> DFResult<datafusion::arrow::datatypes::DataType> {
        Ok(datafusion::arrow::datatypes::DataType::Boolean)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DFResult<datafusion::logical_expr::ColumnarValue> {
        match args.args.into_iter().next() {
            Some(condition) if self.hold => Ok(condition),
            _ => Ok(datafusion::logical_expr::ColumnarValue::Scalar(
                datafusion::common::ScalarValue::Boolean(Some(true)),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_time_join_gets_a_guard_on_both_times() {
        let m = marker("o.ts", "rates");
        let sql =
            format!("SELECT 1 FROM o JOIN `{m}` AS r ON o.k = r.k OR o.j = r.j WHERE o.x > 1");
        let st = crate::script::split_statements(&sql).expect("tokens");
        let out = guard_conditions(&st[0].tokens, &|_| Some("updated".into()));
        let text: Vec<String> = out.iter().map(|t| t.token.to_string()).collect();
        assert_eq!(
            text.join(" "),
            format!("SELECT 1 FROM o JOIN `{m}` AS r ON ( o . k = r . k OR o . j = r . j ) AND as_of_guard ( o . ts , r . updated ) WHERE o . x > 1")
        );
        // Processing time: left alone.
        let p = marker("", "users");
        let sql = format!("SELECT 1 FROM o JOIN `{p}` u ON o.k = u.k");
        let st = crate::script::split_statements(&sql).expect("tokens");
        assert_eq!(
            guard_conditions(&st[0].tokens, &|_| Some("t".into())),
            st[0].tokens
        );
    }

    #[test]
    fn a_marker_names_its_time_and_table() {
        let m = marker("order_time", "Rates");
        assert_eq!(parse_marker(&m), Some(("order_time", "Rates")));
        assert_eq!(parse_marker(&marker("", "users")), Some(("", "users")));
        assert_eq!(parse_marker("rates"), None);
    }
}
