//! Plans a whole script: runs its DDL and SET statements, and turns each query
//! (`INSERT INTO ... SELECT`, bare `SELECT`) into operators of one job graph.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{Column, DFSchema, ExprSchema, TableReference};
use datafusion::datasource::ViewTable;
use datafusion::execution::context::SessionContext;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement as AstStatement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use vigil_engine::changelog::{is_updating, with_row_kind};
use vigil_engine::connector::{ConnectorRegistry, TableSpec};
use vigil_engine::graph::{JobGraph, NodeId};
use vigil_engine::metrics::Metrics;
use vigil_engine::operators::project::Project;
use vigil_engine::state::parallelism_setting;
use vigil_engine::window::{PROCTIME_METADATA_KEY, ROWTIME_METADATA_KEY};

use crate::catalog::{check_metadata, connector_factory, resolve_table, StreamTable, TableEntry};
use crate::cursor::Cursor;
use crate::ddl::parse_create_table;
use crate::error::{Pos, Result, SqlError};
use crate::functions::flink_functions;
use crate::group_window::extract_group_windows;
use crate::insert_columns::{parse_column_list, sink_exprs};
use crate::match_recognize::extract_match_recognize;
use crate::rewrite::rewrite_query;
use crate::script::{split_statements, LineOffsets, Statement};
use crate::translate::Translator;
use crate::tvf::extract_window_tvfs;
use crate::window_node::WindowTvfNode;

/// A bare SELECT of the script: its rows leave the graph at `node`.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The node emitting the query's rows (no sink attached yet).
    pub node: NodeId,
    /// The rows' schema.
    pub schema: SchemaRef,
    /// Where the query starts in the script.
    pub pos: Pos,
}

/// A planned script: the job graph plus the bare SELECTs awaiting a sink.
pub struct PlannedJob {
    /// Sources, operators and the sinks of `INSERT INTO` statements.
    pub graph: JobGraph,
    /// The bare SELECTs, in script order.
    pub queries: Vec<QueryOutput>,
    /// The `SET` options, as given.
    pub settings: BTreeMap<String, String>,
}

/// The SQL session of one script: catalog, settings and planner.
pub struct ScriptPlanner {
    ctx: SessionContext,
    registry: ConnectorRegistry,
    metrics: Metrics,
    tables: HashMap<String, Arc<TableEntry>>,
    settings: BTreeMap<String, String>,
    windows: usize,
    matches: usize,
    /// In a script of several queries, each table's one scan (all its
    /// columns, computed columns and watermark), which every query reading
    /// the table projects: a source is read once per job, as Flink's
    /// statement sets reuse it.
    shared_scans: Option<SharedScans>,
}

/// The node of each shared table scan, by table name.
pub(crate) type SharedScans = std::sync::Mutex<HashMap<String, vigil_engine::graph::NodeId>>;

/// DataFusion's optimizer rules that would break streaming plans: turning
/// `COUNT(DISTINCT x)` into two aggregations would hide the window grouping.
const DISABLED_RULES: &[&str] = &["single_distinct_aggregation_to_group_by"];

impl ScriptPlanner {
    /// A planner creating sources and sinks from `registry`, counting into `metrics`.
    pub fn new(registry: ConnectorRegistry, metrics: Metrics) -> Self {
        let mut config = SessionConfig::new()
            .with_target_partitions(1)
            .with_information_schema(false);
        {
            let opts = config.options_mut();
            // Flink identifiers are case-sensitive; positions feed error messages.
            opts.sql_parser.enable_ident_normalization = false;
            opts.sql_parser.collect_spans = true;
            opts.execution.time_zone = Some("+00:00".to_string());
            // Flink (Calcite's NullCollation.LOW): NULL is the smallest
            // value, first in ASC order and last in DESC.
            opts.sql_parser.default_null_ordering = "nulls_min".to_string();
            // An uncorrelated scalar subquery becomes a join (with its
            // updating aggregate), as in Flink, not a physical subquery.
            opts.optimizer.enable_physical_uncorrelated_scalar_subquery = false;
        }
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .build();
        let rules = state
            .optimizers()
            .iter()
            .filter(|r| !DISABLED_RULES.contains(&r.name()))
            .cloned()
            .collect();
        let mut analyzers: Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> =
            vec![Arc::new(crate::analyzer::StableAggregateNames)];
        analyzers.extend(state.analyzer().rules.iter().cloned());
        // After the views are inlined, where the AS OF nodes are seen.
        analyzers.push(Arc::new(crate::as_of::HoldVersionConditions));
        let state = SessionStateBuilder::new_from_existing(state)
            .with_optimizer_rules(rules)
            .with_analyzer_rules(analyzers)
            .build();
        let ctx = SessionContext::new_with_state(state);
        for udf in flink_functions() {
            ctx.register_udf(udf);
        }
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(
            crate::as_of::AsOfGuard::new(),
        ));
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(
            crate::as_of::AsOfGuard::hold(),
        ));
        ctx.register_udf(crate::cast_row::cast_row_function());
        for udaf in crate::functions::flink_aggregates() {
            ctx.register_udaf(udaf);
        }
        Self {
            ctx,
            registry,
            metrics,
            tables: HashMap::new(),
            settings: BTreeMap::new(),
            windows: 0,
            matches: 0,
            shared_scans: None,
        }
    }

    /// Adds functions of the embedding program: scalar functions and
    /// aggregates callable from the script by their names (an aggregate also
    /// in window aggregations and MATCH_RECOGNIZE measures).
    pub fn with_functions(
        self,
        scalars: &[datafusion::logical_expr::ScalarUDF],
        aggregates: &[datafusion::logical_expr::AggregateUDF],
    ) -> Self {
        for f in scalars {
            self.ctx.register_udf(f.clone());
        }
        for f in aggregates {
            self.ctx.register_udaf(f.clone());
        }
        self
    }

    /// Settings in force before the script's first `SET` (the script's own
    /// `SET`s override them): the runner's choices, such as checkpointing
    /// turned on by `--state-dir`, which connectors read when they are created.
    pub fn with_settings(mut self, settings: BTreeMap<String, String>) -> Self {
        self.settings = settings;
        self
    }

    /// Plans every statement of `script`; nothing runs. The first error stops planning.
    pub async fn plan_script(&mut self, script: &str) -> Result<PlannedJob> {
        let offsets = LineOffsets::new(script);
        let mut graph = JobGraph::new();
        let mut queries = vec![];
        let statements = split_statements(script)?;
        let several = statements.iter().filter(|s| is_query(&s.tokens)).count() > 1;
        self.shared_scans = several.then(Default::default);
        for stmt in statements {
            self.plan_statement(&stmt, &offsets, &mut graph, &mut queries)
                .await?;
        }
        // A bad value was refused where a keyed operator was planned; without
        // one, the setting changes nothing.
        graph.parallelism = parallelism_setting(&self.settings).unwrap_or(1);
        // A bad value is refused with the checkpoint configuration.
        graph.key_groups = vigil_engine::state::key_groups_setting(
            self.settings
                .get("pipeline.max-parallelism")
                .map(String::as_str),
        )
        .unwrap_or(0);
        if let Ok(spill) = vigil_engine::window::spill::SpillConfig::from_settings(&self.settings) {
            graph.state = vigil_engine::state::keyed::StateSettings {
                cache_size: spill.budget,
                tmp_dir: spill.dir,
            };
        }
        Ok(PlannedJob {
            graph,
            queries,
            settings: self.settings.clone(),
        })
    }

    async fn plan_statement(
        &mut self,
        stmt: &Statement,
        offsets: &LineOffsets<'_>,
        graph: &mut JobGraph,
        queries: &mut Vec<QueryOutput>,
    ) -> Result<()> {
        let mut tokens: &[TokenWithSpan] = &stmt.tokens;
        // Flink's statement sets: EXECUTE STATEMENT SET BEGIN ...; ...; END
        for prefix in [
            &["EXECUTE", "STATEMENT", "SET", "BEGIN"][..],
            &["BEGIN", "STATEMENT", "SET"][..],
        ] {
            let c = Cursor::new(tokens);
            if prefix
                .iter()
                .enumerate()
                .all(|(k, kw)| c.is_keyword_at(k, kw))
            {
                tokens = &tokens[prefix.len()..];
            }
        }
        if tokens.is_empty() {
            return Ok(());
        }
        let c = Cursor::new(tokens);
        let pos = c.pos();
        let word = |k: usize| {
            let mut c = Cursor::new(tokens);
            c.i = k;
            match c.peek().map(|t| &t.token) {
                Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
                _ => String::new(),
            }
        };
        let first = word(0);
        let second = if word(1) == "TEMPORARY" {
            word(2)
        } else {
            word(1)
        };
        match (first.as_str(), second.as_str()) {
            ("CREATE", "TABLE") => {
                let def = parse_create_table(tokens, offsets)?;
                self.create_table(def)
            }
            ("CREATE", "VIEW") => self.create_view(tokens, offsets).await,
            ("CREATE", "FUNCTION" | "SYSTEM") => {
                crate::function_ddl::create_function(tokens, &self.ctx)
            }
            ("SET", _) => self.set(tokens),
            ("INSERT", _) => self.insert(tokens, stmt, graph).await,
            ("SELECT" | "WITH" | "VALUES", _) | ("", _)
                if !first.is_empty() || c.is_token(&Token::LParen) =>
            {
                let plan = self.plan_query(tokens, true).await?;
                let node = self.translate(&plan, tokens, pos, graph).await?;
                queries.push(QueryOutput {
                    node,
                    schema: graph.schema(node),
                    pos,
                });
                Ok(())
            }
            ("END", _) if tokens.len() == 1 => Ok(()),
            (
                "CREATE" | "DROP" | "ALTER" | "SHOW" | "DESCRIBE" | "DESC" | "USE" | "RESET"
                | "EXPLAIN" | "LOAD" | "UNLOAD",
                _,
            ) => {
                let what = if first == "CREATE" || first == "DROP" || first == "ALTER" {
                    format!("{first} {second}")
                } else {
                    first.clone()
                };
                Err(SqlError::unsupported(pos, format!("{what} statements")).with_len(first.len()))
            }
            _ => Err(SqlError::at(
                pos,
                format!(
                    "unexpected '{}' at the start of a statement",
                    tokens[0].token
                ),
            )
            .with_help(
                "a statement starts with CREATE TABLE, CREATE VIEW, SET, INSERT INTO or SELECT",
            )),
        }
    }

    fn create_table(&mut self, def: crate::ddl::TableDef) -> Result<()> {
        if self.tables.contains_key(&def.name)
            || self
                .ctx
                .table_exist(TableReference::bare(def.name.clone()))
                .unwrap_or(false)
        {
            if def.if_not_exists {
                return Ok(());
            }
            return Err(
                SqlError::at(def.pos, format!("table '{}' already exists", def.name))
                    .with_len(def.name.len()),
            );
        }
        let state = self.ctx.state();
        let entry = resolve_table(def, &state)?;
        // Validate the connector and the metadata columns now, so that errors come
        // before anything runs.
        let factory = connector_factory(&self.registry, &entry.def)?;
        check_metadata(factory.as_ref(), &entry.def)?;
        let provider = Arc::new(StreamTable {
            schema: entry.schema.clone(),
        });
        self.ctx
            .register_table(TableReference::bare(entry.def.name.clone()), provider)
            .map_err(|e| SqlError::from_datafusion(e, entry.def.pos))?;
        self.tables.insert(entry.def.name.clone(), Arc::new(entry));
        Ok(())
    }

    async fn create_view(
        &mut self,
        tokens: &[TokenWithSpan],
        offsets: &LineOffsets<'_>,
    ) -> Result<()> {
        let mut c = Cursor::new(tokens);
        c.expect_keyword("CREATE")?;
        c.eat_keyword("TEMPORARY");
        c.expect_keyword("VIEW")?;
        let if_not_exists = c.eat_keywords(&["IF", "NOT", "EXISTS"]);
        let (name, pos) = c.object_name("a view name")?;
        let mut columns = vec![];
        if c.eat_token(&Token::LParen) {
            loop {
                columns.push(c.identifier("a column name")?.0);
                if c.eat_token(&Token::RParen) {
                    break;
                }
                c.expect_token(&Token::Comma)?;
            }
        }
        c.expect_keyword("AS")?;
        let body = &tokens[c.i..];
        if self
            .ctx
            .table_exist(TableReference::bare(name.clone()))
            .unwrap_or(false)
        {
            if if_not_exists {
                return Ok(());
            }
            return Err(SqlError::at(
                pos,
                format!("a table or view named '{name}' already exists"),
            )
            .with_len(name.len()));
        }
        let mut plan = self.plan_query(body, false).await?;
        if !columns.is_empty() {
            if columns.len() != plan.schema().fields().len() {
                return Err(SqlError::at(
                    pos,
                    format!(
                        "view '{name}' names {} columns but its query has {}",
                        columns.len(),
                        plan.schema().fields().len()
                    ),
                ));
            }
            let exprs = plan
                .schema()
                .columns()
                .into_iter()
                .zip(&columns)
                .map(|(col, n)| datafusion::logical_expr::Expr::Column(col).alias(n))
                .collect::<Vec<_>>();
            plan = datafusion::logical_expr::LogicalPlanBuilder::from(plan)
                .project(exprs)
                .and_then(|b| b.build())
                .map_err(|e| SqlError::from_datafusion(e, pos))?;
        }
        let text = crate::script::token_text(offsets, body);
        let view = Arc::new(ViewTable::new(plan, Some(text)));
        self.ctx
            .register_table(TableReference::bare(name.clone()), view)
            .map_err(|e| SqlError::from_datafusion(e, pos))?;
        Ok(())
    }

    fn set(&mut self, tokens: &[TokenWithSpan]) -> Result<()> {
        let mut c = Cursor::new(tokens);
        c.expect_keyword("SET")?;
        let key_or_word = |c: &mut Cursor| -> Result<String> {
            match c.peek().map(|t| &t.token) {
                Some(Token::SingleQuotedString(s)) => {
                    c.i += 1;
                    Ok(s.clone())
                }
                _ => {
                    let start = c.i;
                    while !c.done() && !c.is_token(&Token::Eq) {
                        c.i += 1;
                    }
                    Ok(c.slice(start, c.i)
                        .iter()
                        .map(|t| t.token.to_string())
                        .collect())
                }
            }
        };
        let key = key_or_word(&mut c)?;
        c.expect_token(&Token::Eq)?;
        let value = key_or_word(&mut c)?;
        if key == "table.local-time-zone"
            && !matches!(value.as_str(), "UTC" | "GMT" | "Etc/UTC" | "+00:00")
        {
            tracing::warn!("'table.local-time-zone' = '{value}' is ignored: Vigil shows TIMESTAMP_LTZ values in UTC");
        }
        self.settings.insert(key, value);
        Ok(())
    }

    async fn insert(
        &mut self,
        tokens: &[TokenWithSpan],
        stmt: &Statement,
        graph: &mut JobGraph,
    ) -> Result<()> {
        let mut c = Cursor::new(tokens);
        c.expect_keyword("INSERT")?;
        if !c.eat_keyword("INTO") {
            if c.is_keyword("OVERWRITE") {
                return Err(SqlError::unsupported(c.pos(), "INSERT OVERWRITE"));
            }
            return Err(c.unexpected("INTO"));
        }
        let (name, name_pos) = c.object_name("a table name")?;
        let entry = self
            .tables
            .get(&name)
            .ok_or_else(|| {
                SqlError::at(name_pos, format!("'{name}' is not a declared table"))
                    .with_len(name.len())
            })?
            .clone();
        let targets = parse_column_list(&mut c, &entry.sink_schema(), &name)?;
        let plan = self.plan_query(&tokens[c.i..], true).await?;
        let pos = stmt.pos();
        let sink_schema = entry.sink_schema();
        let out = plan.schema().clone();
        let wanted = targets
            .as_ref()
            .map_or(sink_schema.fields().len(), Vec::len);
        if out.fields().len() != wanted {
            return Err(SqlError::at(
                name_pos,
                format!(
                    "the query produces {} columns but sink '{name}' takes {} ({})",
                    out.fields().len(),
                    wanted,
                    sink_schema
                        .fields()
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| targets.as_ref().is_none_or(|t| t.contains(i)))
                        .map(|(_, f)| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let node = self.translate(&plan, tokens, pos, graph).await?;
        let updating = is_updating(&graph.schema(node));
        // Cast to the sink's column types and names (NULL for a column the
        // INSERT's column list leaves out).
        let mut exprs = sink_exprs(
            &out,
            &sink_schema,
            targets.as_deref(),
            name_pos,
            crate::decimal_cast::sink_cast,
        )?;
        let mut sink_schema_nullable: SchemaRef = Arc::new(Schema::new(
            sink_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let factory = connector_factory(&self.registry, &entry.def)?;
        let mut sink_schema = sink_schema;
        if updating {
            let probe = TableSpec {
                name: name.clone(),
                schema: sink_schema.clone(),
                options: entry.def.options.clone(),
                metadata: Default::default(),
                job_options: self.settings.clone(),
                primary_key: entry.def.primary_key.clone(),
                partition_keys: entry.def.partition_keys.clone(),
            };
            if !factory.accepts_updates(&probe) {
                return Err(SqlError::at(
                    name_pos,
                    format!(
                        "table '{name}' ('connector' = '{}') is append-only, but this query's result updates (a GROUP BY without a window, an outer or regular join, a deduplication or a Top-N change rows they emitted)",
                        factory.name()
                    ),
                )
                .with_len(name.len())
                .with_help("write to a sink that takes updates ('upsert-kafka' with a PRIMARY KEY ... NOT ENFORCED, or 'print'), or aggregate over a window TVF so that each row is final"));
            }
            let kinds = graph.schema(node).fields().len() - 1;
            exprs.push(Arc::new(
                datafusion::physical_expr::expressions::Column::new(
                    vigil_engine::changelog::ROW_KIND,
                    kinds,
                ),
            ));
            sink_schema_nullable = with_row_kind(&sink_schema_nullable);
            sink_schema = with_row_kind(&sink_schema);
        }
        let node = graph.add_operator(
            node,
            Box::new(Project::new(exprs, sink_schema_nullable.clone())),
            sink_schema_nullable,
        );
        crate::catalog::check_metadata_types(factory.as_ref(), &entry.def, true)?;
        let metadata = entry.metadata_columns(true);
        for (col, key) in &metadata {
            if !factory.writable_metadata().iter().any(|(k, _)| k == key) {
                return Err(SqlError::at(
                    name_pos,
                    format!("metadata '{key}' of column '{col}' cannot be written by the '{}' connector", factory.name()),
                )
                .with_help(format!("declare the column as METADATA FROM '{key}' VIRTUAL to leave it out of the sink")));
            }
        }
        let spec = TableSpec {
            name: name.clone(),
            schema: sink_schema,
            options: entry.def.options.clone(),
            metadata,
            job_options: self.settings.clone(),
            primary_key: entry.def.primary_key.clone(),
            partition_keys: entry.def.partition_keys.clone(),
        };
        let sink = factory
            .create_sink(&spec, &self.metrics)
            .map_err(|e| SqlError::at(entry.def.options_pos, e.to_string()))?;
        graph.add_sink(&name.to_string(), node, sink);
        Ok(())
    }

    /// Adds the operators of an optimised query plan to `graph`; `tokens` are the
    /// statement's, for pointing errors at clauses.
    async fn translate(
        &self,
        plan: &LogicalPlan,
        tokens: &[TokenWithSpan],
        pos: Pos,
        graph: &mut JobGraph,
    ) -> Result<NodeId> {
        let locate = locator(tokens);
        let mut t = Translator::new(
            graph,
            &self.tables,
            &self.registry,
            &self.metrics,
            &self.ctx,
            pos,
            &locate,
        );
        t.settings = self.settings.clone();
        t.shared_scans = self.shared_scans.as_ref();
        t.plan(plan).await
    }

    /// Parses and plans a query (window TVFs resolved); optimised when `optimize`.
    async fn plan_query(
        &mut self,
        tokens: &[TokenWithSpan],
        optimize: bool,
    ) -> Result<LogicalPlan> {
        let start = Cursor::new(tokens).pos();
        let mut names = vec![];
        let base = self.windows;
        let (tokens, calls) = extract_window_tvfs(tokens, || {
            let n = format!("__vigil_window_{}", base + names.len());
            names.push(n.clone());
            n
        })?;
        self.windows += calls.len();
        for (name, tvf) in &calls {
            self.register_window(name, tvf).await?;
        }
        let mut matches = 0;
        let base = self.matches;
        let (tokens, clauses) = extract_match_recognize(&tokens, || {
            matches += 1;
            format!("__vigil_match_{}", base + matches - 1)
        })?;
        self.matches += clauses.len();
        for (name, clause) in &clauses {
            self.register_match(name, clause).await?;
        }
        crate::as_of::register_markers(&self.ctx, &tokens)
            .await
            .map_err(|e| SqlError::from_datafusion(e, start))?;
        let tokens = crate::as_of::guard_markers(&self.ctx, &tokens).await;
        let tokens = crate::is_json::rewrite_is_json(&tokens);
        let tokens = crate::json_syntax::rewrite_json_syntax(&tokens)?;
        let tokens = crate::map_literal::rewrite_map_literals(&tokens);
        let tokens = crate::cast_row::rewrite_row_casts(&tokens);
        let mut parser = Parser::new(&GenericDialect {}).with_tokens_with_locations(tokens);
        let mut query = parser.parse_query().map_err(|e| parser_error(e, start))?;
        let next = parser.peek_token();
        if next.token != Token::EOF {
            return Err(SqlError::at(
                Pos::from(next.span.start),
                format!("unexpected '{}' after the query", next.token),
            ));
        }
        crate::unnest_join::rewrite_unnest_joins(&mut query, start)?;
        let base = self.windows;
        let mut k = 0;
        let legacy = extract_group_windows(&mut query, &mut || {
            k += 1;
            format!("__vigil_window_{}", base + k - 1)
        })?;
        self.windows += legacy.len();
        for (name, tvf) in &legacy {
            self.register_window(name, tvf).await?;
        }
        rewrite_query(&mut query);
        let state = self.ctx.state();
        let to_plan = |q: Query| DFStatement::Statement(Box::new(AstStatement::Query(Box::new(q))));
        let plan = match state.statement_to_plan(to_plan((*query).clone())).await {
            Ok(plan) => plan,
            Err(e) => {
                // Beyond Flink: WHERE on a window function's alias (see
                // `where_alias`), tried only when the query fails as written.
                let mut lifted = (*query).clone();
                if !crate::where_alias::lift_window_aliases(&mut lifted) {
                    return Err(SqlError::from_datafusion(e, start));
                }
                state
                    .statement_to_plan(to_plan(lifted))
                    .await
                    .map_err(|_| SqlError::from_datafusion(e, start))?
            }
        };
        if !optimize {
            return Ok(plan);
        }
        state
            .optimize(&plan)
            .map_err(|e| SqlError::from_datafusion(e, start))
    }

    async fn register_match(
        &mut self,
        name: &str,
        clause: &crate::match_recognize::MatchRecognizeClause,
    ) -> Result<()> {
        let input = self
            .ctx
            .table(TableReference::bare(clause.input.clone()))
            .await
            .map_err(|_| {
                SqlError::at(
                    clause.input_pos,
                    format!("table or view '{}' not found", clause.input),
                )
                .with_len(clause.input.len())
                .with_help("declare it with CREATE TABLE or CREATE VIEW before this statement")
            })?
            .into_unoptimized_plan();
        let node = crate::match_recognize::plan::build_node(&self.ctx.state(), input, clause)?;
        let plan = LogicalPlan::Extension(Extension {
            node: Arc::new(node),
        });
        let view: Arc<dyn TableProvider> = Arc::new(ViewTable::new(plan, None));
        self.ctx
            .register_table(TableReference::bare(name.to_string()), view)
            .map_err(|e| SqlError::from_datafusion(e, clause.pos))?;
        Ok(())
    }

    async fn register_window(&mut self, name: &str, tvf: &crate::tvf::WindowTvf) -> Result<()> {
        let input = self
            .ctx
            .table(TableReference::bare(tvf.table.clone()))
            .await
            .map_err(|_| {
                SqlError::at(
                    tvf.table_pos,
                    format!("table or view '{}' not found", tvf.table),
                )
                .with_len(tvf.table.len())
                .with_help("declare it with CREATE TABLE or CREATE VIEW before this statement")
            })?
            .into_unoptimized_plan();
        let schema: &DFSchema = input.schema();
        let find = |col: &str, pos: Pos| -> Result<Column> {
            let (q, f) = schema
                .qualified_field_with_unqualified_name(col)
                .map_err(|_| {
                    SqlError::at(pos, format!("column '{col}' not found in '{}'", tvf.table))
                        .with_len(col.len())
                        .with_help(format!(
                            "columns: {}",
                            schema
                                .fields()
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                })?;
            Ok(Column::new(q.cloned(), f.name()))
        };
        let time_col = find(&tvf.time_col, tvf.time_pos)?;
        let field = schema
            .field_from_column(&time_col)
            .map_err(|e| SqlError::from_datafusion(e, tvf.time_pos))?;
        if !field.metadata().contains_key(ROWTIME_METADATA_KEY)
            && !field.metadata().contains_key(PROCTIME_METADATA_KEY)
        {
            return Err(SqlError::at(tvf.time_pos, format!("DESCRIPTOR column '{}' is not a time attribute", tvf.time_col))
                .with_len(tvf.time_col.len())
                .with_help("window on a column with a WATERMARK FOR declaration, on a PROCTIME() column, or on window_time of an earlier window"));
        }
        let partition = tvf
            .partition_by
            .iter()
            .map(|(c, p)| find(c, *p).map(datafusion::logical_expr::Expr::Column))
            .collect::<Result<Vec<_>>>()?;
        let node = WindowTvfNode::try_new(input, tvf.kind.clone(), time_col, partition)
            .map_err(|e| SqlError::from_datafusion(e, tvf.pos))?;
        let plan = LogicalPlan::Extension(Extension {
            node: Arc::new(node),
        });
        let view: Arc<dyn TableProvider> = Arc::new(ViewTable::new(plan, None));
        self.ctx
            .register_table(TableReference::bare(name.to_string()), view)
            .map_err(|e| SqlError::from_datafusion(e, tvf.pos))?;
        Ok(())
    }
}

/// Turns a parser error ("... at Line: 3, Column: 7") into a positioned error.
fn parser_error(e: ParserError, fallback: Pos) -> SqlError {
    let msg = match &e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
        other => other.to_string(),
    };
    let (text, pos) = match msg.rfind(" at Line: ") {
        Some(i) => {
            let loc = &msg[i + " at Line: ".len()..];
            let mut parts = loc.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let col = parts.next().and_then(|c| c.trim().parse().ok());
            match (line, col) {
                (Some(line), Some(column)) => (msg[..i].to_string(), Pos { line, column }),
                _ => (msg.clone(), fallback),
            }
        }
        None => (msg.clone(), fallback),
    };
    SqlError::at(pos, format!("syntax error: {text}"))
}

/// Finds the first unquoted keyword `kw` in a statement, else its start.
fn locator(tokens: &[TokenWithSpan]) -> impl Fn(&str) -> Pos + '_ {
    move |kw: &str| {
        tokens
            .iter()
            .find(|t| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw)))
            .or(tokens.first())
            .map(|t| Pos::from(t.span.start))
            .unwrap_or(Pos { line: 1, column: 1 })
    }
}

/// Whether a statement is a query (an INSERT or a SELECT, in a statement
/// set or not), which adds nodes reading tables to the job.
fn is_query(tokens: &[TokenWithSpan]) -> bool {
    let words: Vec<String> = tokens
        .iter()
        .take(5)
        .map(|t| match &t.token {
            Token::Word(w) => w.value.to_ascii_uppercase(),
            Token::LParen => "(".into(),
            _ => String::new(),
        })
        .collect();
    let skip = match words.first().map(String::as_str) {
        Some("EXECUTE") => 4,
        Some("BEGIN") => 3,
        _ => 0,
    };
    matches!(
        words.get(skip).map(String::as_str),
        Some("INSERT" | "SELECT" | "WITH" | "VALUES" | "(")
    )
}
