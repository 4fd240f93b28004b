//! Runs a [`JobGraph`] on tokio. Each source runs in its own task; chains of
//! operators (and the sink at their end) are fused into one task, so a batch
//! passes through filter, projection and aggregation without a channel hop.
//! Bounded channels between tasks give backpressure.
//!
//! A keyed operator with `parallelism` above one runs as that many tasks, fed
//! through a keyed exchange (see [`exchange`]); each instance owns a range of
//! key groups.
//!
//! With checkpointing, the state of the newest complete checkpoint is restored
//! into every node before anything runs (keyed state to the instance owning
//! its key group, whatever the parallelism was when it was written), and a
//! coordinator task triggers the next checkpoints (see [`crate::checkpoint`]).

mod exchange;
mod fork;
mod inputs;
mod merge;
mod placement;
mod restore;
mod source;
mod state;
mod task;

use std::collections::BTreeMap;

use tokio::task::JoinSet;

use crate::checkpoint::CheckpointConfig;
use crate::control::StopSignal;
use crate::graph::{JobGraph, NodeKind};
use crate::metrics::Metrics;
use crate::state::DEFAULT_KEY_GROUPS;
use crate::{EngineError, Result};
use fork::{fork_parallel, Forks, SourceForks};
use placement::place_graph;
use restore::prepare_checkpoints;
use source::run_source;
use state::StateSetup;
use task::run_task;

/// Messages buffered on an edge between two tasks.
const CHANNEL_CAPACITY: usize = 16;

/// Runs the job until every source is exhausted and every sink has flushed, or
/// until a task fails (the first error is returned and the rest are cancelled).
pub async fn run_job(graph: JobGraph, metrics: Metrics) -> Result<()> {
    run_job_with(graph, metrics, StopSignal::never(), None).await
}

/// As [`run_job`], and also returns (after sinks have flushed) once `stop` fires:
/// sources stop reading, open windows stay unfired, sinks flush.
pub async fn run_job_until(graph: JobGraph, metrics: Metrics, stop: StopSignal) -> Result<()> {
    run_job_with(graph, metrics, stop, None).await
}

/// As [`run_job_until`], with checkpoints when `checkpoints` is set: the job
/// first resumes from its newest complete checkpoint (if any), then takes one
/// every interval. A job that reaches the end of its input removes its
/// checkpoints (it is finished, as in Flink); a stopped or failed one keeps them.
pub async fn run_job_with(
    mut graph: JobGraph,
    metrics: Metrics,
    stop: StopSignal,
    checkpoints: Option<CheckpointConfig>,
) -> Result<()> {
    let n = graph.nodes.len();
    for node in &graph.nodes {
        if let Some(i) = node.inputs.iter().find(|&&i| i >= n) {
            return Err(EngineError::Graph(format!(
                "node '{}' reads from unknown node {i}",
                node.name
            )));
        }
    }
    let consumers = graph.consumers();
    let own = match graph.key_groups {
        0 => DEFAULT_KEY_GROUPS,
        k => k,
    };
    let key_groups = checkpoints.as_ref().map_or(own, |c| c.key_groups);
    if let Some(share) = graph.share.filter(|s| s.count > 1) {
        for node in &mut graph.nodes {
            if let NodeKind::Sink(sink) = &mut node.kind {
                sink.assign(share)?;
            }
        }
    }
    let (mut forks, mut source_forks) = fork_parallel(&mut graph)?;
    let (coordinator, setup) = match checkpoints {
        Some(config) => {
            let mut forked = (&mut forks, &mut source_forks);
            let (c, keyed) = prepare_checkpoints(&mut graph, &mut forked, config, &metrics).await?;
            let working = c.checkpoints().keyed_working_dir();
            let setup = StateSetup::new(&graph.state, key_groups, Some(working), keyed);
            (Some(c), setup)
        }
        None => (
            None,
            StateSetup::new(&graph.state, key_groups, None, BTreeMap::new()),
        ),
    };
    let (tasks, sources) = place_graph(
        graph.nodes,
        &consumers,
        (&mut forks, &mut source_forks),
        key_groups,
        &setup,
    )?;

    let mut set: JoinSet<Result<()>> = JoinSet::new();
    let participants: Vec<String> = sources
        .iter()
        .map(|s| s.name.clone())
        .chain(tasks.iter().map(|t| t.name.clone()))
        .collect();
    let first_task = sources.len();
    for (p, s) in sources.into_iter().enumerate() {
        let link = coordinator
            .as_ref()
            .map(|c| (c.source(s.node, s.subtask.map(|(i, _)| i), p), c.task(p)));
        set.spawn(run_source(s, metrics.clone(), stop.clone(), link));
    }
    for (p, t) in tasks.into_iter().enumerate() {
        let link = coordinator.as_ref().map(|c| c.task(first_task + p));
        set.spawn(run_task(t, link, metrics.clone()));
    }
    let checkpoint_store = coordinator.as_ref().map(|c| c.checkpoints());
    let remote = coordinator.as_ref().and_then(|c| c.remote());
    let peers = coordinator.as_ref().and_then(|c| c.peers());
    let coordinator = coordinator.map(|c| tokio::spawn(c.run(participants)));
    let mut first_err = None;
    while let Some(joined) = set.join_next().await {
        let res = match joined {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(EngineError::Panic(e.to_string())),
        };
        if let Err(e) = res {
            if first_err.is_none() {
                first_err = Some(e);
                set.abort_all();
            }
        }
    }
    if let Some(c) = coordinator {
        // It returns once every task has let go of its link; a checkpoint
        // being written is finished first, so its files are whole.
        let _ = c.await;
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    if let Some(peers) = peers.filter(|_| !stop.is_stopped()) {
        // The others may still complete checkpoints, and restore them.
        return peers.finish().await;
    }
    if let Some(store) = checkpoint_store.filter(|_| !stop.is_stopped()) {
        tokio::task::spawn_blocking(move || store.clear())
            .await
            .map_err(|e| EngineError::State(e.to_string()))??;
        // A finished job's checkpoints on object storage go too.
        if let Some(remote) = remote {
            remote.retain(&[]).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::arrow::record_batch::RecordBatch;

    use super::*;
    use crate::connector::{Sink, Source, SourceContext};
    use crate::operator::{Emitter, Operator};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
    }

    /// One row, then nothing for a while, then the end.
    struct Quiet;

    #[async_trait]
    impl Source for Quiet {
        fn describe(&self) -> String {
            "Quiet".into()
        }
        async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
            let batch = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(vec![1]))])
                .map_err(|e| EngineError::Graph(e.to_string()))?;
            ctx.emit(batch).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(())
        }
    }

    /// Counts its processing-time calls; at the first it emits a row of 42
    /// of its own.
    struct Ticking(Arc<AtomicUsize>);

    impl Operator for Ticking {
        fn name(&self) -> String {
            "Ticking".into()
        }
        fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
            out.batch(batch);
            Ok(())
        }
        fn processing_interval(&self) -> Option<Duration> {
            Some(Duration::from_millis(20))
        }
        fn on_processing_time(&mut self, out: &mut Emitter) -> Result<()> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                out.batch(values(&[42]));
            }
            Ok(())
        }
    }

    /// Adds `1000 * input` to the values of each of its inputs' batches.
    struct ByInput;

    impl Operator for ByInput {
        fn name(&self) -> String {
            "ByInput".into()
        }
        fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
            self.on_input(0, batch, out)
        }
        fn on_input(&mut self, input: usize, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
            let shifted: Vec<i64> = ints(&batch)?
                .iter()
                .map(|x| x + 1000 * input as i64)
                .collect();
            out.batch(values(&shifted));
            Ok(())
        }
    }

    /// Adds one to every value.
    struct AddOne;

    impl Operator for AddOne {
        fn name(&self) -> String {
            "AddOne".into()
        }
        fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
            let plus: Vec<i64> = ints(&batch)?.iter().map(|x| x + 1).collect();
            out.batch(values(&plus));
            Ok(())
        }
    }

    fn ints(batch: &RecordBatch) -> Result<Vec<i64>> {
        let v = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| EngineError::Graph("not Int64".into()))?;
        Ok(v.values().to_vec())
    }

    fn values(v: &[i64]) -> RecordBatch {
        RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(v.to_vec()))]).expect("batch")
    }

    /// Keeps every value it is given.
    struct Collect(Arc<std::sync::Mutex<Vec<i64>>>);

    #[async_trait]
    impl Sink for Collect {
        fn describe(&self) -> String {
            "Collect".into()
        }
        async fn write(&mut self, batch: RecordBatch) -> Result<()> {
            let v = ints(&batch)?;
            self.0
                .lock()
                .map_err(|e| EngineError::Graph(e.to_string()))?
                .extend(v);
            Ok(())
        }
        async fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn what_an_operator_emits_on_processing_time_goes_down_its_chain() {
        let ticks = Arc::new(AtomicUsize::new(0));
        let got = Arc::new(std::sync::Mutex::new(vec![]));
        let mut g = JobGraph::new();
        let s = g.add_source("t", Box::new(Quiet), schema());
        let o = g.add_operator(s, Box::new(Ticking(ticks.clone())), schema());
        let plus = g.add_operator(o, Box::new(AddOne), schema());
        g.add_sink("out", plus, Box::new(Collect(got.clone())));
        run_job(g, Metrics::new()).await.expect("runs");
        // 500 ms without input at a 20 ms interval: called (about 25 times
        // on an idle machine; only "called at all" is asserted, as a loaded
        // machine may delay ticks), and the row emitted at the first call
        // passed the next operator (42 + 1) to the sink, beside the source's.
        assert!(ticks.load(Ordering::SeqCst) >= 1, "no processing-time call");
        let mut got = got.lock().expect("lock").clone();
        got.sort();
        assert_eq!(got, vec![2, 43]);
    }

    /// One batch of the given values.
    struct Rows(Vec<i64>);

    #[async_trait]
    impl Source for Rows {
        fn describe(&self) -> String {
            "Rows".into()
        }
        async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
            ctx.emit(values(&self.0)).await
        }
    }

    #[tokio::test]
    async fn an_operator_of_two_inputs_is_told_which_input_a_batch_came_from() {
        let got = Arc::new(std::sync::Mutex::new(vec![]));
        let mut g = JobGraph::new();
        let l = g.add_source("l", Box::new(Rows(vec![1, 2])), schema());
        let r = g.add_source("r", Box::new(Rows(vec![3])), schema());
        let both = g.add_operator_over(vec![l, r], Box::new(ByInput), schema());
        g.add_sink("out", both, Box::new(Collect(got.clone())));
        run_job(g, Metrics::new()).await.expect("runs");
        let mut got = got.lock().expect("lock").clone();
        got.sort();
        assert_eq!(got, vec![1, 2, 1003]);
    }
}
