//! The state of one group of a non-window GROUP BY, and how it is stored in
//! a keyed table: the row count, then the accumulators' states in Arrow's row
//! format (compact, and typed by the accumulators themselves); the key is
//! the table's key (a group keeps no copy of it), and the last emitted
//! aggregates are evaluated again from the accumulators when a group is
//! read back.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;

use super::group_accs::{flat_layout, flats_at, Accs, Flat, FlatColumn};
use super::retract::{RetractableAvg, RetractableMinMax};
use crate::error::ResultExt;
use crate::state::keyed::StateCodec;
use crate::window::aggregate::AggregateSpec;
use crate::{EngineError, Result};

/// One group.
pub struct Group {
    /// Its aggregates' accumulators.
    pub accs: Accs,
    /// Rows accumulated minus rows retracted.
    pub count: i64,
    /// The aggregates as last emitted.
    pub value: Vec<ScalarValue>,
}

/// The accumulators of a new group: retractable ones over an updating input
/// (Vigil's own MIN/MAX/AVG where DataFusion's cannot take back any value).
pub fn new_accumulators(
    aggregates: &[AggregateSpec],
    input_updating: bool,
) -> Result<Vec<Box<dyn Accumulator>>> {
    aggregates
        .iter()
        .map(|a| {
            let f = a.expr.fun().name().to_ascii_lowercase();
            if input_updating && (f == "min" || f == "max") {
                return Ok(Box::new(RetractableMinMax::new(
                    f == "max",
                    a.expr.field().data_type().clone(),
                )) as Box<dyn Accumulator>);
            }
            // `avg_truncated`: Vigil's AVG over integers (Flink's truncating AVG).
            if input_updating && (f == "avg" || f == "avg_truncated") {
                let result = a.expr.field().data_type().clone();
                if let Some(avg) = RetractableAvg::new(result, f == "avg_truncated") {
                    return Ok(Box::new(avg) as Box<dyn Accumulator>);
                }
            }
            if input_updating {
                a.expr.create_sliding_accumulator()
            } else {
                a.expr.create_accumulator()
            }
            .context("group aggregate")
        })
        .collect()
}

impl Group {
    /// A new, empty group (inline states of `layout`, see [`group_layout`]).
    pub fn new(
        layout: Option<&[Flat]>,
        aggregates: &[AggregateSpec],
        input_updating: bool,
    ) -> Result<Self> {
        Ok(Group {
            accs: Accs::new(layout, aggregates, input_updating)?,
            count: 0,
            value: vec![],
        })
    }
}

/// The state columns of groups of `aggregates` (as a fresh accumulator's
/// state names them, also for Vigil's own retractable ones, whose state
/// differs from DataFusion's), and how many each accumulator has.
fn state_layout(
    aggregates: &[AggregateSpec],
    input_updating: bool,
) -> Result<(Vec<DataType>, Vec<usize>)> {
    let mut state_types = vec![];
    let mut widths = vec![];
    for mut acc in new_accumulators(aggregates, input_updating)? {
        let state = acc.state().context("group state")?;
        widths.push(state.len());
        state_types.extend(state.iter().map(ScalarValue::data_type));
    }
    Ok((state_types, widths))
}

/// The inline states of groups of `aggregates`, when each has one.
pub fn group_layout(
    aggregates: &[AggregateSpec],
    input_updating: bool,
) -> Result<Option<Vec<Flat>>> {
    let (state_types, _) = state_layout(aggregates, input_updating)?;
    Ok(flat_layout(aggregates, input_updating, &state_types))
}

/// Stores [`Group`]s.
pub struct GroupCodec {
    aggregates: Vec<AggregateSpec>,
    input_updating: bool,
    /// The inline states of its groups, when they have them.
    flat: Option<Vec<Flat>>,
    /// The types of the accumulators' states, in order.
    state_types: Vec<DataType>,
    /// How many state values each accumulator has.
    widths: Vec<usize>,
    states: RowConverter,
}

impl GroupCodec {
    /// The codec of groups of these aggregates.
    pub fn new(aggregates: &[AggregateSpec], input_updating: bool) -> Result<Self> {
        let (state_types, widths) = state_layout(aggregates, input_updating)?;
        let states = RowConverter::new(state_types.iter().cloned().map(SortField::new).collect())
            .context("group state layout")?;
        let flat = flat_layout(aggregates, input_updating, &state_types);
        Ok(Self {
            aggregates: aggregates.to_vec(),
            input_updating,
            flat,
            state_types,
            widths,
            states,
        })
    }
}

/// A group whose accumulators are not of the kind its codec stores.
fn mixed() -> EngineError {
    EngineError::State("a group's accumulators do not match its table".into())
}

impl GroupCodec {
    /// The accumulators of group `i` of stored state columns `states`.
    fn merged(&self, states: &[ArrayRef], i: usize) -> Result<Vec<Box<dyn Accumulator>>> {
        let mut accs = new_accumulators(&self.aggregates, self.input_updating)?;
        let mut at = 0;
        for (acc, n) in accs.iter_mut().zip(&self.widths) {
            let row: Vec<ArrayRef> = states[at..at + n].iter().map(|c| c.slice(i, 1)).collect();
            acc.merge_batch(&row).context("restoring group state")?;
            at += n;
        }
        Ok(accs)
    }
}

impl StateCodec<Group> for GroupCodec {
    fn encode(&mut self, group: &mut Group, out: &mut Vec<u8>) -> Result<()> {
        self.encode_all(std::slice::from_mut(group), out, &mut vec![])
    }

    /// All groups at once: their accumulators' states go through Arrow's
    /// row format in one conversion (per group, only the states are read).
    fn encode_all(
        &mut self,
        groups: &mut [Group],
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        let rows = if self.state_types.is_empty() || groups.is_empty() {
            // No aggregate (SELECT DISTINCT): the count is the state.
            None
        } else if let Some(layout) = &self.flat {
            let mut cols = FlatColumn::for_layout(layout, groups.len());
            for group in groups.iter() {
                match &group.accs {
                    Accs::Flat(f) => FlatColumn::push(&mut cols, f)?,
                    Accs::Dyn(_) => return Err(mixed()),
                }
            }
            let columns: Vec<ArrayRef> = cols.into_iter().map(FlatColumn::into_array).collect();
            Some(
                self.states
                    .convert_columns(&columns)
                    .context("group state")?,
            )
        } else {
            let mut values: Vec<Vec<ScalarValue>> = self
                .state_types
                .iter()
                .map(|_| Vec::with_capacity(groups.len()))
                .collect();
            for group in groups.iter_mut() {
                let mut column = values.iter_mut().zip(&self.state_types);
                let Accs::Dyn(accs) = &mut group.accs else {
                    return Err(mixed());
                };
                for acc in accs.iter_mut() {
                    for (v, (c, t)) in acc
                        .state()
                        .context("group state")?
                        .into_iter()
                        .zip(&mut column)
                    {
                        // One type a column (a state may say NULL untyped).
                        c.push(if v.data_type() == *t {
                            v
                        } else {
                            v.cast_to(t).context("group state")?
                        });
                    }
                }
            }
            let columns = values
                .into_iter()
                .map(|v| ScalarValue::iter_to_array(v).context("group state"))
                .collect::<Result<Vec<ArrayRef>>>()?;
            Some(
                self.states
                    .convert_columns(&columns)
                    .context("group state")?,
            )
        };
        for (i, group) in groups.iter().enumerate() {
            out.extend_from_slice(&group.count.to_le_bytes());
            if let Some(rows) = &rows {
                out.extend_from_slice(rows.row(i).data());
            }
            ends.push(out.len());
        }
        Ok(())
    }

    fn decode(&mut self, key: &[u8], bytes: &[u8]) -> Result<Group> {
        let mut one = self.decode_all(&[(key, bytes)])?;
        one.pop()
            .ok_or_else(|| EngineError::State("a stored group is corrupt".into()))
    }

    /// All groups at once: their states and keys go through Arrow's row
    /// format in one conversion each (per group, only the accumulators are
    /// built and merged).
    fn decode_all(&mut self, entries: &[(&[u8], &[u8])]) -> Result<Vec<Group>> {
        let corrupt = || EngineError::State("a stored group is corrupt".into());
        let mut counts = Vec::with_capacity(entries.len());
        let mut bodies = Vec::with_capacity(entries.len());
        for (_, bytes) in entries {
            let (count, body) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
            counts.push(i64::from_le_bytes(*count));
            bodies.push(body);
        }
        let states = if self.state_types.is_empty() {
            vec![]
        } else {
            let parser = self.states.parser();
            self.states
                .convert_rows(bodies.iter().map(|b| parser.parse(b)))
                .context("restoring group state")?
        };
        let mut groups = Vec::with_capacity(entries.len());
        for (i, count) in counts.into_iter().enumerate() {
            let mut accs = match &self.flat {
                Some(layout) if states.is_empty() => Accs::Flat(layout.iter().copied().collect()),
                Some(layout) => Accs::Flat(flats_at(layout, &states, i)?),
                None => Accs::Dyn(self.merged(&states, i)?),
            };
            let value = accs.evaluate()?;
            groups.push(Group { accs, count, value });
        }
        Ok(groups)
    }

    fn size(&self, group: &Group) -> usize {
        // A value's heap bytes beyond the vector's slot (none for the
        // numbers of inline states).
        let value: usize = match group.accs {
            Accs::Flat(_) => 0,
            Accs::Dyn(_) => group
                .value
                .iter()
                .map(|v| v.size() - size_of::<ScalarValue>())
                .sum(),
        };
        size_of::<Group>()
            + group.accs.size()
            + group.value.capacity() * size_of::<ScalarValue>()
            + value
    }
}
