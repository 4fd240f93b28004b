//! The JSON format (Flink's `'format' = 'json'`): Arrow batches to JSON lines
//! (decoding is in [`crate::format::decode`]).

pub mod encode;
