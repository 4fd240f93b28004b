//! Interval join state outside its keyed tables: the watermark, which is the
//! operator's as a whole (its kept rows and their deadlines are keyed state).

use serde::{Deserialize, Serialize};

use super::interval::IntervalJoin;
use crate::message::EventTime;
use crate::state::{put_meta, saved_meta, StateEntry, StateWriter};
use crate::Result;

/// The checkpointed metadata.
#[derive(Serialize, Deserialize)]
struct Saved {
    watermark: EventTime,
}

impl IntervalJoin {
    /// The watermark, at each checkpoint.
    pub(super) fn save_watermark(&mut self, w: &mut StateWriter<'_>) -> Result<()> {
        put_meta(
            w,
            &Saved {
                watermark: self.watermark,
            },
            "join",
        )
    }

    pub(super) fn load_watermark(&mut self, entries: Vec<StateEntry>) -> Result<()> {
        if let Some(saved) = saved_meta::<Saved>(&entries, "join")? {
            self.watermark = saved.watermark;
        }
        Ok(())
    }
}
