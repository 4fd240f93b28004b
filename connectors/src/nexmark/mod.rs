//! The Nexmark benchmark's data: a generator of persons, auctions and bids
//! written to ../shared/reference/nexmark.md §1 (Beam's and nexmark-rs's
//! choices where Flink's are not reproducible: each event's randomness is
//! seeded by its id, so a run is the same on every machine), and the files
//! the golden tests and benchmarks read.

pub mod generator;

use std::io::Write;
use std::path::Path;

pub use generator::{Event, NexmarkConfig, NexmarkGenerator};

/// Writes `config.events` events as JSON lines into `dir/person.jsonl`,
/// `dir/auction.jsonl` and `dir/bid.jsonl` (Flink's column names); returns
/// how many of each were written.
pub fn write_files(config: &NexmarkConfig, dir: &Path) -> std::io::Result<[u64; 3]> {
    std::fs::create_dir_all(dir)?;
    let open = |name: &str| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            dir.join(name),
        )?))
    };
    let mut files = [
        open("person.jsonl")?,
        open("auction.jsonl")?,
        open("bid.jsonl")?,
    ];
    let mut counts = [0u64; 3];
    for event in NexmarkGenerator::new(config.clone()) {
        let (i, line) = match &event {
            Event::Person(p) => (0, serde_json::to_string(p)),
            Event::Auction(a) => (1, serde_json::to_string(a)),
            Event::Bid(b) => (2, serde_json::to_string(b)),
        };
        let line = line.map_err(std::io::Error::other)?;
        files[i].write_all(line.as_bytes())?;
        files[i].write_all(b"\n")?;
        counts[i] += 1;
    }
    for f in files.iter_mut() {
        f.flush()?;
    }
    Ok(counts)
}
