//! Deterministic ids for output rows of at-least-once sinks.
//!
//! After a crash, a job resumes from its last checkpoint and writes again the
//! rows it had written since; an at-least-once sink cannot take them back, so
//! each row carries an id that a receiver can drop duplicates by. The id is a
//! 128-bit SipHash-1-3 of the job's `pipeline.name`, the sink table and the
//! row's encoded key and value: the same row written again gets the same id,
//! whichever run writes it. A window aggregate's row holds its window and its
//! group key, a match holds its match columns, so distinct results get
//! distinct ids; a query that can emit two identical rows on purpose should
//! include a column telling them apart (the event time, the source offset).

use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;

/// The job's name as row ids and default event sources use it
/// (`pipeline.name`, else `vigil`).
pub fn job_name(spec: &vigil_engine::connector::TableSpec) -> &str {
    spec.job_options
        .get("pipeline.name")
        .map_or("vigil", String::as_str)
}

/// The Kafka header (and, for other sinks, the field) that carries the id.
pub const ROW_ID_HEADER: &str = "vigil-row-id";

/// Computes row ids for one sink of one job.
#[derive(Debug, Clone, Copy)]
pub struct RowIds {
    /// The hasher state after the job and table names, cloned for every row.
    prefix: SipHasher13,
}

impl RowIds {
    /// Ids for the rows of sink `table` in the job named `job`.
    pub fn new(job: &str, table: &str) -> Self {
        let mut prefix = SipHasher13::new();
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        for part in [job, table] {
            prefix.write_u64(part.len() as u64);
            prefix.write(part.as_bytes());
        }
        Self { prefix }
    }

    /// The id of a row given its encoded parts (key, value), as 32 lowercase
    /// hex digits, written into `out` without allocating.
    pub fn id<'a>(&self, parts: &[&[u8]], out: &'a mut [u8; 32]) -> &'a str {
        let mut h = self.prefix;
        for p in parts {
            h.write_u64(p.len() as u64);
            h.write(p);
        }
        let v = h.finish128().as_u128();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in out.iter_mut().enumerate() {
            *b = HEX[((v >> (124 - 4 * i)) & 0xf) as usize];
        }
        // Only ASCII hex digits were written.
        std::str::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ids: &RowIds, parts: &[&[u8]]) -> String {
        let mut buf = [0u8; 32];
        ids.id(parts, &mut buf).to_string()
    }

    #[test]
    fn same_row_same_id_across_instances() {
        let a = RowIds::new("job", "alerts");
        let b = RowIds::new("job", "alerts");
        let row: &[&[u8]] = &[b"k1", br#"{"k":"k1","n":3}"#];
        assert_eq!(id(&a, row), id(&b, row));
        assert_eq!(id(&a, row).len(), 32);
        assert!(id(&a, row).bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn job_table_and_content_all_change_the_id() {
        let base = id(&RowIds::new("job", "alerts"), &[b"k", b"v"]);
        assert_ne!(base, id(&RowIds::new("job2", "alerts"), &[b"k", b"v"]));
        assert_ne!(base, id(&RowIds::new("job", "alerts2"), &[b"k", b"v"]));
        assert_ne!(base, id(&RowIds::new("job", "alerts"), &[b"k", b"w"]));
        // Boundaries between parts count.
        assert_ne!(
            id(&RowIds::new("ab", "c"), &[b"k"]),
            id(&RowIds::new("a", "bc"), &[b"k"])
        );
        assert_ne!(
            id(&RowIds::new("j", "t"), &[b"kv", b""]),
            id(&RowIds::new("j", "t"), &[b"k", b"v"])
        );
    }
}
