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
            c.expect_close_angle()?;
            DataType::List(Arc::new(Field::new("element", inner, nullable)))
        }
        "MAP" => {
            c.expect_token(&Token::Lt)?;
            let (key, _) = parse_type(c)?;
            c.expect_token(&Token::Comma)?;
            let (value, value_nullable) = parse_type(c)?;
            c.expect_close_angle()?;
            map_type(key, value, value_nullable)
        }
        "ROW" => row_type(c)?,
        // As Flink's JSON format writes it: each distinct element and how
        // many times it occurs (see `COLLECT`).
        "MULTISET" => {
            c.expect_token(&Token::Lt)?;
            let (element, _) = parse_type(c)?;
            c.expect_close_angle()?;
            map_type(element, DataType::Int32, false)
        }
        "RAW" | "INTERVAL" => {
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

/// The fields of `ROW<name type, ...>` or `ROW(name type, ...)` (each may
/// carry a description string, as in Flink), after the keyword `ROW`.
fn row_type(c: &mut Cursor) -> Result<DataType> {
    let angle = if c.eat_token(&Token::Lt) {
        true
    } else if c.eat_token(&Token::LParen) {
        false
    } else {
        return Err(c
            .unexpected("'<' or '(' after ROW")
            .with_help("write a row type as ROW<name TYPE, ...>"));
    };
    let mut fields: Vec<Field> = vec![];
    loop {
        let (name, pos) = c.identifier("a field name")?;
        if fields.iter().any(|f| f.name() == &name) {
            return Err(
                SqlError::at(pos, format!("field '{name}' appears twice in ROW"))
                    .with_len(name.len())
                    .with_help("give every field of a ROW a name of its own"),
            );
        }
        let (dt, nullable) = parse_type(c)?;
        // A field's description: `f INT 'what it is'`.
        let _ = c.string("a description");
        fields.push(Field::new(name, dt, nullable));
        if c.eat_token(&Token::Comma) {
            continue;
        }
        if angle {
            c.expect_close_angle()?;
        } else {
            c.expect_token(&Token::RParen)?;
        }
        break;
    }
    Ok(DataType::Struct(fields.into()))
}

/// Parses a type written as text, such as a connector's declared metadata
/// type (`TIMESTAMP_LTZ(3) NOT NULL`).
pub fn parse_type_text(text: &str) -> Result<DataType> {
    let statements = crate::script::split_statements(text)?;
    let tokens = statements
        .first()
        .map(|s| s.tokens.as_slice())
        .unwrap_or(&[]);
    let mut c = Cursor::new(tokens);
    Ok(parse_type(&mut c)?.0)
}

/// The Flink name of an Arrow type, for messages.
pub fn flink_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTES".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(unit, tz) => {
            let p = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            if tz.is_some() {
                format!("TIMESTAMP_LTZ({p})")
            } else {
                format!("TIMESTAMP({p})")
            }
        }
        DataType::List(f) => format!("ARRAY<{}>", flink_name(f.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("`{}` {}", f.name(), flink_name(f.data_type())))
                .collect();
            format!("ROW<{}>", inner.join(", "))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                flink_name(kv[0].data_type()),
                flink_name(kv[1].data_type())
            ),
            other => other.to_string(),
        },
        other => other.to_string(),
    }
}

/// Whether Flink's explicit `CAST` takes a value of type `from` to `to`, by
/// the type families of Flink's `LogicalTypeCasts` (the rule Flink applies to
/// metadata columns): anything to STRING; STRING to any predefined type;
/// numbers and BOOLEAN among themselves; date-times among themselves; numbers
/// to and from TIMESTAMP_LTZ; STRING and BYTES both ways; ARRAY and MAP
/// element-wise.
pub fn castable(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    let numeric = |t: &T| t.is_numeric() || matches!(t, T::Boolean);
    let string = |t: &T| matches!(t, T::Utf8 | T::LargeUtf8 | T::Utf8View);
    let binary = |t: &T| matches!(t, T::Binary | T::LargeBinary | T::BinaryView);
    let datetime = |t: &T| {
        matches!(
            t,
            T::Date32 | T::Date64 | T::Time32(_) | T::Time64(_) | T::Timestamp(..)
        )
    };
    let ltz = |t: &T| matches!(t, T::Timestamp(_, Some(_)));
    let constructed = |t: &T| matches!(t, T::List(_) | T::Map(..) | T::Struct(_));
    if from == to || string(to) {
        return true;
    }
    match (from, to) {
        (T::List(a), T::List(b)) => castable(a.data_type(), b.data_type()),
        (T::Map(a, _), T::Map(b, _)) => match (a.data_type(), b.data_type()) {
            (T::Struct(x), T::Struct(y)) if x.len() == 2 && y.len() == 2 => {
                castable(x[0].data_type(), y[0].data_type())
                    && castable(x[1].data_type(), y[1].data_type())
            }
            _ => false,
        },
        _ if string(from) => !constructed(to),
        _ if numeric(from) && numeric(to) => true,
        _ if datetime(from) && datetime(to) => true,
        _ if numeric(from) && ltz(to) => !matches!(from, T::Boolean),
        _ if ltz(from) && numeric(to) => !matches!(to, T::Boolean),
        _ => binary(from) && binary(to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DataType {
        parse_type_text(text).expect("type")
    }

    #[test]
    fn connector_type_texts_parse() {
        assert_eq!(t("TIMESTAMP_LTZ(3) NOT NULL"), timestamp_ltz());
        assert_eq!(
            t("MAP<STRING, BYTES>"),
            map_type(DataType::Utf8, DataType::Binary, true)
        );
        assert_eq!(flink_name(&t("MAP<STRING, BYTES>")), "MAP<STRING, BYTES>");
    }

    #[test]
    fn a_nested_row_closed_by_a_double_angle_ends_its_outer_row() {
        // `>>` closes `i` and `a`: `b` is a field of the outer row.
        let row = t("ROW<a ROW<n INT, i ROW<x DOUBLE>>, b INT>");
        let DataType::Struct(fields) = &row else {
            panic!("not a struct: {row}");
        };
        assert_eq!(fields.len(), 2, "{row}");
        assert_eq!(fields[1].name(), "b");
    }

    #[test]
    fn row_types_nest_in_both_spellings() {
        let row = t("ROW<id BIGINT NOT NULL, `dateTime` TIMESTAMP(3), tags ARRAY<ARRAY<INT>>>");
        let DataType::Struct(fields) = &row else {
            panic!("not a struct: {row}");
        };
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0].name(), "id");
        assert!(!fields[0].is_nullable());
        assert_eq!(fields[1].name(), "dateTime");
        assert_eq!(
            fields[1].data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(
            flink_name(&row),
            "ROW<`id` BIGINT, `dateTime` TIMESTAMP(3), `tags` ARRAY<ARRAY<INT>>>"
        );
        assert_eq!(
            t("ROW(a INT 'the a', b ROW<c STRING>)"),
            t("ROW<a INT, b ROW(c STRING)>")
        );
        assert_eq!(
            t("MAP<STRING, ARRAY<INT>>"),
            map_type(
                DataType::Utf8,
                DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
                true
            )
        );
    }

    #[test]
    fn a_row_with_a_field_twice_is_refused() {
        let err = parse_type_text("ROW<a INT, a STRING>").expect_err("refused");
        assert!(err.to_string().contains("field 'a' appears twice"), "{err}");
    }

    /// Cases from Flink's LogicalTypeCastsTest (explicit casts).
    #[test]
    fn castability_follows_flink_explicit_casts() {
        let yes = [
            ("TIMESTAMP_LTZ(3)", "STRING"),
            ("STRING", "TIMESTAMP_LTZ(3)"),
            ("BIGINT", "TIMESTAMP_LTZ(3)"),
            ("TIMESTAMP(3)", "TIMESTAMP_LTZ(3)"),
            ("INT", "BIGINT"),
            ("MAP<STRING, STRING>", "MAP<STRING, BYTES>"),
            ("MAP<STRING, BYTES>", "STRING"),
        ];
        let no = [
            ("TIMESTAMP(3)", "BOOLEAN"),
            ("BOOLEAN", "TIMESTAMP_LTZ(3)"),
            ("STRING", "MAP<STRING, BYTES>"),
            ("MAP<STRING, BYTES>", "BIGINT"),
            ("BYTES", "TIMESTAMP_LTZ(3)"),
            ("ARRAY<INT>", "MAP<STRING, BYTES>"),
        ];
        for (a, b) in yes {
            assert!(castable(&t(a), &t(b)), "{a} -> {b}");
        }
        for (a, b) in no {
            assert!(!castable(&t(a), &t(b)), "{a} -> {b}");
        }
    }
}
