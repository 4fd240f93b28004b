//! Updating results (Flink's changelog): a stream whose rows insert, update
//! or delete rows of a result table carries each row's kind in a trailing
//! `__row_kind` column (Flink's `RowKind` byte values). What makes a stream
//! updating is that column's field metadata ([`ROW_KIND_MARKER`]), a property
//! of the schema: a column a user happens to name `__row_kind` is data. Operators that produce
//! one (non-window GROUP BY, regular joins, deduplication, Top-N) live here;
//! sinks read the column to print the kind or to upsert.

pub mod aggregate;
pub mod group_accs;
pub mod group_state;
pub mod join;
pub mod join_state;
pub mod mini_batch;
pub mod normalize;
pub mod over;
pub mod rank;
pub mod rank_retract;
pub mod retract;
mod semi_join;
pub mod ttl;

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int8Array};
use datafusion::arrow::datatypes::{DataType, Field, Int8Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

/// The name of the column holding each row's [`RowKind`] in an updating stream.
pub const ROW_KIND: &str = "__row_kind";

/// The field metadata key that marks the row-kind column of an updating
/// stream (Arrow keeps field metadata through batches, IPC and projections).
pub const ROW_KIND_MARKER: &str = "vigil.changelog.row_kind";

/// What a row of an updating stream does to the result table (Flink's `RowKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum RowKind {
    /// `+I`: a new row.
    Insert = 0,
    /// `-U`: the old version of an updated row (retracted).
    UpdateBefore = 1,
    /// `+U`: the new version of an updated row.
    UpdateAfter = 2,
    /// `-D`: a row removed.
    Delete = 3,
}

impl RowKind {
    /// The kind stored as `byte` (an unknown byte reads as an insert).
    pub fn from_byte(byte: i8) -> Self {
        match byte {
            1 => RowKind::UpdateBefore,
            2 => RowKind::UpdateAfter,
            3 => RowKind::Delete,
            _ => RowKind::Insert,
        }
    }

    /// Flink's short spelling: `+I`, `-U`, `+U`, `-D`.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// Whether the row takes a previous row back (`-U`, `-D`).
    pub fn is_retraction(self) -> bool {
        matches!(self, RowKind::UpdateBefore | RowKind::Delete)
    }
}

/// The `__row_kind` field, marked as such.
pub fn row_kind_field() -> Field {
    Field::new(ROW_KIND, DataType::Int8, false).with_metadata(
        [(ROW_KIND_MARKER.to_string(), "true".to_string())]
            .into_iter()
            .collect(),
    )
}

/// Whether rows of `schema` form an updating stream: its last field is the
/// marked row-kind column.
pub fn is_updating(schema: &Schema) -> bool {
    schema.fields().last().is_some_and(|f| {
        f.metadata().contains_key(ROW_KIND_MARKER) && f.data_type() == &DataType::Int8
    })
}

/// `schema` with the `__row_kind` column appended.
pub fn with_row_kind(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(row_kind_field());
    Arc::new(Schema::new(fields))
}

/// The kinds of an updating batch's rows; `None` for an append-only batch.
pub fn kinds(batch: &RecordBatch) -> Option<&Int8Array> {
    if !is_updating(batch.schema_ref()) {
        return None;
    }
    batch
        .columns()
        .last()
        .and_then(|c| c.as_primitive_opt::<Int8Type>())
}

/// The kind of row `i` given [`kinds`] (an append-only row is an insert).
pub fn kind_at(kinds: Option<&Int8Array>, i: usize) -> RowKind {
    match kinds {
        Some(k) if k.is_valid(i) => RowKind::from_byte(k.value(i)),
        _ => RowKind::Insert,
    }
}

/// The columns of a batch of `schema` without the `__row_kind` column.
pub fn data_width(schema: &Schema) -> usize {
    schema.fields().len() - usize::from(is_updating(schema))
}

/// A converter of whole rows of `schema` to bytes that are equal exactly
/// when the rows are: how an operator finds a retracted row among those it
/// keeps.
pub(crate) fn row_converter(
    schema: &Schema,
) -> crate::Result<datafusion::arrow::row::RowConverter> {
    use crate::error::ResultExt;
    let fields = schema
        .fields()
        .iter()
        .map(|f| datafusion::arrow::row::SortField::new(f.data_type().clone()))
        .collect();
    datafusion::arrow::row::RowConverter::new(fields).context("row bytes")
}
