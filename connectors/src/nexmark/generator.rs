//! The Nexmark event generator (../shared/reference/nexmark.md §1.2-1.4):
//! event `n` has id `n`; `id % 50` makes it a person (0), an auction (1-3)
//! or a bid (4-49); foreign keys point at recent (or hot) persons and
//! auctions; its time is `base + n * 1000 / rate` ms. Each event draws its
//! randomness from a generator seeded with its id (as Beam and nexmark-rs
//! do; Flink's is unseeded), so the same configuration gives the same events.
//! A bid's bidder adds the person id offset once, as Beam does (Flink's
//! generator adds it twice, pointing bids at persons not yet created).

use chrono::DateTime;
use serde::{Serialize, Serializer};

const FIRST_PERSON_ID: u64 = 1000;
const FIRST_AUCTION_ID: u64 = 1000;
const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
const HOT_RATIO_BATCH: u64 = 100;
const NUM_ACTIVE_PEOPLE: u64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
const HOT_CHANNELS_RATIO: u64 = 2;

const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const HOT_URLS: [&str; 4] = [
    "https://www.nexmark.com/googl/item.htm?query=1",
    "https://www.nexmark.com/faceb/item.htm?query=1",
    "https://www.nexmark.com/baidu/item.htm?query=1",
    "https://www.nexmark.com/apple/item.htm?query=1",
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct NexmarkConfig {
    /// How many events.
    pub events: u64,
    /// Events per second of event time (their density, not an emit speed).
    pub rate: u64,
    /// The first event's time, ms since the epoch.
    pub base_time_ms: i64,
    /// Persons, auctions and bids in each epoch of `sum` events (Flink's
    /// `person.proportion`, `auction.proportion`, `bid.proportion`).
    pub proportions: [u64; 3],
    /// How often a bid goes to a hot auction or comes from a hot bidder,
    /// and an auction from a hot seller (`bid.hot-ratio.auctions`, `bid.hot-ratio.bidders`,
    /// `auction.hot-ratio.sellers`).
    pub hot_ratios: HotRatios,
    /// Average sizes in bytes of a person, an auction and a bid, which the
    /// `extra` column pads them to (`person.avg-size`, ...).
    pub avg_sizes: [u64; 3],
}

/// How skewed the foreign keys are: `x` in `HotRatios { x: n }` means that
/// `n - 1` in `n` draws pick a hot value.
#[derive(Debug, Clone, Copy)]
pub struct HotRatios {
    /// A bid's auction.
    pub auctions: u64,
    /// A bid's bidder.
    pub bidders: u64,
    /// An auction's seller.
    pub sellers: u64,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        Self {
            events: 10_000,
            rate: 10_000,
            // 2015-07-15 00:00:00 UTC, as in the Nexmark examples.
            base_time_ms: 1_436_918_400_000,
            proportions: [1, 3, 46],
            hot_ratios: HotRatios {
                auctions: 2,
                bidders: 4,
                sellers: 4,
            },
            avg_sizes: [200, 500, 100],
        }
    }
}

/// A person (Flink's column names).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: u64,
    pub name: String,
    pub email_address: String,
    pub credit_card: String,
    pub city: String,
    pub state: String,
    #[serde(serialize_with = "as_text")]
    pub date_time: i64,
    pub extra: String,
}

/// An auction.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Auction {
    pub id: u64,
    pub item_name: String,
    pub description: String,
    pub initial_bid: u64,
    pub reserve: u64,
    #[serde(serialize_with = "as_text")]
    pub date_time: i64,
    #[serde(serialize_with = "as_text")]
    pub expires: i64,
    pub seller: u64,
    pub category: u64,
    pub extra: String,
}

/// A bid.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bid {
    pub auction: u64,
    pub bidder: u64,
    pub price: u64,
    pub channel: String,
    pub url: String,
    #[serde(serialize_with = "as_text")]
    pub date_time: i64,
    pub extra: String,
}

/// A time (ms since the epoch) as Flink's JSON format writes a TIMESTAMP(3):
/// `2015-07-15 00:00:00.000`.
pub fn format_time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

fn as_text<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(*ms))
}

/// One generated event.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A bid on an auction.
    Bid(Bid),
}

/// SplitMix64: tiny, fast and fully specified, so that a seed gives the same
/// numbers on every platform and crate version (a generic RNG crate does not
/// promise that).
struct Rng(u64);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, n)` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// `nextString(max)`: 3 to max-1 chars of a-z, a space with P 1/13, trimmed.
    fn string(&mut self, max: u64) -> String {
        let len = 3 + self.below(max - 3);
        let s: String = (0..len)
            .map(|_| {
                if self.below(13) == 0 {
                    ' '
                } else {
                    (b'a' + self.below(26) as u8) as char
                }
            })
            .collect();
        s.trim().to_string()
    }
    /// `extra` padding bringing an event to about `avg` bytes.
    fn extra(&mut self, avg: u64, fixed: u64) -> String {
        let d = avg.saturating_sub(fixed);
        let delta = (d as f64 * 0.2).round() as u64;
        let len = d - delta + self.below(2 * delta + 1);
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
    /// Log-uniform price in cents, 100 to 10^8.
    fn price(&mut self) -> u64 {
        (10f64.powf(self.unit() * 6.0) * 100.0).round() as u64
    }
}

/// The event mix of a configuration (../shared/reference/nexmark.md §1.3).
#[derive(Debug, Clone, Copy)]
struct Mix {
    person: u64,
    auction: u64,
    total: u64,
}

impl Mix {
    fn of(config: &NexmarkConfig) -> Self {
        let [p, a, b] = config.proportions;
        Mix {
            person: p,
            auction: a,
            total: (p + a + b).max(1),
        }
    }

    fn last_base0_person_id(&self, id: u64) -> u64 {
        let epoch = id / self.total;
        let offset = (id % self.total).min(self.person.saturating_sub(1));
        epoch * self.person + offset
    }

    fn last_base0_auction_id(&self, id: u64) -> u64 {
        let mut epoch = id / self.total;
        let off = id % self.total;
        let offset = if off < self.person {
            // Before this epoch's first auction: the previous epoch's last.
            if epoch == 0 {
                return 0;
            }
            epoch -= 1;
            self.auction.saturating_sub(1)
        } else if off >= self.person + self.auction {
            self.auction.saturating_sub(1)
        } else {
            off - self.person
        };
        epoch * self.auction + offset
    }

    fn next_base0_person_id(&self, id: u64, rng: &mut Rng) -> u64 {
        let num_people = self.last_base0_person_id(id) + 1;
        let active = num_people.min(NUM_ACTIVE_PEOPLE);
        num_people - active + rng.below(active + PERSON_ID_LEAD)
    }

    fn next_base0_auction_id(&self, id: u64, rng: &mut Rng) -> u64 {
        let max = self.last_base0_auction_id(id);
        let min = max.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
        min + rng.below(max - min + 1 + AUCTION_ID_LEAD)
    }
}

/// Generates the events of a [`NexmarkConfig`] in id order.
pub struct NexmarkGenerator {
    config: NexmarkConfig,
    mix: Mix,
    next: u64,
}

impl NexmarkGenerator {
    /// A generator from event 0.
    pub fn new(config: NexmarkConfig) -> Self {
        Self {
            mix: Mix::of(&config),
            config,
            next: 0,
        }
    }

    /// What it generates.
    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    /// The event time of event `n`, ms since the epoch.
    pub fn time_of(&self, n: u64) -> i64 {
        let us_per_event = 1_000_000.0 / self.config.rate.max(1) as f64;
        self.config.base_time_ms + (n as f64 * us_per_event / 1000.0) as i64
    }

    /// Event `id`.
    pub fn event(&self, id: u64) -> Event {
        let mut rng = Rng::seeded(id);
        let ts = self.time_of(id);
        let date_time = ts;
        let mix = self.mix;
        let [person_size, auction_size, bid_size] = self.config.avg_sizes;
        let hot = self.config.hot_ratios;
        let rem = id % mix.total;
        if rem < mix.person {
            let name = format!(
                "{} {}",
                FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize],
                LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize]
            );
            let email_address = format!("{}@{}.com", rng.string(7), rng.string(5));
            let credit_card = (0..4)
                .map(|_| format!("{:04}", rng.below(10_000)))
                .collect::<Vec<_>>()
                .join(" ");
            let city = CITIES[rng.below(CITIES.len() as u64) as usize].to_string();
            let state = STATES[rng.below(STATES.len() as u64) as usize].to_string();
            let extra = rng.extra(person_size, 56);
            Event::Person(Person {
                id: mix.last_base0_person_id(id) + FIRST_PERSON_ID,
                name,
                email_address,
                credit_card,
                city,
                state,
                date_time,
                extra,
            })
        } else if rem < mix.person + mix.auction {
            let seller = if rng.below(hot.sellers) > 0 {
                (mix.last_base0_person_id(id) / HOT_RATIO_BATCH) * HOT_RATIO_BATCH
            } else {
                mix.next_base0_person_id(id, &mut rng)
            };
            let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES);
            let initial_bid = rng.price();
            let item_name = rng.string(20);
            let description = rng.string(100);
            let reserve = initial_bid + rng.price();
            // Open for up to twice the event time of the next in-flight auctions' events.
            let horizon_events = NUM_IN_FLIGHT_AUCTIONS * mix.total / mix.auction.max(1);
            let horizon = (self.time_of(id + horizon_events) - ts).max(1) as u64;
            let expires = ts + 1 + rng.below(2 * horizon) as i64;
            let extra = rng.extra(auction_size, 72);
            Event::Auction(Auction {
                id: mix.last_base0_auction_id(id) + FIRST_AUCTION_ID,
                item_name,
                description,
                initial_bid,
                reserve,
                date_time,
                expires,
                seller: seller + FIRST_PERSON_ID,
                category,
                extra,
            })
        } else {
            let auction = if rng.below(hot.auctions) > 0 {
                (mix.last_base0_auction_id(id) / HOT_RATIO_BATCH) * HOT_RATIO_BATCH
            } else {
                mix.next_base0_auction_id(id, &mut rng)
            };
            let bidder = if rng.below(hot.bidders) > 0 {
                (mix.last_base0_person_id(id) / HOT_RATIO_BATCH) * HOT_RATIO_BATCH + 1
            } else {
                mix.next_base0_person_id(id, &mut rng)
            };
            let price = rng.price();
            let (channel, url) = if rng.below(HOT_CHANNELS_RATIO) > 0 {
                let i = rng.below(HOT_CHANNELS.len() as u64) as usize;
                (HOT_CHANNELS[i].to_string(), HOT_URLS[i].to_string())
            } else {
                let i = rng.below(10_000);
                let mut url = format!(
                    "https://www.nexmark.com/{}/{}/{}/item.htm?query=1",
                    rng.string(5).replace(' ', "_"),
                    rng.string(5).replace(' ', "_"),
                    rng.string(5).replace(' ', "_")
                );
                if rng.below(10) > 0 {
                    url.push_str(&format!(
                        "&channel_id={}",
                        (i as i32).reverse_bits().unsigned_abs()
                    ));
                }
                (format!("channel-{i}"), url)
            };
            let extra = rng.extra(bid_size, 32);
            Event::Bid(Bid {
                auction: auction + FIRST_AUCTION_ID,
                bidder: bidder + FIRST_PERSON_ID,
                price,
                channel,
                url,
                date_time,
                extra,
            })
        }
    }
}

impl Iterator for NexmarkGenerator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.next >= self.config.events {
            return None;
        }
        let e = self.event(self.next);
        self.next += 1;
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_and_ids_follow_the_spec() {
        let events: Vec<Event> = NexmarkGenerator::new(NexmarkConfig {
            events: 500,
            ..Default::default()
        })
        .collect();
        let persons: Vec<&Person> = events
            .iter()
            .filter_map(|e| match e {
                Event::Person(p) => Some(p),
                _ => None,
            })
            .collect();
        let auctions: Vec<&Auction> = events
            .iter()
            .filter_map(|e| match e {
                Event::Auction(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!((persons.len(), auctions.len()), (10, 30));
        assert_eq!(events.len() - 40, 460);
        // Ids are dense from 1000, in order.
        assert!(persons.iter().map(|p| p.id).eq(1000..1010));
        assert!(auctions.iter().map(|a| a.id).eq(1000..1030));
        for a in &auctions {
            assert!((10..15).contains(&a.category));
            assert!(a.reserve > a.initial_bid);
            assert!(a.expires > a.date_time);
        }
        assert!(persons.iter().all(|p| STATES.contains(&p.state.as_str())));
        for e in &events {
            if let Event::Bid(b) = e {
                assert!((100..=100_000_000).contains(&b.price));
                // At most AUCTION_ID_LEAD auctions ahead of the last created.
                assert!(b.auction < 1030 + AUCTION_ID_LEAD);
            }
        }
    }

    #[test]
    fn an_event_is_the_same_whenever_it_is_generated() {
        let g = NexmarkGenerator::new(NexmarkConfig::default());
        let a = format!("{:?}", g.event(1234));
        let b = format!("{:?}", g.event(1234));
        assert_eq!(a, b);
        assert_ne!(a, format!("{:?}", g.event(1235)));
    }
}
