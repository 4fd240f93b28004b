//! Joins of two streams. Both inputs reach the join operator through one
//! union, each row tagged with its side (column 0), so the union's watermark —
//! the minimum of the two — drives the join as a two-input operator's would.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Operator as BinaryOp;
use datafusion::physical_expr::expressions::{BinaryExpr, CaseExpr, CastExpr, Column, Literal};
use datafusion::physical_expr::PhysicalExpr;

use crate::error::ResultExt;

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

/// `expr` over a side's own columns, read from the side-tagged layout where
/// that side's columns start at `offset`.
fn shifted(expr: &Arc<dyn PhysicalExpr>, offset: usize) -> crate::Result<Arc<dyn PhysicalExpr>> {
    expr.clone()
        .transform(|e| {
            Ok(match e.downcast_ref::<Column>() {
                Some(c) => {
                    Transformed::yes(Arc::new(Column::new(c.name(), c.index() + offset))
                        as Arc<dyn PhysicalExpr>)
                }
                None => Transformed::no(e),
            })
        })
        .map(|t| t.data)
        .context("join key")
}

/// Why a join without an equality key runs once, for `explain`.
pub const UNKEYED_JOIN: &str = "no equality key: one instance sees both inputs whole";

/// The join key of every row of a side-tagged batch (tag, left columns of
/// `left_width`, right columns): per key, `CASE WHEN tag = 0 THEN left key
/// ELSE right key END`, cast to the keys' common type, so that equal keys of
/// both sides land in the same key group (the exchange in front of parallel
/// join instances routes by these).
pub(crate) fn tagged_key_exprs(
    keys: &[Vec<Arc<dyn PhysicalExpr>>; 2],
    key_types: &[DataType],
    left_width: usize,
) -> crate::Result<Vec<Arc<dyn PhysicalExpr>>> {
    let tag: Arc<dyn PhysicalExpr> = Arc::new(Column::new("__side", 0));
    let is_left: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
        tag,
        BinaryOp::Eq,
        Arc::new(Literal::new(ScalarValue::Int8(Some(0)))),
    ));
    keys[0]
        .iter()
        .zip(&keys[1])
        .zip(key_types)
        .map(|((l, r), t)| {
            let l: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(shifted(l, 1)?, t.clone(), None));
            let r: Arc<dyn PhysicalExpr> =
                Arc::new(CastExpr::new(shifted(r, 1 + left_width)?, t.clone(), None));
            let case =
                CaseExpr::try_new(None, vec![(is_left.clone(), l)], Some(r)).context("join key")?;
            Ok(Arc::new(case) as Arc<dyn PhysicalExpr>)
        })
        .collect()
}
