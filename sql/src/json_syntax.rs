//! The clauses of Flink's JSON functions, which the generic SQL parser does
//! not read, rewritten in the token stream into plain calls of Vigil's
//! functions (see `functions::json` and `functions::json_construct`):
//!
//! - `JSON_VALUE(s, path [RETURNING T] [behaviour ON EMPTY] [behaviour ON
//!   ERROR])`, a behaviour being `NULL`, `ERROR` or `DEFAULT expr`, becomes
//!   `json_value(s, path, CAST(NULL AS T), 'EMPTY', default, 'ERROR',
//!   default)` (the NULL of type T gives the result's type);
//! - `JSON_QUERY(s, path [RETURNING STRING | ARRAY<STRING>] [WITHOUT [ARRAY] WRAPPER | WITH
//!   [CONDITIONAL | UNCONDITIONAL] [ARRAY] WRAPPER] [behaviour ON EMPTY]
//!   [behaviour ON ERROR])`, a behaviour being `NULL`, `EMPTY ARRAY`,
//!   `EMPTY OBJECT` or `ERROR`, becomes `json_query(s, path, 'WITHOUT' |
//!   'CONDITIONAL' | 'UNCONDITIONAL', empty, error)` (`json_query_array`
//!   for ARRAY<STRING>);
//! - `JSON_EXISTS(s, path [TRUE | FALSE | UNKNOWN | ERROR ON ERROR])` becomes
//!   `json_exists(s, path, mode)`;
//! - `JSON_OBJECT([KEY] k VALUE v, ... [NULL | ABSENT ON NULL])` becomes
//!   `json_object('NULL', k, v, ...)`, and `JSON_ARRAY(v, ... [ON NULL])`
//!   `json_array('ABSENT', v, ...)`; `JSON_OBJECTAGG` and `JSON_ARRAYAGG`
//!   alike. A constructor's value that is itself a JSON constructor is
//!   wrapped in `json_raw(...)`, so that it is embedded as JSON, not as a
//!   string (as in Flink).

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan, Word};

use crate::error::{Pos, Result, SqlError};

const CONSTRUCTORS: [&str; 7] = [
    "JSON_VALUE",
    "JSON_QUERY",
    "JSON_EXISTS",
    "JSON_OBJECT",
    "JSON_ARRAY",
    "JSON_OBJECTAGG",
    "JSON_ARRAYAGG",
];

fn is_kw(t: &TokenWithSpan, kw: &str) -> bool {
    matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn tok(token: Token, span: Span) -> TokenWithSpan {
    TokenWithSpan::new(token, span)
}

fn word(value: &str, span: Span) -> TokenWithSpan {
    tok(
        Token::Word(Word {
            value: value.to_string(),
            quote_style: None,
            keyword: Keyword::NoKeyword,
        }),
        span,
    )
}

fn keyword(value: &str, keyword: Keyword, span: Span) -> TokenWithSpan {
    tok(
        Token::Word(Word {
            value: value.to_string(),
            quote_style: None,
            keyword,
        }),
        span,
    )
}

fn string(value: &str, span: Span) -> TokenWithSpan {
    tok(Token::SingleQuotedString(value.to_string()), span)
}

/// The index of the parenthesis closing the one at `open`.
fn closing(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
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

/// `tokens` split at the commas outside parentheses.
fn split_args(tokens: &[TokenWithSpan]) -> Vec<&[TokenWithSpan]> {
    let mut out = vec![];
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                out.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < tokens.len() || !out.is_empty() {
        out.push(&tokens[start..]);
    }
    out
}

/// The position of the first token of `tokens` (outside parentheses) for
/// which `at` holds.
fn find_top(
    tokens: &[TokenWithSpan],
    at: impl Fn(&[TokenWithSpan], usize) -> bool,
) -> Option<usize> {
    let mut depth = 0i32;
    for i in 0..tokens.len() {
        match tokens[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && at(tokens, i) => return Some(i),
            _ => {}
        }
    }
    None
}

fn pos(span: Span) -> Pos {
    Pos::from(span.start)
}

/// Rewrites every JSON function with clauses in `tokens`.
pub fn rewrite_json_syntax(tokens: &[TokenWithSpan]) -> Result<Vec<TokenWithSpan>> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let name = CONSTRUCTORS.iter().find(|n| is_kw(&tokens[i], n));
        let open = tokens.get(i + 1).is_some_and(|t| t.token == Token::LParen);
        match (name, open) {
            (Some(name), true) => {
                let close = closing(tokens, i + 1).ok_or_else(|| {
                    SqlError::at(pos(tokens[i].span), format!("{name}( is not closed"))
                })?;
                let inner = rewrite_json_syntax(&tokens[i + 2..close])?;
                out.extend(rewrite_call(name, &tokens[i], &inner)?);
                i = close + 1;
            }
            _ => {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
    }
    Ok(out)
}

/// One call, its arguments already rewritten.
fn rewrite_call(
    name: &str,
    at: &TokenWithSpan,
    inner: &[TokenWithSpan],
) -> Result<Vec<TokenWithSpan>> {
    let span = at.span;
    let call = |f: &str, args: Vec<Vec<TokenWithSpan>>| {
        let mut v = vec![word(f, span), tok(Token::LParen, span)];
        for (k, a) in args.into_iter().enumerate() {
            if k > 0 {
                v.push(tok(Token::Comma, span));
            }
            v.extend(a);
        }
        v.push(tok(Token::RParen, span));
        v
    };
    match name {
        "JSON_VALUE" => json_value(at, inner, call),
        "JSON_QUERY" => json_query(at, inner, call),
        "JSON_EXISTS" => json_exists(at, inner, call),
        "JSON_OBJECT" | "JSON_OBJECTAGG" => {
            let (entries, mode) = on_null(inner, "NULL");
            let mut args = vec![vec![string(mode, span)]];
            for e in split_args(entries) {
                let e = match e.first() {
                    Some(t) if is_kw(t, "KEY") => &e[1..],
                    _ => e,
                };
                let Some(v) = find_top(e, |t, i| is_kw(&t[i], "VALUE")) else {
                    return Err(SqlError::at(
                        pos(span),
                        format!("{name} takes entries of the form [KEY] k VALUE v"),
                    ));
                };
                args.push(e[..v].to_vec());
                args.push(raw_if_json(&e[v + 1..], span));
            }
            let f = if name == "JSON_OBJECT" {
                "json_object"
            } else {
                "json_objectagg"
            };
            Ok(call(f, args))
        }
        _ => {
            let (values, mode) = on_null(inner, "ABSENT");
            let mut args = vec![vec![string(mode, span)]];
            for v in split_args(values) {
                // Flink 2.3 reads `JSON_ARRAYAGG(v ORDER BY ...)` and keeps
                // the arrival order all the same: so does Vigil.
                let order = find_top(v, |t, i| {
                    is_kw(&t[i], "ORDER") && t.get(i + 1).is_some_and(|n| is_kw(n, "BY"))
                });
                let v = match order {
                    Some(at) if name == "JSON_ARRAYAGG" => &v[..at],
                    Some(_) => {
                        return Err(SqlError::unsupported(
                            pos(span),
                            format!("ORDER BY in {name}"),
                        ))
                    }
                    None => v,
                };
                args.push(raw_if_json(v, span));
            }
            let f = if name == "JSON_ARRAY" {
                "json_array"
            } else {
                "json_arrayagg"
            };
            Ok(call(f, args))
        }
    }
}

/// Strips a trailing `NULL ON NULL` / `ABSENT ON NULL`, and says which
/// (`default` without one).
fn on_null<'a>(
    tokens: &'a [TokenWithSpan],
    default: &'static str,
) -> (&'a [TokenWithSpan], &'static str) {
    let n = tokens.len();
    if n >= 3 && is_kw(&tokens[n - 2], "ON") && is_kw(&tokens[n - 1], "NULL") {
        if is_kw(&tokens[n - 3], "NULL") {
            return (&tokens[..n - 3], "NULL");
        }
        if is_kw(&tokens[n - 3], "ABSENT") {
            return (&tokens[..n - 3], "ABSENT");
        }
    }
    (tokens, default)
}

/// A constructor's value: a nested constructor is embedded as JSON.
fn raw_if_json(v: &[TokenWithSpan], span: Span) -> Vec<TokenWithSpan> {
    let nested = ["json_object", "json_array"].iter().any(|f| {
        v.first()
            .is_some_and(|t| matches!(&t.token, Token::Word(w) if w.value == *f))
            && closing(v, 1) == Some(v.len() - 1)
    });
    if !nested {
        return v.to_vec();
    }
    let mut out = vec![word("json_raw", span), tok(Token::LParen, span)];
    out.extend_from_slice(v);
    out.push(tok(Token::RParen, span));
    out
}

/// `JSON_VALUE(s, path clauses)`.
fn json_value(
    at: &TokenWithSpan,
    inner: &[TokenWithSpan],
    call: impl Fn(&str, Vec<Vec<TokenWithSpan>>) -> Vec<TokenWithSpan>,
) -> Result<Vec<TokenWithSpan>> {
    let span = at.span;
    let args = split_args(inner);
    let [text, rest] = args.as_slice() else {
        return Ok(plain(at, inner));
    };
    let clause = |t: &[TokenWithSpan], i: usize| {
        ["RETURNING", "NULL", "ERROR", "DEFAULT"]
            .iter()
            .any(|k| is_kw(&t[i], k))
            && i > 0
    };
    let Some(c) = find_top(rest, clause) else {
        return Ok(call("json_value", vec![text.to_vec(), rest.to_vec()]));
    };
    let path = &rest[..c];
    let mut rest = &rest[c..];
    let fail = |m: &str| {
        SqlError::at(pos(span), format!("JSON_VALUE: {m}"))
        .with_help("write JSON_VALUE(s, '$.path' [RETURNING type] [NULL | ERROR | DEFAULT expr ON EMPTY] [NULL | ERROR | DEFAULT expr ON ERROR])")
    };
    let mut ty: Vec<TokenWithSpan> = vec![keyword("VARCHAR", Keyword::VARCHAR, span)];
    if rest.first().is_some_and(|t| is_kw(t, "RETURNING")) {
        let end = find_top(rest, |t, i| {
            i > 1 && ["NULL", "ERROR", "DEFAULT"].iter().any(|k| is_kw(&t[i], k))
        })
        .unwrap_or(rest.len());
        if end < 2 {
            return Err(fail("RETURNING needs a type"));
        }
        ty = rest[1..end].to_vec();
        rest = &rest[end..];
    }
    let typed = |e: Vec<TokenWithSpan>| {
        let mut v = vec![
            keyword("CAST", Keyword::CAST, span),
            tok(Token::LParen, span),
        ];
        v.extend(e);
        v.push(keyword("AS", Keyword::AS, span));
        v.extend(ty.iter().cloned());
        v.push(tok(Token::RParen, span));
        v
    };
    let null = || vec![keyword("NULL", Keyword::NULL, span)];
    let mut behaviours: [(&str, Vec<TokenWithSpan>); 2] =
        [("NULL", typed(null())), ("NULL", typed(null()))];
    while !rest.is_empty() {
        let on = find_top(rest, |t, i| {
            is_kw(&t[i], "ON")
                && t.get(i + 1)
                    .is_some_and(|n| is_kw(n, "EMPTY") || is_kw(n, "ERROR"))
        })
        .ok_or_else(|| fail("expected ON EMPTY or ON ERROR after a behaviour"))?;
        let which = usize::from(is_kw(&rest[on + 1], "ERROR"));
        let b = &rest[..on];
        behaviours[which] = match b.first() {
            Some(t) if is_kw(t, "NULL") && b.len() == 1 => ("NULL", typed(null())),
            Some(t) if is_kw(t, "ERROR") && b.len() == 1 => ("ERROR", typed(null())),
            Some(t) if is_kw(t, "DEFAULT") && b.len() > 1 => ("DEFAULT", typed(b[1..].to_vec())),
            _ => return Err(fail("a behaviour is NULL, ERROR or DEFAULT expr")),
        };
        rest = &rest[on + 2..];
    }
    let [(empty_mode, empty_default), (error_mode, error_default)] = behaviours;
    Ok(call(
        "json_value",
        vec![
            text.to_vec(),
            path.to_vec(),
            typed(null()),
            vec![string(empty_mode, span)],
            empty_default,
            vec![string(error_mode, span)],
            error_default,
        ],
    ))
}

/// The call as written, when it has no clauses.
fn plain(at: &TokenWithSpan, inner: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    let mut v = vec![at.clone(), tok(Token::LParen, at.span)];
    v.extend_from_slice(inner);
    v.push(tok(Token::RParen, at.span));
    v
}

/// `JSON_QUERY(s, path clauses)`.
fn json_query(
    at: &TokenWithSpan,
    inner: &[TokenWithSpan],
    call: impl Fn(&str, Vec<Vec<TokenWithSpan>>) -> Vec<TokenWithSpan>,
) -> Result<Vec<TokenWithSpan>> {
    let span = at.span;
    let args = split_args(inner);
    let [text, rest] = args.as_slice() else {
        return Ok(plain(at, inner));
    };
    let starts = ["RETURNING", "WITHOUT", "WITH", "NULL", "EMPTY", "ERROR"];
    let Some(c) = find_top(rest, |t, i| i > 0 && starts.iter().any(|k| is_kw(&t[i], k))) else {
        return Ok(plain(at, inner));
    };
    let fail = |m: &str| {
        SqlError::at(pos(span), format!("JSON_QUERY: {m}")).with_help(
            "write JSON_QUERY(s, '$.path' [WITHOUT [ARRAY] WRAPPER | WITH [CONDITIONAL | UNCONDITIONAL] [ARRAY] WRAPPER] [NULL | EMPTY ARRAY | EMPTY OBJECT | ERROR ON EMPTY] [... ON ERROR])",
        )
    };
    let path = &rest[..c];
    let mut clauses = &rest[c..];
    let mut function = "json_query";
    if clauses.first().is_some_and(|t| is_kw(t, "RETURNING")) {
        let text = |t: &TokenWithSpan| ["STRING", "VARCHAR"].iter().any(|k| is_kw(t, k));
        match clauses.get(1..5) {
            Some([a, lt, s, gt])
                if is_kw(a, "ARRAY")
                    && lt.token == Token::Lt
                    && text(s)
                    && gt.token == Token::Gt =>
            {
                function = "json_query_array";
                clauses = &clauses[5..];
            }
            _ => match clauses.get(1) {
                Some(s) if text(s) => clauses = &clauses[2..],
                _ => {
                    return Err(SqlError::unsupported(
                        pos(span),
                        "JSON_QUERY ... RETURNING a type other than STRING or ARRAY<STRING>",
                    ))
                }
            },
        }
    }
    let mut words: Vec<String> = vec![];
    for t in clauses {
        match &t.token {
            Token::Word(w) if w.quote_style.is_none() => words.push(w.value.to_ascii_uppercase()),
            _ => return Err(fail(&format!("unexpected '{}' in its clauses", t.token))),
        }
    }
    let mut w: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut wrapper = "WITHOUT";
    let end = w.iter().position(|x| *x == "WRAPPER");
    if let Some(end) = end {
        wrapper = match &w[..end] {
            ["WITHOUT"] | ["WITHOUT", "ARRAY"] => "WITHOUT",
            ["WITH"] | ["WITH", "ARRAY"] | ["WITH", "UNCONDITIONAL"]
            | ["WITH", "UNCONDITIONAL", "ARRAY"] => "UNCONDITIONAL",
            ["WITH", "CONDITIONAL"] | ["WITH", "CONDITIONAL", "ARRAY"] => "CONDITIONAL",
            _ => return Err(fail("the wrapper clause is WITHOUT [ARRAY] WRAPPER or WITH [CONDITIONAL | UNCONDITIONAL] [ARRAY] WRAPPER")),
        };
        w = w[end + 1..].to_vec();
    }
    let mut behaviours = ["NULL", "NULL"];
    while !w.is_empty() {
        let on = w
            .iter()
            .position(|x| *x == "ON")
            .ok_or_else(|| fail("expected ON EMPTY or ON ERROR after a behaviour"))?;
        let which = match w.get(on + 1) {
            Some(&"EMPTY") => 0,
            Some(&"ERROR") => 1,
            _ => return Err(fail("expected ON EMPTY or ON ERROR after a behaviour")),
        };
        behaviours[which] = match &w[..on] {
            ["NULL"] => "NULL",
            ["ERROR"] => "ERROR",
            ["EMPTY", "ARRAY"] => "EMPTY ARRAY",
            ["EMPTY", "OBJECT"] => "EMPTY OBJECT",
            _ => {
                return Err(fail(
                    "a behaviour is NULL, EMPTY ARRAY, EMPTY OBJECT or ERROR",
                ))
            }
        };
        w = w[on + 2..].to_vec();
    }
    Ok(call(
        function,
        vec![
            text.to_vec(),
            path.to_vec(),
            vec![string(wrapper, span)],
            vec![string(behaviours[0], span)],
            vec![string(behaviours[1], span)],
        ],
    ))
}

/// `JSON_EXISTS(s, path [behaviour ON ERROR])`.
fn json_exists(
    at: &TokenWithSpan,
    inner: &[TokenWithSpan],
    call: impl Fn(&str, Vec<Vec<TokenWithSpan>>) -> Vec<TokenWithSpan>,
) -> Result<Vec<TokenWithSpan>> {
    let span = at.span;
    let args = split_args(inner);
    let [text, rest] = args.as_slice() else {
        return Ok(plain(at, inner));
    };
    let n = rest.len();
    let clause = n >= 4 && is_kw(&rest[n - 2], "ON") && is_kw(&rest[n - 1], "ERROR");
    if !clause {
        return Ok(plain(at, inner));
    }
    let mode = ["TRUE", "FALSE", "UNKNOWN", "ERROR"]
        .into_iter()
        .find(|m| is_kw(&rest[n - 3], m))
        .ok_or_else(|| {
            SqlError::at(
                pos(span),
                "JSON_EXISTS: the ON ERROR behaviour is TRUE, FALSE, UNKNOWN or ERROR",
            )
        })?;
    Ok(call(
        "json_exists",
        vec![
            text.to_vec(),
            rest[..n - 3].to_vec(),
            vec![string(mode, span)],
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(sql: &str) -> String {
        let st = crate::script::split_statements(sql).expect("tokens");
        rewrite_json_syntax(&st[0].tokens)
            .expect("rewrites")
            .iter()
            .map(|t| t.token.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn json_value_clauses_become_arguments() {
        assert_eq!(
            rewrite("SELECT JSON_VALUE(p, '$.a' RETURNING INT DEFAULT -1 ON EMPTY ERROR ON ERROR)"),
            "SELECT json_value ( p , '$.a' , CAST ( NULL AS INT ) , 'DEFAULT' , CAST ( - 1 AS INT ) , 'ERROR' , CAST ( NULL AS INT ) )"
        );
        assert_eq!(
            rewrite("SELECT JSON_VALUE(p, '$.a')"),
            "SELECT json_value ( p , '$.a' )"
        );
    }

    #[test]
    fn json_query_and_json_exists_clauses_become_arguments() {
        assert_eq!(
            rewrite(
                "SELECT JSON_QUERY(p, '$.a' WITH CONDITIONAL ARRAY WRAPPER EMPTY OBJECT ON ERROR)"
            ),
            "SELECT json_query ( p , '$.a' , 'CONDITIONAL' , 'NULL' , 'EMPTY OBJECT' )"
        );
        assert_eq!(
            rewrite("SELECT JSON_QUERY(p, 'lax $.a' EMPTY ARRAY ON EMPTY)"),
            "SELECT json_query ( p , 'lax $.a' , 'WITHOUT' , 'EMPTY ARRAY' , 'NULL' )"
        );
        assert_eq!(
            rewrite("SELECT JSON_EXISTS(p, '$.a' UNKNOWN ON ERROR)"),
            "SELECT json_exists ( p , '$.a' , 'UNKNOWN' )"
        );
        assert_eq!(
            rewrite("SELECT JSON_QUERY(p, '$.a')"),
            "SELECT JSON_QUERY ( p , '$.a' )"
        );
    }

    #[test]
    fn constructors_take_their_entries_and_embed_nested_ones() {
        assert_eq!(
            rewrite("SELECT JSON_OBJECT(KEY 'a' VALUE 1, 'b' VALUE JSON_ARRAY(x, y NULL ON NULL) ABSENT ON NULL)"),
            "SELECT json_object ( 'ABSENT' , 'a' , 1 , 'b' , json_raw ( json_array ( 'NULL' , x , y ) ) )"
        );
        assert_eq!(
            rewrite("SELECT JSON_ARRAY()"),
            "SELECT json_array ( 'ABSENT' )"
        );
        assert_eq!(
            rewrite("SELECT JSON_OBJECTAGG(KEY k VALUE v) FROM t"),
            "SELECT json_objectagg ( 'NULL' , k , v ) FROM t"
        );
    }
}
