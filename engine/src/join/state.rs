//! Interval join state in checkpoints: the watermark, and each side's kept
//! rows with whether each has found a partner (an outer row that has is not
//! padded at expiry).

use serde::{Deserialize, Serialize};

use super::interval::IntervalJoin;
use super::Side;
use crate::message::EventTime;
use crate::state::arrow_state::{decode_batch, encode_batch};
use crate::state::{entry_value, put_meta, saved_meta, StateEntry, StateWriter, OPERATOR_STATE};
use crate::Result;

/// The checkpointed metadata.
#[derive(Serialize, Deserialize)]
struct Saved {
    watermark: EventTime,
    matched: [Vec<bool>; 2],
}

const ROWS: [&[u8]; 2] = [b"left", b"right"];

impl IntervalJoin {
    /// The whole state (rows are kept only for the join's interval).
    pub(super) fn save(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        let mut matched: [Vec<bool>; 2] = [vec![], vec![]];
        for side in Side::BOTH {
            let (batch, flags) = self.kept_rows(side)?;
            w.put(OPERATOR_STATE, ROWS[side.index()], encode_batch(&batch)?);
            matched[side.index()] = flags;
        }
        let saved = Saved {
            watermark: self.watermark,
            matched,
        };
        put_meta(w, &saved, "join")
    }

    pub(super) fn load(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        let Some(saved) = saved_meta::<Saved>(&entries, "join")? else {
            return Ok(());
        };
        self.watermark = saved.watermark;
        for side in Side::BOTH {
            if let Some(b) = entry_value(&entries, ROWS[side.index()]) {
                let batch = decode_batch(b)?;
                self.keep_restored(side, batch, &saved.matched[side.index()])?;
            }
        }
        Ok(())
    }
}
