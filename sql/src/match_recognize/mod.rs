//! `MATCH_RECOGNIZE`: the generic SQL parser does not know Flink's and the
//! standard's full clause (reluctant quantifiers, WITHIN, PERMUTE, ...), so
//! `input MATCH_RECOGNIZE (...)` is cut out of the token stream, parsed here,
//! and replaced by the name of a table the planner registers for it (as window
//! TVFs are).

pub mod clause;
pub mod navigation;
pub mod node;
pub mod pattern;
pub mod plan;

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};

use crate::cursor::Cursor;
use crate::error::{Pos, Result};
pub use clause::MatchRecognizeClause;

/// The rewritten tokens and the clauses cut out of them, by the name that
/// replaced each.
pub type ExtractedMatches = (Vec<TokenWithSpan>, Vec<(String, MatchRecognizeClause)>);

/// Replaces every `name MATCH_RECOGNIZE (...)` in `tokens` by an identifier
/// named by `name_for`, returning the new tokens and the parsed clauses.
pub fn extract_match_recognize(
    tokens: &[TokenWithSpan],
    mut name_for: impl FnMut() -> String,
) -> Result<ExtractedMatches> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut found = vec![];
    let mut i = 0;
    while i < tokens.len() {
        let mut c = Cursor::new(tokens);
        c.i = i;
        let is_clause = c.is_keyword("MATCH_RECOGNIZE")
            && c.peek_at(1).is_some_and(|t| t.token == Token::LParen);
        let input = match (is_clause, out.last()) {
            (
                true,
                Some(TokenWithSpan {
                    token: Token::Word(w),
                    span,
                }),
            ) => Some((w.value.clone(), Pos::from(span.start))),
            _ => None,
        };
        let Some((input, input_pos)) = input else {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        };
        let input_token = out.pop();
        let pos = c.pos();
        c.i += 2;
        let clause = clause::parse_clause(&mut c, input, input_pos, pos)?;
        let name = name_for();
        let span = input_token.map(|t| t.span).unwrap_or(tokens[i].span);
        out.push(TokenWithSpan::new(
            Token::Word(Word {
                value: name.clone(),
                quote_style: None,
                keyword: Keyword::NoKeyword,
            }),
            span,
        ));
        found.push((name, clause));
        i = c.i;
    }
    Ok((out, found))
}

#[cfg(test)]
mod tests {
    use super::clause::{AfterMatchSkip, RowsPerMatch};
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn tokens(text: &str) -> Vec<TokenWithSpan> {
        Tokenizer::new(&GenericDialect {}, text)
            .tokenize_with_location()
            .expect("tokens")
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect()
    }

    fn text(tokens: &[TokenWithSpan]) -> String {
        tokens
            .iter()
            .map(|t| t.token.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn the_clause_is_cut_out_and_parsed() {
        let sql = "SELECT * FROM Ticker MATCH_RECOGNIZE (
  PARTITION BY symbol ORDER BY rowtime
  MEASURES START_ROW.rowtime AS start_tstamp, LAST(PRICE_DOWN.rowtime) AS bottom_tstamp
  ONE ROW PER MATCH
  AFTER MATCH SKIP TO LAST PRICE_UP
  PATTERN (START_ROW PRICE_DOWN+ PRICE_UP) WITHIN INTERVAL '1' HOUR
  DEFINE
    PRICE_DOWN AS (LAST(PRICE_DOWN.price, 1) IS NULL AND PRICE_DOWN.price < START_ROW.price)
                  OR PRICE_DOWN.price < LAST(PRICE_DOWN.price, 1),
    PRICE_UP AS PRICE_UP.price > LAST(PRICE_DOWN.price, 1)) MR WHERE 1 = 1";
        let (out, found) = extract_match_recognize(&tokens(sql), || "__mr_0".into()).expect("ok");
        assert_eq!(text(&out), "SELECT * FROM __mr_0 MR WHERE 1 = 1");
        let (name, c) = &found[0];
        assert_eq!(name, "__mr_0");
        assert_eq!(c.input, "Ticker");
        assert_eq!(c.partition_by.len(), 1);
        assert_eq!(text(&c.order_by[0].expr.tokens), "rowtime");
        assert!(!c.order_by[0].descending);
        let aliases: Vec<&str> = c.measures.iter().map(|m| m.alias.as_str()).collect();
        assert_eq!(aliases, ["start_tstamp", "bottom_tstamp"]);
        assert_eq!(
            text(&c.measures[1].expr.tokens),
            "LAST ( PRICE_DOWN . rowtime )"
        );
        assert_eq!(c.rows_per_match, RowsPerMatch::One);
        assert!(matches!(&c.skip, AfterMatchSkip::ToLast(v, _) if v == "PRICE_UP"));
        assert_eq!(c.within_ms, Some(3_600_000));
        let vars: Vec<String> = c.pattern.variables().into_iter().map(|v| v.name).collect();
        assert_eq!(vars, ["START_ROW", "PRICE_DOWN", "PRICE_UP"]);
        assert_eq!(c.defines.len(), 2);
        assert_eq!(c.defines[1].var, "PRICE_UP");
        assert_eq!(
            text(&c.defines[1].condition.tokens),
            "PRICE_UP . price > LAST ( PRICE_DOWN . price , 1 )"
        );
    }

    #[test]
    fn defaults_and_errors() {
        let sql = "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts MEASURES A.id AS a PATTERN (A))";
        let (_, found) = extract_match_recognize(&tokens(sql), || "x".into()).expect("ok");
        assert_eq!(found[0].1.skip, AfterMatchSkip::PastLastRow);
        assert_eq!(found[0].1.rows_per_match, RowsPerMatch::One);
        let no_pattern = "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts MEASURES A.id AS a)";
        let e =
            extract_match_recognize(&tokens(no_pattern), || "x".into()).expect_err("no pattern");
        assert!(e.to_string().contains("PATTERN"), "{e}");
        let misplaced = "SELECT * FROM t MATCH_RECOGNIZE (PATTERN (A) ORDER BY ts)";
        let e = extract_match_recognize(&tokens(misplaced), || "x".into()).expect_err("order");
        assert!(e.to_string().contains("')' closing MATCH_RECOGNIZE"), "{e}");
    }
}
