//! Analyzer rules Vigil adds in front of DataFusion's.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::Result;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

/// Names each aggregate call by what the user wrote before type coercion
/// rewrites it. Without this, `AVG(i)` and `AVG(CAST(i AS DOUBLE))` both become
/// `avg(CAST(i AS Float64))` and the plan fails with a duplicate column name.
#[derive(Debug, Default)]
pub struct StableAggregateNames;

impl AnalyzerRule for StableAggregateNames {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up(|p| match p {
            LogicalPlan::Aggregate(agg)
                if agg.aggr_expr.iter().any(|e| !matches!(e, Expr::Alias(_))) =>
            {
                let aggr = agg
                    .aggr_expr
                    .iter()
                    .map(|e| match e {
                        Expr::Alias(_) => e.clone(),
                        e => e.clone().alias(e.schema_name().to_string()),
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
