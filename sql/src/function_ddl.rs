//! `CREATE [TEMPORARY [SYSTEM]] FUNCTION [IF NOT EXISTS] name AS 'identifier'
//! [LANGUAGE JAVA | SCALA | PYTHON]`: binds `name` to a function the
//! embedding program registered (a Rust `ScalarUDF` or `AggregateUDF`) under
//! `identifier`, its name or an alias, such as the Java class a Flink script
//! names. A script written for Flink runs unchanged once the program
//! registers a Rust function under that class name.

use datafusion::execution::context::SessionContext;
use datafusion::sql::sqlparser::tokenizer::TokenWithSpan;

use crate::cursor::Cursor;
use crate::error::{Result, SqlError};

/// Parses the statement and registers the binding in `ctx`.
pub fn create_function(tokens: &[TokenWithSpan], ctx: &SessionContext) -> Result<()> {
    let mut c = Cursor::new(tokens);
    c.expect_keyword("CREATE")?;
    if c.eat_keyword("TEMPORARY") {
        c.eat_keyword("SYSTEM");
    }
    c.expect_keyword("FUNCTION")?;
    let if_not_exists = c.eat_keywords(&["IF", "NOT", "EXISTS"]);
    let (name, _) = c.object_name("a function name")?;
    c.expect_keyword("AS")?;
    let identifier_pos = c.pos();
    let identifier = c.string("the quoted identifier of a registered function")?;
    if c.eat_keyword("LANGUAGE") {
        c.identifier("JAVA, SCALA or PYTHON")?;
    }
    if c.is_keyword("USING") {
        return Err(
            SqlError::unsupported(c.pos(), "USING JAR in CREATE FUNCTION")
                .with_help("register the function in the program that embeds Vigil instead"),
        );
    }
    if !c.done() {
        return Err(c.unexpected("the end of the statement"));
    }
    let state = ctx.state();
    let exists = state.scalar_functions().contains_key(&name)
        || state.aggregate_functions().contains_key(&name);
    if exists && if_not_exists {
        return Ok(());
    }
    let scalar = state.scalar_functions().get(&identifier).cloned();
    let aggregate = state.aggregate_functions().get(&identifier).cloned();
    if scalar.is_some() || aggregate.is_some() {
        // DataFusion takes aliases as `&'static str`: a few bytes per
        // CREATE FUNCTION statement are kept for the life of the process.
        let alias: &'static str = Box::leak(name.into_boxed_str());
        if let Some(f) = scalar {
            ctx.register_udf(f.as_ref().clone().with_aliases([alias]));
        } else if let Some(f) = aggregate {
            ctx.register_udaf(f.as_ref().clone().with_aliases([alias]));
        }
        return Ok(());
    }
    Err(SqlError::at(
        identifier_pos,
        format!("no function is registered as '{identifier}'"),
    )
    .with_len(identifier.len() + 2)
    .with_help(
        "Vigil runs no Java, Scala or Python classes: the program embedding Vigil registers a Rust function under this name or alias (Vigil::register_udf; see examples/nexmark_udf.rs)",
    ))
}
