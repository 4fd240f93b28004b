//! Window table-valued functions: `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), size))`
//! and HOP, CUMULATE, SESSION, positional or with named parameters. The generic
//! SQL parser does not know them, so they are cut out of the token stream and
//! replaced by the name of a table that the planner registers for them.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};
use vigil_engine::window::WindowKind;

use crate::cursor::Cursor;
use crate::error::{Pos, Result, SqlError};

/// A window TVF call found in a query.
#[derive(Debug, Clone)]
pub struct WindowTvf {
    /// The window kind and durations.
    pub kind: WindowKind,
    /// The input table or view.
    pub table: String,
    /// Where the input is named.
    pub table_pos: Pos,
    /// The DESCRIPTOR column.
    pub time_col: String,
    /// Where the DESCRIPTOR column is named.
    pub time_pos: Pos,
    /// SESSION's PARTITION BY columns.
    pub partition_by: Vec<(String, Pos)>,
    /// Where the call starts.
    pub pos: Pos,
}

enum Arg {
    Table {
        name: String,
        pos: Pos,
        partition_by: Vec<(String, Pos)>,
    },
    Descriptor {
        col: String,
        pos: Pos,
    },
    Interval {
        ms: i64,
        pos: Pos,
    },
}

/// The rewritten tokens and the window TVF calls cut out of them, by the name
/// that replaced each.
pub type Extracted = (Vec<TokenWithSpan>, Vec<(String, WindowTvf)>);

const FUNCTIONS: [&str; 4] = ["TUMBLE", "HOP", "CUMULATE", "SESSION"];

/// Replaces every window TVF call in `tokens` by an identifier named by
/// `name_for` (called once per call, in order), returning the new tokens and
/// the calls.
pub fn extract_window_tvfs(
    tokens: &[TokenWithSpan],
    mut name_for: impl FnMut() -> String,
) -> Result<Extracted> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut calls = vec![];
    let mut i = 0;
    while i < tokens.len() {
        let mut c = Cursor::new(tokens);
        c.i = i;
        let is_call = c.is_keyword("TABLE")
            && c.peek_at(1).is_some_and(|t| t.token == Token::LParen)
            && FUNCTIONS.iter().any(|f| c.is_keyword_at(2, f))
            && c.peek_at(3).is_some_and(|t| t.token == Token::LParen);
        if !is_call {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        let start = tokens[i].clone();
        c.i += 2;
        let tvf = parse_call(&mut c)?;
        c.expect_token(&Token::RParen)?;
        let name = name_for();
        out.push(TokenWithSpan::new(
            Token::Word(Word {
                value: name.clone(),
                quote_style: None,
                keyword: datafusion::sql::sqlparser::keywords::Keyword::NoKeyword,
            }),
            start.span,
        ));
        calls.push((name, tvf));
        i = c.i;
    }
    Ok((out, calls))
}

fn parse_call(c: &mut Cursor) -> Result<WindowTvf> {
    let pos = c.pos();
    let (func, _) = c.identifier("a window function")?;
    let func = func.to_ascii_uppercase();
    c.expect_token(&Token::LParen)?;
    let mut positional: Vec<Arg> = vec![];
    let mut named: Vec<(String, Arg, Pos)> = vec![];
    loop {
        let arg_pos = c.pos();
        let is_named = matches!(c.peek().map(|t| &t.token), Some(Token::Word(_)))
            && c.peek_at(1).is_some_and(|t| t.token == Token::RArrow);
        let name = if is_named {
            let (n, _) = c.identifier("a parameter name")?;
            c.i += 1;
            Some(n.to_ascii_uppercase())
        } else {
            None
        };
        let arg = parse_arg(c)?;
        match name {
            Some(n) => named.push((n, arg, arg_pos)),
            None if !named.is_empty() => {
                return Err(SqlError::at(
                    arg_pos,
                    "a positional argument cannot follow a named one",
                ));
            }
            None => positional.push(arg),
        }
        if c.eat_token(&Token::RParen) {
            break;
        }
        if !c.eat_token(&Token::Comma) {
            return Err(c.unexpected(&format!("',' or ')' in {func}(...)")));
        }
    }
    let params: &[&str] = match func.as_str() {
        "TUMBLE" => &["DATA", "TIMECOL", "SIZE", "OFFSET"],
        "HOP" => &["DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"],
        "CUMULATE" => &["DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"],
        _ => &["DATA", "TIMECOL", "GAP"],
    };
    if positional.len() > params.len() {
        return Err(SqlError::at(
            pos,
            format!(
                "{func} takes at most {} arguments: {}",
                params.len(),
                params.join(", ")
            ),
        ));
    }
    let mut slots: Vec<Option<Arg>> = params.iter().map(|_| None).collect();
    for (k, a) in positional.into_iter().enumerate() {
        slots[k] = Some(a);
    }
    for (n, a, p) in named {
        match params.iter().position(|x| *x == n) {
            Some(k) if slots[k].is_none() => slots[k] = Some(a),
            Some(_) => return Err(SqlError::at(p, format!("parameter {n} is given twice"))),
            None => {
                return Err(SqlError::at(
                    p,
                    format!(
                        "{func} has no parameter {n}; its parameters are {}",
                        params.join(", ")
                    ),
                ))
            }
        }
    }
    let mut slots = slots.into_iter();
    let (table, table_pos, partition_by) = match slots.next().flatten() {
        Some(Arg::Table {
            name,
            pos,
            partition_by,
        }) => (name, pos, partition_by),
        _ => {
            return Err(SqlError::at(
                pos,
                format!("the first argument of {func} must be TABLE <name>"),
            )
            .with_help("a window TVF takes a table or view by name: define a view for a subquery"))
        }
    };
    let (time_col, time_pos) = match slots.next().flatten() {
        Some(Arg::Descriptor { col, pos }) => (col, pos),
        _ => {
            return Err(SqlError::at(
                pos,
                format!("the second argument of {func} must be DESCRIPTOR(<time column>)"),
            ))
        }
    };
    let mut durations = vec![];
    for (k, slot) in slots.enumerate() {
        let name = params[k + 2];
        match slot {
            Some(Arg::Interval { ms, pos }) => durations.push(Some((ms, pos))),
            Some(_) => {
                return Err(SqlError::at(
                    pos,
                    format!("{func}'s {name} must be an INTERVAL, e.g. INTERVAL '10' SECOND"),
                ))
            }
            None if name == "OFFSET" => durations.push(None),
            None => {
                return Err(SqlError::at(
                    pos,
                    format!("{func} needs its {name} argument (an INTERVAL)"),
                ))
            }
        }
    }
    let positive = |d: &Option<(i64, Pos)>, what: &str| -> Result<i64> {
        match d {
            Some((ms, _)) if *ms > 0 => Ok(*ms),
            Some((_, p)) => Err(SqlError::at(
                *p,
                format!("{func}'s {what} must be positive"),
            )),
            None => Err(SqlError::at(pos, format!("{func} needs its {what}"))),
        }
    };
    let offset = durations
        .last()
        .and_then(|d| d.map(|(ms, _)| ms))
        .unwrap_or(0);
    if !partition_by.is_empty() && func != "SESSION" {
        return Err(SqlError::at(
            table_pos,
            format!("PARTITION BY is only allowed in SESSION, not in {func}"),
        ));
    }
    let kind = match func.as_str() {
        "TUMBLE" => {
            let size = positive(&durations[0], "SIZE")?;
            if offset.abs() >= size {
                // As Flink 2.3: "TUMBLE table function parameters must satisfy abs(offset) < size".
                return Err(SqlError::at(
                    pos,
                    format!("TUMBLE needs abs(OFFSET) < SIZE, but SIZE is {size} ms and OFFSET {offset} ms"),
                ));
            }
            WindowKind::Tumble { size, offset }
        }
        "HOP" => {
            let slide = positive(&durations[0], "SLIDE")?;
            let size = positive(&durations[1], "SIZE")?;
            if size < slide {
                return Err(SqlError::at(pos, "HOP's SIZE must be at least its SLIDE"));
            }
            WindowKind::Hop {
                slide,
                size,
                offset,
            }
        }
        "CUMULATE" => {
            let step = positive(&durations[0], "STEP")?;
            let size = positive(&durations[1], "SIZE")?;
            if size % step != 0 {
                return Err(SqlError::at(
                    pos,
                    "CUMULATE's SIZE must be a multiple of its STEP",
                ));
            }
            WindowKind::Cumulate { step, size, offset }
        }
        _ => WindowKind::Session {
            gap: positive(&durations[0], "GAP")?,
        },
    };
    Ok(WindowTvf {
        kind,
        table,
        table_pos,
        time_col,
        time_pos,
        partition_by,
        pos,
    })
}

fn parse_arg(c: &mut Cursor) -> Result<Arg> {
    let pos = c.pos();
    if c.eat_keyword("TABLE") {
        let (name, pos) = c.object_name("a table or view name")?;
        let mut partition_by = vec![];
        if c.eat_keywords(&["PARTITION", "BY"]) {
            if c.eat_token(&Token::LParen) {
                loop {
                    let (col, p) = c.identifier("a column name")?;
                    partition_by.push((col, p));
                    if c.eat_token(&Token::RParen) {
                        break;
                    }
                    c.expect_token(&Token::Comma)?;
                }
            } else {
                let (col, p) = c.identifier("a column name")?;
                partition_by.push((col, p));
            }
        }
        return Ok(Arg::Table {
            name,
            pos,
            partition_by,
        });
    }
    if c.eat_keyword("DESCRIPTOR") {
        c.expect_token(&Token::LParen)?;
        let (col, p) = c.identifier("a time column")?;
        c.expect_token(&Token::RParen)?;
        return Ok(Arg::Descriptor { col, pos: p });
    }
    if c.is_keyword("INTERVAL") {
        return Ok(Arg::Interval {
            ms: parse_interval(c)?,
            pos,
        });
    }
    Err(c.unexpected("TABLE <name>, DESCRIPTOR(<column>) or INTERVAL '<n>' <unit>"))
}

/// Parses `INTERVAL '<n>' <unit>` (SECOND, MINUTE, HOUR, DAY, MILLISECOND, also
/// plural) into milliseconds.
pub fn parse_interval(c: &mut Cursor) -> Result<i64> {
    let pos = c.pos();
    c.expect_keyword("INTERVAL")?;
    let value = c.string("a quoted number, as in INTERVAL '10' SECOND")?;
    let (unit, unit_pos) = c.identifier("a time unit (SECOND, MINUTE, HOUR, DAY)")?;
    if c.eat_token(&Token::LParen) {
        c.integer("a precision")?;
        c.expect_token(&Token::RParen)?;
    }
    if c.is_keyword("TO") {
        return Err(SqlError::unsupported(
            c.pos(),
            "INTERVAL ... TO ...; write a single unit, e.g. INTERVAL '90' SECOND",
        ));
    }
    let factor: f64 = match unit.to_ascii_uppercase().trim_end_matches('S') {
        "MILLISECOND" => 1.0,
        "SECOND" => 1_000.0,
        "MINUTE" => 60_000.0,
        "HOUR" => 3_600_000.0,
        "DAY" => 86_400_000.0,
        _ => {
            return Err(SqlError::at(
                unit_pos,
                format!("unsupported interval unit '{unit}' for a window"),
            )
            .with_help("use MILLISECOND, SECOND, MINUTE, HOUR or DAY"))
        }
    };
    let n: f64 = value
        .trim()
        .parse()
        .map_err(|_| SqlError::at(pos, format!("'{value}' is not a number")))?;
    Ok((n * factor).round() as i64)
}
