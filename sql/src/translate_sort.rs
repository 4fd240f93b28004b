//! Translation of `ORDER BY` and `LIMIT` on a stream, where Flink allows
//! them: `ORDER BY` a time attribute ascending, then any further keys (a
//! temporal sort: rows wait for the watermark, then go out in time order,
//! rows of one time in the further keys' order), and `LIMIT n` (the first n
//! rows; also after an ORDER BY of time).

use datafusion::arrow::compute::SortOptions;
use datafusion::logical_expr::{Expr, Limit, Sort};
use vigil_engine::graph::NodeId;
use vigil_engine::metrics::names;
use vigil_engine::operators::sort::{Limit as LimitOp, SortBatch};
use vigil_engine::window::over::{OverAggregate, OverFrame, OverSpec};
use vigil_engine::window::ROWTIME_METADATA_KEY;

use crate::error::{Result, SqlError};
use crate::translate::{arrow_schema, Translator};

impl Translator<'_> {
    /// A temporal sort, then `s.fetch` as a LIMIT.
    pub(crate) async fn sort(&mut self, s: &Sort) -> Result<NodeId> {
        let at = (self.locate)("ORDER");
        let schema = s.input.schema();
        let time = s.expr.first().and_then(|first| {
            let Expr::Column(c) = &first.expr else {
                return None;
            };
            let i = schema.index_of_column(c).ok()?;
            (first.asc
                && schema
                    .field(i)
                    .metadata()
                    .contains_key(ROWTIME_METADATA_KEY))
            .then_some(i)
        });
        let Some(time) = time else {
            return Err(SqlError::at(at, "ORDER BY on a stream must start with a time attribute, ascending (as in Flink: sorting on another column is not supported)")
                .with_help("ORDER BY the column of the table's WATERMARK (or window_time) ASC first; rank with ROW_NUMBER() OVER (...) for a Top-N"));
        };
        let input = self.plan(&s.input).await?;
        self.require_append_only(input, "ORDER", "ORDER BY")?;
        let arrow = arrow_schema(schema);
        let spec = OverSpec {
            partition_by: vec![],
            time,
            frame: OverFrame::Rows(Some(0)),
            aggregates: vec![],
            input_schema: arrow.clone(),
            output_schema: arrow.clone(),
            describe: format!("ORDER BY {}", s.expr[0].expr),
        };
        let late = self.metrics.counter(names::LATE_ROWS_DROPPED, "order_by");
        let op = OverAggregate::new(spec, late).map_err(|e| SqlError::at(at, e.to_string()))?;
        let mut node = self.graph.add_operator(input, Box::new(op), arrow.clone());
        if s.expr.len() > 1 {
            let keys = s
                .expr
                .iter()
                .map(|k| {
                    let options = SortOptions {
                        descending: !k.asc,
                        nulls_first: k.nulls_first,
                    };
                    Ok((self.physical(&k.expr, schema)?, options))
                })
                .collect::<Result<Vec<_>>>()?;
            node = self
                .graph
                .add_operator(node, Box::new(SortBatch::new(keys)), arrow.clone());
        }
        match s.fetch {
            Some(n) => Ok(self
                .graph
                .add_operator(node, Box::new(LimitOp::new(n as u64)), arrow)),
            None => Ok(node),
        }
    }

    /// `LIMIT n` (no OFFSET): the first n rows.
    pub(crate) async fn limit(&mut self, l: &Limit) -> Result<NodeId> {
        let at = (self.locate)("LIMIT");
        let fail = |what: &str| {
            SqlError::unsupported(at, what.to_string()).with_help("write LIMIT n with a constant n")
        };
        let skip = match l.get_skip_type().map_err(|e| self.df_err(e))? {
            datafusion::logical_expr::SkipType::Literal(n) => n,
            _ => return Err(fail("a computed OFFSET")),
        };
        if skip > 0 {
            return Err(fail("OFFSET on a stream"));
        }
        let n = match l.get_fetch_type().map_err(|e| self.df_err(e))? {
            datafusion::logical_expr::FetchType::Literal(Some(n)) => n,
            datafusion::logical_expr::FetchType::Literal(None) => return self.plan(&l.input).await,
            _ => return Err(fail("a computed LIMIT")),
        };
        let input = self.plan(&l.input).await?;
        self.require_append_only(input, "LIMIT", "LIMIT")?;
        let schema = self.graph.schema(input);
        Ok(self
            .graph
            .add_operator(input, Box::new(LimitOp::new(n as u64)), schema))
    }
}
