//! Normalising an upsert stream into a full changelog (Flink's
//! `ChangelogNormalize`): an upsert source (`upsert-kafka`) says only "this
//! is the key's row now" (`+I`) or "the key has no row" (`-D`, a tombstone
//! that carries nothing but the key). Keeping each key's last row turns
//! that into what the rest of the engine takes: `+I` for a new key, `-U`
//! old / `+U` new for a changed one, `-D` with the deleted row's values
//! (the row that was there, as Flink emits it), and nothing for a repeated
//! row or a tombstone of a key without a row.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Int8Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;

use super::ttl::{now_ms, sweep, Ttl};
use super::{data_width, kind_at, kinds, RowKind};
use crate::error::ResultExt;
use crate::join::rows::{gather, RowRef};
use crate::operator::{Emitter, Operator};
use crate::operators::{batch_of, eval};
use crate::state::keyed::rows::RowList;
use crate::state::keyed::{KeyedTable, StateContext, StateTable};
use crate::Result;

/// What a changelog normalisation computes, as planned.
#[derive(Debug, Clone)]
pub struct NormalizeSpec {
    /// The primary key's columns.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Their types.
    pub key_types: Vec<DataType>,
    /// The stream's columns, `__row_kind` last (input and output alike).
    pub schema: SchemaRef,
    /// `table.exec.state.ttl`.
    pub ttl: Option<Duration>,
    /// The plan as text.
    pub describe: String,
}

/// One emitted change: its kind and row.
type Change = (RowKind, RowRef);

/// Keeps each key's last row and emits the changes between them.
pub struct ChangelogNormalize {
    spec: NormalizeSpec,
    /// The rows' columns without `__row_kind`.
    data: SchemaRef,
    keys: RowConverter,
    /// Whole rows as bytes, to find a row repeated unchanged.
    rows: RowConverter,
    last: KeyedTable<Vec<RowRef>, RowList>,
    ttl: Option<Ttl>,
}

impl ChangelogNormalize {
    /// The operator for `spec`.
    pub fn new(spec: NormalizeSpec) -> Result<Self> {
        let width = data_width(&spec.schema);
        let data = Arc::new(
            spec.schema
                .project(&(0..width).collect::<Vec<_>>())
                .context("normalize columns")?,
        );
        let keys = RowConverter::new(spec.key_types.iter().cloned().map(SortField::new).collect())
            .context("normalize keys")?;
        let rows = super::row_converter(&data)?;
        let last = Self::declare(&data, spec.ttl, &mut StateContext::detached())?;
        let ttl = spec.ttl.map(Ttl::new);
        Ok(Self {
            spec,
            data,
            keys,
            rows,
            last,
            ttl,
        })
    }

    fn declare(
        data: &SchemaRef,
        ttl: Option<Duration>,
        ctx: &mut StateContext,
    ) -> Result<KeyedTable<Vec<RowRef>, RowList>> {
        ctx.table("last rows", RowList::new(data.clone())?, ttl)
    }

    /// The changes `batch` makes, in order, and for each `+U` that follows
    /// a `-U` the index of that `-U` (a pair that may change nothing).
    fn changes(&mut self, batch: &RecordBatch) -> Result<(Vec<Change>, Vec<usize>)> {
        let columns = self
            .spec
            .keys
            .iter()
            .zip(&self.spec.key_types)
            .map(|(e, t)| {
                let a = eval(e.as_ref(), batch, "normalize key")?;
                if a.data_type() == t {
                    Ok(a)
                } else {
                    cast(&a, t).context("normalize key")
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let keys = self
            .keys
            .convert_columns(&columns)
            .context("normalize key")?;
        let data = Arc::new(batch_of(
            &self.data,
            batch.columns()[..self.data.fields().len()].to_vec(),
            "normalize rows",
        )?);
        let row_kinds = kinds(batch);
        let now = now_ms();
        let (mut changes, mut pairs) = (vec![], vec![]);
        for i in 0..batch.num_rows() {
            let key = keys.row(i);
            let row: RowRef = (data.clone(), i);
            if kind_at(row_kinds, i).is_retraction() {
                if let Some(mut old) = self.last.take(key.data(), now)? {
                    if let Some(old) = old.pop() {
                        changes.push((RowKind::Delete, old));
                    }
                }
                continue;
            }
            match self.last.get_mut(key.data(), now)? {
                Some(old) => {
                    if let Some(before) = old.pop() {
                        changes.push((RowKind::UpdateBefore, before));
                        pairs.push(changes.len() - 1);
                        changes.push((RowKind::UpdateAfter, row.clone()));
                    } else {
                        changes.push((RowKind::Insert, row.clone()));
                    }
                    old.push(row);
                }
                None => {
                    changes.push((RowKind::Insert, row.clone()));
                    self.last.insert(key.data(), vec![row], now)?;
                }
            }
        }
        Ok((changes, pairs))
    }

    /// Which changes to emit: all but the `-U`/`+U` pairs of a row repeated
    /// unchanged (kept under a TTL, as Flink does, so that downstream state
    /// stays alive as long as this key's).
    fn keep(&self, changes: &[Change], pairs: &[usize]) -> Result<Vec<bool>> {
        let mut keep = vec![true; changes.len()];
        if pairs.is_empty() || self.ttl.is_some() {
            return Ok(keep);
        }
        let side = |offset: usize| -> Result<_> {
            let refs: Vec<Option<&RowRef>> = pairs
                .iter()
                .map(|&p| Some(&changes[p + offset].1))
                .collect();
            let columns = gather(&self.data, &refs)?;
            self.rows
                .convert_columns(&columns)
                .context("normalize rows")
        };
        let (before, after) = (side(0)?, side(1)?);
        for (n, &p) in pairs.iter().enumerate() {
            if before.row(n) == after.row(n) {
                keep[p] = false;
                keep[p + 1] = false;
            }
        }
        Ok(keep)
    }
}

impl Operator for ChangelogNormalize {
    fn name(&self) -> String {
        format!("ChangelogNormalize({})", self.spec.describe)
    }

    fn on_batch(&mut self, batch: RecordBatch, out: &mut Emitter) -> Result<()> {
        if sweep(&mut self.ttl).is_some() {
            self.last.expire(now_ms());
        }
        let (changes, pairs) = self.changes(&batch)?;
        let keep = self.keep(&changes, &pairs)?;
        let kept: Vec<&Change> = changes
            .iter()
            .zip(keep)
            .filter_map(|(c, k)| k.then_some(c))
            .collect();
        if kept.is_empty() {
            return Ok(());
        }
        let refs: Vec<Option<&RowRef>> = kept.iter().map(|c| Some(&c.1)).collect();
        let mut columns = gather(&self.data, &refs)?;
        columns.push(Arc::new(Int8Array::from_iter_values(
            kept.iter().map(|c| c.0 as i8),
        )));
        out.batch(batch_of(&self.spec.schema, columns, "normalize output")?);
        Ok(())
    }

    fn open(&mut self, state: &mut StateContext) -> Result<()> {
        self.last = Self::declare(&self.data, self.spec.ttl, state)?;
        Ok(())
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.last]
    }

    fn key_exprs(&self, _input: usize) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
        Some(self.spec.keys.clone())
    }

    fn fork(&self) -> Result<Option<Box<dyn Operator>>> {
        Ok(Some(Box::new(ChangelogNormalize::new(self.spec.clone())?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changelog::with_row_kind;
    use crate::message::Message;
    use datafusion::arrow::array::{Array, AsArray, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Int64Type, Int8Type, Schema};
    use datafusion::physical_expr::expressions::Column;

    fn normalize(ttl: Option<Duration>) -> ChangelogNormalize {
        let data = Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Utf8, true),
        ]);
        ChangelogNormalize::new(NormalizeSpec {
            keys: vec![Arc::new(Column::new("k", 0))],
            key_types: vec![DataType::Int64],
            schema: with_row_kind(&data),
            ttl,
            describe: "k".into(),
        })
        .expect("operator")
    }

    /// Rows (key, value, kind) through `op`, and what comes out.
    fn run(
        op: &mut ChangelogNormalize,
        rows: &[(i64, Option<&str>, RowKind)],
    ) -> Vec<(i64, Option<String>, i8)> {
        let batch = RecordBatch::try_new(
            op.spec.schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1))),
                Arc::new(Int8Array::from_iter_values(rows.iter().map(|r| r.2 as i8))),
            ],
        )
        .expect("batch");
        let mut out = Emitter::new();
        op.on_batch(batch, &mut out).expect("normalize");
        let mut v = vec![];
        for m in out.drain() {
            if let Message::Batch(b) = m {
                for i in 0..b.num_rows() {
                    v.push((
                        b.column(0).as_primitive::<Int64Type>().value(i),
                        b.column(1)
                            .as_string_opt::<i32>()
                            .and_then(|s| s.is_valid(i).then(|| s.value(i).to_string())),
                        b.column(2).as_primitive::<Int8Type>().value(i),
                    ));
                }
            }
        }
        v
    }

    #[test]
    fn upserts_and_tombstones_become_a_full_changelog() {
        let mut op = normalize(None);
        let out = run(
            &mut op,
            &[
                (1, Some("a"), RowKind::Insert),
                (1, Some("a"), RowKind::Insert),
                (2, Some("x"), RowKind::Insert),
                (1, Some("b"), RowKind::Insert),
                (3, None, RowKind::Delete),
            ],
        );
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            out,
            vec![
                (1, s("a"), 0),
                (2, s("x"), 0),
                (1, s("a"), 1),
                (1, s("b"), 2)
            ],
            "a repeated row and a tombstone of an unknown key change nothing"
        );
        // A tombstone (key only) deletes the row it finds, with its values.
        let out = run(
            &mut op,
            &[(1, None, RowKind::Delete), (1, Some("c"), RowKind::Insert)],
        );
        assert_eq!(out, vec![(1, s("b"), 3), (1, s("c"), 0)]);
    }

    #[test]
    fn under_a_ttl_a_repeated_row_is_emitted_again() {
        let mut op = normalize(Some(Duration::from_secs(3600)));
        let out = run(
            &mut op,
            &[
                (1, Some("a"), RowKind::Insert),
                (1, Some("a"), RowKind::Insert),
            ],
        );
        assert_eq!(out.len(), 3, "{out:?}");
    }
}
