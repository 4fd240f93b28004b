//! Translation of the queries whose results update (Flink's changelog): a
//! GROUP BY without window columns, a join without time bounds, and
//! deduplication and Top-N over a stream. Their nodes carry a trailing
//! `__row_kind` column; the operators that cannot take updates refuse them here.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, Join, JoinType};
use datafusion::physical_expr::expressions::Column as PhysColumn;
use datafusion::physical_expr::PhysicalExpr;
use vigil_engine::changelog::aggregate::{GroupAggregate, GroupAggregateSpec};
use vigil_engine::changelog::join::{Existence, RegularJoin, RegularJoinSpec};
use vigil_engine::changelog::ttl::ttl_setting;
use vigil_engine::changelog::{data_width, is_updating, with_row_kind};
use vigil_engine::graph::NodeId;
use vigil_engine::join::JoinKind;
use vigil_engine::operators::expand::{Expand, GroupingSet};
use vigil_engine::state::parallelism_setting;
use vigil_engine::window::aggregate::grouping_id;

use crate::error::{Result, SqlError};
use crate::join::stream_join_kind;
use crate::translate::{arrow_schema, Translator};

impl Translator<'_> {
    /// Whether `node` emits an updating result.
    pub(crate) fn updating(&self, node: NodeId) -> bool {
        is_updating(&self.graph.schema(node))
    }

    /// Plans `plan` for a consumer that takes updates back by their old
    /// rows (an aggregate, a join, a Top-N over an updating input): a top-1
    /// in it then emits `-U` before each `+U`.
    pub(crate) async fn plan_retracting(
        &mut self,
        plan: &datafusion::logical_expr::LogicalPlan,
    ) -> Result<NodeId> {
        let outer = std::mem::replace(&mut self.retractions_needed, true);
        let planned = self.plan(plan).await;
        self.retractions_needed = outer;
        planned
    }

    /// Fails if `node` emits an updating result, which `what` cannot take.
    pub(crate) fn require_append_only(
        &self,
        node: NodeId,
        keyword: &str,
        what: &str,
    ) -> Result<()> {
        if !self.updating(node) {
            return Ok(());
        }
        Err(SqlError::at((self.locate)(keyword), format!(
            "{what} cannot take an updating result (its input is a GROUP BY without a window, a regular join, a deduplication or a Top-N, whose rows change)"
        ))
        .with_help("apply it to the append-only stream first, or aggregate over a window TVF so that each result row is final"))
    }

    /// `table.exec.state.ttl`; also checks `state.backend.cache-size` and
    /// `io.tmp.dirs`, which every operator with keyed state uses.
    fn state_ttl(&self) -> Result<Option<std::time::Duration>> {
        vigil_engine::window::spill::SpillConfig::from_settings(&self.settings)
            .map_err(|e| SqlError::at(self.pos, e))?;
        ttl_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))
    }

    /// Adds a GROUP BY without window columns: one updating row per group.
    pub(crate) async fn group_aggregate(
        &mut self,
        agg: &Aggregate,
        exprs: Vec<Expr>,
    ) -> Result<NodeId> {
        let in_schema = agg.input.schema().clone();
        let input = self.plan_retracting(&agg.input).await?;
        let input_updating = self.updating(input);
        let input_arrow = self.graph.schema(input);
        let keys = exprs
            .iter()
            .map(|e| self.physical(e, &in_schema))
            .collect::<Result<Vec<_>>>()?;
        let key_types = exprs
            .iter()
            .map(|e| e.get_type(in_schema.as_ref()).map_err(|e| self.df_err(e)))
            .collect::<Result<Vec<_>>>()?;
        let out = arrow_schema(&agg.schema);
        let aggregates = self.lower_aggregates(agg, exprs.len(), &out, &input_arrow)?;
        let describe = format!(
            "keys={:?}, aggregates=[{}]{}",
            exprs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            aggregate_names(agg),
            if input_updating { ", retracting" } else { "" }
        );
        let spec = GroupAggregateSpec {
            describe,
            keys,
            key_types,
            aggregates,
            input_updating,
            output_schema: with_row_kind(&out),
            ttl: self.state_ttl()?,
            mini_batch: self.mini_batch()?,
        };
        self.add_group_aggregate(input, spec)
    }

    /// `table.exec.mini-batch.*`.
    fn mini_batch(&self) -> Result<Option<usize>> {
        vigil_engine::changelog::mini_batch::mini_batch_setting(&self.settings)
            .map_err(|e| SqlError::at(self.pos, e))
    }

    /// Adds the group aggregation `spec` after `input`, as parallel
    /// instances by its keys when it has any.
    fn add_group_aggregate(&mut self, input: NodeId, spec: GroupAggregateSpec) -> Result<NodeId> {
        let keyed = !spec.keys.is_empty();
        let output_schema = spec.output_schema.clone();
        let op = GroupAggregate::new(spec)
            .map_err(|e| SqlError::at((self.locate)("GROUP"), e.to_string()))?;
        let parallelism =
            parallelism_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
        let id = self.graph.add_operator(input, Box::new(op), output_schema);
        if keyed {
            self.graph.nodes[id].parallelism = parallelism;
        }
        Ok(id)
    }

    /// Adds a GROUP BY with GROUPING SETS, ROLLUP or CUBE without window
    /// columns, as Flink runs it: each row expanded once per set (`sets`:
    /// per set, which of `exprs` it sets to NULL), then one updating
    /// aggregation keyed by every key and the grouping id.
    pub(crate) async fn grouping_sets_aggregate(
        &mut self,
        agg: &Aggregate,
        exprs: Vec<Expr>,
        sets: Vec<Vec<bool>>,
    ) -> Result<NodeId> {
        let in_schema = agg.input.schema().clone();
        let input = self.plan_retracting(&agg.input).await?;
        let input_updating = self.updating(input);
        let input_arrow = self.graph.schema(input);
        let width = data_width(&input_arrow);
        let out = arrow_schema(&agg.schema);
        let n = exprs.len();
        let keys = exprs
            .iter()
            .map(|e| self.physical(e, &in_schema))
            .collect::<Result<Vec<_>>>()?;
        // The input's columns, then the keys and the grouping id.
        let mut fields: Vec<Field> = input_arrow.fields()[..width]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for i in 0..=n {
            let f = out.field(i);
            fields.push(Field::new(
                format!("__expand_{i}"),
                f.data_type().clone(),
                true,
            ));
        }
        let mut expanded = Schema::new(fields);
        if input_updating {
            expanded = with_row_kind(&expanded).as_ref().clone();
        }
        let expanded = Arc::new(expanded);
        let id_type = out.field(n).data_type().clone();
        let grouping_sets = sets
            .iter()
            .enumerate()
            .map(|(k, nulls)| {
                ScalarValue::UInt64(Some(grouping_id(&sets, k)))
                    .cast_to(&id_type)
                    .map(|id| GroupingSet {
                        nulls: nulls.clone(),
                        id,
                    })
                    .map_err(|e| self.df_err(e))
            })
            .collect::<Result<Vec<_>>>()?;
        let expand = Expand::new(keys, grouping_sets, width, expanded.clone());
        let node = self
            .graph
            .add_operator(input, Box::new(expand), expanded.clone());
        let group_keys: Vec<Arc<dyn PhysicalExpr>> = (0..=n)
            .map(|i| {
                Arc::new(PhysColumn::new(expanded.field(width + i).name(), width + i))
                    as Arc<dyn PhysicalExpr>
            })
            .collect();
        let key_types = (0..=n).map(|i| out.field(i).data_type().clone()).collect();
        let aggregates = self.lower_aggregates(agg, n + 1, &out, &input_arrow)?;
        let describe = format!(
            "keys={:?} in {} grouping sets, aggregates=[{}]",
            exprs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            sets.len(),
            aggregate_names(agg),
        );
        let spec = GroupAggregateSpec {
            describe,
            keys: group_keys,
            key_types,
            aggregates,
            input_updating,
            output_schema: with_row_kind(&out),
            ttl: self.state_ttl()?,
            mini_batch: self.mini_batch()?,
        };
        self.add_group_aggregate(node, spec)
    }

    /// Adds a regular join (no time bounds) of `j`'s inputs; also a semi or
    /// anti join (`IN`, `EXISTS` and their negations).
    pub(crate) async fn regular_join(&mut self, j: &Join) -> Result<NodeId> {
        let at = (self.locate)("JOIN");
        let (kind, existence) = match j.join_type {
            JoinType::LeftSemi => (JoinKind::Inner, Some(Existence::Semi)),
            JoinType::LeftAnti => (JoinKind::Inner, Some(Existence::Anti)),
            t => (
                stream_join_kind(t).map_err(|e| SqlError::at(at, e.message).with_help(e.help))?,
                None,
            ),
        };
        let (inputs, sides) = self.join_inputs(j, true).await?;
        let updating_inputs = inputs.map(|n| self.updating(n));
        let (on, condition) = join_condition(j);
        let left_keys: Vec<Expr> = on.iter().map(|(l, _)| l.clone()).collect();
        let right_keys: Vec<Expr> = on.iter().map(|(_, r)| r.clone()).collect();
        let (keys, key_types) = self.join_keys(j, &left_keys, &right_keys, &sides)?;
        let (filter, pair_schema) = self.residual_condition(j, condition.as_ref())?;
        let out = arrow_schema(&j.schema);
        // Only an inner or semi join of append-only inputs is append-only.
        let appends = kind == JoinKind::Inner
            && existence != Some(Existence::Anti)
            && updating_inputs == [false; 2];
        let output_schema = if appends { out } else { with_row_kind(&out) };
        let spec = RegularJoinSpec {
            describe: format!(
                "{}, keys={left_keys:?}={right_keys:?}, filter={}",
                existence.map_or(format!("{kind:?}"), |e| format!("{e:?}")),
                condition
                    .as_ref()
                    .map_or("-".to_string(), |f| f.to_string())
            ),
            kind,
            existence,
            schemas: sides,
            keys,
            key_types,
            null_equal: j.null_equality == datafusion::common::NullEquality::NullEqualsNull,
            filter,
            pair_schema,
            output_schema: output_schema.clone(),
            ttl: self.state_ttl()?,
            updating_inputs,
        };
        let op = RegularJoin::new(spec).map_err(|e| SqlError::at(at, e.to_string()))?;
        self.add_join(inputs, Box::new(op), output_schema)
    }
}

/// `agg`'s aggregate calls, for `explain`.
fn aggregate_names(agg: &Aggregate) -> String {
    agg.aggr_expr
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The equality keys and the rest of `j`'s condition. `NOT IN` (a
/// null-aware anti join) has no keys: as in Flink, a right row excludes a
/// left row when their values are equal or either is NULL, so its
/// condition is `(l = r OR l IS NULL OR r IS NULL) AND ...`.
fn join_condition(j: &Join) -> (Vec<(Expr, Expr)>, Option<Expr>) {
    if !(j.null_aware && j.join_type == JoinType::LeftAnti) {
        return (j.on.clone(), j.filter.clone());
    }
    let condition =
        j.on.iter()
            .map(|(l, r)| {
                l.clone()
                    .eq(r.clone())
                    .or(l.clone().is_null())
                    .or(r.clone().is_null())
            })
            .chain(j.filter.clone())
            .reduce(Expr::and);
    (vec![], condition)
}
