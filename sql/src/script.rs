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
    Ok(out)
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
