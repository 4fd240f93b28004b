//! Translation of OVER aggregations (`SUM(x) OVER (PARTITION BY k ORDER BY
//! rowtime ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)`, also with a `WINDOW w
//! AS (...)` clause) into the engine's [`OverAggregate`]. Different OVER
//! windows in one SELECT become one operator each, one after the other
//! (Flink refuses them), and so do functions of one PARTITION BY and ORDER
//! BY with different frames. Over an updating input (beyond Flink; Nexmark
//! q6), one window becomes an [`UpdatingOver`], whose result updates.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    AggregateUDF, Expr, Window, WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition,
};
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::physical_expr::expressions::Column as PhysColumn;
use datafusion::physical_expr::PhysicalExpr;
use vigil_engine::changelog::over::UpdatingOver;
use vigil_engine::changelog::with_row_kind;
use vigil_engine::graph::NodeId;
use vigil_engine::metrics::names;
use vigil_engine::operator::Operator;
use vigil_engine::operators::project::Project;
use vigil_engine::state::parallelism_setting;
use vigil_engine::window::aggregate::AggregateSpec;
use vigil_engine::window::over::{OverAggregate, OverFrame, OverSpec};
use vigil_engine::window::ROWTIME_METADATA_KEY;

use crate::error::{Result, SqlError};
use crate::translate::{arrow_schema, Translator};

const HELP: &str = "an OVER aggregation reads: agg(x) OVER (PARTITION BY k ORDER BY <time attribute> ROWS BETWEEN n PRECEDING AND CURRENT ROW), or RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW, or UNBOUNDED PRECEDING";

/// Whether every function of `w` is an aggregate (not a ranking function).
pub(crate) fn is_over_aggregate(w: &Window) -> bool {
    w.window_expr.iter().all(|e| {
        matches!(e.clone().unalias(), Expr::WindowFunction(f)
            if matches!(&f.fun, WindowFunctionDefinition::AggregateUDF(_))
                || matches!(&f.fun, WindowFunctionDefinition::WindowUDF(u)
                    if ["lag", "first_value", "last_value"].contains(&u.name())))
    })
}

/// `FIRST_VALUE(x)` / `LAST_VALUE(x)` as the OVER aggregate `over_first(x,
/// bounded)` / `over_last(x, bounded)` over the same frame (see
/// `functions::lag`).
fn frame_value_as_aggregate(
    ctx: &datafusion::prelude::SessionContext,
    name: &str,
    mut params: WindowFunctionParams,
) -> std::result::Result<(Arc<AggregateUDF>, WindowFunctionParams), String> {
    use datafusion::common::ScalarValue;
    use datafusion::execution::FunctionRegistry;
    use datafusion::logical_expr::WindowFrameBound;
    let bounded = !matches!(
        params.window_frame.start_bound,
        WindowFrameBound::Preceding(ref v) if v.is_null()
    );
    params.args.truncate(1);
    params
        .args
        .push(Expr::Literal(ScalarValue::Boolean(Some(bounded)), None));
    let aggregate = if name == "first_value" {
        "over_first"
    } else {
        "over_last"
    };
    let udaf = ctx.udaf(aggregate).map_err(|e| format!("{name}: {e}"))?;
    Ok((udaf, params))
}

/// `LAG(x [, n [, default]])` as the OVER aggregate `over_lag(x, n,
/// default)` over `ROWS BETWEEN n PRECEDING AND CURRENT ROW` (see
/// `functions::lag`).
fn lag_as_aggregate(
    ctx: &datafusion::prelude::SessionContext,
    mut params: WindowFunctionParams,
) -> std::result::Result<(Arc<AggregateUDF>, WindowFunctionParams), String> {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{WindowFrame, WindowFrameBound, WindowFrameUnits};
    let offset = match params.args.get(1) {
        None => 1,
        Some(Expr::Literal(v, _)) => {
            match v.cast_to(&datafusion::arrow::datatypes::DataType::Int64) {
                Ok(ScalarValue::Int64(Some(n))) if n >= 0 => n,
                _ => return Err("LAG's offset must be a constant, 0 or more".into()),
            }
        }
        Some(_) => return Err("LAG's offset must be a constant".into()),
    };
    let mut args = params.args.clone();
    args.truncate(1);
    args.push(Expr::Literal(ScalarValue::Int64(Some(offset)), None));
    args.push(
        params
            .args
            .get(2)
            .cloned()
            .unwrap_or(Expr::Literal(ScalarValue::Null, None)),
    );
    params.args = args;
    params.window_frame = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(Some(offset as u64))),
        WindowFrameBound::CurrentRow,
    );
    use datafusion::execution::FunctionRegistry;
    let udaf = ctx.udaf("over_lag").map_err(|e| format!("LAG: {e}"))?;
    Ok((udaf, params))
}

/// One OVER aggregate call of a window plan node: its output column, its
/// function and its window.
type Call = (usize, Arc<AggregateUDF>, WindowFunctionParams);

impl Translator<'_> {
    /// Adds OVER aggregations for `w`'s functions: one operator per distinct
    /// window (DataFusion puts functions of one PARTITION BY and ORDER BY in
    /// one plan node whatever their frames), one after the other, then a
    /// projection into the node's column order if they changed it.
    pub(crate) async fn over_aggregate(&mut self, w: &Window) -> Result<NodeId> {
        let at = (self.locate)("OVER");
        let fail = |m: String| SqlError::at(at, m).with_help(HELP);
        let mut groups: Vec<Vec<Call>> = vec![];
        for (k, e) in w.window_expr.iter().enumerate() {
            let Expr::WindowFunction(f) = e.clone().unalias() else {
                return Err(fail("not supported yet: this OVER expression".into()));
            };
            let WindowFunction { fun, params } = *f;
            let (udaf, params) = match fun {
                WindowFunctionDefinition::AggregateUDF(udaf) => (udaf, params),
                WindowFunctionDefinition::WindowUDF(u) if u.name() == "lag" => {
                    lag_as_aggregate(self.ctx, params).map_err(fail)?
                }
                WindowFunctionDefinition::WindowUDF(u)
                    if ["first_value", "last_value"].contains(&u.name()) =>
                {
                    frame_value_as_aggregate(self.ctx, u.name(), params).map_err(fail)?
                }
                _ => return Err(fail("not supported yet: this OVER function".into())),
            };
            let same = |g: &Vec<Call>| {
                let p = &g[0].2;
                p.partition_by == params.partition_by
                    && p.order_by == params.order_by
                    && p.window_frame == params.window_frame
            };
            match groups.iter_mut().find(|g| same(g)) {
                Some(g) => g.push((k, udaf, params)),
                None => groups.push(vec![(k, udaf, params)]),
            }
        }
        if groups.is_empty() {
            return Err(fail("an OVER window without a function".into()));
        }
        // An updating input must say which rows its updates replace.
        let mut node = self.plan_retracting(&w.input).await?;
        if self.updating(node) {
            return self.updating_over(w, groups, node, at).await;
        }
        let input_arrow = self.graph.schema(node);
        let window_out = arrow_schema(&w.schema);
        let n_in = input_arrow.fields().len();
        // Where each function's column ends up.
        let mut placed = vec![0; w.window_expr.len()];
        let mut current = input_arrow.clone();
        for calls in groups {
            for (offset, (k, ..)) in calls.iter().enumerate() {
                placed[*k] = current.fields().len() + offset;
            }
            let mut fields: Vec<_> = current.fields().iter().cloned().collect();
            fields.extend(
                calls
                    .iter()
                    .map(|(k, ..)| window_out.fields()[n_in + k].clone()),
            );
            let output = Arc::new(Schema::new(fields));
            let spec = self.over_spec(w, calls, &input_arrow, current, output.clone(), at)?;
            let late = self.metrics.counter(names::LATE_ROWS_DROPPED, "over");
            let op = OverAggregate::new(spec, late).map_err(|e| SqlError::at(at, e.to_string()))?;
            let keyed = op.key_exprs(0).is_some();
            node = self.graph.add_operator(node, Box::new(op), output.clone());
            if keyed {
                self.graph.nodes[node].parallelism =
                    parallelism_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
            }
            current = output;
        }
        let order: Vec<usize> = (0..n_in).chain(placed).collect();
        if order.iter().enumerate().all(|(j, i)| j == *i) {
            return Ok(node);
        }
        let exprs = order
            .iter()
            .map(|i| {
                Arc::new(PhysColumn::new(current.field(*i).name(), *i)) as Arc<dyn PhysicalExpr>
            })
            .collect();
        Ok(self.graph.add_operator(
            node,
            Box::new(Project::new(exprs, window_out.clone())),
            window_out,
        ))
    }

    /// An OVER aggregation over an updating input (beyond Flink): one
    /// window, whose result updates as the input does.
    async fn updating_over(
        &mut self,
        w: &Window,
        mut groups: Vec<Vec<Call>>,
        node: NodeId,
        at: crate::error::Pos,
    ) -> Result<NodeId> {
        if groups.len() > 1 {
            return Err(SqlError::unsupported(
                at,
                "different OVER windows in one SELECT over an updating input",
            )
            .with_help(
                "use one window (one PARTITION BY, ORDER BY and frame) for every OVER call",
            ));
        }
        let calls = groups.remove(0);
        let input = arrow_schema(w.input.schema());
        let output = arrow_schema(&w.schema);
        let spec = self.over_spec(w, calls, &input, input.clone(), output.clone(), at)?;
        let op = UpdatingOver::new(spec).map_err(|e| SqlError::at(at, e.to_string()))?;
        let keyed = op.key_exprs(0).is_some();
        let node = self
            .graph
            .add_operator(node, Box::new(op), with_row_kind(&output));
        if keyed {
            self.graph.nodes[node].parallelism =
                parallelism_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
        }
        Ok(node)
    }

    /// The spec of the `calls` of one window, over rows of `current`
    /// (the plan node's input, `input`, with the columns of earlier windows).
    fn over_spec(
        &self,
        w: &Window,
        calls: Vec<Call>,
        input: &SchemaRef,
        current: SchemaRef,
        output: SchemaRef,
        at: crate::error::Pos,
    ) -> Result<OverSpec> {
        let fail = |m: String| SqlError::at(at, m).with_help(HELP);
        let params = calls[0].2.clone();
        let schema = w.input.schema();
        let [order] = params.order_by.as_slice() else {
            return Err(fail(
                "an OVER window must be ordered by one time attribute, as in Flink".into(),
            ));
        };
        let time = match &order.expr {
            Expr::Column(c) => schema.index_of_column(c).ok(),
            _ => None,
        }
        .filter(|i| {
            schema
                .field(*i)
                .metadata()
                .contains_key(ROWTIME_METADATA_KEY)
        })
        .filter(|_| order.asc)
        .ok_or_else(|| {
            fail(format!(
                "an OVER window must be ordered by a time attribute ascending, not by {}",
                order.expr
            ))
        })?;
        let frame = self.over_frame(&params, at)?;
        let n = current.fields().len();
        let mut aggregates = vec![];
        for (j, (_, udaf, p)) in calls.into_iter().enumerate() {
            let call = Expr::AggregateFunction(AggregateFunction::new_udf(
                udaf,
                p.args,
                p.distinct,
                p.filter,
                vec![],
                p.null_treatment,
            ));
            // Arguments refer to the node's input columns, which keep their
            // places at the front of `current`.
            let lowered = LoweredAggregateBuilder::new(
                &call,
                schema,
                input,
                &self.props,
                &PhysicalPlanningContext::default(),
            )
            .with_name(output.field(n + j).name().clone())
            .build()
            .map_err(|e| self.df_err(e))?;
            if lowered.filter.is_some() {
                return Err(SqlError::unsupported(at, "FILTER in an OVER aggregate"));
            }
            aggregates.push(AggregateSpec {
                expr: lowered.aggregate,
                filter: None,
            });
        }
        let partition_by = params
            .partition_by
            .iter()
            .map(|p| self.physical(p, schema))
            .collect::<Result<Vec<_>>>()?;
        let list = |v: Vec<String>| v.join(", ");
        let describe = format!(
            "{} partition by [{}] order by {} {frame:?}",
            list(
                aggregates
                    .iter()
                    .map(|a| a.expr.fun().name().to_string())
                    .collect()
            ),
            list(params.partition_by.iter().map(|p| p.to_string()).collect()),
            order.expr,
        );
        Ok(OverSpec {
            partition_by,
            time,
            frame,
            aggregates,
            input_schema: current,
            output_schema: output,
            describe,
        })
    }

    /// The frame of an OVER window: `... PRECEDING AND CURRENT ROW`.
    fn over_frame(
        &self,
        params: &WindowFunctionParams,
        at: crate::error::Pos,
    ) -> Result<OverFrame> {
        let f = &params.window_frame;
        let fail = |m: &str| SqlError::unsupported(at, m).with_help(HELP);
        if !matches!(f.end_bound, WindowFrameBound::CurrentRow) {
            return Err(fail(
                "an OVER window that ends after CURRENT ROW (Flink's end at the current row)",
            ));
        }
        let preceding = match &f.start_bound {
            WindowFrameBound::CurrentRow => Some(ScalarValue::UInt64(Some(0))),
            WindowFrameBound::Preceding(v) if v.is_null() => None,
            WindowFrameBound::Preceding(v) => Some(v.clone()),
            WindowFrameBound::Following(_) => {
                return Err(fail("an OVER window that starts after the current row"))
            }
        };
        match f.units {
            WindowFrameUnits::Rows => {
                let n = match preceding {
                    None => None,
                    Some(v) => Some(
                        v.cast_to(&datafusion::arrow::datatypes::DataType::UInt64)
                            .ok()
                            .and_then(|v| match v {
                                ScalarValue::UInt64(n) => n,
                                _ => None,
                            })
                            .ok_or_else(|| fail("a ROWS frame needs a whole number of rows"))?,
                    ),
                };
                Ok(OverFrame::Rows(n))
            }
            WindowFrameUnits::Range => {
                let ms = match preceding {
                    None => None,
                    Some(v) => Some(interval_ms(&v).ok_or_else(|| {
                        fail("a RANGE frame needs an INTERVAL, e.g. INTERVAL '1' HOUR PRECEDING")
                    })?),
                };
                Ok(OverFrame::Range(ms))
            }
            WindowFrameUnits::Groups => Err(fail("GROUPS frames")),
        }
    }
}

/// Milliseconds of an interval value (0 for the `CURRENT ROW` start).
fn interval_ms(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::UInt64(Some(0)) => Some(0),
        ScalarValue::IntervalDayTime(Some(d)) => {
            Some(i64::from(d.days) * 86_400_000 + i64::from(d.milliseconds))
        }
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            Some(i64::from(i.days) * 86_400_000 + i.nanoseconds / 1_000_000)
        }
        ScalarValue::DurationMillisecond(Some(ms)) => Some(*ms),
        _ => None,
    }
}
