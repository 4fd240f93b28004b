//! Analyzer rules Vigil adds in front of DataFusion's.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::Result;
use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::logical_expr::{Aggregate, AggregateUDF, Expr, ExprSchemable, LogicalPlan};

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
            p => Ok(Transformed::no(p)),
        })
        .data()
    }

    fn name(&self) -> &str {
        "vigil_stable_aggregate_names"
    }
}
