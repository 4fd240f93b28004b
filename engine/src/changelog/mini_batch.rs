//! Mini-batch aggregation (Flink's `table.exec.mini-batch.*` and its
//! `MiniBatchGroupAggFunction`): the rows of a mini-batch are grouped by key
//! first, each group's rows go to its accumulators in one call (argument
//! columns sorted by key once, then sliced without copying), and a group
//! emits one change per mini-batch instead of one per row. The result table
//! is the same; the changelog is shorter.
//!
//! A mini-batch is at most `table.exec.mini-batch.size` rows of one input
//! batch, so it never waits for more input: `allow-latency` is met by
//! construction.

use std::collections::BTreeMap;
use std::ops::Range;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use datafusion::arrow::compute::{and, filter, take};
use datafusion::common::HashMap;

use super::aggregate::{Changes, GroupAggregate, Inputs};
use super::kind_at;
use super::ttl::now_ms;
use crate::error::ResultExt;
use crate::time::parse_duration;
use crate::Result;

/// The mini-batch size a job's settings ask for (`None`: mini-batch off), or
/// what is wrong with them. As in Flink, enabling it needs a positive
/// `allow-latency` and `size`.
pub fn mini_batch_setting(
    settings: &BTreeMap<String, String>,
) -> std::result::Result<Option<usize>, String> {
    let enabled = match settings.get("table.exec.mini-batch.enabled") {
        None => false,
        Some(v) => v.trim().parse::<bool>().map_err(|_| {
            format!("invalid 'table.exec.mini-batch.enabled' = '{v}'; write 'true' or 'false'")
        })?,
    };
    if !enabled {
        return Ok(None);
    }
    match settings.get("table.exec.mini-batch.allow-latency") {
        Some(v) if parse_duration(v).is_some_and(|d| !d.is_zero()) => {}
        Some(v) => {
            return Err(format!(
                "invalid 'table.exec.mini-batch.allow-latency' = '{v}'; write a positive duration like '1 s'"
            ))
        }
        None => {
            return Err("'table.exec.mini-batch.enabled' needs 'table.exec.mini-batch.allow-latency' (e.g. '1 s'), as in Flink".into())
        }
    }
    match settings.get("table.exec.mini-batch.size") {
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!(
                "invalid 'table.exec.mini-batch.size' = '{v}'; it must be a positive number of rows"
            )),
        },
        None => Err("'table.exec.mini-batch.enabled' needs 'table.exec.mini-batch.size' (e.g. '5000'), as in Flink".into()),
    }
}

/// The rows of one mini-batch grouped by key: each key's first row (in the
/// order keys first appear) and the rows sorted by key, stably.
struct ByKey {
    firsts: Vec<usize>,
    /// `order[offsets[g]..offsets[g + 1]]` are key `g`'s rows.
    offsets: Vec<usize>,
    order: UInt32Array,
}

fn group_rows(input: &Inputs, rows: Range<usize>) -> ByKey {
    let mut index: HashMap<&[u8], u32> = HashMap::new();
    let mut firsts = vec![];
    let mut of_row = Vec::with_capacity(rows.len());
    for i in rows.clone() {
        let next = firsts.len() as u32;
        let g = *index.entry(input.key(i)).or_insert_with(|| {
            firsts.push(i);
            next
        });
        of_row.push(g);
    }
    let mut offsets = vec![0usize; firsts.len() + 1];
    for g in &of_row {
        offsets[*g as usize + 1] += 1;
    }
    for g in 0..firsts.len() {
        offsets[g + 1] += offsets[g];
    }
    let mut next = offsets.clone();
    let mut order = vec![0u32; of_row.len()];
    for (i, g) in of_row.iter().enumerate() {
        order[next[*g as usize]] = (rows.start + i) as u32;
        next[*g as usize] += 1;
    }
    ByKey {
        firsts,
        offsets,
        order: UInt32Array::from(order),
    }
}

/// `columns` at `order`.
fn sorted(columns: &[ArrayRef], order: &UInt32Array) -> Result<Vec<ArrayRef>> {
    columns
        .iter()
        .map(|c| take(c.as_ref(), order, None).context("mini-batch"))
        .collect()
}

impl GroupAggregate {
    /// Applies `n` rows as mini-batches of at most `size` rows.
    pub(super) fn mini_batches(
        &mut self,
        input: &Inputs,
        n: usize,
        size: usize,
    ) -> Result<Changes> {
        let mut changes = self.changes();
        let mut start = 0;
        while start < n {
            let end = (start + size).min(n);
            self.mini_batch(input, start..end, &mut changes)?;
            start = end;
        }
        Ok(changes)
    }

    fn mini_batch(
        &mut self,
        input: &Inputs,
        rows: Range<usize>,
        changes: &mut Changes,
    ) -> Result<()> {
        let by_key = group_rows(input, rows);
        let args: Vec<Vec<ArrayRef>> = input
            .args
            .iter()
            .map(|a| sorted(a, &by_key.order))
            .collect::<Result<_>>()?;
        let filters: Vec<Option<BooleanArray>> = input
            .filters
            .iter()
            .map(|f| match f {
                Some(f) => take(f, &by_key.order, None)
                    .context("mini-batch")
                    .map(|a| Some(datafusion::arrow::array::AsArray::as_boolean(&a).clone())),
                None => Ok(None),
            })
            .collect::<Result<_>>()?;
        // Whether each sorted row takes a value back.
        let retracts: Vec<bool> = by_key
            .order
            .values()
            .iter()
            .map(|i| kind_at(input.kinds.as_ref(), *i as usize).is_retraction())
            .collect();
        let now = now_ms();
        let ttl = self.ttl.is_some();
        let keys = by_key.firsts.iter().map(|&i| input.key(i));
        self.groups.prefetch(keys, now)?;
        for (g, &first_row) in by_key.firsts.iter().enumerate() {
            let range = by_key.offsets[g]..by_key.offsets[g + 1];
            let taken_back = retracts[range.clone()].iter().filter(|r| **r).count();
            let added = range.len() - taken_back;
            let (spec, layout) = (&self.spec, self.layout.as_deref());
            // Retractions of a group never seen (or expired) are ignored.
            let make = || {
                if added == 0 {
                    return Ok(None);
                }
                Self::new_group(spec, layout).map(Some)
            };
            let key = input.key(first_row);
            let Some(group) = self.groups.get_mut_or(key, now, make)? else {
                continue;
            };
            let first = group.count == 0;
            let masks = (taken_back > 0).then(|| {
                let back: BooleanArray = retracts[range.clone()].iter().map(|r| Some(*r)).collect();
                let add: BooleanArray = retracts[range.clone()].iter().map(|r| Some(!r)).collect();
                (add, back)
            });
            for (k, (a, f)) in args.iter().zip(&filters).enumerate() {
                let cols: Vec<ArrayRef> = a
                    .iter()
                    .map(|c| c.slice(range.start, range.len()))
                    .collect();
                let f = f.as_ref().map(|f| f.slice(range.start, range.len()));
                let pick = |mask: Option<&BooleanArray>| -> Result<Option<Vec<ArrayRef>>> {
                    let mask = match (mask, &f) {
                        (None, None) => return Ok(Some(cols.clone())),
                        (Some(m), None) => m.clone(),
                        (None, Some(f)) => f.clone(),
                        (Some(m), Some(f)) => and(m, f).context("mini-batch")?,
                    };
                    if mask.true_count() == 0 {
                        return Ok(None);
                    }
                    cols.iter()
                        .map(|c| filter(c.as_ref(), &mask).context("mini-batch"))
                        .collect::<Result<Vec<_>>>()
                        .map(Some)
                };
                match &masks {
                    None => {
                        if let Some(cols) = pick(None)? {
                            group.accs.update_batch(k, &cols, false)?;
                        }
                    }
                    Some((add, back)) => {
                        if let Some(cols) = pick(Some(add))? {
                            group.accs.update_batch(k, &cols, false)?;
                        }
                        if let Some(cols) = pick(Some(back))? {
                            group.accs.update_batch(k, &cols, true)?;
                        }
                    }
                }
            }
            group.count += added as i64 - taken_back as i64;
            if !Self::settle(group, key, first, ttl, changes)? {
                self.groups.remove(key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn mini_batch_settings_follow_flink() {
        assert_eq!(mini_batch_setting(&settings(&[])), Ok(None));
        let on = |extra: &[(&str, &str)]| {
            let mut s = vec![("table.exec.mini-batch.enabled", "true")];
            s.extend_from_slice(extra);
            mini_batch_setting(&settings(&s))
        };
        assert_eq!(
            on(&[
                ("table.exec.mini-batch.allow-latency", "1 s"),
                ("table.exec.mini-batch.size", "500")
            ]),
            Ok(Some(500))
        );
        assert!(on(&[("table.exec.mini-batch.size", "500")])
            .unwrap_err()
            .contains("allow-latency"));
        assert!(on(&[
            ("table.exec.mini-batch.allow-latency", "1 s"),
            ("table.exec.mini-batch.size", "0")
        ])
        .unwrap_err()
        .contains("positive"));
    }
}
