//! `'connector' = 'nexmark'`: the Nexmark generator as a table, with the
//! options and the schema of Flink's Nexmark connector (`ddl_gen.sql`:
//! `event_type INT` and one ROW column each for `person`, `auction` and
//! `bid`, the two of the other kinds NULL).
//!
//! The events are those of `vigil nexmark` for the same options (each one
//! drawn from its id), so a query over this table and the same query over
//! the files give the same rows. Unlike Flink's generator (seeded by the
//! clock, its first event at the job's start), the first event's time is
//! fixed, 2015-07-15 00:00:00 UTC, unless `first-event.time` says otherwise.
//!
//! Subtasks take chunks of ids in turn (chunk `c` to subtask `c % n`); each
//! stores the next chunk it will take, which is all a restore at any
//! parallelism needs to tell the chunks emitted from those to come.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::{
    new_null_array, ArrayRef, Int32Array, Int64Array, StringArray, StructArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::arrow::record_batch::RecordBatch;
use vigil_engine::connector::{ConnectorFactory, Sink, Source, SourceContext, TableSpec};
use vigil_engine::metrics::Metrics;
use vigil_engine::window::spill::parse_memory_size;
use vigil_engine::{EngineError, Result};

use super::generator::{Auction, Bid, Event, HotRatios, NexmarkConfig, NexmarkGenerator, Person};
use crate::error::connector_error;
use crate::options::check_options;

const NAME: &str = "nexmark";

/// Ids per chunk (and per batch) when the source runs as fast as it can.
const CHUNK: u64 = 8192;

const OPTIONS: &[&str] = &[
    "first-event.rate",
    "next-event.rate",
    "events.num",
    "person.proportion",
    "auction.proportion",
    "bid.proportion",
    "bid.hot-ratio.auctions",
    "bid.hot-ratio.bidders",
    "auction.hot-ratio.sellers",
    "person.avg-size",
    "auction.avg-size",
    "bid.avg-size",
    "rate.limited",
    "rate.shape",
    "rate.period",
    "keep-alive",
    "stop-at",
    "max-emit-speed",
    "first-event.time",
];

/// The fields each ROW column may declare, by kind.
const PERSON: &[&str] = &[
    "id",
    "name",
    "emailAddress",
    "creditCard",
    "city",
    "state",
    "dateTime",
    "extra",
];
const AUCTION: &[&str] = &[
    "id",
    "itemName",
    "description",
    "initialBid",
    "reserve",
    "dateTime",
    "expires",
    "seller",
    "category",
    "extra",
];
const BID: &[&str] = &[
    "auction", "bidder", "price", "channel", "url", "dateTime", "extra",
];

/// Factory for `'connector' = 'nexmark'`.
pub struct NexmarkConnector;

impl ConnectorFactory for NexmarkConnector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn create_source(&self, spec: &TableSpec, _metrics: &Metrics) -> Result<Box<dyn Source>> {
        check_options(NAME, spec, OPTIONS)?;
        check_schema(spec)?;
        let config = config(spec)?;
        let rate_limited = match spec.option("rate.limited") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(connector_error(
                    NAME,
                    spec,
                    format!("'rate.limited' must be true or false, not '{other}'"),
                ))
            }
        };
        Ok(Box::new(NexmarkSource {
            spec: spec.clone(),
            generator: Arc::new(NexmarkGenerator::new(config)),
            rate_limited,
            subtask: (0, 1),
            start: Start::Fresh,
        }))
    }

    fn create_sink(&self, spec: &TableSpec, _metrics: &Metrics) -> Result<Box<dyn Sink>> {
        Err(connector_error(
            NAME,
            spec,
            "the nexmark connector is a source only; write to another connector",
        ))
    }
}

fn number(spec: &TableSpec, key: &str, default: u64) -> Result<u64> {
    match spec.option(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            connector_error(
                NAME,
                spec,
                format!("'{key}' must be a whole number, not '{v}'"),
            )
        }),
    }
}

fn size(spec: &TableSpec, key: &str, default: u64) -> Result<u64> {
    match spec.option(key) {
        None => Ok(default),
        Some(v) => parse_memory_size(v).map(|b| b as u64).ok_or_else(|| {
            connector_error(
                NAME,
                spec,
                format!("'{key}' must be a size such as '200b' or '1kb', not '{v}'"),
            )
        }),
    }
}

/// The generator's configuration from Flink's option names.
fn config(spec: &TableSpec) -> Result<NexmarkConfig> {
    let defaults = NexmarkConfig::default();
    let rate = number(spec, "first-event.rate", 10_000)?;
    if rate == 0 {
        return Err(connector_error(
            NAME,
            spec,
            "'first-event.rate' must be at least 1 (events per second of event time)",
        ));
    }
    let proportions = [
        number(spec, "person.proportion", defaults.proportions[0])?,
        number(spec, "auction.proportion", defaults.proportions[1])?,
        number(spec, "bid.proportion", defaults.proportions[2])?,
    ];
    if proportions.iter().sum::<u64>() == 0 {
        return Err(connector_error(
            NAME,
            spec,
            "the proportions of persons, auctions and bids add up to 0",
        ));
    }
    let ratio = |key: &str, default: u64| -> Result<u64> {
        let r = number(spec, key, default)?;
        if r == 0 {
            return Err(connector_error(
                NAME,
                spec,
                format!("'{key}' must be at least 1"),
            ));
        }
        Ok(r)
    };
    let base_time_ms = match spec.option("first-event.time") {
        None => defaults.base_time_ms,
        Some(t) => chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
            .map(|d| d.and_utc().timestamp_millis())
            .map_err(|_| {
                connector_error(
                    NAME,
                    spec,
                    format!("'first-event.time' must read 'YYYY-MM-DD HH:MM:SS', not '{t}'"),
                )
            })?,
    };
    // Flink: 0 (the default) generates without end.
    let events = match number(spec, "events.num", 0)? {
        0 => u64::MAX,
        n => n,
    };
    Ok(NexmarkConfig {
        events,
        rate,
        base_time_ms,
        proportions,
        hot_ratios: HotRatios {
            auctions: ratio("bid.hot-ratio.auctions", defaults.hot_ratios.auctions)?,
            bidders: ratio("bid.hot-ratio.bidders", defaults.hot_ratios.bidders)?,
            sellers: ratio("auction.hot-ratio.sellers", defaults.hot_ratios.sellers)?,
        },
        avg_sizes: [
            size(spec, "person.avg-size", defaults.avg_sizes[0])?,
            size(spec, "auction.avg-size", defaults.avg_sizes[1])?,
            size(spec, "bid.avg-size", defaults.avg_sizes[2])?,
        ],
    })
}

/// The fields a kind's ROW column may have.
fn fields_of(column: &str) -> Option<&'static [&'static str]> {
    match column {
        "person" => Some(PERSON),
        "auction" => Some(AUCTION),
        "bid" => Some(BID),
        _ => None,
    }
}

/// Every physical column is one of Flink's four, every ROW field one the
/// generator makes.
fn check_schema(spec: &TableSpec) -> Result<()> {
    for f in spec.schema.fields() {
        let name = f.name().as_str();
        if name == "event_type" {
            continue;
        }
        let Some(known) = fields_of(name) else {
            return Err(connector_error(
                NAME,
                spec,
                format!(
                    "no column '{name}' in Nexmark's events; declare event_type INT, person ROW<...>, auction ROW<...> and bid ROW<...> as in Flink's ddl_gen.sql"
                ),
            ));
        };
        let DataType::Struct(children) = f.data_type() else {
            return Err(connector_error(
                NAME,
                spec,
                format!("column '{name}' must be a ROW<...> of the {name}'s fields"),
            ));
        };
        for c in children {
            if !known.contains(&c.name().as_str()) {
                return Err(connector_error(
                    NAME,
                    spec,
                    format!(
                        "a {name} has no field '{}'; its fields are {}",
                        c.name(),
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Where a subtask starts.
#[derive(Debug, Clone)]
enum Start {
    /// At its first chunk.
    Fresh,
    /// After a checkpoint: each earlier subtask's next chunk, by its index
    /// among as many as there were.
    Restored(Vec<u64>),
}

#[derive(Clone)]
struct NexmarkSource {
    spec: TableSpec,
    generator: Arc<NexmarkGenerator>,
    rate_limited: bool,
    /// This subtask's index and how many there are.
    subtask: (usize, usize),
    start: Start,
}

/// A subtask's position: how many subtasks there were, its index, the next
/// chunk it would have taken.
fn encode_position(subtask: (usize, usize), next: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&(subtask.1 as u32).to_be_bytes());
    v.extend_from_slice(&(subtask.0 as u32).to_be_bytes());
    v.extend_from_slice(&next.to_be_bytes());
    v
}

fn decode_position(state: &[u8]) -> Option<(usize, usize, u64)> {
    let n = u32::from_be_bytes(state.get(0..4)?.try_into().ok()?) as usize;
    let i = u32::from_be_bytes(state.get(4..8)?.try_into().ok()?) as usize;
    let next = u64::from_be_bytes(state.get(8..16)?.try_into().ok()?);
    (state.len() == 16 && i < n).then_some((n, i, next))
}

impl NexmarkSource {
    fn chunk_size(&self) -> u64 {
        if self.rate_limited {
            // About 10 ms of events per batch, so that pacing is smooth.
            (self.generator.config().rate / 100).clamp(1, CHUNK)
        } else {
            CHUNK
        }
    }

    /// Whether chunk `c` was emitted before the checkpoint restored.
    fn done_before(&self, c: u64) -> bool {
        match &self.start {
            Start::Fresh => false,
            Start::Restored(next) => {
                let n = next.len() as u64;
                n > 0 && c < next[(c % n) as usize]
            }
        }
    }

    /// The first chunk this subtask takes.
    fn first_chunk(&self) -> u64 {
        let (i, n) = (self.subtask.0 as u64, self.subtask.1 as u64);
        let low = match &self.start {
            Start::Fresh => 0,
            Start::Restored(next) => next.iter().copied().min().unwrap_or(0),
        };
        // The first chunk from `low` on that is this subtask's.
        low + (i + n - low % n) % n
    }

    fn batch(&self, ids: std::ops::Range<u64>) -> Result<RecordBatch> {
        let events: Vec<Event> = ids.map(|id| self.generator.event(id)).collect();
        let columns = self
            .spec
            .schema
            .fields()
            .iter()
            .map(|f| self.column(f, &events))
            .collect::<Result<Vec<_>>>()?;
        // A query that reads no column (`count(*)`) still counts the rows.
        let options =
            datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(events.len()));
        RecordBatch::try_new_with_options(self.spec.schema.clone(), columns, &options)
            .map_err(|e| connector_error(NAME, &self.spec, e.to_string()))
    }

    fn column(&self, field: &Field, events: &[Event]) -> Result<ArrayRef> {
        let kind = |e: &Event| match e {
            Event::Person(_) => 0,
            Event::Auction(_) => 1,
            Event::Bid(_) => 2,
        };
        let array: ArrayRef = match (field.name().as_str(), field.data_type()) {
            ("event_type", _) => Arc::new(Int32Array::from_iter_values(events.iter().map(kind))),
            (name, DataType::Struct(children)) => struct_column(name, children, events)?,
            (name, _) => {
                return Err(connector_error(
                    NAME,
                    &self.spec,
                    format!("column '{name}' is not one of Nexmark's"),
                ))
            }
        };
        if array.data_type() == field.data_type() {
            return Ok(array);
        }
        cast(&array, field.data_type()).map_err(|e| {
            connector_error(
                NAME,
                &self.spec,
                format!(
                    "column '{}' cannot be {}: {e}",
                    field.name(),
                    field.data_type()
                ),
            )
        })
    }
}

fn ints(events: &[Event], f: impl Fn(&Event) -> Option<u64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter(
        events.iter().map(|e| f(e).map(|v| v as i64)),
    ))
}

fn texts<'a>(events: &'a [Event], f: impl Fn(&'a Event) -> Option<&'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter(events.iter().map(f)))
}

fn times(events: &[Event], f: impl Fn(&Event) -> Option<i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter(events.iter().map(f)))
}

fn person(e: &Event) -> Option<&Person> {
    match e {
        Event::Person(p) => Some(p),
        _ => None,
    }
}

fn auction(e: &Event) -> Option<&Auction> {
    match e {
        Event::Auction(a) => Some(a),
        _ => None,
    }
}

fn bid(e: &Event) -> Option<&Bid> {
    match e {
        Event::Bid(b) => Some(b),
        _ => None,
    }
}

/// One field of a kind's ROW, in the generator's own type.
fn child(kind: &str, field: &str, ev: &[Event]) -> Option<ArrayRef> {
    Some(match (kind, field) {
        ("person", "id") => ints(ev, |e| person(e).map(|p| p.id)),
        ("person", "name") => texts(ev, |e| person(e).map(|p| p.name.as_str())),
        ("person", "emailAddress") => texts(ev, |e| person(e).map(|p| p.email_address.as_str())),
        ("person", "creditCard") => texts(ev, |e| person(e).map(|p| p.credit_card.as_str())),
        ("person", "city") => texts(ev, |e| person(e).map(|p| p.city.as_str())),
        ("person", "state") => texts(ev, |e| person(e).map(|p| p.state.as_str())),
        ("person", "dateTime") => times(ev, |e| person(e).map(|p| p.date_time)),
        ("person", "extra") => texts(ev, |e| person(e).map(|p| p.extra.as_str())),
        ("auction", "id") => ints(ev, |e| auction(e).map(|a| a.id)),
        ("auction", "itemName") => texts(ev, |e| auction(e).map(|a| a.item_name.as_str())),
        ("auction", "description") => texts(ev, |e| auction(e).map(|a| a.description.as_str())),
        ("auction", "initialBid") => ints(ev, |e| auction(e).map(|a| a.initial_bid)),
        ("auction", "reserve") => ints(ev, |e| auction(e).map(|a| a.reserve)),
        ("auction", "dateTime") => times(ev, |e| auction(e).map(|a| a.date_time)),
        ("auction", "expires") => times(ev, |e| auction(e).map(|a| a.expires)),
        ("auction", "seller") => ints(ev, |e| auction(e).map(|a| a.seller)),
        ("auction", "category") => ints(ev, |e| auction(e).map(|a| a.category)),
        ("auction", "extra") => texts(ev, |e| auction(e).map(|a| a.extra.as_str())),
        ("bid", "auction") => ints(ev, |e| bid(e).map(|b| b.auction)),
        ("bid", "bidder") => ints(ev, |e| bid(e).map(|b| b.bidder)),
        ("bid", "price") => ints(ev, |e| bid(e).map(|b| b.price)),
        ("bid", "channel") => texts(ev, |e| bid(e).map(|b| b.channel.as_str())),
        ("bid", "url") => texts(ev, |e| bid(e).map(|b| b.url.as_str())),
        ("bid", "dateTime") => times(ev, |e| bid(e).map(|b| b.date_time)),
        ("bid", "extra") => texts(ev, |e| bid(e).map(|b| b.extra.as_str())),
        _ => return None,
    })
}

/// A kind's ROW column: NULL on the rows of the other kinds.
fn struct_column(kind: &str, children: &Fields, events: &[Event]) -> Result<ArrayRef> {
    let wanted = match kind {
        "person" => 0,
        "auction" => 1,
        _ => 2,
    };
    let valid = NullBuffer::from_iter(events.iter().map(|e| {
        matches!(
            (e, wanted),
            (Event::Person(_), 0) | (Event::Auction(_), 1) | (Event::Bid(_), 2)
        )
    }));
    let err = |m: String| EngineError::Connector {
        connector: NAME.into(),
        table: String::new(),
        message: m,
    };
    let arrays = children
        .iter()
        .map(|f| {
            let a = child(kind, f.name(), events)
                .unwrap_or_else(|| new_null_array(f.data_type(), events.len()));
            if a.data_type() == f.data_type() {
                Ok(a)
            } else {
                cast(&a, f.data_type()).map_err(|e| {
                    err(format!(
                        "field {kind}.{} cannot be {}: {e}",
                        f.name(),
                        f.data_type()
                    ))
                })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let s = StructArray::try_new(children.clone(), arrays, Some(valid))
        .map_err(|e| err(format!("column '{kind}': {e}")))?;
    Ok(Arc::new(s))
}

#[async_trait]
impl Source for NexmarkSource {
    fn describe(&self) -> String {
        format!("Nexmark({})", self.spec.name)
    }

    fn supports_checkpoints(&self) -> bool {
        true
    }

    fn restore(&mut self, states: &[Vec<u8>]) -> Result<()> {
        let mut next: Vec<Option<u64>> = vec![];
        for state in states {
            let (n, i, chunk) = decode_position(state).ok_or_else(|| {
                connector_error(NAME, &self.spec, "the checkpoint holds no Nexmark position")
            })?;
            if next.is_empty() {
                next = vec![None; n];
            }
            if next.len() != n {
                return Err(connector_error(
                    NAME,
                    &self.spec,
                    "the checkpoint's positions come from different parallelisms",
                ));
            }
            next[i] = Some(chunk);
        }
        if next.is_empty() {
            return Ok(());
        }
        let next = next
            .into_iter()
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| {
                connector_error(
                    NAME,
                    &self.spec,
                    "the checkpoint lacks a subtask's position",
                )
            })?;
        self.start = Start::Restored(next);
        Ok(())
    }

    fn splits(&self) -> bool {
        true
    }

    fn subtasks(self: Box<Self>, n: usize) -> Result<Vec<Box<dyn Source>>> {
        Ok((0..n)
            .map(|i| {
                let mut sub = (*self).clone();
                sub.subtask = (i, n);
                Box::new(sub) as Box<dyn Source>
            })
            .collect())
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let size = self.chunk_size();
        let events = self.generator.config().events;
        let step = self.subtask.1 as u64;
        let base = self.generator.time_of(0);
        let began = Instant::now();
        let mut chunk = self.first_chunk();
        while !ctx.stop.is_stopped() {
            let Some(first) = chunk.checked_mul(size).filter(|f| *f < events) else {
                break;
            };
            if !self.done_before(chunk) {
                if self.rate_limited {
                    // Not ahead of the wall clock since the start.
                    let due = Duration::from_millis((self.generator.time_of(first) - base) as u64);
                    if let Some(wait) = due.checked_sub(began.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                let last = first.saturating_add(size).min(events);
                ctx.emit(self.batch(first..last)?).await?;
            }
            chunk += step;
            if let Some(id) = ctx.checkpoint_due() {
                ctx.barrier(id, encode_position(self.subtask, chunk))
                    .await?;
            }
        }
        ctx.finished_at(encode_position(self.subtask, chunk));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(subtask: (usize, usize), start: Start) -> NexmarkSource {
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![Field::new(
            "event_type",
            DataType::Int32,
            true,
        )]));
        NexmarkSource {
            spec: TableSpec::new("t", schema, Default::default()),
            generator: Arc::new(NexmarkGenerator::new(NexmarkConfig::default())),
            rate_limited: false,
            subtask,
            start,
        }
    }

    /// The chunks each subtask takes, up to `limit`.
    fn taken(s: &NexmarkSource, limit: u64) -> Vec<u64> {
        let mut c = s.first_chunk();
        let mut out = vec![];
        while c < limit {
            if !s.done_before(c) {
                out.push(c);
            }
            c += s.subtask.1 as u64;
        }
        out
    }

    #[test]
    fn a_restore_at_another_parallelism_takes_every_chunk_once() {
        // Two subtasks had emitted chunks 0, 2, 4 (next 6) and 1, 3 (next 5).
        let before = [vec![0, 2, 4], vec![1, 3]];
        let positions = [encode_position((0, 2), 6), encode_position((1, 2), 5)];
        for n in 1..=4 {
            let mut all = vec![];
            for i in 0..n {
                let mut s = source((i, n), Start::Fresh);
                s.restore(&positions).expect("restore");
                all.extend(taken(&s, 20));
            }
            all.extend(before.iter().flatten());
            all.sort_unstable();
            assert_eq!(all, (0..20).collect::<Vec<_>>(), "at parallelism {n}");
        }
    }

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        assert_eq!(
            decode_position(&encode_position((2, 3), 77)),
            Some((3, 2, 77))
        );
        assert_eq!(decode_position(b"short"), None);
        assert_eq!(decode_position(&encode_position((3, 3), 1)), None);
    }
}
