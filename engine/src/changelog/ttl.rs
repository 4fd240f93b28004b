//! State time-to-live (`table.exec.state.ttl`): as in Flink, state of a key
//! that has not been touched for the TTL, in processing time, is dropped
//! without emitting anything, so that an updating query over an unbounded key
//! space keeps bounded state.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::time::parse_duration;

/// The option's name.
pub const STATE_TTL: &str = "table.exec.state.ttl";

/// The TTL a job's settings ask for (`None`: keep state forever, Flink's
/// default `0`), or what is wrong with the value.
pub fn ttl_setting(settings: &BTreeMap<String, String>) -> Result<Option<Duration>, String> {
    let Some(v) = settings.get(STATE_TTL) else {
        return Ok(None);
    };
    match parse_duration(v) {
        Some(d) if d.is_zero() => Ok(None),
        Some(d) => Ok(Some(d)),
        None => Err(format!(
            "invalid '{STATE_TTL}' = '{v}'; write it like '1 h', '10 min' or '0' (keep state forever)"
        )),
    }
}

/// Milliseconds of processing time (wall clock).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Decides when to sweep expired state: often enough that state lives at
/// most a quarter TTL longer than asked, rarely enough that sweeping (a pass
/// over the keys) costs little.
#[derive(Debug, Clone)]
pub struct Ttl {
    ttl_ms: u64,
    next_sweep: u64,
}

impl Ttl {
    /// Expiry after `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl_ms: (ttl.as_millis() as u64).max(1),
            next_sweep: 0,
        }
    }

    /// Whether state last touched at `touched` has expired at `now`.
    pub fn expired(&self, touched: u64, now: u64) -> bool {
        now.saturating_sub(touched) >= self.ttl_ms
    }

    /// Whether a sweep is due at `now` (and, if so, schedules the next one).
    pub fn sweep_due(&mut self, now: u64) -> bool {
        if now < self.next_sweep {
            return false;
        }
        self.next_sweep = now + (self.ttl_ms / 4).max(1);
        true
    }
}

/// If `ttl` is set and a sweep is due now, the test of whether state last
/// touched at a given time has expired (the prologue every operator's sweep shares).
pub fn sweep(ttl: &mut Option<Ttl>) -> Option<impl Fn(u64) -> bool> {
    let t = ttl.as_mut()?;
    let now = now_ms();
    if !t.sweep_due(now) {
        return None;
    }
    let t = t.clone();
    Some(move |touched| t.expired(touched, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_keeps_state_forever_and_bad_values_are_explained() {
        let mut s = BTreeMap::new();
        assert_eq!(ttl_setting(&s), Ok(None));
        s.insert(STATE_TTL.to_string(), "0".to_string());
        assert_eq!(ttl_setting(&s), Ok(None));
        s.insert(STATE_TTL.to_string(), "10 min".to_string());
        assert_eq!(ttl_setting(&s), Ok(Some(Duration::from_secs(600))));
        s.insert(STATE_TTL.to_string(), "soon".to_string());
        assert!(ttl_setting(&s).unwrap_err().contains("'soon'"));
    }

    #[test]
    fn expiry_counts_from_the_last_touch() {
        let mut t = Ttl::new(Duration::from_millis(100));
        assert!(!t.expired(1_000, 1_099));
        assert!(t.expired(1_000, 1_100));
        assert!(t.sweep_due(1_000));
        assert!(!t.sweep_due(1_010));
        assert!(t.sweep_due(1_025));
    }
}
