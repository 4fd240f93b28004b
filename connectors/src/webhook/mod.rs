//! The `webhook` sink: each row (or batch of `sink.batch.size` rows) is POSTed
//! to `url` as JSON, as CloudEvents, or through a body template; with headers
//! (`headers.<Name>`) and bearer auth. Delivery survives flaky receivers and
//! restarts:
//! - requests are sent in order by a delivery task; network errors, timeouts,
//!   5xx and 429 (honouring `Retry-After`) are retried with exponential
//!   backoff and full jitter; other 4xx answers go to the sink's dead-letter
//!   output (`sink.dlq.*`, see [`crate::dlq`]) or, without one, are logged and
//!   counted; so does a row JSON cannot carry, the other rows going on;
//! - requests not yet acknowledged are the sink's outbox: stored with every
//!   checkpoint (in the state directory) and sent again after a restart;
//! - every request carries a deterministic `Idempotency-Key` (and each
//!   CloudEvent its row's id), so a receiver can drop the duplicates that
//!   retries and restarts produce.

pub mod body;

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use vigil_engine::connector::{ConnectorFactory, Sink, SinkState, Source, TableSpec};
use vigil_engine::message::CheckpointId;
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::time::parse_duration;
use vigil_engine::{EngineError, Result};

use self::body::{encode_rows, Body};
use crate::dlq::{is_sink_dlq_option, DeadLetter, Position};
use crate::error::connector_error;
use crate::row_id::RowIds;
use crate::sink_rejects::SinkRejects;

/// Factory for `'connector' = 'webhook'`.
pub struct WebhookConnector;

const OPTIONS: &[&str] = &[
    "url",
    "format",
    "body.template",
    "sink.batch.size",
    "auth.bearer",
    "timeout",
    "sink.retry.max-backoff",
    "sink.retry.max-attempts",
    "cloudevents.source",
    "cloudevents.type",
];

/// Requests waiting beyond this many hold the job back (backpressure).
const MAX_OUTBOX: usize = 10_000;
/// The first retry's backoff ceiling.
const BASE_BACKOFF: Duration = Duration::from_millis(50);

/// One request: its idempotency key and body.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Request {
    key: String,
    body: String,
    content_type: String,
}

/// How requests are sent.
struct Delivery {
    table: String,
    url: String,
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
    max_backoff: Duration,
    max_attempts: u32,
    retries: Counter,
    failures: Counter,
}

/// The outbox shared by the sink and its delivery task.
#[derive(Default)]
struct Outbox {
    queue: Mutex<VecDeque<Request>>,
    changed: Notify,
    /// A failure the job must stop for (a dead letter that could not be stored).
    fatal: Mutex<Option<String>>,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Request>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What one attempt came to.
enum Outcome {
    Delivered,
    Retry(Option<Duration>, String),
    Reject(u16, String),
}

impl Delivery {
    async fn attempt(&self, req: &Request) -> Outcome {
        let mut call = self
            .agent
            .post(&self.url)
            .set("Content-Type", &req.content_type)
            .set("Idempotency-Key", &req.key);
        for (k, v) in &self.headers {
            call = call.set(k, v);
        }
        let body = req.body.clone();
        let sent =
            tokio::task::spawn_blocking(move || call.send_string(&body).map_err(Box::new)).await;
        match sent {
            Err(e) => Outcome::Retry(None, format!("the request task failed: {e}")),
            Ok(Ok(_)) => Outcome::Delivered,
            Ok(Err(e)) => match *e {
                ureq::Error::Status(429, r) => {
                    let after = r
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    Outcome::Retry(after, "429 Too Many Requests".into())
                }
                ureq::Error::Status(code, r) if code >= 500 => {
                    Outcome::Retry(None, format!("{code} {}", r.status_text()))
                }
                ureq::Error::Status(code, r) => {
                    let text = r.into_string().unwrap_or_default();
                    Outcome::Reject(code, text.chars().take(500).collect())
                }
                e => Outcome::Retry(None, e.to_string()),
            },
        }
    }

    /// Full jitter: a random wait up to `base * 2^attempt`, at most the cap.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = BASE_BACKOFF
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(attempt);
        let r = h.finish() % (ceiling.as_millis() as u64 + 1);
        Duration::from_millis(r)
    }
}

/// The sink's rejected rows and requests, shared with its delivery task.
type Rejects = Arc<tokio::sync::Mutex<SinkRejects>>;

/// Sends the outbox's requests in order until the outbox is dropped.
async fn deliver(outbox: Arc<Outbox>, d: Delivery, rejects: Rejects) {
    loop {
        let next = outbox.lock().front().cloned();
        let Some(req) = next else {
            if Arc::strong_count(&outbox) == 1 {
                return;
            }
            tokio::select! {
                _ = outbox.changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            continue;
        };
        let mut attempt = 0u32;
        let rejected = loop {
            match d.attempt(&req).await {
                Outcome::Delivered => break None,
                Outcome::Reject(code, text) => break Some((code, text)),
                Outcome::Retry(after, why) => {
                    attempt += 1;
                    d.retries.add(1);
                    if d.max_attempts > 0 && attempt >= d.max_attempts {
                        break Some((0, format!("gave up after {attempt} attempts: {why}")));
                    }
                    if attempt <= 3 || attempt.is_multiple_of(20) {
                        tracing::warn!(table = %d.table, url = %d.url, attempt, "webhook delivery failed, retrying: {why}");
                    }
                    tokio::time::sleep(after.unwrap_or_else(|| d.backoff(attempt))).await;
                }
            }
        };
        if let Some((status, text)) = rejected {
            d.failures.add(1);
            let error = format!("rejected with {status}: {text}");
            tracing::error!(table = %d.table, url = %d.url, "webhook request {error}");
            let letter = DeadLetter {
                position: Position::Request {
                    url: d.url.clone(),
                    status,
                },
                error: &error,
                key: Some(req.key.as_bytes()),
                record: req.body.as_bytes(),
                headers: vec![],
            };
            let sent = rejects.lock().await.send(&[letter]).await;
            if let Err(e) = sent {
                *outbox.fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                return;
            }
        }
        outbox.lock().pop_front();
        outbox.changed.notify_waiters();
    }
}

/// Writes rows to a webhook.
struct WebhookSink {
    table: String,
    body: Body,
    ids: RowIds,
    batch: usize,
    outbox: Arc<Outbox>,
    delivery: Option<Delivery>,
    /// The delivery task, once started: it belongs to the job, so it is
    /// stopped with the sink (a stopped job must not keep calling the receiver).
    task: Option<tokio::task::AbortHandle>,
    rejects: Rejects,
    rows: Counter,
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl WebhookSink {
    fn error(&self, message: String) -> EngineError {
        EngineError::Connector {
            connector: "webhook".into(),
            table: self.table.clone(),
            message,
        }
    }

    /// Starts the delivery task (once, inside the job's runtime).
    fn start(&mut self) {
        if let Some(d) = self.delivery.take() {
            let task = tokio::spawn(deliver(self.outbox.clone(), d, self.rejects.clone()));
            self.task = Some(task.abort_handle());
        }
    }

    fn check(&self) -> Result<()> {
        match self
            .outbox
            .fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            Some(e) => Err(self.error(format!(
                "a rejected request could not be dead-lettered: {e}"
            ))),
            None => Ok(()),
        }
    }

    /// Waits until at most `left` requests are waiting.
    async fn drain_to(&self, left: usize) -> Result<()> {
        loop {
            self.check()?;
            if self.outbox.lock().len() <= left {
                return Ok(());
            }
            tokio::select! {
                _ = self.outbox.changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}

#[async_trait]
impl Sink for WebhookSink {
    fn describe(&self) -> String {
        format!("Webhook({})", self.table)
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.start();
        self.check()?;
        let (rows, failed) = encode_rows(&batch, &self.ids).map_err(|e| self.error(e))?;
        self.rejects.lock().await.reject(&batch, &failed).await?;
        {
            let mut q = self.outbox.lock();
            for chunk in rows.chunks(self.batch.max(1)) {
                let (body, content_type) = self.body.make(chunk);
                let key = if chunk.len() == 1 {
                    chunk[0].id.clone()
                } else {
                    let ids: Vec<&[u8]> = chunk.iter().map(|r| r.id.as_bytes()).collect();
                    let mut buf = [0u8; 32];
                    self.ids.id(&ids, &mut buf).to_string()
                };
                q.push_back(Request {
                    key,
                    body,
                    content_type: content_type.to_string(),
                });
            }
        }
        self.outbox.changed.notify_waiters();
        self.rows.add(rows.len() as u64);
        self.drain_to(MAX_OUTBOX).await
    }

    async fn finish(&mut self) -> Result<()> {
        self.start();
        self.drain_to(0).await
    }

    async fn stop(&mut self) -> Result<()> {
        // What is not delivered is in the last checkpoint's outbox, or is
        // written again when the job replays from it.
        if let Some(t) = self.task.take() {
            t.abort();
        }
        Ok(())
    }

    async fn pre_commit(&mut self, _id: CheckpointId) -> Result<Vec<u8>> {
        self.check()?;
        let pending: Vec<Request> = self.outbox.lock().iter().cloned().collect();
        serde_json::to_vec(&pending).map_err(|e| self.error(e.to_string()))
    }

    async fn restore(&mut self, states: &[SinkState]) -> Result<()> {
        let mut pending: Vec<Request> = vec![];
        for s in states.iter().filter(|s| !s.bytes.is_empty()) {
            let outbox: Vec<Request> = serde_json::from_slice(&s.bytes)
                .map_err(|e| self.error(format!("cannot read the stored outbox: {e}")))?;
            pending.extend(outbox);
        }
        if !pending.is_empty() {
            tracing::info!(table = %self.table, requests = pending.len(), "sending the outbox of the checkpoint again");
        }
        let mut q = self.outbox.lock();
        for r in pending.into_iter().rev() {
            q.push_front(r);
        }
        Ok(())
    }
}

impl ConnectorFactory for WebhookConnector {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn create_source(&self, spec: &TableSpec, _metrics: &Metrics) -> Result<Box<dyn Source>> {
        Err(connector_error(
            "webhook",
            spec,
            "the webhook connector is a sink only",
        ))
    }

    fn accepts_updates(&self, _spec: &TableSpec) -> bool {
        true
    }

    fn create_sink(&self, spec: &TableSpec, metrics: &Metrics) -> Result<Box<dyn Sink>> {
        let err = |m: String| connector_error("webhook", spec, m);
        let unknown: Vec<&String> = spec
            .options
            .keys()
            .filter(|k| {
                *k != "connector"
                    && !OPTIONS.contains(&k.as_str())
                    && !k.starts_with("headers.")
                    && !is_sink_dlq_option(k)
            })
            .collect();
        if !unknown.is_empty() {
            return Err(err(format!(
                "unsupported option(s) {unknown:?}; supported: {}, headers.<Name>, sink.dlq.*",
                OPTIONS.join(", ")
            )));
        }
        let url = spec.required("webhook", "url")?.to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(format!(
                "'url' = '{url}' is not an http:// or https:// URL"
            )));
        }
        let job = crate::row_id::job_name(spec).to_string();
        let body = match (
            spec.option("body.template"),
            spec.option("format").unwrap_or("json"),
        ) {
            (Some(t), _) => Body::Template(t.to_string()),
            (None, "json") => Body::Json,
            (None, "cloudevents") => Body::CloudEvents {
                source: spec
                    .option("cloudevents.source")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("vigil/{job}")),
                kind: spec
                    .option("cloudevents.type")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("vigil.{}", spec.name)),
            },
            (None, f) => return Err(err(format!("'format' = '{f}': use json or cloudevents"))),
        };
        let duration = |key: &str, default: Duration| -> Result<Duration> {
            match spec.option(key) {
                None => Ok(default),
                Some(v) => parse_duration(v)
                    .ok_or_else(|| err(format!("invalid '{key}' = '{v}'; write it like '10 s'"))),
            }
        };
        let number = |key: &str, default: u64| -> Result<u64> {
            match spec.option(key) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| err(format!("'{key}' must be a whole number, not '{v}'"))),
            }
        };
        let mut headers: Vec<(String, String)> = spec
            .options
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("headers.")
                    .map(|h| (h.to_string(), v.clone()))
            })
            .collect();
        if let Some(token) = spec.option("auth.bearer") {
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        let timeout = duration("timeout", Duration::from_secs(10))?;
        let delivery = Delivery {
            table: spec.name.clone(),
            url,
            headers,
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
            max_backoff: duration("sink.retry.max-backoff", Duration::from_secs(30))?,
            max_attempts: number("sink.retry.max-attempts", 0)? as u32,
            retries: metrics.counter(names::SINK_RETRIES, &spec.name),
            failures: metrics.counter(names::SINK_DELIVERY_FAILURES, &spec.name),
        };
        let rejects = Arc::new(tokio::sync::Mutex::new(SinkRejects::new(spec, metrics)?));
        Ok(Box::new(WebhookSink {
            table: spec.name.clone(),
            body,
            ids: RowIds::new(&job, &spec.name),
            batch: number("sink.batch.size", 1)?.max(1) as usize,
            outbox: Arc::new(Outbox::default()),
            delivery: Some(delivery),
            task: None,
            rejects,
            rows: metrics.counter(names::SINK_ROWS, &spec.name),
        }))
    }
}
