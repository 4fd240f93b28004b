//! Splitting a script into statements, each a run of tokens with positions.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::error::{Pos, Result, SqlError};

/// One statement of a script.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The tokens, without whitespace and comments, without the final `;`.
    pub tokens: Vec<TokenWithSpan>,
    /// The statement's text as written.
    pub text: String,
}

impl Statement {
    /// Where the statement starts.
    pub fn pos(&self) -> Pos {
        self.tokens
            .first()
            .map(|t| Pos::from(t.span.start))
            .unwrap_or(Pos { line: 1, column: 1 })
    }

    /// The first `n` keywords, upper-cased (non-word tokens end the list).
    pub fn leading_words(&self, n: usize) -> Vec<String> {
        self.tokens
            .iter()
            .take(n)
            .map_while(|t| match &t.token {
                Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
                _ => None,
            })
            .collect()
    }
}

/// Tokenizes `script` (Flink dialect: backquoted identifiers, `--` and `/* */`
/// comments) and splits it at top-level semicolons.
pub fn split_statements(script: &str) -> Result<Vec<Statement>> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, script)
        .tokenize_with_location()
        .map_err(|e| {
            SqlError::at(
                Pos::from(e.location),
                format!("cannot tokenize: {}", e.message),
            )
            .with_help("check for an unterminated string or quoted identifier")
        })?;
    let offsets = LineOffsets::new(script);
    let mut out = vec![];
    let mut current: Vec<TokenWithSpan> = vec![];
    let flush = |current: &mut Vec<TokenWithSpan>, out: &mut Vec<Statement>| {
        if current.is_empty() {
            return;
        }
        let start = current[0].span.start;
        let end = current[current.len() - 1].span.end;
        let text = script
            [offsets.byte(start.line, start.column)..offsets.byte(end.line, end.column)]
            .to_string();
        out.push(Statement {
            tokens: std::mem::take(current),
            text,
        });
    };
    for t in tokens {
        match &t.token {
            Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab)
            | Token::Whitespace(Whitespace::SingleLineComment { .. })
            | Token::Whitespace(Whitespace::MultiLineComment(_)) => {}
            Token::SemiColon => flush(&mut current, &mut out),
            Token::EOF => {}
            _ => current.push(t),
        }
    }
    flush(&mut current, &mut out);
    for st in &mut out {
        bracket_distinct_from(&mut st.tokens);
        mark_as_of_tables(&mut st.tokens);
    }
    Ok(out)
}

/// Puts `a IS [NOT] DISTINCT FROM b` in parentheses when both operands are
/// simple (names, literals, calls, parenthesized): the SQL parser reads the
/// right operand as a whole expression, so `a IS NOT DISTINCT FROM b AND c`
/// would become `a IS NOT DISTINCT FROM (b AND c)`; Flink's reads
/// `(a IS NOT DISTINCT FROM b) AND c`.
fn bracket_distinct_from(tokens: &mut Vec<TokenWithSpan>) {
    let word = |t: &TokenWithSpan, k: &str| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
    let mut i = 0;
    while i < tokens.len() {
        if !word(&tokens[i], "IS") {
            i += 1;
            continue;
        }
        let not = tokens.get(i + 1).is_some_and(|t| word(t, "NOT"));
        let d = i + 1 + usize::from(not);
        let is_distinct = tokens.get(d).is_some_and(|t| word(t, "DISTINCT"))
            && tokens.get(d + 1).is_some_and(|t| word(t, "FROM"));
        let (Some(start), Some(end)) = (
            is_distinct.then(|| operand_start(tokens, i)).flatten(),
            is_distinct.then(|| operand_end(tokens, d + 2)).flatten(),
        ) else {
            i += 1;
            continue;
        };
        let open = TokenWithSpan::new(Token::LParen, tokens[start].span);
        let close = TokenWithSpan::new(Token::RParen, tokens[end].span);
        tokens.insert(end + 1, close);
        tokens.insert(start, open);
        i = end + 3;
    }
}

/// `JOIN t FOR SYSTEM_TIME AS OF o.time AS x` (which the SQL parser does not
/// read) becomes `JOIN <marker> AS x`, the marker naming the table and the
/// time column (see [`crate::as_of`]); `PROCTIME()` or another expression
/// leaves the column empty: processing time.
fn mark_as_of_tables(tokens: &mut Vec<TokenWithSpan>) {
    let word = |t: &TokenWithSpan, k: &str| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
    let mut i = 1;
    while i + 4 < tokens.len() {
        let found = word(&tokens[i], "FOR")
            && word(&tokens[i + 1], "SYSTEM_TIME")
            && word(&tokens[i + 2], "AS")
            && word(&tokens[i + 3], "OF");
        let end = found.then(|| operand_end(tokens, i + 4)).flatten();
        let after_name = matches!(tokens[i - 1].token, Token::Word(_));
        match end {
            Some(end) if after_name => {
                // `o.time` or `time`: the column's path; anything else: none.
                let operand = &tokens[i + 4..=end];
                let path = operand.len() % 2 == 1
                    && operand
                        .iter()
                        .skip(1)
                        .step_by(2)
                        .all(|t| t.token == Token::Period)
                    && operand
                        .iter()
                        .step_by(2)
                        .all(|t| matches!(t.token, Token::Word(_)));
                let column = if path {
                    operand
                        .iter()
                        .step_by(2)
                        .filter_map(|t| match &t.token {
                            Token::Word(w) => Some(w.value.as_str()),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join(".")
                } else {
                    String::new()
                };
                if let Token::Word(w) = &mut tokens[i - 1].token {
                    w.value = crate::as_of::marker(&column, &w.value);
                }
                tokens.drain(i..=end);
            }
            _ => i += 1,
        }
    }
}

/// Where the simple operand ending just before `at` starts.
fn operand_start(tokens: &[TokenWithSpan], at: usize) -> Option<usize> {
    let mut j = at.checked_sub(1)?;
    if tokens[j].token == Token::RParen {
        let mut depth = 0;
        loop {
            match tokens[j].token {
                Token::RParen => depth += 1,
                Token::LParen => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                break;
            }
            j = j.checked_sub(1)?;
        }
        // A call: its name.
        if j > 0 && matches!(tokens[j - 1].token, Token::Word(_)) {
            j -= 1;
        }
    } else if !matches!(
        tokens[j].token,
        Token::Word(_) | Token::Number(..) | Token::SingleQuotedString(_)
    ) {
        return None;
    }
    while j >= 2
        && tokens[j - 1].token == Token::Period
        && matches!(tokens[j - 2].token, Token::Word(_))
    {
        j -= 2;
    }
    Some(j)
}

/// Where the simple operand starting at `from` ends.
fn operand_end(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    let mut j = from;
    match tokens.get(j)?.token {
        Token::Word(_) => {
            while tokens.get(j + 1).is_some_and(|t| t.token == Token::Period)
                && tokens
                    .get(j + 2)
                    .is_some_and(|t| matches!(t.token, Token::Word(_)))
            {
                j += 2;
            }
            if tokens.get(j + 1).is_some_and(|t| t.token == Token::LParen) {
                j += 1;
            } else {
                return Some(j);
            }
        }
        Token::LParen => {}
        Token::Number(..) | Token::SingleQuotedString(_) => return Some(j),
        _ => return None,
    }
    let mut depth = 0;
    loop {
        match tokens.get(j)?.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return Some(j);
        }
        j += 1;
    }
}

/// Maps (line, column) positions, 1-based and counted in characters, to byte offsets.
pub struct LineOffsets<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineOffsets<'a> {
    /// Indexes the line starts of `text`.
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    /// The byte offset of `line:column`, clamped to the text.
    pub fn byte(&self, line: u64, column: u64) -> usize {
        let Some(&start) = self.starts.get(line.saturating_sub(1) as usize) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        rest.char_indices()
            .nth(column.saturating_sub(1) as usize)
            .map(|(i, _)| start + i)
            .unwrap_or(self.text.len())
    }
}

/// The text spanned by `tokens[from..to]` in `script`.
pub fn token_text(script_offsets: &LineOffsets, tokens: &[TokenWithSpan]) -> String {
    match (tokens.first(), tokens.last()) {
        (Some(a), Some(b)) => {
            let s = script_offsets.byte(a.span.start.line, a.span.start.column);
            let e = script_offsets.byte(b.span.end.line, b.span.end.column);
            script_offsets.text[s..e].to_string()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sql: &str) -> String {
        let st = split_statements(sql).expect("tokens");
        st[0]
            .tokens
            .iter()
            .map(|t| t.token.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_table_read_as_of_a_time_is_marked_with_the_time_column() {
        let users = crate::as_of::marker("o.proc", "users");
        assert_eq!(
            text("SELECT 1 FROM o JOIN users FOR SYSTEM_TIME AS OF o.proc AS u ON o.k = u.k"),
            format!("SELECT 1 FROM o JOIN {users} AS u ON o . k = u . k")
        );
        let users = crate::as_of::marker("", "Users");
        assert_eq!(
            text("SELECT 1 FROM o LEFT JOIN `Users` FOR SYSTEM_TIME AS OF PROCTIME() u ON TRUE"),
            format!("SELECT 1 FROM o LEFT JOIN `{users}` u ON TRUE")
        );
    }

    #[test]
    fn is_distinct_from_binds_tighter_than_and() {
        assert_eq!(
            text("SELECT 1 FROM t WHERE a.k IS NOT DISTINCT FROM b.k AND x > 1"),
            "SELECT 1 FROM t WHERE ( a . k IS NOT DISTINCT FROM b . k ) AND x > 1"
        );
        assert_eq!(
            text("SELECT f(x) IS DISTINCT FROM (y + 1) OR z"),
            "SELECT ( f ( x ) IS DISTINCT FROM ( y + 1 ) ) OR z"
        );
    }
}
