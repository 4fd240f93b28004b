//! `INSERT INTO t (c1, c2, ...) query`: the query's columns go to the listed
//! sink columns, in that order; every other sink column gets NULL (one
//! declared NOT NULL is an error, as in Flink).

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::cursor::Cursor;
use crate::error::{Pos, Result, SqlError};

/// The sink column of each listed name, if a `(c1, c2, ...)` list follows
/// (a parenthesis opening the query is not one).
pub fn parse_column_list(c: &mut Cursor, sink: &Schema, table: &str) -> Result<Option<Vec<usize>>> {
    if !c.is_token(&Token::LParen) || c.is_keyword_at(1, "SELECT") || c.is_keyword_at(1, "WITH") {
        return Ok(None);
    }
    c.expect_token(&Token::LParen)?;
    let mut targets = vec![];
    loop {
        let (name, pos) = c.identifier("a column of the sink")?;
        let i = sink.index_of(&name).map_err(|_| {
            SqlError::at(pos, format!("'{table}' has no column '{name}'"))
                .with_len(name.len())
                .with_help(format!(
                    "its columns: {}",
                    sink.fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
        })?;
        if targets.contains(&i) {
            return Err(
                SqlError::at(pos, format!("column '{name}' is listed twice")).with_len(name.len()),
            );
        }
        targets.push(i);
        if c.eat_token(&Token::RParen) {
            return Ok(Some(targets));
        }
        c.expect_token(&Token::Comma)?;
    }
}

/// The expressions that turn the query's columns (`out`) into the sink's,
/// each cast by `cast` to its sink column's type: in order, or to the listed
/// `targets` with NULL elsewhere.
pub fn sink_exprs(
    out: &DFSchema,
    sink: &Schema,
    targets: Option<&[usize]>,
    pos: Pos,
    cast: impl Fn(
        Column,
        &DFSchema,
        &datafusion::arrow::datatypes::DataType,
        Pos,
    ) -> Result<Arc<dyn PhysicalExpr>>,
) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
    let columns = out.columns();
    sink.fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let from = match targets {
                None => Some(i),
                Some(t) => t.iter().position(|x| *x == i),
            };
            match (from, columns.get(from.unwrap_or(usize::MAX))) {
                (Some(_), Some(col)) => cast(col.clone(), out, f.data_type(), pos),
                _ if !f.is_nullable() => Err(SqlError::at(
                    pos,
                    format!(
                        "column '{}' is NOT NULL but the INSERT's column list leaves it out",
                        f.name()
                    ),
                )
                .with_help("list it, or declare it without NOT NULL")),
                _ => {
                    let null = ScalarValue::try_from(f.data_type())
                        .map_err(|e| SqlError::from_datafusion(e, pos))?;
                    Ok(Arc::new(Literal::new(null)) as Arc<dyn PhysicalExpr>)
                }
            }
        })
        .collect()
}
