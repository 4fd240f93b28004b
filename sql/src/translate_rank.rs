//! Translation of `ROW_NUMBER()`, `RANK()` and `DENSE_RANK()` `OVER
//! (PARTITION BY window_start, window_end ...)` into a window rank (Flink's
//! window Top-N and window deduplication): the filter on the rank that
//! usually follows stays a filter.

use datafusion::arrow::compute::SortOptions;
use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::{Expr, Window};
use datafusion::physical_expr::PhysicalSortExpr;
use vigil_engine::graph::NodeId;
use vigil_engine::metrics::names;
use vigil_engine::window::rank::{RankFunc, WindowRank, WindowRankSpec};

use crate::error::{Result, SqlError};
use crate::translate::{arrow_schema, Translator};
use crate::window_node::window_role;

const HELP: &str = "rank within windows: ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ...) over a window TVF, then WHERE rownum <= N";

impl Translator<'_> {
    /// Adds a window rank for `w`'s functions.
    pub(crate) async fn window_rank(&mut self, w: &Window) -> Result<NodeId> {
        let at = (self.locate)("OVER");
        let fail = |m: String| SqlError::at(at, m).with_help(HELP);
        let mut funcs = vec![];
        let mut shared: Option<WindowFunctionParams> = None;
        for e in &w.window_expr {
            let Expr::WindowFunction(f) = e.clone().unalias() else {
                return Err(fail("not supported yet: this OVER expression".into()));
            };
            let WindowFunction { fun, params } = *f;
            let func = match fun.name().to_ascii_lowercase().as_str() {
                "row_number" => RankFunc::RowNumber,
                "rank" => RankFunc::Rank,
                "dense_rank" => RankFunc::DenseRank,
                other => {
                    return Err(fail(format!(
                        "not supported yet: {other}() OVER windows; only ROW_NUMBER, RANK and DENSE_RANK within window TVF windows"
                    )))
                }
            };
            funcs.push(func);
            match &shared {
                None => shared = Some(params),
                Some(s) if s.partition_by == params.partition_by && s.order_by == params.order_by => {}
                Some(_) => {
                    return Err(fail(
                        "not supported yet: ranking functions with different OVER clauses in one SELECT".into(),
                    ))
                }
            }
        }
        let Some(params) = shared else {
            return Err(fail("an OVER window without a function".into()));
        };
        let schema = w.input.schema();
        let (mut start, mut end) = (None, None);
        let mut keys = vec![];
        for p in &params.partition_by {
            match window_role(schema, p) {
                Some((i, r)) if r == "start" => start = Some(i),
                Some((i, r)) if r == "end" => end = Some(i),
                _ => keys.push(self.physical(p, schema)?),
            }
        }
        let (Some(start), Some(end)) = (start, end) else {
            return Err(fail(
                "not supported yet: OVER windows not partitioned by window_start and window_end (unbounded OVER, Top-N and deduplication need updating results)".into(),
            ));
        };
        let mut order_by = vec![];
        for s in &params.order_by {
            order_by.push(PhysicalSortExpr {
                expr: self.physical(&s.expr, schema)?,
                options: SortOptions {
                    descending: !s.asc,
                    nulls_first: s.nulls_first,
                },
            });
        }
        let input = self.plan(&w.input).await?;
        let output = arrow_schema(&w.schema);
        let describe = format!(
            "{funcs:?} over windows [{start}, {end}], keys {:?}, order {:?}",
            params.partition_by, params.order_by
        );
        let spec = WindowRankSpec {
            windows: (start, end),
            partition_by: keys,
            order_by,
            funcs,
            input_schema: arrow_schema(schema),
            output_schema: output.clone(),
            describe,
        };
        let late = self
            .metrics
            .counter(names::LATE_ROWS_DROPPED, "window_rank");
        Ok(self
            .graph
            .add_operator(input, Box::new(WindowRank::new(spec, late)), output))
    }
}
