//! Translation of `ROW_NUMBER()`, `RANK()` and `DENSE_RANK()` `OVER
//! (PARTITION BY window_start, window_end ...)` into a window rank (Flink's
//! window Top-N and window deduplication): the filter on the rank that
//! usually follows stays a filter.

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ExprSchema;
use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::{Expr, Window};
use datafusion::physical_expr::PhysicalSortExpr;
use vigil_engine::changelog::rank::{
    rank_output_schema, StreamRank, StreamRankKind, StreamRankSpec,
};
use vigil_engine::changelog::ttl::ttl_setting;
use vigil_engine::graph::NodeId;
use vigil_engine::metrics::names;
use vigil_engine::state::parallelism_setting;
use vigil_engine::window::rank::{RankFunc, WindowRank, WindowRankSpec};
use vigil_engine::window::ROWTIME_METADATA_KEY;

use crate::error::{Result, SqlError};
use crate::translate::{arrow_schema, RankHint, Translator};
use crate::window_node::window_role;

const STREAM_HELP: &str = "Top-N: SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rownum FROM t) WHERE rownum <= N";

const HELP: &str = "rank within windows: ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ...) over a window TVF, then WHERE rownum <= N";

impl Translator<'_> {
    /// Adds a window rank for `w`'s functions.
    pub(crate) async fn window_rank(&mut self, w: &Window) -> Result<NodeId> {
        let at = (self.locate)("OVER");
        // What the plan above said about this rank (used by a stream rank only).
        let hint = std::mem::take(&mut self.rank_hint);
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
            if start.is_some() || end.is_some() {
                return Err(fail("partition by both window_start and window_end, or by neither (a Top-N over the whole stream)".into()));
            }
            return self.stream_rank(w, &params, &funcs, hint).await;
        };
        let order_by = self.sort_exprs(&params.order_by, schema)?;
        let input = self.plan(&w.input).await?;
        self.require_append_only(input, "OVER", "a window Top-N")?;
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
        let keyed = !spec.partition_by.is_empty();
        let op = WindowRank::new(spec, late).map_err(|e| SqlError::at(self.pos, e.to_string()))?;
        let parallelism =
            parallelism_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
        let id = self.graph.add_operator(input, Box::new(op), output);
        if keyed {
            self.graph.nodes[id].parallelism = parallelism;
        }
        Ok(id)
    }
}

impl Translator<'_> {
    /// The physical form of an OVER window's ORDER BY.
    fn sort_exprs(
        &self,
        order_by: &[datafusion::logical_expr::SortExpr],
        schema: &datafusion::common::DFSchema,
    ) -> Result<Vec<PhysicalSortExpr>> {
        order_by
            .iter()
            .map(|s| {
                Ok(PhysicalSortExpr {
                    expr: self.physical(&s.expr, schema)?,
                    options: SortOptions {
                        descending: !s.asc,
                        nulls_first: s.nulls_first,
                    },
                })
            })
            .collect()
    }

    /// Adds a deduplication or Top-N over a stream (an updating result).
    async fn stream_rank(
        &mut self,
        w: &Window,
        params: &WindowFunctionParams,
        funcs: &[RankFunc],
        hint: RankHint,
    ) -> Result<NodeId> {
        let at = (self.locate)("OVER");
        let [rank] = funcs else {
            return Err(SqlError::at(
                at,
                "not supported yet: ranking functions with different OVER clauses in one Top-N",
            )
            .with_help(STREAM_HELP));
        };
        let Some(n) = hint.limit else {
            return Err(SqlError::at(at, "an OVER window over a stream must be a Top-N: filter its row number with WHERE rownum <= N")
                .with_help(STREAM_HELP));
        };
        let schema = w.input.schema();
        let partition_by = params
            .partition_by
            .iter()
            .map(|p| self.physical(p, schema))
            .collect::<Result<Vec<_>>>()?;
        let key_types = params
            .partition_by
            .iter()
            .map(|p| p.get_type(schema.as_ref()).map_err(|e| self.df_err(e)))
            .collect::<Result<Vec<_>>>()?;
        let order_by = self.sort_exprs(&params.order_by, schema)?;
        // Deduplication: the first or last row by the time attribute.
        let on_time = match params.order_by.as_slice() {
            [s] => match &s.expr {
                Expr::Column(c) => schema
                    .field_from_column(c)
                    .is_ok_and(|f| f.metadata().contains_key(ROWTIME_METADATA_KEY)),
                _ => false,
            },
            _ => false,
        };
        let input = self.plan_retracting(&w.input).await?;
        let input_updating = self.updating(input);
        // Over an updating input every row may be taken back, so even a
        // deduplication keeps all rows, as a Top-1 (Flink's
        // `RetractableTopNFunction`).
        let kind = if n == 1 && on_time && !input_updating && *rank == RankFunc::RowNumber {
            StreamRankKind::Dedup {
                keep_last: !params.order_by[0].asc,
            }
        } else {
            StreamRankKind::TopN {
                n,
                rank_number: hint.number_used.unwrap_or(true),
            }
        };
        let input_schema = data_schema(&self.graph.schema(input));
        let out = arrow_schema(&w.schema);
        let rank_field = out.field(out.fields().len() - 1).clone();
        let output = rank_output_schema(&input_schema, &rank_field);
        let spec = StreamRankSpec {
            describe: format!(
                "{kind:?}, keys {:?}, order {:?}",
                params.partition_by, params.order_by
            ),
            kind,
            partition_by,
            key_types,
            order_by,
            input_schema,
            output_schema: output.clone(),
            ttl: ttl_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?,
            update_before: self.retractions_needed,
            input_updating,
            rank: *rank,
        };
        let op = StreamRank::new(spec).map_err(|e| SqlError::at(at, e.to_string()))?;
        let parallelism =
            parallelism_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
        let id = self.graph.add_operator(input, Box::new(op), output);
        if !params.partition_by.is_empty() {
            self.graph.nodes[id].parallelism = parallelism;
        }
        Ok(id)
    }
}

/// `schema` without an updating stream's `__row_kind` column.
fn data_schema(schema: &datafusion::arrow::datatypes::Schema) -> SchemaRef {
    let width = vigil_engine::changelog::data_width(schema);
    Arc::new(datafusion::arrow::datatypes::Schema::new(
        schema.fields()[..width].to_vec(),
    ))
}
