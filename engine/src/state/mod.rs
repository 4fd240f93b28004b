//! Operator state and checkpoints.
//!
//! Every stateful operator keeps its state in memory while it runs (that is
//! its write-back cache: hot keys never leave it) and writes what changed since
//! the previous checkpoint through a [`StateWriter`] when a checkpoint barrier
//! passes it. The checkpoint coordinator applies all of a checkpoint's writes to
//! one RocksDB database at once and then takes a RocksDB checkpoint of it (hard
//! links to its SST files), so a checkpoint costs the keys that changed, and
//! unchanged SST files are shared between checkpoints.
//!
//! Keys are laid out as `node (u32 BE) | key group (u16 BE) | operator key`.
//! Tasks write under their node's index in the graph; the coordinator stores
//! each key under its node's stable identity instead ([`StateUid`], derived
//! from the query's structure), and a restore maps identities back to the
//! nodes of the graph being started, so that state survives a change of node
//! order, connector addresses or paths.
//! Keyed state goes to the key group of its key (a hash of the key, modulo a
//! fixed number of groups per job, as Flink's max parallelism), so that a later
//! change can restore a checkpoint group by group on a different parallelism;
//! state that belongs to the operator as a whole (a watermark, a source's
//! offsets) uses [`OPERATOR_STATE`].

pub mod arrow_state;
pub mod checkpoints;
pub mod keyed;
pub mod object_stores;
pub mod remote;
pub mod shared;
pub mod store;

use crate::graph::{NodeId, StateUid};

/// The number of key groups when `pipeline.max-parallelism` is not set (Flink's
/// default lower bound).
pub const DEFAULT_KEY_GROUPS: u16 = 128;

/// The number of key groups a job's `pipeline.max-parallelism` setting asks
/// for ([`DEFAULT_KEY_GROUPS`] when unset), or what is wrong with it.
pub fn key_groups_setting(value: Option<&str>) -> std::result::Result<u16, String> {
    match value {
        Some(v) => v
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=32768).contains(n))
            .ok_or_else(|| {
                format!(
                    "invalid 'pipeline.max-parallelism' = '{v}'; it must be between 1 and 32768"
                )
            }),
        None => Ok(DEFAULT_KEY_GROUPS),
    }
}

/// The instances of each keyed operator a job's `parallelism.default` asks
/// for (1 when unset), at most its key groups.
pub fn parallelism_setting(
    settings: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<usize, String> {
    let groups = key_groups_setting(settings.get("pipeline.max-parallelism").map(String::as_str))?;
    match settings.get("parallelism.default") {
        None => Ok(1),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=groups as usize).contains(n))
            .ok_or_else(|| {
                format!("invalid 'parallelism.default' = '{v}'; it must be between 1 and 'pipeline.max-parallelism' ({groups})")
            }),
    }
}

/// The key group of state that is not keyed.
pub const OPERATOR_STATE: u16 = u16::MAX;

/// A change to the state store.
#[derive(Debug, Clone)]
pub enum StateOp {
    /// Sets a key.
    Put(Vec<u8>, Vec<u8>),
    /// Removes a key.
    Delete(Vec<u8>),
}

impl StateOp {
    /// The same change with its node index replaced by that node's identity
    /// (`uids[node]`).
    pub fn under_uids(self, uids: &[StateUid]) -> crate::Result<Self> {
        let rekey = |mut key: Vec<u8>| -> crate::Result<Vec<u8>> {
            let uid = split_store_key(&key)
                .and_then(|(node, _, _)| uids.get(node))
                .ok_or_else(|| {
                    crate::EngineError::State(format!(
                        "a state key names no node of the graph ({} bytes)",
                        key.len()
                    ))
                })?;
            key[..4].copy_from_slice(&uid.to_be_bytes());
            Ok(key)
        };
        Ok(match self {
            StateOp::Put(k, v) => StateOp::Put(rekey(k)?, v),
            StateOp::Delete(k) => StateOp::Delete(rekey(k)?),
        })
    }
}

/// One stored entry of an operator, as handed back on restore.
#[derive(Debug, Clone)]
pub struct StateEntry {
    /// Its key group ([`OPERATOR_STATE`] for operator-wide state).
    pub key_group: u16,
    /// The operator's own key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

/// The value stored under `key` among `entries`.
pub fn entry_value<'a>(entries: &'a [StateEntry], key: &[u8]) -> Option<&'a [u8]> {
    entries
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_slice())
}

/// Saves an operator's metadata as JSON under `meta`.
pub fn put_meta<T: serde::Serialize>(
    w: &mut StateWriter<'_>,
    meta: &T,
    what: &str,
) -> crate::Result<()> {
    let bytes = serde_json::to_vec(meta)
        .map_err(|e| crate::EngineError::State(format!("{what} state: {e}")))?;
    w.put(OPERATOR_STATE, b"meta", bytes);
    Ok(())
}

/// An operator's metadata saved as JSON under `meta`, if there is any.
pub fn saved_meta<T: serde::de::DeserializeOwned>(
    entries: &[StateEntry],
    what: &str,
) -> crate::Result<Option<T>> {
    let Some(meta) = entry_value(entries, b"meta") else {
        return Ok(None);
    };
    serde_json::from_slice(meta)
        .map(Some)
        .map_err(|e| crate::EngineError::State(format!("{what} state: {e}")))
}

/// Prefix of every key of `node`.
pub fn node_prefix(node: NodeId) -> [u8; 4] {
    (node as u32).to_be_bytes()
}

/// The full store key of an operator key.
pub fn store_key(node: NodeId, key_group: u16, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + key.len());
    k.extend_from_slice(&node_prefix(node));
    k.extend_from_slice(&key_group.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Splits a store key into node, key group and operator key.
pub fn split_store_key(key: &[u8]) -> Option<(NodeId, u16, &[u8])> {
    if key.len() < 6 {
        return None;
    }
    let node = u32::from_be_bytes([key[0], key[1], key[2], key[3]]) as NodeId;
    let group = u16::from_be_bytes([key[4], key[5]]);
    Some((node, group, &key[6..]))
}

/// The key group of a key (its bytes in Arrow's row format, or any stable
/// encoding). MurmurHash3's 32-bit finalizer over FNV-1a: stable across runs,
/// versions and machines, unlike the hashers of the standard library.
pub fn key_group_of(key: &[u8], groups: u16) -> u16 {
    let mut h = fnv1a(FNV_OFFSET, key);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    (h % u32::from(groups.max(1))) as u16
}

/// FNV-1a's initial value.
pub(crate) const FNV_OFFSET: u32 = 0x811c_9dc5;

/// 32-bit FNV-1a of `bytes` continued from `h`: stable across runs, versions
/// and machines (what it hashes is stored), unlike the standard library's.
pub(crate) fn fnv1a(mut h: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The parallel instance (of `parallelism`) that owns `key_group` of
/// `key_groups`: contiguous ranges, as Flink assigns them, so that a restore at
/// another parallelism hands each instance whole key groups.
pub fn instance_of(key_group: u16, parallelism: usize, key_groups: u16) -> usize {
    (key_group as usize * parallelism) / (key_groups.max(1) as usize)
}

/// Where an operator writes its state at a checkpoint barrier.
pub struct StateWriter<'a> {
    node: NodeId,
    key_groups: u16,
    ops: &'a mut Vec<StateOp>,
}

impl<'a> StateWriter<'a> {
    /// A writer for `node` appending to `ops`.
    pub fn new(node: NodeId, key_groups: u16, ops: &'a mut Vec<StateOp>) -> Self {
        Self {
            node,
            key_groups,
            ops,
        }
    }

    /// The job's number of key groups.
    pub fn key_groups(&self) -> u16 {
        self.key_groups
    }

    /// Sets `key` in `key_group`.
    pub fn put(&mut self, key_group: u16, key: &[u8], value: Vec<u8>) {
        self.ops
            .push(StateOp::Put(store_key(self.node, key_group, key), value));
    }

    /// Removes `key` from `key_group`.
    pub fn delete(&mut self, key_group: u16, key: &[u8]) {
        self.ops
            .push(StateOp::Delete(store_key(self.node, key_group, key)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_keys_round_trip() {
        let k = store_key(7, 42, b"abc");
        assert_eq!(split_store_key(&k), Some((7, 42, &b"abc"[..])));
        assert_eq!(split_store_key(b"abc"), None);
    }

    #[test]
    fn key_groups_are_stable_and_spread() {
        assert_eq!(
            key_group_of(b"sensor-1", 128),
            key_group_of(b"sensor-1", 128)
        );
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            seen.insert(key_group_of(format!("key-{i}").as_bytes(), 128));
        }
        assert_eq!(seen.len(), 128, "10k keys should reach every group");
        assert!(key_group_of(b"x", 1) == 0);
    }

    #[test]
    fn instances_own_contiguous_key_group_ranges() {
        let owners: Vec<usize> = (0..128).map(|g| instance_of(g, 3, 128)).collect();
        assert_eq!(owners[0], 0);
        assert_eq!(owners[127], 2);
        assert!(
            owners.windows(2).all(|w| w[0] <= w[1]),
            "ranges are contiguous"
        );
        for i in 0..3 {
            let n = owners.iter().filter(|o| **o == i).count();
            assert!((42..=43).contains(&n), "instance {i} owns {n} groups");
        }
        assert!((0..128).all(|g| instance_of(g, 1, 128) == 0));
    }
}
