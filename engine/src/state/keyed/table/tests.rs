//! Tests of the keyed table: spilling, prefetching, flushing, restoring, TTL.

use super::*;
use crate::state::keyed::StateContext;

struct U64;
impl StateCodec<u64> for U64 {
    fn encode(&mut self, v: &mut u64, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn decode(&mut self, _key: &[u8], bytes: &[u8]) -> Result<u64> {
        let b: [u8; 8] = bytes
            .try_into()
            .map_err(|_| crate::EngineError::State("bad".into()))?;
        Ok(u64::from_le_bytes(b))
    }
    fn size(&self, _v: &u64) -> usize {
        8
    }
}

fn context(dir: &str, budget: usize, checkpointed: bool) -> StateContext {
    let path = std::env::temp_dir().join(format!("vigil-table-{}-{dir}", std::process::id()));
    StateContext::new(
        Arc::new(KeyedBackend::new(path, true)),
        128,
        0..=127,
        CacheBudget::new(budget),
        checkpointed,
    )
}

fn count(t: &mut KeyedTable<u64, U64>, key: &[u8]) {
    let v = t
        .get_mut_or(key, 0, || Ok(Some(0)))
        .expect("get")
        .expect("value");
    *v += 1;
}

#[test]
fn a_one_byte_cache_spills_every_entry_and_reads_it_back() {
    let mut ctx = context("tiny", 1, false);
    let mut t = ctx.table("counts", U64, None).expect("table");
    for round in 0..3 {
        for k in 0..100u32 {
            count(&mut t, &k.to_be_bytes());
        }
        assert!(t.cached() <= 1, "round {round}: {} cached", t.cached());
    }
    for k in 0..100u32 {
        assert_eq!(t.get(&k.to_be_bytes(), 0).expect("get"), Some(&3));
    }
    t.remove(&7u32.to_be_bytes());
    assert_eq!(t.get(&7u32.to_be_bytes(), 0).expect("get"), None);
    assert!(ctx.backend().is_open(), "evictions went to RocksDB");
}

/// Keys read back in one batch hold what was stored; keys the database
/// does not hold are known absent and can be created as usual.
#[test]
fn a_prefetch_reads_spilled_values_and_leaves_absent_keys_creatable() {
    let mut ctx = context("prefetch", 4096, true);
    let mut t = ctx.table("counts", U64, None).expect("table");
    for k in 0..500u32 {
        count(&mut t, &k.to_be_bytes());
        count(&mut t, &k.to_be_bytes());
    }
    assert!(t.cached() < 500, "spilled: {} cached", t.cached());
    let keys: Vec<[u8; 4]> = (450..520u32).rev().map(|k| k.to_be_bytes()).collect();
    t.prefetch(keys.iter().map(|k| &k[..]), 0)
        .expect("prefetch");
    for k in 450..500u32 {
        assert_eq!(t.get(&k.to_be_bytes(), 0).expect("get"), Some(&2), "{k}");
    }
    for k in 500..520u32 {
        assert_eq!(t.get(&k.to_be_bytes(), 0).expect("get"), None, "{k}");
        count(&mut t, &k.to_be_bytes());
        assert_eq!(t.get(&k.to_be_bytes(), 0).expect("get"), Some(&1), "{k}");
    }
    t.flush().expect("flush");
    assert_eq!(t.keys().expect("keys").len(), 520);
}

/// A value taken out is gone until put back, whether it was cached or
/// stored; `keys` lists what holds a value in the cache and on disk.
#[test]
fn a_taken_value_is_gone_until_put_back_and_keys_lists_cached_and_stored() {
    let mut ctx = context("take", 1, true);
    let mut t = ctx.table("counts", U64, None).expect("table");
    for k in 0..10u32 {
        count(&mut t, &k.to_be_bytes());
    }
    let three = 3u32.to_be_bytes();
    assert_eq!(t.take(&three, 0).expect("take"), Some(1));
    assert_eq!(t.get(&three, 0).expect("get"), None);
    assert_eq!(t.take(&three, 0).expect("take"), None);
    let mut keys = t.keys().expect("keys");
    keys.sort();
    assert_eq!(keys.len(), 9, "{keys:?}");
    assert!(!keys.contains(&Box::from(&three[..])));
    t.insert(&three, 5, 0).expect("insert");
    assert_eq!(t.get(&three, 0).expect("get"), Some(&5));
    assert_eq!(t.keys().expect("keys").len(), 10);
    t.take(&three, 0).expect("take");
    t.remove(&three);
    t.flush().expect("flush");
    assert_eq!(t.get(&three, 0).expect("get"), None);
    assert_eq!(t.keys().expect("keys").len(), 9);
}

#[test]
fn a_flush_writes_only_what_changed_and_a_cache_that_fits_never_opens_the_database() {
    let mut ctx = context("flush", 1 << 20, true);
    let mut t = ctx.table("counts", U64, None).expect("table");
    count(&mut t, b"a");
    count(&mut t, b"b");
    assert_eq!(t.dirty.len(), 2);
    assert!(!ctx.backend().is_open());
    t.flush().expect("flush");
    assert!(t.dirty.is_empty());
    count(&mut t, b"a");
    assert_eq!(t.dirty.len(), 1, "b did not change");
    t.remove(b"b");
    t.flush().expect("flush");
    let mut stored = vec![];
    ctx.backend()
        .scan(0, 0..=127, |_, k, v| {
            stored.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })
        .expect("scan");
    assert_eq!(stored, vec![(b"a".to_vec(), 2u64.to_le_bytes().to_vec())]);
}

#[test]
fn a_restored_table_reads_from_the_checkpoint_files_not_memory() {
    let root = std::env::temp_dir().join(format!("vigil-table-restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let backend = Arc::new(KeyedBackend::new(root.join("live"), false));
    let ctx =
        |b: Arc<KeyedBackend>| StateContext::new(b, 128, 0..=127, CacheBudget::new(1 << 20), true);
    let mut t = ctx(backend.clone())
        .table("counts", U64, None)
        .expect("table");
    for k in 0..1000u32 {
        count(&mut t, &k.to_be_bytes());
    }
    t.flush().expect("flush");
    let part = root.join("chk");
    assert!(backend.checkpoint_to(&part).expect("checkpoint"));
    let parts = [crate::state::keyed::backend::Part {
        dir: part,
        key_groups: 0..=127,
    }];
    let restored = crate::state::keyed::backend::assemble(&root.join("again"), &parts, &(0..=127))
        .expect("assemble");
    let mut again = ctx(Arc::new(restored))
        .table("counts", U64, None)
        .expect("table");
    assert_eq!(again.cached(), 0, "nothing is loaded by a restore");
    assert_eq!(again.get(&7u32.to_be_bytes(), 0).expect("get"), Some(&1));
    assert_eq!(again.cached(), 1, "an entry is read when used");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn entries_past_their_ttl_are_gone_in_the_cache_and_in_the_database() {
    let mut ctx = context("ttl", 1, false);
    let mut t = ctx
        .table("counts", U64, Some(std::time::Duration::from_millis(10)))
        .expect("table");
    t.insert(b"a", 1, 100).expect("insert");
    t.insert(b"b", 1, 100).expect("insert");
    // One is in RocksDB now, the other cached; both expire.
    assert_eq!(t.get(b"a", 105).expect("get"), Some(&1));
    assert_eq!(t.get(b"a", 110).expect("get"), None);
    assert_eq!(t.get(b"b", 110).expect("get"), None);
    assert_eq!(t.get_mut(b"b", 111).expect("get"), None);
}

/// Under a budget that makes sweeps run in the middle of the work, a mix of
/// prefetches, reads, updates, inserts, takes and removals leaves the table
/// holding what a plain map holds (cached slots are found again by their
/// position, which every sweep and removal changes).
#[test]
fn a_table_swept_between_operations_agrees_with_a_plain_map() {
    let mut ctx = context("churn", 2_000, true);
    let mut t = ctx.table("churn", U64, None).expect("table");
    let mut model = std::collections::HashMap::<u32, u64>::new();
    // A fixed pseudo-random sequence (xorshift), so a failure repeats.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for step in 0..20_000 {
        let r = next();
        let k = (r % 300) as u32;
        let key = k.to_be_bytes();
        match (r >> 32) % 6 {
            0 => {
                let keys: Vec<[u8; 4]> =
                    (0..8).map(|i| ((k + i * 37) % 300).to_be_bytes()).collect();
                t.prefetch(keys.iter().map(|k| &k[..]), 0)
                    .expect("prefetch");
            }
            1 => {
                count(&mut t, &key);
                *model.entry(k).or_insert(0) += 1;
            }
            2 => {
                t.insert(&key, step, 0).expect("insert");
                model.insert(k, step);
            }
            3 => {
                t.remove(&key);
                model.remove(&k);
            }
            4 => {
                let taken = t.take(&key, 0).expect("take");
                assert_eq!(taken, model.get(&k).copied(), "step {step}: take {k}");
                if let Some(v) = taken {
                    t.insert(&key, v + 1, 0).expect("put back");
                    model.insert(k, v + 1);
                }
            }
            _ => {
                let got = t.get(&key, 0).expect("get").copied();
                assert_eq!(got, model.get(&k).copied(), "step {step}: get {k}");
            }
        }
        if step % 5_000 == 4_999 {
            t.flush().expect("flush");
        }
    }
    assert!(ctx.backend().is_open(), "the budget made it spill");
    for k in 0..300u32 {
        let got = t.get(&k.to_be_bytes(), 0).expect("get").copied();
        assert_eq!(got, model.get(&k).copied(), "key {k} at the end");
    }
}
