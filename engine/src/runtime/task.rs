//! A task: a chain of operators fused with the sink (or the channels) at its
//! end, fed by the merge of its inputs.

use std::pin::Pin;

use futures::stream::{self, Stream, StreamExt};
use tokio::sync::{mpsc, watch};

use super::exchange::Output;
use super::merge::Merge;
use crate::checkpoint::{Ack, TaskCheckpoint, CONNECTOR_STATE_KEY};
use crate::connector::Sink;
use crate::graph::NodeId;
use crate::message::{CheckpointId, Message};
use crate::metrics::{names, Counter, Gauge, Metrics};
use crate::operator::{Emitter, Operator};
use crate::state::{StateOp, StateWriter, OPERATOR_STATE};
use crate::{EngineError, Result};

pub(super) struct Task {
    pub name: String,
    pub inputs: Vec<mpsc::Receiver<Message>>,
    pub ops: Vec<(NodeId, Box<dyn Operator>)>,
    pub sink: Option<(NodeId, Box<dyn Sink>)>,
    pub outputs: Vec<Output>,
}

type Tagged = Pin<Box<dyn Stream<Item = (usize, Message)> + Send>>;

fn tagged(idx: usize, rx: mpsc::Receiver<Message>) -> Tagged {
    Box::pin(stream::unfold(rx, move |mut rx| async move {
        rx.recv().await.map(|m| ((idx, m), rx))
    }))
}

/// The next completed checkpoint (pends forever without one to wait for).
async fn next_completed(rx: &mut Option<watch::Receiver<CheckpointId>>) -> CheckpointId {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => *r.borrow_and_update(),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
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
        mut ops,
        mut sink,
        mut outputs,
    } = task;
    let mut merge = Merge::new(inputs.len());
    let mut input = stream::select_all(inputs.into_iter().enumerate().map(|(i, rx)| tagged(i, rx)));
    let mut completed = match (&checkpoint, &sink) {
        (Some(c), Some(_)) => Some(c.completed.clone()),
        _ => None,
    };
    let state_gauges: Vec<Gauge> = ops
        .iter()
        .map(|(node, op)| {
            let n = op.name();
            let short = n.split('(').next().unwrap_or(&n);
            metrics.gauge(names::STATE_SIZE_BYTES, &format!("{short}#{node}"))
        })
        .collect();
    // Per operator: rows in and out, batches in (labelled `Name#node` as the
    // state gauges are); and the time spent handing messages to the next
    // task, which grows when it cannot keep up (backpressure).
    let op_label = |node: &NodeId, op: &dyn Operator| {
        let n = op.name();
        format!("{}#{node}", n.split('(').next().unwrap_or(&n))
    };
    let rows_in: Vec<Counter> = ops
        .iter()
        .map(|(node, op)| metrics.counter(names::OPERATOR_ROWS_IN, &op_label(node, op.as_ref())))
        .collect();
    let rows_out: Vec<Counter> = ops
        .iter()
        .map(|(node, op)| metrics.counter(names::OPERATOR_ROWS_OUT, &op_label(node, op.as_ref())))
        .collect();
    let batches_in: Vec<Counter> = ops
        .iter()
        .map(|(node, op)| metrics.counter(names::OPERATOR_BATCHES_IN, &op_label(node, op.as_ref())))
        .collect();
    let backpressure = metrics.counter(
        names::BACKPRESSURE_US,
        name.split('(').next().unwrap_or(&name),
    );
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
    let wrap = |e: EngineError| EngineError::Task {
        task: name.clone(),
        message: e.to_string(),
    };
    loop {
        let (idx, msg) = match merge.take_released() {
            Some(m) => m,
            None => tokio::select! {
                id = next_completed(&mut completed) => {
                    if let Some((_, s)) = sink.as_mut() {
                        s.commit(id).await.map_err(wrap)?;
                    }
                    continue;
                }
                m = input.next() => match m {
                    Some(m) => m,
                    // Inputs closed without End: an upstream task failed; its
                    // error is reported there.
                    None => return Ok(()),
                },
            },
        };
        merge.on(idx, msg, &mut merged);
        for msg in merged.drain(..) {
            let is_end = matches!(msg, Message::End | Message::Stop);
            let barrier = match msg {
                Message::Barrier(id) => Some(id),
                _ => None,
            };
            let mut writes: Vec<StateOp> = vec![];
            queue.push(msg);
            // Push the message through the chain of operators, one stage at a time.
            for (stage, (node, op)) in ops.iter_mut().enumerate() {
                for m in queue.drain(..) {
                    let mut terminal = None;
                    match m {
                        Message::Batch(b) => {
                            rows_in[stage].add(b.num_rows() as u64);
                            batches_in[stage].add(1);
                            op.on_batch(b, &mut emitter).map_err(wrap)?
                        }
                        Message::Watermark(wm) => {
                            op.on_watermark(wm, &mut emitter).map_err(wrap)?
                        }
                        Message::Split(ev) => op.on_split(ev, &mut emitter).map_err(wrap)?,
                        Message::Idle => op.on_idle(&mut emitter).map_err(wrap)?,
                        Message::Barrier(id) => {
                            let key_groups = checkpoint.as_ref().map_or(1, |c| c.key_groups);
                            let mut w = StateWriter::new(*node, key_groups, &mut writes);
                            op.snapshot(&mut w).map_err(wrap)?;
                            state_gauges[stage].set(op.state_size());
                            terminal = Some(Message::Barrier(id));
                        }
                        Message::End => {
                            op.on_end(&mut emitter).map_err(wrap)?;
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
                        Message::Split(_) | Message::Idle => {}
                        Message::Barrier(id) => {
                            let state = sink.pre_commit(id).await.map_err(wrap)?;
                            writes.push(StateOp::Put(
                                crate::state::store_key(*node, OPERATOR_STATE, CONNECTOR_STATE_KEY),
                                state,
                            ));
                        }
                        Message::End => sink.finish().await.map_err(wrap)?,
                        Message::Stop => sink.stop().await.map_err(wrap)?,
                    },
                    None => {
                        let started = std::time::Instant::now();
                        for out in outputs.iter_mut() {
                            if !out.send(&m).await.map_err(wrap)? {
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
                // The coordinator may be gone if the job is shutting down.
                let _ = c.acks.send(Ack::Snapshot { id, ops: writes });
            }
            if is_end {
                return Ok(());
            }
        }
    }
}
