//! How a Kafka table's columns map onto a record: the value's JSON fields, the
//! key's JSON fields (`key.fields` with `value.fields-include` = `EXCEPT_KEY`),
//! or connector metadata (`METADATA FROM 'timestamp'`, ...).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use vigil_engine::connector::TableSpec;
use vigil_engine::Result;

use super::options::{KafkaOptions, ValueFields};
use crate::error::connector_error;

/// A metadata key a Kafka source can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// `topic` STRING
    Topic,
    /// `partition` INT
    Partition,
    /// `offset` BIGINT
    Offset,
    /// `timestamp` TIMESTAMP_LTZ(3)
    Timestamp,
    /// `timestamp-type` STRING
    TimestampType,
    /// `headers` MAP<STRING, BYTES>
    Headers,
}

/// The metadata keys of the source, with their Flink types.
pub const READABLE: &[(&str, &str)] = &[
    ("topic", "STRING NOT NULL"),
    ("partition", "INT NOT NULL"),
    ("offset", "BIGINT NOT NULL"),
    ("timestamp", "TIMESTAMP_LTZ(3) NOT NULL"),
    ("timestamp-type", "STRING NOT NULL"),
    ("headers", "MAP<STRING, BYTES> NOT NULL"),
];

/// The metadata keys the sink writes.
pub const WRITABLE: &[(&str, &str)] = &[
    ("timestamp", "TIMESTAMP_LTZ(3)"),
    ("headers", "MAP<STRING, BYTES>"),
];

impl Meta {
    /// The kind for a metadata key.
    pub fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "topic" => Meta::Topic,
            "partition" => Meta::Partition,
            "offset" => Meta::Offset,
            "timestamp" => Meta::Timestamp,
            "timestamp-type" => Meta::TimestampType,
            "headers" => Meta::Headers,
            _ => return None,
        })
    }

    /// The Arrow type the connector produces (cast to the column's type after).
    pub fn native_type(&self) -> DataType {
        match self {
            Meta::Topic | Meta::TimestampType => DataType::Utf8,
            Meta::Partition => DataType::Int32,
            Meta::Offset => DataType::Int64,
            Meta::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Meta::Headers => headers_type(),
        }
    }
}

/// `MAP<STRING, BYTES>` as Arrow builds it.
pub fn headers_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(
                vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Binary, true),
                ]
                .into(),
            ),
            false,
        )),
        false,
    )
}

/// Where one output column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Column `i` of the decoded value.
    Value(usize),
    /// Column `i` of the decoded key.
    Key(usize),
    /// Connector metadata.
    Meta(Meta),
}

/// The mapping of a table's columns.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The columns in order.
    pub schema: SchemaRef,
    /// For each column, where it comes from.
    pub origins: Vec<Origin>,
    /// The fields decoded from the value.
    pub value_schema: SchemaRef,
    /// The fields decoded from the key (None when the key is not read).
    pub key_schema: Option<SchemaRef>,
}

impl Layout {
    /// Which metadata the layout needs.
    pub fn needs(&self, m: Meta) -> bool {
        self.origins.contains(&Origin::Meta(m))
    }

    /// Maps `spec`'s columns; `reading` is true for a source.
    pub fn new(spec: &TableSpec, opts: &KafkaOptions) -> Result<Self> {
        let mut origins = vec![];
        let mut value_fields = vec![];
        let mut key_fields = vec![];
        for f in spec.schema.fields() {
            if let Some(key) = spec.metadata.get(f.name()) {
                let m = Meta::from_key(key).ok_or_else(|| {
                    connector_error("kafka", spec, format!("unknown metadata key '{key}'"))
                })?;
                origins.push(Origin::Meta(m));
                continue;
            }
            let is_key = opts.key_fields.iter().any(|k| k == f.name());
            if is_key && opts.value_fields == ValueFields::ExceptKey {
                let name = f
                    .name()
                    .strip_prefix(opts.key_prefix.as_str())
                    .unwrap_or(f.name());
                origins.push(Origin::Key(key_fields.len()));
                key_fields.push(f.as_ref().clone().with_name(name));
            } else {
                origins.push(Origin::Value(value_fields.len()));
                value_fields.push(f.as_ref().clone());
            }
        }
        Ok(Self {
            schema: spec.schema.clone(),
            origins,
            value_schema: Arc::new(Schema::new(value_fields)),
            key_schema: (!key_fields.is_empty()).then(|| Arc::new(Schema::new(key_fields))),
        })
    }
}
