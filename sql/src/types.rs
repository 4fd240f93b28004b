//! Flink SQL data types and their Arrow equivalents.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::cursor::Cursor;
use crate::error::{Result, SqlError};

/// The Arrow type of Flink's TIMESTAMP_LTZ: an instant, shown in UTC.
pub fn timestamp_ltz() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn precision_unit(p: u64) -> TimeUnit {
    match p {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

fn optional_params(c: &mut Cursor) -> Result<Vec<u64>> {
    let mut params = vec![];
    if c.eat_token(&Token::LParen) {
        loop {
            params.push(c.integer("a number")?);
            if c.eat_token(&Token::RParen) {
                break;
            }
            c.expect_token(&Token::Comma)?;
        }
    }
    Ok(params)
}

/// The Arrow type of Flink's `MAP<K, V>` (Arrow's map of `entries` with a
/// non-null `key`).
pub fn map_type(key: DataType, value: DataType, value_nullable: bool) -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("key", key, false),
                Field::new("value", value, value_nullable),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// Parses a Flink type (`BIGINT`, `DECIMAL(10, 2)`, `TIMESTAMP(3)`,
/// `TIMESTAMP_LTZ(3)`, `ARRAY<STRING>`, ... with an optional `NOT NULL`) into
/// an Arrow type and nullability.
pub fn parse_type(c: &mut Cursor) -> Result<(DataType, bool)> {
    let pos = c.pos();
    let (name, _) = c.identifier("a data type")?;
    let upper = name.to_ascii_uppercase();
    let dt = match upper.as_str() {
        "STRING" => DataType::Utf8,
        "VARCHAR" | "CHAR" => {
            optional_params(c)?;
            DataType::Utf8
        }
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "TINYINT" => DataType::Int8,
        "SMALLINT" => DataType::Int16,
        "INT" | "INTEGER" => DataType::Int32,
        "BIGINT" => DataType::Int64,
        "FLOAT" | "REAL" => DataType::Float32,
        "DOUBLE" => {
            c.eat_keyword("PRECISION");
            DataType::Float64
        }
        "DECIMAL" | "DEC" | "NUMERIC" => {
            let p = optional_params(c)?;
            let precision = p.first().copied().unwrap_or(10);
            let scale = p.get(1).copied().unwrap_or(0);
            if !(1..=38).contains(&precision) || scale > precision {
                return Err(SqlError::at(pos, format!("invalid DECIMAL({precision}, {scale})"))
                    .with_help("precision must be 1 to 38 and scale at most the precision"));
            }
            DataType::Decimal128(precision as u8, scale as i8)
        }
        "BYTES" => DataType::Binary,
        "BINARY" | "VARBINARY" => {
            optional_params(c)?;
            DataType::Binary
        }
        "DATE" => DataType::Date32,
        "TIME" => {
            optional_params(c)?;
            c.eat_keywords(&["WITHOUT", "TIME", "ZONE"]);
            DataType::Time64(TimeUnit::Microsecond)
        }
        "TIMESTAMP" => {
            let p = optional_params(c)?.first().copied().unwrap_or(6);
            if c.eat_keywords(&["WITH", "LOCAL", "TIME", "ZONE"]) {
                DataType::Timestamp(precision_unit(p), Some("UTC".into()))
            } else {
                c.eat_keywords(&["WITHOUT", "TIME", "ZONE"]);
                DataType::Timestamp(precision_unit(p), None)
            }
        }
        "TIMESTAMP_LTZ" => {
            let p = optional_params(c)?.first().copied().unwrap_or(6);
            DataType::Timestamp(precision_unit(p), Some("UTC".into()))
        }
        "ARRAY" => {
            c.expect_token(&Token::Lt)?;
            let (inner, nullable) = parse_type(c)?;
            c.expect_token(&Token::Gt)?;
            DataType::List(Arc::new(Field::new("element", inner, nullable)))
        }
        "MAP" => {
            c.expect_token(&Token::Lt)?;
            let (key, _) = parse_type(c)?;
            c.expect_token(&Token::Comma)?;
            let (value, value_nullable) = parse_type(c)?;
            c.expect_token(&Token::Gt)?;
            map_type(key, value, value_nullable)
        }
        "ROW" | "MULTISET" | "RAW" | "INTERVAL" => {
            return Err(SqlError::unsupported(pos, format!("column type {upper}")).with_len(name.len()))
        }
        _ => {
            return Err(SqlError::at(pos, format!("unknown data type '{name}'"))
                .with_len(name.len())
                .with_help("use STRING, BOOLEAN, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p, s), DATE, TIMESTAMP(3) or TIMESTAMP_LTZ(3)"))
        }
    };
    let nullable = !c.eat_keywords(&["NOT", "NULL"]);
    if !nullable {
        // `NOT NULL` is accepted; `NULL` alone is the default.
    } else {
        c.eat_keyword("NULL");
    }
    Ok((dt, nullable))
}
