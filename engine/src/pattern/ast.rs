//! The pattern of a MATCH_RECOGNIZE, as a tree over pattern variables: named
//! as written while the query is parsed, then numbered for the matcher.

use std::fmt;

/// A row pattern (SQL:2016 `PATTERN (...)`) over variables of type `V`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern<V = usize> {
    /// `()`: matches no rows.
    Empty,
    /// One row mapped to this variable.
    Var(V),
    /// Each part in turn (strict contiguity, as in SQL).
    Concat(Vec<Pattern<V>>),
    /// `a | b`: the leftmost alternative that matches is preferred.
    Alt(Vec<Pattern<V>>),
    /// A quantified part: at least `min`, at most `max` (unbounded when
    /// `None`) repetitions; greedy prefers more, reluctant (`*?`) fewer.
    Repeat {
        /// What is repeated.
        inner: Box<Pattern<V>>,
        /// Fewest repetitions.
        min: u32,
        /// Most repetitions, if bounded.
        max: Option<u32>,
        /// Greedy (the default) or reluctant.
        greedy: bool,
    },
    /// `PERMUTE(a, b, ...)`: the parts in any order, lexicographic order preferred.
    Permute(Vec<Pattern<V>>),
    /// `{- p -}`: matched but left out of ALL ROWS PER MATCH output.
    Exclude(Box<Pattern<V>>),
    /// `^`: the start of the partition.
    Start,
    /// `$`: the end of the partition.
    End,
    /// `NOT v` at the end of a pattern: no row satisfying `v` follows before
    /// WITHIN's interval has passed (absence; the matcher's `absent`).
    Not(Box<Pattern<V>>),
}

impl<V: Clone + PartialEq> Pattern<V> {
    /// The same pattern with each variable mapped by `f` (which may fail).
    pub fn try_map<W, E>(&self, f: &impl Fn(&V) -> Result<W, E>) -> Result<Pattern<W>, E> {
        let all = |ps: &[Pattern<V>]| {
            ps.iter()
                .map(|p| p.try_map(f))
                .collect::<Result<Vec<_>, E>>()
        };
        Ok(match self {
            Pattern::Empty => Pattern::Empty,
            Pattern::Var(v) => Pattern::Var(f(v)?),
            Pattern::Concat(ps) => Pattern::Concat(all(ps)?),
            Pattern::Alt(ps) => Pattern::Alt(all(ps)?),
            Pattern::Repeat {
                inner,
                min,
                max,
                greedy,
            } => Pattern::Repeat {
                inner: Box::new(inner.try_map(f)?),
                min: *min,
                max: *max,
                greedy: *greedy,
            },
            Pattern::Permute(ps) => Pattern::Permute(all(ps)?),
            Pattern::Exclude(p) => Pattern::Exclude(Box::new(p.try_map(f)?)),
            Pattern::Not(p) => Pattern::Not(Box::new(p.try_map(f)?)),
            Pattern::Start => Pattern::Start,
            Pattern::End => Pattern::End,
        })
    }

    /// Whether the pattern can match zero rows.
    pub fn can_be_empty(&self) -> bool {
        match self {
            Pattern::Empty | Pattern::Start | Pattern::End => true,
            Pattern::Var(_) => false,
            Pattern::Concat(parts) | Pattern::Permute(parts) => {
                parts.iter().all(|p| p.can_be_empty())
            }
            Pattern::Alt(parts) => parts.iter().any(|p| p.can_be_empty()),
            Pattern::Repeat { inner, min, .. } => *min == 0 || inner.can_be_empty(),
            Pattern::Exclude(p) => p.can_be_empty(),
            Pattern::Not(_) => true,
        }
    }

    /// The variables the pattern mentions, in order of first appearance.
    pub fn variables(&self) -> Vec<V> {
        fn walk<V: Clone + PartialEq>(p: &Pattern<V>, out: &mut Vec<V>) {
            match p {
                Pattern::Var(v) => {
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                Pattern::Concat(ps) | Pattern::Alt(ps) | Pattern::Permute(ps) => {
                    ps.iter().for_each(|p| walk(p, out))
                }
                Pattern::Repeat { inner, .. } | Pattern::Exclude(inner) | Pattern::Not(inner) => {
                    walk(inner, out)
                }
                Pattern::Empty | Pattern::Start | Pattern::End => {}
            }
        }
        let mut out = vec![];
        walk(self, &mut out);
        out
    }
}

impl<V: fmt::Display> fmt::Display for Pattern<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, ps: &[Pattern<V>], sep: &str| -> fmt::Result {
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    write!(f, "{sep}")?;
                }
                write!(f, "{p}")?;
            }
            Ok(())
        };
        match self {
            Pattern::Empty => write!(f, "()"),
            Pattern::Var(v) => write!(f, "{v}"),
            Pattern::Concat(ps) => {
                write!(f, "(")?;
                join(f, ps, " ")?;
                write!(f, ")")
            }
            Pattern::Alt(ps) => {
                write!(f, "(")?;
                join(f, ps, " | ")?;
                write!(f, ")")
            }
            Pattern::Repeat {
                inner,
                min,
                max,
                greedy,
            } => {
                write!(f, "{inner}")?;
                match (min, max) {
                    (0, None) => write!(f, "*")?,
                    (1, None) => write!(f, "+")?,
                    (0, Some(1)) => write!(f, "?")?,
                    (n, None) => write!(f, "{{{n},}}")?,
                    (n, Some(m)) if n == m => write!(f, "{{{n}}}")?,
                    (n, Some(m)) => write!(f, "{{{n},{m}}}")?,
                }
                if !greedy {
                    write!(f, "?")?;
                }
                Ok(())
            }
            Pattern::Permute(ps) => {
                write!(f, "PERMUTE(")?;
                join(f, ps, ", ")?;
                write!(f, ")")
            }
            Pattern::Exclude(p) => write!(f, "{{- {p} -}}"),
            Pattern::Not(p) => write!(f, "NOT {p}"),
            Pattern::Start => write!(f, "^"),
            Pattern::End => write!(f, "$"),
        }
    }
}
