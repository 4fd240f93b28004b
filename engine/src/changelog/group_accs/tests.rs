//! Inline states against DataFusion's accumulators of the same aggregates:
//! the same values after the same rows, and the same stored state columns.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::col;

use super::{Accs, Flat, FlatColumn};
use crate::changelog::group_state::{group_layout, new_accumulators};
use crate::window::aggregate::AggregateSpec;

fn spec(fun: Arc<AggregateUDF>, column: &str) -> AggregateSpec {
    let schema = Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
    ]));
    let arg = col(column, &schema).expect("column");
    let expr = AggregateExprBuilder::new(fun, vec![arg])
        .schema(schema)
        .alias("a")
        .build()
        .expect("aggregate");
    AggregateSpec {
        expr: Arc::new(expr),
        filter: None,
    }
}

fn aggregates() -> Vec<AggregateSpec> {
    vec![
        spec(count_udaf(), "i"),
        spec(sum_udaf(), "i"),
        spec(sum_udaf(), "f"),
    ]
}

/// A small deterministic stream of values, some NULL, with big ones so
/// that sums wrap.
fn values(n: usize, seed: u64) -> (ArrayRef, ArrayRef) {
    let mut x = seed;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x
    };
    let (mut ints, mut floats) = (vec![], vec![]);
    for _ in 0..n {
        let r = next();
        ints.push((r % 7 != 0).then(|| match r % 5 {
            0 => i64::MAX - (r % 100) as i64,
            _ => (r >> 20) as i64 % 1000 - 500,
        }));
        floats.push((r % 11 != 0).then(|| ((r >> 11) as f64 / 1e9) - 3.0));
    }
    (
        Arc::new(Int64Array::from(ints)),
        Arc::new(Float64Array::from(floats)),
    )
}

fn args_of(aggs: usize, ints: &ArrayRef, floats: &ArrayRef) -> Vec<Vec<ArrayRef>> {
    let mut args = vec![vec![ints.clone()], vec![ints.clone()], vec![floats.clone()]];
    args.truncate(aggs);
    args
}

/// Applies rows one at a time (every third one taken back again when
/// `updating`) and then a whole batch, to both kinds of accumulators.
fn drive(accs: &mut Accs, args: &[Vec<ArrayRef>], updating: bool) {
    let n = args[0][0].len();
    for i in 0..n {
        for (k, a) in args.iter().enumerate() {
            accs.update_row(k, a, i, false).expect("row");
        }
        if updating && i % 3 == 0 {
            for (k, a) in args.iter().enumerate() {
                accs.update_row(k, a, i, true).expect("retract row");
            }
        }
    }
    for (k, a) in args.iter().enumerate() {
        accs.update_batch(k, a, false).expect("batch");
        if updating {
            let half: Vec<ArrayRef> = a.iter().map(|c| c.slice(0, n / 2)).collect();
            accs.update_batch(k, &half, true).expect("retract batch");
        }
    }
}

fn state_columns(accs: &mut Accs) -> Vec<ArrayRef> {
    match accs {
        Accs::Flat(f) => {
            let mut cols = FlatColumn::for_layout(f, 1);
            FlatColumn::push(&mut cols, f).expect("push");
            cols.into_iter().map(FlatColumn::into_array).collect()
        }
        Accs::Dyn(accs) => accs
            .iter_mut()
            .flat_map(|a| a.state().expect("state"))
            .map(|v| v.to_array().expect("array"))
            .collect(),
    }
}

#[test]
fn inline_states_agree_with_datafusion_accumulators() {
    for updating in [false, true] {
        let aggs = aggregates();
        let layout = group_layout(&aggs, updating)
            .expect("layout")
            .expect("COUNT and SUM are held inline");
        for seed in 1..20 {
            let (ints, floats) = values(40 + seed as usize, seed);
            let args = args_of(aggs.len(), &ints, &floats);
            let mut flat = Accs::new(Some(&layout), &aggs, updating).expect("flat");
            let mut dynamic = Accs::Dyn(new_accumulators(&aggs, updating).expect("accumulators"));
            drive(&mut flat, &args, updating);
            drive(&mut dynamic, &args, updating);
            let (a, b) = (
                flat.evaluate().expect("value"),
                dynamic.evaluate().expect("value"),
            );
            assert_eq!(a, b, "seed {seed}, updating {updating}");
            assert_eq!(
                state_columns(&mut flat),
                state_columns(&mut dynamic),
                "stored state, seed {seed}, updating {updating}"
            );
        }
    }
}

#[test]
fn min_and_max_are_inline_only_over_an_append_only_input() {
    let aggs = vec![spec(min_udaf(), "i"), spec(max_udaf(), "i")];
    assert!(group_layout(&aggs, true).expect("layout").is_none());
    let layout = group_layout(&aggs, false).expect("layout").expect("inline");
    assert_eq!(layout, vec![Flat::MinInt(None), Flat::MaxInt(None)]);
    let (ints, _) = values(30, 7);
    let args = vec![vec![ints.clone()], vec![ints]];
    let mut flat = Accs::new(Some(&layout), &aggs, false).expect("flat");
    let mut dynamic = Accs::Dyn(new_accumulators(&aggs, false).expect("accumulators"));
    drive(&mut flat, &args, false);
    drive(&mut dynamic, &args, false);
    assert_eq!(flat.evaluate().expect("v"), dynamic.evaluate().expect("v"));
    assert_eq!(state_columns(&mut flat), state_columns(&mut dynamic));
    // An append-only state refuses a retraction rather than going wrong.
    assert!(flat.update_row(0, &args[0], 0, true).is_err());
}

#[test]
fn a_fresh_group_is_null_where_datafusion_says_null() {
    let aggs = aggregates();
    for updating in [false, true] {
        let layout = group_layout(&aggs, updating).expect("layout");
        let mut flat = Accs::new(layout.as_deref(), &aggs, updating).expect("flat");
        assert_eq!(
            flat.evaluate().expect("value"),
            vec![
                ScalarValue::Int64(Some(0)),
                ScalarValue::Int64(None),
                ScalarValue::Float64(None)
            ]
        );
    }
}
