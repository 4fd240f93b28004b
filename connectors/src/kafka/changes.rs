//! Kafka records as changes of a table: a CDC value format (`debezium-json`)
//! makes each record one or two changelog rows; `upsert-kafka` reads a
//! record as the latest row of its key (`+I`) and a tombstone (no value)
//! as the key's deletion (`-D`), whose key columns come from the record's
//! key (the planner then normalises the upserts by the primary key).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int8Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use vigil_engine::changelog::RowKind;

use crate::format::decode::RecordDecoder;
use crate::format::record_at;

/// Records of a chunk (or the good ones of it) as the decoders take them.
pub struct Records<'a> {
    /// The values, each ending at its `value_ends` entry.
    pub values: &'a [u8],
    /// Where each value ends.
    pub value_ends: &'a [usize],
    /// Which values are tombstones (empty when they are skipped).
    pub nulls: &'a [bool],
    /// The keys, each ending at its `key_ends` entry (empty if unread).
    pub keys: &'a [u8],
    /// Where each key ends.
    pub key_ends: &'a [usize],
}

/// How a source's records change its table.
pub enum ChangeMode {
    /// Each record is a new row.
    Append,
    /// Each record is a change (a CDC value format).
    Changelog,
    /// Each record upserts or deletes its key's row (`upsert-kafka`).
    Upsert(UpsertKeys),
}

impl ChangeMode {
    /// Whether records' keys must be collected for this mode.
    pub fn reads_keys(&self) -> bool {
        matches!(self, ChangeMode::Upsert(_))
    }

    /// Why a record's key cannot be read, if the mode reads keys.
    pub fn key_error(&self, key: &[u8]) -> Option<String> {
        match self {
            ChangeMode::Upsert(u) => u.decoder.record_error(key).map(|r| format!("key: {r}")),
            _ => None,
        }
    }

    /// Whether the source emits a changelog (rows with their kind).
    pub fn is_updating(&self) -> bool {
        !matches!(self, ChangeMode::Append)
    }
}

/// The primary key of an `upsert-kafka` table as its records' keys hold it.
pub struct UpsertKeys {
    /// Decodes a record's key into the key columns.
    pub decoder: RecordDecoder,
    /// For each key column: its place among the table's columns.
    pub columns: Vec<usize>,
}

impl UpsertKeys {
    /// The values of `records` as rows, a tombstone as a row of NULLs, and
    /// each row's kind (`+I`, or `-D` for a tombstone).
    pub fn values(
        &self,
        value: &RecordDecoder,
        records: &Records<'_>,
    ) -> Result<(RecordBatch, ArrayRef), String> {
        let n = records.value_ends.len();
        let tombstone = |i: usize| records.nulls.get(i).copied().unwrap_or(false);
        let mut present = Vec::with_capacity(records.values.len());
        let mut present_ends = Vec::with_capacity(n);
        let mut rows: Vec<Option<u32>> = Vec::with_capacity(n);
        for i in 0..n {
            if tombstone(i) {
                rows.push(None);
            } else {
                rows.push(Some(present_ends.len() as u32));
                present.extend_from_slice(record_at(records.values, records.value_ends, i));
                present_ends.push(present.len());
            }
        }
        let decoded = value.decode_records(&present, &present_ends, &[])?;
        // A tombstone's row: every column NULL (its key columns are filled after).
        let rows =
            take_record_batch(&decoded, &UInt32Array::from(rows)).map_err(|e| e.to_string())?;
        let kinds: ArrayRef = Arc::new(Int8Array::from_iter_values((0..n).map(|i| {
            if tombstone(i) {
                RowKind::Delete as i8
            } else {
                RowKind::Insert as i8
            }
        })));
        Ok((rows, kinds))
    }

    /// `batch` with the key columns of its tombstone rows (whose kind in
    /// `kinds` is `-D`) taken from the records' keys.
    pub fn keys_of_tombstones(
        &self,
        batch: RecordBatch,
        records: &Records<'_>,
        kinds: &ArrayRef,
    ) -> Result<RecordBatch, String> {
        let deleted: BooleanArray = kinds
            .as_any()
            .downcast_ref::<Int8Array>()
            .ok_or("row kinds are not bytes")?
            .iter()
            .map(|k| Some(k == Some(RowKind::Delete as i8)))
            .collect();
        if deleted.true_count() == 0 {
            return Ok(batch);
        }
        let keys = self
            .decoder
            .decode_records(records.keys, records.key_ends, &[])?;
        let mut columns = batch.columns().to_vec();
        for (k, &at) in self.columns.iter().enumerate() {
            let from_key = keys.column(k);
            let target = batch.schema().field(at).data_type().clone();
            let from_key = if from_key.data_type() == &target {
                from_key.clone()
            } else {
                cast(from_key, &target).map_err(|e| e.to_string())?
            };
            columns[at] = zip(&deleted, &from_key, &columns[at]).map_err(|e| e.to_string())?;
        }
        RecordBatch::try_new(batch.schema(), columns).map_err(|e| e.to_string())
    }
}

/// `batch` with the row kinds `kinds` appended, as `schema` (its columns
/// and `__row_kind`).
pub fn with_kinds(
    schema: &SchemaRef,
    batch: RecordBatch,
    kinds: Option<&ArrayRef>,
) -> Result<RecordBatch, String> {
    let kinds = kinds.ok_or("a change without its kind")?;
    let mut columns = batch.columns().to_vec();
    columns.push(kinds.clone());
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// The schema of an upsert table's key columns `names` among `schema`'s.
pub fn key_schema(schema: &Schema, names: &[String]) -> Result<(SchemaRef, Vec<usize>), String> {
    let mut fields = vec![];
    let mut columns = vec![];
    for name in names {
        let i = schema
            .index_of(name)
            .map_err(|_| format!("primary key column '{name}' is not read"))?;
        fields.push(schema.field(i).clone());
        columns.push(i);
    }
    Ok((Arc::new(Schema::new(fields)), columns))
}
