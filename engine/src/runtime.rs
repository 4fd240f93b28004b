//! Runs a [`JobGraph`] on tokio. Each source runs in its own task; chains of
//! operators (and the sink at their end) are fused into one task, so a batch
//! passes through filter, projection and aggregation without a channel hop.
//! Bounded channels between tasks give backpressure.

use std::pin::Pin;

use futures::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::connector::{Sink, Source, SourceContext};
use crate::control::StopSignal;
use crate::graph::{JobGraph, NodeKind};
use crate::message::{EventTime, Message};
use crate::metrics::Metrics;
use crate::operator::{Emitter, Operator};
use crate::time::MIN_WATERMARK;
use crate::{EngineError, Result};

/// Messages buffered on an edge between two tasks.
const CHANNEL_CAPACITY: usize = 16;

struct Task {
    name: String,
    inputs: Vec<mpsc::Receiver<Message>>,
    ops: Vec<Box<dyn Operator>>,
    sink: Option<Box<dyn Sink>>,
    outputs: Vec<mpsc::Sender<Message>>,
}

struct SourceTask {
    name: String,
    source: Box<dyn Source>,
    outputs: Vec<mpsc::Sender<Message>>,
}

enum Placement {
    Source(usize),
    Task(usize),
}

/// Runs the job until every source is exhausted and every sink has flushed, or
/// until a task fails (the first error is returned and the rest are cancelled).
pub async fn run_job(graph: JobGraph, metrics: Metrics) -> Result<()> {
    run_job_until(graph, metrics, StopSignal::never()).await
}

/// As [`run_job`], and also returns (after sinks have flushed) once `stop` fires:
/// sources stop reading, open windows stay unfired, sinks flush.
pub async fn run_job_until(graph: JobGraph, metrics: Metrics, stop: StopSignal) -> Result<()> {
    let n = graph.nodes.len();
    let mut consumers = vec![0usize; n];
    for node in &graph.nodes {
        for &i in &node.inputs {
            if i >= n {
                return Err(EngineError::Graph(format!(
                    "node '{}' reads from unknown node {i}",
                    node.name
                )));
            }
            consumers[i] += 1;
        }
    }
    let mut placement: Vec<Option<Placement>> = (0..n).map(|_| None).collect();
    let mut tasks: Vec<Task> = vec![];
    let mut sources: Vec<SourceTask> = vec![];
    for (id, node) in graph.nodes.into_iter().enumerate() {
        if consumers[id] == 0 && !matches!(node.kind, NodeKind::Sink(_)) {
            return Err(EngineError::Graph(format!(
                "'{}' has no consumer",
                node.name
            )));
        }
        // Fuse into the input's task when this node is that input's only consumer.
        let fused = match (&node.kind, node.inputs.as_slice()) {
            (NodeKind::Operator(_) | NodeKind::Sink(_), [input]) if consumers[*input] == 1 => {
                match placement[*input] {
                    Some(Placement::Task(t)) if tasks[t].sink.is_none() => Some(t),
                    _ => None,
                }
            }
            _ => None,
        };
        if let NodeKind::Source(source) = node.kind {
            sources.push(SourceTask {
                name: node.name,
                source,
                outputs: vec![],
            });
            placement[id] = Some(Placement::Source(sources.len() - 1));
            continue;
        }
        let t = match fused {
            Some(t) => t,
            None => {
                let mut inputs = vec![];
                for &i in &node.inputs {
                    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                    match placement[i] {
                        Some(Placement::Source(s)) => sources[s].outputs.push(tx),
                        Some(Placement::Task(t)) => tasks[t].outputs.push(tx),
                        None => {
                            return Err(EngineError::Graph(format!(
                                "node {i} is used before it is defined"
                            )))
                        }
                    }
                    inputs.push(rx);
                }
                tasks.push(Task {
                    name: node.name.clone(),
                    inputs,
                    ops: vec![],
                    sink: None,
                    outputs: vec![],
                });
                tasks.len() - 1
            }
        };
        match node.kind {
            NodeKind::Operator(op) => tasks[t].ops.push(op),
            NodeKind::Sink(sink) => tasks[t].sink = Some(sink),
            NodeKind::Union | NodeKind::Source(_) => {}
        }
        placement[id] = Some(Placement::Task(t));
    }

    let mut set: JoinSet<Result<()>> = JoinSet::new();
    for s in sources {
        let metrics = metrics.clone();
        set.spawn(run_source(s, metrics, stop.clone()));
    }
    for t in tasks {
        set.spawn(run_task(t));
    }
    let mut first_err = None;
    while let Some(joined) = set.join_next().await {
        let res = match joined {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(EngineError::Task {
                task: "runtime".into(),
                message: e.to_string(),
            }),
        };
        if let Err(e) = res {
            if first_err.is_none() {
                first_err = Some(e);
                set.abort_all();
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn end_message(stop: &StopSignal) -> Message {
    if stop.is_stopped() {
        Message::Stop
    } else {
        Message::End
    }
}

async fn run_source(task: SourceTask, metrics: Metrics, stop: StopSignal) -> Result<()> {
    let SourceTask {
        name,
        source,
        mut outputs,
    } = task;
    if outputs.len() == 1 {
        let tx = outputs.remove(0);
        source
            .run(SourceContext::new(tx.clone(), metrics, stop.clone()))
            .await
            .map_err(|e| EngineError::Task {
                task: name.clone(),
                message: e.to_string(),
            })?;
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
        let r = source.run(SourceContext::new(tx, metrics, stop)).await;
        r.map_err(|e| EngineError::Task {
            task: name.clone(),
            message: e.to_string(),
        })
    };
    let (r, ()) = tokio::join!(run, relay);
    r
}

type Tagged = Pin<Box<dyn Stream<Item = (usize, Message)> + Send>>;

fn tagged(idx: usize, rx: mpsc::Receiver<Message>) -> Tagged {
    Box::pin(stream::unfold(rx, move |mut rx| async move {
        rx.recv().await.map(|m| ((idx, m), rx))
    }))
}

/// Merges the inputs of a task: batches pass as they come; the watermark is the
/// minimum over the inputs that are not idle; `End` once every input has ended
/// (`Stop` if any of them was stopped).
struct Merge {
    watermarks: Vec<EventTime>,
    ended: Vec<bool>,
    idle: Vec<bool>,
    stopped: bool,
    emitted: EventTime,
}

impl Merge {
    fn new(n: usize) -> Self {
        Self {
            watermarks: vec![MIN_WATERMARK; n],
            ended: vec![false; n],
            idle: vec![false; n],
            stopped: false,
            emitted: MIN_WATERMARK,
        }
    }

    fn on(&mut self, idx: usize, msg: Message) -> Option<Message> {
        match msg {
            Message::Batch(b) => {
                self.idle[idx] = false;
                Some(Message::Batch(b))
            }
            Message::Watermark(wm) => {
                self.idle[idx] = false;
                self.watermarks[idx] = self.watermarks[idx].max(wm);
                self.advance()
            }
            // Split ids are only meaningful on a source's own edge.
            Message::Split(ev) => (self.ended.len() == 1).then_some(Message::Split(ev)),
            Message::Idle => {
                self.idle[idx] = true;
                if self.idle.iter().all(|i| *i) {
                    Some(Message::Idle)
                } else {
                    self.advance()
                }
            }
            Message::End | Message::Stop => {
                self.stopped |= matches!(msg, Message::Stop);
                self.ended[idx] = true;
                if self.ended.iter().all(|e| *e) {
                    Some(if self.stopped {
                        Message::Stop
                    } else {
                        Message::End
                    })
                } else {
                    // An ended input no longer holds the watermark back.
                    self.watermarks[idx] = EventTime::MAX;
                    self.advance()
                }
            }
        }
    }

    fn advance(&mut self) -> Option<Message> {
        let min = self
            .watermarks
            .iter()
            .zip(&self.idle)
            .filter(|(_, idle)| !**idle)
            .map(|(wm, _)| *wm)
            .min()?;
        if min > self.emitted {
            self.emitted = min;
            Some(Message::Watermark(min))
        } else {
            None
        }
    }
}

async fn run_task(task: Task) -> Result<()> {
    let Task {
        name,
        inputs,
        mut ops,
        mut sink,
        outputs,
    } = task;
    let mut merge = Merge::new(inputs.len());
    let mut input = stream::select_all(inputs.into_iter().enumerate().map(|(i, rx)| tagged(i, rx)));
    let mut queue: Vec<Message> = Vec::new();
    let mut next: Vec<Message> = Vec::new();
    let mut emitter = Emitter::new();
    let wrap = |e: EngineError| EngineError::Task {
        task: name.clone(),
        message: e.to_string(),
    };
    while let Some((idx, msg)) = input.next().await {
        let Some(msg) = merge.on(idx, msg) else {
            continue;
        };
        let is_end = matches!(msg, Message::End | Message::Stop);
        queue.push(msg);
        // Push the message through the chain of operators, one stage at a time.
        for op in ops.iter_mut() {
            for m in queue.drain(..) {
                let mut terminal = None;
                match m {
                    Message::Batch(b) => op.on_batch(b, &mut emitter).map_err(wrap)?,
                    Message::Watermark(wm) => op.on_watermark(wm, &mut emitter).map_err(wrap)?,
                    Message::Split(ev) => op.on_split(ev, &mut emitter).map_err(wrap)?,
                    Message::Idle => op.on_idle(&mut emitter).map_err(wrap)?,
                    Message::End => {
                        op.on_end(&mut emitter).map_err(wrap)?;
                        terminal = Some(Message::End);
                    }
                    Message::Stop => terminal = Some(Message::Stop),
                }
                next.extend(emitter.drain());
                next.extend(terminal);
            }
            std::mem::swap(&mut queue, &mut next);
        }
        for m in queue.drain(..) {
            match &mut sink {
                Some(sink) => match m {
                    Message::Batch(b) => sink.write(b).await.map_err(wrap)?,
                    Message::Watermark(wm) => sink.on_watermark(wm).await.map_err(wrap)?,
                    Message::Split(_) | Message::Idle => {}
                    Message::End | Message::Stop => sink.finish().await.map_err(wrap)?,
                },
                None => {
                    for out in &outputs {
                        if out.send(m.clone()).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
        }
        if is_end {
            return Ok(());
        }
    }
    // Inputs closed without End: an upstream task failed; its error is reported there.
    Ok(())
}
