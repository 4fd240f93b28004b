//! A task: a chain of operators fused with the sink (or the channels) at its
//! end, fed by the merge of its inputs.

use tokio::sync::mpsc;

use super::exchange::Output;
use super::inputs::Inputs;
use super::merge::Merge;
use super::state::Stage;
use crate::checkpoint::{finished_markers, Ack, TaskCheckpoint, CONNECTOR_STATE_KEY};
use crate::connector::Sink;
use crate::graph::{kind_of, scope_label, NodeId};
use crate::message::{CheckpointId, Message};
use crate::metrics::{names, Counter, Gauge, Metrics};
use crate::operator::{Emitter, Operator};
use crate::state::{StateOp, StateWriter, OPERATOR_STATE};
use crate::{EngineError, Result};

pub(super) struct Task {
    pub name: String,
    pub inputs: Vec<mpsc::Receiver<Message>>,
    /// For each input channel, which input of the task's first operator it
    /// brings (0 but for an operator of several inputs, such as a join).
    pub sides: Vec<usize>,
    pub ops: Vec<Stage>,
    pub sink: Option<(NodeId, Box<dyn Sink>)>,
    pub outputs: Vec<Output>,
}

/// Tells the coordinator that a task went away without finishing (stopped,
/// failed, or its inputs closed), unless it finished.
struct Farewell<'a> {
    checkpoint: Option<&'a TaskCheckpoint>,
    finished: bool,
}

impl Drop for Farewell<'_> {
    fn drop(&mut self) {
        if let (Some(c), false) = (self.checkpoint, self.finished) {
            c.send(Ack::Gone);
        }
    }
}

/// A sink's input ended while the job checkpoints: its last rows are committed
/// by a checkpoint, as every other row (Flink's final checkpoint), so that a
/// crash before that checkpoint replays them rather than writing them twice.
/// The sink answers every checkpoint triggered from now on itself (its input
/// brings no more barriers) until one completes, then commits and finishes.
async fn finish_with_checkpoint(
    node: NodeId,
    sink: &mut Box<dyn Sink>,
    c: &TaskCheckpoint,
    last_acked: CheckpointId,
    markers: &[StateOp],
) -> Result<()> {
    c.send(Ack::Finishing);
    let (mut trigger, mut completed) = (c.trigger.clone(), c.completed.clone());
    // Not a checkpoint already complete (right after a restore, the one
    // restored from): rows committed under it would be replayed from it.
    let floor = last_acked.max(*completed.borrow());
    let mut answered = None;
    loop {
        let due = *trigger.borrow_and_update();
        if due > answered.unwrap_or(floor) {
            let state = sink.pre_commit(due).await?;
            let mut ops = vec![StateOp::Put(
                crate::state::store_key(node, OPERATOR_STATE, &c.sink_key),
                state,
            )];
            ops.extend(markers.iter().cloned());
            c.send(Ack::Snapshot {
                id: due,
                from: c.from,
                ops,
                keyed_bytes: vec![],
            });
            answered = Some(due);
        }
        let done = *completed.borrow_and_update();
        if answered.is_some_and(|a| done >= a) {
            sink.commit(done).await?;
            break;
        }
        let open = tokio::select! {
            r = trigger.changed() => r.is_ok(),
            r = completed.changed() => r.is_ok(),
        };
        if !open {
            // The coordinator is gone: what is left is final.
            break;
        }
    }
    sink.finish().await
}

/// Checkpoints an operator's declared tables at barrier `id`: each writes
/// what changed to the instance's database, which then goes into the
/// checkpoint's directory as a RocksDB checkpoint (hard links to its files).
/// Returns the bytes its tables cache.
fn checkpoint_keyed(
    op: &mut dyn Operator,
    state: &Option<super::state::InstanceState>,
    checkpoint: Option<&TaskCheckpoint>,
    id: CheckpointId,
) -> Result<u64> {
    let mut cached = 0;
    for t in op.state_tables() {
        t.flush()?;
        cached += t.cached_bytes();
    }
    if let (Some(st), Some(c)) = (state, checkpoint) {
        let dir = crate::state::checkpoints::keyed_dir(&c.checkpoints_dir, id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::State(format!("cannot create '{}': {e}", dir.display())))?;
        let part = dir.join(&st.part);
        if part.exists() {
            std::fs::remove_dir_all(&part).map_err(|e| {
                EngineError::State(format!("cannot clear '{}': {e}", part.display()))
            })?;
        }
        st.backend.checkpoint_to(&part)?;
    }
    Ok(cached)
}

/// Runs the task until its inputs end (or are stopped) or an error.
pub(super) async fn run_task(
    task: Task,
    checkpoint: Option<TaskCheckpoint>,
    metrics: Metrics,
) -> Result<()> {
    let Task {
        name,
        inputs,
        sides,
        mut ops,
        mut sink,
        mut outputs,
    } = task;
    let nodes: Vec<NodeId> = ops
        .iter()
        .map(|s| s.node)
        .chain(sink.as_ref().map(|(n, _)| *n))
        .collect();
    let markers = finished_markers(nodes);
    let mut farewell = Farewell {
        checkpoint: checkpoint.as_ref(),
        finished: false,
    };
    let mut last_acked: CheckpointId = 0;
    let mut merge = Merge::new(inputs.len());
    let mut inputs = Inputs::new(inputs);
    let mut completed = match (&checkpoint, &sink) {
        (Some(c), Some(_)) => Some(c.completed.clone()),
        _ => None,
    };
    let state_gauges: Vec<Gauge> = ops
        .iter()
        .map(|s| metrics.gauge(names::STATE_SIZE_BYTES, &scope_label(&s.op.name(), s.node)))
        .collect();
    // Per operator: rows in and out, batches in (labelled `Name#node` as the
    // state gauges are); and the time spent handing messages to the next
    // task, which grows when it cannot keep up (backpressure).
    let op_label = |node: &NodeId, op: &dyn Operator| scope_label(&op.name(), *node);
    let rows_in: Vec<Counter> = ops
        .iter()
        .map(|s| metrics.counter(names::OPERATOR_ROWS_IN, &op_label(&s.node, s.op.as_ref())))
        .collect();
    let rows_out: Vec<Counter> = ops
        .iter()
        .map(|s| metrics.counter(names::OPERATOR_ROWS_OUT, &op_label(&s.node, s.op.as_ref())))
        .collect();
    let batches_in: Vec<Counter> = ops
        .iter()
        .map(|s| {
            metrics.counter(
                names::OPERATOR_BATCHES_IN,
                &op_label(&s.node, s.op.as_ref()),
            )
        })
        .collect();
    let backpressure = metrics.counter(names::BACKPRESSURE_US, kind_of(&name));
    let sink_watermark = sink.as_ref().map(|(node, s)| {
        metrics.gauge(
            names::SINK_WATERMARK_MS,
            &format!("{}#{node}", s.describe()),
        )
    });
    let mut queue: Vec<Message> = Vec::new();
    let mut next: Vec<Message> = Vec::new();
    let mut emitter = Emitter::new();
    let mut merged: Vec<Message> = Vec::new();
    let mut work: Vec<(usize, Message)> = Vec::new();
    // Where an error came from: the operator (as labelled in the metrics),
    // the sink (which names its table), or the task's outputs.
    let labels: Vec<String> = ops
        .iter()
        .map(|s| op_label(&s.node, s.op.as_ref()))
        .collect();
    let sink_label = sink.as_ref().map(|(_, s)| s.describe()).unwrap_or_default();
    let at_op = |stage: usize| {
        let (name, label) = (&name, &labels[stage]);
        move |e: EngineError| e.in_task(name, label)
    };
    let wrap = |e: EngineError| e.in_task(&name, &sink_label);
    let mut ticker = ops
        .iter()
        .filter_map(|s| s.op.processing_interval())
        .filter(|d| !d.is_zero())
        .min()
        .map(|every| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
    loop {
        // What to push down the chain: messages, each with the stage it
        // enters at (0: from the inputs; after a stage: what that stage
        // emitted on its own, on a processing-time tick), and the input of
        // the first stage that batches entering at 0 come from.
        let mut side = 0;
        tokio::select! {
            _ = processing_time(&mut ticker) => {
                for (stage, st) in ops.iter_mut().enumerate() {
                    if st.op.processing_interval().is_some() {
                        st.op.on_processing_time(&mut emitter).map_err(at_op(stage))?;
                        for out in emitter.drain() {
                            if let Message::Batch(b) = &out {
                                rows_out[stage].add(b.num_rows() as u64);
                            }
                            work.push((stage + 1, out));
                        }
                    }
                }
            }
            id = crate::checkpoint::next_completed(&mut completed) => {
                if let Some((_, s)) = sink.as_mut() {
                    s.commit(id).await.map_err(wrap)?;
                }
                continue;
            }
            m = inputs.recv(merge.blocked()) => match m {
                Some((idx, msg)) => {
                    merge.on(idx, msg, &mut merged);
                    // What `merge` passes on of one message comes from input `idx`.
                    side = sides.get(idx).copied().unwrap_or(0);
                    work.extend(merged.drain(..).map(|m| (0, m)));
                }
                // Inputs closed without End: an upstream task failed; its
                // error is reported there.
                None => return Ok(()),
            },
        };
        for (start, msg) in work.drain(..) {
            let is_end = match msg {
                Message::End => Some(Message::End),
                Message::Stop => Some(Message::Stop),
                _ => None,
            };
            let barrier = match msg {
                Message::Barrier(id) => Some(id),
                _ => None,
            };
            let mut writes: Vec<StateOp> = vec![];
            let mut keyed_bytes: Vec<(NodeId, u64)> = vec![];
            queue.push(msg);
            // Push the message through the chain of operators, one stage at a time.
            for (stage, st) in ops.iter_mut().enumerate().skip(start) {
                let (node, op, seen) = (&st.node, &mut st.op, &mut st.watermark);
                for m in queue.drain(..) {
                    let mut terminal = None;
                    match m {
                        Message::Batch(b) => {
                            rows_in[stage].add(b.num_rows() as u64);
                            batches_in[stage].add(1);
                            let input = if stage == 0 { side } else { 0 };
                            crate::time::set_current_watermark(*seen);
                            op.on_input(input, b, &mut emitter).map_err(at_op(stage))?
                        }
                        Message::Watermark(wm) => {
                            *seen = Some(wm);
                            op.on_watermark(wm, &mut emitter).map_err(at_op(stage))?
                        }
                        Message::Split(ev) => {
                            op.on_split(ev, &mut emitter).map_err(at_op(stage))?
                        }
                        Message::Idle => op.on_idle(&mut emitter).map_err(at_op(stage))?,
                        Message::Barrier(id) => {
                            let key_groups = checkpoint.as_ref().map_or(1, |c| c.key_groups);
                            let mut w = StateWriter::new(*node, key_groups, &mut writes);
                            op.snapshot(&mut w).map_err(at_op(stage))?;
                            let cached =
                                checkpoint_keyed(op.as_mut(), &st.state, checkpoint.as_ref(), id)
                                    .map_err(at_op(stage))?;
                            if let Some(state) = &st.state {
                                keyed_bytes.push((*node, state.backend.live_bytes()));
                            }
                            state_gauges[stage].set(op.state_size() + cached);
                            terminal = Some(Message::Barrier(id));
                        }
                        Message::End => {
                            op.on_end(&mut emitter).map_err(at_op(stage))?;
                            terminal = Some(Message::End);
                        }
                        Message::Stop => terminal = Some(Message::Stop),
                    }
                    for out in emitter.drain() {
                        if let Message::Batch(b) = &out {
                            rows_out[stage].add(b.num_rows() as u64);
                        }
                        next.push(out);
                    }
                    next.extend(terminal);
                }
                std::mem::swap(&mut queue, &mut next);
            }
            for m in queue.drain(..) {
                match &mut sink {
                    Some((node, sink)) => match m {
                        Message::Batch(b) => sink.write(b).await.map_err(wrap)?,
                        Message::Watermark(wm) => {
                            // The end of input (MAX) is not a time: the last real one stays.
                            if let (Some(g), true) =
                                (&sink_watermark, wm < crate::time::MAX_WATERMARK)
                            {
                                g.set(wm.max(0) as u64);
                            }
                            sink.on_watermark(wm).await.map_err(wrap)?
                        }
                        Message::Split(_) => {}
                        Message::Idle => sink.on_idle().await.map_err(wrap)?,
                        Message::Barrier(id) => {
                            let state = sink.pre_commit(id).await.map_err(wrap)?;
                            let key = checkpoint
                                .as_ref()
                                .map_or(CONNECTOR_STATE_KEY, |c| &c.sink_key);
                            writes.push(StateOp::Put(
                                crate::state::store_key(*node, OPERATOR_STATE, key),
                                state,
                            ));
                        }
                        Message::End => match &checkpoint {
                            Some(c) => finish_with_checkpoint(*node, sink, c, last_acked, &markers)
                                .await
                                .map_err(wrap)?,
                            None => sink.finish().await.map_err(wrap)?,
                        },
                        Message::Stop => sink.stop().await.map_err(wrap)?,
                    },
                    None => {
                        let started = std::time::Instant::now();
                        for out in outputs.iter_mut() {
                            if !out
                                .send(&m)
                                .await
                                .map_err(|e| e.in_task(&name, "its output"))?
                            {
                                return Ok(());
                            }
                        }
                        let waited = started.elapsed().as_micros() as u64;
                        if waited > 0 {
                            backpressure.add(waited);
                        }
                    }
                }
            }
            if let (Some(id), Some(c)) = (barrier, &checkpoint) {
                c.send(Ack::Snapshot {
                    id,
                    from: c.from,
                    ops: writes,
                    keyed_bytes,
                });
                last_acked = id;
            }
            if let Some(end) = is_end {
                if let (Message::End, Some(c)) = (end, &checkpoint) {
                    c.send(Ack::Finished {
                        from: c.from,
                        ops: markers.clone(),
                    });
                    farewell.finished = true;
                }
                return Ok(());
            }
        }
    }
}

/// Completes at the task's next processing-time tick (never without one).
async fn processing_time(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}
