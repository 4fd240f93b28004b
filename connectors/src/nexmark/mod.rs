//! The Nexmark benchmark's data: a generator of persons, auctions and bids
//! written to ../shared/reference/nexmark.md §1 (Beam's and nexmark-rs's
//! choices where Flink's are not reproducible: each event's randomness is
//! seeded by its id, so a run is the same on every machine), and the files
//! the golden tests and benchmarks read.

pub mod generator;
mod source;

use std::io::Write;
use std::path::Path;

pub use generator::{Event, HotRatios, NexmarkConfig, NexmarkGenerator};
pub use source::NexmarkConnector;

/// How [`write_files`] lays events out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `person.jsonl`, `auction.jsonl` and `bid.jsonl`, one flat object a line.
    PerKind,
    /// `events.jsonl`: the rows of Flink's `datagen` table (`ddl_gen.sql`),
    /// `{"event_type": 2, "bid": {...}}`, the other kinds' columns absent (NULL).
    Nested,
}

/// Writes `config.events` events as JSON lines into `dir` (see [`Layout`]),
/// with Flink's column names; returns how many of each kind were written.
pub fn write_files(
    config: &NexmarkConfig,
    dir: &Path,
    layout: Layout,
) -> std::io::Result<[u64; 3]> {
    std::fs::create_dir_all(dir)?;
    let open = |name: &str| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            dir.join(name),
        )?))
    };
    let mut files = match layout {
        Layout::PerKind => vec![
            open("person.jsonl")?,
            open("auction.jsonl")?,
            open("bid.jsonl")?,
        ],
        Layout::Nested => vec![open("events.jsonl")?],
    };
    let mut counts = [0u64; 3];
    for event in NexmarkGenerator::new(config.clone()) {
        let (i, line) = match (&event, layout) {
            (Event::Person(p), Layout::PerKind) => (0, serde_json::to_string(p)),
            (Event::Auction(a), Layout::PerKind) => (1, serde_json::to_string(a)),
            (Event::Bid(b), Layout::PerKind) => (2, serde_json::to_string(b)),
            (Event::Person(p), Layout::Nested) => (0, nested("person", 0, p)),
            (Event::Auction(a), Layout::Nested) => (1, nested("auction", 1, a)),
            (Event::Bid(b), Layout::Nested) => (2, nested("bid", 2, b)),
        };
        let line = line.map_err(std::io::Error::other)?;
        let file = &mut files[if layout == Layout::Nested { 0 } else { i }];
        file.write_all(line.as_bytes())?;
        file.write_all(b"\n")?;
        counts[i] += 1;
    }
    for f in files.iter_mut() {
        f.flush()?;
    }
    Ok(counts)
}

/// `{"event_type": kind, "<column>": event}`.
fn nested<T: serde::Serialize>(column: &str, kind: u8, event: &T) -> serde_json::Result<String> {
    let body = serde_json::to_string(event)?;
    Ok(format!("{{\"event_type\":{kind},\"{column}\":{body}}}"))
}
