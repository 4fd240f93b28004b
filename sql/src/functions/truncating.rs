//! Flink's AVG, VAR_* and STDDEV_* over an integer column return the integer
//! type, truncated toward zero; DataFusion computes them in DOUBLE. This wrapper
//! runs DataFusion's aggregate and truncates its result (the type stays DOUBLE).
//! The analyzer rule in `crate::analyzer` puts it in place where the argument is
//! an integer.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::datatypes::{DataType, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature,
};

/// An aggregate whose DOUBLE result is truncated toward zero.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Truncating {
    inner: Arc<AggregateUDF>,
    name: String,
}

impl Truncating {
    /// Wraps `inner`.
    pub fn new(inner: Arc<AggregateUDF>) -> Self {
        let name = format!("{}_truncated", inner.name());
        Self { inner, name }
    }
}

fn trunc_scalar(v: ScalarValue) -> ScalarValue {
    match v {
        ScalarValue::Float64(Some(f)) => ScalarValue::Float64(Some(f.trunc())),
        v => v,
    }
}

fn trunc_array(a: ArrayRef) -> ArrayRef {
    match a.as_primitive_opt::<Float64Type>() {
        Some(f) => Arc::new(f.unary::<_, Float64Type>(f64::trunc)),
        None => a,
    }
}

#[derive(Debug)]
struct TruncAcc(Box<dyn Accumulator>);

impl Accumulator for TruncAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.update_batch(values)
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.evaluate().map(trunc_scalar)
    }
    fn size(&self) -> usize {
        self.0.size()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.state()
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.retract_batch(values)
    }
    fn supports_retract_batch(&self) -> bool {
        self.0.supports_retract_batch()
    }
}

struct TruncGroups(Box<dyn GroupsAccumulator>);

impl GroupsAccumulator for TruncGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.0
            .update_batch(values, group_indices, opt_filter, total_num_groups)
    }
    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.0.evaluate(emit_to).map(trunc_array)
    }
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.0.state(emit_to)
    }
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.0.merge_batch(values, group_indices, total_num_groups)
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        self.0.convert_to_state(values, opt_filter)
    }
    fn size(&self) -> usize {
        self.0.size()
    }
}

impl AggregateUDFImpl for Truncating {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(TruncAcc(self.inner.accumulator(acc_args)?)))
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(TruncAcc(
            self.inner.create_sliding_accumulator(args)?,
        )))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(TruncGroups(
            self.inner.create_groups_accumulator(args)?,
        )))
    }
}
