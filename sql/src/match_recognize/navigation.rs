//! Rewrites a DEFINE condition or a MEASURES expression into navigation
//! terms (`A.price` -> `LAST(A.price, 0)`, `FIRST(..)`, `PREV(..)`, `SUM(A.x)`,
//! `MATCH_ROWTIME()`, ...) and a residual expression over them, which
//! DataFusion plans like any other expression.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, Value, VisitMut,
    VisitorMut,
};
use vigil_engine::pattern::nav::{AggFunc, Nav};

use super::plan::FINAL_PREFIX;
use crate::error::{Pos, SqlError};

/// A navigation term before planning: which rows, and the row-level
/// expression read there (`None` for COUNT(*) and the match functions).
#[derive(Debug, Clone)]
pub struct RawTerm {
    /// Which rows.
    pub nav: Nav,
    /// What is read at those rows, pattern-variable prefixes removed.
    pub inner: Option<Expr>,
}

/// Names pattern variables (and SUBSET union variables) by index set.
pub struct VarScope<'a> {
    /// Variable names by index.
    pub vars: &'a [String],
    /// Union variables and their members.
    pub subsets: &'a HashMap<String, Vec<usize>>,
}

impl VarScope<'_> {
    fn lookup(&self, name: &str) -> Option<Vec<usize>> {
        if let Some(i) = self.vars.iter().position(|v| v == name) {
            return Some(vec![i]);
        }
        self.subsets.get(name).cloned()
    }
}

/// A call's name in upper case, and whether FINAL preceded it (folded into
/// the name by the planner as `__FINAL_<NAME>`).
fn call_name(f: &datafusion::sql::sqlparser::ast::Function) -> (String, bool) {
    let name = f.name.to_string().to_ascii_uppercase();
    match name.strip_prefix(FINAL_PREFIX) {
        Some(n) => (n.to_string(), true),
        None => (name, false),
    }
}

/// `nav` read over the whole match when `fin`.
fn finalized(nav: Nav, fin: bool) -> Nav {
    if fin {
        Nav::Final(Box::new(nav))
    } else {
        nav
    }
}

/// The placeholder column a term becomes.
pub fn term_column(i: usize) -> String {
    format!("__nav_{i}")
}

struct Rewriter<'a> {
    scope: &'a VarScope<'a>,
    terms: Vec<RawTerm>,
    pos: Pos,
    error: Option<SqlError>,
}

fn args(f: &datafusion::sql::sqlparser::ast::Function) -> Option<Vec<FunctionArgExpr>> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(e) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        FunctionArguments::None => Some(vec![]),
        FunctionArguments::Subquery(_) => None,
    }
}

fn offset_of(e: Option<&FunctionArgExpr>, default: u64) -> Option<u64> {
    match e {
        None => Some(default),
        Some(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

impl Rewriter<'_> {
    fn fail(&mut self, message: String) -> ControlFlow<()> {
        self.error = Some(SqlError::at(self.pos, message));
        ControlFlow::Break(())
    }

    /// Strips variable prefixes from `e`, returning the variables it named
    /// (empty: the universal variable).
    fn strip(&self, e: &mut Expr) -> Result<Vec<usize>, String> {
        let mut found: Vec<Vec<usize>> = vec![];
        let mut bad = None;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(e, |x: &mut Expr| {
            if let Expr::CompoundIdentifier(parts) = x {
                if parts.len() == 2 {
                    if let Some(vars) = self.scope.lookup(&parts[0].value) {
                        if !found.contains(&vars) {
                            found.push(vars);
                        }
                        *x = Expr::Identifier(parts[1].clone());
                    }
                }
            }
            if let Expr::Function(f) = x {
                let (name, _) = call_name(f);
                if matches!(name.as_str(), "FIRST" | "LAST" | "PREV" | "NEXT") {
                    bad = Some(format!("{name} cannot be nested inside this navigation"));
                }
            }
            ControlFlow::<()>::Continue(())
        });
        if let Some(b) = bad {
            return Err(b);
        }
        match found.len() {
            0 => Ok(vec![]),
            1 => Ok(found.remove(0)),
            _ => Err("Aggregation must be applied to a single pattern variable; a navigation or aggregate reads one variable, e.g. SUM(A.price) + SUM(B.tax)".into()),
        }
    }

    fn push(&mut self, term: RawTerm) -> Expr {
        self.terms.push(term);
        Expr::Identifier(Ident::new(term_column(self.terms.len() - 1)))
    }

    /// The navigation of a FIRST/LAST call or a plain reference, for PREV/NEXT.
    fn base_nav(&self, e: &FunctionArgExpr) -> Result<(Nav, Expr), String> {
        let FunctionArgExpr::Expr(e) = e else {
            return Err("PREV and NEXT take an expression".into());
        };
        if let Expr::Function(f) = e {
            let (name, fin) = call_name(f);
            if name == "FIRST" || name == "LAST" {
                let a = args(f).ok_or("FIRST/LAST take positional arguments")?;
                let Some(FunctionArgExpr::Expr(inner)) = a.first() else {
                    return Err(format!("{name} takes an expression"));
                };
                let mut inner = inner.clone();
                let vars = self.strip(&mut inner)?;
                let offset = offset_of(a.get(1), 0)
                    .ok_or("the offset must be a non-negative integer literal")?;
                let nav = if name == "FIRST" {
                    Nav::First { vars, offset }
                } else {
                    Nav::Last { vars, offset }
                };
                return Ok((finalized(nav, fin), inner));
            }
        }
        let mut inner = e.clone();
        let vars = self.strip(&mut inner)?;
        Ok((Nav::Last { vars, offset: 0 }, inner))
    }

    fn function(
        &mut self,
        f: &datafusion::sql::sqlparser::ast::Function,
    ) -> Result<Option<RawTerm>, String> {
        let term = self.plain_function(f)?;
        let (_, fin) = call_name(f);
        Ok(term.map(|t| RawTerm {
            nav: finalized(t.nav, fin),
            inner: t.inner,
        }))
    }

    /// A navigation or match function call, FINAL aside.
    fn plain_function(
        &mut self,
        f: &datafusion::sql::sqlparser::ast::Function,
    ) -> Result<Option<RawTerm>, String> {
        let (name, _) = call_name(f);
        let a = match args(f) {
            Some(a) => a,
            None => return Ok(None),
        };
        let agg = match name.as_str() {
            "SUM" => Some(AggFunc::Sum),
            "COUNT" => Some(AggFunc::Count),
            "AVG" => Some(AggFunc::Avg),
            "MIN" => Some(AggFunc::Min),
            "MAX" => Some(AggFunc::Max),
            _ => None,
        };
        if let Some(func) = agg {
            if let FunctionArguments::List(l) = &f.args {
                if l.duplicate_treatment.is_some() {
                    return Err(format!(
                        "{name}(DISTINCT ...) is not supported in MATCH_RECOGNIZE"
                    ));
                }
            }
            return match a.first() {
                Some(FunctionArgExpr::Wildcard | FunctionArgExpr::WildcardWithOptions(_))
                | None => Ok(Some(RawTerm {
                    nav: Nav::Agg { func, vars: vec![] },
                    inner: None,
                })),
                Some(FunctionArgExpr::QualifiedWildcard(v)) => {
                    let vars = self
                        .scope
                        .lookup(&v.to_string())
                        .ok_or_else(|| format!("'{v}' is not a pattern variable"))?;
                    Ok(Some(RawTerm {
                        nav: Nav::Agg { func, vars },
                        inner: None,
                    }))
                }
                Some(FunctionArgExpr::Expr(e)) => {
                    let mut inner = e.clone();
                    let vars = self.strip(&mut inner)?;
                    Ok(Some(RawTerm {
                        nav: Nav::Agg { func, vars },
                        inner: Some(inner),
                    }))
                }
            };
        }
        match name.as_str() {
            "FIRST" | "LAST" => {
                let mut plain = f.clone();
                plain.name = ObjectName::from(vec![Ident::new(name.as_str())]);
                let (nav, inner) = self.base_nav(&FunctionArgExpr::Expr(Expr::Function(plain)))?;
                Ok(Some(RawTerm {
                    nav,
                    inner: Some(inner),
                }))
            }
            "PREV" | "NEXT" => {
                let base = a.first().ok_or(format!("{name} takes an expression"))?;
                let (nav, inner) = self.base_nav(base)?;
                let n = offset_of(a.get(1), 1)
                    .ok_or("the offset must be a non-negative integer literal")?
                    as i64;
                Ok(Some(RawTerm {
                    nav: Nav::Physical {
                        base: Box::new(nav),
                        offset: if name == "PREV" { -n } else { n },
                    },
                    inner: Some(inner),
                }))
            }
            "MATCH_ROWTIME" => Ok(Some(RawTerm {
                nav: Nav::MatchRowtime,
                inner: None,
            })),
            "CLASSIFIER" => {
                let vars = match a.first() {
                    None => vec![],
                    Some(arg) => {
                        let v = arg.to_string();
                        self.scope
                            .lookup(&v)
                            .ok_or_else(|| format!("'{v}' is not a pattern variable"))?
                    }
                };
                Ok(Some(RawTerm {
                    nav: Nav::Classifier { vars },
                    inner: None,
                }))
            }
            "MATCH_NUMBER" => Ok(Some(RawTerm {
                nav: Nav::MatchNumber,
                inner: None,
            })),
            "MATCH_TIMED_OUT" => Ok(Some(RawTerm {
                nav: Nav::TimedOut,
                inner: None,
            })),
            _ => Ok(None),
        }
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let term = match expr {
            Expr::Function(f) => match self.function(f) {
                Ok(t) => t,
                Err(m) => return self.fail(m),
            },
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                self.scope.lookup(&parts[0].value).map(|vars| RawTerm {
                    nav: Nav::Last { vars, offset: 0 },
                    inner: Some(Expr::Identifier(parts[1].clone())),
                })
            }
            Expr::Identifier(id) if !id.value.starts_with("__nav_") => Some(RawTerm {
                nav: Nav::Last {
                    vars: vec![],
                    offset: 0,
                },
                inner: Some(Expr::Identifier(id.clone())),
            }),
            _ => None,
        };
        if let Some(t) = term {
            *expr = self.push(t);
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites `expr` in place into a residual over `__nav_<i>` columns and
/// returns the terms.
pub fn extract_terms(
    expr: &mut Expr,
    scope: &VarScope<'_>,
    pos: Pos,
) -> Result<Vec<RawTerm>, SqlError> {
    let mut r = Rewriter {
        scope,
        terms: vec![],
        pos,
        error: None,
    };
    let _ = expr.visit(&mut r);
    match r.error {
        Some(e) => Err(e),
        None => Ok(r.terms),
    }
}
