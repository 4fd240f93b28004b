//! The task of one source: runs it and relays its messages to its consumers.

use tokio::sync::mpsc;

use super::CHANNEL_CAPACITY;
use crate::checkpoint::{Ack, SourceCheckpoint, TaskCheckpoint};
use crate::connector::{Source, SourceContext};
use crate::control::StopSignal;
use crate::graph::NodeId;
use crate::message::Message;
use crate::metrics::Metrics;
use crate::{EngineError, Result};

pub(super) struct SourceTask {
    pub node: NodeId,
    pub name: String,
    pub source: Box<dyn Source>,
    pub outputs: Vec<mpsc::Sender<Message>>,
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
        name,
        source,
        mut outputs,
        ..
    } = task;
    let (link, ended) = match checkpoint {
        Some((l, t)) => (Some(l), Some(t.acks)),
        None => (None, None),
    };
    let announce_end = move || {
        if let Some(acks) = ended {
            let _ = acks.send(Ack::SourceEnded);
        }
    };
    if outputs.len() == 1 {
        let tx = outputs.remove(0);
        let ctx = SourceContext::new(tx.clone(), metrics, stop.clone()).with_checkpoints(link);
        let r = source.run(ctx).await.map_err(|e| EngineError::Task {
            task: name.clone(),
            message: e.to_string(),
        });
        announce_end();
        r?;
        // Downstream may already be gone if the job is shutting down.
        let _ = tx.send(end_message(&stop)).await;
        return Ok(());
    }
    // Several consumers: relay every message to each of them.
    let (tx, mut rx) = mpsc::channel::<Message>(CHANNEL_CAPACITY);
    let relay_stop = stop.clone();
    let relay = async move {
        while let Some(msg) = rx.recv().await {
            for out in &outputs {
                if out.send(msg.clone()).await.is_err() {
                    return;
                }
            }
        }
        let end = end_message(&relay_stop);
        for out in &outputs {
            let _ = out.send(end.clone()).await;
        }
    };
    let run = async move {
        let ctx = SourceContext::new(tx, metrics, stop).with_checkpoints(link);
        let r = source.run(ctx).await;
        announce_end();
        r.map_err(|e| EngineError::Task {
            task: name.clone(),
            message: e.to_string(),
        })
    };
    let (r, ()) = tokio::join!(run, relay);
    r
}
