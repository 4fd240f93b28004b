//! `CAST(e AS ROW<name T, ...>)` (or `ROW(name T, ...)`), which the generic
//! SQL parser does not read, becomes `cast_row(e, 'ROW<name T, ...>')` in
//! the token stream: a function whose result type is that ROW (read by
//! Vigil's own type parser), taking the value's fields by position as
//! Flink's cast does (Arrow's cast matches fields by name).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};

fn is_kw(t: &TokenWithSpan, kw: &str) -> bool {
    matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

/// The index of the parenthesis closing the one at `open`.
fn closing(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Rewrites every `CAST(e AS ROW...)` of `tokens`, nested ones included.
pub fn rewrite_row_casts(tokens: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let cast = is_kw(&tokens[i], "CAST")
            && tokens.get(i + 1).is_some_and(|t| t.token == Token::LParen);
        let close = cast.then(|| closing(tokens, i + 1)).flatten();
        // `AS ROW` at the CAST's own depth.
        let as_row = close.and_then(|close| {
            let mut depth = 0i32;
            (i + 2..close).find(|&k| {
                match tokens[k].token {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => {}
                }
                depth == 0
                    && is_kw(&tokens[k], "AS")
                    && tokens.get(k + 1).is_some_and(|t| is_kw(t, "ROW"))
            })
        });
        match (close, as_row) {
            (Some(close), Some(at)) => {
                let span = tokens[i].span;
                let ty: Vec<String> = tokens[at + 1..close]
                    .iter()
                    .map(|t| t.token.to_string())
                    .collect();
                out.push(TokenWithSpan::new(
                    Token::Word(Word {
                        value: "cast_row".into(),
                        quote_style: None,
                        keyword: Keyword::NoKeyword,
                    }),
                    span,
                ));
                out.push(TokenWithSpan::new(Token::LParen, tokens[i + 1].span));
                out.extend(rewrite_row_casts(&tokens[i + 2..at]));
                out.push(TokenWithSpan::new(Token::Comma, tokens[at].span));
                out.push(TokenWithSpan::new(
                    Token::SingleQuotedString(ty.join(" ")),
                    tokens[at + 1].span,
                ));
                out.push(TokenWithSpan::new(Token::RParen, tokens[close].span));
                i = close + 1;
            }
            _ => {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
    }
    out
}

/// `cast_row(value, 'ROW<...>')`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CastRow {
    signature: Signature,
}

/// The function behind a cast to a ROW type.
pub fn cast_row_function() -> ScalarUDF {
    ScalarUDF::from(CastRow {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// The ROW type written as `text`.
fn target(text: &str) -> Result<DataType> {
    match crate::types::parse_type_text(text) {
        Ok(t @ DataType::Struct(_)) => Ok(t),
        Ok(other) => plan_err!("CAST to {text}: not a ROW type ({other})"),
        Err(e) => plan_err!("CAST to {text}: {}", e.message),
    }
}

impl ScalarUDFImpl for CastRow {
    fn name(&self) -> &str {
        "cast_row"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("cast_row: its type comes from its second argument")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let Some(Some(ScalarValue::Utf8(Some(text)))) = args.scalar_arguments.get(1) else {
            return plan_err!("cast_row: the ROW type must be a string literal");
        };
        Ok(Arc::new(Field::new(self.name(), target(text)?, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let value = args.args[0].to_array(n)?;
        let to = args.return_field.data_type();
        Ok(ColumnarValue::Array(by_position(&value, to)?))
    }
}

/// `value` cast to `to`, a ROW's fields by position (nested ones too).
fn by_position(value: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    let (DataType::Struct(fields), DataType::Struct(_)) = (to, value.data_type()) else {
        return Ok(datafusion::arrow::compute::cast(value, to)?);
    };
    let s = value.as_struct();
    if s.num_columns() != fields.len() {
        return exec_err!(
            "CAST of a ROW of {} fields to one of {}",
            s.num_columns(),
            fields.len()
        );
    }
    let columns = s
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(c, f)| by_position(c, f.data_type()))
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(StructArray::try_new(
        fields.clone(),
        columns,
        s.nulls().cloned(),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cast_to_a_row_type_becomes_a_call_with_the_type_as_text() {
        let st = crate::script::split_statements(
            "SELECT CAST(ROW(1, 'a') AS ROW<x INT, y ROW<z STRING>>), CAST(b AS INT) FROM t",
        )
        .expect("tokens");
        let text: Vec<String> = rewrite_row_casts(&st[0].tokens)
            .iter()
            .map(|t| t.token.to_string())
            .collect();
        assert_eq!(
            text.join(" "),
            "SELECT cast_row ( ROW ( 1 , 'a' ) , 'ROW < x INT , y ROW < z STRING >>' ) , CAST ( b AS INT ) FROM t"
        );
        assert!(matches!(
            target("ROW < x INT , y ROW < z STRING >>"),
            Ok(DataType::Struct(f)) if f.len() == 2
        ));
    }
}
