//! Casts to DECIMAL as Flink's: a number that does not fit DECIMAL(p, s)
//! becomes NULL (Flink's `DecimalData` holds no value beyond its precision)
//! instead of failing the job, in an explicit `CAST` and in the cast of a
//! query's columns to a sink table's types. Every other cast is DataFusion's.

use std::sync::Arc;

use datafusion::arrow::compute::CastOptions;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::execution_props::ExecutionProps;
use datafusion::physical_expr::expressions::CastExpr;
use datafusion::physical_expr::PhysicalExpr;

use crate::error::{Pos, Result, SqlError};

fn is_decimal(t: &DataType) -> bool {
    matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// `expr` with every cast of a number to a DECIMAL made overflow-to-NULL.
pub fn flink_decimal_casts(
    expr: Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> DfResult<Arc<dyn PhysicalExpr>> {
    expr.transform_up(|e| {
        let Some(cast) = e.downcast_ref::<CastExpr>() else {
            return Ok(Transformed::no(e));
        };
        let from = cast.expr().data_type(schema)?;
        let to = cast.cast_type();
        if !is_decimal(to) || !(from.is_integer() || is_decimal(&from)) {
            return Ok(Transformed::no(e));
        }
        let overflow_to_null = CastOptions {
            safe: true,
            format_options: FormatOptions::default(),
        };
        Ok(Transformed::yes(Arc::new(CastExpr::new(
            cast.expr().clone(),
            to.clone(),
            Some(overflow_to_null),
        ))))
    })
    .map(|t| t.data)
}

/// Column `col` of `schema`, cast to `target` (a sink column's type).
pub fn sink_cast(
    col: Column,
    schema: &DFSchema,
    target: &DataType,
    pos: Pos,
) -> Result<Arc<dyn PhysicalExpr>> {
    let err = |e| SqlError::from_datafusion(e, pos);
    let e =
        datafusion::logical_expr::cast(datafusion::logical_expr::Expr::Column(col), target.clone());
    let physical = datafusion::physical_expr::create_physical_expr(
        &e,
        schema,
        &ExecutionProps::new(),
        &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default(),
    )
    .map_err(err)?;
    flink_decimal_casts(physical, schema.as_arrow()).map_err(err)
}
