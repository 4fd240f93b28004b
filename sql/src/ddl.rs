//! `CREATE TABLE` in Flink's dialect: physical and computed columns, a
//! `WATERMARK FOR` clause, `PRIMARY KEY ... NOT ENFORCED` and `WITH` options.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::cursor::Cursor;
use crate::error::{Pos, Result, SqlError};
use crate::script::{token_text, LineOffsets};
use crate::types::parse_type;

/// A column of a table definition.
#[derive(Debug, Clone)]
pub enum ColumnKind {
    /// Read from or written to the connector.
    Physical {
        /// Its Arrow type.
        data_type: DataType,
        /// Whether it may be NULL.
        nullable: bool,
        /// `METADATA [FROM 'key'] [VIRTUAL]`: read from the connector's metadata
        /// (Kafka's timestamp, partition, ...) rather than the record's value.
        metadata: Option<MetadataDef>,
    },
    /// Computed from other columns: `name AS expr`.
    Computed {
        /// The expression as written.
        expr: String,
        /// Where it starts.
        pos: Pos,
    },
}

/// The metadata part of a column: `METADATA [FROM 'key'] [VIRTUAL]`.
#[derive(Debug, Clone)]
pub struct MetadataDef {
    /// The connector's metadata key (the column name when `FROM` is omitted).
    pub key: String,
    /// `VIRTUAL`: read-only, left out when the table is a sink.
    pub is_virtual: bool,
    /// Where `METADATA` is written.
    pub pos: Pos,
}

/// A column definition.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// The name, as written.
    pub name: String,
    /// Where it is declared.
    pub pos: Pos,
    /// Physical or computed.
    pub kind: ColumnKind,
}

/// `WATERMARK FOR column AS expr`.
#[derive(Debug, Clone)]
pub struct WatermarkDef {
    /// The time attribute column.
    pub column: String,
    /// Where the column is named.
    pub column_pos: Pos,
    /// The watermark expression as written.
    pub expr: String,
    /// Where the expression starts.
    pub expr_pos: Pos,
}

/// A parsed `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// The table name (the last part of a dotted name).
    pub name: String,
    /// Where the name is.
    pub pos: Pos,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// Columns in declaration order.
    pub columns: Vec<ColumnDef>,
    /// The watermark, if declared.
    pub watermark: Option<WatermarkDef>,
    /// `PRIMARY KEY` columns, if declared.
    pub primary_key: Vec<String>,
    /// The `PARTITIONED BY (...)` columns.
    pub partition_keys: Vec<String>,
    /// The `WITH` options.
    pub options: BTreeMap<String, String>,
    /// Where the `WITH` clause is (for connector errors).
    pub options_pos: Pos,
}

/// Parses `CREATE [TEMPORARY] TABLE ...` from its tokens.
pub fn parse_create_table(tokens: &[TokenWithSpan], offsets: &LineOffsets) -> Result<TableDef> {
    let mut c = Cursor::new(tokens);
    c.expect_keyword("CREATE")?;
    c.eat_keyword("TEMPORARY");
    c.expect_keyword("TABLE")?;
    let if_not_exists = c.eat_keywords(&["IF", "NOT", "EXISTS"]);
    let (name, pos) = c.object_name("a table name")?;
    c.expect_token(&Token::LParen)?;
    let mut def = TableDef {
        name,
        pos,
        if_not_exists,
        columns: vec![],
        watermark: None,
        primary_key: vec![],
        partition_keys: vec![],
        options: BTreeMap::new(),
        options_pos: pos,
    };
    loop {
        parse_element(&mut c, offsets, &mut def)?;
        if c.eat_token(&Token::RParen) {
            break;
        }
        if !c.eat_token(&Token::Comma) {
            return Err(c.unexpected("',' or ')' after a column definition"));
        }
    }
    if c.eat_keyword("COMMENT") {
        c.string("a comment string")?;
    }
    if c.eat_keyword("PARTITIONED") {
        c.expect_keyword("BY")?;
        c.expect_token(&Token::LParen)?;
        loop {
            let (name, at) = c.identifier("a partition column")?;
            if !def.columns.iter().any(|col| col.name == name) {
                return Err(SqlError::at(
                    at,
                    format!(
                        "PARTITIONED BY names '{name}', which is not a column of '{}'",
                        def.name
                    ),
                )
                .with_len(name.len()));
            }
            def.partition_keys.push(name);
            if c.eat_token(&Token::RParen) {
                break;
            }
            c.expect_token(&Token::Comma)?;
        }
    }
    def.options_pos = c.pos();
    if c.eat_keyword("WITH") {
        c.expect_token(&Token::LParen)?;
        loop {
            if c.eat_token(&Token::RParen) {
                break;
            }
            let key = c.string("an option key in single quotes, like 'connector'")?;
            c.expect_token(&Token::Eq)?;
            let value = c.string("an option value in single quotes")?;
            def.options.insert(key, value);
            if c.eat_token(&Token::RParen) {
                break;
            }
            c.expect_token(&Token::Comma)?;
        }
    } else {
        return Err(c.unexpected("WITH ('connector' = '...', ...)"));
    }
    if c.is_keyword("LIKE") {
        return Err(SqlError::unsupported(c.pos(), "CREATE TABLE ... LIKE").with_len(4));
    }
    if !c.done() {
        return Err(c.unexpected("the end of the statement"));
    }
    crate::legacy_options::modernize(&mut def.options, def.options_pos)?;
    if !def.partition_keys.is_empty()
        && def
            .options
            .get("connector")
            .is_some_and(|c| c != "filesystem")
    {
        return Err(SqlError::at(
            def.options_pos,
            format!(
                "table '{}' is PARTITIONED BY, which only the filesystem connector supports",
                def.name
            ),
        )
        .with_help("drop PARTITIONED BY, or write the table with 'connector' = 'filesystem'"));
    }
    if !def.options.contains_key("connector") {
        return Err(SqlError::at(
            def.options_pos,
            format!("table '{}' has no 'connector' option", def.name),
        )
        .with_help("add 'connector' = 'filesystem' (or 'print', 'blackhole') to WITH (...)"));
    }
    Ok(def)
}

fn parse_element(c: &mut Cursor, offsets: &LineOffsets, def: &mut TableDef) -> Result<()> {
    if c.is_keyword("WATERMARK") && c.is_keyword_at(1, "FOR") {
        let wm_pos = c.pos();
        c.i += 2;
        let (column, column_pos) = c.identifier("the time attribute column")?;
        c.expect_keyword("AS")?;
        let expr_pos = c.pos();
        let expr_tokens = c.until_comma_or_close();
        if expr_tokens.is_empty() {
            return Err(c.unexpected("a watermark expression"));
        }
        if def.watermark.is_some() {
            return Err(SqlError::at(wm_pos, "a table can have only one WATERMARK"));
        }
        def.watermark = Some(WatermarkDef {
            column,
            column_pos,
            expr: token_text(offsets, expr_tokens),
            expr_pos,
        });
        return Ok(());
    }
    if c.is_keyword("CONSTRAINT") || c.is_keyword("PRIMARY") {
        if c.eat_keyword("CONSTRAINT") {
            c.identifier("a constraint name")?;
        }
        c.expect_keyword("PRIMARY")?;
        c.expect_keyword("KEY")?;
        c.expect_token(&Token::LParen)?;
        loop {
            def.primary_key.push(c.identifier("a column name")?.0);
            if c.eat_token(&Token::RParen) {
                break;
            }
            c.expect_token(&Token::Comma)?;
        }
        if !c.eat_keywords(&["NOT", "ENFORCED"]) {
            return Err(c.unexpected("NOT ENFORCED (Flink does not enforce primary keys)"));
        }
        return Ok(());
    }
    let (name, pos) = c.identifier("a column name, WATERMARK FOR or PRIMARY KEY")?;
    if def.columns.iter().any(|col| col.name == name) {
        return Err(
            SqlError::at(pos, format!("column '{name}' is declared twice")).with_len(name.len()),
        );
    }
    if c.eat_keyword("AS") {
        let expr_pos = c.pos();
        let mut expr_tokens = c.until_comma_or_close();
        // A trailing COMMENT '...' belongs to the column, not the expression.
        if let [rest @ .., kw, TokenWithSpan {
            token: Token::SingleQuotedString(_),
            ..
        }] = expr_tokens
        {
            if matches!(&kw.token, Token::Word(w) if w.value.eq_ignore_ascii_case("COMMENT")) {
                expr_tokens = rest;
            }
        }
        if expr_tokens.is_empty() {
            return Err(c.unexpected("an expression for the computed column"));
        }
        def.columns.push(ColumnDef {
            name,
            pos,
            kind: ColumnKind::Computed {
                expr: token_text(offsets, expr_tokens),
                pos: expr_pos,
            },
        });
        return Ok(());
    }
    let (data_type, nullable) = parse_type(c)?;
    let metadata = if c.is_keyword("METADATA") {
        let pos = c.pos();
        c.i += 1;
        let key = if c.eat_keyword("FROM") {
            c.string("a metadata key in single quotes, like 'timestamp'")?
        } else {
            name.clone()
        };
        let is_virtual = c.eat_keyword("VIRTUAL");
        Some(MetadataDef {
            key,
            is_virtual,
            pos,
        })
    } else {
        None
    };
    if c.eat_keyword("COMMENT") {
        c.string("a comment string")?;
    }
    if c.eat_keyword("PRIMARY") {
        c.expect_keyword("KEY")?;
        c.eat_keywords(&["NOT", "ENFORCED"]);
        def.primary_key.push(name.clone());
    }
    def.columns.push(ColumnDef {
        name,
        pos,
        kind: ColumnKind::Physical {
            data_type,
            nullable,
            metadata,
        },
    });
    Ok(())
}
