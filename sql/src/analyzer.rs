//! Analyzer rules Vigil adds in front of DataFusion's.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::Result;
use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, AggregateUDF, Expr, ExprSchemable, LogicalPlan, Window, WindowFunctionDefinition,
};

use crate::functions::truncating::Truncating;
use datafusion::optimizer::AnalyzerRule;

/// Names each aggregate call by what the user wrote before type coercion
/// rewrites it. Without this, `AVG(i)` and `AVG(CAST(i AS DOUBLE))` both become
/// `avg(CAST(i AS Float64))` and the plan fails with a duplicate column name.
///
/// It also gives AVG, VAR_* and STDDEV_* over an integer argument Flink's
/// truncated result (see [`Truncating`]).
#[derive(Debug, Default)]
pub struct StableAggregateNames;

fn flink_integer_result(e: Expr, schema: &DFSchema) -> Expr {
    let Expr::AggregateFunction(mut f) = e else {
        return e;
    };
    let statistical = matches!(
        f.func.name(),
        "avg"
            | "var_pop"
            | "var_samp"
            | "var"
            | "variance"
            | "stddev_pop"
            | "stddev_samp"
            | "stddev"
    );
    let integer_arg = f
        .params
        .args
        .first()
        .and_then(|a| a.get_type(schema).ok())
        .is_some_and(|t| t.is_integer());
    if statistical && integer_arg {
        f.func = Arc::new(AggregateUDF::new_from_impl(Truncating::new(f.func.clone())));
    }
    Expr::AggregateFunction(f)
}

/// An OVER aggregate with Flink's truncated result (see
/// [`flink_integer_result`]), if `e` is one that needs it.
fn truncated_over(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::WindowFunction(f) = e else {
        return None;
    };
    let WindowFunctionDefinition::AggregateUDF(udaf) = &f.fun else {
        return None;
    };
    let call = Expr::AggregateFunction(AggregateFunction::new_udf(
        udaf.clone(),
        f.params.args.clone(),
        false,
        None,
        vec![],
        None,
    ));
    let Expr::AggregateFunction(t) = flink_integer_result(call, schema) else {
        return None;
    };
    if Arc::ptr_eq(&t.func, udaf) {
        return None;
    }
    let mut f = f.as_ref().clone();
    f.fun = WindowFunctionDefinition::AggregateUDF(t.func);
    Some(Expr::WindowFunction(Box::new(f)))
}

impl AnalyzerRule for StableAggregateNames {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up(|p| match p {
            LogicalPlan::Aggregate(agg)
                if agg.aggr_expr.iter().any(|e| !matches!(e, Expr::Alias(_))) =>
            {
                let schema = agg.input.schema().clone();
                let aggr = agg
                    .aggr_expr
                    .iter()
                    .map(|e| match e {
                        Expr::Alias(_) => e.clone(),
                        e => flink_integer_result(e.clone(), &schema)
                            .alias(e.schema_name().to_string()),
                    })
                    .collect();
                let new = Aggregate::try_new(agg.input.clone(), agg.group_expr.clone(), aggr)?;
                Ok(Transformed::yes(LogicalPlan::Aggregate(new)))
            }
            LogicalPlan::Window(w)
                if w.window_expr
                    .iter()
                    .any(|e| truncated_over(e, w.input.schema()).is_some()) =>
            {
                let exprs = w
                    .window_expr
                    .iter()
                    .map(|e| match truncated_over(e, w.input.schema()) {
                        // The name stays what the plan above refers to.
                        Some(t) => t.alias(e.schema_name().to_string()),
                        None => e.clone(),
                    })
                    .collect();
                let new = Window::try_new(exprs, w.input.clone())?;
                Ok(Transformed::yes(LogicalPlan::Window(new)))
            }
            p => Ok(Transformed::no(p)),
        })
        .data()
    }

    fn name(&self) -> &str {
        "vigil_stable_aggregate_names"
    }
}
