//! Vigil: a stream-processing and complex-event-processing engine with
//! Flink-compatible SQL.
//!
//! Embed it in a job binary:
//!
//! ```no_run
//! # async fn run() -> Result<(), vigil::Error> {
//! let vigil = vigil::Vigil::new();
//! let summary = vigil.run_script("CREATE TABLE ...; INSERT INTO ... SELECT ...", vigil::OutputFormat::Json).await?;
//! eprintln!("late rows dropped: {}", summary.late_rows_dropped);
//! # Ok(()) }
//! ```

pub mod checkpointing;
pub mod client;
pub mod demo;
pub mod distributed;
pub mod exchange;
#[doc(hidden)]
pub mod fuzzing;
pub mod output;
pub mod server;

pub use checkpointing::RunOptions;
pub use output::{OutputFormat, StdoutSink};
pub use vigil_connectors as connectors;
pub use vigil_engine as engine;
pub use vigil_sql as sql;

use vigil_engine::connector::{ConnectorRegistry, Sink};
use vigil_engine::control::StopSignal;
use vigil_engine::metrics::{names, Metrics};
use vigil_engine::runtime::run_job_with;
use vigil_engine::EngineError;
use vigil_sql::{PlannedJob, ScriptPlanner, SqlError};

/// An error of planning (with a position in the script) or of running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The script does not plan.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// The job failed while running.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The job's options do not hold together.
    #[error("{0}")]
    Options(String),
}

/// What a finished job counted.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Rows read by all sources.
    pub rows_read: u64,
    /// Records skipped because they could not be decoded.
    pub malformed_records: u64,
    /// Rows dropped because their window had already fired.
    pub late_rows_dropped: u64,
    /// Rows dropped because their event time was NULL.
    pub null_rowtime_dropped: u64,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Time spent restoring the checkpoint the job resumed from (0 if none).
    pub restore_ms: u64,
    /// Bytes of window state spilled to RocksDB (beyond `state.backend.cache-size`).
    pub state_spilled_bytes: u64,
    /// Duration of the last checkpoint, trigger to completion (0 if none).
    pub last_checkpoint_ms: u64,
    /// Bytes the last checkpoint added on disk (its incremental size).
    pub last_checkpoint_incremental_bytes: u64,
    /// Open partial matches of MATCH_RECOGNIZE at the last watermark.
    pub partial_matches: u64,
}

/// The engine with its connectors and the functions a program added.
#[derive(Clone)]
pub struct Vigil {
    registry: ConnectorRegistry,
    scalars: Vec<datafusion::logical_expr::ScalarUDF>,
    aggregates: Vec<datafusion::logical_expr::AggregateUDF>,
}

impl Default for Vigil {
    fn default() -> Self {
        Self::new()
    }
}

impl Vigil {
    /// Vigil with the built-in connectors (filesystem, print, blackhole).
    pub fn new() -> Self {
        Self {
            registry: vigil_connectors::default_registry(),
            scalars: vec![],
            aggregates: vec![],
        }
    }

    /// Makes a scalar function of your own (a DataFusion `ScalarUDF`)
    /// callable from scripts by its name.
    pub fn register_udf(&mut self, f: datafusion::logical_expr::ScalarUDF) {
        self.scalars.push(f);
    }

    /// Makes an aggregate function of your own (a DataFusion `AggregateUDF`)
    /// callable from scripts by its name, in window aggregations, updating
    /// GROUP BYs and MATCH_RECOGNIZE measures.
    pub fn register_udaf(&mut self, f: datafusion::logical_expr::AggregateUDF) {
        self.aggregates.push(f);
    }

    /// The connector registry, to add connectors of your own.
    pub fn registry_mut(&mut self) -> &mut ConnectorRegistry {
        &mut self.registry
    }

    /// Plans `script` without running it.
    pub async fn plan(&self, script: &str, metrics: &Metrics) -> Result<PlannedJob, SqlError> {
        self.plan_with(script, metrics, &RunOptions::default())
            .await
    }

    /// Plans `script` as it would run with `run`: with a state directory,
    /// checkpointing is on from the start (its default interval), so sinks
    /// created by the script choose their transactional mode; the job name
    /// becomes `pipeline.name` unless the script sets one.
    pub async fn plan_with(
        &self,
        script: &str,
        metrics: &Metrics,
        run: &RunOptions,
    ) -> Result<PlannedJob, SqlError> {
        ScriptPlanner::new(self.registry.clone(), metrics.clone())
            .with_functions(&self.scalars, &self.aggregates)
            .with_settings(checkpointing::initial_settings(run))
            .plan_script(script)
            .await
    }

    /// Plans and runs `script` until its bounded sources are exhausted; the rows
    /// of bare SELECTs are printed to stdout in `format`.
    pub async fn run_script(
        &self,
        script: &str,
        format: OutputFormat,
    ) -> Result<RunSummary, Error> {
        self.run_script_until(script, format, StopSignal::never())
            .await
    }

    /// As [`Vigil::run_script`], and also returns once `stop` fires: sources
    /// stop reading (Kafka commits the offsets of what was read), sinks flush,
    /// and windows still open stay unfired.
    pub async fn run_script_until(
        &self,
        script: &str,
        format: OutputFormat,
        stop: StopSignal,
    ) -> Result<RunSummary, Error> {
        self.run_script_with(script, format, stop, &RunOptions::default())
            .await
    }

    /// As [`Vigil::run_script_until`], with checkpoints when the script sets
    /// `execution.checkpointing.interval` or `run.state_dir` is given: the job
    /// resumes from its newest complete checkpoint.
    pub async fn run_script_with(
        &self,
        script: &str,
        format: OutputFormat,
        stop: StopSignal,
        run: &RunOptions,
    ) -> Result<RunSummary, Error> {
        let metrics = Metrics::new();
        let mut run = run.clone();
        if let Some(listen) = run.listen {
            let board = distributed::StatusBoard::default();
            run.status = Some(board.clone());
            let name = run.job_name.clone().unwrap_or_else(|| "job".into());
            let addr = server::serve_job(listen, &name, metrics.clone(), stop.clone(), Some(board))
                .await
                .map_err(Error::Options)?;
            tracing::info!(%addr, "serving /metrics and /api/members");
        }
        self.run_script_into(
            script,
            &|| Box::new(StdoutSink::new(format)),
            &metrics,
            stop,
            &run,
        )
        .await
    }

    /// As [`Vigil::run_script_with`], with the rows of bare SELECTs going to
    /// the sinks `query_sink` makes (one per query) and the job counting into
    /// `metrics` (readable while it runs).
    pub async fn run_script_into(
        &self,
        script: &str,
        query_sink: &(dyn Fn() -> Box<dyn Sink> + Sync),
        metrics: &Metrics,
        stop: StopSignal,
        run: &RunOptions,
    ) -> Result<RunSummary, Error> {
        let mut job = self.plan_with(script, metrics, run).await?;
        if distributed::is_distributed(&job.settings).map_err(Error::Options)? {
            distributed::run(self, script, job, query_sink, metrics, stop, run).await?;
            return Ok(summary(metrics));
        }
        let checkpoints =
            checkpointing::checkpoint_config(&job.settings, run).map_err(Error::Options)?;
        for (i, q) in std::mem::take(&mut job.queries).into_iter().enumerate() {
            job.graph
                .add_sink(&format!("query {i}"), q.node, query_sink());
        }
        let cut =
            exchange::cut_exchanges(&mut job.graph, &job.settings, run).map_err(Error::Options)?;
        if cut > 0 {
            tracing::info!(operators = cut, "keyed exchanges go through Kafka");
        }
        run_job_with(job.graph, metrics.clone(), stop, checkpoints).await?;
        Ok(summary(metrics))
    }
}

/// What `metrics` counted of a finished job.
fn summary(metrics: &Metrics) -> RunSummary {
    {
        RunSummary {
            rows_read: metrics.total(names::SOURCE_ROWS),
            malformed_records: metrics.total(names::MALFORMED_RECORDS),
            late_rows_dropped: metrics.total(names::LATE_ROWS_DROPPED),
            null_rowtime_dropped: metrics.total(names::NULL_TIME_DROPPED),
            checkpoints: metrics.total(names::CHECKPOINTS_COMPLETED),
            restore_ms: metrics.total(names::RESTORE_DURATION_MS),
            state_spilled_bytes: metrics.total(names::STATE_SPILLED_BYTES),
            last_checkpoint_ms: metrics.total(names::CHECKPOINT_DURATION_MS),
            last_checkpoint_incremental_bytes: metrics.total(names::CHECKPOINT_INCREMENTAL_BYTES),
            partial_matches: metrics.total(names::PARTIAL_MATCHES),
        }
    }
}
