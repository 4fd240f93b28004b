//! Bodies of the fuzz targets in `fuzz/` (one per decoder), kept here so a
//! stable test can run them too (`tests/fuzz_smoke.rs`). Each feeds arbitrary
//! bytes to a decoder as a file source and as a Kafka source would, and
//! panics if a record is lost: every line or record must end as a row or as
//! a bad record, and the records a source keeps must decode.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::csv::CsvOptions;
use super::decode::RecordDecoder;
use super::Format;

/// The formats the targets cover.
pub const FORMATS: &[&str] = &["json", "csv", "raw", "cloudevents"];

fn schema(format: &str) -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    Arc::new(Schema::new(match format {
        "raw" => vec![Field::new("line", DataType::Utf8, true)],
        "cloudevents" => vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("time", ts, true),
            Field::new("temp", DataType::Float64, true),
            Field::new("ok", DataType::Boolean, true),
        ],
        _ => vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("at", ts, true),
            Field::new("v", DataType::Float64, true),
        ],
    }))
}

/// The decoder a target uses for `format` (one of [`FORMATS`]).
pub fn decoder(format: &str) -> RecordDecoder {
    let f = match format {
        "csv" => Format::Csv(CsvOptions::default()),
        "raw" => Format::Raw,
        "cloudevents" => Format::CloudEvents { binary: false },
        _ => Format::Json,
    };
    RecordDecoder::for_format(f, schema(format))
}

/// `data` as the lines of a file: rows and bad lines account for every line.
pub fn check_lines(format: &str, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let decoder = decoder(format);
    let mut chunk = data.to_vec();
    if !chunk.ends_with(b"\n") {
        chunk.push(b'\n');
    }
    let decoded = decoder.decode_chunk(&chunk, 1);
    let rows = decoded.batch.as_ref().map_or(0, |b| b.num_rows());
    let body = &chunk[..chunk.len() - 1];
    let lines = body.split(|b| *b == b'\n');
    let records = match format {
        // Every line is a value, an empty one too.
        "raw" => lines.count(),
        "csv" => lines.filter(|l| !l.is_empty()).count(),
        // JSON values may span lines or share one: only blank input is no record.
        _ => {
            let blank = lines.clone().all(|l| l.trim_ascii().is_empty());
            assert!(
                blank || rows + decoded.bad.len() > 0,
                "{format}: input lost without a trace"
            );
            assert!(decoded.bad.len() <= lines.count());
            return;
        }
    };
    assert_eq!(
        rows + decoded.bad.len(),
        records,
        "{format}: {rows} rows and {} bad lines for {records} lines",
        decoded.bad.len()
    );
}

/// `data` split at newlines as Kafka records: decoded together, or (if one
/// is bad) the good ones — those [`RecordDecoder::record_error`] passes —
/// decode into exactly one row each, as the Kafka source relies on.
pub fn check_records(format: &str, data: &[u8]) {
    let decoder = decoder(format);
    let mut buf = Vec::with_capacity(data.len() + 1);
    let mut ends = vec![];
    for record in data.split(|b| *b == b'\n') {
        buf.extend_from_slice(record);
        buf.push(b'\n');
        ends.push(buf.len());
    }
    if let Ok(batch) = decoder.decode_records(&buf, &ends, &[]) {
        assert_eq!(batch.num_rows(), ends.len(), "{format}: one row a record");
        return;
    }
    let mut kept = vec![];
    let mut kept_ends = vec![];
    for record in data.split(|b| *b == b'\n') {
        if decoder.record_error(record).is_none() {
            kept.extend_from_slice(record);
            kept.push(b'\n');
            kept_ends.push(kept.len());
        }
    }
    match decoder.decode_records(&kept, &kept_ends, &[]) {
        Ok(batch) => assert_eq!(batch.num_rows(), kept_ends.len(), "{format}"),
        Err(e) => panic!("{format}: records that passed one by one fail together: {e}"),
    }
}
