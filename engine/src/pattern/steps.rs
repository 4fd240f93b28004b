//! The rows of a (partial) match. Rows of a match are consecutive in their
//! partition (patterns are strictly contiguous), so a match is its first row
//! and the variables of the rows after it, kept as runs of one variable:
//! `A B B B ... C` is three runs whatever its length. Taking a row extends the
//! last run in place, and navigation (`A.price` after a thousand B rows) skips
//! whole runs.

use serde::{Deserialize, Serialize};

/// A row mapped to a pattern variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The row's position in the partition (its sequence number).
    pub row: u64,
    /// The variable.
    pub var: usize,
}

/// Consecutive rows from `first`, as (variable, rows) runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Steps {
    first: u64,
    runs: Vec<(u32, u32)>,
    len: u64,
}

impl Steps {
    /// No rows (for a partial match that does not exist).
    pub const EMPTY: Steps = Steps {
        first: 0,
        runs: Vec::new(),
        len: 0,
    };

    /// No rows yet; the first will be `first`.
    pub fn starting_at(first: u64) -> Self {
        Self {
            first,
            runs: vec![],
            len: 0,
        }
    }

    /// `steps` (consecutive rows, in order) as runs.
    pub fn from_steps(steps: &[Step]) -> Self {
        let mut s = Self::starting_at(steps.first().map_or(0, |s| s.row));
        for step in steps {
            s.push(step.var);
        }
        s
    }

    /// Maps the next row to `var`.
    pub fn push(&mut self, var: usize) {
        let var = var as u32;
        match self.runs.last_mut() {
            Some((v, n)) if *v == var && *n < u32::MAX => *n += 1,
            _ => self.runs.push((var, 1)),
        }
        self.len += 1;
    }

    /// The first `n` rows (all of them if there are fewer): the match as it
    /// ran up to its `n`-th row.
    pub fn prefix(&self, n: usize) -> Self {
        let mut out = Self::starting_at(self.first);
        let mut left = n as u64;
        for &(var, count) in &self.runs {
            if left == 0 {
                break;
            }
            let take = u64::from(count).min(left);
            out.runs.push((var, take as u32));
            out.len += take;
            left -= take;
        }
        out
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of runs (the memory a partial match holds).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// The first row (the next row to be taken when empty).
    pub fn first_row(&self) -> u64 {
        self.first
    }

    /// The row after the last.
    pub fn end_row(&self) -> u64 {
        self.first + self.len
    }

    /// The last row and its variable.
    pub fn last(&self) -> Option<Step> {
        let (var, _) = *self.runs.last()?;
        Some(Step {
            row: self.end_row() - 1,
            var: var as usize,
        })
    }

    /// Runs as (variable, first row, rows), in order.
    pub fn run_iter(&self) -> impl DoubleEndedIterator<Item = (usize, u64, u64)> + '_ {
        RunIter {
            runs: &self.runs,
            front: 0,
            back: self.runs.len(),
            front_row: self.first,
            back_end: self.end_row(),
        }
    }

    /// Every row and its variable, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Step> + '_ {
        self.run_iter()
            .flat_map(|(var, first, n)| (first..first + n).map(move |row| Step { row, var }))
    }

    /// The `offset`-th row from the end among those mapped to `vars` (any
    /// variable when empty), then `extra` (a row being tested) counted last.
    pub fn nth_back(&self, vars: &[usize], offset: u64, extra: Option<Step>) -> Option<u64> {
        let mut left = offset;
        if let Some(s) = extra {
            if in_vars(vars, s.var) {
                if left == 0 {
                    return Some(s.row);
                }
                left -= 1;
            }
        }
        let mut end = self.end_row();
        for &(var, n) in self.runs.iter().rev() {
            let n = n as u64;
            if in_vars(vars, var as usize) {
                if left < n {
                    return Some(end - 1 - left);
                }
                left -= n;
            }
            end -= n;
        }
        None
    }

    /// The `offset`-th row from the start among those mapped to `vars` (any
    /// variable when empty), with `extra` counted after the rest.
    pub fn nth(&self, vars: &[usize], offset: u64, extra: Option<Step>) -> Option<u64> {
        let mut left = offset;
        let mut first = self.first;
        for &(var, n) in &self.runs {
            let n = n as u64;
            if in_vars(vars, var as usize) {
                if left < n {
                    return Some(first + left);
                }
                left -= n;
            }
            first += n;
        }
        match extra {
            Some(s) if in_vars(vars, s.var) && left == 0 => Some(s.row),
            _ => None,
        }
    }

    /// The variable row `row` is mapped to, if the row is in the match.
    pub fn var_at(&self, row: u64) -> Option<usize> {
        let mut end = self.first;
        for &(var, n) in &self.runs {
            end += n as u64;
            if row >= self.first && row < end {
                return Some(var as usize);
            }
        }
        None
    }

    /// The first and last rows mapped to a variable of `vars` (bit `v` set
    /// for variable `v`).
    pub fn rows_of(&self, vars: u64) -> Option<(u64, u64)> {
        let mut found: Option<(u64, u64)> = None;
        let mut first = self.first;
        for &(v, n) in &self.runs {
            let n = n as u64;
            if v < 64 && vars & (1 << v) != 0 {
                let lo = found.map_or(first, |f| f.0);
                found = Some((lo, first + n - 1));
            }
            first += n;
        }
        found
    }
}

/// Whether `v` is one of `vars` (every variable when empty).
pub fn in_vars(vars: &[usize], v: usize) -> bool {
    vars.is_empty() || vars.contains(&v)
}

struct RunIter<'a> {
    runs: &'a [(u32, u32)],
    front: usize,
    back: usize,
    front_row: u64,
    back_end: u64,
}

impl Iterator for RunIter<'_> {
    type Item = (usize, u64, u64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let (var, n) = self.runs[self.front];
        let first = self.front_row;
        self.front_row += n as u64;
        self.front += 1;
        Some((var as usize, first, n as u64))
    }
}

impl DoubleEndedIterator for RunIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        let (var, n) = self.runs[self.back];
        self.back_end -= n as u64;
        Some((var as usize, self.back_end, n as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abbbc() -> Steps {
        let mut s = Steps::starting_at(10);
        for v in [0, 1, 1, 1, 2] {
            s.push(v);
        }
        s
    }

    #[test]
    fn runs_compress_repeated_variables() {
        let s = abbbc();
        assert_eq!(s.len(), 5);
        assert_eq!(s.runs(), 3);
        assert_eq!(s.last(), Some(Step { row: 14, var: 2 }));
        let rows: Vec<(u64, usize)> = s.iter().map(|x| (x.row, x.var)).collect();
        assert_eq!(rows, vec![(10, 0), (11, 1), (12, 1), (13, 1), (14, 2)]);
        let back: Vec<u64> = s.iter().rev().map(|x| x.row).collect();
        assert_eq!(back, vec![14, 13, 12, 11, 10]);
        assert_eq!(Steps::from_steps(&s.iter().collect::<Vec<_>>()), s);
    }

    #[test]
    fn navigation_skips_runs() {
        let s = abbbc();
        assert_eq!(s.nth_back(&[0], 0, None), Some(10));
        assert_eq!(s.nth_back(&[1], 0, None), Some(13));
        assert_eq!(s.nth_back(&[1], 2, None), Some(11));
        assert_eq!(s.nth_back(&[1], 3, None), None);
        assert_eq!(s.nth_back(&[], 1, None), Some(13));
        let cur = Some(Step { row: 15, var: 1 });
        assert_eq!(s.nth_back(&[1], 0, cur), Some(15));
        assert_eq!(s.nth_back(&[1], 1, cur), Some(13));
        assert_eq!(s.nth(&[1], 1, None), Some(12));
        assert_eq!(s.nth(&[2], 1, cur), None);
        assert_eq!(s.nth(&[1], 3, cur), Some(15));
        assert_eq!(s.rows_of(1 << 1), Some((11, 13)));
        assert_eq!(s.rows_of(1 << 1 | 1 << 2), Some((11, 14)));
        assert_eq!(s.rows_of(1 << 3), None);
        assert_eq!(s.var_at(12), Some(1));
        assert_eq!(s.var_at(14), Some(2));
        assert_eq!(s.var_at(15), None);
    }
}
