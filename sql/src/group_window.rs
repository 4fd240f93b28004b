//! Flink's legacy group windows: `GROUP BY k, TUMBLE(ts, size)` (and
//! `HOP(ts, slide, size)`, `SESSION(ts, gap)`) with `TUMBLE_START`,
//! `TUMBLE_END` and `TUMBLE_ROWTIME` (and their HOP_ and SESSION_ twins) in
//! the select list. Each becomes the window TVF Flink's documentation gives
//! as its replacement: the FROM table is swapped for a window table over it
//! (a SESSION partitioned by the other grouping columns), the window call in
//! GROUP BY for `window_start, window_end, window_time`, and the auxiliary functions for
//! `window_start`, `window_end` and `window_time`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr, TableFactor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::Tokenizer;
use vigil_engine::window::WindowKind;

use crate::cursor::Cursor;
use crate::error::{Pos, Result, SqlError};
use crate::tvf::{parse_interval, WindowTvf};

const HELP: &str = "or write the window TVF: FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end";

/// Rewrites every legacy group window in `query` (see the module
/// documentation); returns the window tables to register, by the name
/// `name_for` gave each.
pub fn extract_group_windows(
    query: &mut Query,
    name_for: &mut impl FnMut() -> String,
) -> Result<Vec<(String, WindowTvf)>> {
    let mut out = vec![];
    if let Some(with) = &mut query.with {
        for cte in &mut with.cte_tables {
            out.extend(extract_group_windows(&mut cte.query, name_for)?);
        }
    }
    set_expr(&mut query.body, name_for, &mut out)?;
    Ok(out)
}

fn set_expr(
    body: &mut SetExpr,
    name_for: &mut impl FnMut() -> String,
    out: &mut Vec<(String, WindowTvf)>,
) -> Result<()> {
    match body {
        SetExpr::Select(select) => {
            for twj in &mut select.from {
                for t in std::iter::once(&mut twj.relation)
                    .chain(twj.joins.iter_mut().map(|j| &mut j.relation))
                {
                    if let TableFactor::Derived { subquery, .. } = t {
                        out.extend(extract_group_windows(subquery, name_for)?);
                    }
                }
            }
            if let Some(tvf) = rewrite_select(select, name_for)? {
                out.push(tvf);
            }
        }
        SetExpr::Query(q) => out.extend(extract_group_windows(q, name_for)?),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr(left, name_for, out)?;
            set_expr(right, name_for, out)?;
        }
        _ => {}
    }
    Ok(())
}

/// The window function (`TUMBLE`, `HOP`, `SESSION`) an expression calls.
fn window_call(e: &Expr) -> Option<(String, Vec<Expr>, Pos)> {
    let Expr::Function(f) = e else {
        return None;
    };
    let name = f.name.0.last()?.as_ident()?;
    let upper = name.value.to_ascii_uppercase();
    if !["TUMBLE", "HOP", "SESSION"].contains(&upper.as_str()) {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args = list
        .args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect();
    Some((upper, args, Pos::from(name.span.start)))
}

fn interval_ms(e: &Expr, pos: Pos) -> Result<i64> {
    let text = e.to_string();
    let tokens = Tokenizer::new(&GenericDialect {}, &text)
        .tokenize_with_location()
        .map_err(|err| SqlError::at(pos, err.to_string()))?;
    let tokens: Vec<_> = tokens
        .into_iter()
        .filter(|t| {
            !matches!(
                t.token,
                datafusion::sql::sqlparser::tokenizer::Token::Whitespace(_)
            )
        })
        .collect();
    let mut c = Cursor::new(&tokens);
    parse_interval(&mut c).map_err(|err| {
        SqlError::at(pos, err.message)
            .with_help("a group window's sizes are INTERVALs, e.g. INTERVAL '10' SECOND")
    })
}

fn column_name(e: &Expr) -> Option<&Ident> {
    match e {
        Expr::Identifier(i) => Some(i),
        Expr::CompoundIdentifier(ids) => ids.last(),
        _ => None,
    }
}

/// The window of `select`'s GROUP BY, if it has one: the select rewritten,
/// the window table returned.
fn rewrite_select(
    select: &mut Select,
    name_for: &mut impl FnMut() -> String,
) -> Result<Option<(String, WindowTvf)>> {
    let GroupByExpr::Expressions(keys, _) = &mut select.group_by else {
        return Ok(None);
    };
    let Some(k) = keys.iter().position(|e| window_call(e).is_some()) else {
        return Ok(None);
    };
    let Some((func, args, pos)) = window_call(&keys[k]) else {
        return Ok(None);
    };
    let Some((time, sizes)) = args.split_first() else {
        return Err(SqlError::at(
            pos,
            format!("{func} needs a time attribute and an INTERVAL"),
        ));
    };
    let time_col = column_name(time).ok_or_else(|| {
        SqlError::at(
            pos,
            format!("the first argument of {func} must be a time attribute column"),
        )
    })?;
    let ms = sizes
        .iter()
        .map(|s| interval_ms(s, pos))
        .collect::<Result<Vec<_>>>()?;
    let kind = match (func.as_str(), ms.as_slice()) {
        ("TUMBLE", [size]) if *size > 0 => WindowKind::Tumble {
            size: *size,
            offset: 0,
        },
        ("HOP", [slide, size]) if *slide > 0 && size >= slide => WindowKind::Hop {
            slide: *slide,
            size: *size,
            offset: 0,
        },
        ("SESSION", [gap]) if *gap > 0 => WindowKind::Session { gap: *gap },
        _ => {
            let usage = match func.as_str() {
                "TUMBLE" => "TUMBLE(ts, size)",
                "HOP" => "HOP(ts, slide, size) with size >= slide",
                _ => "SESSION(ts, gap)",
            };
            return Err(SqlError::at(
                pos,
                format!("write {usage} with positive INTERVALs"),
            ));
        }
    };
    let other_keys: Vec<Expr> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != k)
        .map(|(_, e)| e.clone())
        .collect();
    let mut partition_by = vec![];
    if func == "SESSION" {
        for e in &other_keys {
            let id = column_name(e).ok_or_else(|| {
                SqlError::unsupported(
                    pos,
                    "a SESSION group window beside a grouping expression that is not a column",
                )
                .with_help("compute the expression in a view first")
            })?;
            partition_by.push((id.value.clone(), Pos::from(id.span.start)));
        }
    }
    let (table, table_pos, window) = match select.from.as_mut_slice() {
        [twj] if twj.joins.is_empty() => match &mut twj.relation {
            TableFactor::Table {
                name, args: None, ..
            } => {
                let last = name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .cloned()
                    .ok_or_else(|| not_one_table(&func, pos))?;
                let window = name_for();
                *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(window.clone()))]);
                (last.value, Pos::from(last.span.start), window)
            }
            _ => return Err(not_one_table(&func, pos)),
        },
        _ => return Err(not_one_table(&func, pos)),
    };
    // GROUP BY k, TUMBLE(...) -> GROUP BY k, window_start, window_end,
    // window_time (the last determined by the others; there for _ROWTIME).
    keys.splice(
        k..=k,
        ["window_start", "window_end", "window_time"].map(|c| Expr::Identifier(Ident::new(c))),
    );
    replace_auxiliaries(select)?;
    let tvf = WindowTvf {
        kind,
        table,
        table_pos,
        time_col: time_col.value.clone(),
        time_pos: Pos::from(time_col.span.start),
        partition_by,
        pos,
    };
    Ok(Some((window, tvf)))
}

fn not_one_table(func: &str, pos: Pos) -> SqlError {
    SqlError::unsupported(
        pos,
        format!("GROUP BY {func}(...) over a join or a subquery"),
    )
    .with_help(format!(
        "define a view for the FROM clause and group that, {HELP}"
    ))
}

/// `TUMBLE_START(...)` -> `window_start` and the like, in the select list
/// (an unaliased one named `EXPR$<n>` as Flink names it), HAVING and ORDER BY.
fn replace_auxiliaries(select: &mut Select) -> Result<()> {
    for (i, item) in select.projection.iter_mut().enumerate() {
        if let SelectItem::UnnamedExpr(e) = item {
            if auxiliary(e).is_some() {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', format!("EXPR${i}")),
                };
            }
        }
    }
    let mut failure = None;
    let mut visit = |e: &mut Expr| {
        match auxiliary(e) {
            Some(Ok(column)) => *e = Expr::Identifier(Ident::new(column)),
            Some(Err(err)) => {
                failure = Some(err);
                return ControlFlow::Break(());
            }
            None => {}
        }
        ControlFlow::Continue(())
    };
    let _ = visit_expressions_mut(&mut select.projection, &mut visit);
    if let Some(h) = &mut select.having {
        let _ = visit_expressions_mut(h, &mut visit);
    }
    failure.map_or(Ok(()), Err)
}

/// The window column an auxiliary function stands for.
fn auxiliary(e: &Expr) -> Option<Result<&'static str>> {
    let Expr::Function(f) = e else {
        return None;
    };
    let name = f.name.0.last()?.as_ident()?;
    let upper = name.value.to_ascii_uppercase();
    let (window, part) = upper.split_once('_')?;
    if !["TUMBLE", "HOP", "SESSION"].contains(&window) {
        return None;
    }
    Some(match part {
        "START" => Ok("window_start"),
        "END" => Ok("window_end"),
        "ROWTIME" => Ok("window_time"),
        _ => Err(SqlError::unsupported(
            Pos::from(name.span.start),
            format!("{upper} of a group window"),
        )
        .with_len(name.value.len())
        .with_help(format!(
            "use {window}_START, {window}_END or {window}_ROWTIME"
        ))),
    })
}
