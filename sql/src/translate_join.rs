//! Translation of a join of two streams into an interval join: each input is
//! tagged with its side and padded to a shared layout, the two meet in a
//! union (whose watermark is the lower of theirs), and the join operator
//! splits them again.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{build_join_schema, Expr, Join, JoinType};
use datafusion::physical_expr::expressions::{Column as PhysColumn, Literal};
use datafusion::physical_expr::PhysicalExpr;
use vigil_engine::graph::NodeId;
use vigil_engine::join::interval::{IntervalJoin, IntervalJoinSpec};
use vigil_engine::join::window::{WindowJoin, WindowJoinSpec};
use vigil_engine::metrics::names;
use vigil_engine::operators::project::Project;

use crate::error::{Result, SqlError};
use crate::join::{interval_join, window_join, NotInterval, WindowJoinPlan};
use crate::translate::{arrow_schema, Translator};
use crate::translate_lookup::lookup_scan;

/// Each side's key expressions.
type SideKeys = [Vec<Arc<dyn PhysicalExpr>>; 2];

impl Translator<'_> {
    /// Adds a window join or an interval join of `j`'s inputs.
    pub(crate) async fn join(&mut self, j: &Join) -> Result<NodeId> {
        let at = (self.locate)("JOIN");
        let fail = |e: NotInterval| SqlError::at(at, e.message).with_help(e.help);
        if lookup_scan(&j.right).is_some() || lookup_scan(&j.left).is_some() {
            return self.lookup_join(j).await;
        }
        if let Some(w) = window_join(j).map_err(fail)? {
            return self.window_join(j, w).await;
        }
        // A join whose condition does not bound both time attributes is a
        // regular join, as in Flink.
        let Ok(plan) = interval_join(j) else {
            return self.regular_join(j).await;
        };
        let (union, sides) = self.tagged_inputs(j).await?;
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
        self.add_join(union, Box::new(op), output)
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

    /// Both inputs of `j`, each tagged with its side and padded to one
    /// layout, in a union; and each input's own schema.
    /// Adds a join operator over the side-tagged `union`: as parallel
    /// instances by its equality keys when the job asks for parallelism.
    pub(crate) fn add_join(
        &mut self,
        union: NodeId,
        op: Box<dyn vigil_engine::operator::Operator>,
        output: SchemaRef,
    ) -> Result<NodeId> {
        let keyed = op.key_exprs().is_some();
        let parallelism = vigil_engine::state::parallelism_setting(&self.settings)
            .map_err(|e| SqlError::at(self.pos, e))?;
        let id = self.graph.add_operator(union, op, output);
        if keyed {
            self.graph.nodes[id].parallelism = parallelism;
        }
        Ok(id)
    }

    pub(crate) async fn tagged_inputs(&mut self, j: &Join) -> Result<(NodeId, [SchemaRef; 2])> {
        let sides = [
            arrow_schema(j.left.schema()),
            arrow_schema(j.right.schema()),
        ];
        let mut fields = vec![Field::new("__side", DataType::Int8, false)];
        for (s, prefix) in sides.iter().zip(["__l", "__r"]) {
            fields.extend(
                s.fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Field::new(format!("{prefix}{i}"), f.data_type().clone(), true)),
            );
        }
        let tagged: SchemaRef = Arc::new(Schema::new(fields));
        let left = self.plan(&j.left).await?;
        let right = self.plan(&j.right).await?;
        for node in [left, right] {
            self.require_append_only(
                node,
                "JOIN",
                "a join (interval and window joins never, regular joins not yet)",
            )?;
        }
        let mut inputs = vec![];
        for (side, node) in [left, right].into_iter().enumerate() {
            let mut exprs: Vec<Arc<dyn PhysicalExpr>> =
                vec![Arc::new(Literal::new(ScalarValue::Int8(Some(side as i8))))];
            for (s, schema) in sides.iter().enumerate() {
                for (i, f) in schema.fields().iter().enumerate() {
                    exprs.push(if s == side {
                        Arc::new(PhysColumn::new(f.name(), i))
                    } else {
                        let null =
                            ScalarValue::try_from(f.data_type()).map_err(|e| self.df_err(e))?;
                        Arc::new(Literal::new(null))
                    });
                }
            }
            inputs.push(self.graph.add_operator(
                node,
                Box::new(Project::new(exprs, tagged.clone())),
                tagged.clone(),
            ));
        }
        Ok((self.graph.add_union(inputs, tagged), sides))
    }

    /// Adds a window join of `j`'s inputs.
    async fn window_join(&mut self, j: &Join, plan: WindowJoinPlan) -> Result<NodeId> {
        let at = (self.locate)("JOIN");
        let (union, sides) = self.tagged_inputs(j).await?;
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
        self.add_join(union, Box::new(op), output)
    }
}
