//! Flink functions whose names or behaviour differ from DataFusion's.

mod collect;
mod current_watermark;
mod date_format;
mod element;
mod json;
mod json_construct;
mod json_path;
mod lag;
mod proctime;
mod regexp_extract;
mod sign;
mod split_index;
mod text;
mod timestampadd;
mod to_timestamp_ltz;
pub mod truncating;
mod unix_timestamp;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

/// The Flink-compatible scalar functions to register in the SQL session.
pub fn flink_functions() -> Vec<ScalarUDF> {
    let mut functions = json::json_functions();
    functions.extend(json_construct::json_constructors());
    functions.extend(text::text_functions());
    functions.extend([
        ScalarUDF::from(to_timestamp_ltz::ToTimestampLtz::new()),
        ScalarUDF::from(date_format::DateFormat::new()),
        ScalarUDF::from(split_index::SplitIndex::new()),
        ScalarUDF::from(proctime::Proctime::new()),
        ScalarUDF::from(element::Element::new()),
        ScalarUDF::from(sign::Sign::new()),
        ScalarUDF::from(current_watermark::CurrentWatermark::new()),
        ScalarUDF::from(regexp_extract::RegexpExtract::new()),
        ScalarUDF::from(unix_timestamp::UnixTimestamp::new()),
        ScalarUDF::from(timestampadd::TimestampAdd::new()),
    ]);
    functions
}

/// The Flink-compatible aggregates to register in the SQL session.
pub fn flink_aggregates() -> Vec<AggregateUDF> {
    let mut aggregates = json_construct::json_aggregates();
    aggregates.push(collect::collect_aggregate());
    aggregates.extend(lag::over_value_functions());
    aggregates
}
