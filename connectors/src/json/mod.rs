//! The JSON format (Flink's `'format' = 'json'`): JSON lines to Arrow batches and back.

pub mod cloudevents;
pub mod decode;
pub mod encode;
