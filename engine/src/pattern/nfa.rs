//! A pattern compiled into an automaton: states with ordered edges that either
//! take the current row as a variable or move on without consuming it. The
//! order of a state's edges is the preference order of the pattern (greedy:
//! another repetition first; reluctant: leaving first; alternation: leftmost
//! first).
//!
//! As in Flink's CEP compiler, a greedy repetition of a single variable may
//! only be left when the current row does not satisfy that variable (a guard
//! on the leaving edge), so `A B* C` keeps taking rows as B while they qualify
//! even if one would also qualify as C.

use super::ast::Pattern;

/// A condition on a move that consumes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Always allowed.
    Always,
    /// Allowed only if the current row does not satisfy this variable (the
    /// greedy loop it leaves would take it).
    Unless(usize),
    /// `^`: allowed only before the partition's first row.
    AtStart,
    /// `$`: allowed only after the partition's last row (at the end of the
    /// input; never on an unbounded stream).
    AtEnd,
}

/// A move out of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// Maps the current row to `var` (if its condition holds) and goes to `to`.
    Take {
        /// The pattern variable.
        var: usize,
        /// The next state.
        to: usize,
    },
    /// Goes to `to` without consuming the row.
    Proceed {
        /// The next state.
        to: usize,
        /// When it is allowed.
        guard: Guard,
    },
}

/// The compiled pattern. State `FINAL` (0) accepts.
#[derive(Debug, Clone, Default)]
pub struct Nfa {
    /// Each state's edges, in preference order.
    pub states: Vec<Vec<Edge>>,
    /// Where a match starts.
    pub start: usize,
    /// Per state, whether it reaches `FINAL` without taking a row while rows
    /// still follow in the partition (greedy guards aside, anchors not
    /// passable): a partial match there is complete once no row can join it.
    finishing: Vec<bool>,
    /// The same at the end of the partition (`$` passable).
    finishing_at_end: Vec<bool>,
    /// Per state, the variables whose conditions a step from it may ask
    /// (takes and guards reachable without taking a row).
    asks: Vec<Vec<usize>>,
}

/// The accepting state.
pub const FINAL: usize = 0;

impl Nfa {
    /// Compiles `pattern`. Anchors (`^`, `$`) become guarded moves; exclusions
    /// are compiled as their contents; PERMUTE is expanded into
    /// the alternation of its orders, lexicographic first.
    pub fn compile(pattern: &Pattern) -> Self {
        let mut nfa = Nfa {
            states: vec![vec![]],
            start: 0,
            finishing: vec![],
            finishing_at_end: vec![],
            asks: vec![],
        };
        nfa.start = nfa.build(pattern, FINAL);
        nfa.finishing = (0..nfa.states.len())
            .map(|s| nfa.reaches_final(s, false))
            .collect();
        nfa.finishing_at_end = (0..nfa.states.len())
            .map(|s| nfa.reaches_final(s, true))
            .collect();
        nfa.asks = (0..nfa.states.len()).map(|s| nfa.asked_from(s)).collect();
        nfa
    }

    /// The variables a step from `from` may need to test, in first-met order.
    fn asked_from(&self, from: usize) -> Vec<usize> {
        let mut out = vec![];
        let mut seen = vec![false; self.states.len()];
        let mut stack = vec![from];
        while let Some(s) = stack.pop() {
            if s == FINAL || std::mem::replace(&mut seen[s], true) {
                continue;
            }
            for e in &self.states[s] {
                let var = match *e {
                    Edge::Take { var, .. } => Some(var),
                    Edge::Proceed { to, guard } => {
                        stack.push(to);
                        match guard {
                            Guard::Unless(v) => Some(v),
                            Guard::Always | Guard::AtStart | Guard::AtEnd => None,
                        }
                    }
                };
                if let Some(v) = var {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
        }
        out
    }

    /// The variables a step from state `s` may need to test.
    pub fn asks(&self, s: usize) -> &[usize] {
        self.asks.get(s).map_or(&[], Vec::as_slice)
    }

    /// Whether `FINAL` is reachable from `from` through moves that take no
    /// row (past `$` only `at_end`; never past `^`: a partial match holds rows).
    fn reaches_final(&self, from: usize, at_end: bool) -> bool {
        let mut seen = vec![false; self.states.len()];
        let mut stack = vec![from];
        while let Some(s) = stack.pop() {
            if s == FINAL {
                return true;
            }
            if std::mem::replace(&mut seen[s], true) {
                continue;
            }
            for e in &self.states[s] {
                if let Edge::Proceed { to, guard } = *e {
                    let passable = match guard {
                        Guard::Always | Guard::Unless(_) => true,
                        Guard::AtEnd => at_end,
                        Guard::AtStart => false,
                    };
                    if passable {
                        stack.push(to);
                    }
                }
            }
        }
        false
    }

    /// Whether a partial match in state `s` may end without another row
    /// (while the partition goes on).
    pub fn finishes(&self, s: usize) -> bool {
        self.finishing.get(s).copied().unwrap_or(false)
    }

    /// Whether a partial match in state `s` is complete at the end of the
    /// partition.
    pub fn finishes_at_end(&self, s: usize) -> bool {
        self.finishing_at_end.get(s).copied().unwrap_or(false)
    }

    /// Whether the pattern uses `^` (matching then depends on where the
    /// partition began, so its state must not be forgotten).
    pub fn anchored_at_start(&self) -> bool {
        self.states.iter().flatten().any(|e| {
            matches!(
                e,
                Edge::Proceed {
                    guard: Guard::AtStart,
                    ..
                }
            )
        })
    }

    fn add(&mut self, edges: Vec<Edge>) -> usize {
        self.states.push(edges);
        self.states.len() - 1
    }

    /// Builds `p` so that it continues to `next`; returns its entry state.
    fn build(&mut self, p: &Pattern, next: usize) -> usize {
        match p {
            // A trailing `NOT v` is the matcher's (`MatchConfig::absent`).
            Pattern::Empty | Pattern::Not(_) => self.add(vec![Edge::Proceed {
                to: next,
                guard: Guard::Always,
            }]),
            Pattern::Start => self.add(vec![Edge::Proceed {
                to: next,
                guard: Guard::AtStart,
            }]),
            Pattern::End => self.add(vec![Edge::Proceed {
                to: next,
                guard: Guard::AtEnd,
            }]),
            Pattern::Var(v) => self.add(vec![Edge::Take { var: *v, to: next }]),
            Pattern::Concat(parts) => {
                let mut entry = next;
                for part in parts.iter().rev() {
                    entry = self.build(part, entry);
                }
                if parts.is_empty() {
                    self.add(vec![Edge::Proceed {
                        to: next,
                        guard: Guard::Always,
                    }])
                } else {
                    entry
                }
            }
            Pattern::Alt(parts) => {
                let entries: Vec<usize> = parts.iter().map(|q| self.build(q, next)).collect();
                self.add(
                    entries
                        .into_iter()
                        .map(|to| Edge::Proceed {
                            to,
                            guard: Guard::Always,
                        })
                        .collect(),
                )
            }
            Pattern::Exclude(inner) => self.build(inner, next),
            Pattern::Permute(parts) => {
                let orders = permutations(parts.len());
                let alts = orders
                    .into_iter()
                    .map(|o| Pattern::Concat(o.into_iter().map(|i| parts[i].clone()).collect()))
                    .collect();
                self.build(&Pattern::Alt(alts), next)
            }
            Pattern::Repeat {
                inner,
                min,
                max,
                greedy,
            } => self.build_repeat(inner, *min, *max, *greedy, next),
        }
    }

    fn build_repeat(
        &mut self,
        inner: &Pattern,
        min: u32,
        max: Option<u32>,
        greedy: bool,
        next: usize,
    ) -> usize {
        // Greedy leaving of a single-variable loop is guarded as in Flink.
        let guard = match (greedy, inner) {
            (true, Pattern::Var(v)) => Guard::Unless(*v),
            _ => Guard::Always,
        };
        // The optional tail, built backwards from `next`.
        let mut entry = match max {
            None => {
                // A loop state: another repetition or leave.
                let looped = self.add(vec![]);
                let body = self.build(inner, looped);
                let leave = Edge::Proceed { to: next, guard };
                let again = Edge::Proceed {
                    to: body,
                    guard: Guard::Always,
                };
                self.states[looped] = if greedy {
                    vec![again, leave]
                } else {
                    vec![leave, again]
                };
                looped
            }
            Some(m) => {
                let mut e = next;
                for _ in min..m {
                    let body = self.build(inner, e);
                    let take = Edge::Proceed {
                        to: body,
                        guard: Guard::Always,
                    };
                    let skip = Edge::Proceed { to: next, guard };
                    e = self.add(if greedy {
                        vec![take, skip]
                    } else {
                        vec![skip, take]
                    });
                }
                e
            }
        };
        for _ in 0..min {
            entry = self.build(inner, entry);
        }
        entry
    }
}

/// Every order of `0..n`, lexicographically.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = vec![];
    for first in 0..n {
        for rest in permutations(n - 1) {
            let mut o = vec![first];
            o.extend(rest.into_iter().map(|r| if r >= first { r + 1 } else { r }));
            out.push(o);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_lexicographic() {
        assert_eq!(
            permutations(3),
            vec![
                vec![0, 1, 2],
                vec![0, 2, 1],
                vec![1, 0, 2],
                vec![1, 2, 0],
                vec![2, 0, 1],
                vec![2, 1, 0]
            ]
        );
    }

    #[test]
    fn a_greedy_single_variable_loop_guards_its_exit() {
        // A B* C
        let p = Pattern::Concat(vec![
            Pattern::Var(0),
            Pattern::Repeat {
                inner: Box::new(Pattern::Var(1)),
                min: 0,
                max: None,
                greedy: true,
            },
            Pattern::Var(2),
        ]);
        let nfa = Nfa::compile(&p);
        let guarded = nfa
            .states
            .iter()
            .flatten()
            .filter(|e| {
                matches!(
                    e,
                    Edge::Proceed {
                        guard: Guard::Unless(1),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(guarded, 1);
    }
}
