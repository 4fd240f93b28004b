//! Translation of a lookup join: `JOIN t FOR SYSTEM_TIME AS OF s.proc AS x ON
//! s.k = x.k` over processing time (see [`crate::as_of`]) into an engine
//! lookup join over the connector's lookup table. The filters and
//! projections DataFusion put over the table's scan run on the table's rows
//! each time it is loaded.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan, TableScan};
use vigil_engine::changelog::with_row_kind;
use vigil_engine::connector::TableSpec;
use vigil_engine::graph::NodeId;
use vigil_engine::join::lookup::{LookupJoin, LookupJoinSpec, LookupStep};
use vigil_engine::time::parse_duration;

use crate::as_of::{as_of_node, find_below};
use crate::catalog::connector_factory;
use crate::error::{Result, SqlError};
use crate::translate::{arrow_schema, Translator};

/// The table scan of a lookup under `plan` (through filters, projections and
/// aliases, above and below its [`crate::as_of::AsOfNode`]), and the nodes
/// above it, top first.
pub(crate) fn lookup_scan(plan: &LogicalPlan) -> Option<(&TableScan, Vec<&LogicalPlan>)> {
    let (node, mut above) = as_of_node(plan)?;
    let (scan, below) = find_below(&node.input, &|p| match p {
        LogicalPlan::TableScan(s) => Some(s),
        _ => None,
    })?;
    above.extend(below);
    Some((scan, above))
}

impl Translator<'_> {
    /// Adds a lookup join of `j`'s left input with the table on its right.
    pub(crate) async fn lookup_join(&mut self, j: &Join) -> Result<NodeId> {
        let at = (self.locate)("SYSTEM_TIME");
        let Some((scan, above)) = lookup_scan(&j.right) else {
            return Err(SqlError::at(at, "a lookup join (FOR SYSTEM_TIME AS OF a processing time) reads a declared table: name a table, not a view, on the right of the JOIN"));
        };
        let left_outer = match j.join_type {
            JoinType::Inner => false,
            JoinType::Left => true,
            other => {
                return Err(SqlError::at(
                    at,
                    format!("a lookup join is INNER or LEFT, not {other}"),
                ))
            }
        };
        let name = scan.table_name.table().to_string();
        let entry = self
            .tables
            .get(&name)
            .ok_or_else(|| SqlError::at(at, format!("table '{name}' is not a declared table")))?
            .clone();
        if entry.computed.iter().any(Option::is_some) {
            return Err(SqlError::at(
                at,
                format!(
                    "not supported yet: computed columns in '{name}', the table of a lookup join"
                ),
            ));
        }
        // The table is loaded whole, all physical columns.
        let full: SchemaRef = Arc::new(Schema::new(
            entry
                .schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_metadata(Default::default()))
                .collect::<Vec<_>>(),
        ));
        let spec = TableSpec {
            name: name.clone(),
            schema: full.clone(),
            options: entry.def.options.clone(),
            metadata: Default::default(),
            job_options: self.settings.clone(),
            primary_key: entry.def.primary_key.clone(),
            partition_keys: entry.def.partition_keys.clone(),
        };
        let check_every = match spec.option("lookup.join.cache.ttl") {
            None => std::time::Duration::from_secs(1),
            Some(v) => parse_duration(v).ok_or_else(|| {
                SqlError::at(
                    entry.def.options_pos,
                    format!(
                        "invalid 'lookup.join.cache.ttl' = '{v}'; write it like '10 s' or '1 min'"
                    ),
                )
            })?,
        };
        let factory = connector_factory(self.registry, &entry.def)?;
        let table = factory
            .create_lookup(&spec, self.metrics)
            .map_err(|e| SqlError::at(at, e.to_string()))?;
        // Steps from the loaded rows to the joined side: the scan's projection,
        // then the nodes above it, bottom up.
        let mut steps = vec![];
        let full_df = DFSchema::try_from_qualified_schema(scan.table_name.clone(), &full)
            .map_err(|e| self.df_err(e))?;
        let projection: Vec<usize> = scan
            .projection
            .clone()
            .unwrap_or_else(|| (0..full.fields().len()).collect());
        let exprs = projection
            .iter()
            .map(|i| {
                self.physical(
                    &Expr::Column(Column::new(
                        Some(scan.table_name.clone()),
                        full.field(*i).name(),
                    )),
                    &full_df,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        steps.push(LookupStep::Project(
            exprs,
            arrow_schema(&scan.projected_schema),
        ));
        for f in &scan.filters {
            steps.push(LookupStep::Filter(
                self.physical(f, &scan.projected_schema)?,
            ));
        }
        for node in above.iter().rev() {
            match node {
                LogicalPlan::Filter(f) => steps.push(LookupStep::Filter(
                    self.physical(&f.predicate, f.input.schema())?,
                )),
                LogicalPlan::Projection(p) => {
                    let exprs = p
                        .expr
                        .iter()
                        .map(|e| self.physical(e, p.input.schema()))
                        .collect::<Result<Vec<_>>>()?;
                    steps.push(LookupStep::Project(exprs, arrow_schema(&p.schema)));
                }
                _ => {}
            }
        }
        let stream = self.plan(&j.left).await?;
        let stream_schema = arrow_schema(j.left.schema());
        let table_schema = arrow_schema(j.right.schema());
        let left_keys: Vec<Expr> = j.on.iter().map(|(l, _)| l.clone()).collect();
        let right_keys: Vec<Expr> = j.on.iter().map(|(_, r)| r.clone()).collect();
        let sides = [stream_schema.clone(), table_schema.clone()];
        let (keys, key_types) = self.join_keys(j, &left_keys, &right_keys, &sides)?;
        if left_keys.is_empty() {
            return Err(SqlError::at(
                at,
                "a lookup join needs an equality between the stream and the table (ON s.k = t.k)",
            ));
        }
        let condition = crate::as_of::strip_guards(j.filter.as_ref());
        let (filter, pair_schema) = self.residual_condition(j, condition.as_ref())?;
        let out = arrow_schema(&j.schema);
        let output_schema = if self.updating(stream) {
            with_row_kind(&out)
        } else {
            out
        };
        let spec = LookupJoinSpec {
            describe: format!(
                "{} {name}, keys=[{}]=[{}], checked every {check_every:?}",
                if left_outer { "LEFT" } else { "INNER" },
                left_keys
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                right_keys
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            left_outer,
            stream_schema,
            table_schema,
            steps,
            keys,
            key_types,
            filter,
            pair_schema,
            output_schema: output_schema.clone(),
            check_every,
        };
        let op = LookupJoin::new(spec, table).map_err(|e| SqlError::at(at, e.to_string()))?;
        Ok(self.graph.add_operator(stream, Box::new(op), output_schema))
    }
}
