//! `SET 'execution.mode' = 'distributed'`: the same script started on
//! several machines runs as one job.
//!
//! The processes meet in a Kafka consumer group of the job's
//! ([`vigil_connectors::kafka::membership`]); the group decides which share
//! of every operator each runs (process `i` of `n` runs instances
//! `w*i/n .. w*(i+1)/n` of an operator of `w`, and so their key groups and
//! their sources' partitions and file splits), and every keyed exchange goes
//! through Kafka, under the group's generation. When the membership changes,
//! every process drops its run and starts again from the job's last
//! complete checkpoint with the new shares (Flink's reactive mode), unless
//! the only change is that processes whose part had ended left.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use vigil_connectors::kafka::membership::{Membership, View};
use vigil_engine::connector::Sink;
use vigil_engine::control::StopSignal;
use vigil_engine::graph::Share;
use vigil_engine::metrics::Metrics;
use vigil_engine::runtime::run_job_with;
use vigil_engine::state::shared::{Peers, SharedBy};
use vigil_sql::PlannedJob;

use crate::checkpointing::{checkpoint_config, RunOptions};
use crate::exchange::kafka_exchange;
use crate::{Error, Vigil};

/// What a process of a job running as several shows of its membership
/// (`/api/members` of `vigil run --listen`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerStatus {
    /// This process's worker name.
    pub worker: String,
    /// The membership generation it runs in, in hex.
    pub generation: String,
    /// Which process it is, from 0.
    pub index: usize,
    /// Every member, in share order.
    pub members: Vec<MemberStatus>,
    /// The newest checkpoint this process saw complete.
    pub last_checkpoint: Option<u64>,
}

/// One member of [`WorkerStatus`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberStatus {
    /// Its worker name.
    pub worker: String,
    /// Its id in the job's Kafka group.
    pub member_id: String,
    /// The first and last key group it owns (none when it owns none).
    pub key_groups: Option<(u16, u16)>,
}

impl WorkerStatus {
    fn of(view: &View, worker: &str) -> Self {
        Self {
            worker: worker.to_string(),
            generation: format!("{:016x}", view.generation),
            index: view.index,
            members: view
                .members
                .iter()
                .map(|m| MemberStatus {
                    worker: m.name.clone(),
                    member_id: m.id.clone(),
                    key_groups: m
                        .key_groups
                        .first()
                        .zip(m.key_groups.last())
                        .map(|(a, b)| (*a, *b)),
                })
                .collect(),
            last_checkpoint: None,
        }
    }
}

/// Where the running job shows its membership, for the HTTP endpoint.
pub type StatusBoard = Arc<std::sync::Mutex<Option<WorkerStatus>>>;

/// Whether the settings ask for a job of several processes.
pub fn is_distributed(settings: &BTreeMap<String, String>) -> Result<bool, String> {
    match settings
        .get("execution.mode")
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("local") => Ok(false),
        Some("distributed") => Ok(true),
        Some(other) => Err(format!(
            "invalid 'execution.mode' = '{other}'; write 'local' (the default) or 'distributed'"
        )),
    }
}

/// `execution.distributed.min-workers`: how many processes must have joined
/// before the job starts (default 1).
fn min_workers(settings: &BTreeMap<String, String>) -> Result<usize, String> {
    match settings.get("execution.distributed.min-workers") {
        None => Ok(1),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!("invalid 'execution.distributed.min-workers' = '{v}'; it must be a positive integer")
            }),
    }
}

/// This process's worker name: `--worker-id`, else the host name.
fn worker_name(run: &RunOptions) -> String {
    run.worker
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vigil".into())
}

fn options(e: impl std::fmt::Display) -> Error {
    Error::Options(e.to_string())
}

/// The first view with at least `min` members (`None` once `stop` fires).
async fn settled_view(
    views: &mut watch::Receiver<Option<View>>,
    min: usize,
    stop: &mut StopSignal,
) -> Result<Option<View>, Error> {
    let mut waiting = false;
    loop {
        if let Some(v) = views.borrow_and_update().clone() {
            if v.members.len() >= min {
                return Ok(Some(v));
            }
            if !waiting {
                tracing::info!(members = v.members.len(), min, "waiting for more workers");
                waiting = true;
            }
        }
        tokio::select! {
            _ = stop.stopped() => return Ok(None),
            changed = views.changed() => changed.map_err(|_| options("the job's membership ended"))?,
        }
    }
}

/// Runs `job` (planned from `script`) as this process's share of a job of
/// several processes, until its input ends or `stop` fires.
pub async fn run(
    vigil: &Vigil,
    script: &str,
    first: PlannedJob,
    query_sink: &(dyn Fn() -> Box<dyn Sink> + Sync),
    metrics: &Metrics,
    mut stop: StopSignal,
    run: &RunOptions,
) -> Result<(), Error> {
    let settings = first.settings.clone();
    let exchange = kafka_exchange(&settings, run, true)
        .map_err(options)?
        .ok_or_else(|| options("a job running as several processes needs the Kafka exchange"))?;
    let checkpoints = checkpoint_config(&settings, run).map_err(options)?;
    if checkpoints.is_some() && !settings.contains_key("state.checkpoints.dir") {
        return Err(options("the processes of a job running as several share its checkpoints: SET 'state.checkpoints.dir' = 's3://bucket/path' or 'file:///shared/path' (a directory every process reaches)"));
    }
    let mut min = min_workers(&settings).map_err(options)?;
    let worker = worker_name(run);
    let topic = format!("{}-members", exchange.prefix);
    let membership = {
        let (props, topic, worker) = (exchange.properties.clone(), topic.clone(), worker.clone());
        let (groups, replication) = (exchange.key_groups, exchange.replication);
        tokio::task::spawn_blocking(move || {
            Membership::join(&props, &topic, groups, replication, &worker)
        })
        .await
        .map_err(options)?
        .map_err(Error::Engine)?
    };
    let membership = Arc::new(membership);
    let mut views = membership.views();
    tracing::info!(worker = %worker, group = %topic, "joining the job's workers");
    let mut planned = Some(first);
    loop {
        let Some(view) = settled_view(&mut views, min, &mut stop).await? else {
            return Ok(());
        };
        let job = match planned.take() {
            Some(j) => j,
            None => vigil.plan_with(script, metrics, run).await?,
        };
        if let Some(board) = &run.status {
            if let Ok(mut b) = board.lock() {
                *b = Some(WorkerStatus::of(&view, &worker));
            }
        }
        let share = Share {
            index: view.index,
            count: view.members.len(),
            generation: view.generation,
        };
        let graph = share_graph(job, share, query_sink, &exchange, view.generation)?;
        // Only the first start waits for the others: after a change, the
        // job goes on with whoever is there.
        min = 1;
        let checkpoints = checkpoints
            .clone()
            .map(|c| shared_checkpoints(c, share, view.generation, &worker));
        tracing::info!(
            process = share.index,
            of = share.count,
            generation = view.generation,
            "running this process's share of the job"
        );
        let running = run_job_with(graph, metrics.clone(), stop.clone(), checkpoints);
        tokio::pin!(running);
        loop {
            tokio::select! {
                ended = &mut running => {
                    if let Err(e) = ended {
                        // A process dropped from the group (frozen past its
                        // session timeout) can fail before it hears so: the
                        // process that took its share over fenced its Kafka
                        // transactions. If the workers changed, it starts
                        // again with the new shares instead.
                        if dropped_meanwhile(&membership, &view, &mut views).await? {
                            tracing::warn!(error = %e, "the job's workers changed: starting again with the new shares");
                            break;
                        }
                        return Err(e.into());
                    }
                    if stop.is_stopped() {
                        // Stopped, not finished: leaving the group makes the
                        // others start again without this process.
                        return Ok(());
                    }
                    tracing::info!("this process's share of the job ended");
                    let me = view.members.get(view.index).map(|m| m.id.clone()).unwrap_or_default();
                    let m = membership.clone();
                    let generation = view.generation;
                    tokio::task::spawn_blocking(move || m.announce_finished(generation, &me))
                        .await
                        .map_err(options)?
                        .map_err(Error::Engine)?;
                    return Ok(());
                }
                changed = views.changed() => {
                    changed.map_err(|_| options("the job's membership ended"))?;
                    if !must_restart(&membership, &view, views.borrow().clone()).await? {
                        continue;
                    }
                    tracing::warn!("the job's workers changed: starting again with the new shares");
                    // Yield a moment so the drop below aborts the tasks first.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    break;
                }
            }
        }
    }
}

/// The checkpoint configuration of process `share` of `generation`: its
/// parts under its own name in the shared directory (or object store), and
/// a working copy of its own.
fn shared_checkpoints(
    mut c: vigil_engine::checkpoint::CheckpointConfig,
    share: Share,
    generation: u64,
    worker: &str,
) -> vigil_engine::checkpoint::CheckpointConfig {
    let peers = Peers {
        root: c.checkpoints_dir.clone(),
        remote: c.remote.take(),
        me: SharedBy {
            generation,
            index: share.index,
            count: share.count,
        },
    };
    c.checkpoints_dir = peers.dir_of(share.index);
    // A process may be one checkpoint ahead of another, which still
    // looks for its part of the previous one.
    c.retained = c.retained.max(2);
    // Its parts upload under their own name (object storage).
    c.remote = peers
        .remote
        .as_ref()
        .map(|r| r.child(&peers.part_name(share.index)));
    // A working copy per run: a dropped run's state may still be
    // closing while the next opens its own.
    let base = c.job_dir.clone();
    let mine = format!("worker-{worker}-");
    for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(&mine) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    c.job_dir = base.join(format!("{mine}{generation:016x}"));
    c.peers = Some(peers);
    c
}

/// Whether the job's workers changed since `view` so that this process must
/// start again, waiting a moment for a change not yet heard of (the group's
/// news can come a little after the failure it caused).
async fn dropped_meanwhile(
    membership: &Arc<Membership>,
    view: &View,
    views: &mut watch::Receiver<Option<View>>,
) -> Result<bool, Error> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if must_restart(membership, view, views.borrow_and_update().clone()).await? {
            return Ok(true);
        }
        match tokio::time::timeout_at(deadline, views.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) | Err(_) => return Ok(false),
        }
    }
}

/// Whether the change from `old` to `new` needs this process to start again:
/// not while the group rebalances, nor when the only change is that
/// processes whose part had ended left.
async fn must_restart(
    membership: &Arc<Membership>,
    old: &View,
    new: Option<View>,
) -> Result<bool, Error> {
    let Some(new) = new else {
        return Ok(false);
    };
    if new.generation == old.generation {
        return Ok(false);
    }
    let (was, is) = (old.ids(), new.ids());
    if is.iter().any(|m| !was.contains(m)) {
        return Ok(true);
    }
    let m = membership.clone();
    let generation = old.generation;
    let finished = tokio::task::spawn_blocking(move || m.finished(generation))
        .await
        .map_err(options)?
        .map_err(Error::Engine)?;
    Ok(!was
        .iter()
        .filter(|m| !is.contains(*m))
        .all(|m| finished.contains(m)))
}

/// The graph of `job` for `share` of it: every node's instances multiplied
/// by the process count (so the job's key groups spread over all of them),
/// the queries' sinks added, the keyed exchanges cut through Kafka under
/// `generation`.
fn share_graph(
    mut job: PlannedJob,
    share: Share,
    query_sink: &(dyn Fn() -> Box<dyn Sink> + Sync),
    exchange: &crate::exchange::KafkaExchange,
    generation: u64,
) -> Result<vigil_engine::graph::JobGraph, Error> {
    for (i, q) in std::mem::take(&mut job.queries).into_iter().enumerate() {
        job.graph
            .add_sink(&format!("query {i}"), q.node, query_sink());
    }
    let mut graph = job.graph;
    graph.parallelism = graph.parallelism.max(1) * share.count;
    for n in &mut graph.nodes {
        n.parallelism = n.parallelism.max(1) * share.count;
    }
    graph.share = Some(share);
    graph.key_groups = exchange.key_groups;
    let shuffle = exchange.shuffle().shared(generation);
    exchange.cut(&mut graph, &shuffle).map_err(options)?;
    Ok(graph)
}

/// `vigil members`: the processes of the job of `script` as its group sees
/// them now (each with its key groups), and its newest complete checkpoint.
pub async fn members(vigil: &Vigil, script: &str, run: &RunOptions) -> Result<String, Error> {
    let job = vigil.plan_with(script, &Metrics::new(), run).await?;
    let exchange = kafka_exchange(&job.settings, run, true)
        .map_err(options)?
        .ok_or_else(|| options("the job has no Kafka exchange"))?;
    let group = format!("{}-members", exchange.prefix);
    let (state, members) = {
        let (props, group) = (exchange.properties.clone(), group.clone());
        tokio::task::spawn_blocking(move || {
            vigil_connectors::kafka::membership::describe_group(&props, &group)
        })
        .await
        .map_err(options)?
        .map_err(Error::Engine)?
    };
    let mut out = format!("group '{group}' ({state}), {} worker(s)\n", members.len());
    for (i, m) in members.iter().enumerate() {
        let groups = match (m.key_groups.first(), m.key_groups.last()) {
            (Some(a), Some(b)) => format!("key groups {a}-{b}"),
            _ => "no key group".into(),
        };
        out.push_str(&format!("  {i}  {}  {groups}  (member {})\n", m.name, m.id));
    }
    let newest = match checkpoint_config(&job.settings, run).map_err(options)? {
        None => "the job does not checkpoint".to_string(),
        Some(c) => {
            let found = match &c.remote {
                Some(remote) => vigil_engine::state::shared::newest_remote(remote)
                    .await
                    .map_err(Error::Engine)?
                    .map(|(g, id, parts)| (g, id, parts.len())),
                None => vigil_engine::state::shared::newest_local(&c.checkpoints_dir)
                    .map(|(g, id, parts)| (g, id, parts.len())),
            };
            match found {
                Some((g, id, n)) => {
                    format!("last complete checkpoint: {id} (generation {g:016x}, {n} part(s))")
                }
                None => "no complete checkpoint yet".to_string(),
            }
        }
    };
    out.push_str(&newest);
    out.push('\n');
    Ok(out)
}
