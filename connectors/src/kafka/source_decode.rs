//! Decoding a chunk of Kafka records into a batch: values and keys in the
//! table's formats, metadata columns, and for a changelog (a CDC format,
//! `upsert-kafka`) each row's kind; bad records are found, counted, logged
//! and set aside for the dead letters while the good ones go on.

use datafusion::arrow::array::{BooleanArray, RecordBatch};
use vigil_engine::Result;

use super::super::changes::{with_kinds, ChangeMode, Records};
use super::super::consumer::RawChunk;
use super::{envelopes, Decoded, KafkaSource, WARN_LIMIT};
use crate::format::record_at;

impl KafkaSource {
    /// Decodes a chunk; bad records are skipped, counted and logged with their
    /// topic, partition and offset, and returned (index, error) for the
    /// dead-letter output.
    pub(super) fn decode(&self, chunk: &RawChunk) -> Result<Decoded> {
        let n = chunk.len();
        // Binary-mode CloudEvents are decoded as the structured events they stand for.
        let envelopes = envelopes(chunk);
        let (values, value_ends) = match &envelopes {
            Some((buf, ends)) => (&buf[..], &ends[..]),
            None => (&chunk.values[..], &chunk.value_ends[..]),
        };
        let all = Records {
            values,
            value_ends,
            nulls: &chunk.value_nulls,
            keys: &chunk.keys,
            key_ends: &chunk.key_ends,
        };
        if let Ok(batch) = self.decode_records(chunk, &all, None) {
            return Ok((Some(batch), vec![]));
        }
        // Some record is bad: find which, then decode the good ones.
        let mut good = Vec::with_capacity(n);
        let mut kept_values = Vec::with_capacity(values.len());
        let mut kept_value_ends = Vec::with_capacity(n);
        let mut kept_nulls = Vec::with_capacity(chunk.value_nulls.len());
        let mut kept_keys = Vec::new();
        let mut kept_key_ends = Vec::new();
        let mut dead: Vec<(usize, String)> = vec![];
        let reads_keys = self.key.is_some() || self.changes.reads_keys();
        for i in 0..n {
            let record = record_at(values, value_ends, i);
            let null = chunk.value_nulls.get(i).copied().unwrap_or(false);
            let reason = if null {
                None
            } else {
                self.value.record_error(record)
            };
            let reason = reason
                .or_else(|| {
                    self.key
                        .as_ref()
                        .and_then(|k| k.record_error(chunk.key(i)).map(|r| format!("key: {r}")))
                })
                .or_else(|| self.changes.key_error(chunk.key(i)));
            match reason {
                None => {
                    good.push(true);
                    kept_values.extend_from_slice(record);
                    kept_value_ends.push(kept_values.len());
                    if !chunk.value_nulls.is_empty() {
                        kept_nulls.push(null);
                    }
                    if reads_keys {
                        kept_keys.extend_from_slice(chunk.key(i));
                        kept_key_ends.push(kept_keys.len());
                    }
                }
                Some(reason) => {
                    good.push(false);
                    let seen = self.malformed.get();
                    self.malformed.add(1);
                    let excerpt =
                        String::from_utf8_lossy(&chunk.value(i)[..chunk.value(i).len().min(120)])
                            .into_owned();
                    if seen < WARN_LIMIT {
                        tracing::warn!(table = %self.table, topic = %chunk.topic, partition = chunk.partition, offset = chunk.offsets[i], %reason, %excerpt, dead_letter = self.dlq.is_some(), "skipped a malformed record");
                    } else {
                        tracing::debug!(table = %self.table, topic = %chunk.topic, partition = chunk.partition, offset = chunk.offsets[i], %reason, "skipped a malformed record");
                    }
                    dead.push((i, reason));
                }
            }
        }
        if kept_value_ends.is_empty() {
            return Ok((None, dead));
        }
        let kept = Records {
            values: &kept_values,
            value_ends: &kept_value_ends,
            nulls: &kept_nulls,
            keys: &kept_keys,
            key_ends: &kept_key_ends,
        };
        let batch = self
            .decode_records(chunk, &kept, Some(&BooleanArray::from(good)))
            .map_err(|e| self.error(e))?;
        Ok((Some(batch), dead))
    }

    /// The rows of `records` (all of `chunk`'s, or those `keep` marks), or
    /// why some record does not decode.
    fn decode_records(
        &self,
        chunk: &RawChunk,
        records: &Records<'_>,
        keep: Option<&BooleanArray>,
    ) -> std::result::Result<RecordBatch, String> {
        let key = match &self.key {
            Some(k) => Some(k.decode_records(records.keys, records.key_ends, &[])?),
            None => None,
        };
        match &self.changes {
            ChangeMode::Append => {
                let value =
                    self.value
                        .decode_records(records.values, records.value_ends, records.nulls)?;
                self.assemble(chunk, &value, key.as_ref(), keep, None)
                    .map_err(|e| e.to_string())
            }
            ChangeMode::Changelog => {
                let changes = self
                    .value
                    .decode_changes(records.values, records.value_ends)?;
                let batch = self
                    .assemble(
                        chunk,
                        &changes.rows,
                        key.as_ref(),
                        keep,
                        Some(&changes.records),
                    )
                    .map_err(|e| e.to_string())?;
                with_kinds(&self.out_schema, batch, changes.rows.columns().last())
            }
            ChangeMode::Upsert(upsert) => {
                let (value, kinds) = upsert.values(&self.value, records)?;
                let batch = self
                    .assemble(chunk, &value, key.as_ref(), keep, None)
                    .map_err(|e| e.to_string())?;
                let batch = upsert.keys_of_tombstones(batch, records, &kinds)?;
                with_kinds(&self.out_schema, batch, Some(&kinds))
            }
        }
    }
}
