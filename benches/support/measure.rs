//! What the benchmarks' child processes report: their peak memory, and
//! `key=value` figures read back by the parent.

/// Peak resident memory of this process (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The number after `key=` in `out`, if any.
pub fn parse_result(out: &str, key: &str) -> Option<f64> {
    out.split_whitespace().find_map(|w| {
        w.strip_prefix(&format!("{key}="))
            .and_then(|v| v.parse().ok())
    })
}
