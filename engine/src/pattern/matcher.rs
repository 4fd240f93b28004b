//! Runs a compiled pattern over the rows of one partition, in order, as
//! Flink's CEP NFA does: every row may start a match; all partial matches
//! advance together; a completed match waits while a partial match that
//! started no later is alive (it could still complete and would come first);
//! matches are then emitted earliest start first, and after each the skip
//! strategy discards the partial and waiting matches it rules out. A step is
//! split in two (`prepare`, `apply`) so the operator can evaluate the DEFINE
//! conditions of many partitions together in between.
//!
//! Beyond Flink: with a trailing `NOT v` (absence) a partial match that
//! completes its pattern waits until WITHIN's interval has passed, and dies if
//! a row satisfying `v` comes first. A partial match whose pattern may end
//! where it is (a greedy or optional tail) is complete once no further row can
//! join it: at its WITHIN deadline or at the end of the input. Partial matches
//! that WITHIN expires can be reported (Flink CEP's timeout output).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::nfa::{Edge, Guard, Nfa, FINAL};
pub use super::steps::{Step, Steps};
use crate::{EngineError, Result};

/// `AFTER MATCH SKIP ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// Resume after the last row of the match.
    PastLastRow,
    /// Resume at the row after the first of the match.
    ToNextRow,
    /// Resume at the first row mapped to the variable (bit `v` set for
    /// variable `v`; a union variable sets several).
    ToFirst(u64),
    /// Resume at the last row mapped to the variable (as a set of bits).
    ToLast(u64),
}

/// The rows of a partial match that does not exist.
static NO_STEPS: Steps = Steps::EMPTY;

/// The state of a partial match that has matched its pattern and waits for
/// its absence (`NOT v`) to be confirmed.
const WAITING: usize = usize::MAX;

/// In a step's list of ways forward: the pattern ends before the row.
const DONE: usize = usize::MAX;

/// A partial match, or (in state `FINAL`) a match waiting for its turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Thread {
    state: usize,
    start_time: i64,
    /// Its rows; the first is where it started.
    steps: Steps,
}

impl Thread {
    /// Whether it is still a partial match (not a match waiting its turn).
    fn is_open(&self) -> bool {
        self.state != FINAL
    }

    /// Whether it is complete if no further row joins it, while the
    /// partition goes on or, `at_end`, because it has ended (`$` passable):
    /// its pattern may end where it is, or it waits for an absence.
    fn may_end(&self, nfa: &Nfa, at_end: bool) -> bool {
        let finishes = if at_end {
            nfa.finishes_at_end(self.state)
        } else {
            nfa.finishes(self.state)
        };
        self.state == WAITING || (self.is_open() && !self.steps.is_empty() && finishes)
    }

    /// The last instant of its WITHIN interval.
    fn deadline(&self, within: i64) -> i64 {
        self.start_time.saturating_add(within - 1)
    }
}

/// Buffers a step reuses (one per operator, lent to each partition's step).
#[derive(Default)]
pub struct Work {
    stack: Vec<(usize, usize)>,
    seen: Vec<usize>,
    ways: Vec<(usize, usize)>,
    prev: Vec<Thread>,
}

/// A complete match, a partial match WITHIN timed out, or a row no match
/// covers (`WITH UNMATCHED ROWS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Its rows and their variables, in order (none for an empty match or an
    /// unmatched row, which are at `steps.first_row()`).
    pub steps: Steps,
    /// Its MATCH_ROWTIME() when not its last row's time: for an absence or a
    /// timed-out partial match, the last instant of the WITHIN interval.
    pub rowtime: Option<i64>,
    /// A partial match WITHIN expired (not a match).
    pub timed_out: bool,
    /// A row that no match covers (not a match).
    pub unmatched: bool,
}

/// The matching state of one partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Matcher {
    /// Partial matches, by first row, then in the pattern's preference order
    /// (as in the standard: leftmost alternative, greedy longer, reluctant
    /// shorter), with the matches of a first row some of whose partial
    /// matches are still open (their rank among them matters).
    threads: Vec<Thread>,
    /// Matches of first rows with no open partial match left, in the same
    /// order, waiting for earlier partial matches to resolve. Kept apart so
    /// that a step does not walk them.
    #[serde(default)]
    done: VecDeque<Thread>,
    /// The next row's sequence number (rows before it have been seen).
    #[serde(default)]
    next_row: u64,
    /// The time of the row being stepped (matches a step emits are stamped
    /// with it, as Flink stamps them with the row it processes).
    #[serde(default)]
    step_time: i64,
    /// Rows before it have had their attempt at a match resolved.
    #[serde(default)]
    attempted: u64,
    /// Rows before it belong to an emitted match.
    #[serde(default)]
    covered: u64,
}

/// What the matcher needs besides the partition's own state.
pub struct MatchConfig<'a> {
    /// The compiled pattern.
    pub nfa: &'a Nfa,
    /// After-match skip.
    pub skip: Skip,
    /// `WITHIN`, in milliseconds: a partial match whose first row is this much
    /// older than the current row is dropped.
    pub within: Option<i64>,
    /// The variable of a trailing `NOT v`: a match completes when WITHIN's
    /// interval passes without a row satisfying it.
    pub absent: Option<usize>,
    /// Report partial matches WITHIN expires (`WITH TIMEOUTS`).
    pub timeouts: bool,
    /// Rows after a match's last row that its MEASURES read (`NEXT`): the
    /// match waits for them (or the end of the input).
    pub lookahead: u64,
    /// Report the rows no match covers (`ALL ROWS PER MATCH WITH UNMATCHED
    /// ROWS`).
    pub unmatched: bool,
    /// At the end of the input, drop the partial matches that cannot complete
    /// (the standard, over a finite table) instead of letting them hold back
    /// later matches (Flink, whose goldens show it).
    pub standard_end: bool,
}

impl Matcher {
    /// A partition with no partial matches.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of partial matches and matches waiting to be emitted, and
    /// the runs of rows they hold in all.
    pub fn open(&self) -> (usize, usize) {
        let all = self.threads.iter().chain(&self.done);
        let rows = all.map(|t| t.steps.runs()).sum();
        (self.threads.len() + self.done.len(), rows)
    }

    /// How many partial matches there are (with the matches among them), as
    /// [`Matcher::prepare`] numbers them.
    pub fn partial_matches(&self) -> usize {
        self.threads.len()
    }

    /// Whether there are partial matches.
    pub fn is_idle(&self) -> bool {
        self.threads.is_empty() && self.done.is_empty()
    }

    /// When the oldest partial match started, if any.
    pub fn oldest_start_time(&self) -> Option<i64> {
        self.threads
            .iter()
            .filter(|t| t.is_open())
            .map(|t| t.start_time)
            .min()
    }

    /// The earliest row a partial match still refers to (rows before it can be
    /// released), if any.
    pub fn oldest_row(&self) -> Option<u64> {
        let firsts = [self.threads.first(), self.done.front()];
        firsts
            .into_iter()
            .flatten()
            .map(|t| t.steps.first_row())
            .min()
    }

    /// Ends the partial matches that started `within` or more before `time`
    /// (the current row's time, or the watermark plus one: no row before it
    /// can come): those that may end where they are (or wait for an absence)
    /// are complete, the others are dropped, and reported to `timed_out` when
    /// asked for.
    pub fn expire(&mut self, cfg: &MatchConfig<'_>, time: i64, timed_out: &mut Vec<Match>) {
        let Some(w) = cfg.within else { return };
        let due = |t: &Thread| t.is_open() && time.saturating_sub(t.start_time) >= w;
        // The list is in start order, so the first open entry started first.
        if !self.threads.iter().find(|t| t.is_open()).is_some_and(due) {
            return;
        }
        let threads = std::mem::take(&mut self.threads);
        for mut t in threads {
            if !due(&t) {
                self.threads.push(t);
            } else if t.may_end(cfg.nfa, false) {
                t.state = FINAL;
                self.threads.push(t);
            } else if cfg.timeouts && !t.steps.is_empty() {
                timed_out.push(Match {
                    rowtime: Some(t.deadline(w)),
                    steps: t.steps,
                    timed_out: true,
                    unmatched: false,
                });
            }
        }
    }

    /// At the end of the input: partial matches whose pattern may end there
    /// (`$` included) complete. The others stay, holding back later matches,
    /// as in Flink, or with `standard_end` are dropped.
    pub fn finish(&mut self, cfg: &MatchConfig<'_>) {
        for t in &mut self.threads {
            if t.may_end(cfg.nfa, true) {
                t.state = FINAL;
            }
        }
        if cfg.standard_end {
            self.threads.retain(|t| !t.is_open());
        }
    }

    /// The rows the partial match `thread` has mapped (as listed by
    /// [`Matcher::prepare`]).
    pub fn steps_of(&self, thread: usize) -> &Steps {
        self.threads.get(thread).map_or(&NO_STEPS, |t| &t.steps)
    }

    /// First half of a step: expires partial matches (reporting timed-out
    /// ones to `timed_out`), starts one at `row`, and lists the (partial
    /// match, variable) conditions the step may need, so that they can be
    /// evaluated together for many partitions.
    pub fn prepare(
        &mut self,
        cfg: &MatchConfig<'_>,
        row: u64,
        time: i64,
        requests: &mut Vec<(usize, usize)>,
        timed_out: &mut Vec<Match>,
    ) {
        self.expire(cfg, time, timed_out);
        self.next_row = row + 1;
        self.step_time = time;
        // Every row may start a match (a skip only prunes earlier starts).
        self.threads.push(Thread {
            state: cfg.nfa.start,
            start_time: time,
            steps: Steps::starting_at(row),
        });
        for (i, t) in self.threads.iter().enumerate() {
            if !t.is_open() {
                continue;
            }
            if t.state != WAITING {
                requests.extend(cfg.nfa.asks(t.state).iter().map(|&v| (i, v)));
            }
            // The row may be the absent variable's.
            if let Some(v) = cfg.absent {
                let ends = t.state == WAITING || cfg.nfa.finishes(t.state);
                if ends && !cfg.nfa.asks(t.state).contains(&v) {
                    requests.push((i, v));
                }
            }
        }
    }

    /// Second half of a step: advances every partial match by `row` with the
    /// answers to the conditions [`Matcher::prepare`] listed, and appends the
    /// matches that can be emitted to `out`.
    pub fn apply(
        &mut self,
        cfg: &MatchConfig<'_>,
        row: u64,
        holds: &dyn Fn(usize, usize) -> bool,
        work: &mut Work,
        out: &mut Vec<Match>,
    ) -> Result<()> {
        let Work {
            stack,
            seen,
            ways,
            prev,
        } = work;
        // The partial matches move to `prev` and come back advanced, each
        // replaced by its continuations in preference order (both buffers
        // keep their capacity: no allocation per step).
        std::mem::swap(prev, &mut self.threads);
        let next = &mut self.threads;
        for (i, t) in prev.drain(..).enumerate() {
            if !t.is_open() {
                next.push(t);
                continue;
            }
            if t.state == WAITING {
                // An absence dies when the absent variable's row comes.
                if !cfg.absent.is_some_and(|v| holds(i, v)) {
                    next.push(t);
                }
                continue;
            }
            // The ways forward, in preference order: a depth-first walk of
            // the moves that take no row, each edge on the stack as (take
            // variable or DONE, state) so that takes keep their rank.
            stack.clear();
            seen.clear();
            ways.clear();
            stack.push((DONE, t.state));
            while let Some((var, s)) = stack.pop() {
                if var != DONE {
                    if holds(i, var) {
                        ways.push((var, s));
                    }
                    continue;
                }
                if seen.contains(&s) {
                    continue;
                }
                seen.push(s);
                if s == FINAL {
                    ways.push((DONE, FINAL));
                    continue;
                }
                // Pushed in reverse so the first edge is explored first.
                for e in cfg.nfa.states[s].iter().rev() {
                    match *e {
                        Edge::Take { var, to } => stack.push((var, to)),
                        Edge::Proceed { to, guard } => {
                            let allowed = match guard {
                                Guard::Always => true,
                                Guard::Unless(v) => !holds(i, v),
                                Guard::AtStart => row == 0,
                                Guard::AtEnd => false,
                            };
                            if allowed {
                                stack.push((DONE, to));
                            }
                        }
                    }
                }
            }
            // Each way gets a copy but the last, which takes `t` itself (most
            // steps go one way: no copy).
            let mut go = |mut nt: Thread, var: usize, to: usize| {
                if var == DONE {
                    // The pattern ended before this row (an optional or
                    // looping tail left, or an empty match); an absence
                    // starts waiting with this row.
                    match cfg.absent {
                        None => {
                            nt.state = FINAL;
                            next.push(nt);
                        }
                        Some(v) if !holds(i, v) && !nt.steps.is_empty() => {
                            nt.state = WAITING;
                            next.push(nt);
                        }
                        Some(_) => {}
                    }
                    return;
                }
                // Rows of a match are consecutive: this one follows.
                debug_assert_eq!(nt.steps.end_row(), row);
                nt.steps.push(var);
                nt.state = match to {
                    FINAL if cfg.absent.is_some() => WAITING,
                    s => s,
                };
                next.push(nt);
            };
            if let Some((&(var, to), others)) = ways.split_last() {
                for &(v, s) in others {
                    go(t.clone(), v, s);
                }
                go(t, var, to);
            }
        }
        self.emit_ready(cfg, Some(self.step_time), false, out)
    }

    /// Emits the matches whose turn has come: the most preferred match of the
    /// earliest start, once no partial match that started no later is open
    /// (it could still complete and would come first; Flink waits the same
    /// way), pruning per the skip strategy after each. A match also waits for
    /// the rows its MEASURES read after it, unless the input has `ended`.
    /// With `WITH UNMATCHED ROWS`, rows whose attempt ended without a match
    /// and that no emitted match covers are reported in order among them.
    ///
    /// An absence is stamped with the last instant of its WITHIN interval;
    /// other matches with `now` (the row or the watermark that released them,
    /// as in Flink), or, without it, with their last row's time.
    pub fn emit_ready(
        &mut self,
        cfg: &MatchConfig<'_>,
        now: Option<i64>,
        ended: bool,
        out: &mut Vec<Match>,
    ) -> Result<()> {
        self.settle();
        while let Some(head) = self.done.front() {
            let (start, end) = (head.steps.first_row(), head.steps.end_row());
            // Every first row left in `threads` has an open partial match.
            let blocked = self
                .threads
                .first()
                .is_some_and(|t| t.steps.first_row() <= start);
            if blocked {
                break;
            }
            self.report_unmatched(cfg, start, out);
            if !ended && end + cfg.lookahead > self.next_row {
                break;
            }
            let Some(m) = self.done.pop_front() else {
                break;
            };
            let keep_from = match m.steps.last() {
                // An empty match: the next attempt starts at the next row.
                None => start + 1,
                Some(last) => {
                    self.covered = self.covered.max(last.row + 1);
                    skip_target(cfg.skip, &m.steps)?
                }
            };
            self.attempted = self.attempted.max(start + 1);
            // With `NOT v` every match is an absence, completed at its deadline.
            let deadline = cfg.absent.and(cfg.within).map(|w| m.deadline(w));
            out.push(Match {
                steps: m.steps,
                rowtime: deadline.or(now),
                timed_out: false,
                unmatched: false,
            });
            self.threads.retain(|t| t.steps.first_row() >= keep_from);
            self.done.retain(|t| t.steps.first_row() >= keep_from);
        }
        // Attempts at rows before the earliest open one have ended.
        let resolved = self.oldest_row().unwrap_or(self.next_row);
        self.report_unmatched(cfg, resolved, out);
        Ok(())
    }

    /// Moves the matches of first rows whose partial matches have all ended
    /// from `threads` to `done`, in order.
    fn settle(&mut self) {
        let mut i = 0;
        while i < self.threads.len() {
            let start = self.threads[i].steps.first_row();
            let mut j = i;
            let mut open = false;
            while j < self.threads.len() && self.threads[j].steps.first_row() == start {
                open |= self.threads[j].is_open();
                j += 1;
            }
            if open {
                i = j;
                continue;
            }
            let at = self.done.partition_point(|t| t.steps.first_row() < start);
            for (k, t) in self.threads.drain(i..j).enumerate() {
                self.done.insert(at + k, t);
            }
        }
    }

    /// Reports the rows from the last resolved attempt up to `upto` that no
    /// match covers, when unmatched rows are asked for.
    fn report_unmatched(&mut self, cfg: &MatchConfig<'_>, upto: u64, out: &mut Vec<Match>) {
        if !cfg.unmatched {
            return;
        }
        for row in self.attempted.max(self.covered)..upto {
            out.push(Match {
                steps: Steps::starting_at(row),
                rowtime: None,
                timed_out: false,
                unmatched: true,
            });
        }
        self.attempted = self.attempted.max(upto);
    }
}

/// Where matching resumes after a (non-empty) match, per `skip`.
fn skip_target(skip: Skip, steps: &Steps) -> Result<u64> {
    let first = steps.first_row();
    let last = steps.last().map_or(first, |s| s.row);
    Ok(match skip {
        Skip::PastLastRow => last + 1,
        Skip::ToNextRow => first + 1,
        Skip::ToFirst(v) | Skip::ToLast(v) => {
            let rows = steps.rows_of(v);
            let at = if matches!(skip, Skip::ToFirst(_)) {
                rows.map(|r| r.0)
            } else {
                rows.map(|r| r.1)
            };
            let Some(at) = at else {
                return Err(EngineError::Query(
                    "AFTER MATCH SKIP failed: pattern variable is not present in match".into(),
                ));
            };
            if at == first {
                return Err(EngineError::Query(
                    "AFTER MATCH SKIP failed: cannot skip to first row of match".into(),
                ));
            }
            at
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::ast::Pattern;

    /// Evaluates DEFINE conditions.
    trait Conditions {
        /// Whether `row` may be mapped to `var`, given the rows the partial match
        /// has mapped so far (`matched`, in order).
        fn holds(&mut self, var: usize, row: u64, matched: &Steps) -> Result<bool>;
    }

    impl Matcher {
        /// A whole step with conditions evaluated one at a time by `conds`.
        fn step(
            &mut self,
            cfg: &MatchConfig<'_>,
            row: u64,
            time: i64,
            conds: &mut impl Conditions,
            out: &mut Vec<Match>,
        ) -> Result<()> {
            let mut requests = vec![];
            self.prepare(cfg, row, time, &mut requests, out);
            let mut answers = Vec::with_capacity(requests.len());
            for &(t, v) in &requests {
                answers.push(((t, v), conds.holds(v, row, self.steps_of(t))?));
            }
            let holds = |t: usize, v: usize| {
                answers
                    .iter()
                    .find(|(k, _)| *k == (t, v))
                    .is_some_and(|(_, b)| *b)
            };
            self.apply(cfg, row, &holds, &mut Work::default(), out)
        }
    }

    /// Conditions over a price per row: `f(var, price, prices of the rows
    /// already mapped to var)`.
    struct Prices<F: Fn(usize, i64, &[i64]) -> bool> {
        prices: Vec<i64>,
        f: F,
    }

    impl<F: Fn(usize, i64, &[i64]) -> bool> Conditions for Prices<F> {
        fn holds(&mut self, var: usize, row: u64, matched: &Steps) -> Result<bool> {
            let same: Vec<i64> = matched
                .iter()
                .filter(|s| s.var == var)
                .map(|s| self.prices[s.row as usize])
                .collect();
            Ok((self.f)(var, self.prices[row as usize], &same))
        }
    }

    fn var(v: usize) -> Pattern {
        Pattern::Var(v)
    }

    fn rep(v: usize, min: u32, greedy: bool) -> Pattern {
        Pattern::Repeat {
            inner: Box::new(var(v)),
            min,
            max: None,
            greedy,
        }
    }

    fn run(
        pattern: &Pattern,
        skip: Skip,
        conds: &mut impl Conditions,
        rows: usize,
    ) -> Result<Vec<Vec<u64>>> {
        let nfa = Nfa::compile(pattern);
        let cfg = MatchConfig {
            nfa: &nfa,
            skip,
            within: None,
            absent: None,
            timeouts: false,
            lookahead: 0,
            unmatched: false,
            standard_end: false,
        };
        let mut m = Matcher::new();
        let mut out = vec![];
        for r in 0..rows {
            m.step(&cfg, r as u64, r as i64, conds, &mut out)?;
        }
        Ok(out
            .into_iter()
            .map(|m| m.steps.iter().map(|s| s.row).collect())
            .collect())
    }

    // Flink docs, MATCH_RECOGNIZE "Greedy & Reluctant Quantifiers" (T-MR-03 in
    // ../shared/reference/cep-semantics.md): A B* C with A > 10, B < 15, C > 12.
    #[test]
    fn greedy_and_reluctant_loops() {
        let prices = vec![10, 11, 12, 13, 14, 16];
        let f = |v: usize, p: i64, _: &[i64]| match v {
            0 => p > 10,
            1 => p < 15,
            _ => p > 12,
        };
        let greedy = Pattern::Concat(vec![var(0), rep(1, 0, true), var(2)]);
        let mut c = Prices {
            prices: prices.clone(),
            f,
        };
        let got = run(&greedy, Skip::PastLastRow, &mut c, 6).expect("run");
        assert_eq!(got, vec![vec![1, 2, 3, 4, 5]]);
        let reluctant = Pattern::Concat(vec![var(0), rep(1, 0, false), var(2)]);
        let got = run(&reluctant, Skip::PastLastRow, &mut c, 6).expect("run");
        assert_eq!(got, vec![vec![1, 2, 3], vec![4, 5]]);
    }

    // Flink docs, "After Match Strategy" (T-MR-04): A+ C with SUM(A.price) < 30.
    #[test]
    fn skip_strategies() {
        let prices = vec![7, 9, 10, 5, 10, 7, 14];
        let f = |v: usize, p: i64, same: &[i64]| match v {
            0 => same.iter().sum::<i64>() + p < 30,
            _ => true,
        };
        let mut c = Prices { prices, f };
        let p = Pattern::Concat(vec![rep(0, 1, true), var(1)]);
        let starts_ends = |ms: Vec<Vec<u64>>| -> Vec<(u64, u64)> {
            ms.iter().map(|m| (m[0], m[m.len() - 1])).collect()
        };
        let past = run(&p, Skip::PastLastRow, &mut c, 7).expect("run");
        assert_eq!(starts_ends(past), vec![(0, 3), (4, 6)]);
        let next = run(&p, Skip::ToNextRow, &mut c, 7).expect("run");
        assert_eq!(
            starts_ends(next),
            vec![(0, 3), (1, 4), (2, 5), (3, 6), (4, 6)]
        );
        let last_a = run(&p, Skip::ToLast(1), &mut c, 7).expect("run");
        assert_eq!(starts_ends(last_a), vec![(0, 3), (2, 5), (4, 6)]);
        let first_a = run(&p, Skip::ToFirst(1), &mut c, 7).expect_err("loops");
        assert!(first_a
            .to_string()
            .contains("cannot skip to first row of match"));
    }

    // SQL:2016 preference: the leftmost alternative wins even when a later
    // one completes first (Trino's `(A B | A)` takes A B).
    #[test]
    fn the_preferred_match_wins_not_the_first_completed() {
        let mut c = Prices {
            prices: vec![1, 1],
            f: |_: usize, _: i64, _: &[i64]| true,
        };
        let ab_or_a = Pattern::Alt(vec![Pattern::Concat(vec![var(0), var(1)]), var(0)]);
        let got = run(&ab_or_a, Skip::PastLastRow, &mut c, 2).expect("run");
        assert_eq!(got, vec![vec![0, 1]]);
        let a_or_ab = Pattern::Alt(vec![var(0), Pattern::Concat(vec![var(0), var(1)])]);
        // Row 1's own A waits while its A B alternative is open.
        let got = run(&a_or_ab, Skip::PastLastRow, &mut c, 2).expect("run");
        assert_eq!(got, vec![vec![0]]);
    }

    #[test]
    fn within_drops_old_partial_matches() {
        let nfa = Nfa::compile(&Pattern::Concat(vec![var(0), var(1)]));
        let cfg = MatchConfig {
            nfa: &nfa,
            skip: Skip::PastLastRow,
            within: Some(10),
            absent: None,
            timeouts: false,
            lookahead: 0,
            unmatched: false,
            standard_end: false,
        };
        let mut c = Prices {
            prices: vec![1, 2, 1, 2],
            f: |v: usize, p: i64, _: &[i64]| p == v as i64 + 1,
        };
        let mut m = Matcher::new();
        let mut out = vec![];
        // Row 1 comes 10 ms after row 0: too late for the match row 0 started.
        for (r, t) in [(0u64, 0i64), (1, 10), (2, 20), (3, 25)] {
            m.step(&cfg, r, t, &mut c, &mut out).expect("step");
        }
        let rows: Vec<Vec<u64>> = out
            .iter()
            .map(|m| m.steps.iter().map(|s| s.row).collect())
            .collect();
        assert_eq!(rows, vec![vec![2, 3]]);
    }

    #[test]
    fn an_absence_dies_on_its_variable_and_completes_at_its_deadline() {
        // A NOT B within 10: rows A(0) x(3) B(5) A(20) x(25); then the
        // watermark passes 29.
        let nfa = Nfa::compile(&var(0));
        let cfg = MatchConfig {
            nfa: &nfa,
            skip: Skip::PastLastRow,
            within: Some(10),
            absent: Some(1),
            timeouts: false,
            lookahead: 0,
            unmatched: false,
            standard_end: false,
        };
        let mut c = Prices {
            prices: vec![1, 0, 2, 1, 0],
            f: |v: usize, p: i64, _: &[i64]| p == v as i64 + 1,
        };
        let mut m = Matcher::new();
        let mut out = vec![];
        for (r, t) in [(0u64, 0i64), (1, 3), (2, 5), (3, 20), (4, 25)] {
            m.step(&cfg, r, t, &mut c, &mut out).expect("step");
        }
        assert!(
            out.is_empty(),
            "the B at 5 ends the first; the second waits"
        );
        m.expire(&cfg, 29, &mut out);
        m.emit_ready(&cfg, None, false, &mut out).expect("emit");
        assert!(out.is_empty(), "29 is inside [20, 30)");
        m.expire(&cfg, 30, &mut out);
        m.emit_ready(&cfg, None, false, &mut out).expect("emit");
        assert_eq!(
            out,
            vec![Match {
                steps: Steps::from_steps(&[Step { row: 3, var: 0 }]),
                rowtime: Some(29),
                timed_out: false,
                unmatched: false,
            }]
        );
    }
}
