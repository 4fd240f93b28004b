//! A small cursor over a statement's tokens, for the parts of Flink's grammar
//! that the generic SQL parser does not know (DDL, window TVFs).

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Pos, Result, SqlError};

/// Walks tokens, with positions for errors.
pub struct Cursor<'a> {
    tokens: &'a [TokenWithSpan],
    /// The index of the next token.
    pub i: usize,
    end: Pos,
    /// The second half of a `>>` token whose first half closed a nested
    /// type (`ARRAY<ARRAY<INT>>`) is still to be consumed.
    half_gt: bool,
}

impl<'a> Cursor<'a> {
    /// A cursor at the first of `tokens`.
    pub fn new(tokens: &'a [TokenWithSpan]) -> Self {
        let end = tokens
            .last()
            .map(|t| Pos::from(t.span.end))
            .unwrap_or(Pos { line: 1, column: 1 });
        Self {
            tokens,
            i: 0,
            end,
            half_gt: false,
        }
    }

    /// The next token, if any.
    pub fn peek(&self) -> Option<&'a TokenWithSpan> {
        self.tokens.get(self.i)
    }

    /// The token after the next.
    pub fn peek_at(&self, ahead: usize) -> Option<&'a TokenWithSpan> {
        self.tokens.get(self.i + ahead)
    }

    /// The position of the next token (or the end of the statement).
    pub fn pos(&self) -> Pos {
        self.peek()
            .map(|t| Pos::from(t.span.start))
            .unwrap_or(self.end)
    }

    /// Whether every token has been consumed.
    pub fn done(&self) -> bool {
        self.i >= self.tokens.len()
    }

    /// Consumes and returns the next token.
    pub fn advance(&mut self) -> Option<&'a TokenWithSpan> {
        let t = self.tokens.get(self.i);
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    /// Whether the next token is the unquoted keyword `kw` (case-insensitive).
    pub fn is_keyword(&self, kw: &str) -> bool {
        self.is_keyword_at(0, kw)
    }

    /// Whether the token `ahead` positions on is the unquoted keyword `kw`.
    pub fn is_keyword_at(&self, ahead: usize, kw: &str) -> bool {
        matches!(self.peek_at(ahead).map(|t| &t.token), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
    }

    /// Consumes `kw` if it is next.
    pub fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.is_keyword(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Consumes the keywords `kws` if they are all next.
    pub fn eat_keywords(&mut self, kws: &[&str]) -> bool {
        if kws
            .iter()
            .enumerate()
            .all(|(k, kw)| self.is_keyword_at(k, kw))
        {
            self.i += kws.len();
            true
        } else {
            false
        }
    }

    /// Consumes `kw` or fails, naming what was found.
    pub fn expect_keyword(&mut self, kw: &str) -> Result<()> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{kw}'")))
        }
    }

    /// Whether the next token is `t`.
    pub fn is_token(&self, t: &Token) -> bool {
        self.peek().is_some_and(|x| &x.token == t)
    }

    /// Consumes `t` if it is next.
    pub fn eat_token(&mut self, t: &Token) -> bool {
        // The second half of a `>>` that closed a nested type comes first.
        if self.half_gt {
            if *t == Token::Gt {
                self.half_gt = false;
                return true;
            }
            return false;
        }
        if self.is_token(t) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `t` or fails.
    pub fn expect_token(&mut self, t: &Token) -> Result<()> {
        if self.eat_token(t) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{t}'")))
        }
    }

    /// Consumes the `>` that closes a type's parameters, also when the
    /// tokenizer merged it with the next one into `>>`.
    pub fn expect_close_angle(&mut self) -> Result<()> {
        if self.half_gt {
            self.half_gt = false;
            return Ok(());
        }
        if self.eat_token(&Token::Gt) {
            return Ok(());
        }
        if self.eat_token(&Token::ShiftRight) {
            self.half_gt = true;
            return Ok(());
        }
        Err(self.unexpected("'>'"))
    }

    /// An identifier (quoted or not), returned as written (Flink identifiers are
    /// case-sensitive).
    pub fn identifier(&mut self, what: &str) -> Result<(String, Pos)> {
        let pos = self.pos();
        match self.peek().map(|t| &t.token) {
            Some(Token::Word(w)) => {
                self.i += 1;
                Ok((w.value.clone(), pos))
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// A possibly dotted name (`catalog.db.table`); the last part is returned.
    pub fn object_name(&mut self, what: &str) -> Result<(String, Pos)> {
        let (mut name, pos) = self.identifier(what)?;
        while self.eat_token(&Token::Period) {
            name = self.identifier(what)?.0;
        }
        Ok((name, pos))
    }

    /// A single-quoted string literal.
    pub fn string(&mut self, what: &str) -> Result<String> {
        match self.peek().map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => {
                self.i += 1;
                Ok(s.clone())
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// An unsigned integer literal.
    pub fn integer(&mut self, what: &str) -> Result<u64> {
        match self.peek().map(|t| &t.token) {
            Some(Token::Number(n, _)) => match n.parse() {
                Ok(v) => {
                    self.i += 1;
                    Ok(v)
                }
                Err(_) => Err(self.unexpected(what)),
            },
            _ => Err(self.unexpected(what)),
        }
    }

    /// Skips to the matching `)` of a `(` just consumed, returning the index of
    /// the first token inside and of the `)`.
    pub fn skip_parenthesised(&mut self) -> Result<(usize, usize)> {
        let start = self.i;
        let mut depth = 1;
        while let Some(t) = self.advance() {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok((start, self.i - 1));
                    }
                }
                _ => {}
            }
        }
        Err(SqlError::at(
            self.end,
            "unbalanced parentheses: a ')' is missing",
        ))
    }

    /// Tokens from the cursor up to (not including) the next top-level `,` or
    /// unmatched `)`; the cursor stops before that token.
    pub fn until_comma_or_close(&mut self) -> &'a [TokenWithSpan] {
        let start = self.i;
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            match t.token {
                Token::LParen | Token::LBracket => depth += 1,
                Token::RParen | Token::RBracket if depth == 0 => break,
                Token::RParen | Token::RBracket => depth -= 1,
                Token::Comma if depth == 0 => break,
                _ => {}
            }
            self.i += 1;
        }
        &self.tokens[start..self.i]
    }

    /// The tokens in `[from, to)`.
    pub fn slice(&self, from: usize, to: usize) -> &'a [TokenWithSpan] {
        &self.tokens[from..to]
    }

    /// An error "expected X, found Y" at the next token.
    pub fn unexpected(&self, expected: &str) -> SqlError {
        let found = match self.peek() {
            Some(t) => format!("'{}'", t.token),
            None => "the end of the statement".to_string(),
        };
        let len = self
            .peek()
            .map(|t| t.token.to_string().chars().count())
            .unwrap_or(1);
        SqlError::at(self.pos(), format!("expected {expected}, found {found}")).with_len(len)
    }
}
