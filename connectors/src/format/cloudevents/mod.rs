//! CloudEvents 1.0 (`'format' = 'cloudevents'`, an extension beyond Flink).
//! Table columns named after event attributes (`id`, `source`, `type`,
//! `time`, `subject`, `specversion`, `datacontenttype`, `dataschema`) take
//! them; every other column is a field of the event's `data` object.
//!
//! - Structured mode: a record is the event as a JSON object (files, Kafka
//!   values, webhook bodies).
//! - Kafka binary mode: the attributes are `ce_*` headers (`content-type` for
//!   `datacontenttype`) and the value is `data`. A Kafka source tells the two
//!   modes apart per record, as the Kafka protocol binding says (a
//!   `ce_specversion` header means binary); a Kafka sink writes binary mode
//!   with `'cloudevents.mode' = 'binary'`.
//!
//! A sink takes `id` from a column if the table has one, else a deterministic
//! id of the row (so a receiver can drop duplicates after a restart);
//! `source` and `type` from columns, else `'cloudevents.source'` and
//! `'cloudevents.type'`, else `vigil/<job>` and `vigil.<table>`; `time` as
//! RFC 3339 in UTC.

pub mod binary;
pub mod encode;
pub mod layout;

pub use layout::EventLayout;

/// The CloudEvents context attributes a column may take.
pub const ATTRIBUTES: [&str; 8] = [
    "id",
    "source",
    "type",
    "time",
    "subject",
    "specversion",
    "datacontenttype",
    "dataschema",
];
