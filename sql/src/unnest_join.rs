//! Flink's `t CROSS JOIN UNNEST(t.tags) [WITH ORDINALITY] AS x(tag [, pos])`
//! (also `t, UNNEST(...)` and `t LEFT JOIN UNNEST(...) ON TRUE`) becomes a
//! derived table that unnests in its select list, which the planner turns
//! into an Unnest operator:
//!
//! `FROM (SELECT t.*, unnest(t.tags) AS tag [, unnest(generate_series(1,
//! cardinality(t.tags))) AS pos] FROM t) AS t`, and `x.tag` becomes `t.tag`.
//!
//! A LEFT JOIN keeps a row whose array is NULL or empty once, its element
//! (and position) NULL, by unnesting a one-NULL array for it.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, Ident, JoinConstraint, JoinOperator, Query, Select, SetExpr,
    TableAlias, TableFactor, Value,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Pos, Result, SqlError};

const HELP: &str = "write FROM t CROSS JOIN UNNEST(t.array_column) AS x(element), or LEFT JOIN UNNEST(...) AS x(element) ON TRUE";

/// Rewrites every UNNEST join of `query` (see the module documentation).
pub fn rewrite_unnest_joins(query: &mut Query, pos: Pos) -> Result<()> {
    if let Some(with) = &mut query.with {
        for cte in &mut with.cte_tables {
            rewrite_unnest_joins(&mut cte.query, pos)?;
        }
    }
    set_expr(&mut query.body, pos)
}

fn set_expr(body: &mut SetExpr, pos: Pos) -> Result<()> {
    match body {
        SetExpr::Select(select) => {
            for twj in &mut select.from {
                for t in std::iter::once(&mut twj.relation)
                    .chain(twj.joins.iter_mut().map(|j| &mut j.relation))
                {
                    if let TableFactor::Derived { subquery, .. } = t {
                        rewrite_unnest_joins(subquery, pos)?;
                    }
                }
            }
            rewrite_select(select, pos)
        }
        SetExpr::Query(q) => rewrite_unnest_joins(q, pos),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr(left, pos)?;
            set_expr(right, pos)
        }
        _ => Ok(()),
    }
}

/// Whether a join constraint is `ON TRUE`.
fn on_true(c: &JoinConstraint) -> bool {
    matches!(c, JoinConstraint::On(Expr::Value(v)) if v.value == Value::Boolean(true))
}

fn rewrite_select(select: &mut Select, pos: Pos) -> Result<()> {
    // `t, UNNEST(...)`: the second FROM item joins the first.
    if select.from.len() == 2
        && select.from[1].joins.is_empty()
        && matches!(select.from[1].relation, TableFactor::UNNEST { .. })
    {
        let unnest = select.from.remove(1).relation;
        let (keep_empty, relation) = (false, unnest);
        return unnest_into(select, relation, keep_empty, pos);
    }
    let items = select.from.len();
    let Some(twj) = select.from.first_mut() else {
        return Ok(());
    };
    let Some(k) = twj
        .joins
        .iter()
        .position(|j| matches!(j.relation, TableFactor::UNNEST { .. }))
    else {
        return Ok(());
    };
    if k != 0 || twj.joins.len() != 1 || items != 1 {
        return Err(
            SqlError::unsupported(pos, "UNNEST joined to more than one table")
                .with_help("define a view for the other joins and unnest from it"),
        );
    }
    let join = twj.joins.remove(0);
    let keep_empty = match &join.join_operator {
        JoinOperator::CrossJoin(JoinConstraint::None) => false,
        JoinOperator::Join(c) | JoinOperator::Inner(c) if on_true(c) => false,
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) if on_true(c) => true,
        _ => {
            return Err(SqlError::unsupported(pos, "this join with UNNEST").with_help(HELP));
        }
    };
    unnest_into(select, join.relation, keep_empty, pos)
}

/// Replaces `select`'s single FROM relation by the derived table that
/// unnests `unnest` over it.
fn unnest_into(select: &mut Select, unnest: TableFactor, keep_empty: bool, pos: Pos) -> Result<()> {
    let TableFactor::UNNEST {
        alias,
        array_exprs,
        with_offset,
        with_ordinality,
        ..
    } = unnest
    else {
        return Ok(());
    };
    let [array] = array_exprs.as_slice() else {
        return Err(SqlError::unsupported(pos, "UNNEST of several arrays").with_help(HELP));
    };
    if with_offset {
        return Err(
            SqlError::unsupported(pos, "UNNEST ... WITH OFFSET").with_help("use WITH ORDINALITY")
        );
    }
    let Some(TableAlias {
        name: x, columns, ..
    }) = alias
    else {
        return Err(SqlError::at(pos, "UNNEST needs an alias naming its column").with_help(HELP));
    };
    let names: Vec<&Ident> = columns.iter().map(|c| &c.name).collect();
    let (element, position) = match (names.as_slice(), with_ordinality) {
        ([e], false) => (*e, None),
        ([e, p], true) => (*e, Some(*p)),
        _ => {
            return Err(
                SqlError::at(pos, "UNNEST's alias names one column, two WITH ORDINALITY")
                    .with_help(HELP),
            )
        }
    };
    let twj = &mut select.from[0];
    let left_name = match &twj.relation {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            a.name.clone()
        }
        TableFactor::Table { name, .. } => match name.0.last().and_then(|p| p.as_ident()) {
            Some(i) => i.clone(),
            None => {
                return Err(SqlError::at(pos, "UNNEST needs a named table to join").with_help(HELP))
            }
        },
        _ => {
            return Err(
                SqlError::unsupported(pos, "UNNEST joined to this FROM item")
                    .with_help("give the subquery an alias"),
            )
        }
    };
    let unnested = if keep_empty {
        format!("CASE WHEN cardinality({array}) > 0 THEN {array} ELSE make_array(NULL) END")
    } else {
        array.to_string()
    };
    let mut items = format!("{left_name}.*, unnest({unnested}) AS {element}");
    if let Some(p) = position {
        items.push_str(&format!(
            ", unnest(generate_series(1, cardinality({array}))) AS {p}"
        ));
    }
    let text = format!("SELECT {items} FROM {}", twj.relation);
    let subquery = Parser::new(&GenericDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| SqlError::at(pos, format!("cannot plan UNNEST: {e}")))?;
    twj.relation = TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(TableAlias {
            explicit: true,
            name: left_name.clone(),
            columns: vec![],
            at: None,
        }),
        sample: None,
    };
    // `x.element` is a column of the derived table now.
    let _ = visit_expressions_mut(select, |e: &mut Expr| {
        if let Expr::CompoundIdentifier(ids) = e {
            if ids.len() == 2 && ids[0].value == x.value {
                ids[0] = left_name.clone();
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut q = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_query())
            .expect("parse");
        rewrite_unnest_joins(&mut q, Pos { line: 1, column: 1 }).expect("rewrite");
        q.to_string()
    }

    #[test]
    fn cross_join_unnest_becomes_a_derived_table() {
        assert_eq!(
            rewritten("SELECT o.id, t.item FROM orders AS o CROSS JOIN UNNEST(o.items) AS t(item)"),
            "SELECT o.id, o.item FROM (SELECT o.*, unnest(o.items) AS item FROM orders AS o) AS o"
        );
    }
}
