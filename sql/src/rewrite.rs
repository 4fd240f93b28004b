//! Rewrites of the parsed query that bring Flink's SQL to DataFusion:
//! - unaliased select items other than plain columns are named `EXPR$<n>`, as
//!   Flink (Calcite) names them;
//! - `IF(c, a, b)` becomes `CASE WHEN c THEN a ELSE b END`;
//! - `MOD(a, b)` becomes `a % b`;
//! - `FLOOR(ts TO unit)` becomes `date_trunc('unit', ts)`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, CaseWhen, CeilFloorKind, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, Query, SelectItem, SetExpr, TableFactor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;

/// Applies every rewrite to `query`.
pub fn rewrite_query(query: &mut Query) {
    name_select_items(query);
    let _ = visit_expressions_mut(query, |e: &mut Expr| {
        rewrite_expr(e);
        ControlFlow::<()>::Continue(())
    });
}

fn name_select_items(query: &mut Query) {
    if let Some(with) = &mut query.with {
        for cte in &mut with.cte_tables {
            name_select_items(&mut cte.query);
        }
    }
    name_set_expr(&mut query.body);
}

fn name_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for (i, item) in select.projection.iter_mut().enumerate() {
                if let SelectItem::UnnamedExpr(e) = item {
                    if !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                        let expr = e.clone();
                        *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', format!("EXPR${i}")) };
                    }
                }
            }
            for twj in &mut select.from {
                name_table_factor(&mut twj.relation);
                for j in &mut twj.joins {
                    name_table_factor(&mut j.relation);
                }
            }
        }
        SetExpr::Query(q) => name_select_items(q),
        SetExpr::SetOperation { left, right, .. } => {
            name_set_expr(left);
            name_set_expr(right);
        }
        _ => {}
    }
}

fn name_table_factor(t: &mut TableFactor) {
    if let TableFactor::Derived { subquery, .. } = t {
        name_select_items(subquery);
    }
}

fn function_args(f: &datafusion::sql::sqlparser::ast::Function) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = &f.args else { return None };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn parse_expr(text: &str) -> Option<Expr> {
    Parser::new(&GenericDialect {}).try_with_sql(text).ok()?.parse_expr().ok()
}

fn rewrite_expr(e: &mut Expr) {
    match e {
        Expr::Function(f) if f.name.0.len() == 1 => {
            let name = f.name.to_string().to_ascii_uppercase();
            match (name.as_str(), function_args(f)) {
                ("IF", Some(args)) if args.len() == 3 => {
                    let mut args = args.into_iter();
                    let (c, a, b) = (args.next(), args.next(), args.next());
                    if let (Some(c), Some(a), Some(b)) = (c, a, b) {
                        *e = Expr::Case {
                            case_token: AttachedToken::empty(),
                            end_token: AttachedToken::empty(),
                            operand: None,
                            conditions: vec![CaseWhen { condition: c, result: a }],
                            else_result: Some(Box::new(b)),
                        };
                    }
                }
                ("MOD", Some(args)) if args.len() == 2 => {
                    let mut args = args.into_iter();
                    if let (Some(a), Some(b)) = (args.next(), args.next()) {
                        *e = Expr::Nested(Box::new(Expr::BinaryOp {
                            left: Box::new(Expr::Nested(Box::new(a))),
                            op: BinaryOperator::Modulo,
                            right: Box::new(Expr::Nested(Box::new(b))),
                        }));
                    }
                }
                _ => {}
            }
        }
        Expr::Floor { expr, field: CeilFloorKind::DateTimeField(unit) } => {
            let unit = unit.to_string().to_ascii_lowercase();
            let unit = unit.trim_end_matches('s');
            if let Some(new) = parse_expr(&format!("date_trunc('{unit}', ({expr}))")) {
                *e = new;
            }
        }
        _ => {}
    }
}
