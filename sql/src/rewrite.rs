//! Rewrites of the parsed query that bring Flink's SQL to DataFusion:
//! - unaliased select items other than plain columns are named `EXPR$<n>`, as
//!   Flink (Calcite) names them; an unaliased field of a ROW column
//!   (`person.id`, `t.person.id`) is named after the field (`id`, then `id0`,
//!   `id1` for the next items of that name);
//! - `IF(c, a, b)` becomes `CASE WHEN c THEN a ELSE b END`;
//! - `MOD(a, b)` becomes `a % b`;
//! - `REGEXP_REPLACE(s, regex, replacement)` replaces every match with the
//!   replacement as written, as in Flink;
//! - `LISTAGG(x [, sep])` becomes `string_agg(x, sep)` (`,` by default);
//! - `TRUNCATE(x [, scale])` becomes `trunc(x, scale)`, `LOCALTIMESTAMP`
//!   the time now as a TIMESTAMP(3), `REGEXP(s, r)` `regexp_like(s, r)`,
//!   `ELT(n, e1, ...)` a CASE on `n`, `LOCATE(a, b)` `strpos(b, a)`;
//! - `TIMESTAMPADD(unit, n, ts)` becomes `timestampadd('unit', n, ts)`;
//! - `HOUR(ts)`, `MINUTE`, `SECOND`, `YEAR`, `QUARTER`, `MONTH`, `WEEK`,
//!   `DAYOFYEAR`, `DAYOFMONTH` and `DAYOFWEEK` (from 1, Sunday) become BIGINT
//!   `date_part`s;
//! - `FLOOR(ts TO unit)` becomes `date_trunc('unit', ts)`, and `CEIL(ts TO unit)`
//!   the next boundary unless `ts` is on one.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, CaseWhen, CeilFloorKind, DateTimeField, Expr,
    FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Query, SelectItem, SetExpr,
    TableFactor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Applies every rewrite to `query`.
pub fn rewrite_query(query: &mut Query) {
    name_select_items(query);
    let _ = visit_expressions_mut(query, |e: &mut Expr| {
        rewrite_expr(e);
        ControlFlow::<()>::Continue(())
    });
}

/// The expression `text` (a computed column's, a watermark's) with every
/// rewrite applied, or `text` itself when none applies (or it does not parse
/// on its own, which planning it then reports).
pub fn rewrite_expr_text(text: &str) -> String {
    let Some(mut e) = parse_expr(text) else {
        return text.to_string();
    };
    let before = e.to_string();
    let _ = visit_expressions_mut(&mut e, |e: &mut Expr| {
        rewrite_expr(e);
        ControlFlow::<()>::Continue(())
    });
    let after = e.to_string();
    if after == before {
        text.to_string()
    } else {
        after
    }
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
            let relations = relation_names(select);
            // Calcite's names, in order: a later item whose name an earlier
            // one has gets `name0`, `name1`, ... (`B.dateTime, A.dateTime`).
            let mut taken: Vec<String> = vec![];
            for (i, item) in select.projection.iter_mut().enumerate() {
                let SelectItem::UnnamedExpr(e) = item else {
                    if let SelectItem::ExprWithAlias { alias, .. } = item {
                        taken.push(alias.value.clone());
                    }
                    continue;
                };
                let name = match e {
                    Expr::Identifier(id) => id.value.clone(),
                    Expr::CompoundIdentifier(ids) => match ids.last() {
                        Some(last) => last.value.clone(),
                        None => continue,
                    },
                    _ => {
                        let expr = e.clone();
                        *item = SelectItem::ExprWithAlias {
                            expr,
                            alias: Ident::with_quote('"', format!("EXPR${i}")),
                        };
                        continue;
                    }
                };
                // A field of a ROW (more parts than `relation.column`) is
                // named after the field; a column keeps its name unless taken.
                let field = matches!(e, Expr::CompoundIdentifier(ids)
                    if ids.len() > 2 || !relations.contains(&ids[0].value));
                let unique = unique_name(&name, &mut taken);
                if field || unique != name {
                    let expr = e.clone();
                    *item = SelectItem::ExprWithAlias {
                        expr,
                        alias: Ident::with_quote('"', unique),
                    };
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

/// `name`, or Calcite's `name0`, `name1`, ... when another item has it.
fn unique_name(name: &str, taken: &mut Vec<String>) -> String {
    let mut candidate = name.to_string();
    let mut n = 0;
    while taken.contains(&candidate) {
        candidate = format!("{name}{n}");
        n += 1;
    }
    taken.push(candidate.clone());
    candidate
}

/// The names by which a SELECT's FROM clause lets columns be qualified
/// (table names and aliases), to tell `t.col` from `row_col.field`.
fn relation_names(select: &datafusion::sql::sqlparser::ast::Select) -> Vec<String> {
    fn of(t: &TableFactor, out: &mut Vec<String>) {
        match t {
            TableFactor::Table { name, alias, .. } => match alias {
                Some(a) => out.push(a.name.value.clone()),
                None => out.extend(
                    name.0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map(|i| i.value.clone()),
                ),
            },
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                if let Some(a) = alias {
                    out.push(a.name.value.clone());
                }
                of(&table_with_joins.relation, out);
                for j in &table_with_joins.joins {
                    of(&j.relation, out);
                }
            }
            other => {
                if let TableFactor::Derived { alias: Some(a), .. }
                | TableFactor::UNNEST { alias: Some(a), .. }
                | TableFactor::Function { alias: Some(a), .. }
                | TableFactor::TableFunction { alias: Some(a), .. } = other
                {
                    out.push(a.name.value.clone());
                }
            }
        }
    }
    let mut out = vec![];
    for twj in &select.from {
        of(&twj.relation, &mut out);
        for j in &twj.joins {
            of(&j.relation, &mut out);
        }
    }
    out
}

fn name_table_factor(t: &mut TableFactor) {
    if let TableFactor::Derived { subquery, .. } = t {
        name_select_items(subquery);
    }
}

fn function_args(f: &datafusion::sql::sqlparser::ast::Function) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn parse_expr(text: &str) -> Option<Expr> {
    Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .ok()?
        .parse_expr()
        .ok()
}

/// Aggregates whose arguments' CASTs get a distinct name (see `arrow_cast_of`).
const AGGREGATES: &[&str] = &[
    "AVG",
    "SUM",
    "MIN",
    "MAX",
    "COUNT",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    "MEDIAN",
    "APPROX_DISTINCT",
    "APPROX_PERCENTILE_CONT",
];

/// DataFusion names `CAST(x AS T)` just `x`, so `AVG(x)` and `AVG(CAST(x AS
/// DOUBLE))` would collide in one aggregation. `arrow_cast(x, 'Float64')` is the
/// same cast under a name of its own.
fn arrow_cast_of(e: &Expr) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{CastKind, DataType as T, ExactNumberInfo};
    let Expr::Cast {
        kind: CastKind::Cast,
        expr,
        data_type,
        ..
    } = e
    else {
        return None;
    };
    let arrow = match data_type {
        T::Double(_) | T::DoublePrecision | T::Float8 | T::Float64 => "Float64".to_string(),
        T::Float(_) | T::Real | T::Float4 | T::Float32 => "Float32".to_string(),
        T::BigInt(_) | T::Int8(_) | T::Int64 => "Int64".to_string(),
        T::Int(_) | T::Integer(_) | T::Int4(_) | T::Int32 => "Int32".to_string(),
        T::SmallInt(_) | T::Int2(_) | T::Int16 => "Int16".to_string(),
        T::TinyInt(_) => "Int8".to_string(),
        T::Decimal(ExactNumberInfo::PrecisionAndScale(p, s))
        | T::Numeric(ExactNumberInfo::PrecisionAndScale(p, s)) => {
            format!("Decimal128({p}, {s})")
        }
        T::String(_) | T::Varchar(_) | T::Text | T::Char(_) => "Utf8".to_string(),
        T::Boolean | T::Bool => "Boolean".to_string(),
        _ => return None,
    };
    parse_expr(&format!("arrow_cast(({expr}), '{arrow}')"))
}

/// The `date_trunc` unit for a `FLOOR`/`CEIL(ts TO unit)` field (`MINUTES` -> `minute`).
fn trunc_unit(unit: &DateTimeField) -> String {
    unit.to_string()
        .to_ascii_lowercase()
        .trim_end_matches('s')
        .to_string()
}

/// The `date_part` field of a Flink time-field function and what to add to
/// it (Flink's DAYOFWEEK counts from 1, Sunday).
fn date_part_of(function: &str) -> Option<(&'static str, &'static str)> {
    Some(match function {
        "YEAR" => ("year", ""),
        "QUARTER" => ("quarter", ""),
        "MONTH" => ("month", ""),
        "WEEK" => ("week", ""),
        "DAYOFYEAR" => ("doy", ""),
        "DAYOFMONTH" => ("day", ""),
        "DAYOFWEEK" => ("dow", " + 1"),
        "HOUR" => ("hour", ""),
        "MINUTE" => ("minute", ""),
        "SECOND" => ("second", ""),
        _ => return None,
    })
}

pub(crate) fn rewrite_expr(e: &mut Expr) {
    // Flink's LOCALTIMESTAMP: the time now in the local time zone (UTC).
    let local_timestamp = match &*e {
        Expr::Identifier(id) => {
            id.quote_style.is_none() && id.value.eq_ignore_ascii_case("LOCALTIMESTAMP")
        }
        Expr::Function(f) => {
            f.name.to_string().eq_ignore_ascii_case("LOCALTIMESTAMP")
                && matches!(f.args, FunctionArguments::None)
        }
        _ => false,
    };
    if local_timestamp {
        if let Some(new) = parse_expr("CAST(now() AS TIMESTAMP(3))") {
            *e = new;
        }
        return;
    }
    // Flink's TIMESTAMP_LTZ in a CAST: an instant, here milliseconds in UTC
    // (a TIMESTAMP read as UTC, the session time zone Vigil keeps).
    if let Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
        expr,
        data_type: datafusion::sql::sqlparser::ast::DataType::Custom(name, _),
        ..
    } = &*e
    {
        if name.to_string().eq_ignore_ascii_case("TIMESTAMP_LTZ") {
            if let Some(new) =
                parse_expr(&format!("arrow_cast(({expr}), 'Timestamp(ms, \"UTC\")')"))
            {
                *e = new;
            }
            return;
        }
    }
    if let Expr::Function(f) = e {
        let name = f.name.to_string().to_ascii_uppercase();
        if AGGREGATES.contains(&name.as_str()) {
            if let FunctionArguments::List(list) = &mut f.args {
                for a in &mut list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                        if let Some(new) = arrow_cast_of(x) {
                            *x = new;
                        }
                    }
                }
            }
        }
    }
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
                            conditions: vec![CaseWhen {
                                condition: c,
                                result: a,
                            }],
                            else_result: Some(Box::new(b)),
                        };
                    }
                }
                ("CONCAT", Some(args)) if args.len() >= 2 => {
                    // Flink's CONCAT is NULL when any argument is; `||` is too.
                    let mut it = args.into_iter();
                    if let Some(first) = it.next() {
                        let cat = |l: Expr, r: Expr| Expr::BinaryOp {
                            left: Box::new(l),
                            op: BinaryOperator::StringConcat,
                            right: Box::new(Expr::Nested(Box::new(r))),
                        };
                        *e = Expr::Nested(Box::new(it.fold(Expr::Nested(Box::new(first)), cat)));
                    }
                }
                ("TIMESTAMPDIFF", Some(args)) if args.len() == 3 => {
                    let secs = match args[0].to_string().to_ascii_uppercase().as_str() {
                        "SECOND" => Some(1),
                        "MINUTE" => Some(60),
                        "HOUR" => Some(3600),
                        "DAY" => Some(86400),
                        _ => None,
                    };
                    if let Some(secs) = secs {
                        let text = format!(
                            "CAST(trunc((date_part('epoch', ({b})) - date_part('epoch', ({a}))) / {secs}) AS INT)",
                            a = args[1],
                            b = args[2]
                        );
                        if let Some(new) = parse_expr(&text) {
                            *e = new;
                        }
                    }
                }
                (unit, Some(args)) if args.len() == 1 && date_part_of(unit).is_some() => {
                    // Flink's HOUR(ts), DAYOFWEEK(ts), ...: BIGINT fields.
                    if let Some((part, shift)) = date_part_of(unit) {
                        let text =
                            format!("CAST(date_part('{part}', ({})) AS BIGINT){shift}", args[0]);
                        if let Some(new) = parse_expr(&text) {
                            *e = Expr::Nested(Box::new(new));
                        }
                    }
                }
                ("REGEXP_REPLACE", Some(args)) if args.len() == 3 => {
                    // Flink replaces every match (DataFusion only the first
                    // unless told 'g') with the replacement as it is written
                    // (`$1` is no group reference).
                    let text = format!(
                        "regexp_replace({}, {}, replace({}, '$', '$$'), 'g')",
                        args[0], args[1], args[2]
                    );
                    if let Some(new) = parse_expr(&text) {
                        *e = new;
                    }
                }
                ("REGEXP", Some(args)) if args.len() == 2 => {
                    // Flink's REGEXP(s, regex): whether regex matches in s.
                    if let Some(new) = parse_expr(&format!("regexp_like({}, {})", args[0], args[1]))
                    {
                        *e = new;
                    }
                }
                ("LOCATE", Some(args)) if args.len() == 2 => {
                    // Flink's LOCATE(needle, haystack): 1-based, 0 if absent.
                    if let Some(new) = parse_expr(&format!("strpos({}, {})", args[1], args[0])) {
                        *e = new;
                    }
                }
                ("ELT", Some(args)) if args.len() >= 2 => {
                    // Flink's ELT(n, e1, e2, ...): the n-th expression.
                    let cases: Vec<String> = args[1..]
                        .iter()
                        .enumerate()
                        .map(|(k, a)| format!("WHEN {} THEN {a}", k + 1))
                        .collect();
                    let text = format!("CASE {} {} END", args[0], cases.join(" "));
                    if let Some(new) = parse_expr(&text) {
                        *e = new;
                    }
                }
                ("TRUNCATE", Some(args)) if (1..=2).contains(&args.len()) => {
                    // Flink's TRUNCATE(x [, scale]): digits cut, not rounded.
                    let scale = args.get(1).map_or("0".to_string(), |s| s.to_string());
                    if let Some(new) = parse_expr(&format!("trunc({}, {scale})", args[0])) {
                        *e = new;
                    }
                }
                ("LISTAGG", Some(args)) if (1..=2).contains(&args.len()) => {
                    // Flink's LISTAGG(x [, separator]), separator ',' by default.
                    let sep = args.get(1).map_or("','".to_string(), |s| s.to_string());
                    if let Some(new) = parse_expr(&format!("string_agg({}, {sep})", args[0])) {
                        *e = new;
                    }
                }
                ("TIMESTAMPADD", Some(args)) if args.len() == 3 => {
                    // The unit is a keyword: the function takes it as text.
                    let text = format!(
                        "timestampadd('{}', {}, {})",
                        args[0].to_string().to_ascii_uppercase(),
                        args[1],
                        args[2]
                    );
                    if let Some(new) = parse_expr(&text) {
                        *e = new;
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
        Expr::Floor {
            expr,
            field: CeilFloorKind::DateTimeField(unit),
        } if *unit != DateTimeField::NoDateTime => {
            let unit = trunc_unit(unit);
            if let Some(new) = parse_expr(&format!("date_trunc('{unit}', ({expr}))")) {
                *e = new;
            }
        }
        Expr::Ceil {
            expr,
            field: CeilFloorKind::DateTimeField(unit),
        } if *unit != DateTimeField::NoDateTime => {
            let unit = trunc_unit(unit);
            let text = format!(
                "CASE WHEN date_trunc('{unit}', ({expr})) = ({expr}) THEN date_trunc('{unit}', ({expr})) \
                 ELSE date_trunc('{unit}', ({expr})) + INTERVAL '1 {unit}' END"
            );
            if let Some(new) = parse_expr(&text) {
                *e = new;
            }
        }
        _ => {}
    }
}
