//! Translation of an optimised DataFusion logical plan into engine operators.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::common::{DFSchema, ExprSchema};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::{Alias, GroupingSet};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::physical_expr::execution_props::ExecutionProps;
use datafusion::physical_expr::expressions::{Column as PhysColumn, Literal};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use futures::future::BoxFuture;
use vigil_engine::changelog::{with_row_kind, RowKind, ROW_KIND};
use vigil_engine::connector::ConnectorRegistry;
use vigil_engine::graph::{JobGraph, NodeId};
use vigil_engine::metrics::{names, Metrics};
use vigil_engine::operators::filter::Filter;
use vigil_engine::operators::proctime_clock::ProctimeClock;
use vigil_engine::operators::project::Project;
use vigil_engine::state::parallelism_setting;
use vigil_engine::window::aggregate::{AggregateSpec, GroupingSpec, WindowAggregate};
use vigil_engine::window::assign::WindowAssigner;
use vigil_engine::window::session::SessionAssigner;
use vigil_engine::window::spill::{Spill, SpillConfig};
use vigil_engine::window::{WindowKind, WINDOW_METADATA_KEY};

use crate::catalog::TableEntry;
use crate::error::{Pos, Result, SqlError};
use crate::match_recognize::node::{LogicalNav, MatchRecognizeNode};
use crate::window_node::WindowTvfNode;
use vigil_engine::memory::MemorySource;
use vigil_engine::pattern::nav::NavExpr;
use vigil_engine::pattern::nfa::Nfa;
use vigil_engine::pattern::operator::{AllRows, MatchRecognize, MatchSpec};

/// Builds engine nodes for logical plans.
pub struct Translator<'a> {
    /// The graph being built.
    pub graph: &'a mut JobGraph,
    /// Declared tables by name.
    pub tables: &'a HashMap<String, Arc<TableEntry>>,
    /// Connectors.
    pub registry: &'a ConnectorRegistry,
    /// Job metrics.
    pub metrics: &'a Metrics,
    /// For executing constant subplans (VALUES).
    pub ctx: &'a SessionContext,
    /// Where the statement is, for errors.
    pub pos: Pos,
    /// Finds a keyword in the statement, for pointing at unsupported clauses.
    pub locate: &'a (dyn Fn(&str) -> Pos + Sync),
    /// The script's `SET` options, handed to connectors.
    pub settings: std::collections::BTreeMap<String, String>,
    pub(crate) props: ExecutionProps,
    /// For a stream Top-N: the N of the filter on its rank, and whether the
    /// rank number is selected (set while planning the filter and projection
    /// above the OVER window).
    pub(crate) rank_hint: RankHint,
    /// Set while planning the input of an operator that needs the old rows
    /// of updates (`-U`), which a top-1 then emits.
    pub(crate) retractions_needed: bool,
    /// Planning the versioned side of a temporal join straight from a
    /// table: an upsert source goes in as its upserts, not normalised (as
    /// in Flink, whose temporal join takes an upsert stream as it is).
    pub(crate) raw_upserts: bool,
    /// Scans shared by the script's queries (see `ScriptPlanner`).
    pub(crate) shared_scans: Option<&'a crate::planner::SharedScans>,
}

/// What the plan around a stream rank says about it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RankHint {
    /// `rownum <= N` (or `< N+1`, `= 1`).
    pub limit: Option<usize>,
    /// Whether the rank number reaches the output.
    pub number_used: Option<bool>,
}

pub(crate) fn arrow_schema(s: &DFSchema) -> SchemaRef {
    Arc::new(s.as_arrow().clone())
}

impl<'a> Translator<'a> {
    /// A translator adding to `graph`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        graph: &'a mut JobGraph,
        tables: &'a HashMap<String, Arc<TableEntry>>,
        registry: &'a ConnectorRegistry,
        metrics: &'a Metrics,
        ctx: &'a SessionContext,
        pos: Pos,
        locate: &'a (dyn Fn(&str) -> Pos + Sync),
    ) -> Self {
        Self {
            graph,
            tables,
            registry,
            metrics,
            ctx,
            pos,
            locate,
            settings: Default::default(),
            props: ExecutionProps::new(),
            rank_hint: RankHint::default(),
            retractions_needed: false,
            raw_upserts: false,
            shared_scans: None,
        }
    }

    pub(crate) fn df_err(&self, e: datafusion::error::DataFusionError) -> SqlError {
        SqlError::from_datafusion(e, self.pos)
    }

    pub(crate) fn physical(&self, e: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        create_physical_expr(e, schema, &self.props, &PhysicalPlanningContext::default())
            .and_then(|p| crate::decimal_cast::flink_decimal_casts(p, schema.as_arrow()))
            .map_err(|e| self.df_err(e))
    }

    fn unsupported(&self, keyword: &str, feature: &str) -> SqlError {
        SqlError::unsupported((self.locate)(keyword), feature).with_len(keyword.len())
    }

    /// Adds the operators computing `plan`; returns the node emitting its rows.
    pub fn plan<'b>(&'b mut self, plan: &'b LogicalPlan) -> BoxFuture<'b, Result<NodeId>> {
        Box::pin(async move {
            if !has_stream_scan(plan) {
                return self.constant(plan).await;
            }
            match plan {
                LogicalPlan::Projection(p) => {
                    if let LogicalPlan::Filter(f) = p.input.as_ref() {
                        if let Some(rank) = rank_column(&f.input) {
                            let used = p
                                .expr
                                .iter()
                                .any(|e| e.column_refs().iter().any(|c| c.name == rank));
                            self.rank_hint.number_used.get_or_insert(used);
                        }
                    }
                    let input = self.plan(&p.input).await?;
                    let mut exprs = p
                        .expr
                        .iter()
                        .map(|e| self.physical(e, p.input.schema()))
                        .collect::<Result<Vec<_>>>()?;
                    let mut schema = arrow_schema(&p.schema);
                    if self.updating(input) {
                        exprs.push(self.row_kind_column(input));
                        schema = with_row_kind(&schema);
                    }
                    Ok(self.graph.add_operator(
                        input,
                        Box::new(Project::new(exprs, schema.clone())),
                        schema,
                    ))
                }
                LogicalPlan::Filter(f) => {
                    if let Some(rank) = rank_column(&f.input) {
                        self.rank_hint.limit = rank_limit(&f.predicate, &rank);
                    }
                    let input = self.plan(&f.input).await?;
                    let pred = self.physical(&f.predicate, f.input.schema())?;
                    let schema = self.graph.schema(input);
                    Ok(self
                        .graph
                        .add_operator(input, Box::new(Filter::new(pred)), schema))
                }
                LogicalPlan::SubqueryAlias(a) => self.plan(&a.input).await,
                LogicalPlan::TableScan(scan) => self.scan(scan),
                LogicalPlan::Extension(ext) => {
                    let any = ext.node.as_any();
                    if let Some(node) = any.downcast_ref::<WindowTvfNode>() {
                        self.window_tvf(node).await
                    } else if let Some(node) = any.downcast_ref::<MatchRecognizeNode>() {
                        self.match_recognize(node).await
                    } else if any.is::<crate::as_of::AsOfNode>() {
                        Err(SqlError::at(
                            (self.locate)("JOIN"),
                            "FOR SYSTEM_TIME AS OF reads a table on the right of a JOIN, not on its own",
                        ))
                    } else {
                        Err(SqlError::unsupported(self.pos, ext.node.name().to_string()))
                    }
                }
                LogicalPlan::Aggregate(agg) => self.aggregate(agg).await,
                LogicalPlan::Union(u) => {
                    let schema = arrow_schema(&u.schema);
                    let mut nodes = vec![];
                    for input in &u.inputs {
                        nodes.push((self.plan(input).await?, input.schema().clone()));
                    }
                    // One updating input makes the union updating: the
                    // others' rows are inserts.
                    let updating = nodes.iter().any(|(n, _)| self.updating(*n));
                    let mut inputs = vec![];
                    for (node, input) in nodes {
                        inputs.push(self.conform(node, &input, &schema, updating)?);
                    }
                    let schema = if updating {
                        with_row_kind(&schema)
                    } else {
                        schema
                    };
                    Ok(self.graph.add_union(inputs, schema))
                }
                LogicalPlan::Unnest(u) => self.unnest(u).await,
                LogicalPlan::Sort(s) => self.sort(s).await,
                LogicalPlan::Limit(l) => self.limit(l).await,
                LogicalPlan::Join(j) => self.join(j).await,
                LogicalPlan::Window(w) if crate::translate_over::is_over_aggregate(w) => {
                    self.over_aggregate(w).await
                }
                LogicalPlan::Window(w) => self.window_rank(w).await,
                LogicalPlan::Distinct(_) => Err(self.unsupported(
                    "DISTINCT",
                    "SELECT DISTINCT on a stream (an updating result)",
                )),
                other => Err(SqlError::unsupported(
                    self.pos,
                    format!("{} in a streaming query", other.display()),
                )),
            }
        })
    }

    /// Renames the columns of `node` to `target` (used where inputs of a UNION
    /// differ in names).
    fn conform(
        &mut self,
        node: NodeId,
        input: &DFSchema,
        target: &SchemaRef,
        updating: bool,
    ) -> Result<NodeId> {
        let target = if updating {
            with_row_kind(target)
        } else {
            target.clone()
        };
        if self.graph.schema(node).fields() == target.fields() {
            return Ok(node);
        }
        let mut exprs = input
            .columns()
            .iter()
            .zip(target.fields().iter())
            .map(|(c, f)| {
                let e = Expr::Column(c.clone());
                let e = if input
                    .field_from_column(c)
                    .map(|x| x.data_type() != f.data_type())
                    .unwrap_or(false)
                {
                    datafusion::logical_expr::cast(e, f.data_type().clone())
                } else {
                    e
                };
                self.physical(&e, input)
            })
            .collect::<Result<Vec<_>>>()?;
        if updating {
            exprs.push(if self.updating(node) {
                self.row_kind_column(node)
            } else {
                Arc::new(Literal::new(ScalarValue::Int8(Some(RowKind::Insert as i8))))
            });
        }
        Ok(self.graph.add_operator(
            node,
            Box::new(Project::new(exprs, target.clone())),
            target.clone(),
        ))
    }

    /// The `__row_kind` column of an updating node's rows.
    pub(crate) fn row_kind_column(&self, node: NodeId) -> Arc<dyn PhysicalExpr> {
        let schema = self.graph.schema(node);
        Arc::new(PhysColumn::new(ROW_KIND, schema.fields().len() - 1))
    }

    /// A subplan without stream tables (VALUES, SELECT of constants): run by
    /// DataFusion now, emitted by an in-memory source.
    async fn constant(&mut self, plan: &LogicalPlan) -> Result<NodeId> {
        let df = self
            .ctx
            .execute_logical_plan(plan.clone())
            .await
            .map_err(|e| self.df_err(e))?;
        let batches = df.collect().await.map_err(|e| self.df_err(e))?;
        let schema = arrow_schema(plan.schema());
        Ok(self.graph.add_source(
            "VALUES",
            Box::new(MemorySource::new(batches, schema.clone())),
            schema,
        ))
    }

    async fn match_recognize(&mut self, node: &MatchRecognizeNode) -> Result<NodeId> {
        let input = self.plan(&node.input).await?;
        self.require_append_only(input, "MATCH_RECOGNIZE", "MATCH_RECOGNIZE")?;
        let in_schema = node.input.schema().clone();
        let state = self.ctx.state();
        let pos = self.pos;
        let phys = |e: &Expr, schema: &DFSchema| -> Result<Arc<dyn PhysicalExpr>> {
            state
                .create_physical_expr(e.clone(), schema)
                .map_err(|err| SqlError::from_datafusion(err, pos))
        };
        let type_of =
            |p: &Arc<dyn PhysicalExpr>| -> Result<datafusion::arrow::datatypes::DataType> {
                p.data_type(in_schema.as_arrow())
                    .map_err(|err| SqlError::from_datafusion(err, pos))
            };
        let partition_by = node
            .partition_by
            .iter()
            .map(|e| phys(e, &in_schema))
            .collect::<Result<Vec<_>>>()?;
        let key_types = partition_by
            .iter()
            .map(&type_of)
            .collect::<Result<Vec<_>>>()?;
        let order_by = node
            .order_by
            .iter()
            .map(|(e, d)| Ok((phys(e, &in_schema)?, *d)))
            .collect::<Result<Vec<_>>>()?;
        let order_types = order_by
            .iter()
            .map(|(p, _)| type_of(p))
            .collect::<Result<Vec<_>>>()?;
        let derived = node
            .derived
            .iter()
            .map(|e| phys(e, &in_schema))
            .collect::<Result<Vec<_>>>()?;
        let derived_types = derived.iter().map(&type_of).collect::<Result<Vec<_>>>()?;
        let nav = |l: &LogicalNav| -> Result<NavExpr> {
            Ok(NavExpr::new(phys(&l.expr, &l.schema)?, l.terms.clone()))
        };
        let defines = node
            .defines
            .iter()
            .map(|d| d.as_ref().map(&nav).transpose())
            .collect::<Result<Vec<_>>>()?;
        let measures = node.measures.iter().map(&nav).collect::<Result<Vec<_>>>()?;
        let schema = arrow_schema(node.schema.as_ref());
        let describe = format!(
            "pattern={}, rows={:?}, absent={:?}, skip={:?}, within={:?}, timeouts={}, lookahead={}, define=[{}]",
            node.pattern,
            node.all_rows,
            node.absent,
            node.skip,
            node.within,
            node.timeouts,
            node.lookahead,
            node.defines
                .iter()
                .zip(&node.vars)
                .filter_map(|(d, v)| {
                    d.as_ref().map(|d| {
                        let terms: Vec<String> = d
                            .terms
                            .iter()
                            .map(|t| format!("{:?}@{:?}", t.nav, t.column))
                            .collect();
                        format!("{v}: {} with [{}]", d.expr, terms.join(", "))
                    })
                })
                .collect::<Vec<_>>()
                .join("; ")
        );
        let spec = MatchSpec {
            describe,
            partition_by,
            time: phys(&node.time, &in_schema)?,
            order_by,
            derived,
            vars: node.vars.clone(),
            defines,
            measures,
            nfa: Nfa::compile(&node.pattern),
            skip: node.skip,
            within: node.within,
            absent: node.absent,
            timeouts: node.timeouts,
            lookback: node.lookback,
            lookahead: node.lookahead,
            all_rows: node.all_rows.as_ref().map(|a| AllRows {
                show_empty: a.show_empty,
                unmatched: a.unmatched,
                excluded: a.excluded,
                input_types: in_schema
                    .fields()
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect(),
                order_columns: a.order_columns.clone(),
                rest_columns: a.rest_columns.clone(),
            }),
            output_schema: schema.clone(),
        };
        let late = self
            .metrics
            .counter(names::LATE_ROWS_DROPPED, "match_recognize");
        let gauges = (
            self.metrics
                .gauge(names::PARTIAL_MATCHES, "match_recognize"),
            self.metrics
                .gauge(names::PARTIAL_MATCH_BYTES, "match_recognize"),
        );
        let op = MatchRecognize::new(spec, key_types, order_types, derived_types, late, gauges)
            .map_err(|e| SqlError::at(self.pos, e.to_string()))?;
        let parallelism =
            parallelism_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
        let id = self.graph.add_operator(input, Box::new(op), schema);
        self.graph.nodes[id].parallelism = parallelism;
        Ok(id)
    }

    async fn window_tvf(&mut self, node: &WindowTvfNode) -> Result<NodeId> {
        let mut input = self.plan(&node.input).await?;
        self.require_append_only(input, "TABLE", "a window TVF")?;
        let in_schema = node.input.schema();
        let time_idx = in_schema
            .index_of_column(&node.time_col)
            .map_err(|e| self.df_err(e))?;
        if crate::window_node::is_proctime(in_schema.field(time_idx)) {
            // Processing time: the wall clock is the watermark, right after
            // the rows were stamped with it (same task).
            let clock = ProctimeClock::new(std::time::Duration::from_millis(100));
            let schema = arrow_schema(in_schema.as_ref());
            input = self.graph.add_operator(input, Box::new(clock), schema);
        }
        let rowtime_type = in_schema.field(time_idx).data_type().clone();
        let schema = arrow_schema(node.schema().as_ref());
        let null_time = self.metrics.counter(
            names::NULL_TIME_DROPPED,
            &node.kind.sql_name().to_ascii_lowercase(),
        );
        match node.kind {
            WindowKind::Session { gap } => {
                let keys = node
                    .partition_by
                    .iter()
                    .map(|e| self.physical(e, in_schema))
                    .collect::<Result<Vec<_>>>()?;
                let key_types = node
                    .partition_by
                    .iter()
                    .map(|e| {
                        datafusion::logical_expr::ExprSchemable::get_type(e, in_schema.as_ref())
                    })
                    .collect::<datafusion::error::Result<Vec<_>>>()
                    .map_err(|e| self.df_err(e))?;
                let late = self.metrics.counter(names::LATE_ROWS_DROPPED, "session");
                let op = SessionAssigner::new(
                    gap,
                    time_idx,
                    keys,
                    key_types,
                    rowtime_type,
                    schema.clone(),
                    late,
                    null_time,
                )
                .map_err(|e| SqlError::at(self.pos, e.to_string()))?;
                let keyed = !node.partition_by.is_empty();
                let parallelism =
                    parallelism_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
                let id = self.graph.add_operator(input, Box::new(op), schema);
                if keyed {
                    self.graph.nodes[id].parallelism = parallelism;
                }
                Ok(id)
            }
            ref kind => {
                let op = WindowAssigner::new(
                    kind.clone(),
                    time_idx,
                    rowtime_type,
                    schema.clone(),
                    null_time,
                )
                .map_err(|e| SqlError::at(self.pos, e.to_string()))?;
                Ok(self.graph.add_operator(input, Box::new(op), schema))
            }
        }
    }

    async fn aggregate(&mut self, agg: &Aggregate) -> Result<NodeId> {
        let in_schema = agg.input.schema().clone();
        // Distinct group expressions and the grouping sets over them.
        let (exprs, sets): (Vec<Expr>, Vec<Vec<bool>>) = match agg.group_expr.as_slice() {
            [Expr::GroupingSet(gs)] => {
                let distinct: Vec<Expr> = gs.distinct_expr().into_iter().cloned().collect();
                let sets: Vec<Vec<&Expr>> = match gs {
                    GroupingSet::GroupingSets(s) => s.iter().map(|s| s.iter().collect()).collect(),
                    GroupingSet::Rollup(es) => (0..=es.len())
                        .rev()
                        .map(|k| es[..k].iter().collect())
                        .collect(),
                    GroupingSet::Cube(es) => (0..(1usize << es.len()))
                        .map(|mask| {
                            es.iter()
                                .enumerate()
                                .filter(|(i, _)| mask & (1 << i) == 0)
                                .map(|(_, e)| e)
                                .collect()
                        })
                        .collect(),
                };
                let masks = sets
                    .iter()
                    .map(|s| distinct.iter().map(|d| !s.contains(&d)).collect())
                    .collect();
                (distinct, masks)
            }
            es => (es.to_vec(), vec![vec![false; es.len()]]),
        };
        let window_col = |kind: &str| {
            exprs.iter().position(|e| match e {
                Expr::Column(c) => in_schema.field_from_column(c).is_ok_and(|f| {
                    f.metadata()
                        .get(WINDOW_METADATA_KEY)
                        .is_some_and(|v| v == kind)
                }),
                _ => false,
            })
        };
        let (Some(end), Some(_start)) = (window_col("end"), window_col("start")) else {
            if matches!(agg.group_expr.as_slice(), [Expr::GroupingSet(_)]) {
                return self.grouping_sets_aggregate(agg, exprs, sets).await;
            }
            return self.group_aggregate(agg, exprs).await;
        };
        if sets.iter().any(|s| s[end]) {
            return Err(SqlError::at(
                (self.locate)("GROUPING"),
                "window_start and window_end must be outside GROUPING SETS, ROLLUP and CUBE",
            ));
        }
        let input = self.plan(&agg.input).await?;
        self.require_append_only(input, "GROUP", "a window aggregation")?;
        let input_arrow = self.graph.schema(input);
        let group_exprs = exprs
            .iter()
            .map(|e| self.physical(e, &in_schema))
            .collect::<Result<Vec<_>>>()?;
        let out_schema = arrow_schema(&agg.schema);
        let grouping_id = if matches!(agg.group_expr.as_slice(), [Expr::GroupingSet(_)]) {
            Some(out_schema.field(exprs.len()).as_ref().clone())
        } else {
            None
        };
        let n_groups = exprs.len() + usize::from(grouping_id.is_some());
        let aggregates = self.lower_aggregates(agg, n_groups, &out_schema, &input_arrow)?;
        let late = self
            .metrics
            .counter(names::LATE_ROWS_DROPPED, "window_aggregate");
        let spec = GroupingSpec {
            exprs: group_exprs,
            sets,
            grouping_id,
            window_end: end,
        };
        let spill =
            SpillConfig::from_settings(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
        let spilled = self
            .metrics
            .counter(names::STATE_SPILLED_BYTES, "window_aggregate");
        let op = WindowAggregate::new(spec, aggregates, out_schema.clone(), late)
            .map_err(|e| SqlError::at(self.pos, e.to_string()))?
            .with_spill(
                Spill::new(spill, spilled).map_err(|e| SqlError::at(self.pos, e.to_string()))?,
            );
        let parallelism =
            parallelism_setting(&self.settings).map_err(|e| SqlError::at(self.pos, e))?;
        let id = self.graph.add_operator(input, Box::new(op), out_schema);
        self.graph.nodes[id].parallelism = parallelism;
        Ok(id)
    }
}

/// The name under which `plan` outputs the rank column of an OVER window
/// below it (through projections and aliases), if it does.
fn rank_column(plan: &LogicalPlan) -> Option<String> {
    match plan {
        LogicalPlan::Window(w) => {
            let n = w.input.schema().fields().len();
            w.schema.fields().get(n).map(|f| f.name().clone())
        }
        LogicalPlan::SubqueryAlias(a) => rank_column(&a.input),
        LogicalPlan::Projection(p) => {
            let inner = rank_column(&p.input)?;
            p.expr.iter().enumerate().find_map(|(i, e)| {
                let col = match e {
                    Expr::Alias(a) => a.expr.as_ref(),
                    e => e,
                };
                matches!(col, Expr::Column(c) if c.name == inner)
                    .then(|| p.schema.field(i).name().clone())
            })
        }
        _ => None,
    }
}

/// The N of `rank <= N` (`< N + 1`, `= 1`) in `predicate`.
fn rank_limit(predicate: &Expr, rank: &str) -> Option<usize> {
    use datafusion::logical_expr::utils::split_conjunction;
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let is_rank = |e: &Expr| matches!(e, Expr::Column(c) if c.name == rank);
    let int = |e: &Expr| match e {
        Expr::Literal(v, _) => v.to_string().parse::<i64>().ok(),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(v, _) => v.to_string().parse::<i64>().ok(),
            _ => None,
        },
        _ => None,
    };
    let mut limit: Option<i64> = None;
    for c in split_conjunction(predicate) {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = c else {
            continue;
        };
        let (op, v) = if is_rank(left) {
            (*op, int(right))
        } else if is_rank(right) {
            let flipped = match op {
                Operator::Lt => Operator::Gt,
                Operator::LtEq => Operator::GtEq,
                Operator::Gt => Operator::Lt,
                Operator::GtEq => Operator::LtEq,
                o => *o,
            };
            (flipped, int(left))
        } else {
            continue;
        };
        let Some(v) = v else { continue };
        let n = match op {
            Operator::LtEq => v,
            Operator::Lt => v - 1,
            Operator::Eq if v == 1 => 1,
            _ => continue,
        };
        limit = Some(limit.map_or(n, |l| l.min(n)));
    }
    limit.filter(|n| *n >= 1).map(|n| n as usize)
}

impl Translator<'_> {
    /// DataFusion's physical aggregates for `agg`'s calls, named as the
    /// output columns after the `n_groups` group columns.
    pub(crate) fn lower_aggregates(
        &self,
        agg: &Aggregate,
        n_groups: usize,
        out_schema: &SchemaRef,
        input_arrow: &SchemaRef,
    ) -> Result<Vec<AggregateSpec>> {
        let mut aggregates = vec![];
        for (k, e) in agg.aggr_expr.iter().enumerate() {
            let name = out_schema.field(n_groups + k).name().clone();
            let inner = match e {
                Expr::Alias(Alias { expr, .. }) => expr.as_ref(),
                e => e,
            };
            let lowered = LoweredAggregateBuilder::new(
                inner,
                agg.input.schema(),
                input_arrow,
                &self.props,
                &PhysicalPlanningContext::default(),
            )
            .with_name(name)
            .build()
            .map_err(|e| self.df_err(e))?;
            if !lowered.order_bys.is_empty() {
                return Err(SqlError::unsupported(
                    self.pos,
                    "ORDER BY inside an aggregate call",
                ));
            }
            aggregates.push(AggregateSpec {
                expr: lowered.aggregate,
                filter: lowered.filter,
            });
        }
        Ok(aggregates)
    }
}

/// Whether `plan` reads a declared stream table.
pub fn has_stream_scan(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::TableScan(_) => true,
        p => p.inputs().iter().any(|i| has_stream_scan(i)),
    }
}
