//! Per-partition upkeep of the MATCH_RECOGNIZE operator, done only where
//! needed so that a watermark costs what it changes, not the number of
//! partitions: WITHIN deadlines as timers, the partitions a step touched
//! (whose rows no partial match reads any more are released, and which are
//! dropped once empty), and running totals for the gauges.

use super::operator::MatchRecognize;
use crate::message::EventTime;
use crate::operator::Emitter;
use crate::time::MAX_WATERMARK;
use crate::Result;

impl MatchRecognize {
    /// Registers partition `p`'s earliest WITHIN deadline, unless one is
    /// (deadlines only move later, so an earlier registration stays valid).
    pub(super) fn arm(&mut self, p: usize) -> Result<()> {
        let Some(w) = self.spec.within else {
            return Ok(());
        };
        let Some(part) = self.partitions.get_mut(p) else {
            return Ok(());
        };
        if part.armed.is_some() {
            return Ok(());
        }
        if let Some(start) = part.matcher.oldest_start_time() {
            let deadline = start.saturating_add(w);
            part.armed = Some(deadline);
            self.deadlines.register(deadline, &part.key_bytes)?;
        }
        Ok(())
    }

    /// Ends partial matches whose WITHIN interval the watermark `wm` has
    /// passed (and, at the end of the input, those that may end where they
    /// are), and emits the matches that completes or releases, and the
    /// timed-out partial matches asked for.
    pub(super) fn expire(&mut self, wm: EventTime, out: &mut Emitter) -> Result<()> {
        let end = wm == MAX_WATERMARK;
        // No row at or before the watermark can come any more.
        let now = wm.saturating_add(1);
        let due: Vec<usize> = if end {
            // Every partition: the timers are moot.
            self.deadlines.pop_due(i64::MAX)?;
            if self.live != Some(self.partitions.len()) {
                for key in self.table.keys()? {
                    self.fetch(&key, false)?;
                }
            }
            (0..self.partitions.len()).collect()
        } else {
            let mut due = vec![];
            for (deadline, key) in self.deadlines.pop_due(now)? {
                // A partition gone, or registered again since, is skipped.
                let Some(p) = self.fetch(&key, false)? else {
                    continue;
                };
                if self.partitions[p].armed == Some(deadline) {
                    self.partitions[p].armed = None;
                    due.push(p);
                }
            }
            due
        };
        if due.is_empty() {
            return Ok(());
        }
        let cfg = self.spec.config();
        let mut matched = vec![];
        let mut timed_out = vec![];
        let mut found = vec![];
        for &i in &due {
            let p = &mut self.partitions[i];
            p.matcher.expire(&cfg, now, &mut timed_out);
            matched.extend(timed_out.drain(..).map(|m| (i, m, 0)));
            if end {
                p.matcher.finish(&cfg);
            }
            // Released by the watermark: stamped with it (at the end, with
            // each match's last row).
            let stamp = (!end).then_some(wm);
            p.matcher.emit_ready(&cfg, stamp, end, &mut found)?;
            for m in found.drain(..) {
                let number = p.number(&m);
                matched.push((i, m, number));
            }
        }
        self.emit_matches(matched, out)?;
        for i in due {
            self.touched.push(i);
            if !end {
                self.arm(i)?;
            }
        }
        Ok(())
    }

    /// Updates the partial-match gauges: how many are open (parallel
    /// instances share the gauge, so each adds its change), and the bytes
    /// each holds (its runs of mapped rows, plus its share of the rows
    /// retained for them; an instance's own average).
    pub(super) fn report(&mut self) {
        let (open, runs, retained) = self.totals;
        let was = std::mem::replace(&mut self.reported, open as u64);
        self.gauges.0.add_signed(open as i64 - was as i64);
        let row_bytes = self.staged_schema.fields().len() * 16;
        let bytes = runs * std::mem::size_of::<(u32, u32)>() + retained * row_bytes;
        self.gauges
            .1
            .set(bytes.checked_div(open).unwrap_or(0) as u64);
    }

    /// For each touched partition: releases rows no partial match can read
    /// any more, updates the totals, and drops the partition once it holds
    /// nothing.
    pub(super) fn upkeep(&mut self) {
        let mut touched = std::mem::take(&mut self.touched);
        // Highest first: removing one moves the last partition into its
        // place, which is then either done already or untouched.
        touched.sort_unstable_by(|a, b| b.cmp(a));
        touched.dedup();
        let lookback = self.spec.lookback;
        let keep = self.spec.keeps_partitions();
        for &i in &touched {
            let Some(p) = self.partitions.get_mut(i) else {
                continue;
            };
            let keep_from = match p.matcher.oldest_row() {
                Some(start) => start.saturating_sub(lookback),
                None => p.rows.next_seq.saturating_sub(lookback),
            };
            while p.rows.rows.front().is_some_and(|r| r.0 < keep_from) {
                p.rows.rows.pop_front();
            }
            let (open, runs) = p.matcher.open();
            let now = (open, runs, p.rows.rows.len());
            let before = std::mem::replace(&mut p.counted, now);
            // Saturating: partitions restored from a checkpoint were
            // counted by the run before.
            self.totals.0 = (self.totals.0 + now.0).saturating_sub(before.0);
            self.totals.1 = (self.totals.1 + now.1).saturating_sub(before.1);
            self.totals.2 = (self.totals.2 + now.2).saturating_sub(before.2);
            // A partition with nothing pending and no rows to look back on
            // needs no state, unless the query numbers its matches or
            // anchors them at its start.
            if keep || !p.matcher.is_idle() || !p.rows.rows.is_empty() {
                continue;
            }
            // Taken out of the table: gone once not put back.
            let gone = self.partitions.swap_remove(i);
            self.index.remove(&gone.key_bytes);
            self.table.remove(&gone.key_bytes);
            if let Some(live) = &mut self.live {
                *live = live.saturating_sub(1);
            }
            if let Some(moved) = self.partitions.get(i) {
                self.index.insert(moved.key_bytes.clone(), i);
            }
        }
        touched.clear();
        self.touched = touched;
    }
}
