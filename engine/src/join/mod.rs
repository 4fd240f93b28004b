//! Joins of two streams. Both inputs reach the join operator through one
//! union, each row tagged with its side (column 0), so the union's watermark —
//! the minimum of the two — drives the join as a two-input operator's would.

pub mod interval;
pub(crate) mod keys;
pub mod lookup;
pub(crate) mod rows;
mod state;
pub mod window;

/// Which unmatched rows an outer join keeps (null-padded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinKind {
    /// Only pairs.
    Inner,
    /// Also left rows without a partner.
    Left,
    /// Also right rows without a partner.
    Right,
    /// Also unmatched rows of both sides.
    Full,
}

impl JoinKind {
    /// Whether unmatched rows of `side` are emitted null-padded.
    pub fn keeps(self, side: Side) -> bool {
        matches!(
            (self, side),
            (JoinKind::Full, _) | (JoinKind::Left, Side::Left) | (JoinKind::Right, Side::Right)
        )
    }
}

/// A side of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The left input (tag 0).
    Left,
    /// The right input (tag 1).
    Right,
}

impl Side {
    /// Both sides, left first.
    pub const BOTH: [Side; 2] = [Side::Left, Side::Right];

    /// The index of the side (its tag).
    pub fn index(self) -> usize {
        match self {
            Side::Left => 0,
            Side::Right => 1,
        }
    }

    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}
