//! SQL errors: what went wrong, where in the script (line and column), and what
//! to do about it.

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::tokenizer::Location;

/// A position in the script, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column (characters), from 1.
    pub column: u64,
}

impl From<datafusion::common::Location> for Pos {
    fn from(l: datafusion::common::Location) -> Self {
        Pos {
            line: l.line,
            column: l.column,
        }
    }
}

impl From<Location> for Pos {
    fn from(l: Location) -> Self {
        Pos {
            line: l.line,
            column: l.column,
        }
    }
}

/// An error in a SQL script, raised before anything runs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    /// What is wrong.
    pub message: String,
    /// Where, when known.
    pub pos: Option<Pos>,
    /// How many characters the offending text spans at `pos` (for the caret line).
    pub len: usize,
    /// What to do about it.
    pub help: Option<String>,
}

/// Result with [`SqlError`].
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

impl SqlError {
    /// An error at `pos`.
    pub fn at(pos: impl Into<Option<Pos>>, message: impl Into<String>) -> Self {
        SqlError {
            message: message.into(),
            pos: pos.into(),
            len: 1,
            help: None,
        }
    }

    /// `not supported yet: <feature>` at `pos`.
    pub fn unsupported(pos: impl Into<Option<Pos>>, feature: impl std::fmt::Display) -> Self {
        Self::at(pos, format!("not supported yet: {feature}"))
    }

    /// Adds advice.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the length of the offending text.
    pub fn with_len(mut self, len: usize) -> Self {
        self.len = len.max(1);
        self
    }

    /// Sets the position if none is known yet.
    pub fn or_at(mut self, pos: Pos) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
        }
        self
    }

    /// Converts a DataFusion planning error, taking its position from the
    /// diagnostic DataFusion attaches when it knows one, else `fallback`.
    pub fn from_datafusion(e: DataFusionError, fallback: Pos) -> Self {
        let (pos, len, help) = match e.diagnostic() {
            Some(d) => {
                let pos = d.span.map(|s| Pos::from(s.start));
                let len = d
                    .span
                    .filter(|s| s.start.line == s.end.line)
                    .map(|s| (s.end.column.saturating_sub(s.start.column)) as usize)
                    .unwrap_or(1);
                let help = d.helps.first().map(|h| h.message.clone());
                (pos, len, help)
            }
            None => (None, 1, None),
        };
        let message = clean_datafusion_message(&e);
        let mut err = SqlError {
            message,
            pos: pos.or(Some(fallback)),
            len: len.max(1),
            help,
        };
        if err.help.is_none() && err.message.contains("No field named") {
            err.help = Some(
                "check the column name and its case: identifiers are case-sensitive, as in Flink"
                    .into(),
            );
        }
        err
    }

    /// Renders the error as a compiler does: message, `--> file:line:col`, the
    /// offending line with a caret, and the help.
    pub fn render(&self, file: &str, script: &str) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some(pos) = self.pos {
            out.push_str(&format!("  --> {}:{}:{}\n", file, pos.line, pos.column));
            if let Some(text) = script.lines().nth(pos.line.saturating_sub(1) as usize) {
                let num = pos.line.to_string();
                let pad = " ".repeat(num.len());
                let caret_at = text
                    .chars()
                    .take(pos.column.saturating_sub(1) as usize)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect::<String>();
                out.push_str(&format!(
                    "{pad} |\n{num} | {text}\n{pad} | {caret_at}{}\n",
                    "^".repeat(self.len)
                ));
            }
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }
}

/// DataFusion's messages carry prefixes such as "Error during planning: " and
/// backtraces of contexts; keep the informative part.
fn clean_datafusion_message(e: &DataFusionError) -> String {
    let mut msg = e.strip_backtrace();
    for prefix in [
        "Error during planning: ",
        "This feature is not implemented: ",
        "Schema error: ",
        "SQL error: ",
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            msg = rest.to_string();
        }
    }
    for prefix in ["Internal error: ", "Optimizer rule '"] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            msg = rest.to_string();
        }
    }
    if let Some(i) = msg.find(".\nThis issue was likely caused by a bug in DataFusion") {
        msg = format!(
            "{}{}",
            &msg[..i],
            msg[i..].split_once("issues.").map(|x| x.1).unwrap_or("")
        );
    }
    if let Some(rest) = msg.strip_prefix("ParserError(\"") {
        msg = rest.trim_end_matches("\")").to_string();
    }
    msg
}
