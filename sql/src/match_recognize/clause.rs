//! The `MATCH_RECOGNIZE (...)` clause: its parts as written, before they are
//! resolved against the input's schema. Expressions stay tokens here; the
//! planner parses them once it knows the pattern variables.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::pattern::{parse_pattern, PatternSyntax};
use crate::cursor::Cursor;
use crate::error::{Pos, Result, SqlError};
use crate::tvf::parse_interval;

/// Tokens of one expression, with where it starts.
#[derive(Debug, Clone)]
pub struct ExprTokens {
    /// The expression's tokens.
    pub tokens: Vec<TokenWithSpan>,
    /// Where it starts.
    pub pos: Pos,
}

/// An ORDER BY key.
#[derive(Debug, Clone)]
pub struct OrderKey {
    /// The expression.
    pub expr: ExprTokens,
    /// `DESC`.
    pub descending: bool,
}

/// `expr AS alias` of MEASURES.
#[derive(Debug, Clone)]
pub struct Measure {
    /// The expression.
    pub expr: ExprTokens,
    /// Its output column name.
    pub alias: String,
}

/// `ONE ROW PER MATCH` or `ALL ROWS PER MATCH [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsPerMatch {
    /// One summary row per match (the default).
    One,
    /// Every row of the match (`SHOW EMPTY MATCHES`, the default).
    AllShowEmpty,
    /// `OMIT EMPTY MATCHES`.
    AllOmitEmpty,
    /// `WITH UNMATCHED ROWS`.
    AllWithUnmatched,
}

/// `AFTER MATCH SKIP ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterMatchSkip {
    /// `PAST LAST ROW` (the SQL standard's default when the clause is omitted).
    PastLastRow,
    /// `TO NEXT ROW`.
    ToNextRow,
    /// `TO FIRST var`.
    ToFirst(String, Pos),
    /// `TO LAST var` (also `TO var`).
    ToLast(String, Pos),
}

/// `SUBSET name = (a, b, ...)`.
#[derive(Debug, Clone)]
pub struct Subset {
    /// The union variable.
    pub name: String,
    /// Its members.
    pub members: Vec<(String, Pos)>,
    /// Where it is declared.
    pub pos: Pos,
}

/// `var AS condition` of DEFINE.
#[derive(Debug, Clone)]
pub struct Define {
    /// The pattern variable.
    pub var: String,
    /// Where the variable is named.
    pub var_pos: Pos,
    /// The condition.
    pub condition: ExprTokens,
}

/// A parsed `input MATCH_RECOGNIZE (...)`.
#[derive(Debug, Clone)]
pub struct MatchRecognizeClause {
    /// The input table or view.
    pub input: String,
    /// Where the input is named.
    pub input_pos: Pos,
    /// `PARTITION BY`.
    pub partition_by: Vec<ExprTokens>,
    /// `ORDER BY`.
    pub order_by: Vec<OrderKey>,
    /// `MEASURES`.
    pub measures: Vec<Measure>,
    /// Rows per match.
    pub rows_per_match: RowsPerMatch,
    /// After-match skip (the standard's default when omitted).
    pub skip: AfterMatchSkip,
    /// `PATTERN (...)`.
    pub pattern: PatternSyntax,
    /// `WITHIN INTERVAL ...` after the pattern, in milliseconds.
    pub within_ms: Option<i64>,
    /// `ONE ROW PER MATCH WITH TIMEOUTS` (beyond Flink): where, if given.
    pub timeouts: Option<Pos>,
    /// `SUBSET`.
    pub subsets: Vec<Subset>,
    /// `DEFINE`.
    pub defines: Vec<Define>,
    /// Where `MATCH_RECOGNIZE` is.
    pub pos: Pos,
}

fn expr_tokens(c: &mut Cursor, what: &str) -> Result<ExprTokens> {
    let pos = c.pos();
    let tokens = until_clause_end(c);
    if tokens.is_empty() {
        return Err(c.unexpected(what));
    }
    Ok(ExprTokens {
        tokens: tokens.to_vec(),
        pos,
    })
}

/// Tokens up to the next top-level `,` or `)`, or up to a keyword that starts
/// the next clause (or `ASC`/`DESC`/`AS` where they end an item).
fn until_clause_end<'a>(c: &mut Cursor<'a>) -> &'a [TokenWithSpan] {
    let start = c.i;
    let mut depth = 0i32;
    while let Some(t) = c.peek() {
        match &t.token {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket if depth == 0 => break,
            Token::RParen | Token::RBracket => depth -= 1,
            Token::Comma if depth == 0 => break,
            Token::Word(w) if depth == 0 && w.quote_style.is_none() => {
                let kw = w.value.to_ascii_uppercase();
                let ends = matches!(
                    kw.as_str(),
                    "ASC"
                        | "DESC"
                        | "AS"
                        | "MEASURES"
                        | "ONE"
                        | "ALL"
                        | "AFTER"
                        | "PATTERN"
                        | "SUBSET"
                        | "DEFINE"
                ) || (kw == "ORDER" && c.is_keyword_at(1, "BY"));
                if ends {
                    break;
                }
            }
            _ => {}
        }
        c.i += 1;
    }
    c.slice(start, c.i)
}

/// Parses the body of `MATCH_RECOGNIZE (` ... `)`; the cursor is after the `(`
/// and ends after the `)`.
pub fn parse_clause(
    c: &mut Cursor,
    input: String,
    input_pos: Pos,
    pos: Pos,
) -> Result<MatchRecognizeClause> {
    let mut clause = MatchRecognizeClause {
        input,
        input_pos,
        partition_by: vec![],
        order_by: vec![],
        measures: vec![],
        rows_per_match: RowsPerMatch::One,
        skip: AfterMatchSkip::PastLastRow,
        pattern: PatternSyntax::Empty,
        within_ms: None,
        timeouts: None,
        subsets: vec![],
        defines: vec![],
        pos,
    };
    let mut seen_pattern = false;
    if c.eat_keywords(&["PARTITION", "BY"]) {
        loop {
            clause
                .partition_by
                .push(expr_tokens(c, "a PARTITION BY column")?);
            if !c.eat_token(&Token::Comma) {
                break;
            }
        }
    }
    if c.eat_keywords(&["ORDER", "BY"]) {
        loop {
            let expr = expr_tokens(c, "an ORDER BY expression")?;
            let descending = if c.eat_keyword("DESC") {
                true
            } else {
                c.eat_keyword("ASC");
                false
            };
            clause.order_by.push(OrderKey { expr, descending });
            if !c.eat_token(&Token::Comma) {
                break;
            }
        }
    }
    if c.eat_keyword("MEASURES") {
        loop {
            let expr = expr_tokens(c, "a measure expression")?;
            c.eat_keyword("AS");
            let (alias, _) = c.identifier("a name for the measure (expr AS name)")?;
            clause.measures.push(Measure { expr, alias });
            if !c.eat_token(&Token::Comma) {
                break;
            }
        }
    }
    if c.eat_keywords(&["ONE", "ROW", "PER", "MATCH"]) {
        clause.rows_per_match = RowsPerMatch::One;
        let at = c.pos();
        if c.eat_keywords(&["WITH", "TIMEOUTS"]) {
            clause.timeouts = Some(at);
        }
    } else if c.eat_keywords(&["ALL", "ROWS", "PER", "MATCH"]) {
        clause.rows_per_match = if c.eat_keywords(&["SHOW", "EMPTY", "MATCHES"]) {
            RowsPerMatch::AllShowEmpty
        } else if c.eat_keywords(&["OMIT", "EMPTY", "MATCHES"]) {
            RowsPerMatch::AllOmitEmpty
        } else if c.eat_keywords(&["WITH", "UNMATCHED", "ROWS"]) {
            RowsPerMatch::AllWithUnmatched
        } else {
            RowsPerMatch::AllShowEmpty
        };
    }
    if c.eat_keywords(&["AFTER", "MATCH", "SKIP"]) {
        clause.skip = if c.eat_keywords(&["PAST", "LAST", "ROW"]) {
            AfterMatchSkip::PastLastRow
        } else if c.eat_keywords(&["TO", "NEXT", "ROW"]) {
            AfterMatchSkip::ToNextRow
        } else if c.eat_keywords(&["TO", "FIRST"]) {
            let (v, p) = c.identifier("a pattern variable after SKIP TO FIRST")?;
            AfterMatchSkip::ToFirst(v, p)
        } else if c.eat_keywords(&["TO", "LAST"]) {
            let (v, p) = c.identifier("a pattern variable after SKIP TO LAST")?;
            AfterMatchSkip::ToLast(v, p)
        } else if c.eat_keyword("TO") {
            let (v, p) = c.identifier("a pattern variable after SKIP TO")?;
            AfterMatchSkip::ToLast(v, p)
        } else {
            return Err(c.unexpected(
                "PAST LAST ROW, TO NEXT ROW, TO FIRST <var> or TO LAST <var> after AFTER MATCH SKIP",
            ));
        };
    }
    if c.eat_keyword("PATTERN") {
        c.expect_token(&Token::LParen)?;
        clause.pattern = parse_pattern(c)?;
        c.expect_token(&Token::RParen)?;
        seen_pattern = true;
        if c.eat_keyword("WITHIN") {
            let at = c.pos();
            let ms = parse_interval(c)?;
            if ms <= 0 {
                return Err(SqlError::at(at, "WITHIN needs a positive interval"));
            }
            clause.within_ms = Some(ms);
        }
    }
    if !seen_pattern {
        return Err(c
            .unexpected("PATTERN (...)")
            .with_help("MATCH_RECOGNIZE needs a PATTERN clause, e.g. PATTERN (A B+ C)"));
    }
    if c.eat_keyword("SUBSET") {
        loop {
            let (name, pos) = c.identifier("a union variable name")?;
            c.expect_token(&Token::Eq)?;
            c.expect_token(&Token::LParen)?;
            let mut members = vec![];
            loop {
                members.push(c.identifier("a pattern variable")?);
                if !c.eat_token(&Token::Comma) {
                    break;
                }
            }
            c.expect_token(&Token::RParen)?;
            clause.subsets.push(Subset { name, members, pos });
            if !c.eat_token(&Token::Comma) {
                break;
            }
        }
    }
    if c.eat_keyword("DEFINE") {
        loop {
            let (var, var_pos) = c.identifier("a pattern variable to define")?;
            c.expect_keyword("AS")?;
            let condition = expr_tokens(c, "a condition")?;
            clause.defines.push(Define {
                var,
                var_pos,
                condition,
            });
            if !c.eat_token(&Token::Comma) {
                break;
            }
        }
    }
    if !c.eat_token(&Token::RParen) {
        return Err(c.unexpected("')' closing MATCH_RECOGNIZE, or the next clause in order (PARTITION BY, ORDER BY, MEASURES, ONE ROW PER MATCH, AFTER MATCH SKIP, PATTERN, SUBSET, DEFINE)"));
    }
    Ok(clause)
}
