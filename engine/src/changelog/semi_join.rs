//! Semi and anti joins (`IN` / `EXISTS` and their negations), as Flink's
//! `StreamingSemiAntiJoinOperator` runs them: each side keeps its rows by
//! key, each left row with how many right rows it has; the output is left
//! rows only.
//!
//! - A left row is emitted on arrival if it has a partner (semi) or none
//!   (anti), with its own kind, so a retracted left row retracts it.
//! - A right row giving a left row its first partner emits that row (semi,
//!   with the right row's kind) or deletes it (anti); one taking away the
//!   last partner deletes it (semi) or inserts it again (anti).
//!
//! So a semi join of append-only inputs is append-only; an anti join is an
//! updating result.

use super::join::{Arrival, Change, Existence, RegularJoin};
use super::join_state::Entry;
use super::RowKind;
use crate::join::Side;
use crate::Result;

impl RegularJoin {
    /// One arriving row of a semi or anti join, whose partners are the other
    /// side's rows at `matched` in the list of its key.
    pub(super) fn exists(
        &mut self,
        existence: Existence,
        row: Arrival,
        key: Option<Box<[u8]>>,
        matched: &[usize],
        now: u64,
        out: &mut Vec<Change>,
    ) -> Result<()> {
        let anti = existence == Existence::Anti;
        let retraction = row.kind.is_retraction();
        match row.side {
            Side::Left => {
                if matched.is_empty() == anti {
                    out.push((row.kind, Some(row.row.clone()), None));
                }
                let Some(k) = key else { return Ok(()) };
                if retraction {
                    return self.forget(Side::Left, &k, &row.row, now);
                }
                if let Some(list) = self.kept[0].get_mut_or(&k, now, || Ok(Some(vec![])))? {
                    list.push(Entry {
                        row: row.row,
                        partners: matched.len() as u32,
                        touched: now,
                    });
                }
            }
            Side::Right => {
                let Some(k) = key else { return Ok(()) };
                if retraction {
                    self.forget(Side::Right, &k, &row.row, now)?;
                } else if let Some(list) = self.kept[1].get_mut_or(&k, now, || Ok(Some(vec![])))? {
                    list.push(Entry {
                        row: row.row.clone(),
                        partners: 0,
                        touched: now,
                    });
                }
                if matched.is_empty() {
                    return Ok(());
                }
                let Some(lefts) = self.kept[0].get_mut(&k, now)? else {
                    return Ok(());
                };
                for &j in matched {
                    let Some(e) = lefts.get_mut(j) else { continue };
                    e.touched = now;
                    if retraction {
                        if e.partners == 1 {
                            let kind = if anti { RowKind::Insert } else { row.kind };
                            out.push((kind, Some(e.row.clone()), None));
                        }
                        e.partners = e.partners.saturating_sub(1);
                    } else {
                        if e.partners == 0 {
                            let kind = if anti { RowKind::Delete } else { row.kind };
                            out.push((kind, Some(e.row.clone()), None));
                        }
                        e.partners += 1;
                    }
                }
            }
        }
        Ok(())
    }
}
