//! The processing-time clock: the watermark of a processing-time attribute
//! (a `PROCTIME()` column), so that windows over it run on the same
//! window operators as event time, fired by the wall clock instead of the
//! data.
//!
//! It follows the rows whose time column was just stamped with the wall
//! clock, in the same task, and emits the wall clock less a millisecond as
//! the watermark after each batch and every `interval` while no input comes:
//! a row stamped later is never behind it. The event-time watermarks and
//! idleness of the input mean nothing for this time and are not passed on.
//! At the end of the input nothing more is emitted: windows still open stay
//! unfired, as Flink's processing-time timers do not fire when a bounded
//! input ends.

use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;

use crate::message::EventTime;
use crate::operator::{Emitter, Operator};
use crate::Result;

/// Emits the wall clock as the watermark.
#[derive(Debug, Clone)]
pub struct ProctimeClock {
    interval: Duration,
    emitted: EventTime,
    now: fn() -> EventTime,
}

fn wall_clock() -> EventTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as EventTime)
}

impl ProctimeClock {
    /// A clock that advances at least every `interval` while no input comes.
    pub fn new(interval: Duration) -> Self {
        Self::with_clock(interval, wall_clock)
    }

    /// A clock reading `now` (tests).
    pub fn with_clock(interval: Duration, now: fn() -> EventTime) -> Self {
        Self {
            interval,
            emitted: EventTime::MIN,
            now,
        }
    }

    fn tick(&mut self, out: &mut Emitter) {
        let wm = (self.now)() - 1;
        if wm > self.emitted {
            self.emitted = wm;
            out.watermark(wm);
        }
    }
}

impl Operator for ProctimeClock {
    fn name(&self) -> String {
        "ProctimeClock".into()
    }

    fn runs_per_input(&self) -> bool {
        true
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(self.clone())))
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        out.batch(batch);
        self.tick(out);
        Ok(())
    }

    fn on_watermark(&mut self, _wm: EventTime, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    fn on_idle(&mut self, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    fn processing_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    fn on_processing_time(&mut self, out: &mut Emitter) -> Result<()> {
        self.tick(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use std::sync::atomic::{AtomicI64, Ordering};

    static NOW: AtomicI64 = AtomicI64::new(0);
    fn fake_now() -> EventTime {
        NOW.load(Ordering::SeqCst)
    }

    fn watermarks(out: &mut Emitter) -> Vec<EventTime> {
        out.drain()
            .filter_map(|m| match m {
                Message::Watermark(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_watermark_is_the_wall_clock_and_the_inputs_time_is_ignored() {
        let mut clock = ProctimeClock::with_clock(Duration::from_millis(10), fake_now);
        let mut out = Emitter::new();
        NOW.store(1_000, Ordering::SeqCst);
        clock.on_watermark(5_000_000, &mut out).unwrap();
        clock.on_idle(&mut out).unwrap();
        assert!(
            out.is_empty(),
            "event-time watermarks and idleness are dropped"
        );
        clock.on_processing_time(&mut out).unwrap();
        assert_eq!(watermarks(&mut out), vec![999]);
        // No new watermark while the clock stands still.
        clock.on_processing_time(&mut out).unwrap();
        assert!(out.is_empty());
        NOW.store(2_500, Ordering::SeqCst);
        clock.on_processing_time(&mut out).unwrap();
        assert_eq!(watermarks(&mut out), vec![2_499]);
        // The end emits nothing: open processing-time windows stay unfired.
        clock.on_end(&mut out).unwrap();
        assert!(out.is_empty());
    }
}
