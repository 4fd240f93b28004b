//! Joins of two streams: two-input operators, told by the runtime which
//! input (0: left, 1: right) each batch comes from; their watermark is the
//! lower of their inputs'.

pub mod interval;
pub(crate) mod keys;
pub mod lookup;
pub(crate) mod rows;
mod state;
pub mod temporal;
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
    /// The left input (input 0).
    Left,
    /// The right input (input 1).
    Right,
}

impl Side {
    /// Both sides, left first.
    pub const BOTH: [Side; 2] = [Side::Left, Side::Right];

    /// The side of input `input` of a join.
    pub fn of_input(input: usize) -> crate::Result<Side> {
        match input {
            0 => Ok(Side::Left),
            1 => Ok(Side::Right),
            _ => Err(crate::EngineError::Graph(format!(
                "a join has two inputs, not input {input}"
            ))),
        }
    }

    /// The index of the side (its input).
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

/// Why a join without an equality key runs once, for `explain`.
pub const UNKEYED_JOIN: &str = "no equality key: one instance sees both inputs whole";
