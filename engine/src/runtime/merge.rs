//! Merging the inputs of a task: watermarks by minimum, idleness, the end of
//! input, and the alignment of checkpoint barriers.

use crate::message::{CheckpointId, EventTime, Message};
use crate::time::MIN_WATERMARK;

/// Merges the inputs of a task: batches pass as they come; the watermark is the
/// minimum over the inputs that are not idle; `End` once every input has ended
/// (`Stop` if any of them was stopped).
///
/// Barriers are aligned as in Flink's exactly-once mode: once an input has
/// delivered the barrier of a checkpoint, it is blocked ([`Merge::blocked`]):
/// the task stops reading it, so its messages wait in its bounded channel and
/// its upstream is backpressured (nothing is buffered here), until every other
/// input has delivered the barrier too (or ended); then the barrier goes on.
pub(super) struct Merge {
    watermarks: Vec<EventTime>,
    ended: Vec<bool>,
    idle: Vec<bool>,
    stopped: bool,
    emitted: EventTime,
    barrier: Option<CheckpointId>,
    blocked: Vec<bool>,
}

impl Merge {
    pub fn new(n: usize) -> Self {
        Self {
            watermarks: vec![MIN_WATERMARK; n],
            ended: vec![false; n],
            idle: vec![false; n],
            stopped: false,
            emitted: MIN_WATERMARK,
            barrier: None,
            blocked: vec![false; n],
        }
    }

    /// The inputs not to read until the barrier in alignment has come on
    /// every other input.
    pub fn blocked(&self) -> &[bool] {
        &self.blocked
    }

    /// Takes a message of input `idx` (which must not be blocked); returns
    /// what goes down the chain.
    pub fn on(&mut self, idx: usize, msg: Message, out: &mut Vec<Message>) {
        debug_assert!(!self.blocked[idx], "a blocked input was read");
        match msg {
            Message::Batch(b) => {
                self.idle[idx] = false;
                out.push(Message::Batch(b));
            }
            Message::Watermark(wm) => {
                self.idle[idx] = false;
                self.watermarks[idx] = self.watermarks[idx].max(wm);
                self.advance(out);
            }
            // Split ids are only meaningful on a source's own edge.
            Message::Split(ev) => {
                if self.ended.len() == 1 {
                    out.push(Message::Split(ev));
                }
            }
            Message::Idle => {
                self.idle[idx] = true;
                if self.idle.iter().all(|i| *i) {
                    // As Flink's watermark valve: once no input can advance,
                    // the highest watermark any of them reached holds (else
                    // an input that went idle before a silent one would hold
                    // its windows back for good).
                    let max = self.watermarks.iter().copied().max();
                    if let Some(max) = max.filter(|m| *m > self.emitted) {
                        self.emitted = max;
                        out.push(Message::Watermark(max));
                    }
                    out.push(Message::Idle);
                } else {
                    self.advance(out);
                }
            }
            Message::Barrier(id) => {
                if self.ended.len() == 1 {
                    out.push(Message::Barrier(id));
                    return;
                }
                self.blocked[idx] = true;
                self.barrier = Some(id);
                self.try_align(out);
            }
            Message::End | Message::Stop => {
                self.stopped |= matches!(msg, Message::Stop);
                self.ended[idx] = true;
                if self.ended.iter().all(|e| *e) {
                    out.push(if self.stopped {
                        Message::Stop
                    } else {
                        Message::End
                    });
                } else {
                    // An ended input no longer holds the watermark back, nor a barrier.
                    self.watermarks[idx] = EventTime::MAX;
                    self.advance(out);
                    self.try_align(out);
                }
            }
        }
    }

    fn try_align(&mut self, out: &mut Vec<Message>) {
        let Some(id) = self.barrier else { return };
        let aligned = self.blocked.iter().zip(&self.ended).all(|(b, e)| *b || *e);
        if aligned {
            self.barrier = None;
            self.blocked.iter_mut().for_each(|b| *b = false);
            out.push(Message::Barrier(id));
        }
    }

    fn advance(&mut self, out: &mut Vec<Message>) {
        let min = self
            .watermarks
            .iter()
            .zip(&self.idle)
            .filter(|(_, idle)| !**idle)
            .map(|(wm, _)| *wm)
            .min();
        if let Some(min) = min.filter(|m| *m > self.emitted) {
            self.emitted = min;
            out.push(Message::Watermark(min));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(out: &[Message]) -> Vec<String> {
        out.iter()
            .map(|m| match m {
                Message::Watermark(w) => format!("wm{w}"),
                Message::Barrier(id) => format!("b{id}"),
                Message::End => "end".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn barriers_align_and_block_the_early_input() {
        let mut m = Merge::new(2);
        let mut out = vec![];
        m.on(0, Message::Barrier(1), &mut out);
        assert!(out.is_empty(), "input 1 has not delivered the barrier yet");
        assert_eq!(m.blocked(), &[true, false], "input 0 is not read now");
        m.on(1, Message::Watermark(5), &mut out);
        assert!(
            out.is_empty(),
            "input 0 has no watermark yet, so no minimum"
        );
        m.on(1, Message::Barrier(1), &mut out);
        assert_eq!(kinds(&out), vec!["b1"]);
        assert_eq!(m.blocked(), &[false, false]);
        out.clear();
        m.on(0, Message::Watermark(10), &mut out);
        assert_eq!(kinds(&out), vec!["wm5"]);
    }

    #[test]
    fn when_every_input_is_idle_the_highest_watermark_holds() {
        let mut m = Merge::new(2);
        let mut out = vec![];
        m.on(0, Message::Watermark(10), &mut out);
        assert!(out.is_empty(), "input 1 has no watermark yet");
        // Input 0 goes idle first: input 1, silent, is the only active one.
        m.on(0, Message::Idle, &mut out);
        assert!(out.is_empty());
        m.on(1, Message::Idle, &mut out);
        assert_eq!(kinds(&out), vec!["wm10", "Idle"]);
    }

    #[test]
    fn an_ended_input_does_not_hold_a_barrier() {
        let mut m = Merge::new(2);
        let mut out = vec![];
        m.on(1, Message::End, &mut out);
        m.on(0, Message::Barrier(3), &mut out);
        assert_eq!(kinds(&out), vec!["b3"]);
        out.clear();
        // And an input ending mid-alignment releases it.
        let mut m = Merge::new(2);
        m.on(0, Message::Barrier(4), &mut out);
        m.on(1, Message::End, &mut out);
        assert_eq!(kinds(&out), vec!["b4"]);
    }
}
