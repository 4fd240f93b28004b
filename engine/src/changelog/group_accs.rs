//! The accumulators of one group of a GROUP BY (or of an OVER partition).
//!
//! Most groups aggregate with COUNT, SUM over BIGINT or DOUBLE, and MIN/MAX
//! over BIGINT: their state is a number or two. Such groups hold those
//! numbers inline ([`Flat`]) instead of a DataFusion accumulator object
//! each: a group is then one small allocation, a row updates it without
//! slicing arrays, and a group that spilled is read back and written out
//! without building accumulators or going through `ScalarValue`s. The
//! numbers follow DataFusion's accumulators exactly (the same wrapping
//! arithmetic, the same NULL until a first value, the same state columns),
//! so a stored group reads the same either way. Any other aggregate keeps
//! DataFusion's (or Vigil's retractable) accumulators ([`Accs::Dyn`]).

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::sum;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use smallvec::SmallVec;

use super::group_state::new_accumulators;
use crate::error::ResultExt;
use crate::window::aggregate::AggregateSpec;
use crate::{EngineError, Result};

/// An aggregate whose state is held inline, as DataFusion's accumulator of
/// the same aggregate holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flat {
    /// `COUNT(x)` (and `COUNT(*)`): rows where `x` is not NULL.
    Count(i64),
    /// `SUM` over BIGINT of an append-only input: NULL until a value.
    SumInt(Option<i64>),
    /// `SUM` over DOUBLE of an append-only input.
    SumFloat(Option<f64>),
    /// `SUM` over BIGINT that takes rows back: the sum and how many values
    /// it holds (NULL when none).
    SlidingSumInt(i64, u64),
    /// `SUM` over DOUBLE that takes rows back.
    SlidingSumFloat(f64, u64),
    /// `MIN` over BIGINT of an append-only input.
    MinInt(Option<i64>),
    /// `MAX` over BIGINT of an append-only input.
    MaxInt(Option<i64>),
}

/// What kind of [`Flat`] an aggregate has, if it can have one.
fn flat_of(a: &AggregateSpec, input_updating: bool) -> Option<Flat> {
    let e = &a.expr;
    if e.is_distinct() || e.expressions().len() != 1 || !e.order_bys().is_empty() {
        return None;
    }
    let result = e.field().data_type().clone();
    let name = e.fun().name().to_ascii_lowercase();
    Some(match (name.as_str(), &result, input_updating) {
        ("count", DataType::Int64, _) => Flat::Count(0),
        ("sum", DataType::Int64, false) => Flat::SumInt(None),
        ("sum", DataType::Float64, false) => Flat::SumFloat(None),
        ("sum", DataType::Int64, true) => Flat::SlidingSumInt(0, 0),
        ("sum", DataType::Float64, true) => Flat::SlidingSumFloat(0.0, 0),
        ("min", DataType::Int64, false) => Flat::MinInt(None),
        ("max", DataType::Int64, false) => Flat::MaxInt(None),
        _ => return None,
    })
}

/// The inline states of fresh groups of `aggregates`, if every one of them
/// has one (a group is all inline or all accumulators) and they store the
/// state columns that their accumulators would (`state_types`).
pub fn flat_layout(
    aggregates: &[AggregateSpec],
    input_updating: bool,
    state_types: &[DataType],
) -> Option<Vec<Flat>> {
    let layout: Vec<Flat> = aggregates
        .iter()
        .map(|a| flat_of(a, input_updating))
        .collect::<Option<_>>()?;
    let cols = FlatColumn::for_layout(&layout, 0);
    let same = cols.len() == state_types.len()
        && cols
            .iter()
            .zip(state_types)
            .all(|(c, t)| c.data_type() == *t);
    same.then_some(layout)
}

/// The accumulators of one group.
pub enum Accs {
    /// Every aggregate's state inline.
    Flat(SmallVec<[Flat; 3]>),
    /// One accumulator per aggregate.
    Dyn(Vec<Box<dyn Accumulator>>),
}

fn wrong_type(what: &str) -> EngineError {
    EngineError::Graph(format!(
        "{what}: an aggregate's argument has an unexpected type"
    ))
}

fn ints(a: &ArrayRef) -> Result<&datafusion::arrow::array::Int64Array> {
    a.as_primitive_opt::<Int64Type>()
        .ok_or_else(|| wrong_type("aggregate"))
}

fn floats(a: &ArrayRef) -> Result<&datafusion::arrow::array::Float64Array> {
    a.as_primitive_opt::<Float64Type>()
        .ok_or_else(|| wrong_type("aggregate"))
}

impl Flat {
    /// Adds (or with `retract`, takes back) row `i` of `arg`.
    fn row(&mut self, arg: &ArrayRef, i: usize, retract: bool) -> Result<()> {
        self.check(retract)?;
        if arg.is_null(i) {
            return Ok(());
        }
        match self {
            Flat::Count(n) => *n += if retract { -1 } else { 1 },
            Flat::SumInt(s) => {
                let v = ints(arg)?.value(i);
                *s = Some(s.unwrap_or(0).wrapping_add(v));
            }
            Flat::SumFloat(s) => *s = Some(s.unwrap_or(0.0) + floats(arg)?.value(i)),
            Flat::SlidingSumInt(s, n) => {
                let v = ints(arg)?.value(i);
                if retract {
                    *s = s.wrapping_sub(v);
                    *n = n.wrapping_sub(1);
                } else {
                    *s = s.wrapping_add(v);
                    *n += 1;
                }
            }
            Flat::SlidingSumFloat(s, n) => {
                let v = floats(arg)?.value(i);
                if retract {
                    *s -= v;
                    *n = n.wrapping_sub(1);
                } else {
                    *s += v;
                    *n += 1;
                }
            }
            Flat::MinInt(m) => {
                let v = ints(arg)?.value(i);
                *m = Some(m.map_or(v, |m| m.min(v)));
            }
            Flat::MaxInt(m) => {
                let v = ints(arg)?.value(i);
                *m = Some(m.map_or(v, |m| m.max(v)));
            }
        }
        Ok(())
    }

    /// An error unless this state can take `retract`ions (only those of an
    /// updating input can, as their DataFusion accumulators).
    fn check(&self, retract: bool) -> Result<()> {
        let append_only = matches!(
            self,
            Flat::SumInt(_) | Flat::SumFloat(_) | Flat::MinInt(_) | Flat::MaxInt(_)
        );
        if retract && append_only {
            return Err(EngineError::Graph(
                "aggregate: an append-only aggregate was asked to take a row back".into(),
            ));
        }
        Ok(())
    }

    /// Adds (or takes back) every row of `arg` at once, as DataFusion's
    /// accumulator does (one sum of the batch, then added).
    fn batch(&mut self, arg: &ArrayRef, retract: bool) -> Result<()> {
        self.check(retract)?;
        let values = (arg.len() - arg.null_count()) as u64;
        match self {
            Flat::Count(n) => {
                let v = values as i64;
                *n += if retract { -v } else { v };
            }
            Flat::SumInt(s) => {
                if let Some(x) = sum(ints(arg)?) {
                    *s = Some(s.unwrap_or(0).wrapping_add(x));
                }
            }
            Flat::SumFloat(s) => {
                if let Some(x) = sum(floats(arg)?) {
                    *s = Some(s.unwrap_or(0.0) + x);
                }
            }
            Flat::SlidingSumInt(s, n) => {
                let x = sum(ints(arg)?).unwrap_or(0);
                if retract {
                    *s = s.wrapping_sub(x);
                    *n = n.wrapping_sub(values);
                } else {
                    *s = s.wrapping_add(x);
                    *n += values;
                }
            }
            Flat::SlidingSumFloat(s, n) => {
                if let Some(x) = sum(floats(arg)?) {
                    *s = if retract { *s - x } else { *s + x };
                }
                *n = if retract {
                    n.wrapping_sub(values)
                } else {
                    *n + values
                };
            }
            Flat::MinInt(_) | Flat::MaxInt(_) => {
                for i in 0..arg.len() {
                    self.row(arg, i, retract)?;
                }
            }
        }
        Ok(())
    }

    /// The aggregate's value.
    pub fn evaluate(&self) -> ScalarValue {
        match *self {
            Flat::Count(n) => ScalarValue::Int64(Some(n)),
            Flat::SumInt(s) | Flat::MinInt(s) | Flat::MaxInt(s) => ScalarValue::Int64(s),
            Flat::SumFloat(s) => ScalarValue::Float64(s),
            Flat::SlidingSumInt(s, n) => ScalarValue::Int64((n != 0).then_some(s)),
            Flat::SlidingSumFloat(s, n) => ScalarValue::Float64((n != 0).then_some(s)),
        }
    }
}

/// The stored state columns of inline groups, built column by column (what
/// their DataFusion accumulators' `state()` would give, typed).
pub enum FlatColumn {
    Ints(Vec<Option<i64>>),
    Floats(Vec<Option<f64>>),
    Counts(Vec<Option<u64>>),
}

impl FlatColumn {
    /// The empty columns of the states of `layout`, with room for `n` groups.
    pub fn for_layout(layout: &[Flat], n: usize) -> Vec<FlatColumn> {
        let mut cols = vec![];
        for f in layout {
            match f {
                Flat::SumFloat(_) => cols.push(FlatColumn::Floats(Vec::with_capacity(n))),
                Flat::SlidingSumFloat(..) => {
                    cols.push(FlatColumn::Floats(Vec::with_capacity(n)));
                    cols.push(FlatColumn::Counts(Vec::with_capacity(n)));
                }
                Flat::SlidingSumInt(..) => {
                    cols.push(FlatColumn::Ints(Vec::with_capacity(n)));
                    cols.push(FlatColumn::Counts(Vec::with_capacity(n)));
                }
                _ => cols.push(FlatColumn::Ints(Vec::with_capacity(n))),
            }
        }
        cols
    }

    /// Appends the state of `flats` (one group) to `cols`.
    pub fn push(cols: &mut [FlatColumn], flats: &[Flat]) -> Result<()> {
        let mut cols = cols.iter_mut();
        let mismatch = || EngineError::State("a group's state does not match its layout".into());
        let mut next = || cols.next().ok_or_else(mismatch);
        for f in flats {
            match (*f, next()?) {
                (Flat::Count(n), FlatColumn::Ints(c)) => c.push(Some(n)),
                (Flat::SumInt(s) | Flat::MinInt(s) | Flat::MaxInt(s), FlatColumn::Ints(c)) => {
                    c.push(s)
                }
                (Flat::SumFloat(s), FlatColumn::Floats(c)) => c.push(s),
                (Flat::SlidingSumInt(s, n), FlatColumn::Ints(c)) => {
                    c.push((n != 0).then_some(s));
                    match next()? {
                        FlatColumn::Counts(c) => c.push(Some(n)),
                        _ => return Err(mismatch()),
                    }
                }
                (Flat::SlidingSumFloat(s, n), FlatColumn::Floats(c)) => {
                    c.push((n != 0).then_some(s));
                    match next()? {
                        FlatColumn::Counts(c) => c.push(Some(n)),
                        _ => return Err(mismatch()),
                    }
                }
                _ => return Err(mismatch()),
            }
        }
        Ok(())
    }

    /// The type of its Arrow array.
    pub fn data_type(&self) -> DataType {
        match self {
            FlatColumn::Ints(_) => DataType::Int64,
            FlatColumn::Floats(_) => DataType::Float64,
            FlatColumn::Counts(_) => DataType::UInt64,
        }
    }

    /// As an Arrow array.
    pub fn into_array(self) -> ArrayRef {
        use datafusion::arrow::array::{Float64Array, Int64Array, UInt64Array};
        use std::sync::Arc;
        match self {
            FlatColumn::Ints(v) => Arc::new(Int64Array::from(v)),
            FlatColumn::Floats(v) => Arc::new(Float64Array::from(v)),
            FlatColumn::Counts(v) => Arc::new(UInt64Array::from(v)),
        }
    }
}

/// The state of group `i` in stored state columns `states` (laid out for
/// `layout`), as inline states.
pub fn flats_at(layout: &[Flat], states: &[ArrayRef], i: usize) -> Result<SmallVec<[Flat; 3]>> {
    let corrupt = || EngineError::State("a stored group is corrupt".into());
    let int = |c: &ArrayRef| -> Result<Option<i64>> {
        let a = c.as_primitive_opt::<Int64Type>().ok_or_else(corrupt)?;
        Ok(a.is_valid(i).then(|| a.value(i)))
    };
    let float = |c: &ArrayRef| -> Result<Option<f64>> {
        let a = c.as_primitive_opt::<Float64Type>().ok_or_else(corrupt)?;
        Ok(a.is_valid(i).then(|| a.value(i)))
    };
    let count = |c: &ArrayRef| -> Result<u64> {
        let a = c.as_primitive_opt::<UInt64Type>().ok_or_else(corrupt)?;
        Ok(if a.is_valid(i) { a.value(i) } else { 0 })
    };
    let mut at = states.iter();
    let mut next = || at.next().ok_or_else(corrupt);
    layout
        .iter()
        .map(|f| {
            Ok(match f {
                Flat::Count(_) => Flat::Count(int(next()?)?.unwrap_or(0)),
                Flat::SumInt(_) => Flat::SumInt(int(next()?)?),
                Flat::MinInt(_) => Flat::MinInt(int(next()?)?),
                Flat::MaxInt(_) => Flat::MaxInt(int(next()?)?),
                Flat::SumFloat(_) => Flat::SumFloat(float(next()?)?),
                Flat::SlidingSumInt(..) => {
                    let s = int(next()?)?.unwrap_or(0);
                    Flat::SlidingSumInt(s, count(next()?)?)
                }
                Flat::SlidingSumFloat(..) => {
                    let s = float(next()?)?.unwrap_or(0.0);
                    Flat::SlidingSumFloat(s, count(next()?)?)
                }
            })
        })
        .collect()
}

impl Accs {
    /// The accumulators of a new group: inline ones of `layout` (see
    /// [`flat_layout`]), else DataFusion's (retractable ones over an
    /// updating input).
    pub fn new(
        layout: Option<&[Flat]>,
        aggregates: &[AggregateSpec],
        input_updating: bool,
    ) -> Result<Self> {
        Ok(match layout {
            Some(flats) => Accs::Flat(flats.iter().copied().collect()),
            None => Accs::Dyn(new_accumulators(aggregates, input_updating)?),
        })
    }

    /// Adds (or with `retract`, takes back) row `i` of `args` to aggregate `k`.
    pub fn update_row(
        &mut self,
        k: usize,
        args: &[ArrayRef],
        i: usize,
        retract: bool,
    ) -> Result<()> {
        match self {
            Accs::Flat(f) => match (f.get_mut(k), args.first()) {
                (Some(f), Some(arg)) => f.row(arg, i, retract),
                _ => Err(wrong_type("aggregate")),
            },
            Accs::Dyn(accs) => {
                let acc = accs.get_mut(k).ok_or_else(|| wrong_type("aggregate"))?;
                let row: Vec<ArrayRef> = args.iter().map(|c| c.slice(i, 1)).collect();
                if retract {
                    acc.retract_batch(&row)
                } else {
                    acc.update_batch(&row)
                }
                .context("aggregate")
            }
        }
    }

    /// Adds (or with `retract`, takes back) all rows of `args` to aggregate `k`.
    pub fn update_batch(&mut self, k: usize, args: &[ArrayRef], retract: bool) -> Result<()> {
        match self {
            Accs::Flat(f) => match (f.get_mut(k), args.first()) {
                (Some(f), Some(arg)) => f.batch(arg, retract),
                _ => Err(wrong_type("aggregate")),
            },
            Accs::Dyn(accs) => {
                let acc = accs.get_mut(k).ok_or_else(|| wrong_type("aggregate"))?;
                if retract {
                    acc.retract_batch(args)
                } else {
                    acc.update_batch(args)
                }
                .context("aggregate")
            }
        }
    }

    /// The aggregates' values.
    pub fn evaluate(&mut self) -> Result<Vec<ScalarValue>> {
        match self {
            Accs::Flat(f) => Ok(f.iter().map(Flat::evaluate).collect()),
            Accs::Dyn(accs) => accs
                .iter_mut()
                .map(|a| a.evaluate().context("aggregate"))
                .collect(),
        }
    }

    /// Bytes held (beside the group itself).
    pub fn size(&self) -> usize {
        match self {
            Accs::Flat(f) if !f.spilled() => 0,
            Accs::Flat(f) => f.len() * size_of::<Flat>(),
            Accs::Dyn(accs) => accs.iter().map(|a| a.size()).sum(),
        }
    }
}

#[cfg(test)]
mod tests;
