//! Encoding Arrow batches as JSON lines, one object per row with the column
//! names as keys, values spelled as Flink prints them: timestamps as
//! `yyyy-MM-dd HH:mm:ss[.SSS]`, decimals and numbers as JSON numbers.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use vigil_engine::changelog::{self, RowKind};

enum Column<'a> {
    Null,
    Raw(ArrayFormatter<'a>),
    Quoted(ArrayFormatter<'a>),
    Float(&'a dyn Array),
    Timestamp(&'a dyn Array),
    /// ROW, ARRAY or MAP: a JSON object or array (Flink's JSON format).
    Nested(&'a dyn Array),
}

/// Casts timestamp columns of any unit to milliseconds, so that they format alike.
fn normalise(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => Ok(array.clone()),
        DataType::Timestamp(_, tz) => cast(
            array,
            &DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
        ),
        _ => Ok(array.clone()),
    }
}

/// Formats an event time in milliseconds as Flink does (`.SSS` only when
/// non-zero); false (nothing written) for an instant no calendar date holds.
pub fn format_timestamp_ms(ms: i64, out: &mut String) -> bool {
    use std::fmt::Write;
    match datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms) {
        Some(dt) if ms.rem_euclid(1000) == 0 => {
            let _ = write!(out, "{}", dt.format("%Y-%m-%d %H:%M:%S"));
            true
        }
        Some(dt) => {
            let _ = write!(out, "{}", dt.format("%Y-%m-%d %H:%M:%S%.3f"));
            true
        }
        None => false,
    }
}

/// How NaN and ±Infinity are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFinite {
    /// Unquoted `NaN`, `Infinity`, `-Infinity`, as the Flink oracle prints
    /// rows (Python's `json`); not strict JSON.
    Bare,
    /// As the strings `"NaN"`, `"Infinity"`, `"-Infinity"`, as Flink's `json`
    /// format writes them (Jackson's default): strict JSON.
    Quoted,
}

/// A row that could not be encoded: its index in the batch and why.
pub type RowError = (usize, String);

/// Appends `s` as a JSON string (quoted, escaped).
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_float(v: f64, non_finite: NonFinite, out: &mut String) {
    use std::fmt::Write;
    if !v.is_finite() {
        let text = if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        match non_finite {
            NonFinite::Bare => out.push_str(text),
            NonFinite::Quoted => write_json_string(text, out),
        }
    } else if v == v.trunc() && v.abs() < 1e15 {
        let _ = write!(out, "{v:.1}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Appends value `i` of a nested array (and what it holds) as Flink's JSON
/// format writes it: a ROW as an object of its fields, an ARRAY as an array,
/// a MAP as an object (keys as strings). `Ok(Err(why))`: a value JSON cannot
/// carry (a timestamp no calendar date holds); part of it may be written.
fn write_nested(
    a: &dyn Array,
    i: usize,
    non_finite: NonFinite,
    out: &mut String,
) -> Result<Result<(), String>, ArrowError> {
    use std::fmt::Write;
    if a.is_null(i) {
        out.push_str("null");
        return Ok(Ok(()));
    }
    let elements =
        |values: &dyn Array, out: &mut String| -> Result<Result<(), String>, ArrowError> {
            out.push('[');
            for j in 0..values.len() {
                if j > 0 {
                    out.push(',');
                }
                if let Err(e) = write_nested(values, j, non_finite, out)? {
                    return Ok(Err(e));
                }
            }
            out.push(']');
            Ok(Ok(()))
        };
    match a.data_type() {
        DataType::Struct(fields) => {
            out.push('{');
            for (k, (f, c)) in fields.iter().zip(a.as_struct().columns()).enumerate() {
                if k > 0 {
                    out.push(',');
                }
                write_json_string(f.name(), out);
                out.push(':');
                if let Err(e) = write_nested(c.as_ref(), i, non_finite, out)? {
                    return Ok(Err(e));
                }
            }
            out.push('}');
        }
        DataType::List(_) => return elements(a.as_list::<i32>().value(i).as_ref(), out),
        DataType::LargeList(_) => return elements(a.as_list::<i64>().value(i).as_ref(), out),
        DataType::FixedSizeList(..) => {
            return elements(a.as_fixed_size_list().value(i).as_ref(), out)
        }
        DataType::Map(..) => {
            let entries = a.as_map().value(i);
            let options = FormatOptions::default();
            let keys = ArrayFormatter::try_new(entries.column(0).as_ref(), &options)?;
            out.push('{');
            let mut key = String::new();
            for j in 0..entries.len() {
                if j > 0 {
                    out.push(',');
                }
                key.clear();
                let _ = write!(key, "{}", keys.value(j));
                write_json_string(&key, out);
                out.push(':');
                if let Err(e) = write_nested(entries.column(1).as_ref(), j, non_finite, out)? {
                    return Ok(Err(e));
                }
            }
            out.push('}');
        }
        DataType::Utf8 => write_json_string(a.as_string::<i32>().value(i), out),
        DataType::LargeUtf8 => write_json_string(a.as_string::<i64>().value(i), out),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let v = cast(&a.slice(i, 1), &DataType::Float64)?;
            write_float(v.as_primitive::<Float64Type>().value(0), non_finite, out);
        }
        DataType::Timestamp(_, tz) => {
            let ms = cast(
                &a.slice(i, 1),
                &DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
            )?;
            let ms = ms.as_primitive::<TimestampMillisecondType>().value(0);
            out.push('"');
            if !format_timestamp_ms(ms, out) {
                return Ok(Err(format!(
                    "the timestamp {ms} ms since 1970 is out of range"
                )));
            }
            out.push('"');
        }
        DataType::Null => out.push_str("null"),
        t if t.is_numeric() || matches!(t, DataType::Boolean) => {
            let f = ArrayFormatter::try_new(a, &FormatOptions::default())?;
            let _ = write!(out, "{}", f.value(i));
        }
        _ => {
            let f = ArrayFormatter::try_new(a, &FormatOptions::default())?;
            let mut text = String::new();
            let _ = write!(text, "{}", f.value(i));
            write_json_string(&text, out);
        }
    }
    Ok(Ok(()))
}

/// Appends each row of `batch` to `out` as a JSON object followed by a newline.
///
/// Rows of an updating result carry their change kind as `"_op"` when it is
/// not an insert (`"-U"`, `"+U"`, `"-D"`), as the Flink oracle prints them.
/// A row holding a value JSON cannot carry (a timestamp no calendar date
/// holds) writes nothing, not even its newline, and is returned with the
/// error: the caller dead-letters it, and the other rows go on.
pub fn encode_json_lines(
    batch: &RecordBatch,
    out: &mut String,
    non_finite: NonFinite,
) -> Result<Vec<RowError>, ArrowError> {
    let mut failed = vec![];
    let options = FormatOptions::default();
    let kinds = changelog::kinds(batch);
    let width = changelog::data_width(batch.schema_ref());
    let arrays: Vec<ArrayRef> = batch.columns()[..width]
        .iter()
        .map(normalise)
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = batch.schema().fields()[..width]
        .iter()
        .map(|f| {
            let mut s = String::new();
            write_json_string(f.name(), &mut s);
            s
        })
        .collect();
    let columns: Vec<Column> = arrays
        .iter()
        .map(|a| {
            Ok(match a.data_type() {
                DataType::Null => Column::Null,
                DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                    Column::Float(a.as_ref())
                }
                DataType::Timestamp(_, _) => Column::Timestamp(a.as_ref()),
                DataType::Struct(_)
                | DataType::List(_)
                | DataType::LargeList(_)
                | DataType::FixedSizeList(..)
                | DataType::Map(..) => Column::Nested(a.as_ref()),
                DataType::Boolean
                | DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Decimal32(_, _)
                | DataType::Decimal64(_, _)
                | DataType::Decimal128(_, _)
                | DataType::Decimal256(_, _) => {
                    Column::Raw(ArrayFormatter::try_new(a.as_ref(), &options)?)
                }
                _ => Column::Quoted(ArrayFormatter::try_new(a.as_ref(), &options)?),
            })
        })
        .collect::<Result<_, ArrowError>>()?;
    let mut scratch = String::new();
    'rows: for row in 0..batch.num_rows() {
        let row_start = out.len();
        out.push('{');
        for (c, (col, array)) in columns.iter().zip(&arrays).enumerate() {
            if c > 0 {
                out.push(',');
            }
            out.push_str(&names[c]);
            out.push(':');
            if array.is_null(row) {
                out.push_str("null");
                continue;
            }
            match col {
                Column::Null => out.push_str("null"),
                Column::Raw(f) => {
                    use std::fmt::Write;
                    let _ = write!(out, "{}", f.value(row));
                }
                Column::Quoted(f) => {
                    use std::fmt::Write;
                    scratch.clear();
                    let _ = write!(scratch, "{}", f.value(row));
                    write_json_string(&scratch, out);
                }
                Column::Float(a) => {
                    let v = match a.data_type() {
                        DataType::Float64 => a.as_primitive::<Float64Type>().value(row),
                        DataType::Float32 => a.as_primitive::<Float32Type>().value(row) as f64,
                        _ => cast(&a.slice(row, 1), &DataType::Float64)?
                            .as_primitive::<Float64Type>()
                            .value(0),
                    };
                    write_float(v, non_finite, out);
                }
                Column::Nested(a) => {
                    if let Err(e) = write_nested(*a, row, non_finite, out)? {
                        out.truncate(row_start);
                        let name = batch.schema_ref().field(c).name().clone();
                        failed.push((row, format!("column '{name}': {e}")));
                        continue 'rows;
                    }
                }
                Column::Timestamp(a) => {
                    out.push('"');
                    let ms = a.as_primitive::<TimestampMillisecondType>().value(row);
                    if !format_timestamp_ms(ms, out) {
                        out.truncate(row_start);
                        let name = batch.schema_ref().field(c).name().clone();
                        failed.push((
                            row,
                            format!(
                                "column '{name}': the timestamp {ms} ms since 1970 is out of range"
                            ),
                        ));
                        continue 'rows;
                    }
                    out.push('"');
                }
            }
        }
        let kind = changelog::kind_at(kinds, row);
        if kind != RowKind::Insert {
            out.push_str(",\"_op\":\"");
            out.push_str(kind.short());
            out.push('"');
        }
        out.push_str("}\n");
    }
    Ok(failed)
}

/// Appends each row as Flink's print connector shows it: `+I[v1, v2, ...]`
/// (`-U`, `+U`, `-D` for the changes of an updating result).
pub fn encode_print_rows(
    batch: &RecordBatch,
    prefix: &str,
    out: &mut String,
) -> Result<(), ArrowError> {
    use std::fmt::Write;
    let options = FormatOptions::default().with_null("NULL");
    let kinds = changelog::kinds(batch);
    let width = changelog::data_width(batch.schema_ref());
    let arrays: Vec<ArrayRef> = batch.columns()[..width]
        .iter()
        .map(normalise)
        .collect::<Result<_, _>>()?;
    let formatters = arrays
        .iter()
        .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    for row in 0..batch.num_rows() {
        out.push_str(prefix);
        out.push_str(changelog::kind_at(kinds, row).short());
        out.push('[');
        for (c, (f, a)) in formatters.iter().zip(&arrays).enumerate() {
            if c > 0 {
                out.push_str(", ");
            }
            match a.data_type() {
                DataType::Timestamp(_, _) if a.is_valid(row) => {
                    let ms = a.as_primitive::<TimestampMillisecondType>().value(row);
                    if !format_timestamp_ms(ms, out) {
                        // Shown, not written anywhere: the number itself.
                        let _ = write!(out, "{ms}");
                    }
                }
                _ => {
                    let _ = write!(out, "{}", f.value(row));
                }
            }
        }
        out.push_str("]\n");
    }
    Ok(())
}
