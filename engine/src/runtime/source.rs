//! The task of one source: runs it and relays its messages to its consumers.

use tokio::sync::mpsc;

use super::exchange::Output;
use super::CHANNEL_CAPACITY;
use crate::checkpoint::{
    connector_key, finished_markers, subtask_finished_key, Ack, SourceCheckpoint, TaskCheckpoint,
};
use crate::connector::{FinalPosition, Source, SourceContext};
use crate::control::StopSignal;
use crate::graph::NodeId;
use crate::message::Message;
use crate::metrics::Metrics;
use crate::state::{store_key, StateOp, OPERATOR_STATE};
use crate::Result;

pub(super) struct SourceTask {
    pub node: NodeId,
    pub name: String,
    pub source: Box<dyn Source>,
    pub outputs: Vec<Output>,
    /// Which subtask of how many, when the source runs as several.
    pub subtask: Option<(usize, usize)>,
}

/// What a source that reached the end leaves for the checkpoints: the
/// node's marker, or, for one subtask of several, its own marker and the
/// position it ended at.
fn end_markers(
    node: NodeId,
    subtask: Option<(usize, usize)>,
    last: &FinalPosition,
) -> Vec<StateOp> {
    let Some((i, n)) = subtask else {
        return finished_markers([node]);
    };
    let mut ops = vec![StateOp::Put(
        store_key(node, OPERATOR_STATE, &subtask_finished_key(i)),
        (n as u32).to_be_bytes().to_vec(),
    )];
    if let Some(state) = last.lock().ok().and_then(|mut s| s.take()) {
        ops.push(StateOp::Put(
            store_key(node, OPERATOR_STATE, &connector_key(Some(i))),
            state,
        ));
    }
    ops
}

/// A source that had reached the end of its input before the checkpoint the
/// job resumed from: it ends at once.
pub(super) struct Finished;

#[async_trait::async_trait]
impl Source for Finished {
    fn describe(&self) -> String {
        "Finished".into()
    }

    async fn run(self: Box<Self>, _ctx: SourceContext) -> Result<()> {
        Ok(())
    }

    fn supports_checkpoints(&self) -> bool {
        true
    }
}

fn end_message(stop: &StopSignal) -> Message {
    if stop.is_stopped() {
        Message::Stop
    } else {
        Message::End
    }
}

pub(super) async fn run_source(
    task: SourceTask,
    metrics: Metrics,
    stop: StopSignal,
    checkpoint: Option<(SourceCheckpoint, TaskCheckpoint)>,
) -> Result<()> {
    let SourceTask {
        node,
        name,
        source,
        mut outputs,
        subtask,
    } = task;
    let last = FinalPosition::default();
    let (link, coordinator) = match checkpoint {
        Some((l, t)) => (Some(l), Some(t)),
        None => (None, None),
    };
    // The end of a bounded input finishes the source (checkpoints go on
    // without it); a stop or a failure ends the checkpoints.
    let end_stop = stop.clone();
    let end_position = last.clone();
    let announce_end = move |ok: bool| {
        if let Some(c) = coordinator {
            c.send(if ok && !end_stop.is_stopped() {
                Ack::Finished {
                    from: c.from,
                    ops: end_markers(node, subtask, &end_position),
                }
            } else {
                Ack::Gone
            });
        }
    };
    if let [Output::Forward(tx)] = outputs.as_slice() {
        let tx = tx.clone();
        let ctx = SourceContext::new(tx.clone(), metrics, stop.clone())
            .with_checkpoints(link)
            .with_final_position(last);
        let at = source.describe();
        let r = source.run(ctx).await.map_err(|e| e.in_task(&name, &at));
        announce_end(r.is_ok());
        r?;
        // Downstream may already be gone if the job is shutting down.
        let _ = tx.send(end_message(&stop)).await;
        return Ok(());
    }
    // Several consumers, or a keyed exchange: relay every message to each.
    let (tx, mut rx) = mpsc::channel::<Message>(CHANNEL_CAPACITY);
    let relay_stop = stop.clone();
    let relay = async move {
        while let Some(msg) = rx.recv().await {
            for out in outputs.iter_mut() {
                if !out.send(&msg).await? {
                    return Ok(());
                }
            }
        }
        let end = end_message(&relay_stop);
        for out in outputs.iter_mut() {
            let _ = out.send(&end).await;
        }
        Ok(())
    };
    let run = async move {
        let ctx = SourceContext::new(tx, metrics, stop)
            .with_checkpoints(link)
            .with_final_position(last);
        let at = source.describe();
        let r = source.run(ctx).await;
        announce_end(r.is_ok());
        r.map_err(|e| e.in_task(&name, &at))
    };
    let (r, relayed): (Result<()>, Result<()>) = tokio::join!(run, relay);
    // A routing error stops the relay, and so the source: report the cause.
    relayed.and(r)
}
