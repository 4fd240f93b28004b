//! `x IS [NOT] JSON [VALUE | OBJECT | ARRAY | SCALAR]`, which the generic
//! SQL parser does not know, becomes `[NOT] is_json(x, 'VALUE')` in the token
//! stream. The operand is what binds tighter than IS: a (dotted) name, a
//! literal, or a parenthesised expression or function call.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};

fn word(value: &str, keyword: Keyword, like: &TokenWithSpan) -> TokenWithSpan {
    TokenWithSpan::new(
        Token::Word(Word {
            value: value.to_string(),
            quote_style: None,
            keyword,
        }),
        like.span,
    )
}

fn is_kw(t: &TokenWithSpan, kw: &str) -> bool {
    matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

/// Where the operand before position `end` (exclusive) starts, if there is one.
fn operand_start(out: &[TokenWithSpan], end: usize) -> Option<usize> {
    let last = end.checked_sub(1)?;
    let mut start = match &out[last].token {
        Token::RParen => {
            let mut depth = 0usize;
            let mut i = last;
            loop {
                match out[i].token {
                    Token::RParen => depth += 1,
                    Token::LParen => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i = i.checked_sub(1)?;
            }
            // A function call: its name too.
            match i.checked_sub(1).map(|p| &out[p].token) {
                Some(Token::Word(w))
                    if w.keyword == Keyword::NoKeyword || w.quote_style.is_some() =>
                {
                    i - 1
                }
                _ => i,
            }
        }
        Token::Word(_) | Token::SingleQuotedString(_) | Token::Number(..) => last,
        _ => return None,
    };
    // `t.col`: the qualifiers too.
    while start >= 2
        && out[start - 1].token == Token::Period
        && matches!(out[start - 2].token, Token::Word(_))
    {
        start -= 2;
    }
    Some(start)
}

/// Rewrites every `IS [NOT] JSON [kind]` of `tokens` (whitespace already
/// dropped).
pub fn rewrite_is_json(tokens: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let not = tokens.get(i + 1).is_some_and(|t| is_kw(t, "NOT"));
        let json_at = i + 1 + usize::from(not);
        let is_json =
            is_kw(&tokens[i], "IS") && tokens.get(json_at).is_some_and(|t| is_kw(t, "JSON"));
        let start = if is_json {
            operand_start(&out, out.len())
        } else {
            None
        };
        let Some(start) = start else {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        };
        let mut next = json_at + 1;
        let kind = match tokens.get(next) {
            Some(t)
                if ["VALUE", "OBJECT", "ARRAY", "SCALAR"]
                    .iter()
                    .any(|k| is_kw(t, k)) =>
            {
                next += 1;
                match &t.token {
                    Token::Word(w) => w.value.to_ascii_uppercase(),
                    _ => "VALUE".to_string(),
                }
            }
            _ => "VALUE".to_string(),
        };
        let operand: Vec<TokenWithSpan> = out.drain(start..).collect();
        let at = &tokens[i];
        if not {
            out.push(word("NOT", Keyword::NOT, at));
        }
        out.push(word("is_json", Keyword::NoKeyword, at));
        out.push(TokenWithSpan::new(Token::LParen, at.span));
        out.extend(operand);
        out.push(TokenWithSpan::new(Token::Comma, at.span));
        out.push(TokenWithSpan::new(Token::SingleQuotedString(kind), at.span));
        out.push(TokenWithSpan::new(Token::RParen, at.span));
        i = next;
    }
    out
}
