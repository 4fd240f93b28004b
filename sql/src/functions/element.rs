//! `ELEMENT(array)`: the only element of a one-element array, NULL for an
//! empty or NULL array, an error for more than one element (as in Flink).

use datafusion::arrow::array::{Array, AsArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Flink's ELEMENT.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Element {
    signature: Signature,
}

impl Element {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Element {
    fn name(&self) -> &str {
        "element"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)) => {
                Ok(f.data_type().clone())
            }
            Some(other) => plan_err!("ELEMENT takes an array, not {other}"),
            None => plan_err!("ELEMENT takes an array"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = args.args[0].to_array(n)?;
        let list = datafusion::arrow::compute::cast(
            &arrays,
            &DataType::List(match arrays.data_type() {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    f.clone()
                }
                other => return exec_err!("ELEMENT takes an array, not {other}"),
            }),
        )?;
        let list = list.as_list::<i32>();
        let offsets = list.value_offsets();
        let picks: UInt32Array = (0..n)
            .map(|i| {
                let len = offsets[i + 1] - offsets[i];
                match (list.is_valid(i), len) {
                    (true, 1) => Ok(Some(offsets[i] as u32)),
                    (true, l) if l > 1 => exec_err!(
                        "ELEMENT of an array of {l} elements: it takes an array of at most one"
                    ),
                    _ => Ok(None),
                }
            })
            .collect::<Result<_>>()?;
        Ok(ColumnarValue::Array(take(
            list.values().as_ref(),
            &picks,
            None,
        )?))
    }
}
