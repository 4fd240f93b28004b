//! Beyond Flink: a WHERE that names the alias of a window function of its
//! own SELECT (`SELECT *, ROW_NUMBER() OVER (...) AS rownum FROM t WHERE
//! rownum <= 1`, as the official Nexmark q6 writes it; Flink's validator
//! refuses it with "Column 'rownum' not found"). Standard SQL reads WHERE
//! before the select list, so the planner tries a query as written first;
//! only when that fails is such a SELECT lifted into a derived table, the
//! conditions on the aliases applied outside it:
//! `SELECT * FROM (SELECT *, ROW_NUMBER() ... AS rownum FROM t) WHERE rownum <= 1`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, BinaryOperator, Expr, GroupByExpr, Query, Select, SelectItem, SetExpr,
    TableFactor, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Lifts every such SELECT of `query`; whether one was.
pub fn lift_window_aliases(query: &mut Query) -> bool {
    let mut v = Lift { lifted: 0 };
    let _ = query.visit(&mut v);
    v.lifted > 0
}

struct Lift {
    lifted: usize,
}

impl VisitorMut for Lift {
    type Break = ();

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(sel) = q.body.as_mut() {
            if let Some(body) = lift(sel, self.lifted) {
                *q.body = body;
                self.lifted += 1;
            }
        }
        ControlFlow::Continue(())
    }
}

fn has_window(e: &Expr) -> bool {
    visit_expressions(e, |x| match x {
        Expr::Function(f) if f.over.is_some() => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn names_any(e: &Expr, aliases: &[String]) -> bool {
    visit_expressions(e, |x| match x {
        Expr::Identifier(id) if aliases.contains(&id.value) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        other => out.push(other),
    }
}

fn and(es: Vec<Expr>) -> Option<Expr> {
    es.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    })
}

/// `sel` with its conditions on window aliases outside, if it has any.
fn lift(sel: &Select, n: usize) -> Option<SetExpr> {
    let selection = sel.selection.clone()?;
    let grouped = !matches!(&sel.group_by, GroupByExpr::Expressions(v, _) if v.is_empty());
    if grouped || sel.having.is_some() {
        return None;
    }
    let aliases: Vec<String> = sel
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } if has_window(expr) => {
                Some(alias.value.clone())
            }
            _ => None,
        })
        .collect();
    if aliases.is_empty() {
        return None;
    }
    let mut all = vec![];
    conjuncts(selection, &mut all);
    let (outer, inner): (Vec<Expr>, Vec<Expr>) =
        all.into_iter().partition(|c| names_any(c, &aliases));
    let outer = and(outer)?;
    let mut inner_sel = sel.clone();
    inner_sel.selection = and(inner);
    let template = format!("SELECT * FROM (SELECT 1) AS __vigil_where_{n} WHERE TRUE");
    let parsed = Parser::new(&GenericDialect {})
        .try_with_sql(&template)
        .ok()?
        .parse_query()
        .ok()?;
    let SetExpr::Select(mut outer_sel) = *parsed.body else {
        return None;
    };
    outer_sel.selection = Some(outer);
    let TableFactor::Derived { subquery, .. } = &mut outer_sel.from.first_mut()?.relation else {
        return None;
    };
    *subquery.body = SetExpr::Select(Box::new(inner_sel));
    Some(SetExpr::Select(outer_sel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifted(sql: &str) -> String {
        let mut q = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_query()
            .unwrap();
        lift_window_aliases(&mut q);
        q.to_string()
    }

    #[test]
    fn a_where_on_a_window_alias_moves_outside_the_select() {
        assert_eq!(
            lifted("SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rownum FROM t WHERE rownum <= 1 AND v > 0"),
            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rownum FROM t WHERE v > 0) AS __vigil_where_0 WHERE rownum <= 1"
        );
        // Nothing to lift: a WHERE on columns only, or no window alias.
        let plain = "SELECT a, b AS rownum FROM t WHERE rownum > 1";
        assert_eq!(lifted(plain), plain);
    }
}
