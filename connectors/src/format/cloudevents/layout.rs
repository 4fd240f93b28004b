//! Decoding structured events: the event is read with a nested schema
//! (`data` a struct) in one vectorised pass, and the table's columns are
//! then picked from it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

use super::ATTRIBUTES;

/// Where a table column comes from.
#[derive(Debug, Clone, Copy)]
enum From {
    /// The event's attribute at this index of the decode schema.
    Attribute(usize),
    /// The `data` struct's child at this index.
    Data(usize),
}

/// How a table's columns map onto an event.
#[derive(Debug, Clone)]
pub struct EventLayout {
    /// The schema events are decoded with: the attributes, then `data`.
    pub decode_schema: SchemaRef,
    from: Vec<From>,
    data_index: usize,
}

impl EventLayout {
    /// The layout for rows of `table`.
    pub fn new(table: &SchemaRef) -> Self {
        let mut top: Vec<Field> = vec![];
        let mut data: Vec<Field> = vec![];
        let mut from = vec![];
        for f in table.fields() {
            if ATTRIBUTES.contains(&f.name().as_str()) {
                from.push(From::Attribute(top.len()));
                top.push(f.as_ref().clone().with_nullable(true));
            } else {
                from.push(From::Data(data.len()));
                data.push(f.as_ref().clone().with_nullable(true));
            }
        }
        let data_index = top.len();
        top.push(Field::new(
            "data",
            DataType::Struct(Fields::from(data)),
            true,
        ));
        Self {
            decode_schema: Arc::new(Schema::new(top)),
            from,
            data_index,
        }
    }

    /// The table's rows from decoded events.
    pub fn rows(
        &self,
        table: &SchemaRef,
        events: &RecordBatch,
    ) -> datafusion::arrow::error::Result<RecordBatch> {
        let data = events.column(self.data_index).as_struct();
        let columns: Vec<ArrayRef> = self
            .from
            .iter()
            .map(|f| match f {
                From::Attribute(i) => events.column(*i).clone(),
                // A missing `data` makes every data column NULL.
                From::Data(i) => match data.nulls() {
                    Some(n) if n.null_count() > 0 => {
                        let child = data.column(*i);
                        let merged =
                            datafusion::arrow::buffer::NullBuffer::union(Some(n), child.nulls());
                        datafusion::arrow::array::make_array(
                            child
                                .to_data()
                                .into_builder()
                                .nulls(merged)
                                .build()
                                .unwrap_or_else(|_| child.to_data()),
                        )
                    }
                    _ => data.column(*i).clone(),
                },
            })
            .collect();
        RecordBatch::try_new(table.clone(), columns)
    }
}
