//! The row pattern of `PATTERN (...)`: variables, concatenation, `|`,
//! grouping, quantifiers (`* + ? {n} {n,} {,m} {n,m}`, each optionally
//! reluctant with a trailing `?`), `PERMUTE`, `{- -}`, `^` and `$`, and
//! Vigil's absence, `NOT v` at the end.

use datafusion::sql::sqlparser::tokenizer::Token;
use vigil_engine::pattern::ast::Pattern;

use crate::cursor::Cursor;
use crate::error::{Pos, Result, SqlError};

/// A pattern variable as written, with where.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VarRef {
    /// The name, case as written.
    pub name: String,
    /// Where it is written.
    pub pos: Pos,
}

impl std::fmt::Display for VarRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)
    }
}

/// A pattern with its variables still named.
pub type PatternSyntax = Pattern<VarRef>;

/// Whether the next token is a `?` (the tokenizer may read it as a placeholder).
fn is_question(c: &Cursor) -> bool {
    matches!(c.peek().map(|t| &t.token), Some(Token::Placeholder(s)) if s == "?")
        || matches!(c.peek().map(|t| &t.token), Some(Token::Char('?')))
}

/// `??` read as one placeholder token.
fn is_double_question(c: &Cursor) -> bool {
    matches!(c.peek().map(|t| &t.token), Some(Token::Placeholder(s)) if s == "??")
}

/// Parses a pattern up to (not including) the closing `)`.
pub fn parse_pattern(c: &mut Cursor) -> Result<PatternSyntax> {
    if c.is_token(&Token::RParen) {
        return Ok(Pattern::Empty);
    }
    alternation(c)
}

fn alternation(c: &mut Cursor) -> Result<PatternSyntax> {
    let mut alts = vec![concat(c)?];
    while c.eat_token(&Token::Pipe) {
        alts.push(concat(c)?);
    }
    Ok(if alts.len() == 1 {
        alts.remove(0)
    } else {
        Pattern::Alt(alts)
    })
}

fn ends_concat(c: &Cursor) -> bool {
    c.done()
        || c.is_token(&Token::RParen)
        || c.is_token(&Token::Pipe)
        || c.is_token(&Token::Comma)
        || (c.is_token(&Token::Minus) && c.peek_at(1).is_some_and(|t| t.token == Token::RBrace))
}

fn concat(c: &mut Cursor) -> Result<PatternSyntax> {
    let mut parts = vec![];
    while !ends_concat(c) {
        parts.push(quantified(c)?);
    }
    Ok(match parts.len() {
        0 => Pattern::Empty,
        1 => parts.remove(0),
        _ => Pattern::Concat(parts),
    })
}

fn quantified(c: &mut Cursor) -> Result<PatternSyntax> {
    let mut p = primary(c)?;
    loop {
        let pos = c.pos();
        let (min, max) = if c.eat_token(&Token::Mul) {
            (0, None)
        } else if c.eat_token(&Token::Plus) {
            (1, None)
        } else if is_double_question(c) {
            c.i += 1;
            p = Pattern::Repeat {
                inner: Box::new(p),
                min: 0,
                max: Some(1),
                greedy: false,
            };
            continue;
        } else if is_question(c) {
            c.i += 1;
            (0, Some(1))
        } else if c.is_token(&Token::LBrace) && c.peek_at(1).is_none_or(|t| t.token != Token::Minus)
        {
            c.i += 1;
            bounds(c)?
        } else {
            return Ok(p);
        };
        if let Some(m) = max {
            if m < min {
                return Err(SqlError::at(
                    pos,
                    format!("quantifier {{{min},{m}}}: the maximum is below the minimum"),
                ));
            }
        }
        let greedy = if is_question(c) {
            c.i += 1;
            false
        } else {
            true
        };
        p = Pattern::Repeat {
            inner: Box::new(p),
            min,
            max,
            greedy,
        };
    }
}

/// `n}`, `n,}`, `,m}`, `n,m}` after `{`.
fn bounds(c: &mut Cursor) -> Result<(u32, Option<u32>)> {
    let num = |c: &mut Cursor| -> Result<u32> {
        let at = c.pos();
        let n = c.integer("a repetition count")?;
        u32::try_from(n).map_err(|_| SqlError::at(at, format!("repetition count {n} is too large")))
    };
    let min = if c.is_token(&Token::Comma) {
        0
    } else {
        num(c)?
    };
    if c.eat_token(&Token::RBrace) {
        return Ok((min, Some(min)));
    }
    c.expect_token(&Token::Comma)?;
    if c.eat_token(&Token::RBrace) {
        return Ok((min, None));
    }
    let max = num(c)?;
    c.expect_token(&Token::RBrace)?;
    Ok((min, Some(max)))
}

fn primary(c: &mut Cursor) -> Result<PatternSyntax> {
    if c.eat_token(&Token::LParen) {
        let inner = parse_pattern(c)?;
        c.expect_token(&Token::RParen)?;
        return Ok(inner);
    }
    if c.is_token(&Token::LBrace) && c.peek_at(1).is_some_and(|t| t.token == Token::Minus) {
        c.i += 2;
        let inner = alternation(c)?;
        c.expect_token(&Token::Minus)?;
        c.expect_token(&Token::RBrace)?;
        return Ok(Pattern::Exclude(Box::new(inner)));
    }
    if c.eat_token(&Token::Caret) {
        return Ok(Pattern::Start);
    }
    if matches!(c.peek().map(|t| &t.token), Some(Token::Placeholder(s)) if s == "$")
        || matches!(c.peek().map(|t| &t.token), Some(Token::Char('$')))
    {
        c.i += 1;
        return Ok(Pattern::End);
    }
    if c.eat_keyword("NOT") {
        // Absence (beyond the standard): the planner checks where it stands.
        return Ok(Pattern::Not(Box::new(primary(c)?)));
    }
    if c.is_keyword("PERMUTE") && c.peek_at(1).is_some_and(|t| t.token == Token::LParen) {
        c.i += 2;
        let mut parts = vec![alternation(c)?];
        while c.eat_token(&Token::Comma) {
            parts.push(alternation(c)?);
        }
        c.expect_token(&Token::RParen)?;
        return Ok(Pattern::Permute(parts));
    }
    // The tokenizer reads `$A` as one placeholder: `$` then the variable A
    // (which can never both follow the partition's end, so any quantifier
    // after it may as well apply to both).
    if let Some(Token::Placeholder(s)) = c.peek().map(|t| &t.token) {
        if let Some(name) = s.strip_prefix('$').filter(|n| !n.is_empty()) {
            let mut pos = c.pos();
            pos.column += 1;
            let var = Pattern::Var(VarRef {
                name: name.to_string(),
                pos,
            });
            c.i += 1;
            return Ok(Pattern::Concat(vec![Pattern::End, var]));
        }
    }
    // Likewise `A$` is one word (`$` may be part of an identifier).
    if let Some(Token::Word(w)) = c.peek().map(|t| &t.token) {
        if let Some(name) = w
            .value
            .strip_suffix('$')
            .filter(|n| w.quote_style.is_none() && !n.is_empty())
        {
            let var = Pattern::Var(VarRef {
                name: name.to_string(),
                pos: c.pos(),
            });
            c.i += 1;
            return Ok(Pattern::Concat(vec![var, Pattern::End]));
        }
    }
    match c.peek().map(|t| &t.token) {
        Some(Token::Word(_)) => {
            let (name, pos) = c.identifier("a pattern variable")?;
            Ok(Pattern::Var(VarRef { name, pos }))
        }
        _ => Err(c.unexpected("a pattern variable, '(', PERMUTE, '^' or '$'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn parse(text: &str) -> Result<String> {
        let tokens: Vec<_> = Tokenizer::new(&GenericDialect {}, text)
            .tokenize_with_location()
            .expect("tokens")
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        let mut c = Cursor::new(&tokens);
        let p = parse_pattern(&mut c)?;
        assert!(c.done(), "left over at {:?}", c.pos());
        let vars = p.variables();
        let index = |v: &VarRef| -> Result<String> {
            Ok(format!(
                "v{}",
                vars.iter()
                    .position(|n| n.name == v.name)
                    .unwrap_or(usize::MAX)
            ))
        };
        Ok(p.try_map(&index)?.to_string())
    }

    #[test]
    fn quantifiers_greedy_and_reluctant() {
        assert_eq!(parse("A B* C").expect("p"), "(v0 v1* v2)");
        assert_eq!(parse("A B*? C").expect("p"), "(v0 v1*? v2)");
        assert_eq!(parse("A+? B").expect("p"), "(v0+? v1)");
        assert_eq!(parse("DOWN{2,} UP").expect("p"), "(v0{2,} v1)");
        assert_eq!(
            parse("A{3} B{1,4}? C{,2}").expect("p"),
            "(v0{3} v1{1,4}? v2{0,2})"
        );
        assert_eq!(parse("A? B??").expect("p"), "(v0? v1??)");
    }

    #[test]
    fn an_end_anchor_before_a_variable() {
        // `$A$` would be a dollar-quoted string: spaces are needed there.
        assert_eq!(parse("($A $)").expect("p"), "(($ v0) $)");
        assert_eq!(parse("(A$)").expect("p"), "(v0 $)");
    }

    #[test]
    fn alternation_groups_permute_anchors() {
        assert_eq!(parse("(L | H) A").expect("p"), "((v0 | v1) v2)");
        assert_eq!(parse("(A B)+ C").expect("p"), "((v0 v1)+ v2)");
        assert_eq!(parse("PERMUTE(B, C)").expect("p"), "PERMUTE(v0, v1)");
        assert_eq!(parse("^A").expect("p"), "(^ v0)");
        assert_eq!(parse("() | A").expect("p"), "(() | v0)");
        assert_eq!(parse("A {- B -} C").expect("p"), "(v0 {- v1 -} v2)");
        assert_eq!(parse("O NOT P").expect("p"), "(v0 NOT v1)");
    }

    #[test]
    fn bad_patterns_are_errors_with_positions() {
        let e = parse("A B{3,1}").expect_err("bad bounds");
        assert!(
            e.to_string().contains("maximum is below the minimum"),
            "{e}"
        );
        let e = parse("* A").expect_err("quantifier without a variable");
        assert!(e.to_string().contains("pattern variable"), "{e}");
    }
}
