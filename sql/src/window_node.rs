//! The logical plan node of a window TVF: its input plus `window_start`,
//! `window_end` and `window_time`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::{Column, DFSchema, DFSchemaRef, Result as DFResult};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use vigil_engine::window::{
    window_fields, WindowKind, PROCTIME_METADATA_KEY, ROWTIME_METADATA_KEY, WINDOW_METADATA_KEY,
};

/// `TABLE(<kind>(TABLE input, DESCRIPTOR(time_col), ...))`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowTvfNode {
    /// The windowed table or view.
    pub input: LogicalPlan,
    /// The window kind.
    pub kind: WindowKind,
    /// The DESCRIPTOR column.
    pub time_col: Column,
    /// SESSION's PARTITION BY columns.
    pub partition_by: Vec<Expr>,
    schema: DFSchemaRef,
}

impl WindowTvfNode {
    /// Builds the node; `time_col` must be a column of `input`.
    pub fn try_new(
        input: LogicalPlan,
        kind: WindowKind,
        time_col: Column,
        partition_by: Vec<Expr>,
    ) -> DFResult<Self> {
        let schema = Self::make_schema(&input, &time_col)?;
        Ok(Self {
            input,
            kind,
            time_col,
            partition_by,
            schema,
        })
    }

    fn make_schema(input: &LogicalPlan, time_col: &Column) -> DFResult<DFSchemaRef> {
        let in_schema = input.schema();
        let time_idx = in_schema.index_of_column(time_col)?;
        let rowtime_type = in_schema.field(time_idx).data_type().clone();
        let proctime = is_proctime(in_schema.field(time_idx));
        let mut fields: Vec<_> = in_schema
            .iter()
            .enumerate()
            .map(|(i, (q, f))| {
                // After the TVF, the original time column is a plain timestamp.
                let f = if i == time_idx {
                    let mut meta = f.metadata().clone();
                    meta.remove(ROWTIME_METADATA_KEY);
                    meta.remove(PROCTIME_METADATA_KEY);
                    Arc::new(f.as_ref().clone().with_metadata(meta))
                } else {
                    f.clone()
                };
                (q.cloned(), f)
            })
            .collect();
        for f in window_fields(&rowtime_type) {
            // Over processing time, window_time is a processing-time attribute.
            let f = match f.metadata().get(ROWTIME_METADATA_KEY) {
                Some(_) if proctime => {
                    let mut meta = f.metadata().clone();
                    meta.remove(ROWTIME_METADATA_KEY);
                    meta.insert(PROCTIME_METADATA_KEY.to_string(), "true".to_string());
                    f.with_metadata(meta)
                }
                _ => f,
            };
            fields.push((None, Arc::new(f)));
        }
        Ok(Arc::new(DFSchema::new_with_metadata(
            fields,
            in_schema.metadata().clone(),
        )?))
    }
}

impl PartialOrd for WindowTvfNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self == other {
            Some(Ordering::Equal)
        } else {
            None
        }
    }
}

impl UserDefinedLogicalNodeCore for WindowTvfNode {
    fn name(&self) -> &str {
        "WindowTVF"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        let mut v = vec![Expr::Column(self.time_col.clone())];
        v.extend(self.partition_by.iter().cloned());
        v
    }

    /// The input columns the wanted outputs read, plus the time column and
    /// SESSION's keys: so that columns no one reads are not decoded from the
    /// source nor copied into every window a row falls in (a HOP copies each
    /// row size/slide times).
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let input = self.input.schema();
        let passed = input.fields().len();
        let mut needed: Vec<usize> = output_columns
            .iter()
            .copied()
            .filter(|i| *i < passed)
            .collect();
        for e in self.expressions() {
            for c in e.column_refs() {
                needed.push(input.index_of_column(c).ok()?);
            }
        }
        needed.sort_unstable();
        needed.dedup();
        Some(vec![needed])
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "WindowTVF: {} on {}", self.kind, self.time_col)?;
        if !self.partition_by.is_empty() {
            let keys: Vec<String> = self.partition_by.iter().map(|e| e.to_string()).collect();
            write!(f, " partition by [{}]", keys.join(", "))?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> DFResult<Self> {
        let input = inputs.pop().unwrap_or_else(|| self.input.clone());
        let time_col = match exprs.first() {
            Some(Expr::Column(c)) => c.clone(),
            _ => self.time_col.clone(),
        };
        let partition_by = if exprs.len() > 1 {
            exprs[1..].to_vec()
        } else {
            self.partition_by.clone()
        };
        Self::try_new(input, self.kind.clone(), time_col, partition_by)
    }
}

/// Whether `field` is a processing-time attribute (`PROCTIME()`).
pub fn is_proctime(field: &datafusion::arrow::datatypes::Field) -> bool {
    field.metadata().contains_key(PROCTIME_METADATA_KEY)
}

/// The index of `e` in `schema` and its window role (`start`, `end` or
/// `time`), if `e` is a column a window TVF produced (through projections and
/// aggregations, which keep the mark).
pub fn window_role(schema: &DFSchema, e: &Expr) -> Option<(usize, String)> {
    let Expr::Column(c) = e else { return None };
    let i = schema.index_of_column(c).ok()?;
    let role = schema.field(i).metadata().get(WINDOW_METADATA_KEY)?;
    Some((i, role.clone()))
}
