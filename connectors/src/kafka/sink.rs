//! The Kafka sink: each row becomes a record whose value is the row as JSON
//! (metadata columns left out), whose key is the `key.fields` as JSON, and whose
//! timestamp is the `timestamp` metadata column if there is one. Delivery is
//! at-least-once: librdkafka retries, `finish` waits for every record to be
//! acknowledged, and a record that cannot be delivered fails the job. Each
//! record then carries a deterministic row id in the `vigil-row-id` header
//! (see [`crate::row_id`]), so a consumer can drop the duplicates a retry or a
//! restart from a checkpoint writes. With `'sink.delivery-guarantee' =
//! 'exactly-once'` rows go out in one transaction per checkpoint instead (see
//! [`super::transactional`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, cast_with_options, filter_record_batch, CastOptions};
use datafusion::arrow::datatypes::{
    DataType, Field, Int8Type, Schema, TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use vigil_engine::changelog::{self, RowKind};
use vigil_engine::connector::{Share, Sink, SinkState, TableSpec};
use vigil_engine::message::CheckpointId;
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::{EngineError, Result};

use super::client::{client_config, flush_producer, DeliveryContext};
use super::layout::{headers_type, Meta};
use super::options::{KafkaOptions, ValueFields};
use super::transactional::{
    decode_pending, encode_pending, Pending, Transactions, TxnClients, TXN_TIMEOUT,
};
use crate::format::cloudevents;
use crate::format::encode::{RecordEncoder, Records};
use crate::format::{Format, Part};
use crate::json::encode::RowError;
use crate::row_id::{RowIds, ROW_ID_HEADER};
use crate::sink_rejects::{merge, SinkRejects};

/// Writes rows to one topic.
pub struct KafkaSink {
    table: String,
    topic: String,
    producer: ThreadedProducer<DeliveryContext>,
    value_cols: Vec<usize>,
    value_schema: Arc<Schema>,
    key_cols: Vec<usize>,
    key_schema: Arc<Schema>,
    timestamp_col: Option<usize>,
    headers_col: Option<usize>,
    /// The `__row_kind` column of an updating result (an upsert sink): `-U`
    /// rows are skipped, `-D` rows become tombstones (a key, no value).
    kind_col: Option<usize>,
    fixed_partition: Option<i32>,
    value_encoder: RecordEncoder,
    key_encoder: Option<RecordEncoder>,
    values: Records,
    keys: Records,
    /// Set for at-least-once delivery.
    row_ids: Option<RowIds>,
    /// Set for exactly-once delivery.
    txn: Option<Transactions>,
    /// Which process of a job running as several this is (0 otherwise).
    share: usize,
    rows: Counter,
    /// Rows the formats cannot carry: to `sink.dlq.*`, or logged.
    rejects: SinkRejects,
    /// Failed deliveries, as a metric (the context counts them as they come).
    failures: Counter,
    failures_seen: u64,
}

impl KafkaSink {
    /// A sink for `spec` with parsed options.
    pub fn new(spec: &TableSpec, opts: KafkaOptions, metrics: &Metrics) -> Result<Self> {
        let err = |m: String| EngineError::Connector {
            connector: "kafka".into(),
            table: spec.name.clone(),
            message: m,
        };
        if opts.topics.len() != 1 {
            return Err(err("a Kafka sink writes to exactly one 'topic'".into()));
        }
        let fixed_partition = match spec.option("sink.partitioner").unwrap_or("default") {
            // Flink's round-robin spreads keyless records over the partitions,
            // as Kafka's own partitioner does for them.
            "default" | "round-robin" => None,
            "fixed" => Some(0),
            other => {
                return Err(err(format!(
                    "not supported yet: 'sink.partitioner' = '{other}'; supported: default, fixed, round-robin"
                )))
            }
        };
        let mut value_cols = vec![];
        let mut key_cols = vec![];
        let mut timestamp_col = None;
        let mut headers_col = None;
        let mut key_fields = vec![];
        let kind_col = changelog::is_updating(&spec.schema).then(|| spec.schema.fields().len() - 1);
        for (i, f) in spec.schema.fields().iter().enumerate() {
            if Some(i) == kind_col {
                continue;
            }
            if let Some(key) = spec.metadata.get(f.name()) {
                match Meta::from_key(key) {
                    Some(Meta::Timestamp) => timestamp_col = Some(i),
                    Some(Meta::Headers) => headers_col = Some(i),
                    _ => return Err(err(format!("metadata '{key}' cannot be written"))),
                }
                continue;
            }
            if opts.key_fields.iter().any(|k| k == f.name()) {
                key_cols.push(i);
                let name = f
                    .name()
                    .strip_prefix(opts.key_prefix.as_str())
                    .unwrap_or(f.name());
                key_fields.push(Field::new(name, f.data_type().clone(), true));
                if opts.value_fields == ValueFields::ExceptKey {
                    continue;
                }
            }
            value_cols.push(i);
        }
        for k in &opts.key_fields {
            if spec.schema.field_with_name(k).is_err() {
                return Err(err(format!(
                    "'key.fields' names '{k}', which is not a column of the table"
                )));
            }
        }
        let value_schema = Arc::new(
            spec.schema
                .project(&value_cols)
                .map_err(|e| err(e.to_string()))?,
        );
        let mut config = client_config(&opts.properties).map_err(err)?;
        // Validated with the other options: at-least-once (the default),
        // exactly-once (with a transactional-id prefix) or none.
        let guarantee = spec
            .option("sink.delivery-guarantee")
            .unwrap_or("at-least-once");
        let row_ids = (guarantee == "at-least-once")
            .then(|| RowIds::new(crate::row_id::job_name(spec), &spec.name));
        if guarantee != "none" {
            config.set(
                "acks",
                opts.properties
                    .get("acks")
                    .map(String::as_str)
                    .unwrap_or("all"),
            );
        }
        let txn = match spec.option("sink.transactional-id-prefix") {
            Some(prefix) if guarantee == "exactly-once" => {
                let clients = TxnClients {
                    prefix: prefix.to_string(),
                    producer: config.clone(),
                    marker: client_config(&opts.properties).map_err(err)?,
                    table: spec.name.clone(),
                };
                config.set("transactional.id", clients.transactional_id(0));
                Some(Transactions {
                    marker: clients.marker(0).map_err(err)?,
                    topic: opts.topics[0].clone(),
                    buffer: vec![],
                    pending: vec![],
                    last_id: None,
                    initialised: false,
                    clients,
                })
            }
            _ => None,
        };
        let context = DeliveryContext::new(&spec.name);
        let value_spec = TableSpec {
            schema: value_schema.clone(),
            ..spec.clone()
        };
        if matches!(opts.value_format, Format::Raw) {
            crate::format::raw::check_schema("kafka", spec, &value_schema)?;
        }
        let value_encoder =
            RecordEncoder::new(opts.value_format.clone(), &value_spec, Part::Value)?;
        let key_encoder = match opts.key_format.clone() {
            Some(f) => Some(RecordEncoder::new(f, spec, Part::Key)?),
            None => None,
        };
        if matches!(opts.key_format, Some(Format::Raw)) && key_fields.len() != 1 {
            return Err(err(
                "'key.format' = 'raw' needs exactly one key field".into()
            ));
        }
        let producer: ThreadedProducer<DeliveryContext> = config
            .create_with_context(context)
            .map_err(|e| err(format!("invalid Kafka configuration: {e}")))?;
        Ok(Self {
            table: spec.name.clone(),
            topic: opts.topics[0].clone(),
            producer,
            value_cols,
            value_schema,
            key_cols,
            key_schema: Arc::new(Schema::new(key_fields)),
            timestamp_col,
            headers_col,
            kind_col,
            fixed_partition,
            value_encoder,
            key_encoder,
            values: Records::default(),
            keys: Records::default(),
            row_ids,
            txn,
            share: 0,
            rows: metrics.counter(names::SINK_ROWS, &spec.name),
            rejects: SinkRejects::new(spec, metrics)?,
            failures: metrics.counter(names::SINK_DELIVERY_FAILURES, &spec.name),
            failures_seen: 0,
        })
    }

    fn error(&self, message: impl Into<String>) -> EngineError {
        EngineError::Connector {
            connector: "kafka".into(),
            table: self.table.clone(),
            message: message.into(),
        }
    }

    fn check_failures(&mut self) -> Result<()> {
        let failed = self.producer.context().failed.load(Ordering::Relaxed);
        if failed > self.failures_seen {
            self.failures.add(failed - self.failures_seen);
            self.failures_seen = failed;
        }
        if failed == 0 {
            return Ok(());
        }
        let last = self
            .producer
            .context()
            .last_error
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_default();
        Err(self.error(format!(
            "{failed} record(s) could not be delivered to topic '{}': {last}",
            self.topic
        )))
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn describe(&self) -> String {
        format!("Kafka(topic={})", self.topic)
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.check_failures()?;
        if self.txn.is_none() {
            return self.produce(&batch).await;
        }
        self.init_transactions()?;
        if let Some(t) = &mut self.txn {
            t.buffer.push(batch);
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        if let Some(t) = &mut self.txn {
            // The input ended: everything written is final.
            let mut rows: Vec<RecordBatch> = t.pending.drain(..).flat_map(|p| p.batches).collect();
            rows.append(&mut t.buffer);
            let id = t.last_id.map_or(0, |id| id + 1);
            return self.commit_rows(rows, id).await;
        }
        self.flush().await
    }

    async fn stop(&mut self) -> Result<()> {
        match &mut self.txn {
            // Rows after the last checkpoint are replayed on restart.
            Some(t) => {
                t.buffer.clear();
                Ok(())
            }
            None => self.finish().await,
        }
    }

    async fn pre_commit(&mut self, id: CheckpointId) -> Result<Vec<u8>> {
        let Some(t) = &mut self.txn else {
            // At least once: every record before the barrier is acknowledged
            // by the brokers before the checkpoint can complete.
            self.flush().await?;
            return Ok(vec![]);
        };
        let batches = std::mem::take(&mut t.buffer);
        t.pending.push(Pending { id, batches });
        t.last_id = Some(id);
        encode_pending(&t.pending)
    }

    async fn commit(&mut self, id: CheckpointId) -> Result<()> {
        let Some(t) = &mut self.txn else {
            return Ok(());
        };
        let split = t.pending.partition_point(|p| p.id <= id);
        let rows: Vec<RecordBatch> = t.pending.drain(..split).flat_map(|p| p.batches).collect();
        self.commit_rows(rows, id).await
    }

    async fn restore(&mut self, states: &[SinkState]) -> Result<()> {
        let Some(t) = &self.txn else {
            return Ok(());
        };
        let clients = t.clients.clone();
        for state in states.iter().filter(|s| !s.bytes.is_empty()) {
            if state.share == self.share {
                self.recover(&state.bytes).await?;
                continue;
            }
            // Another process's share: writing as it fences its producer
            // (a zombie's) and its marker keeps the commit to once.
            let theirs = self.clients_of(&clients, state.share)?;
            let own = self.swap_clients(theirs);
            let recovered = self.recover(&state.bytes).await;
            drop(self.swap_clients(own));
            recovered?;
        }
        Ok(())
    }

    fn assign(&mut self, share: Share) -> Result<()> {
        self.share = share.index;
        let Some(t) = &self.txn else {
            return Ok(());
        };
        let clients = t.clients.clone();
        let mine = self.clients_of(&clients, share.index)?;
        drop(self.swap_clients(mine));
        Ok(())
    }
}

/// A transactional producer, its marker consumer, and whether its
/// transactions were initialised.
type TxnProducer = (ThreadedProducer<DeliveryContext>, BaseConsumer, bool);

impl KafkaSink {
    /// The producer and marker consumer of share `share`, not initialised.
    fn clients_of(&self, clients: &TxnClients, share: usize) -> Result<TxnProducer> {
        let producer = clients.producer(share).map_err(|e| self.error(e))?;
        let marker = clients.marker(share).map_err(|e| self.error(e))?;
        Ok((producer, marker, false))
    }

    /// Writes through `clients` from now on; returns the ones used so far.
    fn swap_clients(&mut self, (producer, marker, initialised): TxnProducer) -> TxnProducer {
        let old = std::mem::replace(&mut self.producer, producer);
        self.failures_seen = 0;
        match &mut self.txn {
            Some(t) => {
                let m = std::mem::replace(&mut t.marker, marker);
                let i = std::mem::replace(&mut t.initialised, initialised);
                (old, m, i)
            }
            None => (old, marker, initialised),
        }
    }

    /// Commits the rows of `state` (what [`Sink::pre_commit`] stored) that
    /// the marker of the current producer's share has not reached.
    async fn recover(&mut self, state: &[u8]) -> Result<()> {
        self.init_transactions()?;
        let Some(t) = &self.txn else {
            return Ok(());
        };
        let pending = decode_pending(state).map_err(|e| self.error(e))?;
        let marker = t.committed_marker().map_err(|e| self.error(e))?;
        let Some(last) = pending.last().map(|p| p.id) else {
            return Ok(());
        };
        if let Some(t) = &mut self.txn {
            t.last_id = t.last_id.max(Some(last));
        }
        // The checkpoint completed; what its commit did not reach is committed now.
        let rows: Vec<RecordBatch> = pending
            .into_iter()
            .filter(|p| marker.is_none_or(|m| p.id > m))
            .flat_map(|p| p.batches)
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        tracing::info!(table = %self.table, rows = rows.iter().map(|b| b.num_rows()).sum::<usize>(), checkpoint = last, "committing the rows the crashed run pre-committed");
        self.commit_rows(rows, last).await
    }

    /// Registers the transactional id with the brokers, once, when the job
    /// starts writing (not at plan time, so `explain` does not connect). This
    /// fences the producer of an earlier run with the same id and aborts the
    /// transaction it left open, as Flink's writer does when it starts.
    fn init_transactions(&mut self) -> Result<()> {
        let Some(t) = &self.txn else { return Ok(()) };
        if t.initialised {
            return Ok(());
        }
        self.producer
            .init_transactions(TXN_TIMEOUT)
            .map_err(|e| self.error(format!("cannot start Kafka transactions: {e}")))?;
        if let Some(t) = &mut self.txn {
            t.initialised = true;
        }
        Ok(())
    }

    /// Produces `rows` and the marker for checkpoint `id` in one transaction.
    async fn commit_rows(&mut self, rows: Vec<RecordBatch>, id: CheckpointId) -> Result<()> {
        if rows.iter().all(|b| b.num_rows() == 0) || self.txn.is_none() {
            return Ok(());
        }
        self.init_transactions()?;
        self.producer
            .begin_transaction()
            .map_err(|e| self.error(format!("cannot begin a Kafka transaction: {e}")))?;
        let result = self.produce_in_transaction(&rows, id).await;
        if let Err(e) = result {
            if let Err(abort) = self.producer.abort_transaction(TXN_TIMEOUT) {
                tracing::warn!(table = %self.table, "aborting the Kafka transaction failed: {abort}");
            }
            return Err(e);
        }
        let Some(t) = &self.txn else { return Ok(()) };
        t.store_marker(id).map_err(|e| self.error(e))
    }

    async fn produce_in_transaction(
        &mut self,
        rows: &[RecordBatch],
        id: CheckpointId,
    ) -> Result<()> {
        for b in rows {
            self.produce(b).await?;
        }
        let Some(t) = &self.txn else { return Ok(()) };
        let offsets = t.marker_offsets(id).map_err(|e| self.error(e))?;
        let group = t
            .marker
            .group_metadata()
            .ok_or_else(|| self.error("the commit-marker consumer has no group metadata"))?;
        self.producer
            .send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)
            .map_err(|e| {
                self.error(format!(
                    "cannot add the commit marker to the transaction: {e}"
                ))
            })?;
        self.producer
            .commit_transaction(TXN_TIMEOUT)
            .map_err(|e| self.error(format!("cannot commit the Kafka transaction: {e}")))?;
        self.check_failures()
    }

    /// Waits until every record sent is acknowledged.
    async fn flush(&mut self) -> Result<()> {
        flush_producer(&self.producer);
        self.check_failures()
    }

    /// Encodes and sends the rows of `batch`.
    async fn produce(&mut self, batch: &RecordBatch) -> Result<()> {
        // An upsert sink needs only each key's new row (or its deletion).
        let kept;
        let batch = match self.kind_col {
            Some(k) => {
                let kinds = batch.column(k).as_primitive::<Int8Type>();
                let keep: BooleanArray = kinds
                    .iter()
                    .map(|v| Some(v != Some(RowKind::UpdateBefore as i8)))
                    .collect();
                kept = filter_record_batch(batch, &keep).map_err(|e| self.error(e.to_string()))?;
                &kept
            }
            None => batch,
        };
        let deletes = self
            .kind_col
            .map(|k| batch.column(k).as_primitive::<Int8Type>().clone());
        let n = batch.num_rows();
        let values = RecordBatch::try_new(
            self.value_schema.clone(),
            self.value_cols
                .iter()
                .map(|i| batch.column(*i).clone())
                .collect(),
        )
        .map_err(|e| self.error(e.to_string()))?;
        if let Err(e) = self.value_encoder.encode(&values, &mut self.values) {
            return Err(self.error(format!("cannot encode rows: {e}")));
        }
        if self.key_encoder.is_some() {
            let keys = RecordBatch::try_new(
                self.key_schema.clone(),
                self.key_cols
                    .iter()
                    .map(|i| batch.column(*i).clone())
                    .collect(),
            )
            .map_err(|e| self.error(e.to_string()))?;
            if let Some(encoder) = &mut self.key_encoder {
                if let Err(e) = encoder.encode(&keys, &mut self.keys) {
                    return Err(self.error(format!("cannot encode keys: {e}")));
                }
            }
        }
        let (timestamps, bad_timestamps) = match self.timestamp_col {
            Some(i) => {
                let (ts, bad) = record_timestamps(batch, i).map_err(|e| self.error(e))?;
                (Some(ts), bad)
            }
            None => (None, vec![]),
        };
        let timestamps = timestamps
            .as_ref()
            .map(|t| t.as_primitive::<TimestampMillisecondType>());
        let failed = merge(&[self.values.failed(), self.keys.failed(), &bad_timestamps]);
        // Row indexes, not an iterator over `failed`: held across awaits.
        let skip: Vec<usize> = failed.iter().map(|(row, _)| *row).collect();
        let mut skipped = 0;
        // The planner checked that the column casts to MAP<STRING, BYTES>.
        let headers = match self.headers_col {
            Some(i) => Some(
                cast(batch.column(i), &headers_type())
                    .map_err(|e| self.error(format!("cannot write the headers: {e}")))?,
            ),
            None => None,
        };
        let headers = headers.as_ref().map(|h| h.as_map());
        for row in 0..n {
            if skip.get(skipped) == Some(&row) {
                skipped += 1;
                continue;
            }
            let deleted = deletes
                .as_ref()
                .is_some_and(|d| d.value(row) == RowKind::Delete as i8);
            let value = self.values.get(row);
            let key = if self.key_encoder.is_some() {
                self.keys.get(row)
            } else {
                None
            };
            let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic);
            if let (false, Some(value)) = (deleted, value) {
                record = record.payload(value);
            }
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(p) = self.fixed_partition {
                record = record.partition(p);
            }
            if let Some(ts) = timestamps {
                if ts.is_valid(row) {
                    record = record.timestamp(ts.value(row));
                }
            }
            let user_headers = headers.filter(|h| h.is_valid(row)).map(|h| h.value(row));
            let mut id_buf = [0u8; 32];
            let row_id = self.row_ids.as_ref().map(|ids| {
                ids.id(
                    &[key.unwrap_or_default(), value.unwrap_or_default()],
                    &mut id_buf,
                )
            });
            // Binary-mode CloudEvents: the attributes as `ce_*` headers.
            let events = self.value_encoder.binary_events();
            if user_headers.is_some() || row_id.is_some() || events.is_some() {
                let n = user_headers.as_ref().map_or(0, |e| e.len()) + 1 + 8;
                let mut owned = OwnedHeaders::new_with_capacity(n);
                if let Some(events) = events {
                    for (name, value) in events.attributes(row) {
                        if let Some(header) = cloudevents::binary::header_name(name) {
                            owned = owned.insert(Header {
                                key: header,
                                value: Some(value.as_bytes()),
                            });
                        }
                    }
                }
                if let Some(entries) = &user_headers {
                    let keys = entries.column(0).as_string::<i32>();
                    let vals = entries.column(1).as_binary::<i32>();
                    for j in 0..keys.len() {
                        owned = owned.insert(Header {
                            key: keys.value(j),
                            value: vals.is_valid(j).then(|| vals.value(j)),
                        });
                    }
                }
                if let Some(id) = row_id {
                    owned = owned.insert(Header {
                        key: ROW_ID_HEADER,
                        value: Some(id.as_bytes()),
                    });
                }
                record = record.headers(owned);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        // librdkafka's queue is full: let its thread deliver some (backpressure).
                        record = r;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((e, _)) => {
                        return Err(
                            self.error(format!("could not produce to topic '{}': {e}", self.topic))
                        )
                    }
                }
            }
        }
        self.rows.add((n - failed.len()) as u64);
        self.rejects.reject(batch, &failed).await
    }
}

/// The record timestamps of column `i` (the `timestamp` metadata, whose type
/// the planner checked casts to TIMESTAMP_LTZ(3)), and the rows whose value
/// is no timestamp (a STRING that does not parse), which Flink's cast would
/// fail the job for.
fn record_timestamps(
    batch: &RecordBatch,
    i: usize,
) -> std::result::Result<(datafusion::arrow::array::ArrayRef, Vec<RowError>), String> {
    let column = batch.column(i);
    let options = CastOptions {
        safe: true,
        ..Default::default()
    };
    let ts = cast_with_options(
        column,
        &DataType::Timestamp(TimeUnit::Millisecond, None),
        &options,
    )
    .map_err(|e| format!("cannot write the record timestamps: {e}"))?;
    let mut bad = vec![];
    if ts.null_count() > column.null_count() {
        let shown = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())
            .map_err(|e| e.to_string())?;
        let name = batch.schema_ref().field(i).name().clone();
        for row in 0..batch.num_rows() {
            if column.is_valid(row) && ts.is_null(row) {
                bad.push((
                    row,
                    format!(
                        "column '{name}' ('timestamp' metadata): '{}' is not a timestamp",
                        shown.value(row)
                    ),
                ));
            }
        }
    }
    Ok((ts, bad))
}
