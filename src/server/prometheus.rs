//! `/metrics`: every job's counters and gauges, and the `metrics` sinks'
//! series, in Prometheus's text format, recorded through the `metrics` crate
//! into a fresh `metrics-exporter-prometheus` recorder at each scrape (values
//! are snapshots, and series dropped since the last scrape disappear).

use metrics::{Key, Label, Recorder};
use metrics_exporter_prometheus::PrometheusBuilder;
use vigil_connectors::metrics::series_store;
use vigil_engine::metrics::{names, Metrics};

/// The text of `/metrics` for `jobs`.
pub fn render(jobs: &[(String, Metrics)]) -> String {
    render_labelled(jobs, &[])
}

/// As [`render`], every job series with the `extra` labels too (a worker's
/// name, of a job running as several processes).
pub fn render_labelled(jobs: &[(String, Metrics)], extra: &[(String, String)]) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let meta = metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
    for (job, m) in jobs {
        for (key, value) in m.snapshot() {
            // Keys are `name{scope}`: an operator, table or sink.
            let (name, scope) = match key.split_once('{') {
                Some((n, rest)) => (n.to_string(), rest.trim_end_matches('}').to_string()),
                None => (key.clone(), String::new()),
            };
            let help = names::help(&name).unwrap_or("A Vigil job's counter.");
            let mut labels = vec![
                Label::new("vigil_job", job.clone()),
                Label::new("scope", scope.clone()),
            ];
            labels.extend(extra.iter().map(|(k, v)| Label::new(k.clone(), v.clone())));
            if name == names::SINK_WATERMARK_MS && value > 0 && value < i64::MAX as u64 {
                // How far event time trails the wall clock at the sink.
                let lag = (chrono::Utc::now().timestamp_millis() - value as i64).max(0);
                let k = Key::from_parts(
                    "vigil_watermark_lag_seconds",
                    vec![
                        Label::new("vigil_job", job.clone()),
                        Label::new("scope", scope.clone()),
                    ],
                );
                recorder.describe_gauge(
                    "vigil_watermark_lag_seconds".into(),
                    Some(metrics::Unit::Seconds),
                    "Wall clock minus the latest watermark a sink received.".into(),
                );
                recorder.register_gauge(&k, &meta).set(lag as f64 / 1000.0);
            }
            // Prometheus wants base units: milliseconds are shown as seconds.
            let (name, value) = if let Some(base) = name.strip_suffix("_ms") {
                (format!("{base}_seconds"), value as f64 / 1000.0)
            } else if let Some(base) = name.strip_suffix("_microseconds_total") {
                // Cumulative seconds: the exporter's counters are whole
                // numbers, so this one is a (never decreasing) gauge.
                (format!("{base}_seconds"), value as f64 / 1e6)
            } else {
                (name, value as f64)
            };
            let k = Key::from_parts(name.clone(), labels);
            if name.ends_with("_total") {
                recorder.describe_counter(name.clone().into(), None, help.into());
                recorder.register_counter(&k, &meta).absolute(value as u64);
            } else {
                recorder.describe_gauge(name.clone().into(), None, help.into());
                recorder.register_gauge(&k, &meta).set(value);
            }
        }
    }
    for s in series_store().snapshot() {
        let labels: Vec<Label> = s
            .key
            .labels
            .iter()
            .map(|(n, v)| Label::new(n.clone(), v.clone()))
            .collect();
        recorder.describe_gauge(s.key.metric.clone().into(), None, s.help.clone().into());
        recorder
            .register_gauge(
                &Key::from_parts(s.key.metric.clone(), labels.clone()),
                &meta,
            )
            .set(s.latest.value);
        if let Some(end) = s.window_end {
            let name = format!("{}_window_end_timestamp_seconds", s.key.metric);
            recorder.describe_gauge(
                name.clone().into(),
                Some(metrics::Unit::Seconds),
                format!("end of the window of {}'s latest value", s.key.metric).into(),
            );
            recorder
                .register_gauge(&Key::from_parts(name, labels), &meta)
                .set(end as f64 / 1000.0);
        }
    }
    handle.render()
}
