//! Turns a script's `SET` options and `--state-dir` into the engine's
//! checkpoint configuration, with Flink's option names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_engine::checkpoint::CheckpointConfig;
use vigil_engine::state::key_groups_setting;
use vigil_engine::state::remote::RemoteCheckpoints;
use vigil_engine::time::parse_duration;

/// The interval used when `--state-dir` is given without
/// `execution.checkpointing.interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// How a script runs: where its state lives and what its job is called.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--state-dir`: the job's state goes to `<dir>/<job name>`.
    pub state_dir: Option<PathBuf>,
    /// The job's name (`pipeline.name` overrides it); the CLI uses the script's
    /// file name without extension.
    pub job_name: Option<String>,
    /// This process's name among those running the job when it runs as
    /// several (`--worker-id`; default: the host name).
    pub worker: Option<String>,
    /// `--listen`: serve `/metrics`, `/healthz` and (of a job running as
    /// several processes) `/api/members` there while the job runs.
    pub listen: Option<std::net::SocketAddr>,
    /// Where a job running as several processes shows its membership (for
    /// `/api/members`).
    pub status: Option<crate::distributed::StatusBoard>,
}

/// The settings a script starts with under `run`: `--state-dir` turns
/// checkpointing on at [`DEFAULT_INTERVAL`], and the job name is the default
/// `pipeline.name`. The script's own `SET`s override both.
pub fn initial_settings(run: &RunOptions) -> BTreeMap<String, String> {
    let mut settings = BTreeMap::new();
    if run.state_dir.is_some() {
        settings.insert(
            "execution.checkpointing.interval".to_string(),
            format!("{} ms", DEFAULT_INTERVAL.as_millis()),
        );
    }
    if let Some(name) = &run.job_name {
        settings.insert("pipeline.name".to_string(), name.clone());
    }
    settings
}

/// The checkpoint configuration, or None when the job does not checkpoint
/// (neither `execution.checkpointing.interval` nor a state directory).
pub fn checkpoint_config(
    settings: &BTreeMap<String, String>,
    run: &RunOptions,
) -> Result<Option<CheckpointConfig>, String> {
    let interval = match settings.get("execution.checkpointing.interval") {
        Some(v) => Some(
            parse_duration(v)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("invalid 'execution.checkpointing.interval' = '{v}'; write it like '10 s' or '500 ms'")
                })?,
        ),
        None => None,
    };
    // An object store (`s3://bucket/path`) holds the checkpoints, and a
    // local directory (under --state-dir, else the temporary directory) the
    // working state and the local copy of the checkpoints.
    let remote_url = settings
        .get("state.checkpoints.dir")
        .filter(|d| d.contains("://") && !d.starts_with("file://"));
    let checkpoints_dir = settings
        .get("state.checkpoints.dir")
        .filter(|_| remote_url.is_none())
        .map(|d| PathBuf::from(d.strip_prefix("file://").unwrap_or(d)));
    if interval.is_none() && run.state_dir.is_none() {
        return Ok(None);
    }
    let job = job_id(settings, run);
    let job_dir = match (&run.state_dir, &checkpoints_dir) {
        (Some(d), _) => d.join(&job),
        (None, Some(c)) => c.join(&job).join("working"),
        (None, None) if remote_url.is_some() => local_state_dir(settings).join(&job),
        (None, None) => {
            return Err("checkpointing needs a place for its state: pass --state-dir DIR, or SET 'state.checkpoints.dir' = '/some/dir'".into())
        }
    };
    let checkpoints_dir = match checkpoints_dir {
        Some(c) => c.join(&job),
        None => job_dir.join("checkpoints"),
    };
    let retained = match settings.get("state.checkpoints.num-retained") {
        Some(v) => v.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("invalid 'state.checkpoints.num-retained' = '{v}'; it must be a positive integer")
        })?,
        None => 1,
    };
    let key_groups =
        key_groups_setting(settings.get("pipeline.max-parallelism").map(String::as_str))?;
    if let Some(b) = settings.get("state.backend.type") {
        if !b.eq_ignore_ascii_case("rocksdb") && !b.eq_ignore_ascii_case("hashmap") {
            return Err(format!(
                "invalid 'state.backend.type' = '{b}'; Vigil keeps checkpoints in RocksDB ('rocksdb')"
            ));
        }
    }
    let remote = match remote_url {
        Some(url) => {
            let url = format!("{}/{job}", url.trim_end_matches('/'));
            Some(RemoteCheckpoints::open(&url, settings).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    Ok(Some(CheckpointConfig {
        interval: interval.unwrap_or(DEFAULT_INTERVAL),
        job_dir,
        checkpoints_dir,
        retained,
        key_groups,
        remote,
        peers: None,
    }))
}

/// The job's name as a path and topic component: `pipeline.name`, else the
/// CLI's script name, else `job`; other characters than letters, digits, `-`
/// and `_` become `_`.
pub fn job_id(settings: &BTreeMap<String, String>, run: &RunOptions) -> String {
    let job = settings
        .get("pipeline.name")
        .cloned()
        .or_else(|| run.job_name.clone())
        .unwrap_or_else(|| "job".to_string());
    job.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where the working state goes when checkpoints live on object storage and
/// no --state-dir is given: the first of `io.tmp.dirs`, else the system's
/// temporary directory.
fn local_state_dir(settings: &BTreeMap<String, String>) -> PathBuf {
    settings
        .get("io.tmp.dirs")
        .and_then(|d| d.split([',', ';']).next())
        .filter(|d| !d.trim().is_empty())
        .map(|d| PathBuf::from(d.trim()))
        .unwrap_or_else(std::env::temp_dir)
        .join("vigil-state")
}

/// The job name the CLI gives a script: its file name without extension.
pub fn job_name_of(script: &Path) -> Option<String> {
    script
        .file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn off_without_interval_or_state_dir() {
        let c = checkpoint_config(&settings(&[]), &RunOptions::default()).expect("ok");
        assert!(c.is_none());
    }

    #[test]
    fn state_dir_alone_enables_checkpoints_per_job() {
        let run = RunOptions {
            state_dir: Some("/s".into()),
            job_name: Some("alerts".into()),
            ..Default::default()
        };
        let c = checkpoint_config(&settings(&[]), &run)
            .expect("ok")
            .expect("on");
        assert_eq!(c.interval, DEFAULT_INTERVAL);
        assert_eq!(c.job_dir, PathBuf::from("/s/alerts"));
        assert_eq!(c.checkpoints_dir, PathBuf::from("/s/alerts/checkpoints"));
        assert_eq!(c.retained, 1);
        let c = checkpoint_config(
            &settings(&[
                ("execution.checkpointing.interval", "2 s"),
                ("state.checkpoints.dir", "file:///c"),
                ("state.checkpoints.num-retained", "3"),
                ("pipeline.name", "x y"),
            ]),
            &run,
        )
        .expect("ok")
        .expect("on");
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.checkpoints_dir, PathBuf::from("/c/x_y"));
        assert_eq!(c.retained, 3);
    }

    #[test]
    fn an_interval_needs_somewhere_to_write() {
        let err = checkpoint_config(
            &settings(&[("execution.checkpointing.interval", "1 s")]),
            &RunOptions::default(),
        )
        .expect_err("no dir");
        assert!(err.contains("--state-dir"), "{err}");
        let err = checkpoint_config(
            &settings(&[("execution.checkpointing.interval", "often")]),
            &RunOptions::default(),
        )
        .expect_err("bad interval");
        assert!(err.contains("'often'"), "{err}");
    }
}
