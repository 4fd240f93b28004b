//! Translation of an event-time temporal join, `JOIN v FOR SYSTEM_TIME AS OF
//! o.rowtime AS r ON o.k = r.k` (see [`crate::as_of`]), into the engine's
//! temporal join: the versioned side is a table with a primary key and a
//! watermark (an upsert source, or an append-only one whose rows are new
//! versions), or a view that deduplicates to the latest row per key, as in
//! Flink.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan};
use vigil_engine::graph::NodeId;
use vigil_engine::join::temporal::{TemporalJoin, TemporalJoinSpec};
use vigil_engine::window::ROWTIME_METADATA_KEY;

use crate::as_of::{as_of_node, strip_guards, AsOfNode};
use crate::error::{Result, SqlError};
use crate::translate::{arrow_schema, Translator};

impl Translator<'_> {
    /// Adds an event-time temporal join of `j`'s left input with the
    /// versioned table or view on its right.
    pub(crate) async fn temporal_join(&mut self, j: &Join) -> Result<NodeId> {
        let at = (self.locate)("JOIN");
        let left_outer = match j.join_type {
            JoinType::Inner => false,
            JoinType::Left => true,
            other => {
                return Err(SqlError::at(
                    at,
                    format!("a temporal join is INNER or LEFT, not {other}"),
                ))
            }
        };
        let Some((node, _)) = as_of_node(&j.right) else {
            return Err(SqlError::at(at, "FOR SYSTEM_TIME AS OF names no table"));
        };
        self.require_primary_key(node, at)?;
        let left_schema = j.left.schema();
        let right_schema = j.right.schema();
        let Some(left_time) = left_schema
            .fields()
            .iter()
            .position(|f| f.name() == node.column())
        else {
            return Err(SqlError::at(
                at,
                format!("'{}' is not a column of the join's left side", node.time),
            ));
        };
        let Some(right_time) = right_schema
            .fields()
            .iter()
            .position(|f| f.metadata().contains_key(ROWTIME_METADATA_KEY))
        else {
            return Err(SqlError::at(
                at,
                "the versioned table of an event-time temporal join needs a time attribute",
            )
            .with_help("declare a WATERMARK FOR its time column, or join a view that keeps it"));
        };
        if j.on.is_empty() {
            return Err(SqlError::at(
                at,
                "a temporal join needs an equality on the versioned table's key (ON o.k = r.k)",
            ));
        }
        // The right side as planned without its marker.
        let right_plan = without_as_of(&j.right).map_err(|e| self.df_err(e))?;
        let left = self.plan(&j.left).await?;
        self.require_append_only(left, "JOIN", "the left side of a temporal join")?;
        let raw = self.upserts_stay_raw(&right_plan);
        let outer = std::mem::replace(&mut self.raw_upserts, raw);
        let right = self.plan(&right_plan).await;
        self.raw_upserts = outer;
        let right = right?;
        let sides = [arrow_schema(left_schema), arrow_schema(right_schema)];
        let left_keys: Vec<Expr> = j.on.iter().map(|(l, _)| l.clone()).collect();
        let right_keys: Vec<Expr> = j.on.iter().map(|(_, r)| r.clone()).collect();
        let (keys, key_types) = self.join_keys(j, &left_keys, &right_keys, &sides)?;
        let condition = strip_guards(j.filter.as_ref());
        let filter = match &condition {
            Some(f) => Some(self.physical(f, &j.schema)?),
            None => None,
        };
        let output = arrow_schema(&j.schema);
        let describe = format!(
            "{} AS OF {}, keys={:?}={:?}, filter={}",
            if left_outer { "LEFT" } else { "INNER" },
            node.time,
            left_keys,
            right_keys,
            condition
                .as_ref()
                .map_or("-".to_string(), |f| f.to_string())
        );
        let spec = TemporalJoinSpec {
            left_outer,
            schemas: sides,
            keys,
            key_types,
            times: [left_time, right_time],
            filter,
            output_schema: output.clone(),
            describe,
        };
        let op = TemporalJoin::new(spec).map_err(|e| SqlError::at(at, e.to_string()))?;
        self.add_join([left, right], Box::new(op), output)
    }

    /// Whether an upsert table as the versioned side `plan` goes into the
    /// join as its upserts, without normalisation: as Flink plans it, when
    /// the join reads the source's columns straight, with no calculation
    /// between (no filter, no computed column, and a time attribute that is
    /// a column of the record's value rather than metadata, which Flink
    /// reinterprets in a calculation). Otherwise Flink normalises the
    /// upserts first, so that a tombstone deletes with the values (and time)
    /// of the row it deletes.
    fn upserts_stay_raw(&self, plan: &LogicalPlan) -> bool {
        let Some(scan) = table_read(plan) else {
            return false;
        };
        let Some(entry) = self.tables.get(scan.table_name.table()) else {
            return false;
        };
        let metadata = entry.metadata_columns(false);
        let columns: Vec<usize> = match &scan.projection {
            Some(p) => p.clone(),
            None => (0..entry.schema.fields().len()).collect(),
        };
        let plain = |i: usize| {
            entry.computed.get(i).is_some_and(Option::is_none)
                && !metadata.contains_key(entry.schema.field(i).name())
        };
        let time_plain = entry.watermark.as_ref().is_none_or(|(rt, _)| plain(*rt));
        time_plain && columns.iter().all(|i| plain(*i))
    }

    /// A declared table joined as a versioned table must have a primary key
    /// (Flink's rule); a view is taken as versioned (a deduplication).
    fn require_primary_key(&self, node: &AsOfNode, at: crate::error::Pos) -> Result<()> {
        let mut plan = &node.input;
        while let LogicalPlan::SubqueryAlias(a) = plan {
            plan = &a.input;
        }
        let LogicalPlan::TableScan(scan) = plan else {
            return Ok(());
        };
        let name = scan.table_name.table();
        match self.tables.get(name) {
            Some(entry) if entry.def.primary_key.is_empty() => Err(SqlError::at(
                at,
                format!("an event-time temporal join needs a primary key in the versioned table '{name}', and it has none"),
            )
            .with_help("declare PRIMARY KEY (k) NOT ENFORCED on it, or join a view that keeps the latest row per key (ROW_NUMBER() ... = 1)")),
            _ => Ok(()),
        }
    }
}

/// The table `plan` reads with no more than renames and projections of
/// columns, if it does.
fn table_read(plan: &LogicalPlan) -> Option<&datafusion::logical_expr::TableScan> {
    match plan {
        LogicalPlan::TableScan(scan) if scan.filters.is_empty() => Some(scan),
        LogicalPlan::SubqueryAlias(a) => table_read(&a.input),
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
            table_read(&p.input)
        }
        _ => None,
    }
}

/// `plan` with its [`AsOfNode`] replaced by the node's input.
fn without_as_of(plan: &LogicalPlan) -> datafusion::common::Result<LogicalPlan> {
    plan.clone()
        .transform_up(|p| {
            if let LogicalPlan::Extension(e) = &p {
                if let Some(node) = e.node.as_any().downcast_ref::<AsOfNode>() {
                    return Ok(Transformed::yes(node.input.clone()));
                }
            }
            Ok(Transformed::no(p))
        })
        .map(|t| t.data)
}
