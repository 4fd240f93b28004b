//! Flink's map constructor `MAP[k1, v1, k2, v2, ...]`, which the generic SQL
//! parser does not read, becomes `make_map(k1, v1, k2, v2, ...)` in the
//! token stream.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};

/// Rewrites every `MAP[...]` of `tokens`, nested ones included.
pub fn rewrite_map_literals(tokens: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let is_map = matches!(&tokens[i].token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("MAP"))
            && tokens
                .get(i + 1)
                .is_some_and(|t| t.token == Token::LBracket);
        let close = is_map.then(|| closing_bracket(tokens, i + 1)).flatten();
        match close {
            Some(close) => {
                let span = tokens[i].span;
                out.push(TokenWithSpan::new(
                    Token::Word(Word {
                        value: "make_map".into(),
                        quote_style: None,
                        keyword: Keyword::NoKeyword,
                    }),
                    span,
                ));
                out.push(TokenWithSpan::new(Token::LParen, tokens[i + 1].span));
                out.extend(rewrite_map_literals(&tokens[i + 2..close]));
                out.push(TokenWithSpan::new(Token::RParen, tokens[close].span));
                i = close + 1;
            }
            None => {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
    }
    out
}

/// The index of the `]` closing the `[` at `open`.
fn closing_bracket(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LBracket => depth += 1,
            Token::RBracket => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_constructor_becomes_make_map() {
        let st = crate::script::split_statements("SELECT MAP['a', MAP['x', 1]['x']]['a'] FROM t")
            .expect("tokens");
        let text: Vec<String> = rewrite_map_literals(&st[0].tokens)
            .iter()
            .map(|t| t.token.to_string())
            .collect();
        assert_eq!(
            text.join(" "),
            "SELECT make_map ( 'a' , make_map ( 'x' , 1 ) [ 'x' ] ) [ 'a' ] FROM t"
        );
    }
}
