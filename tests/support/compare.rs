#![allow(dead_code)]
//! Comparison of result rows the way ../shared/flink-oracle/compare.py does it:
//! a multiset of JSON objects; numbers equal within a relative tolerance (and an
//! expected integer matches a fraction with the same integer part, for Flink's
//! truncating AVG over integers); timestamps compared as instants whatever
//! their spelling; column names case-insensitive.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Norm {
    Null,
    Bool(bool),
    Num(f64),
    Ts(i64),
    Str(String),
    List(Vec<Norm>),
    Obj(Vec<(String, Norm)>),
}

fn parse_ts(s: &str) -> Option<i64> {
    let s = s.trim_end_matches('Z').trim_end_matches("+00:00");
    let s = s.replacen('T', " ", 1);
    let (date_time, frac) = match s.split_once('.') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (s.clone(), String::new()),
    };
    let dt = chrono::NaiveDateTime::parse_from_str(&date_time, "%Y-%m-%d %H:%M:%S").ok()?;
    let ms = if frac.is_empty() {
        0
    } else {
        let f: f64 = format!("0.{frac}").parse().ok()?;
        (f * 1000.0).round() as i64
    };
    Some(dt.and_utc().timestamp() * 1000 + ms)
}

pub fn norm(v: &Value) -> Norm {
    match v {
        Value::Null => Norm::Null,
        Value::Bool(b) => Norm::Bool(*b),
        Value::Number(n) => Norm::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => match parse_ts(s) {
            Some(t) if s.len() >= 19 && s.as_bytes().get(4) == Some(&b'-') => Norm::Ts(t),
            _ => Norm::Str(s.clone()),
        },
        Value::Array(a) => Norm::List(a.iter().map(norm).collect()),
        Value::Object(o) => {
            let mut v: Vec<(String, Norm)> =
                o.iter().map(|(k, v)| (k.to_lowercase(), norm(v))).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            Norm::Obj(v)
        }
    }
}

pub fn close(a: &Norm, b: &Norm, rel: f64) -> bool {
    match (a, b) {
        (Norm::Num(x), Norm::Num(y)) => {
            if x == y || (x - y).abs() <= rel * 1f64.max(x.abs()).max(y.abs()) {
                return true;
            }
            *x == x.trunc() && *y != y.trunc() && y.trunc() == *x
        }
        (Norm::List(x), Norm::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b, rel))
        }
        (Norm::Obj(x), Norm::Obj(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && close(a, b, rel))
        }
        _ => a == b,
    }
}

/// Compares two JSON-lines texts as multisets; returns a description of the
/// difference, or None when equal.
pub fn compare_jsonl(expected: &str, actual: &str) -> Result<Option<String>, String> {
    let load = |t: &str, what: &str| -> Result<Vec<Norm>, String> {
        t.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str::<Value>(l)
                    .map(|v| norm(&v))
                    .map_err(|e| format!("{what} line {}: not JSON: {e}: {l}", i + 1))
            })
            .collect()
    };
    let exp = load(expected, "expected")?;
    let mut remaining = load(actual, "actual")?;
    let n_act = remaining.len();
    let mut missing = vec![];
    for x in &exp {
        match remaining.iter().position(|y| close(x, y, 1e-6)) {
            Some(j) => {
                remaining.remove(j);
            }
            None => missing.push(x.clone()),
        }
    }
    if missing.is_empty() && remaining.is_empty() {
        return Ok(None);
    }
    let mut msg = format!(
        "expected {} rows, got {}; {} missing, {} unexpected\n",
        exp.len(),
        n_act,
        missing.len(),
        remaining.len()
    );
    for m in missing.iter().take(10) {
        msg.push_str(&format!("  missing    {m:?}\n"));
    }
    for u in remaining.iter().take(10) {
        msg.push_str(&format!("  unexpected {u:?}\n"));
    }
    Ok(Some(msg))
}

/// As [`compare_jsonl`], then also in order: the first row out of place.
pub fn compare_jsonl_ordered(expected: &str, actual: &str) -> Result<Option<String>, String> {
    if let Some(diff) = compare_jsonl(expected, actual)? {
        return Ok(Some(diff));
    }
    let rows = |t: &str| -> Vec<Norm> {
        t.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| norm(&v))
            .collect()
    };
    for (i, (x, y)) in rows(expected).iter().zip(rows(actual).iter()).enumerate() {
        if !close(x, y, 1e-6) {
            return Ok(Some(format!(
                "the same rows in another order; row {}: expected {x:?}, got {y:?}\n",
                i + 1
            )));
        }
    }
    Ok(None)
}

/// The table a changelog leaves: each `+I`/`+U` row (one without `"_op"`, or
/// with `"_op": "+U"`) is added, each `-U`/`-D` row removes an equal row. For
/// results whose changes depend on how two streams interleave (an outer
/// regular join) while the final table does not.
///
/// With `key` (column names), rows upsert by key instead: a `-U`/`-D` row
/// removes its key's row, any other replaces it (Flink's top-1 emits `+U`
/// rows without retracting the previous one).
pub fn final_table(text: &str, key: Option<&[String]>) -> Result<String, String> {
    if let Some(key) = key {
        return upserted_table(text, key);
    }
    let mut table: Vec<serde_json::Map<String, Value>> = vec![];
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let Value::Object(mut row) = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("line {}: not JSON: {e}: {line}", i + 1))?
        else {
            return Err(format!("line {}: not an object: {line}", i + 1));
        };
        let op = row.remove("_op");
        match op.as_ref().and_then(Value::as_str) {
            Some("-U") | Some("-D") => {
                let n = norm(&Value::Object(row.clone()));
                let at = table
                    .iter()
                    .position(|r| close(&norm(&Value::Object(r.clone())), &n, 1e-6))
                    .ok_or_else(|| {
                        format!("line {}: retracts a row not in the table: {line}", i + 1)
                    })?;
                table.remove(at);
            }
            _ => table.push(row),
        }
    }
    Ok(table
        .into_iter()
        .map(|r| format!("{}\n", Value::Object(r)))
        .collect())
}

fn upserted_table(text: &str, key: &[String]) -> Result<String, String> {
    let mut table: std::collections::BTreeMap<String, serde_json::Map<String, Value>> =
        Default::default();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let Value::Object(mut row) = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("line {}: not JSON: {e}: {line}", i + 1))?
        else {
            return Err(format!("line {}: not an object: {line}", i + 1));
        };
        let op = row.remove("_op");
        let k = key
            .iter()
            .map(|c| {
                row.iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(c))
                    .map(|(_, v)| format!("{:?}", norm(v)))
                    .ok_or_else(|| format!("line {}: no key column {c}: {line}", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?
            .join("|");
        match op.as_ref().and_then(Value::as_str) {
            Some("-U") | Some("-D") => {
                table.remove(&k);
            }
            _ => {
                table.insert(k, row);
            }
        }
    }
    Ok(table
        .into_values()
        .map(|r| format!("{}\n", Value::Object(r)))
        .collect())
}
