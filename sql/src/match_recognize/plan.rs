//! Builds the MATCH_RECOGNIZE plan node from a parsed clause: checks it as
//! Flink does (ORDER BY a time attribute first, defined variables in the
//! pattern, distinct output names) and plans every expression with DataFusion.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{DFSchema, DFSchemaRef, ExprSchema};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, ExprWithAlias};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use vigil_engine::pattern::ast::Pattern;
use vigil_engine::pattern::matcher::Skip;
use vigil_engine::pattern::nav::{rowtime_type, AggFunc, Nav, NavTerm};
use vigil_engine::window::ROWTIME_METADATA_KEY;

use super::clause::{AfterMatchSkip, ExprTokens, MatchRecognizeClause, RowsPerMatch};
use super::navigation::{extract_terms, term_column, VarScope};
use super::node::{AllRowsPlan, LogicalNav, MatchRecognizeNode};
use super::pattern::{PatternSyntax, VarRef};
use crate::error::{Pos, Result, SqlError};
use crate::rewrite::rewrite_expr;

/// Names a call `FINAL` applies to (`FINAL LAST(x)` becomes `__FINAL_LAST(x)`,
/// which navigation reads as [`Nav::Final`]).
pub const FINAL_PREFIX: &str = "__FINAL_";

/// Drops the `RUNNING` keyword before a navigation or aggregate call (running
/// is the default) and folds `FINAL` into the call's name. FINAL reads the
/// whole match; it differs from RUNNING only under ALL ROWS PER MATCH (Flink
/// accepts it as a no-op). In DEFINE only RUNNING is meaningful, as in the
/// standard.
fn strip_semantics(e: &ExprTokens, in_define: bool) -> Result<Vec<TokenWithSpan>> {
    let significant = |i: usize| {
        e.tokens[i..]
            .iter()
            .position(|t| !matches!(t.token, Token::Whitespace(_)))
            .map(|k| i + k)
    };
    let mut out = Vec::with_capacity(e.tokens.len());
    let mut i = 0;
    while i < e.tokens.len() {
        let t = &e.tokens[i];
        let keyword = match &t.token {
            Token::Word(w) if w.quote_style.is_none() => {
                let v = w.value.to_ascii_uppercase();
                (v == "FINAL" || v == "RUNNING").then_some(v)
            }
            _ => None,
        };
        let call_follows = significant(i + 1).is_some_and(|n| {
            matches!(e.tokens[n].token, Token::Word(_))
                && significant(n + 1).is_some_and(|m| e.tokens[m].token == Token::LParen)
        });
        if let (Some(k), true) = (keyword, call_follows) {
            if in_define && k == "FINAL" {
                return Err(SqlError::at(
                    Pos::from(t.span.start),
                    "FINAL is not allowed in DEFINE: a condition sees the match as it runs",
                )
                .with_help("drop FINAL (or write RUNNING)"));
            }
            let Some(n) = significant(i + 1) else { break };
            let name = match &e.tokens[n].token {
                Token::Word(w) => w.value.to_ascii_uppercase(),
                _ => String::new(),
            };
            let navigates = matches!(
                name.as_str(),
                "FIRST" | "LAST" | "SUM" | "COUNT" | "AVG" | "MIN" | "MAX"
            );
            if !navigates {
                return Err(SqlError::at(
                    Pos::from(t.span.start),
                    format!("{k} applies to FIRST, LAST and aggregates, not to {name}"),
                )
                .with_help(format!("drop {k}")));
            }
            if k == "FINAL" {
                let mut call = e.tokens[n].clone();
                call.token = Token::make_word(&format!("{FINAL_PREFIX}{name}"), None);
                out.push(call);
            } else {
                out.push(e.tokens[n].clone());
            }
            i = n + 1;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    Ok(out)
}

fn parse(e: &ExprTokens, in_define: bool) -> Result<SqlExpr> {
    let tokens = strip_semantics(e, in_define)?;
    let mut p = Parser::new(&GenericDialect {}).with_tokens_with_locations(tokens);
    let expr = p
        .parse_expr()
        .map_err(|err| SqlError::at(e.pos, err.to_string()))?;
    let next = p.peek_token();
    if next.token != Token::EOF {
        return Err(SqlError::at(
            Pos::from(next.span.start),
            format!("unexpected '{}' in this expression", next.token),
        ));
    }
    Ok(expr)
}

struct Planner<'a> {
    state: &'a SessionState,
    input: DFSchemaRef,
    derived: Vec<Expr>,
    derived_types: Vec<DataType>,
}

impl Planner<'_> {
    fn logical(&self, e: SqlExpr, schema: &DFSchema, pos: Pos) -> Result<Expr> {
        self.state
            .create_logical_expr_from_sql_expr(
                ExprWithAlias {
                    expr: e,
                    alias: None,
                },
                schema,
            )
            .map_err(|err| SqlError::from_datafusion(err, pos))
    }

    fn type_of(&self, e: &Expr, schema: &DFSchema, pos: Pos) -> Result<DataType> {
        let phys = self
            .state
            .create_physical_expr(e.clone(), schema)
            .map_err(|err| SqlError::from_datafusion(err, pos))?;
        phys.data_type(schema.as_arrow())
            .map_err(|err| SqlError::from_datafusion(err, pos))
    }

    /// The derived column for a row-level expression, added once.
    fn derived(&mut self, e: SqlExpr, pos: Pos) -> Result<usize> {
        let logical = self.logical(e, &self.input.clone(), pos)?;
        if let Some(i) = self.derived.iter().position(|d| *d == logical) {
            return Ok(i);
        }
        let t = self.type_of(&logical, &self.input.clone(), pos)?;
        self.derived.push(logical);
        self.derived_types.push(t);
        Ok(self.derived.len() - 1)
    }

    /// Plans a DEFINE or MEASURES expression.
    fn nav_expr(
        &mut self,
        tokens: &ExprTokens,
        scope: &VarScope<'_>,
        in_define: bool,
    ) -> Result<LogicalNav> {
        let mut expr = parse(tokens, in_define)?;
        rewrite_expr(&mut expr);
        let raw = extract_terms(&mut expr, scope, tokens.pos)?;
        let mut terms = vec![];
        for r in raw {
            let column = match r.inner {
                Some(inner) => Some(self.derived(inner, tokens.pos)?),
                None => None,
            };
            let read = column.map(|c| self.derived_types[c].clone());
            let data_type = match (&r.nav, read) {
                (Nav::MatchRowtime, _) => rowtime_type(),
                (Nav::Classifier { .. }, _) => DataType::Utf8,
                (Nav::TimedOut, _) => DataType::Boolean,
                (Nav::MatchNumber, _)
                | (
                    Nav::Agg {
                        func: AggFunc::Count,
                        ..
                    },
                    _,
                ) => DataType::Int64,
                (
                    Nav::Agg {
                        func: AggFunc::Sum, ..
                    },
                    Some(t),
                ) => sum_type(&t),
                (_, Some(t)) => t,
                (_, None) => DataType::Int64,
            };
            terms.push(NavTerm {
                nav: r.nav,
                column,
                data_type,
            });
        }
        let fields: Vec<Field> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(term_column(i), t.data_type.clone(), true))
            .collect();
        let schema = Arc::new(
            DFSchema::from_unqualified_fields(fields.into(), HashMap::new())
                .map_err(|e| SqlError::from_datafusion(e, tokens.pos))?,
        );
        let expr = self.logical(expr, &schema, tokens.pos)?;
        Ok(LogicalNav {
            expr,
            terms,
            schema,
        })
    }
}

/// SUM's result type, as in Flink: integers widen to BIGINT.
fn sum_type(t: &DataType) -> DataType {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => DataType::Int64,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
        DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
        other => other.clone(),
    }
}

/// Builds the node over `input` (the plan of the clause's input table).
pub fn build_node(
    state: &SessionState,
    input: LogicalPlan,
    clause: &MatchRecognizeClause,
) -> Result<MatchRecognizeNode> {
    let in_schema = input.schema().clone();
    let mut planner = Planner {
        state,
        input: in_schema.clone(),
        derived: vec![],
        derived_types: vec![],
    };
    // ORDER BY: a time attribute, ascending, first.
    let Some(first) = clause.order_by.first() else {
        return Err(SqlError::at(
            clause.pos,
            "You must specify either rowtime or proctime for order by.",
        )
        .with_help("add ORDER BY <time attribute> inside MATCH_RECOGNIZE"));
    };
    let time = planner.logical(parse(&first.expr, false)?, &in_schema, first.expr.pos)?;
    let is_rowtime = match &time {
        Expr::Column(c) => in_schema
            .field_from_column(c)
            .map(|f| f.metadata().contains_key(ROWTIME_METADATA_KEY))
            .unwrap_or(false),
        _ => false,
    };
    if !is_rowtime {
        return Err(SqlError::at(
            first.expr.pos,
            "You must specify either rowtime or proctime for order by as the first one.",
        )
        .with_help("order by the column with a WATERMARK FOR declaration first"));
    }
    if first.descending {
        return Err(SqlError::at(
            first.expr.pos,
            "Primary sort order of a streaming table must be ascending on time.",
        ));
    }
    let mut order_by = vec![];
    for k in &clause.order_by[1..] {
        order_by.push((
            planner.logical(parse(&k.expr, false)?, &in_schema, k.expr.pos)?,
            k.descending,
        ));
    }
    let mut partition_by = vec![];
    let mut out_fields: Vec<(Option<datafusion::common::TableReference>, Arc<Field>)> = vec![];
    for p in &clause.partition_by {
        let e = planner.logical(parse(p, false)?, &in_schema, p.pos)?;
        let Expr::Column(c) = &e else {
            return Err(SqlError::unsupported(
                p.pos,
                "PARTITION BY an expression; partition by columns",
            ));
        };
        let f = in_schema
            .field_from_column(c)
            .map_err(|err| SqlError::from_datafusion(err, p.pos))?;
        let mut meta = f.metadata().clone();
        meta.remove(ROWTIME_METADATA_KEY);
        out_fields.push((
            None,
            Arc::new(f.as_ref().clone().with_metadata(meta).with_nullable(true)),
        ));
        partition_by.push(e);
    }
    let mut all_rows = match clause.rows_per_match {
        RowsPerMatch::One => None,
        mode => Some(AllRowsPlan {
            show_empty: mode != RowsPerMatch::AllOmitEmpty,
            unmatched: mode == RowsPerMatch::AllWithUnmatched,
            excluded: 0,
            order_columns: vec![],
            rest_columns: vec![],
        }),
    };
    if let Some(all) = &mut all_rows {
        // ORDER BY columns come after the partition columns; the time column
        // is no longer a time attribute (a match's rows are emitted when it
        // completes, behind the watermark): MATCH_ROWTIME() is.
        let mut keys = vec![(time.clone(), first.expr.pos)];
        keys.extend(
            order_by
                .iter()
                .zip(&clause.order_by[1..])
                .map(|((e, _), k)| (e.clone(), k.expr.pos)),
        );
        for (e, pos) in keys {
            let Expr::Column(c) = &e else {
                return Err(SqlError::unsupported(
                    pos,
                    "ORDER BY an expression with ALL ROWS PER MATCH; order by columns",
                ));
            };
            let i = in_schema
                .index_of_column(c)
                .map_err(|err| SqlError::from_datafusion(err, pos))?;
            if !all.order_columns.contains(&i) {
                all.order_columns.push(i);
                out_fields.push((None, plain_field(in_schema.field(i))));
            }
        }
        let partition_columns: Vec<usize> = partition_by
            .iter()
            .filter_map(|e| match e {
                Expr::Column(c) => in_schema.index_of_column(c).ok(),
                _ => None,
            })
            .collect();
        all.rest_columns = (0..in_schema.fields().len())
            .filter(|i| !partition_columns.contains(i) && !all.order_columns.contains(i))
            .collect();
    }
    // Variables: in order of appearance in the pattern.
    let vars: Vec<String> = clause
        .pattern
        .variables()
        .into_iter()
        .map(|v| v.name)
        .collect();
    for d in &clause.defines {
        if !vars.contains(&d.var) {
            return Err(SqlError::at(
                d.var_pos,
                format!("DEFINE names '{}', which the PATTERN does not use", d.var),
            )
            .with_len(d.var.len()));
        }
    }
    let mut subsets: HashMap<String, Vec<usize>> = HashMap::new();
    for s in &clause.subsets {
        let mut members = vec![];
        for (m, pos) in &s.members {
            let i = vars.iter().position(|v| v == m).ok_or_else(|| {
                SqlError::at(
                    *pos,
                    format!("SUBSET names '{m}', which the PATTERN does not use"),
                )
            })?;
            members.push(i);
        }
        subsets.insert(s.name.clone(), members);
    }
    let scope = VarScope {
        vars: &vars,
        subsets: &subsets,
    };
    let mut defines: Vec<Option<LogicalNav>> = vec![None; vars.len()];
    for d in &clause.defines {
        let i = vars.iter().position(|v| *v == d.var).unwrap_or(0);
        defines[i] = Some(planner.nav_expr(&d.condition, &scope, true)?);
    }
    let mut measures = vec![];
    for m in &clause.measures {
        let nav = planner.nav_expr(&m.expr, &scope, false)?;
        if out_fields.iter().any(|(_, f)| f.name() == &m.alias) {
            return Err(SqlError::at(
                m.expr.pos,
                format!("Columns ambiguously defined: {{{}}}", m.alias),
            )
            .with_help("rename the measure: its name is also a PARTITION BY column"));
        }
        let t = planner.type_of(&nav.expr, &nav.schema, m.expr.pos)?;
        let mut field = Field::new(&m.alias, t, true);
        // MATCH_ROWTIME() is a time attribute downstream, as in Flink.
        if matches!(&nav.expr, Expr::Column(_))
            && nav.terms.len() == 1
            && nav.terms[0].nav == Nav::MatchRowtime
        {
            field = field.with_metadata(HashMap::from([(
                ROWTIME_METADATA_KEY.to_string(),
                "true".to_string(),
            )]));
        }
        out_fields.push((None, Arc::new(field)));
        measures.push(nav);
    }
    if let Some(all) = &mut all_rows {
        for &i in &all.rest_columns {
            let f = plain_field(in_schema.field(i));
            if out_fields.iter().any(|(_, o)| o.name() == f.name()) {
                return Err(SqlError::at(
                    clause.pos,
                    format!("Columns ambiguously defined: {{{}}}", f.name()),
                )
                .with_help(
                    "ALL ROWS PER MATCH also outputs the input's columns: rename the measure",
                ));
            }
            out_fields.push((None, f));
        }
        all.excluded = excluded_vars(&clause.pattern, &vars, clause.pos)?;
        if all.unmatched && all.excluded != 0 {
            return Err(SqlError::at(
                clause.pos,
                "WITH UNMATCHED ROWS cannot be combined with {- -} exclusion in the pattern",
            )
            .with_help("drop the exclusion or use SHOW EMPTY MATCHES"));
        }
    }
    let index = |v: &super::pattern::VarRef| -> Result<usize> {
        vars.iter()
            .position(|n| *n == v.name)
            .ok_or_else(|| SqlError::at(v.pos, format!("unknown pattern variable '{}'", v.name)))
    };
    let (prefix, absent) = split_absence(&clause.pattern, clause.pos)?;
    let absent = match absent {
        None => None,
        Some(v) => {
            if clause.within_ms.is_none() {
                return Err(SqlError::at(
                    v.pos,
                    format!(
                        "NOT {} needs WITHIN: the match completes when that interval has passed without a {} row",
                        v.name, v.name
                    ),
                )
                .with_len(v.name.len())
                .with_help("add WITHIN INTERVAL '15' MINUTE (for example) after PATTERN (...)"));
            }
            Some(index(&v)?)
        }
    };
    if let (Some(at), None) = (clause.timeouts, clause.within_ms) {
        return Err(SqlError::at(
            at,
            "WITH TIMEOUTS reports partial matches that WITHIN expires, but the pattern has no WITHIN",
        )
        .with_help("add WITHIN INTERVAL '10' MINUTE (for example) after PATTERN (...)"));
    }
    let pattern = prefix.try_map(&index)?;
    if absent.is_some() && pattern.can_be_empty() {
        return Err(SqlError::at(
            clause.pos,
            "the pattern before NOT can match no rows, so an absence would have no start",
        )
        .with_help("make at least one element before NOT mandatory"));
    }
    // A SKIP TO target as a set of variables (a union variable's members).
    let var_set = |name: &str, pos: Pos| -> Result<u64> {
        let members = match vars.iter().position(|n| n == name) {
            Some(i) => vec![i],
            None => subsets.get(name).cloned().ok_or_else(|| {
                SqlError::at(
                    pos,
                    format!("AFTER MATCH SKIP names '{name}', which the PATTERN does not use"),
                )
            })?,
        };
        if members.iter().any(|&i| i >= 64) {
            return Err(SqlError::unsupported(
                pos,
                "AFTER MATCH SKIP TO a variable after the 64th of the pattern",
            ));
        }
        if absent.is_some_and(|a| members.contains(&a)) {
            return Err(SqlError::at(
                pos,
                format!("AFTER MATCH SKIP TO {name}: a negated variable maps no row of a match"),
            )
            .with_help("skip past the last row, or to a variable the match maps"));
        }
        Ok(members.iter().fold(0u64, |m, &i| m | 1 << i))
    };
    let skip = match &clause.skip {
        AfterMatchSkip::PastLastRow => Skip::PastLastRow,
        AfterMatchSkip::ToNextRow => Skip::ToNextRow,
        AfterMatchSkip::ToFirst(v, p) => Skip::ToFirst(var_set(v, *p)?),
        AfterMatchSkip::ToLast(v, p) => Skip::ToLast(var_set(v, *p)?),
    };
    let lookahead = measures
        .iter()
        .flat_map(|n| n.terms.iter())
        .map(|t| lookahead_of(&t.nav))
        .max()
        .unwrap_or(0);
    let lookback = defines
        .iter()
        .flatten()
        .chain(measures.iter())
        .flat_map(|n| n.terms.iter())
        .map(|t| lookback_of(&t.nav))
        .max()
        .unwrap_or(0);
    let schema = Arc::new(
        DFSchema::new_with_metadata(out_fields, HashMap::new())
            .map_err(|e| SqlError::from_datafusion(e, clause.pos))?,
    );
    Ok(MatchRecognizeNode {
        input,
        partition_by,
        time,
        order_by,
        derived: planner.derived,
        vars,
        defines,
        measures,
        pattern,
        skip,
        within: clause.within_ms,
        absent,
        timeouts: clause.timeouts.is_some(),
        lookback,
        lookahead,
        all_rows,
        schema,
    })
}

/// `f` as an output column: nullable, not a time attribute.
fn plain_field(f: &Field) -> Arc<Field> {
    let mut meta = f.metadata().clone();
    meta.remove(ROWTIME_METADATA_KEY);
    Arc::new(f.clone().with_metadata(meta).with_nullable(true))
}

/// The variables that occur only inside `{- -}`, as bits of their indexes
/// in `vars` (a variable both inside and outside is refused: whether its
/// rows are shown would depend on the path).
fn excluded_vars(p: &PatternSyntax, vars: &[String], at: Pos) -> Result<u64> {
    fn walk(p: &PatternSyntax, inside: bool, ins: &mut Vec<String>, outs: &mut Vec<String>) {
        match p {
            Pattern::Var(v) => {
                if inside {
                    ins.push(v.name.clone())
                } else {
                    outs.push(v.name.clone())
                }
            }
            Pattern::Concat(ps) | Pattern::Alt(ps) | Pattern::Permute(ps) => {
                ps.iter().for_each(|q| walk(q, inside, ins, outs))
            }
            Pattern::Repeat { inner, .. } | Pattern::Not(inner) => walk(inner, inside, ins, outs),
            Pattern::Exclude(inner) => walk(inner, true, ins, outs),
            Pattern::Empty | Pattern::Start | Pattern::End => {}
        }
    }
    let (mut ins, mut outs) = (vec![], vec![]);
    walk(p, false, &mut ins, &mut outs);
    let mut mask = 0u64;
    for name in ins {
        if outs.contains(&name) {
            return Err(SqlError::unsupported(
                at,
                format!("variable {name} both inside and outside {{- -}}"),
            ));
        }
        let Some(i) = vars.iter().position(|v| *v == name) else {
            continue;
        };
        if i >= 64 {
            return Err(SqlError::unsupported(
                at,
                "{- -} around a variable after the 64th of the pattern",
            ));
        }
        mask |= 1 << i;
    }
    Ok(mask)
}

/// Splits a trailing `NOT v` (absence) off the pattern; `NOT` anywhere else,
/// or over more than one variable, is an error.
fn split_absence(p: &PatternSyntax, at: Pos) -> Result<(PatternSyntax, Option<VarRef>)> {
    let misplaced = |pos: Pos| {
        SqlError::at(pos, "NOT may only end the pattern, negating one variable")
            .with_help("PATTERN (A B NOT C) WITHIN INTERVAL '15' MINUTE matches A B with no C row within 15 minutes of A")
    };
    let (prefix, last) = match p {
        Pattern::Concat(parts) if matches!(parts.last(), Some(Pattern::Not(_))) => {
            let prefix = parts[..parts.len() - 1].to_vec();
            let prefix = if prefix.len() == 1 {
                prefix.into_iter().next().unwrap_or(Pattern::Empty)
            } else {
                Pattern::Concat(prefix)
            };
            (prefix, parts.last())
        }
        Pattern::Not(_) => {
            return Err(SqlError::at(at, "NOT needs a pattern before it")
                .with_help("PATTERN (A NOT B) WITHIN INTERVAL '15' MINUTE matches an A row with no B row after it within 15 minutes"));
        }
        _ => (p.clone(), None),
    };
    if let Some(pos) = first_not(&prefix) {
        return Err(misplaced(pos.unwrap_or(at)));
    }
    match last {
        Some(Pattern::Not(inner)) => match inner.as_ref() {
            Pattern::Var(v) => Ok((prefix, Some(v.clone()))),
            other => Err(misplaced(first_var_pos(other).unwrap_or(at))),
        },
        _ => Ok((prefix, None)),
    }
}

/// Where the first `NOT` of `p` is (the position of the variable it negates,
/// when known).
fn first_not(p: &PatternSyntax) -> Option<Option<Pos>> {
    match p {
        Pattern::Not(inner) => Some(first_var_pos(inner)),
        Pattern::Concat(ps) | Pattern::Alt(ps) | Pattern::Permute(ps) => {
            ps.iter().find_map(first_not)
        }
        Pattern::Repeat { inner, .. } | Pattern::Exclude(inner) => first_not(inner),
        Pattern::Empty | Pattern::Var(_) | Pattern::Start | Pattern::End => None,
    }
}

fn first_var_pos(p: &PatternSyntax) -> Option<Pos> {
    match p {
        Pattern::Var(v) => Some(v.pos),
        Pattern::Concat(ps) | Pattern::Alt(ps) | Pattern::Permute(ps) => {
            ps.iter().find_map(first_var_pos)
        }
        Pattern::Repeat { inner, .. } | Pattern::Exclude(inner) | Pattern::Not(inner) => {
            first_var_pos(inner)
        }
        Pattern::Empty | Pattern::Start | Pattern::End => None,
    }
}

/// How far after the row it starts from a navigation may read.
fn lookahead_of(nav: &Nav) -> u64 {
    match nav {
        Nav::Physical { base, offset } => lookahead_of(base) + (*offset).max(0) as u64,
        Nav::Final(inner) => lookahead_of(inner),
        _ => 0,
    }
}

/// How far before a match's first row a navigation may read.
fn lookback_of(nav: &Nav) -> u64 {
    match nav {
        Nav::Physical { base, offset } => lookback_of(base) + offset.unsigned_abs(),
        Nav::Final(inner) => lookback_of(inner),
        _ => 0,
    }
}
