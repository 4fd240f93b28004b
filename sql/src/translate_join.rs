//! Translation of a join of two streams into a two-input join operator
//! (interval or window join here; regular joins in `translate_changelog`):
//! the left input is the operator's input 0, the right its input 1.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{build_join_schema, Expr, Join, JoinType};
use datafusion::physical_expr::PhysicalExpr;
use vigil_engine::graph::NodeId;
use vigil_engine::join::interval::{IntervalJoin, IntervalJoinSpec};
use vigil_engine::join::window::{WindowJoin, WindowJoinSpec};
use vigil_engine::metrics::names;

use crate::as_of::as_of_node;
use crate::error::{Result, SqlError};
use crate::join::{interval_join, window_join, NotInterval, WindowJoinPlan};
use crate::translate::{arrow_schema, Translator};

/// Each side's key expressions.
type SideKeys = [Vec<Arc<dyn PhysicalExpr>>; 2];

impl Translator<'_> {
    /// Adds a window join or an interval join of `j`'s inputs.
    pub(crate) async fn join(&mut self, j: &Join) -> Result<NodeId> {
        let at = (self.locate)("JOIN");
        let fail = |e: NotInterval| SqlError::at(at, e.message).with_help(e.help);
        if as_of_node(&j.left).is_some() {
            return Err(SqlError::at(
                (self.locate)("JOIN"),
                "FOR SYSTEM_TIME AS OF reads the table on the right of a JOIN: swap the join's sides",
            ));
        }
        if let Some((node, _)) = as_of_node(&j.right) {
            if node.is_event_time(j.left.schema()) {
                return self.temporal_join(j).await;
            }
            return self.lookup_join(j).await;
        }
        if let Some(w) = window_join(j).map_err(fail)? {
            return self.window_join(j, w).await;
        }
        // A join whose condition does not bound both time attributes is a
        // regular join, as in Flink; so is a semi or anti join (`IN`,
        // `EXISTS`) other than a window join.
        let Ok(plan) = interval_join(j) else {
            return self.regular_join(j).await;
        };
        let (inputs, sides) = self.join_inputs(j, false).await?;
        let (keys, key_types) = self.join_keys(j, &plan.left_keys, &plan.right_keys, &sides)?;
        let filter = match &plan.filter {
            Some(f) => Some(self.physical(f, &j.schema)?),
            None => None,
        };
        let output = arrow_schema(&j.schema);
        let describe = format!(
            "{:?}, keys={:?}={:?}, left.t - right.t in [{}, {}] ms, filter={}",
            plan.kind,
            plan.left_keys,
            plan.right_keys,
            plan.lower,
            plan.upper,
            plan.filter
                .as_ref()
                .map_or("-".to_string(), |f| f.to_string())
        );
        let spec = IntervalJoinSpec {
            kind: plan.kind,
            schemas: sides,
            keys,
            key_types,
            times: plan.times,
            lower: plan.lower,
            upper: plan.upper,
            null_equal: plan.null_equal,
            filter,
            output_schema: output.clone(),
            describe,
        };
        let op = IntervalJoin::new(spec).map_err(|e| SqlError::at(at, e.to_string()))?;
        self.add_join(inputs, Box::new(op), output)
    }

    /// The join's condition beyond its equalities, over left columns then
    /// right columns, and that pair layout (all columns nullable, as padded
    /// rows have NULLs on either side).
    pub(crate) fn residual_condition(
        &self,
        j: &Join,
        condition: Option<&Expr>,
    ) -> Result<(Option<Arc<dyn PhysicalExpr>>, SchemaRef)> {
        let pair = build_join_schema(j.left.schema(), j.right.schema(), &JoinType::Inner)
            .map_err(|e| self.df_err(e))?;
        let filter = match condition {
            Some(f) => Some(self.physical(f, &pair)?),
            None => None,
        };
        let pair_schema: SchemaRef = Arc::new(Schema::new(
            pair.fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        Ok((filter, pair_schema))
    }

    /// The physical key expressions of each side, and their types (the left
    /// side's, to which the right side's are cast).
    pub(crate) fn join_keys(
        &self,
        j: &Join,
        left: &[Expr],
        right: &[Expr],
        sides: &[SchemaRef; 2],
    ) -> Result<(SideKeys, Vec<DataType>)> {
        let phys = |es: &[Expr], schema: &DFSchema| {
            es.iter()
                .map(|e| self.physical(e, schema))
                .collect::<Result<Vec<_>>>()
        };
        let left_keys = phys(left, j.left.schema())?;
        let right_keys = phys(right, j.right.schema())?;
        let key_types = left_keys
            .iter()
            .map(|k| k.data_type(&sides[0]).map_err(|e| self.df_err(e)))
            .collect::<Result<Vec<_>>>()?;
        Ok(([left_keys, right_keys], key_types))
    }

    /// Adds a join operator reading `inputs` (left, right): as parallel
    /// instances by its equality keys when the job asks for parallelism.
    pub(crate) fn add_join(
        &mut self,
        inputs: [NodeId; 2],
        op: Box<dyn vigil_engine::operator::Operator>,
        output: SchemaRef,
    ) -> Result<NodeId> {
        let keyed = op.key_exprs(0).is_some();
        let parallelism = vigil_engine::state::parallelism_setting(&self.settings)
            .map_err(|e| SqlError::at(self.pos, e))?;
        let id = self.graph.add_operator_over(inputs.to_vec(), op, output);
        if keyed {
            self.graph.nodes[id].parallelism = parallelism;
        }
        Ok(id)
    }

    /// Both inputs of `j` planned, and each one's schema. Only a regular
    /// join (`updating_ok`) takes updating inputs; interval and window joins
    /// need each row final.
    pub(crate) async fn join_inputs(
        &mut self,
        j: &Join,
        updating_ok: bool,
    ) -> Result<([NodeId; 2], [SchemaRef; 2])> {
        let sides = [
            arrow_schema(j.left.schema()),
            arrow_schema(j.right.schema()),
        ];
        // A regular join takes back the pairs of a retracted row, so an
        // updating input must retract the rows its updates replace.
        let left = if updating_ok {
            self.plan_retracting(&j.left).await?
        } else {
            self.plan(&j.left).await?
        };
        let right = if updating_ok {
            self.plan_retracting(&j.right).await?
        } else {
            self.plan(&j.right).await?
        };
        if !updating_ok {
            for node in [left, right] {
                self.require_append_only(node, "JOIN", "an interval or window join")?;
            }
        }
        Ok(([left, right], sides))
    }

    /// Adds a window join of `j`'s inputs.
    async fn window_join(&mut self, j: &Join, plan: WindowJoinPlan) -> Result<NodeId> {
        let at = (self.locate)("JOIN");
        let (inputs, sides) = self.join_inputs(j, false).await?;
        let (keys, key_types) = self.join_keys(j, &plan.left_keys, &plan.right_keys, &sides)?;
        let (filter, pair_schema) = self.residual_condition(j, plan.filter.as_ref())?;
        let output = arrow_schema(&j.schema);
        let describe = format!(
            "{:?}, keys={:?}={:?}, filter={}",
            plan.kind,
            plan.left_keys,
            plan.right_keys,
            plan.filter
                .as_ref()
                .map_or("-".to_string(), |f| f.to_string())
        );
        let spec = WindowJoinSpec {
            kind: plan.kind,
            schemas: sides,
            keys,
            key_types,
            windows: plan.windows,
            null_equal: plan.null_equal,
            filter,
            // Padded rows put NULLs in either side's columns.
            pair_schema,
            output_schema: output.clone(),
            describe,
        };
        let late = self
            .metrics
            .counter(names::LATE_ROWS_DROPPED, "window_join");
        let op = WindowJoin::new(spec, late).map_err(|e| SqlError::at(at, e.to_string()))?;
        self.add_join(inputs, Box::new(op), output)
    }
}
