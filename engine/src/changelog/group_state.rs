//! The state of one group of a non-window GROUP BY, and how it is stored in
//! a keyed table: the row count, then the accumulators' states in Arrow's row
//! format (compact, and typed by the accumulators themselves); the key is
//! the table's key, and the last emitted aggregates are evaluated again from
//! the accumulators when a group is read back.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;

use super::retract::{RetractableAvg, RetractableMinMax};
use crate::error::ResultExt;
use crate::state::keyed::StateCodec;
use crate::window::aggregate::AggregateSpec;
use crate::{EngineError, Result};

/// One group.
pub struct Group {
    /// Its key's values.
    pub key: Vec<ScalarValue>,
    /// One accumulator per aggregate call.
    pub accs: Vec<Box<dyn Accumulator>>,
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

/// Stores [`Group`]s.
pub struct GroupCodec {
    aggregates: Vec<AggregateSpec>,
    input_updating: bool,
    keys: RowConverter,
    key_count: usize,
    /// The types of the accumulators' states, in order.
    state_types: Vec<DataType>,
    /// How many state values each accumulator has.
    widths: Vec<usize>,
    states: RowConverter,
}

impl GroupCodec {
    /// The codec of groups with keys of `key_types` and these aggregates.
    pub fn new(
        key_types: &[DataType],
        aggregates: &[AggregateSpec],
        input_updating: bool,
    ) -> Result<Self> {
        let keys = RowConverter::new(key_types.iter().cloned().map(SortField::new).collect())
            .context("group keys")?;
        // A fresh accumulator's state names its types (also for Vigil's own
        // retractable ones, whose state differs from DataFusion's).
        let mut state_types = vec![];
        let mut widths = vec![];
        for mut acc in new_accumulators(aggregates, input_updating)? {
            let state = acc.state().context("group state")?;
            widths.push(state.len());
            state_types.extend(state.iter().map(ScalarValue::data_type));
        }
        let states = RowConverter::new(state_types.iter().cloned().map(SortField::new).collect())
            .context("group state layout")?;
        Ok(Self {
            aggregates: aggregates.to_vec(),
            input_updating,
            keys,
            key_count: key_types.len(),
            state_types,
            widths,
            states,
        })
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
        } else {
            let mut values: Vec<Vec<ScalarValue>> = self
                .state_types
                .iter()
                .map(|_| Vec::with_capacity(groups.len()))
                .collect();
            for group in groups.iter_mut() {
                let mut column = values.iter_mut().zip(&self.state_types);
                for acc in group.accs.iter_mut() {
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
        let keys = if self.key_count == 0 {
            vec![]
        } else {
            let parser = self.keys.parser();
            self.keys
                .convert_rows(entries.iter().map(|(k, _)| parser.parse(k)))
                .context("restoring group key")?
        };
        let mut groups = Vec::with_capacity(entries.len());
        for (i, count) in counts.into_iter().enumerate() {
            let mut accs = new_accumulators(&self.aggregates, self.input_updating)?;
            let mut at = 0;
            for (acc, n) in accs.iter_mut().zip(&self.widths) {
                let row: Vec<ArrayRef> = states[at..at + n].iter().map(|c| c.slice(i, 1)).collect();
                acc.merge_batch(&row).context("restoring group state")?;
                at += n;
            }
            let key = keys
                .iter()
                .map(|c| ScalarValue::try_from_array(c, i))
                .collect::<datafusion::error::Result<Vec<_>>>()
                .context("restoring group key")?;
            let value = accs
                .iter_mut()
                .map(|a| a.evaluate().context("group aggregate"))
                .collect::<Result<Vec<_>>>()?;
            groups.push(Group {
                key,
                accs,
                count,
                value,
            });
        }
        Ok(groups)
    }

    fn size(&self, group: &Group) -> usize {
        let accs: usize = group.accs.iter().map(|a| a.size()).sum();
        let key: usize = group.key.iter().map(ScalarValue::size).sum();
        accs + key + group.value.iter().map(ScalarValue::size).sum::<usize>()
    }
}
