//! Who runs a distributed job: a Kafka consumer group per job decides it.
//!
//! Every process of the job joins the group `<prefix>-members`, subscribed to
//! the job-owned topic of the same name, which has one partition per key
//! group. The group's range assignor deals the partitions out as contiguous
//! ranges, one per member; the members, ordered by their first partition,
//! are the job's processes `0..n` (process `i` runs share `i` of every
//! operator, see [`vigil_engine::graph::Share`]). Every rebalance bumps the
//! group's generation and tells every member (the eager protocol: reactive
//! mode restarts every process on any change, so the cooperative protocol's
//! "others keep running" would not help, while its silence towards members
//! whose partitions stay would leave them running on a stale view).
//!
//! Members are dynamic (no `group.instance.id`): a static member that
//! restarts within the session timeout gets its partitions back *without* a
//! rebalance, so the others would not roll back to the checkpoint with it.
//!
//! A process whose part of a bounded job has ended says so on partition 0
//! before it leaves, so that the others, which no longer need it, finish
//! rather than restart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;
use vigil_engine::{EngineError, Result};

use super::client::{client_config, flush_producer, DeliveryContext, LogContext};
use super::shuffle::ensure_topic;

/// How long the group's description may take to show an assignment.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

fn error(group: &str, message: impl std::fmt::Display) -> EngineError {
    EngineError::Graph(format!("membership of '{group}': {message}"))
}

/// One member of the job in a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The group's id of the member (new for every process start).
    pub id: String,
    /// Its worker name (its `client.id`).
    pub name: String,
    /// The key groups it owns.
    pub key_groups: Vec<u16>,
}

/// The job's members after a rebalance, as every one of them sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Unique to this membership: the group's generation, with a hash of
    /// the members' ids (a group that was deleted starts counting again,
    /// but its members' ids are new).
    pub generation: u64,
    /// Which member this process is.
    pub index: usize,
    /// Every member, in share order.
    pub members: Vec<Member>,
}

impl View {
    /// The members' ids.
    pub fn ids(&self) -> BTreeSet<String> {
        self.members.iter().map(|m| m.id.clone()).collect()
    }
}

/// What the rebalance callback saw, for the polling thread.
#[derive(Default)]
struct Seen {
    /// The group generation and this member's id of the last assignment.
    assigned: Option<(i32, String)>,
    revoked: bool,
}

struct MemberContext {
    log: LogContext,
    seen: Mutex<Seen>,
}

impl ClientContext for MemberContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        match rebalance {
            Rebalance::Assign(_) => {
                seen.assigned = group_generation(consumer);
                seen.revoked = false;
            }
            Rebalance::Revoke(_) => {
                seen.assigned = None;
                seen.revoked = true;
            }
            Rebalance::Error(e) => tracing::warn!(group = %self.log.table, "rebalance failed: {e}"),
        }
    }
}

/// The group generation and member id librdkafka holds for `consumer`
/// (rdkafka wraps the group metadata for transactions only).
fn group_generation<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<(i32, String)> {
    use rdkafka::bindings as rd;
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is the live handle `consumer` owns; the metadata copy is
    // read while alive (its member id copied out) and then freed.
    unsafe {
        let md = rd::rd_kafka_consumer_group_metadata(rk);
        if md.is_null() {
            return None;
        }
        let generation = rd::rd_kafka_consumer_group_metadata_generation_id(md);
        let member = rd::rd_kafka_consumer_group_metadata_member_id(md);
        let member = (!member.is_null()).then(|| {
            std::ffi::CStr::from_ptr(member)
                .to_string_lossy()
                .into_owned()
        });
        rd::rd_kafka_consumer_group_metadata_destroy(md);
        Some((generation, member?))
    }
}

/// The partitions of `topic` in a consumer-protocol assignment (version,
/// then topics with their partitions, then user data).
fn parse_assignment(bytes: &[u8], topic: &str) -> Option<Vec<u16>> {
    let mut at = 2; // version
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let s = bytes.get(*at..*at + n)?;
        *at += n;
        Some(s)
    };
    let topics = i32::from_be_bytes(take(&mut at, 4)?.try_into().ok()?);
    let mut out = vec![];
    for _ in 0..topics.max(0) {
        let len = i16::from_be_bytes(take(&mut at, 2)?.try_into().ok()?);
        let name = take(&mut at, len.max(0) as usize)?.to_vec();
        let n = i32::from_be_bytes(take(&mut at, 4)?.try_into().ok()?);
        for _ in 0..n.max(0) {
            let p = i32::from_be_bytes(take(&mut at, 4)?.try_into().ok()?);
            if name == topic.as_bytes() {
                out.push(u16::try_from(p).ok()?);
            }
        }
    }
    Some(out)
}

/// This process's membership of its job's group.
pub struct Membership {
    group: String,
    properties: BTreeMap<String, String>,
    views: watch::Receiver<Option<View>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Membership {
    /// Joins the group `topic` (creating the topic with `key_groups`
    /// partitions when missing) as worker `name`.
    pub fn join(
        properties: &BTreeMap<String, String>,
        topic: &str,
        key_groups: u16,
        replication: i32,
        name: &str,
    ) -> Result<Self> {
        ensure_topic(properties, topic, key_groups, replication)?;
        let mut config = client_config(properties).map_err(|e| error(topic, e))?;
        for (k, v) in [
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
        ] {
            if !properties.contains_key(k) {
                config.set(k, v);
            }
        }
        config
            .set("group.id", topic)
            .set("client.id", name)
            .set("partition.assignment.strategy", "range")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest");
        let context = MemberContext {
            log: LogContext {
                table: topic.to_string(),
            },
            seen: Mutex::new(Seen::default()),
        };
        let consumer: BaseConsumer<MemberContext> = config
            .create_with_context(context)
            .map_err(|e| error(topic, format!("invalid Kafka configuration: {e}")))?;
        consumer.subscribe(&[topic]).map_err(|e| error(topic, e))?;
        let (tx, views) = watch::channel(None);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let group = topic.to_string();
            std::thread::Builder::new()
                .name("vigil-membership".into())
                .spawn(move || follow(consumer, &group, &tx, &stop))
                .map_err(|e| error(topic, e))?
        };
        Ok(Self {
            group: topic.to_string(),
            properties: properties.clone(),
            views,
            stop,
            thread: Some(thread),
        })
    }

    /// The current view (`None` while the group rebalances).
    pub fn views(&self) -> watch::Receiver<Option<View>> {
        self.views.clone()
    }

    /// Says that this process's part of generation `generation` has ended.
    pub fn announce_finished(&self, generation: u64, member: &str) -> Result<()> {
        let config = client_config(&self.properties).map_err(|e| error(&self.group, e))?;
        let producer: ThreadedProducer<DeliveryContext> = config
            .create_with_context(DeliveryContext::new(&self.group))
            .map_err(|e| error(&self.group, e))?;
        let value = format!("{generation}:{member}");
        producer
            .send(
                BaseRecord::to(&self.group)
                    .partition(0)
                    .key("finished")
                    .payload(&value),
            )
            .map_err(|(e, _)| error(&self.group, e))?;
        flush_producer(&producer);
        if producer.context().failed.load(Ordering::Relaxed) > 0 {
            return Err(error(&self.group, "cannot say that this process finished"));
        }
        Ok(())
    }

    /// The members that said their part of `generation` ended.
    pub fn finished(&self, generation: u64) -> Result<BTreeSet<String>> {
        let config = client_config(&self.properties).map_err(|e| error(&self.group, e))?;
        let consumer: BaseConsumer = config
            .clone()
            .set("group.id", format!("{}-reader", self.group))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| error(&self.group, e))?;
        let (low, high) = consumer
            .fetch_watermarks(&self.group, 0, Duration::from_secs(10))
            .map_err(|e| error(&self.group, e))?;
        let mut out = BTreeSet::new();
        if high <= low {
            return Ok(out);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.group, 0, Offset::Offset(low))
            .map_err(|e| error(&self.group, e))?;
        consumer.assign(&tpl).map_err(|e| error(&self.group, e))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let prefix = format!("{generation}:");
        while Instant::now() < deadline {
            let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let m = m.map_err(|e| error(&self.group, e))?;
            if let Some(member) = m
                .payload()
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|p| p.strip_prefix(&prefix))
            {
                out.insert(member.to_string());
            }
            if m.offset() + 1 >= high {
                break;
            }
        }
        Ok(out)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Closing the consumer leaves the group at once.
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls the group (which keeps this member in it) and publishes a view
/// after every assignment.
fn follow(
    consumer: BaseConsumer<MemberContext>,
    group: &str,
    tx: &watch::Sender<Option<View>>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        // Records on the topic (the finished notes) are not this loop's.
        let _ = consumer.poll(Duration::from_millis(100));
        let assigned = {
            let Ok(mut seen) = consumer.context().seen.lock() else {
                return;
            };
            if std::mem::take(&mut seen.revoked) {
                tx.send_replace(None);
            }
            seen.assigned.take()
        };
        let Some((generation, me)) = assigned else {
            continue;
        };
        match describe(&consumer, group, generation, &me, stop) {
            Ok(Some(view)) => {
                tracing::info!(
                    group,
                    generation = view.generation,
                    members = view.members.len(),
                    index = view.index,
                    "job membership"
                );
                tx.send_replace(Some(view));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(group, "cannot read the job's members: {e}"),
        }
    }
}

/// The group's state and members (with their key groups, in share order)
/// as its coordinator describes them now; `None` if it does not know it.
fn group_members<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    group: &str,
) -> Result<Option<(String, Vec<Member>)>> {
    let list = consumer
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .map_err(|e| error(group, e))?;
    let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
        return Ok(None);
    };
    let mut members: Vec<Member> = g
        .members()
        .iter()
        .map(|m| Member {
            id: m.id().to_string(),
            name: m.client_id().to_string(),
            key_groups: m
                .assignment()
                .and_then(|a| parse_assignment(a, group))
                .unwrap_or_default(),
        })
        .collect();
    members.sort_by_key(|m| m.key_groups.first().copied().unwrap_or(u16::MAX));
    Ok(Some((g.state().to_string(), members)))
}

/// The state and members of the job group `group` on the cluster of
/// `properties` (for `vigil members`).
pub fn describe_group(
    properties: &BTreeMap<String, String>,
    group: &str,
) -> Result<(String, Vec<Member>)> {
    let consumer: BaseConsumer = client_config(properties)
        .map_err(|e| error(group, e))?
        .create()
        .map_err(|e| error(group, format!("invalid Kafka configuration: {e}")))?;
    Ok(group_members(&consumer, group)?.unwrap_or_else(|| ("Dead".into(), vec![])))
}

/// The view of generation `generation`, once the group's description shows
/// its assignment (`None` if a newer rebalance began meanwhile).
fn describe(
    consumer: &BaseConsumer<MemberContext>,
    group: &str,
    generation: i32,
    me: &str,
    stop: &AtomicBool,
) -> Result<Option<View>> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        if let Some((state, members)) = group_members(consumer, group)? {
            let settled = state == "Stable"
                && members.iter().all(|m| !m.key_groups.is_empty())
                && members.iter().any(|m| m.id == me);
            if settled {
                let index = members.iter().position(|m| m.id == me).unwrap_or(0);
                // FNV-1a of the members' ids: the same in every process and
                // every Vigil version.
                let mut hash: u32 = 0x811c_9dc5;
                for b in members.iter().flat_map(|m| m.id.bytes().chain([0])) {
                    hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
                }
                return Ok(Some(View {
                    generation: (u64::from(hash) << 32) | u64::from(generation as u32),
                    index,
                    members,
                }));
            }
        }
        if Instant::now() > deadline {
            return Err(error(group, "the group did not settle"));
        }
        // A newer rebalance supersedes this one.
        let _ = consumer.poll(Duration::from_millis(200));
        if consumer
            .context()
            .seen
            .lock()
            .map_or(true, |s| s.revoked || s.assigned.is_some())
        {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assignment_lists_the_partitions_of_the_topic() {
        let mut b = vec![0, 0]; // version
        b.extend_from_slice(&2i32.to_be_bytes());
        for (topic, parts) in [("other", vec![9i32]), ("m", vec![3, 4])] {
            b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
            b.extend_from_slice(topic.as_bytes());
            b.extend_from_slice(&(parts.len() as i32).to_be_bytes());
            for p in parts {
                b.extend_from_slice(&p.to_be_bytes());
            }
        }
        b.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
        assert_eq!(parse_assignment(&b, "m"), Some(vec![3, 4]));
        assert_eq!(parse_assignment(&b[..7], "m"), None);
    }
}
